"""Rule kind ``fractionation``: the plan's scheme against the indication's row, in tiers.

The tiers (recommended, other possible, allowed elsewhere in the referential, exceptional,
biological equivalent) are assessed by :func:`rtcheck.rules.fractionation_tiers.assess_scheme`; this
module turns the assessment into a finding.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rtcheck.checker import findings as F
from rtcheck.checker.evaluators.context import Context, finding, join, prescription
from rtcheck.checker.findings import Finding
from rtcheck.radiobiology import bed
from rtcheck.rules.fractionation_tiers import assess_scheme
from rtcheck.rules.kinds import FractionationRule


def evaluate(rule: FractionationRule, ctx: Context) -> list[Finding]:
    if ctx.indication != rule.indication:
        if ctx.indication is None:
            return ctx.skip(rule, F.FACT_MISSING, f"needs the indication (indication "
                            f"{rule.indication})", needs="indication")
        return ctx.skip(rule, F.NOT_REQUESTED, f"indication {rule.indication} not requested")
    got = prescription(rule, ctx)
    if isinstance(got, Finding):
        return [got]
    total, n = got
    ab, ab_note = ctx.alpha_beta(rule)
    details: dict[str, Any] = {"fractions": n, "dose_per_fraction_gy": total / n}
    if ab is not None:
        details[f"BED{ab:g}_gy"] = float(bed(total, n, ab))
    # an --alpha-beta override changes the biological-equivalent span the rule is read with
    assessed = rule if ab is None or ab == rule.alpha_beta else replace(rule, alpha_beta=ab)
    got_tier = assess_scheme(assessed, total, n, site=ctx.site, technique=ctx.technique.value)
    details.update(got_tier.details)
    details.update(tier=got_tier.tier, tier_source=got_tier.source,
                   scheme_technique=got_tier.technique)
    code = F.FACT_MISSING if got_tier.missing else F.EVALUATED
    return [finding(rule, got_tier.status, join(got_tier.reason, ab_note), metric="prescription",
                    value=total, limit=rule.summary(), alpha_beta=ab, details=details, code=code,
                    missing=got_tier.missing)]
