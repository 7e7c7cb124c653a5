"""Check a plan against protocol rules: fractionation, SBRT ranges, dose limits, re-irradiation.

:func:`check` takes a loaded plan (:class:`~rtcheck.model.PlanData`), the protocols
(default: the bone-metastasis referential), the facts DICOM does not hold (indication, site,
vertebral level, prior courses) and returns a :class:`CheckResult`: one :class:`Finding` per
rule and structure, an overall verdict and warnings.

Statuses
--------
``PASS``
    evaluated and within the limit.
``FAIL`` / ``WARN``
    evaluated and outside the limit (the rule's severity), or in a WARN band.
``NOT_EVALUATED``
    the rule applies but could not be evaluated: no or ambiguous structure for its role,
    structure partly outside the dose grid, unknown number of fractions, dose not in Gy,
    missing prior dose or date... The reason says which. A rule is never PASS when it could
    not be evaluated.

A rule outside its own scope (a 10-fraction plan for a table of 1-5 fraction limits, a
re-irradiation rule without any prior course, a fractionation row of another indication) gives
no finding; it is listed in :attr:`CheckResult.skipped` with the reason.

Verdict: ``FAIL`` if any finding is FAIL; otherwise ``NOT_EVALUATED`` if any finding is
NOT_EVALUATED or nothing at all was evaluated; otherwise ``PASS`` (WARN findings do not change
the verdict but are listed). Exit codes of ``rtcheck check``: 0 PASS, 1 FAIL, 2 bad input,
3 NOT_EVALUATED.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

from rtcheck.errors import InputError
from rtcheck.model import PlanData, Structure
from rtcheck.protocols import (
    SITES,
    Protocol,
    Rule,
    load_protocol,
    parse_vertebral_level,
)
from rtcheck.radiobiology import bed, eqd2, parse_dose, split_scheme
from rtcheck.roles import RoleMap, RoleMatch

DEFAULT_PROTOCOLS = ("bone-metastases-2026",)
STATUSES = ("PASS", "WARN", "FAIL", "NOT_EVALUATED")
TECHNIQUES = ("sbrt", "conventional")
#: Mean Gregorian month in days: interval in months = days / 30.4375.
DAYS_PER_MONTH = 30.4375
EXIT_CODES = {"PASS": 0, "FAIL": 1, "NOT_EVALUATED": 3}


# ============================================================================ results


@dataclass
class Finding:
    """The outcome of one rule for one structure (or for the plan as a whole).

    Attributes
    ----------
    rule, protocol, kind : str
    structure, role : str or None
        The structure name evaluated and the role it stands for.
    metric : str or None
        ``Dmax``, ``D0.35cc``, ``prescription``, ``cumulative EQD2 of Dmax``...
    value : float or None
        The number compared with the limit, in ``unit``.
    limit : float or str or None
        The threshold (a number), or the listed schemes/ranges (text).
    operator : str or None
        How ``value`` must compare with ``limit`` to PASS.
    unit : str or None
    alpha_beta : float or None
        alpha/beta (Gy) used for a conversion; None when the rule converts nothing.
    model : str or None
    status : str
        ``PASS``, ``WARN``, ``FAIL`` or ``NOT_EVALUATED``.
    reason : str
        Why, in words, with the numbers.
    source : str
        The rule's source (table/section); ``cites`` the papers.
    details : dict
        Extra numbers: metrics shown beside the value, EQD2 of each course, BED span...
    """

    rule: str
    protocol: str
    kind: str
    status: str
    reason: str
    source: str
    structure: str | None = None
    role: str | None = None
    metric: str | None = None
    value: float | None = None
    limit: float | str | None = None
    operator: str | None = None
    unit: str | None = None
    alpha_beta: float | None = None
    model: str | None = None
    cites: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule, "protocol": self.protocol, "kind": self.kind,
            "structure": self.structure, "role": self.role, "metric": self.metric,
            "value": _json_number(self.value), "limit": _json_number(self.limit),
            "operator": self.operator, "unit": self.unit,
            "alpha_beta": self.alpha_beta if self.alpha_beta is not None else "none",
            "model": self.model, "status": self.status, "reason": self.reason,
            "source": self.source, "cites": list(self.cites),
            "details": {k: _json_number(v) for k, v in self.details.items()},
        }


@dataclass
class CheckResult:
    """What :func:`check` returns.

    Attributes
    ----------
    verdict : str
        ``PASS``, ``FAIL`` or ``NOT_EVALUATED`` (see the module docstring).
    findings : list of Finding
    warnings : list of str
        Loader, DVH and role-table notes; anything that qualifies the findings.
    skipped : list of dict
        Rules outside their scope for this plan: ``{"rule": id, "reason": text}``.
    roles : dict role -> RoleMatch
        Which structure matched which role (for the roles the rules used).
    plan : dict
        The plan's facts used (label, UID, fractions, prescription, date, dose units).
    facts : dict
        The facts given (indication, site, technique, vertebral level, priors...).
    protocols : list of str
    dvhs : list of DVH
        The DVHs the rules used (for plots; not part of the JSON document).
    """

    verdict: str
    findings: list[Finding]
    warnings: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    roles: dict[str, RoleMatch] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    protocols: list[str] = field(default_factory=list)
    dvhs: list[Any] = field(default_factory=list, repr=False)

    @property
    def exit_code(self) -> int:
        """0 PASS, 1 FAIL, 3 NOT_EVALUATED (2, bad input, is raised as InputError instead)."""
        return EXIT_CODES[self.verdict]

    def counts(self) -> dict[str, int]:
        return {s: sum(f.status == s for f in self.findings) for s in STATUSES}

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``rtcheck check --format json`` (schema in the README)."""
        return {
            "plan": self.plan, "verdict": self.verdict, "counts": self.counts(),
            "protocols": self.protocols, "facts": self.facts,
            "roles": {r: m.as_dict() for r, m in self.roles.items()},
            "findings": [f.as_dict() for f in self.findings],
            "skipped": self.skipped, "warnings": self.warnings,
        }


@dataclass
class PriorCourse:
    """A previous course, as far as the re-irradiation rules need it.

    Attributes
    ----------
    label : str
        How the course was given (``summary '30Gy/10 cord_dmax=31Gy ...'`` or a path).
    total_dose : float or None
        Prescribed total dose (Gy).
    fractions : int or None
    cord_dmax : float or None
        Physical point maximum (Gy) of the spinal cord role in that course; None when unknown.
    date : datetime.date or None
    notes : list of str
        How the numbers were obtained (role match, coverage...).
    """

    label: str
    total_dose: float | None = None
    fractions: int | None = None
    cord_dmax: float | None = None
    date: dt.date | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "total_dose_gy": self.total_dose, "fractions": self.fractions,
                "cord_dmax_gy": self.cord_dmax,
                "date": self.date.isoformat() if self.date else None, "notes": self.notes}


# ============================================================================ prior courses

_SUMMARY_KEYS = ("cord_dmax", "date")


def parse_prior_summary(text: str) -> PriorCourse:
    """A prior course from its summary, e.g. ``"30Gy/10 cord_dmax=31Gy date=2025-03-01"``.

    The scheme comes first (any form :func:`rtcheck.radiobiology.parse_scheme` reads); then
    ``cord_dmax=`` (the spinal cord's physical point maximum in that course, Gy) and ``date=``
    (YYYY-MM-DD), each optional: a missing one makes the rules that need it NOT_EVALUATED.

    Raises
    ------
    InputError
        For text that does not follow this form.
    """
    where = f"--prior-summary {text!r}"
    try:
        scheme, rest = split_scheme(text)
    except ValueError as exc:
        raise InputError(f"{where}: start with the scheme, e.g. 30Gy/10 ({exc})") from exc
    course = PriorCourse(label=f"summary '{text}'", total_dose=scheme.total_gy,
                         fractions=scheme.fractions)
    for token in rest.replace(",", " ").split():
        key, sep, value = token.partition("=")
        key = key.lower()
        if not sep or key not in _SUMMARY_KEYS:
            raise InputError(f"{where}: unknown item {token!r} (expected "
                             f"{', '.join(k + '=...' for k in _SUMMARY_KEYS)})")
        if key == "cord_dmax":
            try:
                course.cord_dmax = parse_dose(value)
            except ValueError as exc:
                raise InputError(f"{where}: cord_dmax={value!r} is not a dose (e.g. 31Gy)") from exc
        else:
            course.date = _parse_date(value, where)
    return course


def prior_from_plan(data: PlanData, role_table: RoleMap, explicit: Mapping[str, str],
                    label: str) -> PriorCourse:
    """A prior course from a loaded plan: its fractions, date and cord point maximum."""
    plan = data.plan
    course = PriorCourse(label=label, total_dose=plan.prescription_gy if plan else None,
                         fractions=data.fractions, date=plan.date if plan else None)
    structures = data.structure_set.structures if data.structure_set else []
    names = [s.name for s in structures]
    usable = {r: n for r, n in explicit.items() if n in names}
    match = role_table.match(names, explicit=usable, roles=["spinal_cord"])["spinal_cord"]
    if match.status != "matched":
        course.notes.append(f"cord Dmax unknown: {match.how}")
        return course
    if data.dose is None or data.dose.units != "GY":
        course.notes.append("cord Dmax unknown: no dose in Gy in the prior course")
        return course
    from rtcheck.dvh import compute_dvh

    dvh = compute_dvh(_structure(data, match.name), data.dose)  # type: ignore[arg-type]
    if not dvh.fully_covered:
        course.notes.append(f"cord Dmax unknown: {match.name!r} only {dvh.covered_fraction:.1%} "
                            "inside the prior dose grid")
        return course
    course.cord_dmax = dvh.dmax
    course.notes.append(f"cord Dmax {dvh.dmax:.2f} Gy from {match.how}")
    return course


# ============================================================================ the check


def check(plan: PlanData, protocols: Iterable[str | PathLike | Protocol] | None = None, *,
          indication: str | None = None, site: str | None = None, technique: str | None = None,
          vertebral_level: str | None = None,
          priors: Sequence[str | PriorCourse | PlanData] | str | PriorCourse | None = None,
          interval_months: float | None = None, date: dt.date | str | None = None,
          alpha_beta: Mapping[str, float] | None = None,
          explicit_roles: Mapping[str, str] | None = None,
          roles: RoleMap | Mapping[str, Iterable[str]] | str | PathLike | None = None,
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
        ``spine``, ``sacrum`` or ``extraspinal`` (SBRT ranges, spine remarks).
    technique : str, optional
        ``sbrt`` or ``conventional``; when absent it is taken from the indication (see the
        README), and a ``site`` without indication means an SBRT course.
    vertebral_level : str, optional
        ``T4`` or a span ``T3-T5`` (oesophagus warning).
    priors : prior course(s), optional
        Summaries (``"30Gy/10 cord_dmax=31Gy date=2025-03-01"``), :class:`PriorCourse`
        objects or loaded prior plans (:class:`PlanData`).
    interval_months : float, optional
        Months since the previous course, when given rather than taken from the dates.
    date : date or ``YYYY-MM-DD``, optional
        Date of this course (default: the plan's RTPlanDate).
    alpha_beta : mapping, optional
        ``{role or rule id: alpha/beta}`` overriding the rules' alpha/beta.
    explicit_roles : mapping role -> structure name, optional
        ``--map`` choices.
    roles : RoleMap, mapping role -> names, or roles file, optional
        Synonyms added to the shipped structure-role table.

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
    protos = _load_protocols(protocols, table)
    ctx = _Context.build(plan, protos, table, indication=indication, site=site,
                         technique=technique, vertebral_level=vertebral_level, priors=priors,
                         interval_months=interval_months, date=date, alpha_beta=alpha_beta or {},
                         explicit=dict(explicit_roles or {}))
    for proto in protos:
        for rule in proto.rules:
            ctx.findings += _EVALUATORS[rule.kind](rule, ctx)
    return ctx.result(protos)


# ============================================================================ context


@dataclass
class _Context:
    data: PlanData
    table: RoleMap
    explicit: dict[str, str]
    indication: str | None
    site: str | None
    technique: str | None
    technique_how: str
    levels: tuple[int, int] | None
    level_text: str | None
    priors: list[PriorCourse]
    interval_months: float | None
    date: dt.date | None
    date_how: str
    ab_overrides: dict[str, float]
    findings: list[Finding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    matches: dict[str, RoleMatch] = field(default_factory=dict)
    _dvhs: dict[int, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, data: PlanData, protos: list[Protocol], table: RoleMap, *, indication, site,
              technique, vertebral_level, priors, interval_months, date, alpha_beta,
              explicit) -> _Context:
        rules = [r for p in protos for r in p.rules]
        indications = sorted({r.indication for r in rules if r.indication})
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
        levels = _parse_levels(vertebral_level)
        courses = _priors(priors, data, table, explicit)
        when, how = _course_date(date, data)
        frac_rule = next((r for r in rules if indication is not None
                          and r.indication == indication), None)
        tech, tech_how = _technique(technique, frac_rule, site, data)
        ctx = cls(data=data, table=table, explicit=explicit, indication=indication, site=site,
                  technique=tech, technique_how=tech_how, levels=levels,
                  level_text=vertebral_level, priors=courses, interval_months=interval_months,
                  date=when, date_how=how, ab_overrides=dict(alpha_beta))
        ctx.warnings += list(data.warnings)
        ctx.warnings += [f"role table: {n}" for n in table.notes]
        return ctx

    # ---------------------------------------------------------------- plan facts

    @property
    def fractions(self) -> int | None:
        return self.data.fractions

    @property
    def prescription(self) -> float | None:
        return self.data.plan.prescription_gy if self.data.plan else None

    def fractions_unknown_reason(self) -> str:
        if self.data.plan is None:
            return "number of fractions unknown: no RTPLAN"
        groups = len(self.data.plan.fraction_groups)
        if groups > 1:
            return f"number of fractions unknown: the plan has {groups} fraction groups"
        return "number of fractions unknown: the RTPLAN does not state NumberOfFractionsPlanned"

    def skip(self, rule: Rule, reason: str) -> list[Finding]:
        self.skipped.append({"rule": rule.id, "protocol": rule.protocol, "reason": reason})
        return []

    def alpha_beta(self, rule: Rule) -> tuple[float | None, str]:
        """The alpha/beta to use for a rule and a note when it was overridden."""
        if not rule.converts:
            return None, ""
        for key in (rule.id, rule.role):
            if key is not None and key in self.ab_overrides:
                value = float(self.ab_overrides[key])
                note = (f"alpha/beta {value:g} Gy given by --alpha-beta {key}=... (the rule's "
                        f"source uses {rule.alpha_beta:g} Gy; its thresholds were derived there)")
                return value, note
        return rule.alpha_beta, ""

    # ---------------------------------------------------------------- structures

    def role_match(self, role: str) -> RoleMatch:
        if role not in self.matches:
            names = [s.name for s in self.structures()]
            self.matches[role] = self.table.match(names, explicit=self.explicit,
                                                  roles=[role])[role]
        return self.matches[role]

    def structures(self) -> list[Structure]:
        return self.data.structure_set.structures if self.data.structure_set else []

    def dvh_of(self, name: str) -> tuple[Any, str | None]:
        """(DVH, None) or (None, why it cannot be used for a verdict)."""
        if self.data.structure_set is None:
            return None, "no structure set"
        if self.data.dose is None:
            return None, "no dose grid"
        if self.data.dose.units != "GY":
            return None, f"dose units are {self.data.dose.units}, not GY: no absolute dose"
        structure = _structure(self.data, name)
        if structure.is_empty or structure.is_point:
            what = "a point ROI" if structure.is_point else "empty (no contours)"
            return None, f"structure {name!r} is {what}"
        key = structure.number
        if key not in self._dvhs:
            from rtcheck.dvh import compute_dvh

            dvh = compute_dvh(structure, self.data.dose)
            self.warnings += [f"{name}: {w}" for w in dvh.warnings]
            self._dvhs[key] = dvh
        return self._dvhs[key], None

    # ---------------------------------------------------------------- result

    def result(self, protos: list[Protocol]) -> CheckResult:
        statuses = {f.status for f in self.findings}
        if "FAIL" in statuses:
            verdict = "FAIL"
        elif "NOT_EVALUATED" in statuses or not self.findings:
            verdict = "NOT_EVALUATED"
        else:
            verdict = "PASS"
        if not self.findings:
            self.warnings.append("no rule applied to this plan: nothing was evaluated (give "
                                 "--indication, --site, prior courses or another protocol)")
        return CheckResult(verdict=verdict, findings=self.findings, warnings=self.warnings,
                           skipped=self.skipped, roles=dict(self.matches),
                           plan=_plan_summary(self.data, self.date, self.date_how),
                           facts=self.facts(), protocols=[p.id for p in protos],
                           dvhs=list(self._dvhs.values()))

    def facts(self) -> dict[str, Any]:
        return {"indication": self.indication, "site": self.site, "technique": self.technique,
                "technique_how": self.technique_how, "vertebral_level": self.level_text,
                "interval_months": self.interval_months,
                "alpha_beta_overrides": self.ab_overrides, "map": self.explicit,
                "priors": [p.as_dict() for p in self.priors]}


# ============================================================================ evaluators


def _finding(rule: Rule, status: str, reason: str, **kw: Any) -> Finding:
    return Finding(rule=rule.id, protocol=rule.protocol, kind=rule.kind, status=status,
                   reason=reason, source=rule.source, cites=rule.cites, unit=rule.unit,
                   model=rule.model if kw.get("alpha_beta") is not None else None, **kw)


def _prescription(rule: Rule, ctx: _Context) -> tuple[float, int] | Finding:
    """The plan's (total dose, fractions), or a NOT_EVALUATED finding saying what is missing."""
    n, total = ctx.fractions, ctx.prescription
    if n is None:
        return _finding(rule, "NOT_EVALUATED", ctx.fractions_unknown_reason(),
                        metric="prescription")
    if total is None:
        return _finding(rule, "NOT_EVALUATED", "total prescribed dose unknown: the RTPLAN states "
                        "no TargetPrescriptionDose and no beam doses", metric="prescription")
    return total, n


def _matches(dose: float, fractions: int, listed_dose: float, listed_n: int, tol_pct: float
             ) -> bool:
    return fractions == listed_n and abs(dose - listed_dose) <= listed_dose * tol_pct / 100.0


def _fractionation(rule: Rule, ctx: _Context) -> list[Finding]:
    if ctx.indication != rule.indication:
        return ctx.skip(rule, f"indication {rule.indication} not requested"
                        + ("" if ctx.indication else " (give --indication)"))
    got = _prescription(rule, ctx)
    if isinstance(got, Finding):
        return [got]
    total, n = got
    label = f"{total:g} Gy/{n}"
    common = dict(metric="prescription", value=total, limit=rule.summary(),
                  details={"fractions": n, "dose_per_fraction_gy": total / n})
    ab, ab_note = ctx.alpha_beta(rule)
    if ab is not None:
        common["alpha_beta"] = ab
        common["details"][f"BED{ab:g}_gy"] = bed(total, n, ab)
    for scheme in rule.schemes:
        if _matches(total, n, scheme.dose, scheme.fractions, rule.dose_tolerance_pct):
            return [_scheme_finding(rule, ctx, scheme, label, common)]
    span = _bed_span(rule, ab)
    if span is not None:
        lo, hi = span
        b = bed(total, n, ab)  # type: ignore[arg-type]
        tol = rule.dose_tolerance_pct / 100.0
        defn = (f"biological equivalent = BED at alpha/beta {ab:g} Gy (LQ) within the span of the "
                f"recommended schemes' BED, [{lo:.1f}, {hi:.1f}] Gy "
                f"({', '.join(s.label for s in rule.recommended)})")
        common["details"].update(bed_span_min_gy=lo, bed_span_max_gy=hi)
        if lo * (1 - tol) <= b <= hi * (1 + tol):
            return [_finding(rule, "PASS", _join(f"{label}: BED{ab:g} = {b:.1f} Gy, a biological "
                                                 f"equivalent; {defn}", ab_note), **common)]
        nearest = _nearest(rule, total, n)
        return [_finding(rule, rule.severity, _join(
            f"{label} is not a listed scheme for indication {rule.indication}, and BED{ab:g} = "
            f"{b:.1f} Gy is outside [{lo:.1f}, {hi:.1f}] Gy; {defn}; nearest listed: {nearest}",
            ab_note), **common)]
    return [_finding(rule, rule.severity,
                     f"{label} is not a listed scheme for indication {rule.indication} (its row "
                     f"allows no biological equivalent); nearest listed: {_nearest(rule, total, n)}",
                     **common)]


def _scheme_finding(rule: Rule, ctx: _Context, scheme, label: str, common: dict) -> Finding:
    tier_text = {"recommended": "a recommended scheme", "other": "an other possible scheme",
                 "exceptional": "a scheme allowed only exceptionally"}[scheme.tier]
    status = "WARN" if scheme.tier == "exceptional" else "PASS"
    reason = f"{label} is {tier_text} for indication {rule.indication} ({scheme.label}"
    reason += f", {scheme.source})" if scheme.source else ")"
    if scheme.note:
        reason += f"; {scheme.note}"
    if scheme.fractions == 1 and ctx.site in rule.prefer_fractionated_sites:
        status = "WARN"
        reason += f"; site {ctx.site}: {rule.remarks}"
    return _finding(rule, status, reason, **common)


def _bed_span(rule: Rule, ab: float | None) -> tuple[float, float] | None:
    if not rule.biological_equivalent or ab is None:
        return None
    beds = [bed(s.dose, s.fractions, ab) for s in rule.recommended]
    return min(beds), max(beds)


def _nearest(rule: Rule, total: float, n: int, count: int = 2) -> str:
    """The listed schemes closest to the plan: same fractions first, then by dose."""
    ranked = sorted(rule.schemes, key=lambda s: (s.fractions != n, abs(s.fractions - n),
                                                 abs(s.dose - total)))
    return ", ".join(f"{s.label} ({s.tier})" for s in ranked[:count])


def _sbrt_range(rule: Rule, ctx: _Context) -> list[Finding]:
    if ctx.site != rule.site:
        return ctx.skip(rule, f"site {rule.site} not requested"
                        + ("" if ctx.site else " (give --site)"))
    if ctx.technique == "conventional":
        return ctx.skip(rule, f"not an SBRT course ({ctx.technique_how})")
    got = _prescription(rule, ctx)
    if isinstance(got, Finding):
        return [got]
    total, n = got
    label = f"{total:g} Gy/{n}"
    tol = rule.dose_tolerance_pct / 100.0
    common = dict(metric="prescription", value=total, limit=rule.summary(),
                  details={"fractions": n, "technique": ctx.technique_how})
    for r in rule.ranges:
        if r.fractions_min <= n <= r.fractions_max and \
                r.dose_min * (1 - tol) <= total <= r.dose_max * (1 + tol):
            if n in rule.warn_fractions:
                return [_finding(rule, "WARN", f"{label} is within {r.label} ({rule.site}); "
                                 f"{rule.warn_reason}", **common)]
            return [_finding(rule, "PASS", f"{label} is within {r.label} ({rule.site}; "
                             f"{ctx.technique_how})", **common)]
    same_n = [r.label for r in rule.ranges if r.fractions_min <= n <= r.fractions_max]
    why = (f"outside {', '.join(same_n)}" if same_n
           else f"no {rule.site} SBRT range for {n} fractions")
    return [_finding(rule, rule.severity, f"{label}: {why} (ranges: {rule.summary()}; "
                     f"{ctx.technique_how})", **common)]


def _dose_limit(rule: Rule, ctx: _Context) -> list[Finding]:
    n = ctx.fractions
    lo, hi = rule.fraction_span  # type: ignore[misc]
    if n is None:
        return [_finding(rule, "NOT_EVALUATED", ctx.fractions_unknown_reason(), role=rule.role,
                         metric=rule.metric)]
    if not lo <= n <= hi:
        return ctx.skip(rule, f"{n} fractions: outside the rule's scope ({lo}-{hi} fractions)")
    limit = rule.limit_for(n)
    if limit is None:
        tabulated = ", ".join(str(x.fractions) for x in rule.limits)
        return [_finding(rule, "NOT_EVALUATED", f"no limit for {n} fractions in the source "
                         f"(tabulated: {tabulated} fractions)", role=rule.role, metric=rule.metric)]
    names = _role_structures(rule, ctx)
    if isinstance(names, list) and not names:
        return []
    if isinstance(names, Finding):
        return [names]
    return [_limit_finding(rule, ctx, name, limit, n) for name in names]


def _role_structures(rule: Rule, ctx: _Context) -> list[str] | Finding:
    """The structure names for the rule's role, [] when skipped, or a NOT_EVALUATED finding."""
    match = ctx.role_match(rule.role)  # type: ignore[arg-type]
    if match.status == "matched":
        return list(match.names)
    if match.status == "missing" and ctx.site == "extraspinal" and \
            rule.role in ("spinal_cord", "cauda_equina", "thecal_sac"):
        ctx.skip(rule, f"site extraspinal and {match.how}")
        return []
    reason = match.how if ctx.data.structure_set is not None else "no structure set"
    return _finding(rule, "NOT_EVALUATED", reason, role=rule.role, metric=rule.metric,
                    structure=", ".join(match.candidates) or None)


def _limit_finding(rule: Rule, ctx: _Context, name: str, limit, n: int) -> Finding:
    common = dict(structure=name, role=rule.role, metric=rule.metric, limit=limit.limit,
                  operator=limit.operator, details={"fractions": n, "how": ctx.role_match(
                      rule.role).how, "requirement": limit.label(rule.unit)})
    dvh, why = ctx.dvh_of(name)
    if dvh is None:
        return _finding(rule, "NOT_EVALUATED", why, **common)
    value = dvh.metric(rule.metric)
    shown = {m: dvh.metric(m) for m in rule.show}
    common["details"].update(shown)
    common["details"]["volume_cc"] = dvh.volume_cc
    shown_text = "".join(f"; {m} = {_fmt(v)} Gy" for m, v in shown.items())
    if not dvh.fully_covered:
        return _partial_coverage(rule, dvh, value, limit, shown_text, common)
    if math.isnan(value):
        return _volume_above_structure(rule, dvh, limit, common)
    common["value"] = value
    status = limit.status(value, rule.severity)
    verb = {"PASS": "within", "WARN": "in the WARN band of", "FAIL": "violates"}.get(status, "violates")
    return _finding(rule, status, f"{rule.metric} = {value:.2f} Gy {verb} {rule.metric} "
                    f"{limit.label(rule.unit)} in {_fx(n)}{shown_text}", **common)


def _partial_coverage(rule: Rule, dvh, value: float, limit, shown_text: str, common: dict
                      ) -> Finding:
    """A structure partly outside the dose grid: FAIL only when the covered part alone already
    violates an upper limit of a Dmax or D<x>cc metric (the true value can only be higher);
    otherwise NOT_EVALUATED."""
    cover = f"only {dvh.covered_fraction:.1%} of {dvh.name!r} lies inside the dose grid"
    lower_bound = rule.metric == "Dmax" or str(rule.metric).endswith("cc")
    if lower_bound and not math.isnan(value) and limit.operator in ("<", "<=") and \
            limit.status(value, rule.severity) == rule.severity and rule.severity == "FAIL":
        common["value"] = value
        return _finding(rule, "FAIL", f"{cover}, but the covered part alone gives {rule.metric} "
                        f"= {value:.2f} Gy, beyond {limit.label(rule.unit)}{shown_text}", **common)
    return _finding(rule, "NOT_EVALUATED", f"{cover}: {rule.metric} cannot be known", **common)


def _volume_above_structure(rule: Rule, dvh, limit, common: dict) -> Finding:
    """D<x>cc of a structure smaller than x cc: with a volume threshold ('less than x cc may
    receive T') the rule is met whatever the dose; otherwise not evaluable."""
    vol = float(str(rule.metric)[1:-2]) if str(rule.metric).endswith("cc") else None
    if vol is not None and limit.operator in ("<", "<=") and dvh.volume_cc < vol:
        return _finding(rule, "PASS", f"{dvh.name!r} is {dvh.volume_cc:.2f} cc, less than "
                        f"{vol:g} cc: less than {vol:g} cc can receive {_fmt(limit.limit)} Gy "
                        "or more, whatever the dose", **common)
    return _finding(rule, "NOT_EVALUATED", f"{rule.metric} does not exist for {dvh.name!r} "
                    f"({dvh.volume_cc:.2f} cc)", **common)


def _warning(rule: Rule, ctx: _Context) -> list[Finding]:
    first, last = (parse_vertebral_level(v) for v in rule.vertebral_levels)  # type: ignore[union-attr]
    span = f"{rule.vertebral_levels[0]}-{rule.vertebral_levels[1]}"  # type: ignore[index]
    if ctx.levels is None:
        if ctx.site == "spine":
            return [_finding(rule, "NOT_EVALUATED", f"vertebral level unknown (not in DICOM): give "
                             f"--vertebral-level to check whether the lesion lies within {span}",
                             role=rule.role)]
        if ctx.site is None:
            return ctx.skip(rule, "needs the lesion site (--site) and, for the spine, its "
                                  "vertebral level (--vertebral-level)")
        return ctx.skip(rule, f"applies to spinal lesions only; the site is {ctx.site}")
    lo, hi = ctx.levels
    if hi < first or lo > last:
        return ctx.skip(rule, f"vertebral level {ctx.level_text} outside {span}")
    match = ctx.role_match(rule.role)  # type: ignore[arg-type]
    details: dict[str, Any] = {"vertebral_level": ctx.level_text, "how": match.how}
    organ = f"{rule.role} not evaluated: {match.how}"
    for name in match.names[:1] if match.status == "matched" else ():
        dvh, why = ctx.dvh_of(name)
        if dvh is None:
            organ = f"{name!r}: {why}"
            continue
        shown = {m: dvh.metric(m) for m in rule.show}
        details.update(shown)
        organ = f"{name!r}: " + ", ".join(f"{m} = {_fmt(v)} Gy" for m, v in shown.items())
        if not dvh.fully_covered:
            organ += f" (only {dvh.covered_fraction:.1%} inside the dose grid)"
    structure = match.name if match.status == "matched" else None
    return [_finding(rule, rule.severity, f"vertebral level {ctx.level_text} within {span}: "
                     f"{rule.message} [{organ}]", role=rule.role, structure=structure,
                     details=details)]


# ---------------------------------------------------------------------------- re-irradiation


def _reirradiation(rule: Rule, ctx: _Context) -> list[Finding]:
    if not ctx.priors and ctx.interval_months is None:
        if ctx.indication == "reirradiation":
            return [_finding(rule, "NOT_EVALUATED", "indication reirradiation but no prior course "
                             "given (--prior PATH or --prior-summary)", role=rule.role,
                             metric=rule.metric)]
        return ctx.skip(rule, "no prior course given (not a re-irradiation)")
    n = ctx.fractions
    if rule.applies_to_fractions and n is not None:
        lo, hi = rule.applies_to_fractions
        if not lo <= n <= hi:
            return ctx.skip(rule, f"stated for SBRT courses of {lo}-{hi} fractions; this plan has {n}")
    if rule.quantity == "interval_months":
        return [_interval(rule, ctx)]
    return _eqd2_rule(rule, ctx)


def _interval(rule: Rule, ctx: _Context) -> Finding:
    limit = rule.limits[0]
    common: dict[str, Any] = dict(metric="interval since previous course", limit=limit.limit,
                                  operator=limit.operator,
                                  details={"requirement": limit.label(rule.unit)})
    if ctx.interval_months is not None:
        months, how = float(ctx.interval_months), "given (--interval-months)"
    else:
        dated = [p for p in ctx.priors if p.date is not None]
        undated = [p.label for p in ctx.priors if p.date is None]
        if undated:
            return _finding(rule, "NOT_EVALUATED", f"date of the prior course unknown: "
                            f"{'; '.join(undated)} (give date=YYYY-MM-DD or --interval-months)",
                            **common)
        if ctx.date is None:
            return _finding(rule, "NOT_EVALUATED", "date of this course unknown: no RTPlanDate "
                            "(give --date or --interval-months)", **common)
        latest = max(dated, key=lambda p: p.date)  # type: ignore[arg-type, return-value]
        days = (ctx.date - latest.date).days  # type: ignore[operator]
        if days < 0:
            return _finding(rule, "NOT_EVALUATED", f"the prior course ({latest.date}) is dated "
                            f"after this course ({ctx.date}, {ctx.date_how})", **common)
        months = days / DAYS_PER_MONTH
        how = (f"{days} days from {latest.date} ({latest.label}) to {ctx.date} ({ctx.date_how}), "
               f"/ {DAYS_PER_MONTH} days per month")
        common["details"].update(days=days, prior_date=latest.date.isoformat(),  # type: ignore[union-attr]
                                 this_date=ctx.date.isoformat())
    common["value"] = months
    status = limit.status(months, rule.severity)
    return _finding(rule, status, f"interval {months:.1f} months ({how}); required "
                    f"{limit.label('months')}", **common)


def _eqd2_rule(rule: Rule, ctx: _Context) -> list[Finding]:
    ab, ab_note = ctx.alpha_beta(rule)
    limit = rule.limits[0]
    common: dict[str, Any] = dict(role=rule.role, metric=_eqd2_metric(rule), limit=limit.limit,
                                  operator=limit.operator, alpha_beta=ab, details={})
    n = ctx.fractions
    if n is None:
        return [_finding(rule, "NOT_EVALUATED", ctx.fractions_unknown_reason(), **common)]
    names = _role_structures(rule, ctx)
    if isinstance(names, Finding):
        names.alpha_beta, names.model, names.metric = ab, rule.model, common["metric"]
        return [names]
    out = []
    for name in names:
        common["structure"] = name
        dvh, why = ctx.dvh_of(name)
        if dvh is None or not dvh.fully_covered:
            why = why or f"only {dvh.covered_fraction:.1%} of {name!r} lies inside the dose grid"
            out.append(_finding(rule, "NOT_EVALUATED", f"{why}: cord Dmax of this course unknown",
                                **common))
            continue
        out.append(_eqd2_finding(rule, ctx, dvh.dmax, n, ab, ab_note, dict(common)))
    return out


def _eqd2_metric(rule: Rule) -> str:
    return {"cumulative_eqd2_max": f"cumulative EQD2 of {rule.metric}",
            "course_eqd2_max": f"EQD2 of {rule.metric}, this course",
            "course_share": f"EQD2 of {rule.metric}: this course / cumulative"}[rule.quantity]  # type: ignore[index]


def _eqd2_finding(rule: Rule, ctx: _Context, dmax: float, n: int, ab: float, ab_note: str,
                  common: dict) -> Finding:
    limit = rule.limits[0]
    this = eqd2(dmax, n, ab)
    courses = [{"course": "this plan", "cord_dmax_gy": dmax, "fractions": n, "eqd2_gy": this}]
    parts = [f"this course {dmax:.2f} Gy in {n} fx -> {this:.2f} Gy"]
    missing = []
    for p in ctx.priors:
        if p.cord_dmax is None or p.fractions is None:
            missing.append(f"{p.label}: " + ("; ".join(p.notes) or "cord_dmax not given"))
            continue
        e = eqd2(p.cord_dmax, p.fractions, ab)
        courses.append({"course": p.label, "cord_dmax_gy": p.cord_dmax, "fractions": p.fractions,
                        "eqd2_gy": e})
        parts.append(f"{p.label} {p.cord_dmax:.2f} Gy in {p.fractions} fx -> {e:.2f} Gy")
    common["details"] = {"courses": courses, "requirement": limit.label(rule.unit)}
    conv = f"EQD2 at alpha/beta {ab:g} Gy (LQ, each course with its own dose per fraction)"
    if rule.quantity == "course_eqd2_max":
        value, text = this, f"{conv}: {parts[0]}"
    else:
        if missing or not ctx.priors:
            why = "; ".join(missing) or "no prior cord dose given"
            return _finding(rule, "NOT_EVALUATED", _join(f"prior cord dose unknown ({why})",
                                                         ab_note), **common)
        cumulative = sum(c["eqd2_gy"] for c in courses)
        common["details"]["cumulative_eqd2_gy"] = cumulative
        if rule.quantity == "cumulative_eqd2_max":
            value = cumulative
            text = f"{conv}: " + " + ".join(parts) + f" = {cumulative:.2f} Gy (sum of maxima: " \
                "an upper bound)"
        else:
            value = this / cumulative
            text = f"{conv}: {this:.2f} / {cumulative:.2f} Gy = {value:.3f}"
    common["value"] = value
    status = limit.status(value, rule.severity)
    band = " (no-consensus band)" if status == "WARN" else ""
    return _finding(rule, status, _join(f"{text}; required {limit.label(rule.unit)}{band}",
                                        ab_note), **common)


_EVALUATORS = {
    "fractionation": _fractionation,
    "sbrt_prescription_range": _sbrt_range,
    "dose_limit": _dose_limit,
    "warning": _warning,
    "reirradiation": _reirradiation,
}


# ============================================================================ helpers


def _load_protocols(protocols, table: RoleMap) -> list[Protocol]:
    items = list(DEFAULT_PROTOCOLS if protocols is None else protocols)
    if not items:
        raise InputError("no protocol given")
    out = [p if isinstance(p, Protocol) else load_protocol(p, roles=table) for p in items]
    ids = [p.id for p in out]
    if len(set(ids)) < len(ids):
        raise InputError(f"the same protocol given twice: {', '.join(ids)}")
    return out


def _priors(priors, data: PlanData, table: RoleMap, explicit: Mapping[str, str]
            ) -> list[PriorCourse]:
    if priors is None:
        return []
    if isinstance(priors, (str, PriorCourse, PlanData)):
        priors = [priors]
    out = []
    for i, p in enumerate(priors):
        if isinstance(p, PriorCourse):
            out.append(p)
        elif isinstance(p, str):
            out.append(parse_prior_summary(p))
        elif isinstance(p, PlanData):
            where = (p.plan.path if p.plan and p.plan.path else None) or f"prior plan {i + 1}"
            if data.plan is not None and p.plan is not None and p.plan.uid == data.plan.uid:
                raise InputError(f"{where}: the prior course is the plan being checked")
            out.append(prior_from_plan(p, table, explicit, where))
        else:
            raise InputError(f"prior course {i + 1}: expected a summary, PriorCourse or PlanData")
    return out


def _technique(technique: str | None, frac_rule: Rule | None, site: str | None,
               data: PlanData) -> tuple[str | None, str]:
    """SBRT or conventional: given, else read from the indication's Tableau 5 row."""
    if technique is not None:
        return technique, f"technique {technique} given"
    if frac_rule is not None:
        n = data.fractions
        total = data.plan.prescription_gy if data.plan else None
        for s in frac_rule.schemes:
            if total is not None and _matches(total, n or 0, s.dose, s.fractions,
                                              frac_rule.dose_tolerance_pct):
                tech = "sbrt" if (s.technique or "").upper() == "SBRT" else "conventional"
                return tech, (f"{tech} taken from the listed scheme {s.label} of indication "
                              f"{frac_rule.indication}")
        sbrt_fx = [s.fractions for s in frac_rule.recommended
                   if (s.technique or "").upper() == "SBRT"]
        if sbrt_fx and n is not None and n > max(sbrt_fx):
            return "conventional", (f"conventional assumed: {n} fractions, more than any SBRT "
                                    f"scheme of indication {frac_rule.indication}")
        if sbrt_fx:
            return "sbrt", (f"SBRT assumed: Tableau 5 recommends SBRT for indication "
                            f"{frac_rule.indication}")
        return "conventional", (f"conventional assumed: Tableau 5 lists conventional schemes "
                                f"for indication {frac_rule.indication}; give --technique sbrt "
                                "to check SBRT ranges")
    if site is not None:
        return "sbrt", "SBRT assumed: --site given without --indication or --technique"
    return None, "technique unknown"


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
            date = _parse_date(date, "--date")
        return date, "given"
    if data.plan is not None and data.plan.date is not None:
        return data.plan.date, "RTPlanDate"
    return None, "unknown"


def _parse_date(value: str, where: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise InputError(f"{where}: date {value!r} is not YYYY-MM-DD") from exc


def _structure(data: PlanData, name: str) -> Structure:
    return data.structure_set.get(name)  # type: ignore[union-attr]


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


def _fx(n: int) -> str:
    return f"{n} fraction" + ("" if n == 1 else "s")


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.2f}"


def _json_number(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    if isinstance(value, list):
        return [_json_number(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_number(v) for k, v in value.items()}
    return value
