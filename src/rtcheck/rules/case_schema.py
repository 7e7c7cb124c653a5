"""The vocabulary of case facts, and the keys of the case rule kinds (``case``,
``systemic_treatments``), read and validated for :mod:`rtcheck.rules.protocols`.

:data:`CASE_KEYS` are the keys of a case file (read by :mod:`rtcheck.case`);
:data:`DERIVED_FACTS` the facts computed for a check (contours, plan, dates); a rule's
conditions may name any of :data:`RULE_FACTS`. :func:`case_rule_fields` and
:func:`treatment_rule_fields` turn a ``[[rules]]`` table into the fields of
:class:`~rtcheck.rules.kinds.CaseRule` / :class:`~rtcheck.rules.kinds.SystemicTreatmentRule`,
reporting each problem through ``problem(message)`` (which names the file and the rule).
The vocabulary lives here, below the checker and :mod:`rtcheck.case`, so that a protocol file
is validated without them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rtcheck.rules.kinds import CASE_LOGICS, CONDITION_OPERATORS, SITES, Condition

INDICATIONS = ("pain", "pain-fracture-risk", "post-operative", "cord-compression",
               "reirradiation", "oligometastatic")


@dataclass(frozen=True)
class FactSpec:
    """One key of the case file: its type, its allowed values and what it means.

    ``kind`` is ``int``, ``number``, ``bool``, ``choice``, ``text``, ``date``, ``dates``,
    ``levels`` (a vertebra or a span, ``T11-L1``), ``score`` (SINS or Mirels: a total or a
    table of items) or ``treatments`` (an array of ``{drug, last_dose}`` tables).
    """

    key: str
    kind: str
    doc: str
    choices: tuple[str, ...] = ()
    lo: float | None = None
    hi: float | None = None
    unit: str | None = None


CASE_KEYS: tuple[FactSpec, ...] = (
    FactSpec("schema_version", "int", "Version of this schema (1).", lo=1, hi=1),
    FactSpec("indication", "choice", "Tableau 5 row (as --indication).", INDICATIONS),
    FactSpec("site", "choice", "Lesion site (as --site).", SITES),
    FactSpec("vertebral_levels", "levels", "Vertebrae treated: one (T4) or a span (T11-L1)."),
    FactSpec("start_date", "date", "First fraction of this course (default: the plan date)."),
    FactSpec("karnofsky", "int", "Karnofsky performance index (%).", lo=0, hi=100, unit="%"),
    FactSpec("life_expectancy_months", "number", "Estimated life expectancy.", lo=0,
             unit="months"),
    FactSpec("metastatic_sites", "int", "Number of metastatic sites (organs).", lo=1),
    FactSpec("metastases", "int", "Number of metastases.", lo=1),
    FactSpec("largest_metastasis_cm", "number", "Largest diameter of any metastasis.", lo=0,
             unit="cm"),
    FactSpec("primary_controlled", "bool", "Primary cancer controlled (stabilised)."),
    FactSpec("bilsky", "choice", "Bilsky epidural grade.", ("0", "1a", "1b", "1c", "2", "3")),
    FactSpec("cord_compression", "choice", "Spinal cord compression.",
             ("none", "operated", "inoperable", "symptomatic")),
    FactSpec("epiduritis", "bool", "Epidural extension (épidurite)."),
    FactSpec("neuropathic_pain", "bool", "Neuropathic pain."),
    FactSpec("symptomatic", "bool", "The lesion causes symptoms (pain, fracture, neurological "
             "signs); false for an asymptomatic lesion (preventive radiotherapy, 1.6)."),
    FactSpec("lesion_type", "choice", "Radiological aspect.", ("lytic", "mixed", "condensing")),
    FactSpec("lesion_size_cm", "number", "Largest diameter of the treated lesion.", lo=0,
             unit="cm"),
    FactSpec("vertebral_body_involvement_pct", "number", "Share of the vertebral body "
             "invaded.", lo=0, hi=100, unit="%"),
    FactSpec("canal_narrowing_pct", "number", "Narrowing of the spinal canal diameter.", lo=0,
             hi=100, unit="%"),
    FactSpec("mri_contraindicated", "bool", "MRI is contra-indicated for this patient."),
    FactSpec("tumour_cord_distance_mm", "number", "Tumour-to-cord distance measured "
             "elsewhere (used only when the contours cannot give it).", lo=0, unit="mm"),
    FactSpec("sins", "score", "SINS (Tableau 10): a total 0-18, or a table of its six items."),
    FactSpec("mirels", "score", "Mirels (Tableau 3): a total 4-12, or a table of its four "
             "items."),
    FactSpec("long_bone", "bool", "The lesion is in a long bone (Mirels applies)."),
    FactSpec("girdle", "bool", "The lesion involves a girdle: hip (acetabulum, femoral head "
             "and neck), shoulder (acromion, glenoid, humerus), sacro-iliac joint."),
    FactSpec("cortical_involvement", "choice", "Share of the long-bone cortex involved.",
             ("under-1/3", "1/3-2/3", "over-2/3")),
    FactSpec("posterior_arch", "bool", "The posterior arch of the vertebra is involved."),
    FactSpec("cortical_osteolysis_axial_pct", "number", "Cortical osteolysis in the axial "
             "plane (CT).", lo=0, hi=100, unit="%"),
    FactSpec("cortical_osteolysis_circumference_pct", "number", "Cortical osteolysis of the "
             "circumference (CT).", lo=0, hi=100, unit="%"),
    FactSpec("surgery_date", "date", "Date of the surgery at this site."),
    FactSpec("surgery_kind", "choice", "Surgery at this site before the course (none: no "
             "surgery; a cementoplasty is not a surgery for the timing rules: section 2.2.4 "
             "allows it before or during the irradiation).",
             ("none", "decompression", "stabilisation", "cementoplasty", "other")),
    FactSpec("previous_radiotherapy_dates", "dates", "Last day of every earlier external "
             "radiotherapy course, any site ([] = none)."),
    FactSpec("metabolic_radiotherapy_dates", "dates", "Dates of metabolic (radionuclide) "
             "radiotherapy ([] = none)."),
    FactSpec("systemic_treatments", "treatments", "Systemic treatments: [[systemic_treatments]] "
             "tables with drug (generic or brand name) and last_dose (date); [] = none."),
)
SPECS: dict[str, FactSpec] = {s.key: s for s in CASE_KEYS}

#: Facts a rule may read beyond the case keys: measured on the contours, taken from the plan,
#: or counted from the case's dates to this course's start (months as
#: :func:`rtcheck.radiobiology.months_between` counts them).
DERIVED_FACTS: tuple[FactSpec, ...] = (
    FactSpec("tumour_cord_distance_mm", "number", "Smallest 3-D distance between the GTV "
             "(else CTV, else PTV) and the cord, thecal sac or cauda equina contours; the case "
             "key of that name when no contour gives it.", unit="mm"),
    FactSpec("gtv_diameter_cm", "number", "Largest 3-D diameter of the GTV contours.",
             unit="cm"),
    FactSpec("dose_per_fraction_gy", "number", "The plan's prescription / fractions.",
             unit="Gy"),
    FactSpec("total_dose_gy", "number", "The plan's prescription.", unit="Gy"),
    FactSpec("fractions", "int", "The plan's number of fractions."),
    FactSpec("vertebrae_treated", "int", "Vertebrae in vertebral_levels (T11-L1: 3)."),
    FactSpec("months_since_radiotherapy", "number", "Months from the last earlier radiotherapy "
             "(case dates and prior courses) to this course; none: no earlier course.",
             unit="months"),
    FactSpec("months_since_metabolic_radiotherapy", "number", "Months from the last metabolic "
             "radiotherapy to this course; none: none given.", unit="months"),
    FactSpec("days_since_surgery", "number", "Days from surgery_date to this course.",
             unit="days"),
)
#: Every fact a rule may name, by name (case keys and derived facts).
RULE_FACTS: dict[str, FactSpec] = {s.key: s for s in CASE_KEYS + DERIVED_FACTS
                                   if s.kind not in ("treatments", "dates", "date")
                                   and s.key != "schema_version"}
#: Facts measured on the plan itself: rules on them alone run without a case file.
PLAN_FACTS = ("tumour_cord_distance_mm", "gtv_diameter_cm", "dose_per_fraction_gy",
              "total_dose_gy", "fractions")

#: Keys of the ``case`` kind: required, optional.
CASE_RULE_KEYS = ({"message"}, {"require", "flag_if_any", "flag_if_all", "when", "technique",
                           "sites", "indications", "except_indications"})
TREATMENT_RULE_KEYS = ({"drug_table"}, {"washout_half_lives"})
_CONDITION_KEYS = {"fact", "op", "value", "label", "warn_band"}
#: Operators allowed for each kind of fact.
_OPS_BY_KIND = {"int": ("<", "<=", ">", ">=", "==", "!=", "between"),
                "number": ("<", "<=", ">", ">=", "between"),
                "score": ("<", "<=", ">", ">=", "==", "!=", "between"),
                "bool": ("==", "!="),
                "choice": ("==", "!=", "in", "not_in"),
                "levels": ("overlaps",)}

Problem = Callable[[str], None]


def case_rule_fields(raw: dict[str, Any], problem: Problem) -> dict[str, Any]:
    """The fields of a :class:`~rtcheck.rules.kinds.CaseRule` from its table."""
    logics = [k for k in CASE_LOGICS if k in raw]
    if len(logics) != 1:
        problem(f"give exactly one of {', '.join(CASE_LOGICS)} (found "
                f"{', '.join(logics) or 'none'})")
        return {}
    logic = logics[0]
    out: dict[str, Any] = {"logic": logic,
                           "conditions": _conditions(raw, logic, problem, required=True),
                           "when": _conditions(raw, "when", problem, required=False)}
    message = raw.get("message")
    if message is not None and (not isinstance(message, str) or not message.strip()):
        problem("message must be a non-empty string (what the source asks)")  # absent: keys()
    out["message"] = message
    technique = raw.get("technique")
    if technique is not None and technique not in ("sbrt", "conventional"):
        problem(f"technique {literal(technique)}: expected \"sbrt\" or \"conventional\"")
    out["technique"] = technique
    for key, allowed in (("sites", SITES), ("indications", INDICATIONS),
                         ("except_indications", INDICATIONS)):
        values = raw.get(key, [])
        if not isinstance(values, list) or not values and key in raw or \
                not all(v in allowed for v in values):
            problem(f"{key} must be a non-empty list of {', '.join(allowed)}")
            values = []
        out[key] = tuple(values)
    if logic != "require" and any(c.warn_band for c in out["conditions"]):
        problem("warn_band is only allowed in require conditions")
    return out


def treatment_rule_fields(raw: dict[str, Any], problem: Problem) -> dict[str, Any]:
    """The fields of a :class:`~rtcheck.rules.kinds.SystemicTreatmentRule`."""
    table = raw.get("drug_table")
    if not isinstance(table, str) or not table.strip():
        problem("drug_table must name the drug table (e.g. \"drugs-2026.toml\")")
    n = raw.get("washout_half_lives", 5.0)
    if isinstance(n, bool) or not isinstance(n, (int, float)) or not n > 0:
        problem(f"washout_half_lives must be a number > 0, got {literal(n)}")
        n = 5.0
    return {"drug_table": table, "washout_half_lives": float(n)}


def _conditions(raw: dict[str, Any], key: str, problem: Problem, required: bool
                ) -> tuple[Condition, ...]:
    items = raw.get(key, [])
    if not isinstance(items, list) or (required and not items):
        problem(f"{key} must be a non-empty array of inline tables {{ fact, op, value }}")
        return ()
    out = []
    for j, item in enumerate(items):
        where = f"{key}[{j}]"
        if not isinstance(item, dict):
            problem(f"{where}: expected an inline table {{ fact, op, value }}")
            continue
        cond = _condition(item, _prefixed(problem, where))
        if cond is not None:
            out.append(cond)
    return tuple(out)


def _prefixed(problem: Problem, where: str) -> Problem:
    def report(msg: str) -> None:
        problem(f"{where}: {msg}")
    return report


def _condition(item: dict[str, Any], problem: Problem) -> Condition | None:
    unknown = sorted(set(item) - _CONDITION_KEYS)
    missing = sorted({"fact", "op", "value"} - set(item))
    if unknown or missing:
        problem(f"unknown key(s) {', '.join(unknown)}" if unknown else
                f"missing {', '.join(missing)}")
        return None
    spec = RULE_FACTS.get(item["fact"])
    if spec is None:
        problem(f"fact {literal(item['fact'])} unknown (known: {', '.join(sorted(RULE_FACTS))})")
        return None
    op = item["op"]
    allowed = _OPS_BY_KIND.get(spec.kind, CONDITION_OPERATORS)
    if op not in allowed:
        problem(f"op {literal(op)} not allowed for {spec.key} (a {spec.kind}: {', '.join(allowed)})")
        return None
    value = _condition_value(spec, op, item["value"], problem)
    band = item.get("warn_band")
    if band is not None:
        if not (isinstance(band, list) and len(band) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in band)
                and band[0] <= band[1]):
            problem("warn_band must be [lowest, highest] numbers")
            band = None
        else:
            band = (float(band[0]), float(band[1]))
    label = item.get("label")
    if label is not None and not (isinstance(label, str) and label.strip()):
        problem("label must be a non-empty string")
    if value is None:
        return None
    return Condition(spec.key, op, value, label, band)


def _condition_value(spec: FactSpec, op: str, value: Any, problem: Problem) -> Any:
    if op in ("between", "overlaps"):
        if not isinstance(value, list) or len(value) != 2:
            problem(f"op {op} needs value = [lowest, highest]")
            return None
        if op == "overlaps":
            from rtcheck.rules.protocols import parse_vertebral_level

            try:
                lo, hi = (parse_vertebral_level(str(v)) for v in value)
            except ValueError as exc:
                problem(str(exc))
                return None
            if lo > hi:
                problem(f"value {value}: the first vertebra is below the last")
                return None
            return (str(value[0]), str(value[1]))
        if not all(_is_number(v) for v in value) or value[0] > value[1]:
            problem("between needs [lowest, highest] numbers")
            return None
        return (float(value[0]), float(value[1]))
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value or not all(
                str(v) in spec.choices for v in value):
            problem(f"{op} needs a list of {spec.key} values ({', '.join(spec.choices)})")
            return None
        return tuple(str(v) for v in value)
    if spec.kind == "bool":
        if not isinstance(value, bool):
            problem(f"{spec.key} is true or false, got {literal(value)}")
            return None
        return value
    if spec.kind == "choice":
        if str(value) not in spec.choices:
            problem(f"{literal(value)} is not a value of {spec.key} ({', '.join(spec.choices)})")
            return None
        return str(value)
    if not _is_number(value):
        problem(f"{spec.key} compares with a number, got {literal(value)}")
        return None
    return float(value)


def literal(value: Any) -> str:
    """A value as a case or protocol file writes it (``"abc"``, ``2026-01-01``, ``true``,
    ``[1, 2]``), for messages: never a Python repr."""
    import datetime as dt
    import json

    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value).lower()
    try:
        return json.dumps(value, ensure_ascii=False, default=_literal_default)
    except ValueError:  # a circular structure: cannot come from a parsed file
        return str(value)


def _literal_default(value: Any) -> str:
    import datetime as dt

    return value.isoformat() if isinstance(value, (dt.date, dt.time)) else str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
