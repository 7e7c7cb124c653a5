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
from rtcheck.protocols import Protocol, Rule, load_protocol, shipped_protocols
from rtcheck.roles import RoleMap, RoleMatch, match_roles

__version__ = "0.1.0"

__all__ = [
    "Contour",
    "DoseGrid",
    "FractionGroup",
    "InputError",
    "MetricError",
    "Plan",
    "PlanData",
    "Protocol",
    "RTCheckError",
    "RoleMap",
    "RoleMatch",
    "Rule",
    "Structure",
    "StructureSet",
    "__version__",
    "load_protocol",
    "match_roles",
    "shipped_protocols",
]
