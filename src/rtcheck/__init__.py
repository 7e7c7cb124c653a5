"""rtcheck: a radiotherapy planning-constraint checker.

Reads DICOM-RT plans (RTPLAN, RTDOSE, RTSTRUCT), computes dose-volume histograms, converts
fractionation schemes with the linear-quadratic model, and checks plans against the
bone-metastasis radiotherapy rules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtcheck.lazy import attribute_loader

__version__ = "0.1.0"

# The public API, imported on first use: ``import rtcheck`` (and so every ``rtcheck``
# command, ``--help`` included) imports nothing heavy. numpy comes with the model and the
# checker, pydicom (~0.4 s) with the DICOM readers, matplotlib only with a plot.
_LAZY: dict[str, str] = {
    **dict.fromkeys(("InputError", "MetricError", "RTCheckError"), "rtcheck.errors"),
    **dict.fromkeys(("Contour", "DoseGrid", "FractionGroup", "Plan", "PlanData", "Structure",
                     "StructureSet"), "rtcheck.model"),
    **dict.fromkeys(("CheckResult", "Finding", "check"), "rtcheck.checker"),
    **dict.fromkeys(("CaseFacts", "load_case"), "rtcheck.case"),
    **dict.fromkeys(("Budget", "remaining_dose"), "rtcheck.checker.budget"),
    **dict.fromkeys(("Protocol", "Rule", "load_protocol", "shipped_protocols"),
                    "rtcheck.rules.protocols"),
    **dict.fromkeys(("RoleMap", "RoleMatch", "match_roles"), "rtcheck.rules.roles"),
    **dict.fromkeys(("Course", "RecoveryModel", "Scheme", "accumulate_courses",
                     "alpha_beta_sensitivity", "bed", "eqd2", "eqd2_dvh", "eqd2_grid",
                     "isoeffective_dose", "max_dose_per_fraction", "max_total_dose",
                     "parse_scheme"), "rtcheck.radiobiology"),
    **dict.fromkeys(("deidentify", "render_batch_index", "render_html"),
                    "rtcheck.report"),  # no matplotlib here
    **dict.fromkeys(("load_plan", "read_dose", "read_plan", "read_structure_set"),
                    "rtcheck.dicom"),
}

if TYPE_CHECKING:  # what the names are, for type checkers and IDEs
    from rtcheck.case import CaseFacts, load_case
    from rtcheck.checker import CheckResult, Finding, check
    from rtcheck.checker.budget import Budget, remaining_dose
    from rtcheck.dicom import load_plan, read_dose, read_plan, read_structure_set
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
    from rtcheck.report import deidentify, render_batch_index, render_html
    from rtcheck.rules.protocols import Protocol, Rule, load_protocol, shipped_protocols
    from rtcheck.rules.roles import RoleMap, RoleMatch, match_roles


#: Import a public name (or a sub-module: ``rtcheck.radiobiology``) on first use.
__getattr__ = attribute_loader(__name__, _LAZY, globals(), submodules=True)


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "CaseFacts",
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
    "Budget",
    "remaining_dose",
    "deidentify",
    "accumulate_courses",
    "alpha_beta_sensitivity",
    "bed",
    "eqd2",
    "eqd2_dvh",
    "eqd2_grid",
    "isoeffective_dose",
    "load_case",
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
