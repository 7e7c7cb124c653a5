"""Whether a dose rule applies to this course: technique, fractions, first course or not.

A rule states the situation its source derived it for (``technique``, ``course``,
``applies_to_fractions`` or the fractions it tabulates); :func:`out_of_scope` compares it with
the course. An unknown technique never excludes a rule: both readings are checked.
"""

from __future__ import annotations

from rtcheck.checker.evaluators.context import Context, fx
from rtcheck.rules import DoseRule


def out_of_scope(rule: DoseRule, ctx: Context, count_fractions: bool = True) -> str | None:
    """Why ``rule`` does not apply to this course, or None when it applies (or may).
    Without ``count_fractions``: whether it would, whatever the number of fractions."""
    if getattr(rule, "course", None) == "first" and ctx.is_reirradiation:
        return ("stated for a first irradiation; this course is a re-irradiation (the "
                "re-irradiation rules apply)")
    tech = ctx.technique.value
    if rule.technique and tech and tech != rule.technique:
        return (f"stated for {_name(rule.technique)} courses; this course is {_name(tech)} "
                f"({ctx.technique.text})")
    n = ctx.fractions if count_fractions else None
    span = rule.fraction_span or rule.applies_to_fractions
    if span and n is not None and not span[0] <= n <= span[1]:
        return f"stated for {span[0]}-{span[1]} fractions; this plan has {n}"
    defer_to = getattr(rule, "defer_to", None)
    deferred = ctx.rule_by_id(defer_to) if defer_to else None
    if isinstance(deferred, DoseRule) and tech is not None and deferred.technique == tech \
            and out_of_scope(deferred, ctx, count_fractions) is None:
        return (f"rule {deferred.id} applies to this {_name(tech)} course of {fx(n or 0)} and "
                "supersedes this one")
    return None


def technique_caveat(rule: DoseRule, ctx: Context) -> str:
    """A note when a technique-specific rule is applied because the technique is unknown."""
    if rule.technique and ctx.technique.value is None:
        return (f"applied because the technique is unknown ({ctx.technique.text}); the rule is "
                f"stated for {_name(rule.technique)} courses")
    return ""


def _name(technique: str) -> str:
    return "SBRT" if technique == "sbrt" else technique
