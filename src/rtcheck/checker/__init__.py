"""The checker: a loaded plan and the facts, checked against the rules, as typed findings.

- :mod:`rtcheck.checker.run`: :func:`check`, which builds the context and runs the evaluators.
- :mod:`rtcheck.checker.findings`: Finding, Skip, Note, CheckResult; statuses, verdict levels,
  exit codes.
- :mod:`rtcheck.checker.evaluators`: one evaluator per rule kind.
- :mod:`rtcheck.checker.courses`: prior courses (from a plan or a summary).
- :mod:`rtcheck.checker.technique`: SBRT or conventional, and how it was decided.
- :mod:`rtcheck.checker.extent`: whether the cord contours cover the target's extent.

This room leans on :mod:`rtcheck.rules`, :mod:`rtcheck.dvh`, :mod:`rtcheck.radiobiology`
and :mod:`rtcheck.model`; the report, batch and the command line lean on it.
The names below are imported from :mod:`rtcheck.checker.run` on first use, so that importing
:mod:`rtcheck.checker.findings` alone stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtcheck.lazy import attribute_loader

_RUN_NAMES = ("DEFAULT_PROTOCOLS", "EXIT_CODES", "STATUSES", "CheckResult", "Finding", "Note",
              "PriorCourse", "Skip", "check", "parse_prior_summary", "prior_from_plan")

if TYPE_CHECKING:
    from rtcheck.checker.run import (
        DEFAULT_PROTOCOLS,
        EXIT_CODES,
        STATUSES,
        CheckResult,
        Finding,
        Note,
        PriorCourse,
        Skip,
        check,
        parse_prior_summary,
        prior_from_plan,
    )


__getattr__ = attribute_loader(__name__, dict.fromkeys(_RUN_NAMES, "rtcheck.checker.run"),
                               globals())


__all__ = ["DEFAULT_PROTOCOLS", "EXIT_CODES", "STATUSES", "CheckResult", "Finding", "Note",
           "PriorCourse", "Skip", "check", "parse_prior_summary", "prior_from_plan"]
