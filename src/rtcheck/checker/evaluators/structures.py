"""Which structures a dose rule reads, and which of them decides.

A rule names the structure its source used (``role``: the thecal sac for Sahgal's limits, the
cord for QUANTEC), the structures evaluated with it (``also_roles``: the cord beside the sac),
and those it reads below the conus (``below_conus_roles``: cauda equina, thecal sac). Every
contoured one is evaluated; the most restrictive outcome decides (FAIL > NOT_EVALUATED > WARN >
PASS, then the highest value), and the finding says which structure decided and what it stood
in for (the cord standing for an uncontoured thecal sac).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rtcheck.checker import extent
from rtcheck.checker import findings as F
from rtcheck.checker.evaluators.context import Context, finding
from rtcheck.checker.findings import Finding, StructureValue
from rtcheck.rules.kinds import DoseRule

#: Roles of the cord family: missing, they leave the cord unchecked (NOT_EVALUATED) unless the
#: site keeps the cord out of the field; other organs are checked only when contoured.
CORD_FAMILY = ("spinal_cord", "thecal_sac", "cauda_equina", "spinal_cord_prv", "spinal_canal")
#: Status order when several structures are evaluated for one rule (most restrictive last).
_ORDER = ("PASS", "WARN", "NOT_EVALUATED", "FAIL")


@dataclass(frozen=True)
class Target:
    """One organ a rule is evaluated on: a structure, or the union of several."""

    names: tuple[str, ...]
    role: str
    stands_for: str | None = None

    @property
    def label(self) -> str:
        return " + ".join(self.names)


@dataclass
class TargetResult:
    """A rule's outcome on one :class:`Target`."""

    target: Target
    status: str
    text: str
    value: float | None = None
    code: str = F.EVALUATED
    missing: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def rule_targets(rule: DoseRule, ctx: Context) -> list[Target] | Finding | None:
    """The organs ``rule`` reads in this plan; a NOT_EVALUATED finding when it cannot read
    them; None when the rule does not concern this plan (recorded as skipped)."""
    below = bool(ctx.below_conus and rule.below_conus_roles)
    roles = list(rule.below_conus_roles) if below else [rule.organ_role, *rule.also_roles]
    matched: list[tuple[str, Any]] = []
    for role in roles:
        match = ctx.role_match(role)
        if match.status == "ambiguous":
            return finding(rule, "NOT_EVALUATED", match.how, role=role, metric=rule.metric,
                           code=F.STRUCTURE_AMBIGUOUS, structure=", ".join(match.candidates))
        if match.status == "matched":
            matched.append((role, match))
    source_present = any(role == rule.role for role, _ in matched)
    near = [] if source_present or below else \
        ctx.table.near_misses(rule.role, [s.name for s in ctx.structures()])  # type: ignore[arg-type]
    if near:
        # A structure that looks like the source's organ under another name: letting another
        # structure stand in (the cord, always lower than the sac) would read it low.
        return finding(rule, "NOT_EVALUATED", f"no structure matches role {rule.role}, but "
                       f"{', '.join(repr(n) for n in near)} looks like one: choose with --map "
                       f"{rule.role}=NAME (or rename it)", role=rule.role, metric=rule.metric,
                       code=F.STRUCTURE_AMBIGUOUS, structure=", ".join(near))
    if below:
        ctx.note("below_conus", f"vertebral level {ctx.level_text} lies below the conus "
                 f"({ctx.conus_text}): the cord rules read the cauda equina / thecal sac, not a "
                 "cord that is not there")
    targets = []
    for role, match in matched:
        stands_for = None if (role == rule.role or source_present) else rule.role
        if getattr(match, "union", False):
            # an organ in parts: a part without contours is not contoured in this plan
            names = tuple(n for n in match.names if ctx.structure(n).contours) or match.names
            for n in set(match.names) - set(names):
                ctx.note("roles", f"{n!r} has no contours: {role} is read on "
                         f"{' + '.join(names)}", n)
            targets.append(Target(tuple(names), role, stands_for))
        else:
            targets += [Target((n,), role, stands_for) for n in match.names]
    if targets:
        return targets
    return _nothing_to_read(rule, ctx, roles)


def _nothing_to_read(rule: DoseRule, ctx: Context, roles: list[str]) -> Finding | None:
    cord_rule = any(r in CORD_FAMILY for r in roles)
    if cord_rule and ctx.site in ("extraspinal",):
        ctx.skip(rule, F.NOT_APPLICABLE, f"site {ctx.site}: the cord is not near the lesion and "
                 f"no {' / '.join(roles)} is contoured")
        return None
    if not cord_rule and ctx.data.structure_set is not None:
        ctx.skip(rule, F.NOT_APPLICABLE, f"no {' / '.join(roles)} contoured: the organ limit "
                 "applies when the organ is contoured")
        return None
    why = ctx.role_match(rule.organ_role).how if ctx.data.structure_set is not None \
        else "no structure set"
    if len(roles) > 1:
        why = f"none of {', '.join(roles)} is contoured ({why})"
    return finding(rule, "NOT_EVALUATED", why, role=rule.role, metric=rule.metric,
                   code=F.STRUCTURE_MISSING)


def too_short(target: Target, rule: DoseRule, ctx: Context) -> str | None:
    """Why a cord-family structure cannot stand for the cord's maximum: it does not cover the
    target's cranio-caudal extent plus ``rule.extent_margin_mm`` (TG-101), or skips planes
    there (:mod:`rtcheck.checker.extent`)."""
    margin = getattr(rule, "extent_margin_mm", None)
    if margin is None or target.role not in CORD_FAMILY:
        return None
    found = extent.targets(ctx.structures(), ctx.table, ctx.explicit)
    spacing = getattr(ctx.data.structure_set, "plane_spacing_mm", None)
    return extent.coverage_problem([ctx.structure(n) for n in target.names], found, margin,
                                   spacing)


def target_dvh(target: Target, rule: DoseRule, ctx: Context) -> tuple[Any, TargetResult | None]:
    """The target's DVH, or the NOT_EVALUATED result saying why it cannot be read (no dose,
    empty structure, cord contour too short)."""
    dvh, code, why = ctx.dvh_of(target.names)
    if dvh is None:
        return None, TargetResult(target, "NOT_EVALUATED", why or "", code=code)
    short = too_short(target, rule, ctx)
    if short:
        return None, TargetResult(target, "NOT_EVALUATED", short, code=F.STRUCTURE_TOO_SHORT)
    return dvh, None


def decide(rule: DoseRule, results: list[TargetResult], upper: bool, **common: Any) -> Finding:
    """One finding from the outcomes on several organs: the most restrictive decides."""
    def rank(r: TargetResult) -> tuple[int, float]:
        v = r.value if r.value is not None else float("-inf")
        return _ORDER.index(r.status), (v if upper else -v)

    worst = max(results, key=rank)
    evaluated = [StructureValue(r.target.label, r.target.role, r.value, r.status, r.code,
                                r.target.stands_for) for r in results]
    text = worst.text
    others = [r for r in results if r is not worst]
    if others:
        text += f" [decided by {worst.target.label!r}, the most restrictive; also evaluated: " + \
            "; ".join(f"{r.target.label!r} {r.status}" + (f" ({r.value:.2f})" if r.value is not
                                                          None else "") for r in others) + "]"
    if worst.target.stands_for:
        text += (f" [{worst.target.label!r} ({worst.target.role}) stood in for the "
                 f"{worst.target.stands_for}, the structure the rule's source used, which is not "
                 "contoured or not known in every course]")
    details = dict(common.pop("details", {}))
    details.update(worst.details)
    return finding(rule, worst.status, text, structure=worst.target.label,
                   role=worst.target.role, stands_for=worst.target.stands_for,
                   evaluated=evaluated, value=worst.value, code=worst.code,
                   missing=worst.missing, details=details, **common)
