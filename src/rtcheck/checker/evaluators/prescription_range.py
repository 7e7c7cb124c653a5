"""Rule kind ``sbrt_prescription_range``: an SBRT prescription within the ranges of its site."""

from __future__ import annotations

from typing import Any

from rtcheck.checker import findings as F
from rtcheck.checker.evaluators.context import Context, finding, prescription
from rtcheck.checker.findings import Finding
from rtcheck.rules.fractionation_tiers import assess_scheme
from rtcheck.rules.kinds import FractionationRule, PrescriptionRangeRule


def evaluate(rule: PrescriptionRangeRule, ctx: Context) -> list[Finding]:
    if ctx.technique.value == "conventional":
        return ctx.skip(rule, F.OUT_OF_SCOPE, f"not an SBRT course ({ctx.technique.text})")
    if ctx.site != rule.site:
        if ctx.site is None:
            return ctx.skip(rule, F.FACT_MISSING, f"needs the lesion site (site {rule.site})",
                            needs="site")
        return ctx.skip(rule, F.NOT_REQUESTED, f"site {rule.site} not requested")
    got = prescription(rule, ctx)
    if isinstance(got, Finding):
        return [got]
    total, n = got
    label = f"{total:g} Gy/{n}"
    tol = rule.dose_tolerance_pct / 100.0
    details: dict[str, Any] = {"fractions": n, "technique": ctx.technique.as_dict()}
    common: dict[str, Any] = dict(metric="prescription", value=total, limit=rule.summary(),
                                  details=details)
    unknown = "" if ctx.technique.value else \
        f"; applied because the technique is unknown ({ctx.technique.text})"
    for r in rule.ranges:
        if r.fractions_min <= n <= r.fractions_max and \
                r.dose_min * (1 - tol) <= total <= r.dose_max * (1 + tol):
            if n in rule.warn_fractions:
                return [finding(rule, "WARN", f"{label} is within {r.label} ({rule.site}); "
                                f"{rule.warn_reason}{unknown}", **common)]
            return [finding(rule, "PASS", f"{label} is within {r.label} ({rule.site}; "
                            f"{ctx.technique.text}){unknown}", **common)]
    same_n = [r.label for r in rule.ranges if r.fractions_min <= n <= r.fractions_max]
    why = (f"outside {', '.join(same_n)}" if same_n
           else f"no {rule.site} SBRT range for {n} fractions")
    listed = _listed_for_indication(ctx, total, n)
    if listed is not None:
        # The referential lists the scheme for this indication elsewhere (Tableau 5's 35 Gy/7,
        # a biological equivalent): outside section 2.2.2's ranges is then a point to review,
        # not a failure -- "FAIL only outside all of them" (issue 9, item 5).
        details["indication_tier"] = listed.tier
        return [finding(rule, "WARN", f"{label}: {why} (ranges: {rule.summary()}), but the "
                        f"scheme is {listed.tier.replace('_', ' ')} for indication "
                        f"{ctx.indication} ({listed.source}): check the dose against section "
                        f"2.2.2{unknown}", **common)]
    return [finding(rule, rule.severity, f"{label}: {why} (ranges: {rule.summary()}; "
                    f"{ctx.technique.text}){unknown}", **common)]


def _listed_for_indication(ctx: Context, total: float, n: int):
    """The indication row's assessment of the scheme when it lists it in a tier (not FAIL)."""
    row = next((r for r in ctx.rules if isinstance(r, FractionationRule)
                and ctx.indication is not None and r.indication == ctx.indication), None)
    if row is None:
        return None
    got = assess_scheme(row, total, n, site=ctx.site, technique=ctx.technique.value)
    return got if got.tier and got.status in ("PASS", "WARN") else None
