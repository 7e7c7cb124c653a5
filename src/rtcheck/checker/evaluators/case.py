"""Rule kinds ``case`` and ``systemic_treatments``: the patient's facts and the contours.

A ``case`` rule holds conditions on facts (``karnofsky >= 70``); each fact is read from the
case file (:mod:`rtcheck.case`), measured on the contours (tumour-to-cord distance, GTV
diameter: :mod:`rtcheck.geometry`), taken from the plan (dose per fraction) or counted from the
case's dates to this course's start. A fact that is unknown is never guessed: the rule is
NOT_EVALUATED (``fact_missing``, ``missing`` the fact) unless the facts that are known decide it
already (a broken requirement, a risk factor present). Without a case file at all, the rules
that read case facts are not asked (skipped, code ``no_case_file``): only the rules on
the plan's own facts (contours, dose per fraction) run.

A ``systemic_treatments`` rule looks each drug of the case up in the drug table and checks its
category and the wash-out (5 half-lives) before the course starts.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from rtcheck.case import CaseFacts, Score, load_drug_table
from rtcheck.case.drugs import Drug, DrugTable
from rtcheck.case.facts import PLAN_FACTS, RULE_FACTS, Treatment
from rtcheck.case.facts import SPECS as CASE_SPECS
from rtcheck.checker import findings as F
from rtcheck.checker.evaluators.context import Context, finding
from rtcheck.checker.findings import Finding
from rtcheck.errors import InputError
from rtcheck.rules.kinds import CaseRule, Condition, SystemicTreatmentRule
from rtcheck.rules.protocols import parse_vertebral_level

#: Roles read as "the tumour", first found first (the referential's "distance tumeur-cordon").
TARGET_ROLES = ("gtv", "ctv", "ptv")
#: Roles read as "the cord" for the distance (the cord family; a PRV is a margin, not the cord).
CORD_ROLES = ("spinal_cord", "thecal_sac", "cauda_equina")
NONE_TEXT = "none"


@dataclass(frozen=True)
class Fact:
    """A fact's value for this check, or why it is unknown.

    ``value`` is None when unknown (``missing`` names the fact or key to give, ``code`` the
    finding code); ``how`` says where a known value comes from; ``shown`` is the value as
    printed (``"9 = location 3 + ..."`` for a score); ``details`` extra typed data.
    """

    name: str
    value: Any = None
    how: str = ""
    missing: str | None = None
    code: str = F.FACT_MISSING
    shown: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    thresholds: tuple[float, ...] = ()

    @property
    def known(self) -> bool:
        return self.value is not None

    def text(self) -> str:
        if not self.known:
            return f"{self.name} unknown ({self.how})"
        shown = self.shown if self.shown is not None else _show(self.value, self.thresholds)
        unit = RULE_FACTS[self.name].unit if self.name in RULE_FACTS else None
        return f"{self.name} = {shown}{' ' + unit if unit and shown != NONE_TEXT else ''}" + \
            (f" ({self.how})" if self.how else "")


# ============================================================================ kind "case"


def evaluate(rule: CaseRule, ctx: Context) -> list[Finding]:
    """Findings of a ``case`` rule (a list of one, or none when the rule is skipped)."""
    needs_case = any(f not in PLAN_FACTS for f in rule.facts)
    if needs_case and case_of(ctx) is None:
        return ctx.skip(rule, F.NO_CASE_FILE, "reads case facts: give a case file (--case) "
                        f"with {', '.join(f for f in rule.facts if f not in PLAN_FACTS)}")
    skipped = _out_of_scope(rule, ctx)
    if skipped is not None:
        return skipped
    gate = _when(rule, ctx)
    if gate is not None:
        return gate
    facts = {c.fact: _with_thresholds(fact(c.fact, ctx), rule) for c in rule.conditions}
    absent = _structures_absent(rule, ctx, facts)
    if absent is not None:
        return absent
    status, decided = _combine(rule, facts)
    return [_case_finding(rule, ctx, status, decided, facts)]


def _with_thresholds(f: Fact, rule: CaseRule) -> Fact:
    """The fact with the numbers its conditions compare it with (for its display)."""
    from dataclasses import replace

    limits: list[float] = []
    for c in rule.conditions:
        if c.fact == f.name:
            values = c.value if isinstance(c.value, tuple) else (c.value,)
            limits += [float(v) for v in values
                       if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return replace(f, thresholds=tuple(limits)) if limits else f


def _structures_absent(rule: CaseRule, ctx: Context, facts: dict[str, Fact]
                       ) -> list[Finding] | None:
    """A skip when a fact measured on the contours has no structure to be measured on: the
    contour rules run on the plans that have the structures. A case file that could have
    given the value instead (``tumour_cord_distance_mm``) makes it NOT_EVALUATED instead."""
    for f in facts.values():
        if f.known or f.code != F.STRUCTURE_MISSING:
            continue
        if ctx.case is not None and f.name in CASE_SPECS:
            return None
        return ctx.skip(rule, F.NOT_APPLICABLE, f"{f.name} not measured: {f.how}")
    return None


def _out_of_scope(rule: CaseRule, ctx: Context) -> list[Finding] | None:
    """A skip when the course is not one the rule's source speaks of, else None."""
    tech = ctx.technique.value
    if rule.technique and tech and tech != rule.technique:
        return ctx.skip(rule, F.OUT_OF_SCOPE, f"stated for {_tech(rule.technique)} courses; "
                        f"this course is {_tech(tech)} ({ctx.technique.text})")
    indication = ctx.indication
    if rule.indications or rule.except_indications:
        if indication is None:
            return ctx.skip(rule, F.FACT_MISSING, "needs the indication", needs="indication")
        if (rule.indications and indication not in rule.indications) \
                or indication in rule.except_indications:
            return ctx.skip(rule, F.NOT_APPLICABLE, f"not stated for indication {indication}")
    if rule.sites:
        if ctx.site is None:
            return ctx.skip(rule, F.FACT_MISSING, f"needs the lesion site ({'/'.join(rule.sites)})",
                            needs="site")
        if ctx.site not in rule.sites:
            return ctx.skip(rule, F.NOT_APPLICABLE, f"stated for {'/'.join(rule.sites)} lesions; "
                            f"the site is {ctx.site}")
    return None


def _when(rule: CaseRule, ctx: Context) -> list[Finding] | None:
    """A skip when a ``when`` condition is false, a NOT_EVALUATED finding when one is unknown."""
    for cond in rule.when:
        got = fact(cond.fact, ctx)
        if not got.known:
            return [finding(rule, "NOT_EVALUATED", f"whether the rule applies depends on "
                            f"{cond.text}: {got.text()}", code=got.code, missing=got.missing,
                            metric=cond.fact)]
        if not holds(cond, got.value):
            return ctx.skip(rule, F.NOT_APPLICABLE, f"applies when {cond.text}: {got.text()}")
    return None


def _combine(rule: CaseRule, facts: dict[str, Fact]) -> tuple[str, list[Condition]]:
    """The status and the conditions that decided it (broken, present or unknown ones)."""
    known = [c for c in rule.conditions if facts[c.fact].known]
    unknown = [c for c in rule.conditions if not facts[c.fact].known]
    if rule.logic == "require":
        broken = [c for c in known if not holds(c, facts[c.fact].value)]
        if broken:
            return _worst(rule, broken, facts), broken
        return ("NOT_EVALUATED", unknown) if unknown else ("PASS", list(rule.conditions))
    present = [c for c in known if holds(c, facts[c.fact].value)]
    if rule.logic == "flag_if_any":
        if present:
            return rule.severity, present
        return ("NOT_EVALUATED", unknown) if unknown else ("PASS", list(rule.conditions))
    absent = [c for c in known if c not in present]  # flag_if_all
    if absent:
        return "PASS", absent
    return ("NOT_EVALUATED", unknown) if unknown else (rule.severity, present)


def _worst(rule: CaseRule, broken: list[Condition], facts: dict[str, Fact]) -> str:
    """The rule's severity, or WARN when every broken value lies within its ``warn_band``."""
    def in_band(c: Condition) -> bool:
        v = facts[c.fact].value
        return c.warn_band is not None and c.warn_band[0] <= float(v) <= c.warn_band[1]
    return "WARN" if all(in_band(c) for c in broken) else rule.severity


def _case_finding(rule: CaseRule, ctx: Context, status: str, decided: list[Condition],
                  facts: dict[str, Fact]) -> Finding:
    details = _details(rule, facts, decided)
    if status == "NOT_EVALUATED":
        first = next(facts[c.fact] for c in decided)
        return finding(rule, status, _reason(rule, status, decided, facts), code=first.code,
                       missing=first.missing, metric=first.name, details=details)
    caveat = _technique_caveat(rule, ctx)
    main = facts[decided[0].fact] if decided else next(iter(facts.values()))
    spec = RULE_FACTS.get(main.name)
    value = main.value if isinstance(main.value, (int, float)) and \
        not isinstance(main.value, bool) and math.isfinite(main.value) else None
    numeric = len(rule.conditions) == 1 and isinstance(rule.conditions[0].value, float)
    # one numeric condition: its threshold; otherwise the rule's requirement, as text
    limit: float | str = rule.conditions[0].value if numeric else rule.summary()
    return finding(rule, status, _reason(rule, status, decided, facts)
                   + (f" ({caveat})" if caveat else ""),
                   metric=main.name, value=value, limit=limit,
                   operator=rule.conditions[0].op if numeric else None,
                   unit=spec.unit if spec else None,
                   structure=main.details.get("structure"), role=main.details.get("role"),
                   details=details)


def _reason(rule: CaseRule, status: str, decided: list[Condition], facts: dict[str, Fact]
            ) -> str:
    """The finding's sentence: what decided, every fact read with where it came from."""
    known = "; ".join(f.text() for f in facts.values())
    unknown = [f for f in facts.values() if not f.known]
    if status == "NOT_EVALUATED":
        return (f"not evaluated: {'; '.join(f.text() for f in unknown)} (needs "
                f"{', '.join(c.text for c in decided)}); {known}")
    if status == "PASS":
        what = {"require": "met", "flag_if_any": "none present",
                "flag_if_all": "not all present"}[rule.logic]
        return f"{what}: {rule.summary()}; {known}"
    what = {"require": "requirement(s) not met", "flag_if_any": "present",
            "flag_if_all": "all present"}[rule.logic]
    also = f"; unknown: {', '.join(f.name for f in unknown)}" if unknown else ""
    return f"{what}: {', '.join(c.text for c in decided)}{also}; {known}. {rule.message}"


def _details(rule: CaseRule, facts: dict[str, Fact], decided: list[Condition]
             ) -> dict[str, Any]:
    return {"logic": rule.logic, "decided_by": [c.text for c in decided],
            "facts": {f.name: {"value": _plain(f.value), "shown": f.shown, "how": f.how,
                               **f.details} for f in facts.values()},
            "requirement": rule.summary()}


def _technique_caveat(rule: CaseRule, ctx: Context) -> str:
    if rule.technique and ctx.technique.value is None:
        return (f"applied because the technique is unknown ({ctx.technique.text}); stated "
                f"for {_tech(rule.technique)} courses")
    return ""


# ============================================================================ conditions


def holds(cond: Condition, value: Any) -> bool:
    """Whether a known value satisfies the condition."""
    op, ref = cond.op, cond.value
    if op == "overlaps":
        lo, hi = (parse_vertebral_level(v) for v in ref)
        return value[0] <= hi and value[1] >= lo
    if op == "between":
        return ref[0] <= value <= ref[1]
    if op in ("in", "not_in"):
        return (value in ref) == (op == "in")
    if isinstance(value, Score):
        value = value.total
    return {"<": lambda: value < ref, "<=": lambda: value <= ref, ">": lambda: value > ref,
            ">=": lambda: value >= ref, "==": lambda: value == ref,
            "!=": lambda: value != ref}[op]()


# ============================================================================ facts


def case_of(ctx: Context) -> CaseFacts | None:
    return ctx.case


def fact(name: str, ctx: Context) -> Fact:
    """The value of a rule's fact for this check (see :data:`rtcheck.case.facts.RULE_FACTS`)."""
    derived = _DERIVED.get(name)
    if derived is not None:
        return derived(ctx)
    return _case_value(name, ctx)


def _case_value(name: str, ctx: Context) -> Fact:
    case = case_of(ctx)
    if name == "indication" and ctx.indication is not None:
        return Fact(name, ctx.indication, "given")
    if name == "site" and ctx.site is not None:
        return Fact(name, ctx.site, "given")
    if name == "vertebral_levels":
        return _levels(ctx)
    if case is None or not case.has(name):
        return Fact(name, how="not in the case file", missing=name)
    value = case.get(name)
    if isinstance(value, Score):
        return Fact(name, value.total, "case file", shown=value.sum_text,
                    details={"band": value.band, "items": value.as_dict()["items"]})
    return Fact(name, value, "case file")


def _levels(ctx: Context) -> Fact:
    case = case_of(ctx)
    if case is not None and case.has("vertebral_levels"):
        lo, hi, text = case.get("vertebral_levels")
        return Fact("vertebral_levels", (lo, hi), "case file", shown=text)
    if ctx.levels is not None:
        return Fact("vertebral_levels", ctx.levels, "given", shown=ctx.level_text)
    return Fact("vertebral_levels", how="vertebral levels not given", missing="vertebral_levels")


def _vertebrae(ctx: Context) -> Fact:
    levels = _levels(ctx)
    if not levels.known:
        return Fact("vertebrae_treated", how=levels.how, missing="vertebral_levels")
    lo, hi = levels.value
    return Fact("vertebrae_treated", hi - lo + 1, f"vertebral levels {levels.shown}")


def _scheme(name: str, ctx: Context) -> Fact:
    """``dose_per_fraction_gy``, ``total_dose_gy`` or ``fractions`` of the plan."""
    n, total = ctx.fractions, ctx.prescription
    if n is None or total is None:
        why = ctx.fractions_unknown() if n is None else "prescription unknown"
        return Fact(name, how=why, missing="prescription",
                    code=F.FRACTIONS_UNKNOWN if n is None else F.PRESCRIPTION_UNKNOWN)
    value = {"dose_per_fraction_gy": total / n, "total_dose_gy": total, "fractions": n}[name]
    return Fact(name, value, f"{total:g} Gy in {n} fractions")


def course_start(ctx: Context) -> tuple[dt.date | None, str]:
    """This course's first day: the case's start_date, else the check's date (RTPlanDate)."""
    case = case_of(ctx)
    if case is not None and case.has("start_date"):
        start, how = case.get("start_date"), "start_date of the case file"
    elif ctx.date is not None:
        start, how = ctx.date, f"course date from {ctx.date_how}"
    else:
        return None, "course start unknown (no start_date in the case file, no plan date)"
    if case is not None:
        check_case_dates(case, start, how)
    return start, how


def check_case_dates(case: CaseFacts, start: dt.date, how: str) -> None:
    """Refuse a surgery at this site dated after the course start (the key is the surgery
    before the course): InputError naming the file and the key."""
    surgery = case.get("surgery_date")
    if surgery is not None and surgery > start:
        raise InputError(f"surgery_date: {surgery.isoformat()} is after this course's start "
                         f"{start.isoformat()} ({how}); give the surgery before the course",
                         case.path)


def _months_since(name: str, key: str, ctx: Context, with_priors: bool) -> Fact:
    from rtcheck.radiobiology import months_between

    case = case_of(ctx)
    dates = list(case.get(key)) if case is not None and case.has(key) else None
    if with_priors:
        ends = [p.end_date for p in ctx.priors if p.end_date is not None]
        dates = (dates or []) + ends if (dates is not None or ends) else None
    if dates is None:
        return Fact(name, how=f"{key} not in the case file", missing=key)
    start, how = course_start(ctx)
    if start is None:
        return Fact(name, how=how, missing="start_date")
    if not dates:
        return Fact(name, math.inf, f"{key} = [] (none)", shown=NONE_TEXT)
    concurrent = sorted(d for d in dates if d >= start)
    if concurrent:
        # a course that ends on or after this one starts runs at the same time: 0 months
        return Fact(name, 0.0, f"{concurrent[-1].isoformat()} is on or after this course's "
                    f"start {start.isoformat()} ({how}): a concurrent course",
                    shown="0")
    last = max(dates)
    months = months_between(last, start)
    return Fact(name, months, f"{last.isoformat()} to {start.isoformat()}, {how}")


def _days_since_surgery(ctx: Context) -> Fact:
    case = case_of(ctx)
    if case is None or not case.has("surgery_date"):
        return Fact("days_since_surgery", how="surgery_date not in the case file",
                    missing="surgery_date")
    start, how = course_start(ctx)
    if start is None:
        return Fact("days_since_surgery", how=how, missing="start_date")
    days = (start - case.get("surgery_date")).days
    return Fact("days_since_surgery", float(days),
                f"{case.get('surgery_date').isoformat()} to {start.isoformat()}, {how}",
                shown=str(days))


def _distance(ctx: Context) -> Fact:
    m = measurements(ctx)
    d = m.get("tumour_cord_distance")
    if d is not None:
        return Fact("tumour_cord_distance_mm", d["mm"], d["how"],
                    details={"structure": d["target"], "role": d["target_role"],
                             "cord": d["cord"], "cord_role": d["cord_role"]})
    case = case_of(ctx)
    if case is not None and case.has("tumour_cord_distance_mm"):
        return Fact("tumour_cord_distance_mm", case.get("tumour_cord_distance_mm"),
                    f"case file (contours: {m.get('distance_problem')})")
    return Fact("tumour_cord_distance_mm", how=str(m.get("distance_problem")),
                missing="tumour_cord_distance_mm", code=m.get("distance_code", F.STRUCTURE_MISSING))


def _gtv_diameter(ctx: Context) -> Fact:
    m = measurements(ctx)
    d = m.get("gtv_diameter")
    if d is None:
        return Fact("gtv_diameter_cm", how=str(m.get("diameter_problem")),
                    missing="gtv_diameter_cm", code=F.STRUCTURE_MISSING)
    return Fact("gtv_diameter_cm", d["mm"] / 10.0, d["how"],
                details={"structure": d["structure"], "role": "gtv"})


def _largest_metastasis(ctx: Context) -> Fact:
    """``largest_metastasis_cm``, or the treated lesion's ``lesion_size_cm`` when that alone
    is known and already decides (5 cm or more): the largest known size decides."""
    given = _case_value("largest_metastasis_cm", ctx)
    case = case_of(ctx)
    size = case.get("lesion_size_cm") if case is not None else None
    if given.known or size is None:
        return given  # the case file refuses a lesion_size_cm above largest_metastasis_cm
    if size >= 5:
        return Fact("largest_metastasis_cm", size, "lesion_size_cm of the case file (the "
                    "treated lesion; largest_metastasis_cm not given: at least this)")
    return Fact("largest_metastasis_cm", how=f"not in the case file (lesion_size_cm = "
                f"{size:.2f} cm, the treated lesion, does not decide for the others)",
                missing="largest_metastasis_cm")


_DERIVED = {
    "largest_metastasis_cm": _largest_metastasis,
    "vertebrae_treated": _vertebrae,
    "dose_per_fraction_gy": lambda ctx: _scheme("dose_per_fraction_gy", ctx),
    "total_dose_gy": lambda ctx: _scheme("total_dose_gy", ctx),
    "fractions": lambda ctx: _scheme("fractions", ctx),
    "months_since_radiotherapy": lambda ctx: _months_since(
        "months_since_radiotherapy", "previous_radiotherapy_dates", ctx, with_priors=True),
    "months_since_metabolic_radiotherapy": lambda ctx: _months_since(
        "months_since_metabolic_radiotherapy", "metabolic_radiotherapy_dates", ctx,
        with_priors=False),
    "days_since_surgery": _days_since_surgery,
    "tumour_cord_distance_mm": _distance,
    "gtv_diameter_cm": _gtv_diameter,
}


# ============================================================================ measurements


def measurements(ctx: Context) -> dict[str, Any]:
    """The contour measurements of this plan (computed once): tumour-to-cord distance and GTV
    diameter with the structures used, or why each could not be measured."""
    if ctx.measures:
        return ctx.measures
    out: dict[str, Any] = {}
    target = _first_role(ctx, TARGET_ROLES)
    cords = [(role, ctx.role_match(role).names) for role in CORD_ROLES]
    cords = [(role, names) for role, names in cords if names]
    if target is None:
        out["distance_problem"] = "no GTV, CTV or PTV contoured"
    elif not cords:
        out["distance_problem"] = "no spinal cord, thecal sac or cauda equina contoured"
    else:
        _measure_distance(ctx, target, cords, out)
    gtv = ctx.role_match("gtv").names
    if gtv:
        _measure_diameter(ctx, gtv, out)
    else:
        out["diameter_problem"] = "no GTV contoured"
    ctx.measures.update(out)
    return out


def _first_role(ctx: Context, roles: tuple[str, ...]) -> tuple[str, tuple[str, ...]] | None:
    for role in roles:
        names = ctx.role_match(role).names
        if names:
            return role, names
    return None


def _incomplete(ctx: Context, names: tuple[str, ...]) -> str | None:
    for n in names:
        s = ctx.structure(n)
        if s.problems:
            return f"structure {n!r} is incomplete: " + "; ".join(s.problems)
    return None


def _measure_distance(ctx: Context, target: tuple[str, tuple[str, ...]],
                      cords: list[tuple[str, tuple[str, ...]]], out: dict[str, Any]) -> None:
    from rtcheck.geometry import min_distance_mm, union_planes

    role, names = target
    bad = _incomplete(ctx, names + tuple(n for _, ns in cords for n in ns))
    if bad:
        out["distance_problem"], out["distance_code"] = bad, F.STRUCTURE_INCOMPLETE
        return
    spacing = _plane_spacing(ctx)
    tplanes = union_planes((ctx.structure(n) for n in names), spacing)
    each: list[dict[str, Any]] = []
    for cord_role, cord_names in cords:
        for n in cord_names:
            d = min_distance_mm(tplanes, ctx.structure(n), spacing)
            if d is not None:
                each.append({"cord": n, "cord_role": cord_role, "mm": round(d.mm, 3),
                             "in_plane_mm": round(d.in_plane_mm, 3), "dz_mm": round(d.dz_mm, 3)})
    if not each:
        out["distance_problem"] = "the structures have no closed contours"
        return
    best = min(each, key=lambda e: e["mm"])
    problem = _cord_short_of(ctx, names, cords, spacing)
    if problem and best["mm"] >= DISTANCE_COVERAGE_MM:
        # a distance found is an upper bound of the true one (below 5 mm it stands); above,
        # the cord may come closer where it is not contoured
        out["distance_problem"] = (f"the distance found ({best['mm']:.2f} mm) may not be the "
                                   f"smallest: {problem}")
        out["distance_code"] = F.STRUCTURE_TOO_SHORT
        return
    target_text = "+".join(names)
    stand_in = "" if role == "gtv" else f" (no GTV contoured: the {role.upper()} stands in)"
    out["tumour_cord_distance"] = {
        **best, "target": target_text, "target_role": role, "each": each,
        "how": f"measured: {target_text} ({role}) to {best['cord']} ({best['cord_role']}), "
               "smallest 3-D distance between the contours, each plane a slab of +- half its "
               f"structure's plane spacing{stand_in}"}


#: The cord contours must cover the target's extent this far beyond it (mm) for a distance of
#: this much or more to be the smallest: the "distance tumeur-cordon < 5 mm" of line 809.
DISTANCE_COVERAGE_MM = 5.0


def _cord_short_of(ctx: Context, names: tuple[str, ...],
                   cords: list[tuple[str, tuple[str, ...]]], spacing: float | None) -> str | None:
    """Why the cord-family contours (together) do not cover the target's cranio-caudal extent
    +- :data:`DISTANCE_COVERAGE_MM` without a gap (:func:`rtcheck.checker.extent.coverage_problem`),
    or None."""
    from rtcheck.checker.extent import coverage_problem

    cord_parts = [ctx.structure(n) for _, ns in cords for n in ns]
    targets = [ctx.structure(n) for n in names]
    return coverage_problem([s for s in cord_parts if s is not None],
                            [s for s in targets if s is not None], DISTANCE_COVERAGE_MM, spacing)


def _plane_spacing(ctx: Context) -> float | None:
    """The structure set's plane spacing (the slab thickness of isolated planes)."""
    spacing = getattr(ctx.data.structure_set, "plane_spacing_mm", None)
    return float(spacing) if isinstance(spacing, (int, float)) else None


def _measure_diameter(ctx: Context, names: tuple[str, ...], out: dict[str, Any]) -> None:
    from rtcheck.geometry import largest_diameter_mm, union_planes

    bad = _incomplete(ctx, names)
    if bad:
        out["diameter_problem"] = bad
        return
    mm = largest_diameter_mm(union_planes(ctx.structure(n) for n in names))
    if mm is None:
        out["diameter_problem"] = "the GTV has no closed contours"
        return
    text = "+".join(names)
    out["gtv_diameter"] = {"mm": round(mm, 3), "structure": text,
                           "how": f"measured: largest 3-D diameter of {text}'s contours"}


# ============================================================================ kind "systemic_treatments"


def evaluate_treatments(rule: SystemicTreatmentRule, ctx: Context) -> list[Finding]:
    """One finding per drug of the case (or one finding when none or unknown)."""
    case = case_of(ctx)
    if case is None:
        return ctx.skip(rule, F.NO_CASE_FILE, "reads the case's systemic_treatments: give a "
                        "case file (--case)")
    if not case.has("systemic_treatments"):
        return [finding(rule, "NOT_EVALUATED", "systemic treatments not in the case file "
                        "(write systemic_treatments = [] when there are none)",
                        code=F.FACT_MISSING, missing="systemic_treatments")]
    treatments: tuple[Treatment, ...] = case.get("systemic_treatments")
    if not treatments:
        return [finding(rule, "PASS", "no systemic treatment (systemic_treatments = [])",
                        metric="systemic_treatments")]
    table = _drug_table(rule)
    start, how = course_start(ctx)
    return [_drug_finding(rule, ctx, table, t, start, how) for t in treatments]


def _drug_table(rule: SystemicTreatmentRule) -> DrugTable:
    from rtcheck.case.drugs import DRUGS_FILE

    name = rule.drug_table or DRUGS_FILE
    return load_drug_table(None if name == DRUGS_FILE else name)


def _drug_finding(rule: SystemicTreatmentRule, ctx: Context, table: DrugTable, t: Treatment,
                  start: dt.date | None, how: str) -> Finding:
    drug = table.find(t.drug)
    common: dict[str, Any] = {"metric": t.drug, "unit": "days"}
    if drug is None:
        return finding(rule, "NOT_EVALUATED", f"{t.drug} is not in the drug table "
                       f"({table.id}): its category is unknown; add it with its source",
                       code=F.FACT_MISSING, missing="drug_category", **common)
    common["details"] = _drug_details(drug, rule)
    name = f"{t.drug} ({drug.generic}, {drug.category}: {drug.category_source})"
    concurrent = _concurrent(t, start, how)
    if concurrent is not None and drug.category == "stop":
        if start is not None:
            common["value"] = 0.0
        return finding(rule, rule.severity, f"{name}: {concurrent}: no wash-out at all (whatever "
                       "the half-life); the referential asks for a strict wash-out before the "
                       "course (section 3.1, line 902: « imposant un « wash out » strict »)", **common)
    interval = _interval(t, start)
    if interval is None:
        what = "last_dose" if t.last_dose is None and not t.ongoing else "start_date"
        return finding(rule, "NOT_EVALUATED", f"{name}: "
                       f"{'last dose not given' if what == 'last_dose' else how}",
                       code=F.FACT_MISSING, missing=f"systemic_treatments.{what}", **common)
    common["value"] = interval
    return _by_category(rule, ctx, drug, t, interval, concurrent, common)


def _concurrent(t: Treatment, start: dt.date | None, how: str) -> str | None:
    """Why the drug is given during the course (ongoing, or last dose on or after its start),
    else None."""
    if t.ongoing:
        return "ongoing"
    if t.last_dose is not None and start is not None and t.last_dose >= start:
        return (f"last dose {t.last_dose.isoformat()}, on or after the course start "
                f"{start.isoformat()} ({how}): given during the course")
    return None


def _interval(t: Treatment, start: dt.date | None) -> float | None:
    """Days from the last dose to the course start (0 when given during the course)."""
    if start is None:
        return None
    if t.ongoing:
        return 0.0
    if t.last_dose is None:
        return None
    return float(max(0, (start - t.last_dose).days))


def _by_category(rule: SystemicTreatmentRule, ctx: Context, drug: Drug, t: Treatment,
                 interval: float, concurrent: str | None, common: dict[str, Any]) -> Finding:
    """The finding of one drug: washed out (PASS), else as its category says."""
    name = f"{t.drug} ({drug.generic}, {drug.category}: {drug.category_source})"
    gap = concurrent or f"last dose {interval:g} days before the course"
    washout = drug.washout_days(rule.washout_half_lives)
    wtext = _washout_text(rule, drug, washout)
    if washout is not None:
        common["limit"], common["operator"] = round(washout[1], 2), ">="
        if concurrent is None and interval >= washout[1]:
            return finding(rule, "PASS", f"{name}: {gap}, beyond the {wtext}", **common)
    if drug.category == "stop":
        return _stop_finding(rule, f"{name}: {gap}", wtext, washout, interval, common)
    tech = ctx.technique.value
    if drug.category == "compatible" and tech == "conventional":
        return finding(rule, "PASS", f"{name}: {gap}; compatible with palliative "
                       "radiotherapy (section 3.1)", **common)
    if drug.category == "compatible":
        why = ("compatible with palliative radiotherapy, but with SBRT the referential has "
               "few data (section 3.2; the 'curative' recommendations, line 983: 'peu de "
               "données, principe de précaution')"
               + ("" if tech else f"; the technique is unknown ({ctx.technique.text})"))
    else:
        why = ("little or no data: precaution principle, risk-benefit in RCP, inform the "
               "patient (section 3.1)")
    return finding(rule, "WARN", f"{name}: {gap}; {wtext}; {why}", **common)


def _washout_text(rule: SystemicTreatmentRule, drug: Drug,
                  washout: tuple[float, float] | None) -> str:
    n = f"{rule.washout_half_lives:g}"
    if washout is None:
        return f"half-life unknown in the drug table: the wash-out of {n} half-lives cannot " \
               "be computed"
    span = f"{washout[0]:.1f}" if washout[0] == washout[1] else \
        f"{washout[0]:.1f}-{washout[1]:.1f}"
    return f"wash-out of {n} half-lives = {span} days ({drug.half_life_source})"


def _stop_finding(rule: SystemicTreatmentRule, what: str, wtext: str,
                  washout: tuple[float, float] | None, interval: float,
                  common: dict[str, Any]) -> Finding:
    """A radiosensitising drug not washed out: FAIL, WARN within a half-life range,
    NOT_EVALUATED when its half-life is unknown."""
    if washout is None:
        return finding(rule, "NOT_EVALUATED", f"{what}; {wtext}; the referential asks for a "
                       "strict wash-out (section 3.1)", code=F.FACT_MISSING,
                       missing="drug_half_life", **common)
    if interval >= washout[0]:
        return finding(rule, "WARN", f"{what}, within the {wtext} (the longest half-life not "
                       "yet covered)", **common)
    return finding(rule, rule.severity, f"{what}, before the {wtext}; the referential asks "
                   "for a strict wash-out (section 3.1)", **common)


def _drug_details(drug: Drug, rule: SystemicTreatmentRule) -> dict[str, Any]:
    washout = drug.washout_days(rule.washout_half_lives)
    return {"generic": drug.generic, "category": drug.category,
            "category_source": drug.category_source,
            "half_life_h": list(drug.half_life_h) if drug.half_life_h else None,
            "half_life_source": drug.half_life_source,
            "washout_days": [round(w, 2) for w in washout] if washout else None,
            "radiosync_delay_h": dict(drug.radiosync_delay_h) or None,
            "radiosync_source": drug.radiosync_source}


# ============================================================================ helpers


def _tech(technique: str) -> str:
    return "SBRT" if technique == "sbrt" else technique


def _show(value: Any, thresholds: tuple[float, ...] = ()) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return NONE_TEXT if math.isinf(value) else number_text(value, thresholds)
    return str(value)


def number_text(value: float, thresholds: tuple[float, ...] = ()) -> str:
    """``value`` with 2 decimals, or more where 2 would print a value that differs from a
    threshold as that threshold (4.999 beside ">= 5" prints 4.999, not 5.00)."""
    for decimals in range(2, 7):
        text = f"{value:.{decimals}f}"
        if not any(float(text) == t != value for t in thresholds):
            break
    return text.rstrip("0").rstrip(".") if "." in text and decimals > 2 else text


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isinf(value):
        return None
    if isinstance(value, tuple):
        return list(value)
    return value


#: The rule kinds this module evaluates (a protocol with one of them measures the contours).
CASE_KINDS = ("case", "systemic_treatments")


def public_measurements(measures: dict[str, Any]) -> dict[str, Any] | None:
    """The measurements as the report shows them: each value with the structures used, or
    why it could not be measured; None when nothing was attempted."""
    if not measures:
        return None
    out: dict[str, Any] = {}
    d = measures.get("tumour_cord_distance")
    out["tumour_cord_distance_mm"] = (
        {"value": d["mm"], "target": d["target"], "target_role": d["target_role"],
         "cord": d["cord"], "cord_role": d["cord_role"], "in_plane_mm": d["in_plane_mm"],
         "dz_mm": d["dz_mm"], "each": d["each"], "how": d["how"]}
        if d else {"value": None, "problem": measures.get("distance_problem")})
    g = measures.get("gtv_diameter")
    out["gtv_diameter_cm"] = (
        {"value": round(g["mm"] / 10, 4), "structure": g["structure"], "how": g["how"]}
        if g else {"value": None, "problem": measures.get("diameter_problem")})
    return out
