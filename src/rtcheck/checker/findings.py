"""What a check returns: findings, skipped rules and notes as typed data, and the verdict.

Every module that reports a check (the command line, the HTML report, batch) reads these
objects or their JSON form; none of them parses the ``reason`` sentences, which are for people.
What a program needs is in typed fields: the :attr:`Finding.code` of the outcome, the fact
that was missing (:attr:`Finding.missing`), the structure that decided and what it stood in
for (:attr:`Finding.structure`, :attr:`Finding.stands_for`, :attr:`Finding.evaluated`).

Statuses of a finding
---------------------
``PASS``
    evaluated and within the limit.
``WARN``
    evaluated and in a band the source leaves to clinical judgement (no consensus, allowed
    "exceptionnellement", a preference of the referential not followed, a rule applied outside
    the situation it was derived for).
``FAIL``
    evaluated and outside the limit.
``NOT_EVALUATED``
    the rule applies but could not be evaluated (structure missing, grid not covering it,
    a fact unknown...); :attr:`Finding.code` and :attr:`Finding.missing` say what is missing.

Verdict levels (of a plan, and of a batch)
------------------------------------------
Ordered ``FAIL`` > ``NOT_EVALUATED`` > ``REVIEW`` > ``PASS``: the verdict is the highest level
any finding reaches, a WARN finding giving ``REVIEW``. A plan on which no rule was evaluated
is ``NOT_EVALUATED``, never ``PASS``. :data:`EXIT_CODES` are those of ``rtcheck check`` and
``rtcheck batch``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

#: Statuses of one finding.
STATUSES = ("PASS", "WARN", "FAIL", "NOT_EVALUATED")
#: Verdict levels, lowest first (the verdict is the highest one reached).
VERDICTS = ("PASS", "REVIEW", "NOT_EVALUATED", "FAIL")
#: The verdict level each finding status leads to.
STATUS_LEVEL = {"PASS": "PASS", "WARN": "REVIEW", "NOT_EVALUATED": "NOT_EVALUATED",
                "FAIL": "FAIL"}
#: Exit codes of ``rtcheck check`` and ``rtcheck batch`` (2: bad input; 4: a plan of a batch
#: could not be read or checked at all, ERROR).
EXIT_CODES = {"PASS": 0, "FAIL": 1, "NOT_EVALUATED": 3, "REVIEW": 5}
EXIT_BAD_INPUT = 2
EXIT_ERROR = 4

# Codes of a finding's outcome (Finding.code).
EVALUATED = "evaluated"                  #: value compared with the limit (PASS/WARN/FAIL)
FACT_MISSING = "fact_missing"            #: a fact DICOM does not hold was not given (see missing)
STRUCTURE_MISSING = "structure_missing"  #: no structure for the rule's role
STRUCTURE_AMBIGUOUS = "structure_ambiguous"
STRUCTURE_EMPTY = "structure_empty"      #: empty or point ROI
STRUCTURE_TOO_SHORT = "structure_too_short"  #: cord contour does not extend past the target
NOT_COVERED = "not_covered"              #: structure partly outside the dose grid
NO_DOSE = "no_dose"                      #: no dose grid, or no absolute dose (units)
DOSE_IMPLAUSIBLE = "dose_implausible"    #: the dose disagrees with its plan (DoseGrid.problems)
STRUCTURE_INCOMPLETE = "structure_incomplete"  #: contours skipped on reading (Structure.problems)
FRACTIONS_UNKNOWN = "fractions_unknown"
PRESCRIPTION_UNKNOWN = "prescription_unknown"
METRIC_UNDEFINED = "metric_undefined"    #: e.g. D2cc of a 1 cc structure
NO_LIMIT = "no_limit"                    #: the source tabulates no limit for this case
PRIOR_UNKNOWN = "prior_unknown"          #: prior course's dose or date unknown
PRIOR_MISMATCH = "prior_mismatch"        #: prior course of another patient, or dated after
OUTSIDE_DERIVATION = "outside_derivation"  #: rule applied to a situation it was not derived for
FINDING_CODES = (EVALUATED, FACT_MISSING, STRUCTURE_MISSING, STRUCTURE_AMBIGUOUS,
                 STRUCTURE_EMPTY, STRUCTURE_TOO_SHORT, NOT_COVERED, NO_DOSE, DOSE_IMPLAUSIBLE,
                 STRUCTURE_INCOMPLETE, FRACTIONS_UNKNOWN,
                 PRESCRIPTION_UNKNOWN, METRIC_UNDEFINED, NO_LIMIT, PRIOR_UNKNOWN, PRIOR_MISMATCH,
                 OUTSIDE_DERIVATION)

# Codes of a skipped rule (Skip.code).
NOT_REQUESTED = "not_requested"    #: a fact selects another row (other indication or site)
OUT_OF_SCOPE = "out_of_scope"      #: fractions, technique or course outside the rule's scope
NOT_APPLICABLE = "not_applicable"  #: the rule does not concern this plan (no prior course...)
NO_CASE_FILE = "no_case_file"      #: the rule reads the patient's case facts; no case file given
SKIP_CODES = (NOT_REQUESTED, OUT_OF_SCOPE, NOT_APPLICABLE, FACT_MISSING, NO_CASE_FILE)
#: How every output heads the rules skipped with each code (table, HTML report).
SKIP_HEADINGS = {
    FACT_MISSING: "Not evaluated for want of a fact DICOM does not hold (give it to apply them)",
    NOT_REQUESTED: "Not requested (another indication or site was given)",
    NO_CASE_FILE: "Not asked: they read the patient's case facts (give --case FILE to apply "
                  "them)",
    OUT_OF_SCOPE: "Out of scope for this plan",
    NOT_APPLICABLE: "Not applicable to this plan",
}


@dataclass
class StructureValue:
    """One structure a rule was evaluated on (a rule may read the thecal sac and the cord).

    Attributes
    ----------
    structure : str
        The structure's name in the plan.
    role : str
        The role it matched (``thecal_sac``, ``spinal_cord``...).
    stands_for : str or None
        The role the rule's source used, when this structure stood in for it (the cord
        standing for the thecal sac); None when it is the source's own structure.
    value : float or None
    status : str
    code : str
    """

    structure: str
    role: str
    value: float | None
    status: str
    code: str = EVALUATED
    stands_for: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"structure": self.structure, "role": self.role, "stands_for": self.stands_for,
                "value": json_number(self.value), "status": self.status, "code": self.code}


@dataclass
class Finding:
    """The outcome of one rule for a plan.

    Attributes
    ----------
    rule, protocol, kind : str
    status : str
        ``PASS``, ``WARN``, ``FAIL`` or ``NOT_EVALUATED``.
    reason : str
        Why, in words, with the numbers (for people; programs read the typed fields).
    source : str
        The rule's source (table/section); ``cites`` the papers.
    code : str
        What the outcome rests on (:data:`FINDING_CODES`): ``evaluated`` or the kind of problem.
    missing : str or None
        The fact that was missing for a ``fact_missing`` or ``prior_unknown`` finding
        (``indication``, ``site``, ``vertebral_level``, ``prior_date``, ``prior_cord_dose``...).
    structure, role : str or None
        The structure that decided the outcome and the role it matched.
    stands_for : str or None
        When the deciding structure stood in for the one the source used (the cord for the
        thecal sac), the source's role; None otherwise.
    evaluated : list of StructureValue
        Every structure the rule was evaluated on (the most restrictive decided).
    metric : str or None
        ``Dmax``, ``D0.035cc``, ``prescription``...
    value, limit, operator, unit
        The number compared with the limit; ``limit`` is a number or, for scheme lists, text.
    alpha_beta, model
        alpha/beta (Gy) and model of a conversion; None when nothing was converted.
    details : dict
        Extra numbers (metrics shown beside the value, EQD2 of each course, BED...).
    """

    rule: str
    protocol: str
    kind: str
    status: str
    reason: str
    source: str
    code: str = EVALUATED
    missing: str | None = None
    structure: str | None = None
    role: str | None = None
    stands_for: str | None = None
    evaluated: list[StructureValue] = field(default_factory=list)
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
            "status": self.status, "code": self.code, "missing": self.missing,
            "structure": self.structure, "role": self.role, "stands_for": self.stands_for,
            "evaluated": [s.as_dict() for s in self.evaluated],
            "metric": self.metric, "value": json_number(self.value),
            "limit": json_number(self.limit), "operator": self.operator, "unit": self.unit,
            "alpha_beta": self.alpha_beta if self.alpha_beta is not None else "none",
            "model": self.model, "reason": self.reason,
            "source": self.source, "cites": list(self.cites),
            "details": json_number(self.details),
        }


@dataclass
class Skip:
    """A rule that does not apply to this plan, and why.

    Attributes
    ----------
    rule, protocol : str
    code : str
        :data:`SKIP_CODES`: ``not_requested`` (a fact selects another row),
        ``out_of_scope`` (fractions, technique or course outside the rule's scope),
        ``not_applicable`` (e.g. no prior course), ``fact_missing`` or ``no_case_file`` (the
        rule reads the patient's case facts and no case file was given).
    reason : str
    needs : str or None
        The fact that would select this rule (``indication``, ``site``, ``vertebral_level``),
        when it was not given: a batch without that fact reports the rule NOT_EVALUATED.
    """

    rule: str
    protocol: str
    code: str
    reason: str
    needs: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "protocol": self.protocol, "code": self.code,
                "needs": self.needs, "reason": self.reason}


@dataclass
class Note:
    """Something that qualifies the findings (loader, DVH, role table, scoping choices).

    ``code`` names its kind (``loader``, ``dvh``, ``roles``, ``technique``, ``scope``,
    ``nothing_evaluated``...); ``structure`` the structure it concerns, if any.
    """

    code: str
    message: str
    structure: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "structure": self.structure}

    def __str__(self) -> str:
        return f"{self.structure}: {self.message}" if self.structure else self.message


def verdict_of(statuses: list[str] | tuple[str, ...] | set[str]) -> str:
    """The verdict level of a set of finding statuses; NOT_EVALUATED when there is none."""
    if not statuses:
        return "NOT_EVALUATED"
    return max((STATUS_LEVEL[s] for s in statuses), key=VERDICTS.index)


def worst_verdict(verdicts: list[str]) -> str:
    """The highest of several verdict levels (e.g. over the plans of a batch)."""
    return max(verdicts, key=VERDICTS.index) if verdicts else "NOT_EVALUATED"


@dataclass
class CheckResult:
    """What :func:`rtcheck.check` returns.

    Attributes
    ----------
    verdict : str
        ``PASS``, ``REVIEW``, ``NOT_EVALUATED`` or ``FAIL`` (see the module docstring).
    findings : list of Finding
    notes : list of Note
        Loader, DVH, role-table and scoping notes; anything that qualifies the findings.
    skipped : list of Skip
        Rules outside their scope for this plan.
    roles : dict role -> RoleMatch
        Which structure matched which role (for the roles the rules used).
    plan : dict
        The plan's facts used (label, UID, fractions, prescription, date, dose units).
    facts : dict
        The facts given or derived (indication, site, technique and how it was decided,
        vertebral level, priors...).
    protocols : list of str
    dvhs : list of DVH
        The DVHs the rules used (for plots; not part of the JSON document).
    """

    verdict: str
    findings: list[Finding]
    notes: list[Note] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    roles: dict[str, Any] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    protocols: list[str] = field(default_factory=list)
    dvhs: list[Any] = field(default_factory=list, repr=False)

    @property
    def exit_code(self) -> int:
        """0 PASS, 1 FAIL, 3 NOT_EVALUATED, 5 REVIEW (2, bad input, is raised as InputError)."""
        return EXIT_CODES[self.verdict]

    @property
    def warnings(self) -> list[str]:
        """The notes as text (one line each)."""
        return [str(n) for n in self.notes]

    def counts(self) -> dict[str, int]:
        return {s: sum(f.status == s for f in self.findings) for s in STATUSES}

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``rtcheck check --format json`` (schema in the README)."""
        return {
            "plan": self.plan, "verdict": self.verdict, "exit_code": self.exit_code,
            "counts": self.counts(), "protocols": self.protocols, "facts": self.facts,
            "roles": {r: m.as_dict() for r, m in self.roles.items()},
            "findings": [f.as_dict() for f in self.findings],
            "skipped": [s.as_dict() for s in self.skipped],
            "notes": [n.as_dict() for n in self.notes],
            "warnings": self.warnings,
        }


def json_number(value: Any) -> Any:
    """Floats rounded to 6 decimals, NaN as None, through lists and dicts."""
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    if isinstance(value, (list, tuple)):
        return [json_number(v) for v in value]
    if isinstance(value, dict):
        return {k: json_number(v) for k, v in value.items()}
    return value
