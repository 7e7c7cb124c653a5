"""The remaining dose of a course being planned: the largest point maximum every rule allows.

Before a re-irradiation is optimised, the planner needs the number the referential (section 4)
attributes to Sahgal 2012's table of the "dose restante": the largest point maximum the new
course may give to the thecal sac / cord, in each number of fractions, so that every
re-irradiation rule holds. :func:`remaining_dose` derives it from the rules of the loaded
protocols, the same :class:`~rtcheck.rules.kinds.ReirradiationRule` objects the checker
evaluates (their quantity, limit, operator, alpha/beta, structures, technique and scope), never
from numbers copied into code:

``cumulative_eqd2_max`` / ``cumulative_bed_max``
    this course's EQD2 (BED) <= limit - the prior courses' sum;
``course_eqd2_max`` / ``each_course_bed_max``
    this course's EQD2 (BED) <= limit (and every prior course must already hold);
``course_share``
    x / (x + P) <= r, i.e. x <= r P / (1 - r), P the prior courses' sum;
``interval_months``
    not a dose: the earliest date of the new course (:class:`IntervalBound`).

Each bound on EQD2 (BED) is turned into a physical point maximum with the new course's own dose
per fraction (``rtcheck.radiobiology.isoeffective_dose``, LQ, the rule's alpha/beta or its
``--alpha-beta`` override). The organ's remaining dose is the smallest bound; the rule that
gives it *binds*.

How the bound is reported: ``exact_gy`` is the supremum (the dose at which the binding rule's
value equals its limit); ``max_gy`` is that dose rounded *down* to 0.01 Gy, and for a strict
limit (``<``, e.g. the course's EQD2 < 25 Gy) a supremum that falls on a 0.01 Gy step is
reported 0.01 Gy below it. A plan whose point maximum is ``max_gy`` therefore satisfies every
rule, and one 0.01 Gy above does not satisfy the binding rule. ``review_max_gy`` is the same
with the no-consensus bands (cumulative EQD2 70-75 Gy: WARN) taken as allowed.

With no prior course the first-course limits apply instead: the ``dose_limit`` rules with
``course = "first"`` on a point maximum (Sahgal 2013's SBRT table, the QUANTEC EQD2 limit for
other courses), under the same scope (technique, fractions, ``defer_to``) as in the checker.

Courses are added on the same kind of structure, as the checker does: a prior course that
gives no maximum for a role is not summed on it, and that organ's remaining dose is unknown
(``code`` ``prior_unknown``), never a number (a bound taken from another organ would be too
high: the thecal sac contains the cord, so its prior maximum is at least the cord's); the
roles the prior does give keep their numbers, the cord's marked as standing in
(``stands_for``) for the source's structure.

What ``rtcheck check`` would say about scope is said here too. A prior course dated after the
new course (``date``: it began, or by its records or ``end=`` ended, after it) is not a prior
course: it is never summed, in any bound, and :attr:`Budget.priors_not_summed` says so (when
every prior is, no organ gets a number: ``code`` ``prior_mismatch``). A rule applied outside
the situation it was derived for (a prior SBRT course, more prior courses than the rule's
``max_prior_courses``, an unknown technique) carries the caveat ``check`` gives (its PASS
would be a WARN there) in :attr:`RuleBound.outside_derivation` and, for every rule of the
organ, in :attr:`OrganBudget.outside_derivation`. A re-irradiation rule out of scope for the
number of fractions (Sahgal's course rules: 1-5 fraction SBRT) is not applied, as in
``check``, and never silently: the organ's caveats name it and say that the other rules are
applied outside their derivation (``check`` WARNs their PASS the same way:
:func:`~rtcheck.checker.evaluators.reirradiation.dropped_for_fractions`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from os import PathLike
from typing import Any

from rtcheck.checker.courses import END_ESTIMATE, PriorCourse, parse_date, read_priors
from rtcheck.checker.evaluators.context import Context, finding
from rtcheck.checker.evaluators.reirradiation import (
    ESTIMATE_MARGIN_MONTHS,
    dropped_for_fractions,
    outside_derivation,
)
from rtcheck.checker.evaluators.scope import out_of_scope, technique_caveat
from rtcheck.checker.technique import TECHNIQUES, Technique, given_technique
from rtcheck.errors import InputError
from rtcheck.model import PlanData
from rtcheck.radiobiology import (
    add_months,
    bed,
    eqd2,
    isoeffective_dose,
    months_between,
)
from rtcheck.rules import DoseLimitRule, ReirradiationRule, Rule
from rtcheck.rules.kinds import Limit
from rtcheck.rules.protocols import Protocol, load_protocol
from rtcheck.rules.roles import RoleMap

#: Fractions tabulated by default (Sahgal's tables: SBRT in 1 to 5 fractions).
DEFAULT_FRACTIONS = (1, 2, 3, 4, 5)
#: The step the remaining dose is reported in (Gy), rounded down.
REPORT_STEP_GY = 0.01

# Why an organ's remaining dose is what it is (OrganBudget.code).
BOUNDED = "evaluated"
PRIOR_UNKNOWN = "prior_unknown"
EXHAUSTED = "exhausted"
NO_RULE = "no_rule"
PRIOR_MISMATCH = "prior_mismatch"  # every prior course is dated after the new course

_BED_QUANTITIES = ("cumulative_bed_max", "each_course_bed_max")
_PRIOR_QUANTITIES = ("cumulative_eqd2_max", "cumulative_bed_max", "course_share",
                     "each_course_bed_max")


@dataclass(frozen=True)
class RuleBound:
    """What one rule allows this course on one organ.

    Attributes
    ----------
    rule : str
        The rule's id; ``quantity`` its quantity (``course_eqd2_max``...; ``first_course``
        for a first-course dose limit).
    limit, operator, warn_up_to, unit, alpha_beta
        As in the rule (``alpha_beta`` after any override; None for a physical-dose limit).
    prior_gy : float or None
        The prior courses' sum of the rule's quantity (EQD2 or BED, Gy) on this organ.
    max_gy : float or None
        The largest physical point maximum (Gy) satisfying the rule (the supremum, not
        rounded); None when no dose does (``code`` ``exhausted``) or it is unknown.
    review_max_gy : float or None
        The same up to the rule's WARN band (``warn_up_to``), else ``max_gy``.
    strict : bool
        The limit excludes its value (``<``).
    code : str
        ``evaluated``, ``prior_unknown`` or ``exhausted``; ``text`` says it in words. An
        exhausted rule may still leave room up to its WARN band (``review_max_gy``).
    outside_derivation : tuple of str
        What ``rtcheck check`` says when the rule is applied outside the situation it was
        derived for (a PASS there becomes a WARN); empty when inside it.
    """

    rule: str
    quantity: str
    limit: float
    operator: str
    unit: str | None
    alpha_beta: float | None
    warn_up_to: float | None
    prior_gy: float | None
    max_gy: float | None
    review_max_gy: float | None
    strict: bool
    code: str
    text: str
    outside_derivation: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["outside_derivation"] = list(self.outside_derivation)
        return out


@dataclass(frozen=True)
class OrganBudget:
    """The remaining point maximum of one organ (role) for one number of fractions.

    Attributes
    ----------
    role : str
        The structure role (``thecal_sac``, ``spinal_cord``...).
    stands_for : str or None
        The source's role this one stands in for (the cord for a thecal sac no prior course
        gives), else None.
    fractions : int
    max_gy : float or None
        The remaining dose as reported: rounded down to 0.01 Gy, and below a strict limit
        (module docstring). None when unknown or exhausted (``code``).
    exact_gy : float or None
        The supremum, not rounded.
    binding_rule : str or None
        The rule that gives it.
    review_max_gy, review_binding_rule
        The same when the rules' WARN bands are taken as allowed.
    bounds : tuple of RuleBound
        Every rule that applies, with what it allows.
    not_summed : tuple of str
        Rules not summed on this role (the prior courses give no maximum for it) because
        another role stands in for the source's structure.
    code : str
        ``evaluated``, ``prior_unknown``, ``exhausted``, ``no_rule`` or ``prior_mismatch``.
    first_course : bool
        True when the first-course limits were used (no prior course).
    outside_derivation : tuple of str
        The caveats of every rule of the organ (:attr:`RuleBound.outside_derivation`) and the
        rules not applied for this number of fractions (module docstring): where ``rtcheck
        check`` would WARN, or where the bound is outside the rules' derivation.
    """

    role: str
    stands_for: str | None
    fractions: int
    max_gy: float | None
    exact_gy: float | None
    binding_rule: str | None
    review_max_gy: float | None
    review_binding_rule: str | None
    bounds: tuple[RuleBound, ...]
    not_summed: tuple[str, ...]
    code: str
    first_course: bool
    outside_derivation: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "bounds"}
        out["bounds"] = [b.as_dict() for b in self.bounds]
        out["not_summed"] = list(self.not_summed)
        out["outside_derivation"] = list(self.outside_derivation)
        return out


@dataclass(frozen=True)
class IntervalBound:
    """An interval rule: the earliest date the new course may start.

    ``earliest`` is None when the prior course's last fraction is unknown; ``earliest_pass``
    is the first day ``rtcheck check`` gives PASS rather than WARN (later than ``earliest``
    when that end is an estimate: within :data:`ESTIMATE_MARGIN_MONTHS` of the limit it WARNs).
    ``months``, ``satisfied`` (the limit alone) and ``status`` (``PASS``, ``WARN``, the rule's
    severity or ``NOT_EVALUATED``, as ``check`` would give it) are set when the date of the new
    course is known; ``text`` says why, ``outside_derivation`` the caveats of the rule.
    """

    rule: str
    limit_months: float
    operator: str
    prior_end: dt.date | None
    prior_end_how: str
    earliest: dt.date | None
    date: dt.date | None
    months: float | None
    satisfied: bool | None
    status: str | None = None
    text: str = ""
    earliest_pass: dt.date | None = None
    outside_derivation: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["outside_derivation"] = list(self.outside_derivation)
        for key in ("prior_end", "earliest", "date", "earliest_pass"):
            out[key] = out[key].isoformat() if out[key] else None
        return out


@dataclass
class Budget:
    """The result of :func:`remaining_dose`."""

    technique: str | None
    fractions: tuple[int, ...]
    priors: list[PriorCourse]
    organs: list[OrganBudget]
    intervals: list[IntervalBound] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Prior courses given but never summed (dated after the new course): label and why.
    priors_not_summed: list[dict[str, str]] = field(default_factory=list)

    def organ(self, role: str, fractions: int) -> OrganBudget | None:
        """The remaining dose of ``role`` in ``fractions`` fractions, if tabulated."""
        return next((o for o in self.organs if o.role == role and o.fractions == fractions),
                    None)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON; a bound no rule limits (infinite) is ``null``."""
        return _finite({"technique": self.technique, "fractions": list(self.fractions),
                        "report_step_gy": REPORT_STEP_GY,
                        "priors": [p.as_dict() for p in self.priors],
                        "organs": [o.as_dict() for o in self.organs],
                        "intervals": [i.as_dict() for i in self.intervals],
                        "priors_not_summed": list(self.priors_not_summed),
                        "notes": list(self.notes)})


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (strict JSON has no Infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


# ============================================================================ public entry


def remaining_dose(priors: Sequence[str | PriorCourse | PlanData] | str | PriorCourse | None,
                   fractions: Iterable[int] = DEFAULT_FRACTIONS, *,
                   protocols: Iterable[str | PathLike | Protocol] | None = None,
                   technique: str | None = "sbrt", below_conus: bool = False,
                   alpha_beta: Mapping[str, float] | None = None,
                   date: dt.date | str | None = None,
                   explicit_roles: Mapping[str, str] | None = None,
                   roles: RoleMap | Mapping[str, Iterable[str]] | str | PathLike | None = None,
                   ) -> Budget:
    """The largest point maximum a new course may give each organ, by number of fractions.

    Parameters
    ----------
    priors : prior course(s) or None
        As for :func:`rtcheck.check`: summaries (``"30Gy/10 cord_dmax=31Gy end=2025-03-14"``),
        :class:`PriorCourse` objects or loaded prior plans. None or empty: the first-course
        limits.
    fractions : iterable of int
        The numbers of fractions to tabulate (default 1 to 5).
    protocols : optional
        As for :func:`rtcheck.check` (default: the referential).
    technique : {"sbrt", "conventional", None}
        The new course's technique (default SBRT, what Sahgal's tables are for;
        ``conventional`` gives Nieder 2006's rules; None applies the rules of both).
    below_conus : bool
        The lesion lies below the conus: the rules read their below-conus roles.
    alpha_beta : mapping, optional
        ``{role or rule id: alpha/beta}`` overrides, as ``--alpha-beta``.
    date : date, optional
        The planned start of the new course (evaluates the interval rules).
    explicit_roles, roles
        ``--map`` choices and extra role synonyms, to read prior plans.

    Returns
    -------
    Budget

    Raises
    ------
    InputError
        Unknown technique or protocol, a fraction count below 1, a malformed prior.

    Examples
    --------
    >>> b = remaining_dose("30Gy/10 cord_dmax=31Gy", [3])
    >>> b.organ("spinal_cord", 3).max_gy, b.organ("spinal_cord", 3).binding_rule
    (14.57, 'reirradiation.course-cord-eqd2')
    """
    if isinstance(date, str):  # as check() takes it: ISO text
        date = parse_date(date, "date")
    from rtcheck.checker.run import DEFAULT_PROTOCOLS

    if technique is not None and technique not in TECHNIQUES:
        raise InputError(f"unknown technique {technique!r}; expected {', '.join(TECHNIQUES)}")
    counts = tuple(dict.fromkeys(_fraction_counts(fractions)))
    table = RoleMap.shipped() if roles is None else RoleMap.shipped().extended(roles)
    items = list(DEFAULT_PROTOCOLS if protocols is None else protocols)
    rules = [r for p in items
             for r in (p if isinstance(p, Protocol) else load_protocol(p, roles=table)).rules]
    _check_alpha_beta(alpha_beta or {}, rules)
    courses = read_priors(priors, None, table, dict(explicit_roles or {}), rules)
    return budget_from_rules(rules, courses, counts, technique=technique,
                             below_conus=below_conus, ab_overrides=dict(alpha_beta or {}),
                             date=date)


def _check_alpha_beta(overrides: Mapping[str, float], rules: Sequence[Rule]) -> None:
    """Every ``--alpha-beta`` key names a role or rule whose alpha/beta it changes (the keys
    :meth:`Context.alpha_beta` reads), and every value is a number > 0."""
    converting = [r for r in rules if r.converts]
    ids = {r.id for r in converting}
    roles = {role for r in converting
             for role in (r.role, *getattr(r, "also_roles", ()),
                          *getattr(r, "below_conus_roles", ())) if role}
    for key, value in overrides.items():
        if key not in ids and key not in roles:
            raise InputError(f"--alpha-beta {key}=...: no rule that converts doses reads a role "
                             f"or has an id {key!r} (roles: {', '.join(sorted(roles))}; or a "
                             "rule id, rtcheck protocols)")
        if isinstance(value, bool) or not (isinstance(value, (int, float))
                                           and math.isfinite(value) and value > 0):
            raise InputError(f"--alpha-beta {key}={value!r}: must be a number > 0 (Gy)")


def budget_from_rules(rules: Sequence[Rule], priors: list[PriorCourse],
                      fractions: Sequence[int], *, technique: str | None,
                      below_conus: bool = False, ab_overrides: Mapping[str, float] | None = None,
                      date: dt.date | None = None) -> Budget:
    """:func:`remaining_dose` on rules and prior courses already loaded (the checker's)."""
    out = Budget(technique=technique, fractions=tuple(fractions), priors=list(priors),
                 organs=[])
    after = [p for p in priors if date is not None and dated_after(p, date)]
    summed = [p for p in priors if p not in after]
    if after:
        text = (f"prior course(s) dated after this course ({date}, --date): "
                + "; ".join(f"{p.label} ({p.date or p.end_date})" for p in after)
                + "; never summed with this course (not a prior course of it)")
        out.notes.append(text)
        out.priors_not_summed = [{"label": p.label, "why": "dated after this course "
                                  f"({p.date or p.end_date} > {date})"} for p in after]
    for n in fractions:
        # every prior dated after: the re-irradiation rules are NOT_EVALUATED in check, and the
        # first-course limits do not apply to a re-irradiation; no number
        ctx = _planned_context(rules, summed or priors, n, technique, below_conus,
                               ab_overrides or {})
        organs = _organs(ctx, n)
        if after and not summed:
            organs = [_unknown(o, PRIOR_MISMATCH) for o in organs]
        out.organs += organs
    out.intervals = _intervals(rules, summed, technique, below_conus, date)
    if not priors:
        out.notes.append("no prior course: the first-course limits apply")
    elif not summed:
        out.notes.append("no prior course left to sum: no remaining dose (rtcheck check leaves "
                         "the re-irradiation rules NOT_EVALUATED)")
    return out


def dated_after(course: PriorCourse, date: dt.date) -> bool:
    """The course began, or (by its records or ``end=``, not an estimate) ended, after
    ``date``: not a prior course (the test of ``rtcheck check``'s re-irradiation rules)."""
    return bool((course.date and course.date > date)
                or (course.end_date and course.end_how != END_ESTIMATE and course.end_date > date))


def _unknown(organ: OrganBudget, code: str) -> OrganBudget:
    return replace(organ, stands_for=None, max_gy=None, exact_gy=None, binding_rule=None,
                   review_max_gy=None, review_binding_rule=None, bounds=(), code=code)


def _fraction_counts(fractions: Iterable[int]) -> list[int]:
    counts = list(fractions)
    bad = [n for n in counts if isinstance(n, bool) or not isinstance(n, int) or n < 1]
    if bad or not counts:
        raise InputError(f"fractions {bad or counts!r}: give whole numbers >= 1")
    return counts


# ============================================================================ the situation


@dataclass
class _Planned(Context):
    """The checker's context for a course that is still being planned: no plan, no dose, only
    its number of fractions and technique, so that the rules' scope and alpha/beta are read
    exactly as the checker reads them."""

    planned_fractions: int | None = None

    @property
    def fractions(self) -> int | None:
        return self.planned_fractions


def _planned_context(rules: Sequence[Rule], priors: list[PriorCourse], n: int,
                     technique: str | None, below_conus: bool,
                     ab_overrides: Mapping[str, float]) -> _Planned:
    tech = (given_technique(technique, "the course being planned") if technique
            else Technique(None, "unknown", "technique of the planned course not given"))
    return _Planned(data=PlanData(None, None, None), table=RoleMap.shipped(), explicit={},
                    indication="reirradiation" if priors else None, site=None, technique=tech,
                    levels=None, level_text=None, below_conus=below_conus, conus_text=None,
                    priors=list(priors), interval_months=None, date=None, date_how="unknown",
                    ab_overrides=dict(ab_overrides), rules=list(rules), planned_fractions=n)


def _applicable(ctx: _Planned) -> list[Rule]:
    """The dose rules that would apply to the planned course: the re-irradiation rules on a
    dose when there is a prior course, else the first-course limits on a point maximum."""
    out: list[Rule] = []
    for rule in ctx.rules:
        if ctx.priors and isinstance(rule, ReirradiationRule):
            wanted = rule.quantity not in (None, "interval_months")
        elif not ctx.priors and isinstance(rule, DoseLimitRule):
            wanted = rule.course == "first" and _is_point_max(rule.metric)
        else:
            continue
        if wanted and out_of_scope(rule, ctx) is None:
            out.append(rule)
    return out


def _is_point_max(metric: str | None) -> bool:
    from rtcheck.dvh import parse_metric

    return metric is not None and parse_metric(metric).kind == "max"


def _roles(rule: Rule, below_conus: bool) -> list[str]:
    """The roles the rule reads, as :func:`rtcheck.checker.evaluators.structures.rule_targets`."""
    below = list(getattr(rule, "below_conus_roles", ()))
    if below_conus and below:
        return below
    return [r for r in (rule.role, *getattr(rule, "also_roles", ())) if r]


# ============================================================================ organs


def _organs(ctx: _Planned, n: int) -> list[OrganBudget]:
    rules = _applicable(ctx)
    per_role: dict[str, list[tuple[Rule, RuleBound | None]]] = {}
    stands: dict[str, str] = {}
    for rule in rules:
        roles = _roles(rule, ctx.below_conus)
        summed = [r for r in roles if _priors_give(rule, ctx.priors, r)]
        for role in roles:
            # A role the priors give no maximum for gets no number (prior_unknown), even when
            # another role stands in for the rule: the thecal sac contains the cord, so its
            # prior maximum is at least the cord's and a bound from the cord would be too high.
            per_role.setdefault(role, []).append((rule, _bound(rule, ctx, role, n)))
            if summed and rule.role not in summed and role != rule.role and rule.role:
                stands.setdefault(role, rule.role)
    dropped: dict[str, list[str]] = {}
    for rule, why in dropped_for_fractions(ctx):
        for role in _roles(rule, ctx.below_conus):
            per_role.setdefault(role, [])
            dropped.setdefault(role, []).append(why)
    return [_organ(role, stands.get(role), n, entries, not ctx.priors, dropped.get(role, []))
            for role, entries in per_role.items()]


def _caveats(rule: Rule, ctx: _Planned) -> tuple[str, ...]:
    """What ``rtcheck check`` adds to a finding of ``rule`` applied outside its derivation
    (its own function, so that the words and the conditions are the same)."""
    if not isinstance(rule, ReirradiationRule):
        caveat = technique_caveat(rule, ctx)  # type: ignore[arg-type]
        return (caveat,) if caveat else ()
    probe = finding(rule, "PASS", "")
    outside_derivation(rule, ctx, probe)
    return tuple(probe.details.get("outside_derivation", ()))


def _priors_give(rule: Rule, priors: list[PriorCourse], role: str) -> bool:
    """Every prior course gives the rule's metric for ``role`` (or the rule needs none)."""
    if getattr(rule, "quantity", None) not in _PRIOR_QUANTITIES:
        return True
    return all(_prior_value(rule, p, role) is not None for p in priors)


def _prior_value(rule: Rule, course: PriorCourse, role: str) -> float | None:
    value = course.value(rule.metric, role) if rule.metric else None
    if value is None or math.isnan(value) or not course.fractions:
        return None
    return value


def _organ(role: str, stands_for: str | None, n: int,
           entries: list[tuple[Rule, RuleBound | None]], first: bool,
           dropped: Sequence[str] = ()) -> OrganBudget:
    bounds = tuple(b for _, b in entries if b is not None)
    not_summed = tuple(r.id for r, b in entries if b is None)
    caveats = tuple(dict.fromkeys([c for b in bounds for c in b.outside_derivation]
                                  + list(dropped)))

    def organ(code: str, binding: RuleBound | None, review: RuleBound | None) -> OrganBudget:
        exact = binding.max_gy if binding and code == BOUNDED else None
        review_gy = review.review_max_gy if review else None
        return OrganBudget(
            role=role, stands_for=stands_for, fractions=n,
            max_gy=reported(exact, binding.strict) if binding and exact is not None else None,
            exact_gy=exact, binding_rule=binding.rule if binding else None,
            # a WARN band is not strict: its upper end is allowed
            review_max_gy=reported(review_gy, review.strict and review.warn_up_to is None)
            if review and review_gy is not None else None,
            review_binding_rule=review.rule if review and review_gy is not None else None,
            bounds=bounds, not_summed=not_summed, code=code, first_course=first,
            outside_derivation=caveats)

    limiting = [b for b in bounds if b.code != NO_RULE]
    if not limiting:
        return organ(NO_RULE, None, None)
    unknown = [b for b in limiting if b.code == PRIOR_UNKNOWN]
    if unknown:  # one rule that cannot be bounded leaves the organ's dose unknown
        return organ(PRIOR_UNKNOWN, unknown[0], None)
    review = None
    if all(b.review_max_gy is not None for b in limiting):
        review = min(limiting, key=lambda b: (b.review_max_gy, not b.strict))
    exhausted = [b for b in limiting if b.code == EXHAUSTED]
    if exhausted:  # no dose within the limits; the WARN band may still leave some
        return organ(EXHAUSTED, exhausted[0], review)
    binding = min(limiting, key=lambda b: (b.max_gy, not b.strict))
    return organ(BOUNDED, binding, review)


def reported(exact_gy: float, strict: bool) -> float:
    """``exact_gy`` rounded down to :data:`REPORT_STEP_GY`; for a strict limit, a value on a
    step is moved one step below (the limit itself does not satisfy ``<``).

    The product is rounded to 6 decimals first so that 20.3 (20.299999999999997 in binary)
    stays 20.3 rather than 20.29.
    """
    if math.isinf(exact_gy):
        return exact_gy
    steps = round(exact_gy / REPORT_STEP_GY, 6)
    whole = math.floor(steps)
    if strict and whole == steps:
        whole -= 1
    return round(max(whole, 0) * REPORT_STEP_GY, 2)


# ============================================================================ one rule


def _bound(rule: Rule, ctx: _Planned, role: str, n: int) -> RuleBound:
    """What ``rule`` allows the planned course of ``n`` fractions on ``role``."""
    limit = _limit(rule, n)
    ab, _ = ctx.alpha_beta(rule)
    quantity = getattr(rule, "quantity", None) or "first_course"
    word = "BED" if quantity in _BED_QUANTITIES else "EQD2"

    caveats = _caveats(rule, ctx)

    def bound(code: str, text: str, prior: float | None = None, dose: float | None = None,
              review: float | None = None) -> RuleBound:
        return RuleBound(rule=rule.id, quantity=quantity, limit=limit.limit,
                         operator=limit.operator, unit=rule.unit, alpha_beta=ab,
                         warn_up_to=limit.warn_up_to, prior_gy=prior, max_gy=dose,
                         review_max_gy=review, strict=limit.operator == "<", code=code,
                         text=text, outside_derivation=caveats)

    if limit.operator not in ("<", "<="):
        return bound(NO_RULE, f"{limit.label(rule.unit)}: not an upper bound")
    priors = _prior_values(rule, ctx.priors, role, ab, word)
    if priors is None:
        return bound(PRIOR_UNKNOWN, f"the prior course(s) give no {rule.metric} of the {role}")
    prior = sum(priors) if priors else None
    target = _target(quantity, limit.limit, prior or 0.0, priors)
    band = (_target(quantity, limit.warn_up_to, prior or 0.0, priors)
            if limit.warn_up_to is not None else None)
    if target is None or target < 0 or (target == 0 and limit.operator == "<"):
        text = (f"no dose satisfies {limit.label(rule.unit)}: the prior course(s) already give "
                f"{word} {prior or 0.0:.2f} Gy")
        if band is not None and band > 0:  # the band's upper end is allowed (WARN)
            return bound(EXHAUSTED, f"{text}; up to the WARN band's {limit.warn_up_to:g}: "
                         f"{word} of this course up to {band:.3f} Gy", prior, None,
                         _physical(band, n, ab, word, rule))
        return bound(EXHAUSTED, text, prior)
    dose = _physical(target, n, ab, word, rule)
    review = dose
    if band is not None and band >= 0:
        review = _physical(band, n, ab, word, rule)
    return bound(BOUNDED, f"{word} of this course up to {target:.3f} Gy", prior, dose, review)


def _limit(rule: Rule, n: int) -> Limit:
    """The rule's limit for ``n`` fractions (the rule is in scope, so there is one)."""
    limit = rule.limit_for(n) if isinstance(rule, DoseLimitRule) else \
        getattr(rule, "limits", (None,))[0]
    if limit is None:
        raise ValueError(f"rule {rule.id} states no limit for {n} fractions")
    return limit


def _prior_values(rule: Rule, priors: list[PriorCourse], role: str, ab: float | None,
                  word: str) -> list[float] | None:
    """Each prior course's EQD2 (BED) of the rule's metric on ``role``; None if one is unknown."""
    if getattr(rule, "quantity", None) not in _PRIOR_QUANTITIES:
        return []
    convert = bed if word == "BED" else eqd2
    out = []
    for p in priors:
        value = _prior_value(rule, p, role)
        if value is None or ab is None:
            return None
        out.append(float(convert(value, p.fractions, ab)))  # type: ignore[arg-type]
    return out


def _target(quantity: str, limit: float, prior: float, priors: list[float]) -> float | None:
    """The largest EQD2 (BED, or physical dose for a first-course limit) of this course that
    meets ``limit``; None when no dose does."""
    if quantity in ("cumulative_eqd2_max", "cumulative_bed_max"):
        return limit - prior
    if quantity == "each_course_bed_max":
        return limit if all(v <= limit for v in priors) else None
    if quantity == "course_share":
        if limit >= 1:
            return math.inf
        return limit * prior / (1.0 - limit)
    return limit  # course_eqd2_max, first_course


def _physical(target: float, n: int, ab: float | None, word: str, rule: Rule) -> float:
    """The physical point maximum in ``n`` fractions whose EQD2 (BED) is ``target``; a
    physical-dose limit (no conversion) is itself."""
    if math.isinf(target):
        return math.inf
    converts = isinstance(rule, ReirradiationRule) or getattr(rule, "convert", None)
    if ab is None or not converts:
        return target
    return float(isoeffective_dose(target, n, ab, quantity=word, model=rule.model or "LQ"))


# ============================================================================ intervals


def _intervals(rules: Sequence[Rule], priors: list[PriorCourse], technique: str | None,
               below_conus: bool, date: dt.date | None) -> list[IntervalBound]:
    if not priors:
        return []
    ctx = _planned_context(rules, priors, 1, technique, below_conus, {})
    out = []
    for rule in rules:
        if not (isinstance(rule, ReirradiationRule) and rule.quantity == "interval_months"):
            continue
        # the interval rules' scope does not depend on the number of fractions
        ctx.planned_fractions = None
        if out_of_scope(rule, ctx) is not None:
            continue
        out.append(_interval(rule, priors, date, _caveats(rule, ctx)))
    return out


def _interval(rule: ReirradiationRule, priors: list[PriorCourse], date: dt.date | None,
              caveats: tuple[str, ...] = ()) -> IntervalBound:
    """The interval rule as ``rtcheck check`` evaluates it (reirradiation._interval), for a
    course starting on ``date``."""
    limit: Limit = rule.limits[0]
    known = [p for p in priors if p.end_date is not None]
    latest = max(known, key=lambda p: p.end_date) if len(known) == len(priors) else None  # type: ignore[arg-type, return-value]
    end = latest.end_date if latest else None
    how = latest.end_how if latest else "unknown"
    earliest = _earliest(end, limit.limit) if end else None
    estimate = how == END_ESTIMATE
    earliest_pass = (_earliest(end, limit.limit + ESTIMATE_MARGIN_MONTHS)
                     if end and estimate and limit.operator in (">=", ">") else earliest)
    months = status = satisfied = None
    if date is None:
        text = "give --date to check a start date"
    elif end is None:
        status = "NOT_EVALUATED"
        text = "last fraction of the prior course unknown: " + "; ".join(
            f"{p.label}: {p.end_text}" for p in priors if p.end_date is None)
    elif end > date:
        status = "NOT_EVALUATED"
        text = (f"the prior course ends {end} ({latest.end_text}), after this course's "  # type: ignore[union-attr]
                f"date {date} (--date)")
    else:
        months = months_between(end, date)
        satisfied = limit.satisfied(months)
        status = limit.status(months, rule.severity)
        text = f"{months:.2f} months; required {limit.label('months')}"
        if estimate and status == "PASS" and months < limit.limit + ESTIMATE_MARGIN_MONTHS:
            status = "WARN"
            text += (f"; the end of the prior course is an estimate from its plan date and the "
                     f"interval is within {ESTIMATE_MARGIN_MONTHS:g} month of the limit: "
                     "confirm with the treatment records")
        if caveats and status == "PASS":
            status = "WARN"
    return IntervalBound(rule=rule.id, limit_months=limit.limit, operator=limit.operator,
                         prior_end=end, prior_end_how=how, earliest=earliest, date=date,
                         months=months, satisfied=satisfied, status=status, text=text,
                         earliest_pass=earliest_pass, outside_derivation=caveats)


def _earliest(end: dt.date, months: float) -> dt.date:
    """The first day at least ``months`` calendar months after ``end``."""
    day = add_months(end, int(months))
    while months_between(end, day) < months:
        day += dt.timedelta(days=1)
    return day
