"""The data model: plain typed objects for a plan, its dose and its structures.

These are what :func:`rtcheck.load_plan` returns and what the DVH engine and the checker
consume. They hold no reference to pydicom datasets, so scripts can build them by hand
(e.g. an analytical phantom) and they pickle cheaply for parallel batch runs.

Coordinates are DICOM patient coordinates in millimetres. Doses are in the units of
:attr:`DoseGrid.units` (Gy once loaded from a ``GY`` RTDOSE).
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

#: No patient coordinate is 100 m from the origin: a dose position or contour point beyond this
#: (mm) is corrupt (the RTDOSE and RTSTRUCT readers both refuse it).
MAX_COORDINATE_MM = 1e5


@dataclass
class DoseGrid:
    """Dose sampled on a regular axial grid.

    The axes are strictly increasing patient coordinates of the voxel centres, whatever the
    patient orientation stored in the file (HFS, FFS, HFP, FFP): the loader flips the array so
    that ``values[k, j, i]`` is the dose at ``(x[i], y[j], z[k])``.

    Attributes
    ----------
    x, y, z : ndarray
        Voxel-centre positions along each axis, in mm, strictly increasing. ``z`` may be
        unevenly spaced (GridFrameOffsetVector allows it).
    values : ndarray, shape (nz, ny, nx)
        Dose in :attr:`units`, already multiplied by DoseGridScaling (and by the number of
        fractions for a FRACTION dose, see :attr:`fractions_applied`).
    units : str
        ``"GY"`` or ``"RELATIVE"`` (a relative dose cannot give Gy).
    summation : str
        DoseSummationType as stored (``PLAN``, ``FRACTION``, ``BEAM``, ...); ``"PLAN"`` once
        several BEAM doses have been summed (see :attr:`notes`).
    fractions_applied : int or None
        When a FRACTION dose was multiplied by the plan's number of fractions, that number.
    frame_of_reference_uid : str or None
    sop_instance_uids : tuple of str
        The RTDOSE object(s) this grid was built from.
    paths : tuple of str
        Their files.
    notes : list of str
        What was done to the stored dose (summed beams, multiplied by fractions...).
    problems : list of str
        Why this dose must not become a verdict as it stands (empty when it may): a dose that
        disagrees with its own plan beyond the factors stated in
        :func:`rtcheck.dicom.check_dose_plausibility` (a whole-course dose labelled FRACTION
        and multiplied by the fractions, a per-fraction dose labelled PLAN, a grid in cGy...),
        or a DoseType ERROR grid. Each text names the numbers. A checker turns every rule
        that reads this dose into NOT_EVALUATED with these reasons.
    summation_override : str or None
        ``"PLAN"`` or ``"FRACTION"`` when the user overrode the stored DoseSummationType
        (``load_plan(dose_summation=...)``, ``--dose-summation``); None when the file's label
        was used. :attr:`summation` stays the label as stored; :attr:`notes` says what the
        override did.
    """

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    values: np.ndarray
    units: str = "GY"
    summation: str = "PLAN"
    fractions_applied: int | None = None
    frame_of_reference_uid: str | None = None
    sop_instance_uids: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    summation_override: str | None = None

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size (dx, dy, dz) in mm; dz is the smallest frame spacing (or 0 for one frame)."""
        dz = float(np.min(np.diff(self.z))) if self.z.size > 1 else 0.0
        return (float(self.x[1] - self.x[0]) if self.x.size > 1 else 0.0,
                float(self.y[1] - self.y[0]) if self.y.size > 1 else 0.0,
                dz)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.values.shape)


@dataclass
class Contour:
    """One closed planar contour: the polygon ``xy`` (N x 2, mm) on the axial plane ``z``."""

    z: float
    xy: np.ndarray


@dataclass
class Structure:
    """One ROI of a structure set.

    Attributes
    ----------
    number : int
        ROINumber.
    name : str
        ROIName as stored (not normalised).
    contours : list of Contour
        CLOSED_PLANAR contours. Several per plane are allowed; a contour inside another on the
        same plane is a hole (even-odd rule).
    points : ndarray, shape (N, 3)
        Coordinates of POINT contours (a POI has no volume and no DVH).
    roi_type : str or None
        RTROIInterpretedType (PTV, ORGAN, EXTERNAL, ...).
    problems : list of str
        Why the structure is incomplete as read (empty when it is complete): contours that
        were skipped (odd coordinate count, OPEN_PLANAR where a closed contour is expected,
        non-finite coordinates, points off the contour's plane, fewer than 3 points). The
        structure keeps its other contours, but what is left is not the structure: a checker
        must not turn its dose into a verdict.
    """

    number: int
    name: str
    contours: list[Contour] = field(default_factory=list)
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    roi_type: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def is_point(self) -> bool:
        """True for a point ROI (no closed contour, at least one point)."""
        return not self.contours and len(self.points) > 0

    @property
    def is_empty(self) -> bool:
        """True when the ROI holds no contour data at all."""
        return not self.contours and len(self.points) == 0

    def planes(self, decimals: int = 3) -> dict[float, list[np.ndarray]]:
        """Contours grouped by plane position (rounded to ``decimals`` mm), sorted by z."""
        out: dict[float, list[np.ndarray]] = {}
        for c in self.contours:
            out.setdefault(round(float(c.z), decimals), []).append(c.xy)
        return dict(sorted(out.items()))


#: Plane gaps closer than this (mm) are the same plane when computing plane spacings.
PLANE_TOLERANCE_MM = 1e-3


def slab_bounds(zs: np.ndarray, typical: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper z of the slab each contour plane (at sorted heights ``zs``) stands for:
    +- half the ``typical`` spacing, and at most half way to a neighbouring plane. The one
    slab convention of the DVH engine, the contour distances and the voxel-wise sums."""
    zs = np.asarray(zs, dtype=float)
    half = typical / 2.0
    lo = np.full(zs.shape, half)
    hi = np.full(zs.shape, half)
    if zs.size > 1:
        gaps = np.diff(zs) / 2.0
        lo[1:] = np.minimum(gaps, half)
        hi[:-1] = np.minimum(gaps, half)
    return zs - lo, zs + hi


def distinct(values: ArrayLike, axis: int | None = None) -> np.ndarray:
    """Sorted distinct values (``axis=0``: distinct rows), as :func:`numpy.unique`.

    Asked for the inverse too, numpy 2.4's ``unique`` skips its ``np.ma.is_masked`` test,
    whose first call imports ``numpy.ma`` (12 ms of a 0.6 s ``rtcheck check``); the values
    returned are the same.
    """
    return np.unique(np.asarray(values), axis=axis, return_inverse=True)[0]


def median(values: ArrayLike) -> float:
    """The median of all ``values``, as :func:`numpy.median` (NaN if one is NaN).

    Written out because numpy 2.4's ``median`` tests for a masked array with ``np.ma``,
    whose first use imports ``numpy.ma`` (12 ms of a 0.6 s ``rtcheck check``). Same
    arithmetic: the middle value, or the two middle values' sum halved.
    """
    a = np.asarray(values, dtype=float).ravel()
    if a.size == 0 or np.isnan(a).any():
        return math.nan
    k = a.size // 2
    if a.size % 2:
        return float(np.partition(a, k)[k])
    part = np.partition(a, (k - 1, k))
    return float((part[k - 1] + part[k]) / 2)


def common_plane_spacing(structures: list[Structure]) -> float | None:
    """The median gap between consecutive contour planes, pooled over every ROI (mm).

    Each ROI contributes the gaps between its own consecutive distinct planes; the median of
    all those gaps is the structure set's contouring step (the CT slice spacing, in practice).
    A ROI contoured on a few isolated planes adds a few large gaps, which the median of the
    many ordinary gaps ignores. None when no ROI has two planes.
    """
    gaps = []
    for s in structures:
        zs = distinct(np.round([float(c.z) for c in s.contours if np.isfinite(c.z)], 3))
        if zs.size > 1:
            d = np.diff(zs)
            gaps.append(d[d > PLANE_TOLERANCE_MM])
    pooled = np.concatenate(gaps) if gaps else np.zeros(0)
    return round(median(pooled), 4) if pooled.size else None


@dataclass
class StructureSet:
    """An RTSTRUCT: its structures and identity.

    ``plane_spacing_mm`` is the structure set's common contour plane spacing (see
    :func:`common_plane_spacing`), computed when the object is made (from the structures
    given, unless a value is passed); None when no ROI has two planes.
    """

    structures: list[Structure]
    uid: str | None = None
    label: str | None = None
    frame_of_reference_uid: str | None = None
    path: str | None = None
    warnings: list[str] = field(default_factory=list)
    plane_spacing_mm: float | None = None

    def __post_init__(self) -> None:
        if self.plane_spacing_mm is None:
            self.plane_spacing_mm = common_plane_spacing(self.structures)

    def names(self) -> list[str]:
        return [s.name for s in self.structures]

    def get(self, name: str) -> Structure:
        """The structure called ``name`` (exact match); KeyError if absent or ambiguous."""
        found = [s for s in self.structures if s.name == name]
        if len(found) != 1:
            raise KeyError(f"{len(found)} structures named {name!r}")
        return found[0]

    def duplicate_names(self) -> list[str]:
        seen: dict[str, int] = {}
        for s in self.structures:
            seen[s.name] = seen.get(s.name, 0) + 1
        return sorted(n for n, k in seen.items() if k > 1)


@dataclass
class FractionGroup:
    """One FractionGroupSequence item: fractions planned and the beams it delivers."""

    number: int
    fractions: int | None
    beam_numbers: tuple[int, ...] = ()
    beam_doses_gy: dict[int, float] = field(default_factory=dict)  # per fraction, by beam
    beam_metersets: dict[int, float] = field(default_factory=dict)  # BeamMeterset, by beam


@dataclass
class Plan:
    """The facts of an RTPLAN a checker needs.

    ``prescription_gy`` is the total prescribed dose (TargetPrescriptionDose of the target
    dose reference, or else the sum of beam doses times fractions), or None when the plan does
    not state one.
    """

    uid: str
    label: str | None = None
    name: str | None = None
    patient_id: str | None = None
    patient_name: str | None = None
    date: _dt.date | None = None
    intent: str | None = None
    fraction_groups: list[FractionGroup] = field(default_factory=list)
    prescription_gy: float | None = None
    referenced_structure_set_uid: str | None = None
    frame_of_reference_uid: str | None = None
    path: str | None = None
    notes: list[str] = field(default_factory=list)  # how prescription etc. were derived

    @property
    def fractions(self) -> int | None:
        """Number of fractions planned, when the plan has exactly one fraction group stating it."""
        known = [g.fractions for g in self.fraction_groups if g.fractions]
        if len(self.fraction_groups) == 1 and len(known) == 1:
            return known[0]
        return None

    @property
    def dose_per_fraction_gy(self) -> float | None:
        n = self.fractions
        if n is None or self.prescription_gy is None:
            return None
        return self.prescription_gy / n


@dataclass
class PlanData:
    """A plan with its dose and structure set, as paired by :func:`rtcheck.load_plan`.

    Any part may be None: a structure set and a dose without a plan is valid (doses are then
    as stored and the number of fractions is unknown).

    ``treatment_dates`` are the days the plan was delivered on, as its treatment records
    (RTRECORD files referencing the plan) state them: sorted, each once. Empty when no record
    was found, which says nothing about whether the plan was delivered. ``treatment_records``
    are those records' paths.
    """

    plan: Plan | None
    dose: DoseGrid | None
    structure_set: StructureSet | None
    warnings: list[str] = field(default_factory=list)
    treatment_dates: list[_dt.date] = field(default_factory=list)
    treatment_records: list[str] = field(default_factory=list)

    @property
    def fractions(self) -> int | None:
        return None if self.plan is None else self.plan.fractions

    @property
    def last_treatment_date(self) -> _dt.date | None:
        """The last day the plan was delivered on, from its treatment records; None without them.

        This, not ``plan.date`` (RTPlanDate: when the plan was made), is where the interval
        to a later course starts: a course's last fraction comes days or weeks after its plan
        date, so measuring from the plan date overstates the interval.
        """
        return max(self.treatment_dates) if self.treatment_dates else None
