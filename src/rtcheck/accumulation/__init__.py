"""Re-irradiation dose accumulation: EQD2/BED maps, course registration, voxel-wise sums.

- :mod:`~rtcheck.accumulation.geometry`: a structure's slabs, inside tests and distances.
- :mod:`~rtcheck.accumulation.resample`: a dose grid read at any points (trilinear, NaN outside).
- :mod:`~rtcheck.accumulation.registration`: the frame mapping between courses (same
  FrameOfReferenceUID, or a rigid DICOM REG).
- :mod:`~rtcheck.accumulation.alpha_beta`: alpha/beta per structure with an explicit order.
- :mod:`~rtcheck.accumulation.accumulate`: courses summed voxel by voxel (whole grid, or one
  organ's maximum, share and set-up envelope).

Leans on :mod:`rtcheck.model`, :mod:`rtcheck.radiobiology` and numpy; the checker's
re-irradiation evaluator and ``rtcheck eqd2`` lean on it.
"""

from __future__ import annotations

from rtcheck.accumulation.accumulate import (
    DEFAULT_UNCERTAINTY_MM,
    Accumulated,
    CourseDose,
    OrganSum,
    accumulate_grid,
    convert,
    organ_sum,
)
from rtcheck.accumulation.alpha_beta import AlphaBetaMap
from rtcheck.accumulation.registration import (
    Mapping,
    Registration,
    find_registrations,
    mapping,
    read_registration,
)
from rtcheck.accumulation.resample import resample, sample

__all__ = ["DEFAULT_UNCERTAINTY_MM", "Accumulated", "AlphaBetaMap", "CourseDose", "Mapping",
           "OrganSum", "Registration", "accumulate_grid", "convert", "find_registrations",
           "mapping", "organ_sum", "read_registration", "resample", "sample"]
