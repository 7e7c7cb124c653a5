"""Rule types: one per kind of rule, and the values they hold (schemes, ranges, limits).

A protocol file (:mod:`rtcheck.rules.protocols` reads and validates it) becomes a tuple of these
frozen objects: :class:`FractionationRule`, :class:`PrescriptionRangeRule`,
:class:`DoseLimitRule`, :class:`ReirradiationRule`, :class:`WarningRule`, all :class:`Rule`.
Each kind has its evaluator in :mod:`rtcheck.checker.evaluators`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

SITES = ("spine", "sacrum", "extraspinal")
#: Default tolerance (percent of the listed dose) when a plan's dose is compared with a listed
#: scheme or a range bound; it absorbs rounding of the stored prescription, nothing more.
DEFAULT_DOSE_TOLERANCE_PCT = 0.5


@dataclass(frozen=True, kw_only=True)
class Listing:
    """Where a listed scheme or range stands: its tier, the technique, source and words of
    the source, the sites it is stated for (fields described in :class:`Scheme`). Keyword-only,
    so that each listing's own numbers come first."""

    tier: str
    technique: str | None = None
    source: str | None = None
    note: str | None = None
    where: str | None = None
    quote: str | None = None
    sites: tuple[str, ...] = ()

    def applies_at(self, site: str | None) -> bool:
        """True when the listing is stated for this site (or for any site)."""
        return not self.sites or site in self.sites


@dataclass(frozen=True)
class Scheme(Listing):
    """A listed fractionation scheme: ``dose`` Gy in ``fractions`` fractions.

    ``tier`` is the list it stands in (:data:`FRACTIONATION_TIERS`); ``technique`` is the
    technique the source lists it for (``"SBRT"``, ``"conventional"`` or None when the source
    names none or several); ``source`` is where it stands, short (``"Tableau 5"``,
    ``"section 2.1"``; None: the rule's ``schemes_source``), ``where`` the row or sentence,
    ``quote`` a short excerpt of the source's words, ``sites`` the sites it is stated for
    (empty: any site), ``note`` rtcheck's comment.
    """

    dose: float
    fractions: int

    @property
    def label(self) -> str:
        """``"30 Gy/10"`` (``"SBRT 35 Gy/5"`` when the scheme is listed for SBRT)."""
        text = f"{number_text(self.dose)} Gy/{self.fractions}"
        return f"SBRT {text}" if self.technique == "SBRT" else text

    def bed(self, alpha_beta: float) -> float:
        """BED (Gy) of the scheme with the LQ model: D (1 + d / (alpha/beta))."""
        return self.dose * (1.0 + self.dose / self.fractions / alpha_beta)

    def beds(self, alpha_beta: float) -> tuple[float, ...]:
        """The BED of the scheme (one value; a range gives its corners)."""
        return (self.bed(alpha_beta),)

    @property
    def fraction_bounds(self) -> tuple[int, int]:
        return self.fractions, self.fractions

    def matches(self, dose: float, fractions: int, tol_pct: float) -> bool:
        """Same fractions and the dose within ``tol_pct`` percent of the listed dose."""
        return fractions == self.fractions and abs(dose - self.dose) <= self.dose * tol_pct / 100



@dataclass(frozen=True)
class SchemeRange(Listing):
    """A listed range: ``dose_min``-``dose_max`` Gy in ``fractions_min``-``fractions_max``
    fractions (bounds inclusive; any dose with any number of fractions inside). Other fields
    as :class:`Scheme`."""

    dose_min: float
    dose_max: float
    fractions_min: int
    fractions_max: int

    @property
    def label(self) -> str:
        """``"20-30 Gy in 4-10 fx"`` (``"SBRT ..."`` when listed for SBRT)."""
        fx = (str(self.fractions_min) if self.fractions_min == self.fractions_max
              else f"{self.fractions_min}-{self.fractions_max}")
        dose = (number_text(self.dose_min) if self.dose_min == self.dose_max
                else f"{number_text(self.dose_min)}-{number_text(self.dose_max)}")
        text = f"{dose} Gy in {fx} fx"
        return f"SBRT {text}" if self.technique == "SBRT" else text

    def beds(self, alpha_beta: float) -> tuple[float, ...]:
        """BED (LQ) of the four corners; the lowest and highest BED of the range are among
        them (BED grows with the dose and falls with the number of fractions)."""
        return tuple(d * (1.0 + d / n / alpha_beta)
                     for d in (self.dose_min, self.dose_max)
                     for n in (self.fractions_min, self.fractions_max))

    @property
    def fraction_bounds(self) -> tuple[int, int]:
        return self.fractions_min, self.fractions_max

    def matches(self, dose: float, fractions: int, tol_pct: float) -> bool:
        """Fractions within the bounds and the dose within them, each widened by ``tol_pct``
        percent."""
        tol = tol_pct / 100
        return (self.fractions_min <= fractions <= self.fractions_max
                and self.dose_min * (1 - tol) <= dose <= self.dose_max * (1 + tol))

#: A listed entry of a fractionation rule: one scheme or one range.
ListedScheme = Scheme | SchemeRange


@dataclass(frozen=True)
class Preference:
    """A preference the source states beside the schemes it allows.

    ``prefer`` is ``"fractionated"`` (more than one fraction) or ``"scheme"`` (``dose`` Gy in
    ``fractions``). It applies at ``sites`` (empty: any site) and, when ``condition`` is set,
    only under that condition, which is a fact rtcheck does not have: such a preference is a
    remark printed with the finding, never a reason for a WARN. ``quote`` holds the source's
    words, ``source`` where they stand.
    """

    prefer: str
    quote: str
    source: str
    dose: float | None = None
    fractions: int | None = None
    sites: tuple[str, ...] = ()
    condition: str | None = None

    @property
    def label(self) -> str:
        if self.prefer == "fractionated":
            return "a fractionated scheme"
        return f"{number_text(self.dose)} Gy/{self.fractions}"

    def followed_by(self, dose: float, fractions: int, tol_pct: float) -> bool:
        """True when the plan's scheme is the preferred one (or a fractionated one)."""
        if self.prefer == "fractionated":
            return fractions > 1
        return fractions == self.fractions and \
            abs(dose - self.dose) <= self.dose * tol_pct / 100  # type: ignore[operator]


#: Tiers of a fractionation rule, strongest first (the order a plan's scheme is matched in).
FRACTIONATION_TIERS = ("recommended", "other", "exceptional", "allowed_elsewhere")
#: Technique a listed scheme may name.
SCHEME_TECHNIQUES = ("SBRT", "conventional")
PREFERENCES = ("fractionated", "scheme")


@dataclass(frozen=True)
class DoseRange:
    """A prescription range: ``dose_min``-``dose_max`` Gy in ``fractions_min``-``fractions_max``."""

    dose_min: float
    dose_max: float
    fractions_min: int
    fractions_max: int

    @property
    def label(self) -> str:
        fx = (str(self.fractions_min) if self.fractions_min == self.fractions_max
              else f"{self.fractions_min}-{self.fractions_max}")
        return f"{number_text(self.dose_min)}-{number_text(self.dose_max)} Gy in {fx} fx"


@dataclass(frozen=True)
class Limit:
    """A threshold: the value must satisfy ``value <operator> limit``.

    ``warn_up_to`` (upper-bound operators only) is a band above the limit reported as WARN
    instead of the rule's severity: e.g. cumulative cord EQD2 < 70 Gy, 70-75 Gy WARN.
    ``fractions`` is set for limits tabulated by number of fractions.
    """

    limit: float
    operator: str
    warn_up_to: float | None = None
    fractions: int | None = None

    def satisfied(self, value: float) -> bool:
        return _compare(value, self.operator, self.limit)

    def status(self, value: float, severity: str) -> str:
        """``PASS``, ``WARN`` or ``severity`` for a value (which must be a number)."""
        if math.isnan(value):
            raise ValueError("a NaN value cannot be compared with a limit")
        if self.satisfied(value):
            return "PASS"
        if self.warn_up_to is not None and value <= self.warn_up_to:
            return "WARN"
        return severity

    def label(self, unit: str | None = None) -> str:
        """``"<= 12.4 Gy (WARN up to 14 Gy)"``."""
        u = f" {unit}" if unit and unit != "ratio" else ""
        text = f"{self.operator} {number_text(self.limit)}{u}"
        if self.warn_up_to is not None:
            text += f" (WARN up to {number_text(self.warn_up_to)}{u})"
        return text


@dataclass(frozen=True)
class Rule:
    """What every rule of a protocol has; each kind is its own subclass.

    Attributes
    ----------
    id, kind, description, source : str
        ``source`` names the table/section of the protocol's document.
    severity : str
        Status of a violation: ``"FAIL"`` or ``"WARN"``.
    protocol : str
        Id of the protocol the rule belongs to.
    cites : tuple of str
        The paper(s) the source relies on.
    alpha_beta : float or None
        alpha/beta (Gy) the rule converts doses with; None for a rule that never converts
        (``alpha_beta = "none"`` in the file).
    model : str or None
        ``"LQ"`` when ``alpha_beta`` is set.
    show : tuple of str
        Extra metrics reported beside the value (e.g. ``D0.035cc``, ``D0.03cc``).
    unit : str or None
        ``"Gy"``, ``"months"`` or ``"ratio"``.
    role, metric : str or None
        Structure role and DVH metric the rule reads (None for rules that read none).
    """

    id: str
    kind: str
    description: str
    source: str
    severity: str
    protocol: str = ""
    cites: tuple[str, ...] = ()
    alpha_beta: float | None = None
    model: str | None = None
    show: tuple[str, ...] = ()
    unit: str | None = None
    notes: str | None = None
    role: str | None = None
    metric: str | None = None

    @property
    def converts(self) -> bool:
        """True when the rule converts doses (BED/EQD2) and so depends on alpha/beta."""
        return self.alpha_beta is not None

    def summary(self) -> str:
        """One line saying what the rule requires."""
        return self.description

    def as_dict(self) -> dict[str, Any]:
        """Plain data (for JSON); empty and None fields left out."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or value == () or (f.name == "biological_equivalent" and not value):
                continue
            out[f.name] = _plain(value)
        out["alpha_beta"] = self.alpha_beta if self.alpha_beta is not None else "none"
        return out


@dataclass(frozen=True)
class FractionationRule(Rule):
    """Kind ``fractionation``: the schemes an indication's row lists, in tiers
    (:data:`FRACTIONATION_TIERS`), the biological equivalent (BED at ``alpha_beta``, its
    definition printed) and the row's preferences (remarks or WARN)."""

    indication: str | None = None
    indication_label: str | None = None
    recommended: tuple[ListedScheme, ...] = ()
    other: tuple[ListedScheme, ...] = ()
    exceptional: tuple[ListedScheme, ...] = ()
    allowed_elsewhere: tuple[ListedScheme, ...] = ()
    schemes_source: str | None = None
    biological_equivalent: bool = False
    biological_equivalent_technique: str | None = None
    biological_equivalent_definition: str | None = None
    preferences: tuple[Preference, ...] = ()
    remarks: str | None = None
    dose_tolerance_pct: float = DEFAULT_DOSE_TOLERANCE_PCT

    @property
    def schemes(self) -> tuple[Scheme, ...]:
        """The single schemes (not ranges) of the row's own tiers: recommended, other,
        exceptional (Tableau 5 for the shipped rules), strongest tier first."""
        return tuple(s for s in self.recommended + self.other + self.exceptional
                     if isinstance(s, Scheme))

    @property
    def listed(self) -> tuple[ListedScheme, ...]:
        """Every listed scheme and range of every tier, in FRACTIONATION_TIERS order."""
        return self.recommended + self.other + self.exceptional + self.allowed_elsewhere

    @property
    def site_dependent(self) -> bool:
        """True when a listed entry is stated for some sites only (the outcome may then
        depend on the site)."""
        return any(s.sites for s in self.listed)

    @property
    def prefer_fractionated_sites(self) -> tuple[str, ...]:
        """Sites where an unconditional preference asks for a fractionated scheme."""
        return tuple(site for p in self.preferences
                     if p.prefer == "fractionated" and p.condition is None for site in p.sites)

    def equivalent_basis(self, site: str | None = None) -> tuple[ListedScheme, ...]:
        """The listed entries that define the biological equivalent at a site: every entry of
        ``biological_equivalent_technique`` (any technique when unset) stated for that site or
        for any site (``site=None``: the entries stated for any site only)."""
        if not self.biological_equivalent:
            return ()
        tech = self.biological_equivalent_technique
        return tuple(s for s in self.listed if (tech is None or s.technique == tech)
                     and (not s.sites or site in s.sites))

    def bed_span(self, site: str | None = None) -> tuple[float, float] | None:
        """[min, max] BED at the rule's alpha/beta over :meth:`equivalent_basis` (ranges count
        by their corners), or None when the rule allows no biological equivalent."""
        basis = self.equivalent_basis(site)
        if not basis or self.alpha_beta is None:
            return None
        beds = [b for s in basis for b in s.beds(self.alpha_beta)]
        return (min(beds), max(beds))

    def equivalent_fraction_span(self, site: str | None = None) -> tuple[int, int] | None:
        """[min, max] fractions over :meth:`equivalent_basis`."""
        basis = self.equivalent_basis(site)
        if not basis:
            return None
        bounds = [s.fraction_bounds for s in basis]
        return (min(b[0] for b in bounds), max(b[1] for b in bounds))

    def _fractionation_summary(self) -> str:
        def labels(entries: Iterable[ListedScheme], with_source: bool = False) -> str:
            out: list[str] = []
            for s in entries:
                text = s.label + (f" ({s.source or self.schemes_source})"
                                  if with_source and (s.source or self.schemes_source) else "")
                text = (f"{'/'.join(s.sites)}: {text}" if s.sites else text)
                if text not in out:
                    out.append(text)
            return ", ".join(out)

        parts = [f"recommended {labels(self.recommended)}"]
        if self.other:
            parts.append(f"other {labels(self.other)}")
        if self.exceptional:
            parts.append(f"exceptionally {labels(self.exceptional, True)}")
        own = [(s.dose, s.fractions) for s in self.schemes]
        extra = [s for s in self.allowed_elsewhere
                 if not (isinstance(s, Scheme) and (s.dose, s.fractions) in own)]
        if extra:
            parts.append(f"allowed elsewhere {labels(extra, True)} (WARN)")
        if self.biological_equivalent and self.alpha_beta is not None:
            ab = number_text(self.alpha_beta)
            spans = []
            sites = [None] if not self.site_dependent else list(SITES)
            for site in sites:
                span = self.bed_span(site)
                if span is not None:
                    spans.append((f"{site} " if site else "") + f"[{span[0]:.1f}, {span[1]:.1f}]")
            parts.append(f"or biological equivalent (WARN): BED{ab} within "
                         f"{', '.join(spans)} Gy")
        return "; ".join(parts)


    def summary(self) -> str:
        return self._fractionation_summary()


@dataclass(frozen=True)
class PrescriptionRangeRule(Rule):
    """Kind ``sbrt_prescription_range``: SBRT prescription ranges of a site."""

    site: str | None = None
    ranges: tuple[DoseRange, ...] = ()
    warn_fractions: tuple[int, ...] = ()
    warn_reason: str | None = None
    dose_tolerance_pct: float = DEFAULT_DOSE_TOLERANCE_PCT

    def summary(self) -> str:
        return "; ".join(r.label for r in self.ranges)


@dataclass(frozen=True)
class DoseRule(Rule):
    """What the rules that read an organ's dose share (``dose_limit``, ``reirradiation``):
    the structures they read and the situation their source derived them for
    (``constraints/README.md``, 'Keys of the dose rules')."""

    limits: tuple[Limit, ...] = ()
    applies_to_fractions: tuple[int, int] | None = None
    also_roles: tuple[str, ...] = ()
    below_conus_roles: tuple[str, ...] = ()
    technique: str | None = None
    extent_margin_mm: float | None = None

    @property
    def organ_role(self) -> str:
        """The role the source derived the rule for (a dose rule always has one: the protocol
        reader refuses a dose rule without ``role``)."""
        if self.role is None:
            raise ValueError(f"rule {self.id}: a dose rule needs a role")
        return self.role

    def limit_for(self, fractions: int | None = None) -> Limit | None:
        """The rule's single limit (overridden for limits tabulated by fractions)."""
        return self.limits[0] if self.limits else None

    @property
    def fraction_span(self) -> tuple[int, int] | None:
        """Smallest and largest tabulated number of fractions, else None."""
        fx = [lim.fractions for lim in self.limits if lim.fractions is not None]
        return (min(fx), max(fx)) if fx else None


@dataclass(frozen=True)
class DoseLimitRule(DoseRule):
    """Kind ``dose_limit``: a DVH metric against limits by number of fractions, or one limit
    (``convert = "EQD2"``: the metric converted with its own dose per fraction)."""

    course: str | None = None
    defer_to: str | None = None
    convert: str | None = None

    def limit_for(self, fractions: int | None = None) -> Limit | None:
        """The limit for a number of fractions, or the one stated for any number."""
        for lim in self.limits:
            if lim.fractions == fractions:
                return lim
        # a limit stated without a number of fractions holds for any (an EQD2 limit)
        return next((lim for lim in self.limits if lim.fractions is None), None)

    def summary(self) -> str:
        what = f"EQD2 of {self.metric}" if self.convert else self.metric
        return "; ".join((f"{lim.fractions} fx: " if lim.fractions else "")
                         + f"{what} {lim.label(self.unit)}" for lim in self.limits)


@dataclass(frozen=True)
class ReirradiationRule(DoseRule):
    """Kind ``reirradiation``: a quantity summed over courses (EQD2, BED, share) or the
    interval between them."""

    quantity: str | None = None
    prior_technique: str | None = None
    max_prior_courses: int | None = None

    def summary(self) -> str:
        what = self.quantity if self.metric is None else f"{self.quantity} ({self.metric})"
        return f"{what} {self.limits[0].label(self.unit)}"


@dataclass(frozen=True)
class WarningRule(Rule):
    """Kind ``warning``: a remark of the source that applies at some vertebral levels."""

    vertebral_levels: tuple[str, str] | None = None
    message: str | None = None

    def summary(self) -> str:
        lo, hi = self.vertebral_levels  # type: ignore[misc]
        return f"vertebral level {lo}-{hi}: {self.severity}"


@dataclass(frozen=True)
class Condition:
    """A statement about one case fact: ``fact op value`` (kinds ``case``).

    ``op`` is one of :data:`CONDITION_OPERATORS`; ``value`` a number, true/false, a choice,
    a list of choices (``in``, ``not_in``), ``[lowest, highest]`` (``between``, inclusive) or
    a vertebral span ``["T10", "S5"]`` (``overlaps``). ``label`` names the condition in a
    finding (default: the condition itself). ``warn_band`` ``[lo, hi]``: a value that breaks
    a ``require`` condition but lies within the band is WARN, not the rule's severity.
    """

    fact: str
    op: str
    value: Any
    label: str | None = None
    warn_band: tuple[float, float] | None = None

    @property
    def text(self) -> str:
        """``"karnofsky >= 70"`` (or the label)."""
        if self.label:
            return self.label
        value = self.value
        if isinstance(value, tuple):
            parts = [number_text(v) if isinstance(v, float) else str(v) for v in value]
            value = "-".join(parts) if self.op in ("between", "overlaps") \
                else "[" + ", ".join(parts) + "]"
        elif isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, float):
            value = number_text(value)
        return f"{self.fact} {self.op} {value}"


#: Operators of a case condition.
CONDITION_OPERATORS = ("<", "<=", ">", ">=", "==", "!=", "in", "not_in", "between", "overlaps")
#: How a case rule combines its conditions: ``require`` (all must hold; a broken one gives the
#: severity), ``flag_if_any`` (any that holds gives the severity, listing those present),
#: ``flag_if_all`` (the severity when all hold).
CASE_LOGICS = ("require", "flag_if_any", "flag_if_all")


@dataclass(frozen=True)
class CaseRule(Rule):
    """Kind ``case``: conditions on the case's facts (given, measured on the contours or
    derived from dates and the plan), combined by ``logic`` (:data:`CASE_LOGICS`).

    The rule applies to courses of ``technique`` (None: any), at ``sites`` (empty: any), for
    ``indications`` (empty: any) except ``except_indications``, and when every ``when``
    condition holds. ``message`` says what the source asks when the rule is not satisfied.
    """

    logic: str = "require"
    conditions: tuple[Condition, ...] = ()
    when: tuple[Condition, ...] = ()
    technique: str | None = None
    sites: tuple[str, ...] = ()
    indications: tuple[str, ...] = ()
    except_indications: tuple[str, ...] = ()
    message: str | None = None

    @property
    def facts(self) -> tuple[str, ...]:
        """Every fact the rule reads (its conditions' and its ``when``'s), once each."""
        return tuple(dict.fromkeys(c.fact for c in self.when + self.conditions))

    def summary(self) -> str:
        joiner = {"require": " and ", "flag_if_any": " or ", "flag_if_all": " and "}[self.logic]
        what = joiner.join(c.text for c in self.conditions)
        return what if self.logic == "require" else f"{self.severity} if {what}"


@dataclass(frozen=True)
class SystemicTreatmentRule(Rule):
    """Kind ``systemic_treatments``: each drug of the case against the drug table
    (``drug_table``: a file of ``constraints/`` or a path), with a wash-out of
    ``washout_half_lives`` half-lives before the course starts."""

    drug_table: str | None = None
    washout_half_lives: float = 5.0

    def summary(self) -> str:
        return f"wash-out of {number_text(self.washout_half_lives)} half-lives; drug table {self.drug_table}"


#: The rule type of each kind.
RULE_TYPES: dict[str, type[Rule]] = {
    "case": CaseRule,
    "systemic_treatments": SystemicTreatmentRule,
    "fractionation": FractionationRule,
    "sbrt_prescription_range": PrescriptionRangeRule,
    "dose_limit": DoseLimitRule,
    "reirradiation": ReirradiationRule,
    "warning": WarningRule,
}


# ======================================================================== helpers


def _compare(value: float, operator: str, limit: float) -> bool:
    return {"<": value < limit, "<=": value <= limit,
            ">": value > limit, ">=": value >= limit}[operator]


def number_text(x: float | None) -> str:
    """``30.0`` -> ``"30"``, ``20.3`` -> ``"20.3"``."""
    return "" if x is None else f"{x:g}"


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)
                if getattr(value, f.name) is not None}
    return value
