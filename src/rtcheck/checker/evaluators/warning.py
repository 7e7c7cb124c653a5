"""Rule kind ``warning``: a remark of the source that applies at some vertebral levels."""

from __future__ import annotations

from typing import Any

from rtcheck.checker import findings as F
from rtcheck.checker.evaluators.context import Context, finding, fmt
from rtcheck.checker.findings import Finding
from rtcheck.rules.kinds import WarningRule
from rtcheck.rules.protocols import parse_vertebral_level


def evaluate(rule: WarningRule, ctx: Context) -> list[Finding]:
    first, last = (parse_vertebral_level(v) for v in rule.vertebral_levels)  # type: ignore[union-attr]
    span = f"{rule.vertebral_levels[0]}-{rule.vertebral_levels[1]}"  # type: ignore[index]
    if ctx.levels is None:
        if ctx.site == "spine":
            return [finding(rule, "NOT_EVALUATED", f"vertebral level unknown (not in DICOM): give "
                            f"--vertebral-level to check whether the lesion lies within {span}",
                            role=rule.role, code=F.FACT_MISSING, missing="vertebral_level")]
        if ctx.site is None:
            return ctx.skip(rule, F.FACT_MISSING, "needs the lesion site (--site) and, for the "
                            "spine, its vertebral level (--vertebral-level)", needs="site")
        return ctx.skip(rule, F.NOT_APPLICABLE, f"applies to spinal lesions only; the site is "
                        f"{ctx.site}")
    lo, hi = ctx.levels
    if hi < first or lo > last:
        return ctx.skip(rule, F.NOT_APPLICABLE, f"vertebral level {ctx.level_text} outside {span}")
    match = ctx.role_match(rule.role)  # type: ignore[arg-type]
    details: dict[str, Any] = {"vertebral_level": ctx.level_text, "how": match.how}
    organ = f"{rule.role} not evaluated: {match.how}"
    for name in match.names[:1] if match.status == "matched" else ():
        dvh, _, why = ctx.dvh_of(name)
        if dvh is None:
            organ = f"{name!r}: {why}"
            continue
        shown = {m: dvh.metric(m) for m in rule.show}
        details.update(shown)
        organ = f"{name!r}: " + ", ".join(f"{m} = {fmt(v)} Gy" for m, v in shown.items())
        if not dvh.fully_covered:
            organ += f" (only {dvh.covered_fraction:.1%} inside the dose grid)"
    structure = match.name if match.status == "matched" else None
    return [finding(rule, rule.severity, f"vertebral level {ctx.level_text} within {span}: "
                    f"{rule.message} [{organ}]", role=rule.role, structure=structure,
                    details=details)]
