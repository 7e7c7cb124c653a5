"""Rule kind ``dose_limit``: a DVH metric of an organ against a limit.

The limit is tabulated by number of fractions (Sahgal's SBRT cord maxima, TG-101) or single
(QUANTEC's cord maximum in EQD2, ``convert = "EQD2"``: the metric's physical dose converted
with its own dose per fraction, metric / n, at the rule's alpha/beta).
"""

from __future__ import annotations

import math
from typing import Any

from rtcheck.checker import findings as F
from rtcheck.checker.evaluators.context import Context, finding, fmt, fx, join
from rtcheck.checker.evaluators.scope import out_of_scope, technique_caveat
from rtcheck.checker.evaluators.structures import (
    Target,
    TargetResult,
    decide,
    rule_targets,
    target_dvh,
)
from rtcheck.checker.findings import Finding
from rtcheck.dvh import parse_metric
from rtcheck.radiobiology import eqd2
from rtcheck.rules.kinds import DoseLimitRule, Limit


def evaluate(rule: DoseLimitRule, ctx: Context) -> list[Finding]:
    why = out_of_scope(rule, ctx)
    if why:
        return ctx.skip(rule, F.OUT_OF_SCOPE, why)
    n = ctx.fractions
    if n is None:
        return [finding(rule, "NOT_EVALUATED", ctx.fractions_unknown(), role=rule.role,
                        metric=rule.metric, code=F.FRACTIONS_UNKNOWN)]
    limit = rule.limit_for(n)
    if limit is None:
        tabulated = ", ".join(str(x.fractions) for x in rule.limits)
        return [finding(rule, "NOT_EVALUATED", f"no limit for {n} fractions in the source "
                        f"(tabulated: {tabulated} fractions)", role=rule.role, metric=rule.metric,
                        code=F.NO_LIMIT)]
    targets = rule_targets(rule, ctx)
    if targets is None:
        return []
    if isinstance(targets, Finding):
        return [targets]
    ab, ab_note = ctx.alpha_beta(rule)
    caveat = technique_caveat(rule, ctx)
    results = [_on_target(rule, ctx, t, limit, n, ab) for t in targets]
    # Paired organs (left and right plexus, each rib) are organs of their own: one finding
    # each. Otherwise the structures read stand for one organ: the most restrictive decides.
    paired = ctx.role_match(rule.role).multiple and not rule.also_roles  # type: ignore[arg-type]
    groups = [[r] for r in results] if paired else [results]
    out = []
    for group in groups:
        common: dict[str, Any] = dict(
            metric=_metric_label(rule), limit=limit.limit, operator=limit.operator,
            alpha_beta=ab, details={"fractions": n, "requirement": limit.label(rule.unit),
                                    "technique": ctx.technique.as_dict()})
        one = decide(rule, group, limit.operator in ("<", "<="), **common)
        one.reason = join(one.reason, ab_note, caveat)
        out.append(one)
    return out


def _metric_label(rule: DoseLimitRule) -> str:
    metric = rule.metric or ""  # a dose_limit rule always names its metric (validated)
    return f"EQD2 of {metric}" if rule.convert == "EQD2" else metric


def _on_target(rule: DoseLimitRule, ctx: Context, target: Target, limit: Limit, n: int,
               ab: float | None) -> TargetResult:
    dvh, problem = target_dvh(target, rule, ctx)
    if problem is not None:
        return problem
    metric = parse_metric(rule.metric)  # type: ignore[arg-type]
    physical = metric.evaluate(dvh)
    details: dict[str, Any] = {m: dvh.metric(m) for m in rule.show}
    details.update(volume_cc=dvh.volume_cc, physical_gy=physical)
    shown = "".join(f"; {m} = {fmt(v)} Gy" for m, v in details.items()
                    if m not in ("volume_cc", "physical_gy"))
    if math.isnan(physical):
        return _metric_undefined(target, rule, dvh, limit, details)
    value, said = _value(rule, physical, n, ab)
    upper_bound_only = metric.kind == "max" or (metric.kind == "D" and metric.input_unit == "cc")
    if not dvh.fully_covered:
        cover = f"only {dvh.covered_fraction:.1%} of {dvh.name!r} lies inside the dose grid"
        # The covered part alone gives a lower bound of a Dmax or D<x>cc: a violation by it is
        # certain; anything else cannot be known.
        if upper_bound_only and limit.operator in ("<", "<=") and rule.severity == "FAIL" \
                and limit.status(value, rule.severity) == "FAIL":
            return TargetResult(target, "FAIL", f"{cover}, but the covered part alone gives "
                                f"{said}, beyond {limit.label(rule.unit)}{shown}", value,
                                details=details)
        return TargetResult(target, "NOT_EVALUATED", f"{cover}: {rule.metric} cannot be known",
                            code=F.NOT_COVERED, details=details)
    status = limit.status(value, rule.severity)
    verb = {"PASS": "within", "WARN": "in the WARN band of"}.get(status, "violates")
    return TargetResult(target, status, f"{target.label!r}: {said} {verb} "
                        f"{limit.label(rule.unit)} in {fx(n)}{shown}", value, details=details)


def _value(rule: DoseLimitRule, physical: float, n: int, ab: float | None) -> tuple[float, str]:
    if rule.convert == "EQD2":
        value = float(eqd2(physical, n, ab))  # type: ignore[arg-type]
        return value, (f"{rule.metric} = {physical:.2f} Gy in {fx(n)} ({physical / n:.2f} Gy per "
                       f"fraction) -> EQD2 {value:.2f} Gy (LQ, alpha/beta {ab:g} Gy)")
    return physical, f"{rule.metric} = {physical:.2f} Gy"


def _metric_undefined(target: Target, rule: DoseLimitRule, dvh: Any, limit: Limit,
                      details: dict) -> TargetResult:
    """D<x>cc of a structure smaller than x cc: with an upper limit ('less than x cc may
    receive T') the rule is met whatever the dose; otherwise not evaluable."""
    metric = parse_metric(rule.metric)  # type: ignore[arg-type]
    if metric.kind == "D" and metric.input_unit == "cc" and limit.operator in ("<", "<=") \
            and dvh.volume_cc < float(metric.value):  # type: ignore[arg-type]
        vol = float(metric.value)  # type: ignore[arg-type]
        return TargetResult(target, "PASS", f"{dvh.name!r} is {dvh.volume_cc:.2f} cc, less than "
                            f"{vol:g} cc: less than {vol:g} cc can receive {fmt(limit.limit)} Gy "
                            "or more, whatever the dose", details=details)
    return TargetResult(target, "NOT_EVALUATED", f"{rule.metric} does not exist for "
                        f"{dvh.name!r} ({dvh.volume_cc:.2f} cc)", code=F.METRIC_UNDEFINED,
                        details=details)
