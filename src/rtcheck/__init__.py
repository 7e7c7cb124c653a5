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
from rtcheck.checker import CheckResult, Finding, check
from rtcheck.protocols import Protocol, Rule, load_protocol, shipped_protocols
from rtcheck.roles import RoleMap, RoleMatch, match_roles
from rtcheck.radiobiology import (
    Course,
    RecoveryModel,
    Scheme,
    accumulate_courses,
    alpha_beta_sensitivity,
    bed,
    eqd2,
    eqd2_dvh,
    eqd2_grid,
    isoeffective_dose,
    max_dose_per_fraction,
    max_total_dose,
    parse_scheme,
)
from rtcheck.report import deidentify, render_batch_index, render_html  # no matplotlib here

__version__ = "0.1.0"

# The DICOM readers import pydicom (~0.4 s): loaded on first use, so that commands that do
# not read DICOM (convert, protocols, --version) start fast.
_DICOM_API = ("load_plan", "read_dose", "read_plan", "read_structure_set")


def __getattr__(name: str):
    if name in _DICOM_API:
        from rtcheck import dicom

        return getattr(dicom, name)
    raise AttributeError(f"module 'rtcheck' has no attribute {name!r}")


__all__ = [
    "CheckResult",
    "Contour",
    "Course",
    "DoseGrid",
    "Finding",
    "FractionGroup",
    "InputError",
    "MetricError",
    "Plan",
    "PlanData",
    "Protocol",
    "RTCheckError",
    "RecoveryModel",
    "RoleMap",
    "RoleMatch",
    "Rule",
    "Scheme",
    "Structure",
    "StructureSet",
    "__version__",
    "check",
    "deidentify",
    "accumulate_courses",
    "alpha_beta_sensitivity",
    "bed",
    "eqd2",
    "eqd2_dvh",
    "eqd2_grid",
    "isoeffective_dose",
    "load_plan",
    "load_protocol",
    "match_roles",
    "max_dose_per_fraction",
    "max_total_dose",
    "parse_scheme",
    "read_dose",
    "read_plan",
    "read_structure_set",
    "render_batch_index",
    "render_html",
    "shipped_protocols",
]
