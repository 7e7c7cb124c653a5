"""Check a plan against protocol rules: fractionation, SBRT ranges, dose limits, re-irradiation.

:func:`check` takes a loaded plan (:class:`~rtcheck.model.PlanData`), the protocols
(default: the bone-metastasis referential), the facts DICOM does not hold (indication, site,
technique, vertebral level, prior courses) and returns a :class:`~rtcheck.checker.findings.CheckResult`:
one :class:`~rtcheck.checker.findings.Finding` per rule that applies, the rules skipped and why
(:class:`~rtcheck.checker.findings.Skip`), notes, and the verdict.

Statuses, verdict levels (FAIL > NOT_EVALUATED > REVIEW > PASS) and exit codes are defined in
:mod:`rtcheck.checker.findings`; each rule kind is evaluated by its module in :mod:`rtcheck.checker.evaluators`;
prior courses are read by :mod:`rtcheck.checker.courses`; the technique is decided as
:mod:`rtcheck.checker.technique` says.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from os import PathLike
from typing import Any

from rtcheck.case.facts import merge_case
from rtcheck.checker.courses import (
    PriorCourse,
    parse_date,
    parse_prior_summary,
    prior_from_plan,
    read_priors,
    registrations_for,
)
from rtcheck.checker.evaluators import EVALUATORS
from rtcheck.checker.evaluators.case import (
    CASE_KINDS,
    measurements,
    public_measurements,
)
from rtcheck.checker.evaluators.context import Context
from rtcheck.checker.findings import (
    EXIT_CODES,
    FACT_MISSING,
    STATUSES,
    CheckResult,
    Finding,
    Note,
    Skip,
    verdict_of,
)
from rtcheck.checker.technique import (
    TECHNIQUES,
    Technique,
    given_technique,
    technique_from_scheme,
)
from rtcheck.errors import InputError
from rtcheck.model import PlanData
from rtcheck.rules import FractionationRule, Rule
from rtcheck.rules.protocols import (
    SITES,
    Protocol,
    load_protocol,
    parse_vertebral_level,
)
from rtcheck.rules.roles import RoleMap

DEFAULT_PROTOCOLS = ("bone-metastases-2026", "bone-metastases-case-2026")
#: The referential's case checks (patient facts, contours): added to the protocols when a case
#: is given and none of them holds case rules.
CASE_PROTOCOL = "bone-metastases-case-2026"

__all__ = ["DEFAULT_PROTOCOLS", "EXIT_CODES", "STATUSES", "CheckResult", "Finding", "Note",
           "PriorCourse", "Skip", "check", "parse_prior_summary",
           "prior_from_plan"]


def check(plan: PlanData, protocols: Iterable[str | PathLike | Protocol] | None = None, *,
          indication: str | None = None, site: str | None = None, technique: str | None = None,
          vertebral_level: str | None = None,
          priors: Sequence[str | PriorCourse | PlanData] | str | PriorCourse | None = None,
          interval_months: float | None = None, date: dt.date | str | None = None,
          alpha_beta: Mapping[str, float] | None = None,
          explicit_roles: Mapping[str, str] | None = None,
          roles: RoleMap | Mapping[str, Iterable[str]] | str | PathLike | None = None,
          case: Any = None,
          registrations: Iterable[str | PathLike] | None = None,
          uncertainty_mm: float | None = None,
          ) -> CheckResult:
    """Check a plan against protocol rules.

    Parameters
    ----------
    plan : PlanData
        The plan, its dose and structure set (:func:`rtcheck.load_plan`); parts may be None.
    protocols : iterable of str, path or Protocol, optional
        Shipped ids, protocol files or loaded protocols (default: the referential,
        ``bone-metastases-2026``; TG-101 is ``"tg101"``).
    indication : str, optional
        Tableau 5 row: ``pain``, ``pain-fracture-risk``, ``post-operative``,
        ``cord-compression``, ``reirradiation``, ``oligometastatic``.
    site : str, optional
        ``spine``, ``sacrum`` or ``extraspinal``. It implies nothing about the technique.
    technique : str, optional
        ``sbrt`` or ``conventional``. When absent: the indication's scheme the plan matches,
        else rtcheck's criterion on the plan's numbers (:mod:`rtcheck.checker.technique`), else unknown
        (then the rules of both techniques are applied).
    vertebral_level : str, optional
        ``T4`` or a span ``T3-T5`` (oesophagus warning; below the conus the cord rules read
        the cauda equina / thecal sac).
    priors : prior course(s), optional
        Summaries (``"30Gy/10 cord_dmax=31Gy end=2025-03-14"``), :class:`PriorCourse`
        objects or loaded prior plans (:class:`PlanData`).
    interval_months : float, optional
        Months since the previous course's last fraction, when given rather than dated.
    date : date or ``YYYY-MM-DD``, optional
        Date of this course (default: the plan's RTPlanDate).
    alpha_beta : mapping, optional
        ``{role or rule id: alpha/beta}`` overriding the rules' alpha/beta.
    explicit_roles : mapping role -> structure name, optional
        ``--map`` choices.
    roles : RoleMap, mapping role -> names, or roles file, optional
        Synonyms added to the shipped structure-role table.
    registrations : iterable of paths, optional
        DICOM spatial registrations (REG, rigid) relating a prior course's frame of reference
        to this plan's, for the voxel-wise cumulative dose of the re-irradiation findings; a
        REG found beside a prior plan is used too (:mod:`rtcheck.accumulation.registration`).
    uncertainty_mm : float, optional
        Set-up uncertainty of the voxel-wise envelope (default
        :data:`rtcheck.accumulation.DEFAULT_UNCERTAINTY_MM`).
    case : CaseFacts, mapping or case file (.toml, .json), optional
        Facts DICOM does not hold, for the rules of kinds ``case`` and ``systemic_treatments``
        (:mod:`rtcheck.case`); its indication, site and vertebral levels stand in for the
        keywords not given (and must agree with those given). When no protocol holds such
        rules, the referential's case checks (:data:`CASE_PROTOCOL`) are added.

    Returns
    -------
    CheckResult

    Raises
    ------
    InputError
        Bad input: unknown protocol, indication, site, technique, role or level, malformed
        prior summary or alpha/beta.
    """
    table = RoleMap.shipped()
    if roles is not None:
        table = table.extended(roles)
    case_facts, indication, site, vertebral_level = merge_case(case, indication, site,
                                                               vertebral_level)
    protos = _load_protocols(protocols, table)
    if case_facts is not None and not any(r.kind in CASE_KINDS for p in protos for r in p.rules):
        # case facts are read by the case checks: a case given without them adds them
        protos += _load_protocols([CASE_PROTOCOL], table)
    rules = [r for p in protos for r in p.rules]
    explicit = dict(explicit_roles or {})
    ab = dict(alpha_beta or {})
    _validate(rules, table, indication, site, technique, explicit, ab, interval_months)
    levels = _parse_levels(vertebral_level)
    _check_site_and_level(site, levels, vertebral_level)
    conus, conus_text = _conus(protos)
    when, how = _course_date(date, plan)
    frac_rule = next((r for r in rules if isinstance(r, FractionationRule)
                      and indication and r.indication == indication), None)
    plan_problem = _plan_inconsistency(plan)
    ctx = Context(data=plan, table=table, explicit=explicit, indication=indication, site=site,
                  technique=_technique(technique, frac_rule, site, plan, plan_problem),
                  levels=levels, level_text=vertebral_level,
                  below_conus=site == "sacrum" or (levels is not None and conus is not None
                                                   and levels[0] > conus),
                  conus_text=conus_text if site != "sacrum" else "site sacrum",
                  priors=_priors(priors, plan, table, explicit, rules),
                  interval_months=interval_months, date=when, date_how=how, ab_overrides=ab,
                  plan_problem=plan_problem, rules=rules, case=case_facts,
                  uncertainty_mm=_uncertainty(uncertainty_mm))
    ctx.registrations = registrations_for(registrations or (), ctx.priors,
                                          plan.dose.frame_of_reference_uid if plan.dose else None)
    for w in plan.warnings:
        ctx.note("loader", w)
    for n in table.notes:
        ctx.note("roles", n)
    ctx.note("technique", ctx.technique.text)
    for rule in rules:
        ctx.findings += EVALUATORS[rule.kind](rule, ctx)
    if any(r.kind in CASE_KINDS for r in rules) and plan.structure_set is not None:
        measurements(ctx)  # shown on every plan with the structures, whether a rule used them
    if plan.structure_set is not None:
        # ROIs read on first use (load_plan(contours="when_used")): their warnings came now
        for w in plan.structure_set.warnings:
            if w not in plan.warnings:
                ctx.note("loader", w)
    return _result(ctx, protos)


# ============================================================================ building blocks


def _validate(rules: list[Rule], table: RoleMap, indication, site, technique, explicit,
              alpha_beta, interval_months) -> None:
    indications = sorted({r.indication for r in rules
                          if isinstance(r, FractionationRule) and r.indication})
    if indication is not None and indication not in indications:
        raise InputError(f"unknown indication {indication!r}; the protocols know: "
                         f"{', '.join(indications) or 'none'}")
    if site is not None and site not in SITES:
        raise InputError(f"unknown site {site!r}; expected {', '.join(SITES)}")
    if technique is not None and technique not in TECHNIQUES:
        raise InputError(f"unknown technique {technique!r}; expected {', '.join(TECHNIQUES)}")
    unknown = sorted(set(explicit) - set(table.roles))
    if unknown:
        raise InputError(f"--map names unknown role(s) {', '.join(unknown)}")
    converting = {r.id for r in rules if r.converts}
    for key, value in alpha_beta.items():
        if key not in table.roles and key not in converting:
            raise InputError(f"--alpha-beta {key}=...: not a role nor the id of a rule that "
                             f"converts doses ({', '.join(sorted(converting))})")
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise InputError(f"--alpha-beta {key}={value!r}: must be a number > 0 (Gy)")
    if interval_months is not None and not (
            isinstance(interval_months, (int, float)) and math.isfinite(interval_months)
            and interval_months >= 0):
        raise InputError(f"interval between courses {interval_months!r} months: must be a "
                         "finite number >= 0")


def _uncertainty(value: float | None) -> float | None:
    if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value)
                                  and 0 <= value <= 50):
        raise InputError(f"--uncertainty-mm {value!r}: must be a number of mm within 0-50")
    return value


def _missing_facts(ctx: Context) -> list[Finding]:
    """One NOT_EVALUATED finding per fact a rule needed and was not given.

    Every plan has an indication and a site: a rule skipped only because one was not given
    (the fractionation rows, the SBRT ranges, the oesophagus remark) was not evaluated, and
    the plan cannot PASS on the rules that happened to apply.
    """
    needs: dict[str, list[str]] = {}
    for s in ctx.skipped:
        if s.code == FACT_MISSING and s.needs:
            needs.setdefault(s.needs, []).append(s.rule)
    return [Finding(rule=f"facts.{need}", protocol="", kind="facts", status="NOT_EVALUATED",
                    reason=f"{need.replace('_', ' ')} not given: {', '.join(rules)} not "
                           f"evaluated (give --{need.replace('_', '-')})",
                    source="rtcheck: facts DICOM does not hold", code=FACT_MISSING,
                    missing=need, details={"rules": rules})
            for need, rules in needs.items()]


#: The beams' doses per fraction times the fractions may differ from the prescription this much
#: (ratio) before the plan's fraction count is not trusted: beam doses are given at a reference
#: point, which need not be the prescription point, so only a gross contradiction counts.
PLAN_CONSISTENCY_FACTOR = 1.5


def _plan_inconsistency(data: PlanData) -> str | None:
    """Why the plan's prescription, fractions and beam doses contradict each other, or None.

    A plan that says 30 Gy in 10 fractions while its beams deliver 9 Gy per fraction is either
    90 Gy in 10 or 27 Gy in 3: the number of fractions, which selects the rules, is unknown.
    """
    plan = data.plan
    if plan is None or len(plan.fraction_groups) != 1 or not plan.prescription_gy:
        return None
    group = plan.fraction_groups[0]
    per_fraction = sum(group.beam_doses_gy.values()) if group.beam_doses_gy else 0.0
    if not group.fractions or per_fraction <= 0:
        return None
    total = per_fraction * group.fractions
    ratio = total / plan.prescription_gy
    if 1 / PLAN_CONSISTENCY_FACTOR <= ratio <= PLAN_CONSISTENCY_FACTOR:
        return None
    return (f"the plan's beams deliver {per_fraction:.3g} Gy per fraction, {total:.4g} Gy in "
            f"{group.fractions} fractions, but it prescribes {plan.prescription_gy:g} Gy "
            f"({ratio:.2f} x): the fraction count or the prescription is wrong")


def _check_site_and_level(site: str | None, levels: tuple[int, int] | None,
                          text: str | None) -> None:
    """A vertebral level contradicts an extraspinal site; a sacral site needs a sacral level."""
    if levels is None or site is None:
        return
    if site == "extraspinal":
        raise InputError(f"--vertebral-level {text} with --site extraspinal: a vertebral level "
                         "is a spinal (or sacral) site; give one or the other")
    if site == "sacrum" and levels[0] < parse_vertebral_level("S1"):
        raise InputError(f"--vertebral-level {text} with --site sacrum: the level lies above "
                         "the sacrum (S1-S5); use --site spine for a lumbar or thoracic level")


def _result(ctx: Context, protos: list[Protocol]) -> CheckResult:
    ctx.findings += _missing_facts(ctx)
    if not ctx.findings:
        ctx.note("nothing_evaluated", "no rule applied to this plan: nothing was evaluated "
                 "(give --indication, --site, prior courses or another protocol)")
    stand_ins = {(f.structure, f.stands_for) for f in ctx.findings if f.stands_for}
    for structure, role in sorted(stand_ins, key=str):
        ctx.note("surrogate", f"{structure!r} stood in for the {role} (not contoured or not "
                 "known in every course), which the rule's source used", structure)
    return CheckResult(verdict=verdict_of({f.status for f in ctx.findings}),
                       findings=ctx.findings, notes=ctx.notes, skipped=ctx.skipped,
                       roles=_roles_to_report(ctx),
                       plan=_plan_summary(ctx.data, ctx.date, ctx.date_how),
                       facts=_facts(ctx), protocols=[p.id for p in protos], dvhs=ctx.dvhs)


def _roles_to_report(ctx: Context) -> dict[str, Any]:
    """The role matches the report shows: every role matched or ambiguous, and a missing role
    only when a rule's own structure is that role (a cord PRV read beside the thecal sac, when
    absent, is not a problem to report)."""
    primary = {r.role for r in ctx.rules if r.role}
    return {role: m for role, m in ctx.matches.items()
            if m.status != "missing" or role in primary}


def _facts(ctx: Context) -> dict[str, Any]:
    return {"indication": ctx.indication, "site": ctx.site,
            "technique": ctx.technique.value, "technique_how": ctx.technique.how,
            "technique_text": ctx.technique.text, "vertebral_level": ctx.level_text,
            "below_conus": ctx.below_conus if ctx.levels or ctx.site == "sacrum" else None,
            "interval_months": ctx.interval_months,
            "alpha_beta_overrides": ctx.ab_overrides, "map": ctx.explicit,
            "priors": [p.as_dict() for p in ctx.priors],
            "case": ctx.case.as_dict() if ctx.case is not None else None,
            "measurements": public_measurements(ctx.measures)}


def _load_protocols(protocols, table: RoleMap) -> list[Protocol]:
    items = list(DEFAULT_PROTOCOLS if protocols is None else protocols)
    if not items:
        raise InputError("no protocol given")
    out = [p if isinstance(p, Protocol) else load_protocol(p, roles=table) for p in items]
    ids = [p.id for p in out]
    if len(set(ids)) < len(ids):
        raise InputError(f"the same protocol given twice: {', '.join(ids)}")
    return out


def _conus(protos: list[Protocol]) -> tuple[int | None, str | None]:
    """The lowest vertebral level the conus may reach, as the protocols state it."""
    for p in protos:
        if p.conus_lowest_level:
            return (parse_vertebral_level(p.conus_lowest_level),
                    f"the conus may reach {p.conus_lowest_level}: {p.conus_source}")
    return None, None


def _priors(priors, data: PlanData, table: RoleMap, explicit: Mapping[str, str],
            rules: list[Rule]) -> list[PriorCourse]:
    return read_priors(priors, data, table, explicit, rules)


def _technique(technique: str | None, frac_rule: FractionationRule | None, site: str | None,
               data: PlanData, plan_problem: str | None = None) -> Technique:
    """SBRT or conventional: given, else the indication's scheme, else the criterion."""
    if technique is not None:
        return given_technique(technique)
    if plan_problem:
        return Technique(None, "unknown", f"technique unknown: {plan_problem}")
    total = data.plan.prescription_gy if data.plan else None
    n = data.fractions
    if frac_rule is not None and total is not None and n:
        from rtcheck.rules.fractionation_tiers import matching_scheme_technique

        found = matching_scheme_technique(frac_rule, total, n, site)
        if found is not None:
            return Technique(found[0], "indication_scheme", found[1])
    return technique_from_scheme(total, n)


def _parse_levels(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    parts = [t.strip() for t in text.split("-")]
    try:
        values = [parse_vertebral_level(t) for t in parts]
    except ValueError as exc:
        raise InputError(f"--vertebral-level {text!r}: {exc}") from exc
    if len(values) not in (1, 2):
        raise InputError(f"--vertebral-level {text!r}: give one level (T4) or a span (T3-T5)")
    return min(values), max(values)


def _course_date(date, data: PlanData) -> tuple[dt.date | None, str]:
    if date is not None:
        if isinstance(date, str):
            date = parse_date(date, "--date")
        return date, "given"
    if data.plan is not None and data.plan.date is not None:
        return data.plan.date, "RTPlanDate"
    return None, "unknown"


def _plan_summary(data: PlanData, date: dt.date | None, how: str) -> dict[str, Any]:
    plan, dose = data.plan, data.dose
    out: dict[str, Any] = {"label": None, "uid": None, "patient_id": None,
                           "fractions": data.fractions, "prescription_gy": None,
                           "date": date.isoformat() if date else None, "date_from": how,
                           "dose_units": dose.units if dose else None, "paths": []}
    if plan is not None:
        out.update(label=plan.label, uid=plan.uid, patient_id=plan.patient_id,
                   prescription_gy=plan.prescription_gy, intent=plan.intent)
        out["paths"] += [plan.path] if plan.path else []
    if dose is not None:
        out["paths"] += list(dose.paths)
    if data.structure_set is not None and data.structure_set.path:
        out["paths"].append(data.structure_set.path)
    return out
