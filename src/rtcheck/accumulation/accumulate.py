"""Courses summed in EQD2 (or BED) voxel by voxel, and the organ maximum of the sum.

Each course is converted with each point's own dose per fraction (point dose / the course's
fractions), LQ or LQ-L (:mod:`rtcheck.radiobiology`), after its physical dose has been read at
the current course's points (:mod:`rtcheck.accumulation.resample`, through the frame mapping of
:mod:`rtcheck.accumulation.registration`): resampling the physical dose, then converting, keeps
the conversion on doses a course really gave. Courses then add point by point. Where a prior
course's grid does not reach, the sum is unknown (NaN), never the current course alone.

Two readings:

- :func:`accumulate_grid`: the whole current grid (EQD2/BED map with an alpha/beta per
  structure, :class:`~rtcheck.accumulation.alpha_beta.AlphaBetaMap`), for export and DVHs.
- :func:`organ_sum`: one organ, one alpha/beta (the rule's): the largest cumulative value at
  the points that sample the organ (grid nodes inside it and points along its contours on every
  slab face, as the DVH engine reads a maximum), this course's share at that point, and the
  *envelope*: the largest cumulative value within ``uncertainty_mm`` of the organ (grid nodes at
  most that far from it), the set-up uncertainty band the RADAR tool (MSKCC) reports.

Recovery discounts are off unless a course is given a ``weight`` below 1, with its source.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingType
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rtcheck.accumulation.alpha_beta import AlphaBetaMap
from rtcheck.accumulation.geometry import boundary_points, nodes_near, organ_slabs
from rtcheck.accumulation.registration import Mapping
from rtcheck.accumulation.resample import planes_of, sample
from rtcheck.model import DoseGrid, Structure, distinct
from rtcheck.radiobiology import bed, eqd2

#: Default set-up uncertainty (mm) of the envelope: rtcheck's choice, a typical spinal-cord
#: PRV margin (1.5-2 mm); not a value taken from RADAR. Override with ``--uncertainty-mm``.
DEFAULT_UNCERTAINTY_MM = 2.0

# What a voxel-wise sum rests on (OrganSum.code).
EVALUATED = "evaluated"
NO_DOSE = "no_prior_dose"
NO_MAPPING = "no_registration"
NOT_COVERED = "not_covered"


@dataclass(frozen=True)
class CourseDose:
    """One course's physical dose (Gy, whole course) and fractions.

    ``weight`` < 1 applies a recovery discount (the EQD2 counts for that share), stated by
    ``weight_source``; 1 (the default) adds the course in full.
    """

    label: str
    dose: DoseGrid
    fractions: int
    weight: float = 1.0
    weight_source: str | None = None

    @property
    def frame(self) -> str | None:
        return self.dose.frame_of_reference_uid


def convert(values: np.ndarray, fractions: int, alpha_beta: float | np.ndarray,
            quantity: str = "EQD2", model: str = "LQ", dt: float | None = None) -> np.ndarray:
    """EQD2 or BED of physical doses, each with its own dose per fraction; ``alpha_beta`` one
    value or one per value; NaN (unknown dose) stays NaN."""
    fn = bed if quantity == "BED" else eqd2
    values = np.asarray(values, dtype=float)
    out = np.full(values.shape, np.nan)
    known = np.isfinite(values)
    ab = np.broadcast_to(np.asarray(alpha_beta, dtype=float), values.shape)
    for value in distinct(ab[known]):
        sel = known & (ab == value)
        out[sel] = fn(np.maximum(values[sel], 0.0), fractions, float(value), model, dt)
    return out


# ------------------------------------------------------------------------ the whole grid


@dataclass
class Accumulated:
    """A cumulative EQD2 (or BED) map on the current course's grid.

    ``grid.values`` is NaN where a prior course's grid does not reach (``uncovered`` nodes).
    ``courses`` lists each course with how it was mapped and its weight.
    """

    grid: DoseGrid
    quantity: str
    model: str
    alpha_beta: AlphaBetaMap
    courses: list[dict[str, Any]] = field(default_factory=list)
    uncovered: int = 0

    def dvh(self, structure: Structure, spacing_mm: float | None = None) -> Any:
        """The structure's cumulative EQD2 (BED) DVH (:func:`rtcheck.dvh.compute_dvh` on this
        map), or None when a prior course's grid does not reach every node the DVH engine
        reads for it (within one voxel of the structure): its sum is unknown there."""
        from rtcheck.dvh import compute_dvh

        g = self.grid
        reach = float(max(g.spacing))
        nodes, _ = nodes_near(organ_slabs([structure], spacing_mm), g.x, g.y, g.z, reach)
        if np.isnan(sample(g, nodes)).any():
            return None
        known = DoseGrid(x=g.x, y=g.y, z=g.z, values=np.nan_to_num(g.values, nan=0.0),
                         units="GY", summation="PLAN",
                         frame_of_reference_uid=g.frame_of_reference_uid)
        return compute_dvh(structure, known, slice_spacing_mm=spacing_mm)

    def describe(self) -> str:
        """Model, alpha/beta map and courses, in one line (the RTDOSE comment)."""
        courses = "; ".join(f"{c['label']} {c['fractions']} fx ({c['how']}"
                            + (f", weight {c['weight']:g}: {c['weight_source']}"
                               if c["weight"] != 1 else "") + ")" for c in self.courses)
        return (f"{self.quantity} ({self.model}, each voxel with its own dose per fraction); "
                f"alpha/beta {self.alpha_beta.describe()}; courses: {courses}")


def accumulate_grid(current: CourseDose, priors: Sequence[tuple[CourseDose, Mapping]],
                    alpha_beta: AlphaBetaMap, structures: MappingType[str, Structure],
                    spacing_mm: float | None = None, quantity: str = "EQD2",
                    model: str = "LQ", dt: float | None = None) -> Accumulated:
    """The current course and the priors summed voxel by voxel on the current grid.

    Memory: the alpha/beta map and the sum (two grids) beside the current dose; the priors
    are resampled one plane at a time.
    """
    g = current.dose
    ab = alpha_beta.volume(structures, g.x, g.y, g.z, spacing_mm)
    total = np.empty(ab.shape, dtype=float)
    for k in range(len(g.z)):  # plane by plane: temporaries of one plane only
        total[k] = current.weight * convert(g.values[k], current.fractions, ab[k], quantity,
                                            model, dt)
    courses = [_course_info(current, "this course")]
    for prior, how in priors:
        for k, pts in planes_of(g.x, g.y, g.z):
            phys = sample(prior.dose, pts, how.matrix).reshape(total.shape[1:])
            total[k] += prior.weight * convert(phys, prior.fractions, ab[k], quantity, model, dt)
        courses.append(_course_info(prior, how.how))
    grid = DoseGrid(x=g.x, y=g.y, z=g.z, values=total, units="GY", summation="PLAN",
                    frame_of_reference_uid=g.frame_of_reference_uid)
    return Accumulated(grid, quantity, model, alpha_beta, courses, int(np.isnan(total).sum()))


def _course_info(course: CourseDose, how: str) -> dict[str, Any]:
    return {"label": course.label, "fractions": course.fractions, "how": how,
            "weight": course.weight, "weight_source": course.weight_source}


# ------------------------------------------------------------------------ one organ


@dataclass(frozen=True)
class OrganSum:
    """The voxel-wise cumulative value of one organ (see the module docstring).

    Attributes
    ----------
    code : str
        ``evaluated``, ``no_prior_dose``, ``no_registration`` or ``not_covered``; ``reason``
        says why in words when not evaluated.
    quantity : str
        ``EQD2`` or ``BED``.
    value : float or None
        The largest cumulative value at the organ's sample points (Gy).
    share : float or None
        This course's part of the sum at that point.
    point : (x, y, z) or None
        Where (current patient coordinates, mm).
    envelope : float or None
        The largest cumulative value within ``uncertainty_mm`` of the organ; None when a
        course's grid does not reach that far (``envelope_reason``).
    courses : list of dict
        Each course's ``label`` and converted ``value_gy`` at the point.
    """

    code: str
    reason: str
    quantity: str
    uncertainty_mm: float
    value: float | None = None
    share: float | None = None
    point: tuple[float, float, float] | None = None
    envelope: float | None = None
    envelope_reason: str | None = None
    courses: tuple[dict[str, Any], ...] = ()


def organ_sum(structures: Sequence[Structure], spacing_mm: float | None, current: CourseDose,
              priors: Sequence[tuple[CourseDose, Mapping]], alpha_beta: float,
              quantity: str = "EQD2", uncertainty_mm: float = DEFAULT_UNCERTAINTY_MM,
              model: str = "LQ", dt: float | None = None) -> OrganSum:
    """The organ's voxel-wise cumulative maximum, share and envelope (module docstring)."""
    label = " + ".join(s.name for s in structures)
    slabs = organ_slabs(structures, spacing_mm)
    g = current.dose
    nodes, dist = nodes_near(slabs, g.x, g.y, g.z, uncertainty_mm)
    edge = boundary_points(slabs)
    points = np.vstack([edge, nodes])
    inside = np.concatenate([np.ones(len(edge), bool), dist == 0])
    parts = []
    for course, how in [(current, None), *priors]:
        phys = sample(course.dose, points, how.matrix if how else None)
        missing = np.isnan(phys[inside])
        if missing.any():
            return OrganSum(NOT_COVERED, f"{missing.mean():.0%} of {label!r}'s points lie "
                            f"outside {course.label}'s dose grid: the voxel-wise sum is unknown "
                            "(the sum of maxima still stands)", quantity, uncertainty_mm)
        parts.append(course.weight * convert(phys, course.fractions, alpha_beta, quantity,
                                             model, dt))
    total = np.sum(parts, axis=0)
    best = int(np.argmax(np.where(inside, total, -np.inf)))
    value = float(total[best])
    envelope, why = _envelope(total, label, uncertainty_mm)
    return OrganSum(EVALUATED, "", quantity, uncertainty_mm, value=value,
                    share=float(parts[0][best] / value) if value > 0 else 0.0,
                    point=(float(points[best, 0]), float(points[best, 1]),
                           float(points[best, 2])),
                    envelope=envelope, envelope_reason=why,
                    courses=tuple({"course": c.label, "value_gy": float(p[best])}
                                  for (c, _), p in zip([(current, None), *priors], parts)))


def _envelope(total: np.ndarray, label: str, radius: float) -> tuple[float | None, str | None]:
    if np.isnan(total).any():
        return None, (f"a course's dose grid does not reach {radius:g} mm around {label!r}: "
                      "envelope unknown")
    return float(np.max(total)), None
