"""One evaluator per rule kind: ``evaluate(rule, context) -> list[Finding]``.

Each module evaluates one kind of rule (``constraints/README.md`` describes the kinds);
:data:`EVALUATORS` maps a kind to its function. The :class:`~rtcheck.checker.evaluators.context.Context`
holds the plan and the facts, and collects skipped rules and notes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from rtcheck.checker.evaluators import (
    case,
    dose_limit,
    fractionation,
    prescription_range,
    reirradiation,
    warning,
)
from rtcheck.checker.evaluators.context import Context
from rtcheck.checker.findings import Finding
from rtcheck.rules.kinds import (
    CaseRule,
    DoseLimitRule,
    FractionationRule,
    PrescriptionRangeRule,
    ReirradiationRule,
    Rule,
    SystemicTreatmentRule,
    WarningRule,
)

Evaluator = Callable[[Rule, Context], list[Finding]]
R = TypeVar("R", bound=Rule)


def typed(kind: type[R], evaluate: Callable[[R, Context], list[Finding]]) -> Evaluator:
    """``evaluate`` for rules of type ``kind`` only (each evaluator reads its kind's fields)."""
    def run(rule: Rule, ctx: Context) -> list[Finding]:
        if not isinstance(rule, kind):  # a protocol's kind and its type disagree: a bug
            raise TypeError(f"rule {rule.id}: {kind.__name__} expected, got "
                            f"{type(rule).__name__}")
        return evaluate(rule, ctx)
    return run


EVALUATORS: dict[str, Evaluator] = {
    "fractionation": typed(FractionationRule, fractionation.evaluate),
    "sbrt_prescription_range": typed(PrescriptionRangeRule, prescription_range.evaluate),
    "dose_limit": typed(DoseLimitRule, dose_limit.evaluate),
    "warning": typed(WarningRule, warning.evaluate),
    "reirradiation": typed(ReirradiationRule, reirradiation.evaluate),
    "case": typed(CaseRule, case.evaluate),
    "systemic_treatments": typed(SystemicTreatmentRule, case.evaluate_treatments),
}

__all__ = ["EVALUATORS", "Context", "Evaluator", "typed"]
