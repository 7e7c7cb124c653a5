"""One evaluator per rule kind: ``evaluate(rule, context) -> list[Finding]``.

Each module evaluates one kind of rule (``constraints/README.md`` describes the kinds);
:data:`EVALUATORS` maps a kind to its function. The :class:`~rtcheck.checker.evaluators.context.Context`
holds the plan and the facts, and collects skipped rules and notes.
"""

from __future__ import annotations

from collections.abc import Callable

from rtcheck.checker.evaluators import (
    dose_limit,
    fractionation,
    prescription_range,
    reirradiation,
    warning,
)
from rtcheck.checker.evaluators.context import Context
from rtcheck.checker.findings import Finding
from rtcheck.rules.protocols import Rule

EVALUATORS: dict[str, Callable[[Rule, Context], list[Finding]]] = {
    "fractionation": fractionation.evaluate,
    "sbrt_prescription_range": prescription_range.evaluate,
    "dose_limit": dose_limit.evaluate,
    "warning": warning.evaluate,
    "reirradiation": reirradiation.evaluate,
}

__all__ = ["EVALUATORS", "Context"]
