"""Reading an RTDOSE, and whether a dose can be its plan's whole-course dose.

:func:`read_dose` opens the file and hands the dataset to :mod:`rtcheck.dose`, which builds
the grid (geometry, scaling, units). :func:`dose_references` gives what a folder scan
records of a dose: the plan, fraction group and beams it names. :func:`check_dose_plausibility`
compares a dose, once summed and scaled, with the total doses its plan states, and says
which factor (fractions, 1/n, cGy) most likely explains a disagreement;
:func:`check_targets_in_grid` notes a dose grid that misses every target.

Leans on :mod:`rtcheck.dicom.read`, :mod:`rtcheck.dicom.rtplan` (the beams' total dose),
:mod:`rtcheck.dose` and :mod:`rtcheck.model`.
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset

from rtcheck.dicom.read import (
    PathLike,
    as_int,
    as_text,
    expect_modality,
    guarded,
    open_dataset,
    quietly,
)
from rtcheck.dicom.rtplan import beams_total_gy
from rtcheck.dose import dose_grid_from_dataset
from rtcheck.model import DoseGrid, Plan, Structure, StructureSet, median


@quietly
@guarded("RTDOSE")
def read_dose(source: PathLike | Dataset) -> DoseGrid:
    """Read an RTDOSE into a :class:`DoseGrid` (as stored: no summation or fraction scaling).

    Parameters
    ----------
    source : path or pydicom.Dataset

    Returns
    -------
    DoseGrid
        DoseGridScaling applied; increasing x, y, z axes whatever the orientation (HFS, FFS,
        HFP, FFP, decubitus); ``units`` ``"GY"`` or ``"RELATIVE"`` (never converted).

    Raises
    ------
    InputError
        Not an RTDOSE, unknown or missing DoseUnits, oblique or non-axial grid, truncated or
        missing pixel data.
    """
    ds, where = open_dataset(source)
    expect_modality(ds, "RTDOSE", where)
    return dose_grid_from_dataset(ds, where)




def dose_references(ds: Dataset) -> tuple[str | None, int | None, tuple[int, ...]]:
    """(plan UID, fraction group number, beam numbers) an RTDOSE references; None or () for
    what it does not state."""
    plan_ref = (ds.get("ReferencedRTPlanSequence") or [None])[0]
    if plan_ref is None:
        return None, None, ()
    uid = as_text(plan_ref.get("ReferencedSOPInstanceUID"))
    group = (plan_ref.get("ReferencedFractionGroupSequence") or [None])[0]
    if group is None:
        return uid, None, ()
    beams = tuple(n for n in (as_int(b.get("ReferencedBeamNumber"))
                              for b in group.get("ReferencedBeamSequence") or []) if n is not None)
    return uid, as_int(group.get("ReferencedFractionGroupNumber")), beams


#: The dose maximum of a whole-course dose, as a multiple of the plan's total dose (its
#: prescription, or its beams' BeamDose x fractions), lies in this band in real plans:
#: conventional plans peak at 1.02-1.15 x, SBRT at 1.1-1.5 x (hot spots of 120-150 %), SRS
#: prescribed to the 50 % isodose at 2 x and to the 30-40 % isodose at 2.5-3.3 x; a
#: simultaneous boost is covered because the largest target prescription is the plan's.
#: Below 0.8 x the target is not treated (or the prescription is not this dose's); a
#: per-fraction dose labelled PLAN gives (1.0-1.5)/n x, caught for n >= 2 (n = 2: 0.5-0.75).
#: Above 3.5 x: a whole-course dose labelled FRACTION and multiplied by n gives n x
#: (1.0-1.5): caught for n >= 3 (Pinnacle exports: n = 5-35), a grid in cGy labelled GY 100 x.
DOSE_MAX_BAND = (0.8, 3.5)
#: The median dose of the hottest target ROI (PTV, CTV or GTV with contours inside the grid),
#: as a multiple of the plan's total dose: ~1.0-1.05 x for a conventional plan prescribed to
#: the target's D50 or D95, 1.1-1.3 x for SBRT, ~1.3 x for SRS prescribed to the 50 % isodose
#: and ~1.6 x at the 30 % isodose (a sphere's median lies at 0.79 of its radius). Below 0.7 x
#: no target is treated to its prescription; above 2.0 x every target would receive twice its
#: prescription, which catches a FRACTION-labelled whole-course dose with n = 2 fractions.
TARGET_MEDIAN_BAND = (0.7, 2.0)
#: Targets whose median is computed for the cross-check (RTROIInterpretedType, or the start of
#: the ROI name when the type is not stated).
_TARGET_TYPES = ("PTV", "CTV", "GTV")


def check_dose_plausibility(dose: DoseGrid, plan: Plan,
                            structure_set: StructureSet | None = None) -> list[str]:
    """Why ``dose`` cannot be the plan's whole-course dose; empty when it can (or when the
    plan states no total dose to compare with).

    The dose is compared with each total dose the plan states: its prescription
    (TargetPrescriptionDose) and its beams' own BeamDose per fraction x fractions (see
    :func:`beams_total_gy`). It agrees with one when its maximum lies within
    :data:`DOSE_MAX_BAND` of it and, when a target ROI (PTV, CTV, GTV) has contours inside
    the grid, the hottest target's median dose lies within :data:`TARGET_MEDIAN_BAND`. The
    dose is implausible when it agrees with none: then each returned text names the numbers
    and, when a factor explains it (the fractions a FRACTION dose was multiplied by, 1/n for a
    per-fraction dose labelled PLAN, 100 for cGy), says so and how to override the label.
    Cost: one max over the grid and a polygon test on the target planes' bounding boxes.
    """
    if dose.units != "GY" or dose.values.size == 0:
        return []
    refs = []
    if plan.prescription_gy:
        refs.append(("the plan's prescription", float(plan.prescription_gy)))
    beams = beams_total_gy(plan.fraction_groups)
    if beams and not any(abs(beams - v) <= 0.01 * v for _, v in refs):
        refs.append(("the beams' BeamDose x fractions", beams))
    if not refs:
        return []
    dmax = float(np.max(dose.values))
    target = _hottest_target_median(dose, structure_set) if structure_set else None

    def agrees(ref: float) -> bool:
        return _within_bands(dmax / ref, None if target is None else target[1] / ref)

    if any(agrees(v) for _, v in refs):
        return []
    label, ref = refs[0]
    ratio = dmax / ref
    facts = [(f"dose maximum {dmax:.4g} Gy = {ratio:.3g} x {label} {ref:g} Gy (plausible "
              f"{DOSE_MAX_BAND[0]:g}-{DOSE_MAX_BAND[1]:g} x)")]
    if target is not None:
        facts.append(f"median dose of target {target[0]!r} {target[1]:.4g} Gy = "
                     f"{target[1] / ref:.3g} x (plausible {TARGET_MEDIAN_BAND[0]:g}-"
                     f"{TARGET_MEDIAN_BAND[1]:g} x)")
    for other_label, other in refs[1:]:
        facts.append(f"{dmax / other:.3g} x {other_label} {other:g} Gy")
    return ["; ".join(facts) + ": " + _diagnosis(dose, plan, ratio, target, ref)]


def _within_bands(max_ratio: float, target_ratio: float | None) -> bool:
    """Whether a dose maximum (and the hottest target's median, when known), as multiples of
    a plan's total dose, lie in :data:`DOSE_MAX_BAND` (and :data:`TARGET_MEDIAN_BAND`)."""
    ok = DOSE_MAX_BAND[0] <= max_ratio <= DOSE_MAX_BAND[1]
    if target_ratio is not None:
        ok = ok and TARGET_MEDIAN_BAND[0] <= target_ratio <= TARGET_MEDIAN_BAND[1]
    return ok


def _half_slice(z: np.ndarray, single: float) -> float:
    """Half the spacing of a grid's planes (``single`` for a one-plane grid)."""
    return float(z[1] - z[0]) / 2 if z.size > 1 else single


def _diagnosis(dose: DoseGrid, plan: Plan, ratio: float, target: tuple[str, float] | None,
               ref: float) -> str:
    """The likely explanation of an implausible dose/plan ratio, and what to do."""
    # The ratio the dose would have with a factor f removed, judged on the maximum (and the
    # target median when known).
    def fits(f: float) -> bool:
        return _within_bands(ratio / f, None if target is None else target[1] / ref / f)

    label = dose.summation
    n = dose.fractions_applied
    fractions = plan.fractions
    override = dose.summation_override
    if override:
        return (f"the dose disagrees with the plan even with the summation given "
                f"(--dose-summation {override}): it does not belong to this plan, or its "
                "scaling or units are wrong; not evaluated")
    if n and fits(n):
        return (f"a {label} dose multiplied by {n} fractions: was it already the whole course "
                "(Pinnacle exports label whole-course doses FRACTION)? If so, use "
                "--dose-summation PLAN")
    if not n and fractions and fractions > 1 and fits(1 / fractions):
        return (f"a per-fraction dose labelled {label} (1/{fractions} of the course)? If so, "
                "use --dose-summation FRACTION")
    if fits(100.0) or (n and fits(100.0 * n)):
        return "a dose in cGy labelled GY (100 x too high)? The RTDOSE's DoseGridScaling is wrong"
    if fits(0.01):
        return "a dose 100 x too low (DoseGridScaling in the wrong unit?)"
    return ("the dose does not belong to this plan, or its summation type, scaling or units are "
            "wrong; not evaluated")


def _is_target(s: Structure) -> bool:
    """A PTV, CTV or GTV by its RTROIInterpretedType, else by the start of its name."""
    kind = (s.roi_type or "").strip().upper()
    if kind:
        return kind in _TARGET_TYPES
    return s.name.strip().upper()[:3] in _TARGET_TYPES


def _hottest_target_median(dose: DoseGrid, ss: StructureSet) -> tuple[str, float] | None:
    """(name, median dose) of the target ROI with the highest median over its voxels inside
    the grid; None without such a target. Complete targets only (no ``problems``)."""
    best = None
    for s in ss.structures:
        if not _is_target(s) or not s.contours or s.problems:  # contours: read on first use
            continue
        values = _dose_inside(dose, s)
        if values.size:
            value = median(values)
            if best is None or value > best[1]:
                best = (s.name, value)
    return best


def _polygon_mask(xy: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Grid points (gy rows x increasing gx columns) inside the polygon ``xy`` (even-odd ray
    casting: a point is inside when an odd number of edges cross its row to its right)."""
    px, py = xy[:, 0], xy[:, 1]
    xa, ya = np.roll(px, 1), np.roll(py, 1)
    # Every (edge, row) crossing at once; a horizontal edge never crosses.
    e, r = np.nonzero((ya[:, None] > gy[None, :]) != (py[:, None] > gy[None, :]))
    xi = xa[e] + (gy[r] - ya[e]) * (px[e] - xa[e]) / (py[e] - ya[e])
    # A crossing at xi flips the columns with gx < xi, the first j of the row: toggle at 0 and
    # at j, then the running sum's parity is the number of flips of each column.
    j = np.searchsorted(gx, xi, side="left")
    width = gx.size + 1
    toggles = np.bincount(np.concatenate([r * width, r * width + j]),
                          minlength=gy.size * width).reshape(gy.size, width)
    return (np.cumsum(toggles, axis=1)[:, :-1] % 2).astype(bool)


def _dose_inside(dose: DoseGrid, s: Structure) -> np.ndarray:
    """Dose at the grid's (x, y) voxel centres inside the structure's contours, on each
    contour plane within the grid (linear between the two nearest frames)."""
    z = dose.z
    half = _half_slice(z, 0.5)
    out = []
    for zc, polygons in s.planes().items():
        if not z[0] - half <= zc <= z[-1] + half:
            continue
        lo_xy = np.min([p.min(axis=0) for p in polygons], axis=0)
        hi_xy = np.max([p.max(axis=0) for p in polygons], axis=0)
        ix = np.flatnonzero((dose.x >= lo_xy[0]) & (dose.x <= hi_xy[0]))
        iy = np.flatnonzero((dose.y >= lo_xy[1]) & (dose.y <= hi_xy[1]))
        if ix.size == 0 or iy.size == 0:
            continue
        gx, gy = dose.x[ix], dose.y[iy]
        mask = np.zeros((iy.size, ix.size), dtype=bool)
        for p in polygons:
            mask ^= _polygon_mask(p, gx, gy)
        if not mask.any():
            continue
        k = int(np.clip(np.searchsorted(z, zc) - 1, 0, max(z.size - 2, 0)))
        if z.size == 1:
            plane = dose.values[0][np.ix_(iy, ix)]
        else:
            t = float(np.clip((zc - z[k]) / (z[k + 1] - z[k]), 0.0, 1.0))
            plane = ((1 - t) * dose.values[k][np.ix_(iy, ix)]
                     + t * dose.values[k + 1][np.ix_(iy, ix)])
        out.append(plane[mask])
    return np.concatenate(out) if out else np.zeros(0)


def check_targets_in_grid(dose: DoseGrid, ss: StructureSet, notes: list[str]) -> None:
    """Warn when no target ROI has a contour within the dose grid's z range.

    The DVH engine reports each structure's coverage; this catches the systematic case
    (a dose that belongs elsewhere, or a feet-first grid whose frame offsets its writer
    measured along +z rather than along the row x column normal, which mirrors it in z).
    """
    targets = [s for s in ss.structures  # type first: contours may be read on first use
               if (s.roi_type or "").upper() in _TARGET_TYPES and s.contours]
    if not targets or dose.z.size == 0:
        return
    half = _half_slice(dose.z, 0.0)
    lo, hi = float(dose.z[0]) - half - 1e-3, float(dose.z[-1]) + half + 1e-3
    if any(lo <= c.z <= hi for s in targets for c in s.contours):
        return
    zs = [c.z for s in targets for c in s.contours]
    notes.append(
        f"no target ROI ({', '.join(s.name for s in targets)}) has a contour within the dose "
        f"grid (z {lo:g}..{hi:g} mm; targets at z {min(zs):g}..{max(zs):g} mm): the dose does "
        "not belong to these structures, or (feet-first grids) its frame offsets were written "
        "along +z instead of along the normal DICOM defines")

