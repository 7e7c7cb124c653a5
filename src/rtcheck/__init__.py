"""rtcheck: a radiotherapy planning-constraint checker.

Reads DICOM-RT plans (RTPLAN, RTDOSE, RTSTRUCT), computes dose-volume histograms, converts
fractionation schemes with the linear-quadratic model, and checks plans against the
bone-metastasis radiotherapy rules.
"""

from rtcheck.errors import InputError, MetricError, RTCheckError
from rtcheck.model import (
    Contour,
    DoseGrid,
    FractionGroup,
    Plan,
    PlanData,
    Structure,
    StructureSet,
)

__version__ = "0.1.0"

__all__ = [
    "Contour",
    "DoseGrid",
    "FractionGroup",
    "InputError",
    "MetricError",
    "Plan",
    "PlanData",
    "RTCheckError",
    "Structure",
    "StructureSet",
    "__version__",
]
