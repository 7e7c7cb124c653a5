"""What every evaluator reads: the plan, the facts, the structures' DVHs, and how to report.

:class:`Context` is built once per check by :func:`rtcheck.checker.check`; evaluators read it and
append :class:`~rtcheck.checker.findings.Skip` and :class:`~rtcheck.checker.findings.Note` objects to it.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from rtcheck.checker import findings as F
from rtcheck.checker.courses import PriorCourse
from rtcheck.checker.findings import Finding, Note, Skip
from rtcheck.checker.technique import Technique
from rtcheck.model import PlanData, Structure
from rtcheck.rules.protocols import Rule
from rtcheck.rules.roles import RoleMap, RoleMatch

#: Lesion sites where the cord is not in the field: cord rules do not apply (skipped, said so).
SITES_WITHOUT_CORD = ("extraspinal",)


@dataclass
class Context:
    """The plan and the facts one check is made with (see :func:`rtcheck.checker.check`).

    Attributes
    ----------
    technique : Technique
        This course's technique and how it was decided.
    levels : (int, int) or None
        The lesion's vertebral span as ordinals (C1 = 1 ... S5 = 29), when given.
    below_conus : bool
        True when the whole span lies below the lowest conus position the protocol states
        (or the site is the sacrum): the cord rules then read the cauda equina / thecal sac.
    priors : list of PriorCourse
    """

    data: PlanData
    table: RoleMap
    explicit: dict[str, str]
    indication: str | None
    site: str | None
    technique: Technique
    levels: tuple[int, int] | None
    level_text: str | None
    below_conus: bool
    conus_text: str | None
    priors: list[PriorCourse]
    interval_months: float | None
    date: dt.date | None
    date_how: str
    ab_overrides: dict[str, float]
    #: Why the plan's own numbers (fractions, prescription, beam doses) contradict each other.
    plan_problem: str | None = None
    rules: list[Rule] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    matches: dict[str, RoleMatch] = field(default_factory=dict)
    #: The case file's facts (rtcheck.case.CaseFacts), None without a case file.
    case: Any = None
    #: Contour measurements (tumour-cord distance, GTV diameter), filled once by the case rules.
    measures: dict[str, Any] = field(default_factory=dict)
    _dvhs: dict[Any, Any] = field(default_factory=dict)
    #: Spatial registrations (:class:`rtcheck.accumulation.Registration`) relating a prior
    #: course's frame of reference to this plan's, for the voxel-wise sums.
    registrations: list[Any] = field(default_factory=list)
    #: Set-up uncertainty (mm) of the voxel-wise envelope (None: the accumulation default).
    uncertainty_mm: float | None = None

    # ---------------------------------------------------------------- plan facts

    @property
    def fractions(self) -> int | None:
        return None if self.plan_problem else self.data.fractions

    @property
    def prescription(self) -> float | None:
        if self.plan_problem or self.data.plan is None:
            return None
        return self.data.plan.prescription_gy

    @property
    def is_reirradiation(self) -> bool:
        """A prior course is given, or the indication says re-irradiation."""
        return bool(self.priors) or self.interval_months is not None \
            or self.indication == "reirradiation"

    def fractions_unknown(self) -> str:
        if self.plan_problem:
            return f"number of fractions unknown: {self.plan_problem}"
        if self.data.plan is None:
            return "number of fractions unknown: no RTPLAN"
        groups = len(self.data.plan.fraction_groups)
        if groups > 1:
            return f"number of fractions unknown: the plan has {groups} fraction groups"
        return "number of fractions unknown: the RTPLAN does not state NumberOfFractionsPlanned"

    def skip(self, rule: Rule, code: str, reason: str, needs: str | None = None
             ) -> list[Finding]:
        self.skipped.append(Skip(rule.id, rule.protocol, code, reason, needs))
        return []

    def note(self, code: str, message: str, structure: str | None = None) -> None:
        if not any(n.code == code and n.message == message and n.structure == structure
                   for n in self.notes):
            self.notes.append(Note(code, message, structure))

    def alpha_beta(self, rule: Rule) -> tuple[float | None, str]:
        """The alpha/beta to use for a rule and a note when it was overridden."""
        if not rule.converts:
            return None, ""
        # The rule id, then the role of the source's structure, then the roles read beside it
        # or in its place (--alpha-beta spinal_cord=3 applies to a rule read on the sac and cord)
        keys = (rule.id, rule.role, *getattr(rule, "also_roles", ()),
                *getattr(rule, "below_conus_roles", ()))
        for key in keys:
            if key is not None and key in self.ab_overrides:
                value = float(self.ab_overrides[key])
                note = (f"alpha/beta {value:g} Gy given by --alpha-beta {key}=... (the rule's "
                        f"source uses {rule.alpha_beta:g} Gy; its thresholds were derived there)")
                return value, note
        return rule.alpha_beta, ""

    def rule_by_id(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    # ---------------------------------------------------------------- structures

    def role_match(self, role: str) -> RoleMatch:
        if role not in self.matches:
            names = [s.name for s in self.structures()]
            self.matches[role] = self.table.match(names, explicit=self.explicit,
                                                  roles=[role])[role]
        return self.matches[role]

    def structures(self) -> list[Structure]:
        return self.data.structure_set.structures if self.data.structure_set else []

    def structure(self, name: str) -> Structure:
        return self.data.structure_set.get(name)  # type: ignore[union-attr]

    def dvh_of(self, names: str | tuple[str, ...]) -> tuple[Any, str, str | None]:
        """(DVH, code, None) or (None, code, why it cannot be used for a verdict).

        ``names`` is one structure, or several making one organ (their union).
        """
        if self.data.structure_set is None:
            return None, F.STRUCTURE_MISSING, "no structure set"
        if self.data.dose is None:
            return None, F.NO_DOSE, "no dose grid"
        if self.data.dose.units != "GY":
            return None, F.NO_DOSE, f"dose units are {self.data.dose.units}, not GY: no " \
                                    "absolute dose"
        dose_problems = getattr(self.data.dose, "problems", None)
        if dose_problems:
            # A dose that disagrees with its own plan (a whole-course dose labelled FRACTION,
            # a per-fraction dose labelled PLAN...) must not become a verdict as it stands.
            return None, F.DOSE_IMPLAUSIBLE, "dose not usable for a verdict: " + \
                "; ".join(dose_problems)
        group = (names,) if isinstance(names, str) else tuple(names)
        parts = [self.structure(n) for n in group]
        for s in parts:
            if getattr(s, "problems", None):
                # contours skipped on reading: the rest of the structure is not the structure
                return None, F.STRUCTURE_INCOMPLETE, f"structure {s.name!r} is incomplete: " \
                    + "; ".join(s.problems)
            if s.is_empty or s.is_point:
                what = "a point ROI" if s.is_point else "empty (no contours)"
                return None, F.STRUCTURE_EMPTY, f"structure {s.name!r} is {what}"
        key = tuple(s.number for s in parts)
        if key not in self._dvhs:
            from rtcheck import dvh as dvh_mod

            # ROIs on isolated planes take the structure set's plane spacing as slab thickness
            spacing = getattr(self.data.structure_set, "plane_spacing_mm", None)
            if len(parts) == 1:
                dvh = dvh_mod.compute_dvh(parts[0], self.data.dose, slice_spacing_mm=spacing)
            else:
                dvh = dvh_mod.compute_union_dvh(parts, self.data.dose, slice_spacing_mm=spacing)
            for w in dvh.warnings:
                self.note("dvh", w, dvh.name)
            self._dvhs[key] = dvh
        return self._dvhs[key], F.EVALUATED, None

    @property
    def dvhs(self) -> list[Any]:
        return list(self._dvhs.values())


def finding(rule: Rule, status: str, reason: str, **kw: Any) -> Finding:
    """A finding of ``rule`` with the rule's identity, source and unit filled in."""
    kw.setdefault("unit", rule.unit)
    return Finding(rule=rule.id, protocol=rule.protocol, kind=rule.kind, status=status,
                   reason=reason, source=rule.source, cites=rule.cites,
                   model=rule.model if kw.get("alpha_beta") is not None else None, **kw)


def prescription(rule: Rule, ctx: Context) -> tuple[float, int] | Finding:
    """The plan's (total dose, fractions), or a NOT_EVALUATED finding saying what is missing."""
    n, total = ctx.fractions, ctx.prescription
    if n is None:
        return finding(rule, "NOT_EVALUATED", ctx.fractions_unknown(), metric="prescription",
                       code=F.FRACTIONS_UNKNOWN)
    if total is None or not math.isfinite(total) or total <= 0:
        why = ("the RTPLAN states no TargetPrescriptionDose and no beam doses" if total is None
               else f"the plan states {total!r} Gy")
        return finding(rule, "NOT_EVALUATED", f"total prescribed dose unknown: {why}",
                       metric="prescription", code=F.PRESCRIPTION_UNKNOWN)
    return total, n


def fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.2f}"


def fx(n: int) -> str:
    return f"{n} fraction" + ("" if n == 1 else "s")


def join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)
