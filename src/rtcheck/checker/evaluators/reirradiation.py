"""Rule kind ``reirradiation``: doses summed over courses, and the interval between them.

Quantities (``quantity`` in the rule):

``cumulative_eqd2_max``
    EQD2 of the rule's metric (the point maximum) summed over every course.
``course_eqd2_max``
    EQD2 of this course alone.
``course_share``
    this course's EQD2 / the cumulative EQD2.
``cumulative_bed_max`` / ``each_course_bed_max``
    BED summed over the courses / the largest single-course BED (Nieder 2006).
``interval_months``
    calendar months from the prior course's last fraction to this course.

Each course is converted with its own dose per fraction (its metric / its fractions). Every
course is read on the same kind of structure (thecal sac with thecal sac, cord with cord): a
kind that a prior course does not give is not summed, and the finding says which kind stood in.
A rule applied outside the situation it was derived for (SBRT after SBRT, a third course) is
evaluated and its PASS becomes a WARN saying so.
"""

from __future__ import annotations

import math
from typing import Any

from rtcheck.checker import findings as F
from rtcheck.checker.courses import END_ESTIMATE
from rtcheck.checker.evaluators.context import Context, finding, fx, join
from rtcheck.checker.evaluators.scope import out_of_scope, technique_caveat
from rtcheck.checker.evaluators.structures import (
    Target,
    TargetResult,
    decide,
    rule_targets,
    target_dvh,
)
from rtcheck.checker.findings import Finding
from rtcheck.radiobiology import bed, eqd2, months_between
from rtcheck.rules import ReirradiationRule
from rtcheck.rules.protocols import Limit, Rule

#: An interval estimated from a plan date PASSes only with this margin (months) above the
#: limit; below it the prior course may have ended later than estimated: WARN.
ESTIMATE_MARGIN_MONTHS = 1.0

#: Keys of a finding's ``details["remaining_dose"]`` (see :class:`rtcheck.checker.budget.OrganBudget`).
REMAINING_DOSE_KEYS = ("role", "stands_for", "fractions", "max_gy", "exact_gy", "binding_rule",
                       "review_max_gy", "review_binding_rule", "code")

#: Quantities whose findings add the voxel-wise sum in ``details`` (keys ``voxel_*``).
VOXEL_QUANTITIES = ("cumulative_eqd2_max", "course_share", "cumulative_bed_max")

_LABELS = {
    "cumulative_eqd2_max": "cumulative EQD2 of {m}",
    "course_eqd2_max": "EQD2 of {m}, this course",
    "course_share": "EQD2 of {m}: this course / cumulative",
    "cumulative_bed_max": "cumulative BED of {m}",
    "each_course_bed_max": "largest single-course BED of {m}",
    "interval_months": "interval since the previous course",
}


def evaluate(rule: Rule, ctx: Context) -> list[Finding]:
    if not isinstance(rule, ReirradiationRule):  # the registry sends only this kind here
        raise TypeError(f"rule {rule.id} is of kind {rule.kind}, not reirradiation")
    if not ctx.is_reirradiation:
        return ctx.skip(rule, F.NOT_APPLICABLE, "no prior course given (not a re-irradiation)")
    metric = _LABELS[rule.quantity or ""].format(m=rule.metric)
    why = out_of_scope(rule, ctx)
    if why:
        return ctx.skip(rule, F.OUT_OF_SCOPE, why)
    if not ctx.priors and ctx.interval_months is None:
        return [finding(rule, "NOT_EVALUATED", "indication reirradiation but no prior course "
                        "given (--prior PATH or --prior-summary)", role=rule.role, metric=metric,
                        code=F.FACT_MISSING, missing="prior_course")]
    others = _other_patients(ctx) or _dated_after(ctx)
    if others:
        return [finding(rule, "NOT_EVALUATED", f"{others}; never summed with this plan",
                        role=rule.role, metric=metric, code=F.PRIOR_MISMATCH)]
    if rule.quantity == "interval_months":
        out = _interval(rule, ctx, metric)
    else:
        got = _doses(rule, ctx, metric)
        if got is None:  # no cord near the lesion: recorded as skipped
            return []
        out = got
        _add_remaining_dose(ctx, out)
    out.details["quantity"] = rule.quantity
    if out.details.get("warn_up_to") is None and rule.limits[0].warn_up_to is not None:
        out.details["warn_up_to"] = rule.limits[0].warn_up_to
    return [outside_derivation(rule, ctx, out)]


def _add_remaining_dose(ctx: Context, out: Finding) -> None:
    """``details["remaining_dose"]``: the largest point maximum this course could have given
    the structure that decided, in its number of fractions, with every re-irradiation rule
    holding (:mod:`rtcheck.checker.budget`, from the same rules and prior courses)."""
    n = ctx.fractions
    if not ctx.priors or n is None or out.role is None:
        return
    from rtcheck.checker.budget import budget_from_rules  # budget reads this package

    organ = budget_from_rules(ctx.rules, ctx.priors, [n], technique=ctx.technique.value,
                              below_conus=ctx.below_conus,
                              ab_overrides=ctx.ab_overrides).organ(out.role, n)
    if organ is not None:
        out.details["remaining_dose"] = {
            key: getattr(organ, key) for key in REMAINING_DOSE_KEYS}


def _other_patients(ctx: Context) -> str:
    """Prior plans not shown to be this patient's: another PatientID, or one of the two
    missing (a summary is the user's statement about this patient and has none)."""
    this = ctx.data.plan.patient_id if ctx.data.plan else None
    bad = [f"{p.label} (patient {p.patient_id or 'unknown'})" for p in ctx.priors
           if p.from_plan and not (this and p.patient_id and p.patient_id == this)]
    return ("prior course(s) not shown to be this patient's: " + "; ".join(bad)
            + f" vs this plan's patient {this or 'unknown'}") if bad else ""


def _dated_after(ctx: Context) -> str:
    """Prior courses that began or ended after this course: not a prior course."""
    if ctx.date is None:
        return ""
    bad = [f"{p.label} ({p.date or p.end_date})" for p in ctx.priors
           if (p.date and p.date > ctx.date) or (p.end_date and p.end_how != END_ESTIMATE
                                                 and p.end_date > ctx.date)]
    return (f"prior course(s) dated after this course ({ctx.date}, {ctx.date_how}): "
            + "; ".join(bad)) if bad else ""


def outside_derivation(rule: ReirradiationRule, ctx: Context, out: Finding) -> Finding:
    """PASS -> WARN when the rule is applied to courses it was not derived for."""
    caveats = []
    if rule.prior_technique:
        for p in ctx.priors:
            tech = p.technique.value
            if tech is None:
                caveats.append(f"the technique of {p.label} is unknown ({p.technique.text}); "
                               f"the rule was derived after a {rule.prior_technique} course")
            elif tech != rule.prior_technique:
                caveats.append(f"{p.label} was {'SBRT' if tech == 'sbrt' else tech}: the rule was "
                               f"derived for re-irradiation after a {rule.prior_technique} course")
    if rule.max_prior_courses is not None and len(ctx.priors) > rule.max_prior_courses:
        caveats.append(f"{len(ctx.priors) + 1} courses (iterative re-irradiation): the rule was "
                       f"derived for {rule.max_prior_courses + 1} courses")
    caveat = technique_caveat(rule, ctx)
    if caveat:
        caveats.append(caveat)
    # the rules derived together (same technique) of this organ, or all of them for a rule
    # of no organ (the interval: Sahgal's fourth characteristic)
    caveats += [text for other, text in dropped_for_fractions(ctx)
                if other is not rule and other.technique == rule.technique
                and (rule.role is None or other.role == rule.role)]
    if not caveats:
        return out
    out.details["outside_derivation"] = caveats
    out.reason = join(out.reason, *caveats)
    if out.status == "PASS":
        out.status, out.code = "WARN", F.OUTSIDE_DERIVATION
    return out


def dropped_for_fractions(ctx: Context) -> list[tuple[ReirradiationRule, str]]:
    """The re-irradiation dose rules not applied only because of the course's number of
    fractions (Sahgal's course rules: 1-5 fraction SBRT), each with the caveat it puts on
    the rules of its organ that are applied: they were derived together, for courses of
    those fractions, so those are applied outside their derivation (a PASS is a WARN).
    ``rtcheck budget`` gives the same caveat on the bounds."""
    if not ctx.priors:
        return []
    n = ctx.fractions
    out = []
    for rule in ctx.rules:
        if not (isinstance(rule, ReirradiationRule)
                and rule.quantity not in (None, "interval_months")):
            continue
        why = out_of_scope(rule, ctx)
        if why is None or out_of_scope(rule, ctx, count_fractions=False) is not None:
            continue
        span = rule.fraction_span or rule.applies_to_fractions
        tech = {"sbrt": "SBRT "}.get(rule.technique or "", f"{rule.technique or ''} ".lstrip())
        derived = f"{span[0]}-{span[1]} fraction {tech}courses" if span else "other courses"
        out.append((rule, f"{rule.id} not applied ({why}): the re-irradiation rules were "
                          f"derived together for {derived}, so with {n} fractions the others "
                          "are applied outside their derivation"))
    return out


# ---------------------------------------------------------------------------- interval


def _interval(rule: ReirradiationRule, ctx: Context, metric: str) -> Finding:
    limit = rule.limits[0]
    common: dict[str, Any] = dict(metric=metric, limit=limit.limit, operator=limit.operator,
                                  details={"requirement": limit.label(rule.unit)})
    if ctx.interval_months is not None:
        months = float(ctx.interval_months)
        common["value"] = months
        status = limit.status(months, rule.severity)
        return finding(rule, status, f"interval {months:.2f} months (given, --interval-months); "
                       f"required {limit.label('months')}", **common)
    unknown = [p for p in ctx.priors if p.end_date is None]
    if unknown:
        return finding(rule, "NOT_EVALUATED", "last fraction of the prior course unknown: "
                       + "; ".join(f"{p.label}: {p.end_text}" for p in unknown)
                       + " (or give --interval-months)", code=F.PRIOR_UNKNOWN,
                       missing="prior_end_date", **common)
    if ctx.date is None:
        return finding(rule, "NOT_EVALUATED", "date of this course unknown: no RTPlanDate (give "
                       "--date or --interval-months)", code=F.FACT_MISSING, missing="date",
                       **common)
    latest = max(ctx.priors, key=lambda p: p.end_date)  # type: ignore[arg-type, return-value]
    end = latest.end_date
    if end > ctx.date:  # type: ignore[operator]
        return finding(rule, "NOT_EVALUATED", f"the prior course ends {end} ({latest.end_text}), "
                       f"after this course's date {ctx.date} ({ctx.date_how})",
                       code=F.PRIOR_MISMATCH, **common)
    months = months_between(end, ctx.date)  # type: ignore[arg-type]
    common["value"] = months
    common["details"].update(prior_end=end.isoformat(), prior_end_how=latest.end_how,  # type: ignore[union-attr]
                             this_date=ctx.date.isoformat(), this_date_how=ctx.date_how)
    status = limit.status(months, rule.severity)
    text = (f"interval {months:.2f} calendar months from {latest.label}'s last fraction "
            f"({latest.end_text}) to this course ({ctx.date}, {ctx.date_how}); required "
            f"{limit.label('months')}")
    if latest.end_how == END_ESTIMATE and status == "PASS" and \
            months < limit.limit + ESTIMATE_MARGIN_MONTHS:
        status = "WARN"
        text += (f"; the end of the prior course is an estimate from its plan date and the "
                 f"interval is within {ESTIMATE_MARGIN_MONTHS:g} month of the limit: confirm "
                 "with the treatment records")
    return finding(rule, status, text, **common)


# ---------------------------------------------------------------------------- doses


def _doses(rule: ReirradiationRule, ctx: Context, metric: str) -> Finding | None:
    limit = rule.limits[0]
    ab, ab_note = ctx.alpha_beta(rule)
    if ab is None:  # the protocol reader requires an alpha/beta on a dose quantity
        raise ValueError(f"rule {rule.id}: a dose quantity without alpha/beta")
    common: dict[str, Any] = dict(metric=metric, limit=limit.limit, operator=limit.operator,
                                  alpha_beta=ab)
    n = ctx.fractions
    if n is None:
        return finding(rule, "NOT_EVALUATED", ctx.fractions_unknown(), role=rule.role,
                       code=F.FRACTIONS_UNKNOWN, **common)
    targets = rule_targets(rule, ctx)
    if targets is None:
        return None
    if isinstance(targets, Finding):
        targets.alpha_beta, targets.metric = ab, metric
        return targets
    needs_priors = rule.quantity != "course_eqd2_max"
    if needs_priors and not ctx.priors:  # only --interval-months given: no prior dose to add
        return finding(rule, "NOT_EVALUATED", "no prior course dose given (--prior PATH or "
                       "--prior-summary): the cumulative dose cannot be known", role=rule.role,
                       code=F.PRIOR_UNKNOWN, missing="prior_course", **common)
    results = [_on_target(rule, ctx, t, limit, n, ab, needs_priors) for t in targets]
    results = _same_kind(rule, ctx, results) if needs_priors else results
    common["details"] = {"requirement": limit.label(rule.unit)}
    out = decide(rule, results, limit.operator in ("<", "<="), **common)
    out.reason = join(out.reason, ab_note)
    return out


#: Organs that contain another (role -> contained role): a point of the cord is a point of the
#: thecal sac and of the cord PRV, so their maximum in any course is at least the cord's.
CONTAINS = {"thecal_sac": "spinal_cord", "spinal_cord_prv": "spinal_cord"}


def _same_kind(rule: ReirradiationRule, ctx: Context, results: list[TargetResult]) -> list[TargetResult]:
    """Drop the structure kinds a prior course does not give, when another kind can be summed
    over every course; the kind summed then stands in for the source's structure.

    A stand-in never passes for the source's structure when this course's dose on that
    structure is known: its PASS (or WARN) becomes NOT_EVALUATED, naming the prior dose
    needed. And when the structure contains the stand-in (the thecal sac contains the cord),
    the prior's cord maximum is a lower bound of the prior's sac maximum: a sum that already
    violates the limit with it is a FAIL (:func:`_contained_bound`).
    """
    summed = [r for r in results if r.code != F.PRIOR_UNKNOWN]
    if not summed or len(summed) == len(results):
        return results
    dropped = [r for r in results if r.code == F.PRIOR_UNKNOWN]
    for r in dropped:
        ctx.note("scope", f"{rule.id}: {r.target.label!r} ({r.target.role}) not summed: {r.text}")
    source = [r for r in dropped if r.target.role == rule.role]
    if not source:
        return summed
    bound = _contained_bound(rule, ctx, source[0])
    if bound is not None:
        return [bound, *summed]
    out = []
    for r in summed:
        stand_in = Target(r.target.names, r.target.role, rule.role)
        if r.status in ("PASS", "WARN") and "this_course" in source[0].details:
            out.append(TargetResult(
                stand_in, "NOT_EVALUATED",
                f"{r.text}; but {r.target.role} only stands in for the {rule.role}, whose dose "
                f"in this course is known ({source[0].target.label!r}) and whose prior maximum "
                f"is not: give it (e.g. sac_dmax= in --prior-summary) to evaluate the rule on "
                f"the structure it was derived for", r.value, F.PRIOR_UNKNOWN,
                source[0].missing, r.details))
        else:
            out.append(TargetResult(stand_in, r.status, r.text, r.value, r.code, r.missing,
                                    r.details))
    return out


def _contained_bound(rule: ReirradiationRule, ctx: Context, r: TargetResult) -> TargetResult | None:
    """A FAIL for a summed rule on ``r``'s organ when this course's dose on it plus each prior's
    maximum on the organ it contains (a lower bound of the prior's maximum on it) already
    violates the limit; None otherwise."""
    inner = CONTAINS.get(r.target.role)
    this = r.details.get("this_course")
    if inner is None or this is None or rule.quantity not in ("cumulative_eqd2_max",
                                                              "cumulative_bed_max"):
        return None
    ab, _ = ctx.alpha_beta(rule)
    if ab is None or rule.metric is None:
        return None
    convert = bed if rule.quantity == "cumulative_bed_max" else eqd2
    total, parts = this["value_gy"], [f"this course {this['dose_gy']:.2f} Gy -> "
                                      f"{this['value_gy']:.2f} Gy"]
    for p in ctx.priors:
        value = p.value(rule.metric, inner)
        if value is None or math.isnan(value) or not p.fractions:
            return None
        v = float(convert(value, p.fractions, ab))
        total += v
        parts.append(f"{p.label} {inner} {value:.2f} Gy in {fx(p.fractions)} -> {v:.2f} Gy")
    limit = rule.limits[0]
    if limit.status(total, rule.severity) != "FAIL":
        return None
    return TargetResult(r.target, "FAIL", f"{r.target.label!r}: the prior's {r.target.role} "
                        f"maximum is unknown, but the {r.target.role} contains the {inner}, so "
                        f"it is at least the {inner}'s: " + " + ".join(parts)
                        + f" = {total:.2f} Gy at least; required {limit.label(rule.unit)}",
                        total, details={"lower_bound": True, "contained_role": inner})


def _on_target(rule: ReirradiationRule, ctx: Context, target: Target, limit: Limit, n: int, ab: float,
               needs_priors: bool) -> TargetResult:
    dvh, problem = target_dvh(target, rule, ctx)
    if problem is not None:
        return problem
    if not dvh.fully_covered:
        return TargetResult(target, "NOT_EVALUATED", f"only {dvh.covered_fraction:.1%} of "
                            f"{target.label!r} lies inside the dose grid: this course's "
                            f"{rule.metric} unknown", code=F.NOT_COVERED)
    this = dvh.metric(rule.metric)
    if math.isnan(this):
        return TargetResult(target, "NOT_EVALUATED", f"{rule.metric} does not exist for "
                            f"{target.label!r} ({dvh.volume_cc:.2f} cc)", code=F.METRIC_UNDEFINED)
    convert = bed if rule.quantity in ("cumulative_bed_max", "each_course_bed_max") else eqd2
    word = "BED" if convert is bed else "EQD2"
    courses = [{"course": "this plan", "structure": target.label, "role": target.role,
                "dose_gy": this, "fractions": n, "value_gy": float(convert(this, n, ab)),
                "quantity": word}]
    parts = [f"this course {this:.2f} Gy in {fx(n)} -> {courses[0]['value_gy']:.2f} Gy"]
    if needs_priors:
        for p in ctx.priors:
            value = p.value(rule.metric, target.role)  # type: ignore[arg-type]
            if value is None or math.isnan(value) or not p.fractions:
                return TargetResult(target, "NOT_EVALUATED", f"{p.label}: {rule.metric} of the "
                                    f"{target.role} unknown" + (f" ({'; '.join(p.notes)})"
                                                               if p.notes else ""),
                                    code=F.PRIOR_UNKNOWN, missing=f"prior_{target.role}_dose",
                                    details={"this_course": courses[0]})
            v = float(convert(value, p.fractions, ab))
            courses.append({"course": p.label, "structure": p.structures.get(target.role),
                            "role": target.role, "dose_gy": value, "fractions": p.fractions,
                            "value_gy": v, "quantity": word})
            parts.append(f"{p.label} {value:.2f} Gy in {fx(p.fractions)} -> {v:.2f} Gy")
    total = sum(c["value_gy"] for c in courses)
    conv = f"{word} at alpha/beta {ab:g} Gy (LQ, each course with its own dose per fraction)"
    quantity = rule.quantity
    if quantity in ("course_eqd2_max",):
        value, text = courses[0]["value_gy"], f"{conv}: {parts[0]}"
    elif quantity in ("cumulative_eqd2_max", "cumulative_bed_max"):
        value = total
        text = f"{conv}: " + " + ".join(parts) + f" = {total:.2f} Gy (sum of maxima: an upper bound)"
    elif quantity == "each_course_bed_max":
        top = max(courses, key=lambda c: c["value_gy"])
        value, text = top["value_gy"], f"{conv}: " + "; ".join(parts) + f"; largest: {top['course']}"
    else:  # course_share
        value = courses[0]["value_gy"] / total if total > 0 else 0.0
        text = f"{conv}: {courses[0]['value_gy']:.2f} / {total:.2f} Gy = {value:.3f}"
    status = limit.status(value, rule.severity)
    band = " (no-consensus band)" if status == "WARN" else ""
    details = {"courses": courses}
    if quantity in ("cumulative_eqd2_max", "course_share"):
        details["cumulative_eqd2_gy"] = total
    if quantity == "cumulative_bed_max":
        details["cumulative_bed_gy"] = total
    if quantity in VOXEL_QUANTITIES:
        details.update(_voxelwise(ctx, target, n, ab, word))
    return TargetResult(target, status, f"{target.label!r}: {text}; required "
                        f"{limit.label(rule.unit)}{band}", value, details=details)


# ---------------------------------------------------------------------------- voxel-wise


def _voxelwise(ctx: Context, target: Target, n: int, ab: float, word: str) -> dict[str, Any]:
    """The courses summed point by point on the organ (:func:`rtcheck.accumulation.organ_sum`),
    beside the source's sum of maxima, which stays the rule's value.

    Keys: ``voxel_code`` (``evaluated``, ``no_prior_dose``, ``no_registration``,
    ``not_covered``), ``voxel_reason``, ``voxel_cumulative_eqd2_gy`` (or ``_bed_gy``), this
    course's ``voxel_course_share`` at that point, ``voxel_point_mm``, ``voxel_courses``,
    ``voxel_envelope_eqd2_gy`` (or ``_bed_gy``: the largest sum within ``uncertainty_mm`` of
    the organ) with ``voxel_envelope_reason`` when unknown, and ``voxel_mapping``.
    """
    from rtcheck import accumulation as acc

    radius = ctx.uncertainty_mm if ctx.uncertainty_mm is not None else acc.DEFAULT_UNCERTAINTY_MM
    key = word.lower()
    out: dict[str, Any] = {"uncertainty_mm": radius, f"voxel_cumulative_{key}_gy": None,
                           "voxel_course_share": None, f"voxel_envelope_{key}_gy": None}
    pairs = _prior_doses(ctx)
    if isinstance(pairs, tuple):
        out.update(voxel_code=pairs[0], voxel_reason=pairs[1])
        return out
    spacing = getattr(ctx.data.structure_set, "plane_spacing_mm", None)
    this = acc.CourseDose("this plan", ctx.data.dose, n)  # type: ignore[arg-type]
    got = acc.organ_sum([ctx.structure(name) for name in target.names], spacing, this, pairs,
                        ab, word, radius)
    out.update({"voxel_code": got.code, "voxel_reason": got.reason or None,
                f"voxel_cumulative_{key}_gy": got.value, "voxel_course_share": got.share,
                f"voxel_envelope_{key}_gy": got.envelope,
                "voxel_envelope_reason": got.envelope_reason,
                "voxel_point_mm": list(got.point) if got.point else None,
                "voxel_courses": list(got.courses),
                "voxel_mapping": [how.how for _, how in pairs]})
    return out


def _prior_doses(ctx: Context) -> list[Any] | tuple[str, str]:
    """Each prior course's dose with its frame mapping, or (code, why) when one is missing."""
    from rtcheck import accumulation as acc

    frame = ctx.data.dose.frame_of_reference_uid if ctx.data.dose else None
    pairs = []
    for p in ctx.priors:
        if p.dose is None or not p.fractions:
            return acc.accumulate.NO_DOSE, (f"{p.label}: no usable dose grid (a summary gives "
                                            "only point maxima): voxel-wise sum unknown, the "
                                            "sum of maxima stands")
        how = acc.mapping(frame, p.dose.frame_of_reference_uid, ctx.registrations)
        if isinstance(how, str):
            return acc.accumulate.NO_MAPPING, (f"{p.label}: {how}: voxel-wise sum unknown, the "
                                               "sum of maxima stands")
        pairs.append((acc.CourseDose(p.label, p.dose, p.fractions), how))
    return pairs


def voxelwise_text(details: dict[str, Any]) -> str:
    """One line for people (the check table, the HTML report) from the ``voxel_*`` keys:
    ``voxel-wise: cumulative EQD2 max 52.46 Gy (this course 59 %) at (5, 0, 10) mm;
    envelope 2 mm: 54.44 Gy`` or why it is unknown."""
    key = "bed" if "voxel_cumulative_bed_gy" in details else "eqd2"
    word = key.upper()
    if details.get("voxel_code") != "evaluated":
        return (f"voxel-wise sum not evaluated ({details.get('voxel_code')}): "
                f"{details.get('voxel_reason')}")
    value = details.get(f"voxel_cumulative_{key}_gy")
    point = details.get("voxel_point_mm") or []
    share = details.get("voxel_course_share")
    text = (f"voxel-wise: cumulative {word} max {value:.2f} Gy"
            + (f" (this course {share:.0%})" if share is not None else "")
            + (" at (" + ", ".join(f"{c:g}" for c in point) + ") mm" if point else ""))
    radius = details.get("uncertainty_mm")
    envelope = details.get(f"voxel_envelope_{key}_gy")
    if envelope is not None:
        text += f"; envelope {radius:g} mm: {envelope:.2f} Gy"
    elif details.get("voxel_envelope_reason"):
        text += f"; envelope unknown: {details['voxel_envelope_reason']}"
    return text
