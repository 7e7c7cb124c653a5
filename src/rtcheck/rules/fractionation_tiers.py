"""A plan's fractionation against an indication's row, in the tiers the protocol states.

A ``fractionation`` rule (:class:`rtcheck.rules.protocols.Rule`) lists schemes and ranges in tiers,
strongest first: ``recommended`` (PASS), ``other`` (WARN), ``exceptional`` (WARN),
``allowed_elsewhere`` (WARN: allowed by another table or section than the row), then the
``biological_equivalent`` the rule defines (WARN, the definition is printed). Outside every tier
the rule's severity (FAIL). Preferences the rule states (e.g. a fractionated scheme at the spine)
turn a PASS into a WARN with their words when the facts they depend on are known, and are
printed as remarks otherwise.

Pure functions of the rule and the plan's facts: no checker, DICOM or report code here.

Doses match a listed scheme when the fractions are equal and the dose is within the rule's
``dose_tolerance_pct`` of the listed dose (a range: fractions within its bounds and the dose within
its bounds widened by the same tolerance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from rtcheck.rules.kinds import (
    FRACTIONATION_TIERS,
    SITES,
    FractionationRule,
    ListedScheme,
    Preference,
    Scheme,
)

#: Tiers an assessment may name, strongest first.
TIERS = FRACTIONATION_TIERS + ("biological_equivalent",)
TECHNIQUES = ("sbrt", "conventional")

_TIER_WORDS = {
    "recommended": "a recommended scheme",
    "other": "an other possible scheme",
    "exceptional": "a scheme allowed only exceptionally",
    "allowed_elsewhere": "allowed elsewhere in the referential",
}
_TIER_SHORT = {"recommended": "recommended", "other": "other possible",
               "exceptional": "exceptional", "allowed_elsewhere": "allowed elsewhere"}


@dataclass(frozen=True)
class SchemeAssessment:
    """Where a plan's (total dose, fractions) stands in a fractionation rule.

    Attributes
    ----------
    status : str
        ``"PASS"``, ``"WARN"``, ``"FAIL"`` (the rule's severity) or ``"NOT_EVALUATED"``.
    tier : str or None
        ``"recommended"``, ``"other"``, ``"exceptional"``, ``"allowed_elsewhere"``,
        ``"biological_equivalent"``; None outside every tier or when not evaluated.
    technique : str or None
        ``"sbrt"`` or ``"conventional"``: the technique the matched scheme/range is listed for
        (None when it names none, or nothing matched).
    source : str or None
        Where the matched scheme/range stands (``"Tableau 5"``, ``"section 2.1"``,
        ``"Tableau 7"``, ``"section 2.2.2"``).
    reason : str
        One sentence with the numbers.
    missing : str or None
        ``"site"`` when the outcome depends on the site and the site is unknown.
    details : dict
        Numbers and labels: ``matched`` (label), ``where``, ``quote``, ``also_listed``,
        ``bed_gy``, ``bed_span_gy``, ``fraction_span``, ``preferences``, ``by_site``...
    """

    status: str
    tier: str | None
    technique: str | None
    source: str | None
    reason: str
    missing: str | None = None
    details: dict = field(default_factory=dict)


def assess_scheme(rule: FractionationRule, total_gy: float, fractions: int, *, site: str | None,
                  technique: str | None) -> SchemeAssessment:
    """Assess a plan's scheme against a ``fractionation`` rule.

    Parameters
    ----------
    rule : Rule
        A ``fractionation`` rule (for another alpha/beta, pass
        ``dataclasses.replace(rule, alpha_beta=...)``).
    total_gy : float
        Total prescribed dose (Gy), > 0.
    fractions : int
        Number of fractions, >= 1.
    site : str or None
        ``"spine"``, ``"sacrum"``, ``"extraspinal"`` or None (unknown).
    technique : str or None
        The course's technique when known (``"sbrt"``, ``"conventional"``), else None.

    Returns
    -------
    SchemeAssessment
        With the site unknown and a scheme not in the row's own tiers (Tableau 5), the scheme is
        assessed at every site: the same status everywhere is returned (the weakest tier found
        is named, every site's outcome in ``details["by_site"]``); different statuses give
        NOT_EVALUATED with ``missing="site"``.

    Raises
    ------
    ValueError
        Not a fractionation rule, or a dose, fraction number, site or technique out of domain.
    """
    _check(rule, total_gy, fractions, site, technique)
    if site is None and rule.site_dependent:
        first, also, mismatched = _match(rule, total_gy, fractions, None, technique,
                                         tiers=("recommended", "other", "exceptional"),
                                         any_site=False)
        if first is not None:
            return _tier_assessment(rule, total_gy, fractions, None, technique, first, also,
                                    mismatched)
        by_site = {s: _assess_at(rule, total_gy, fractions, s, technique) for s in SITES}
        return _combine(rule, total_gy, fractions, by_site)
    return _assess_at(rule, total_gy, fractions, site, technique)


def matching_scheme_technique(rule: FractionationRule, total_gy: float, fractions: int, site: str | None
                              ) -> tuple[str, str] | None:
    """(technique, how) when the plan's scheme matches a listed scheme/range of the row that says
    its technique, else None (used to decide SBRT vs conventional).

    The listed entries are scanned in tier order (recommended, other, exceptional,
    allowed_elsewhere); the first matching entry that names a technique decides. Entries stated
    for other sites are skipped when the site is known; with the site unknown every entry
    counts (the question is the technique, not the site).
    """
    if rule.kind != "fractionation" or fractions < 1 or not math.isfinite(total_gy):
        return None
    for entry in rule.listed:
        if site is not None and not entry.applies_at(site):
            continue
        if entry.technique and entry.matches(total_gy, fractions, rule.dose_tolerance_pct):
            tech = entry.technique.lower()
            where = _place(rule, entry)
            at = f" at the {'/'.join(entry.sites)}" if entry.sites else ""
            how = (f"{'SBRT' if tech == 'sbrt' else tech} taken from {entry.label}{at} "
                   f"({_TIER_SHORT[entry.tier]}, {where}) "
                   f"of indication {rule.indication}")
            return tech, how
    return None


# ============================================================================ one site


def _assess_at(rule: FractionationRule, total: float, n: int, site: str | None, technique: str | None
               ) -> SchemeAssessment:
    first, also, mismatched = _match(rule, total, n, site, technique,
                                     tiers=FRACTIONATION_TIERS, any_site=False)
    if first is not None:
        return _tier_assessment(rule, total, n, site, technique, first, also, mismatched)
    be = _equivalent(rule, total, n, site, technique)
    if be is not None and be["inside"]:
        return _equivalent_assessment(rule, total, n, site, technique, be)
    return _outside(rule, total, n, site, technique, be, mismatched)


def _match(rule: FractionationRule, total: float, n: int, site: str | None, technique: str | None, *,
           tiers: tuple[str, ...], any_site: bool
           ) -> tuple[ListedScheme | None, list[ListedScheme], list[ListedScheme]]:
    """(first matching entry, the other matching entries, entries matching but for the
    technique). Entries stated for some sites count only at those sites."""
    tol = rule.dose_tolerance_pct
    first: ListedScheme | None = None
    also: list[ListedScheme] = []
    mismatched: list[ListedScheme] = []
    for entry in rule.listed:
        if entry.tier not in tiers:
            continue
        if not (any_site or entry.applies_at(site)) or not entry.matches(total, n, tol):
            continue
        if not _technique_fits(entry.technique, technique):
            mismatched.append(entry)
        elif first is None:
            first = entry
        else:
            also.append(entry)
    return first, also, mismatched


def _technique_fits(listed: str | None, course: str | None) -> bool:
    """A scheme listed for SBRT does not fit a course known to be conventional; anything else
    fits (a conventional scheme given with stereotactic precision is still that scheme)."""
    return not (listed == "SBRT" and course == "conventional")


def _tier_assessment(rule: FractionationRule, total: float, n: int, site: str | None,
                     technique: str | None, entry: ListedScheme, also: list[ListedScheme],
                     mismatched: list[ListedScheme]) -> SchemeAssessment:
    label = _label(total, n)
    status = "PASS" if entry.tier == "recommended" else "WARN"
    place = _place(rule, entry)
    quote = f": « {entry.quote} »" if entry.quote else ""
    at = f" at the {'/'.join(entry.sites)}" if entry.sites else ""
    if entry.tier == "allowed_elsewhere":
        own = rule.schemes_source or "the indication's row"
        reason = (f"{label} is not listed in {own} for indication {rule.indication} but is "
                  f"allowed elsewhere in the referential: {entry.label}{at} ({place}{quote})")
    else:
        reason = (f"{label} is {_TIER_WORDS[entry.tier]} for indication {rule.indication}: "
                  f"{entry.label} ({place}{quote})")
    if entry.note:
        reason += f"; note: {entry.note}"
    if entry.technique == "conventional" and technique == "sbrt":
        reason += "; listed for conventional radiotherapy, the course is SBRT"
    extra = [e for e in also if _place(rule, e) != place or e.label != entry.label]
    if extra:
        reason += "; also: " + ", ".join(f"{e.label} ({_TIER_SHORT[e.tier]}"
                                         f", {_place(rule, e)})" for e in extra)
    details: dict[str, Any] = {"matched": entry.label, "where": entry.where, "quote": entry.quote,
                               "also_listed": [_entry_dict(rule, e) for e in also]}
    if entry.sites:
        details["sites"] = list(entry.sites)
    if mismatched:
        details["technique_mismatch"] = [_entry_dict(rule, e) for e in mismatched]
    status, reason = _preferences(rule, total, n, site, status, reason, details)
    return SchemeAssessment(status, entry.tier, _tech(entry.technique), entry.source
                            or rule.schemes_source or rule.source, reason, details=details)


# ============================================================================ biological equivalent


def _equivalent(rule: FractionationRule, total: float, n: int, site: str | None, technique: str | None
                ) -> dict[str, Any] | None:
    """The biological-equivalent numbers at a site, or None when the rule allows none there."""
    if not rule.biological_equivalent or rule.alpha_beta is None:
        return None
    span = rule.bed_span(site)
    fx = rule.equivalent_fraction_span(site)
    if span is None or fx is None:
        return None
    ab = rule.alpha_beta
    b = total * (1.0 + total / n / ab)
    tol = rule.dose_tolerance_pct / 100.0
    tech = rule.biological_equivalent_technique
    fits = _technique_fits(tech, technique) and not (tech == "conventional" and technique == "sbrt")
    inside_bed = span[0] * (1 - tol) <= b <= span[1] * (1 + tol)
    inside_fx = fx[0] <= n <= fx[1]
    basis = rule.equivalent_basis(site)
    return {"alpha_beta": ab, "bed_gy": b, "bed_span_gy": [span[0], span[1]],
            "fraction_span": [fx[0], fx[1]], "inside_bed": inside_bed, "inside_fractions": inside_fx,
            "technique_fits": fits, "inside": inside_bed and inside_fx and fits,
            "basis": [{"scheme": e.label, "source": _place(rule, e),
                       "bed_gy": [min(e.beds(ab)), max(e.beds(ab))]} for e in basis]}


def _equivalent_text(rule: FractionationRule, be: dict[str, Any]) -> str:
    ab = f"{be['alpha_beta']:g}"
    lo, hi = be["bed_span_gy"]
    f0, f1 = be["fraction_span"]
    return (f"BED{ab} = {be['bed_gy']:.1f} Gy, span [{lo:.1f}, {hi:.1f}] Gy, fractions "
            f"{f0}-{f1}; biological equivalent = {rule.biological_equivalent_definition}")


def _equivalent_assessment(rule: FractionationRule, total: float, n: int, site: str | None,
                           technique: str | None, be: dict[str, Any]) -> SchemeAssessment:
    at = f" at the {site}" if site else ""
    tech = rule.biological_equivalent_technique
    reason = (f"{_label(total, n)} is not a listed scheme for indication {rule.indication}{at}; "
              f"it is a biological equivalent of the listed {tech + ' ' if tech else ''}schemes "
              f"as rtcheck defines it ({_equivalent_text(rule, be)})")
    details: dict[str, Any] = {"matched": None, **_be_details(be)}
    status, reason = _preferences(rule, total, n, site, "WARN", reason, details)
    return SchemeAssessment(status, "biological_equivalent", _tech(tech),
                            rule.schemes_source or rule.source, reason, details=details)


def _be_details(be: dict[str, Any]) -> dict[str, Any]:
    return {k: be[k] for k in ("bed_gy", "bed_span_gy", "fraction_span", "basis")}


# ============================================================================ outside


def _outside(rule: FractionationRule, total: float, n: int, site: str | None, technique: str | None,
             be: dict[str, Any] | None, mismatched: list[ListedScheme]) -> SchemeAssessment:
    at = f" at the {site}" if site else ""
    reason = f"{_label(total, n)} is outside every tier for indication {rule.indication}{at}"
    parts = []
    details: dict[str, Any] = {"matched": None}
    if mismatched:
        parts.append("listed only for SBRT (" + ", ".join(
            f"{e.label}, {_place(rule, e)}" for e in mismatched) + f"), the course is {technique}")
        details["technique_mismatch"] = [_entry_dict(rule, e) for e in mismatched]
    if be is not None:
        details.update(_be_details(be))
        why = []
        if not be["technique_fits"]:
            why.append(f"the course is {technique}")
        if not be["inside_bed"]:
            why.append("BED outside the span")
        if not be["inside_fractions"]:
            why.append(f"{n} fractions outside {be['fraction_span'][0]}-{be['fraction_span'][1]}")
        parts.append(f"not a biological equivalent ({', '.join(why)}; {_equivalent_text(rule, be)})")
    elif rule.biological_equivalent:
        parts.append("no biological equivalent defined here")
    near = _nearest(rule, total, n, site)
    parts.append(f"nearest listed: {near}")
    details["nearest"] = near
    return SchemeAssessment(rule.severity, None, None, None, reason + ": " + "; ".join(parts),
                            details=details)


def _nearest(rule: FractionationRule, total: float, n: int, site: str | None, count: int = 3) -> str:
    """The listed entries closest to the plan: fewest fractions away, then dose."""
    def distance(e: ListedScheme) -> tuple[float, float]:
        if isinstance(e, Scheme):
            return abs(e.fractions - n), abs(e.dose - total)
        dfx = 0 if e.fractions_min <= n <= e.fractions_max else min(
            abs(e.fractions_min - n), abs(e.fractions_max - n))
        dd = 0.0 if e.dose_min <= total <= e.dose_max else min(
            abs(e.dose_min - total), abs(e.dose_max - total))
        return dfx, dd

    seen: list[str] = []
    for e in sorted((e for e in rule.listed if e.applies_at(site)), key=distance):
        text = f"{e.label} ({_TIER_SHORT[e.tier]}, {_place(rule, e)})"
        if text not in seen:
            seen.append(text)
        if len(seen) == count:
            break
    return ", ".join(seen)


# ============================================================================ site unknown


def _combine(rule: FractionationRule, total: float, n: int, by_site: dict[str, SchemeAssessment]
             ) -> SchemeAssessment:
    label = _label(total, n)
    summary = {s: {"status": a.status, "tier": a.tier, "source": a.source,
                   "matched": a.details.get("matched"), "reason": a.reason}
               for s, a in by_site.items()}

    def short(s: str, a: SchemeAssessment) -> str:
        if a.tier is None:
            return f"{s}: {a.status} (outside every tier)"
        what = a.details.get("matched") or "BED within the span"
        return f"{s}: {a.status} ({a.tier}, {what}, {a.source})"

    shorts = "; ".join(short(s, a) for s, a in by_site.items())
    statuses = {a.status for a in by_site.values()}
    own = rule.schemes_source or "the indication's row"
    if len(statuses) == 1:
        rank = {t: i for i, t in enumerate(TIERS)}
        pick = max(by_site.values(), key=lambda a: rank.get(a.tier, len(TIERS)))  # type: ignore[arg-type]
        reason = (f"site not given; {label} is not listed in {own} for indication "
                  f"{rule.indication} and is {pick.status} at every site ({shorts}); "
                  f"{pick.reason}")
        details = dict(pick.details, by_site=summary)
        return SchemeAssessment(pick.status, pick.tier, pick.technique, pick.source, reason,
                                details=details)
    reason = (f"site not given: {label} is not listed in {own} for indication "
              f"{rule.indication} and its assessment depends on the site ({shorts}); give the site")
    return SchemeAssessment("NOT_EVALUATED", None, None, None, reason, missing="site",
                            details={"by_site": summary})


# ============================================================================ preferences


def _preferences(rule: FractionationRule, total: float, n: int, site: str | None, status: str, reason: str,
                 details: dict[str, Any]) -> tuple[str, str]:
    """Apply the rule's preferences: a WARN (status PASS -> WARN) when the facts are known and
    the plan does not follow it, a remark when it depends on a fact rtcheck does not have."""
    applied, remarks, out = [], [], []
    for p in rule.preferences:
        if p.followed_by(total, n, rule.dose_tolerance_pct):
            continue
        if p.sites and site is not None and site not in p.sites:
            continue
        conditions = []
        if p.condition:
            conditions.append(p.condition)
        if p.sites and site is None:
            conditions.append(f"site {'/'.join(p.sites)}")
        text = f"« {p.quote} » ({p.source})"
        if conditions:
            remarks.append(f"if {' and '.join(conditions)}: {text}")
        else:
            applied.append(f"{_prefers(p)}: {text}")
        out.append({"prefer": p.label, "quote": p.quote, "source": p.source,
                    "condition": p.condition, "sites": list(p.sites),
                    "applied": not conditions})
    if applied:
        status = "WARN" if status == "PASS" else status
        reason += "; preference: " + "; ".join(applied)
    if remarks:
        reason += "; remark: " + "; ".join(remarks)
    if out:
        details["preferences"] = out
    return status, reason


def _prefers(p: Preference) -> str:
    at = f" at the {'/'.join(p.sites)}" if p.sites else ""
    return f"{p.label} is preferred{at}"


# ============================================================================ helpers


def _check(rule: FractionationRule, total: float, n: int, site: str | None, technique: str | None) -> None:
    if rule.kind != "fractionation":
        raise ValueError(f"rule {rule.id!r} is a {rule.kind} rule, not a fractionation rule")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"fractions must be a whole number >= 1, got {n!r}")
    if isinstance(total, bool) or not isinstance(total, (int, float)) \
            or not math.isfinite(total) or total <= 0:
        raise ValueError(f"total dose must be a finite number > 0 Gy, got {total!r}")
    if site is not None and site not in SITES:
        raise ValueError(f"site {site!r}: expected one of {', '.join(SITES)} or None")
    if technique is not None and technique not in TECHNIQUES:
        raise ValueError(f"technique {technique!r}: expected one of {', '.join(TECHNIQUES)} "
                         "or None")


def _label(total: float, n: int) -> str:
    return f"{total:g} Gy/{n}"


def _tech(technique: str | None) -> str | None:
    return technique.lower() if technique else None


def _place(rule: FractionationRule, entry: ListedScheme) -> str:
    source = entry.source or rule.schemes_source or rule.source
    return f"{source}, {entry.where}" if entry.where else source


def _entry_dict(rule: FractionationRule, entry: ListedScheme) -> dict[str, Any]:
    return {"scheme": entry.label, "tier": entry.tier,
            "source": entry.source or rule.schemes_source or rule.source, "where": entry.where,
            "technique": _tech(entry.technique), "sites": list(entry.sites)}
