"""The case file: facts about the patient and the lesion that DICOM does not hold.

One schema (:data:`CASE_KEYS`), read from TOML or JSON by :func:`load_case` and validated
strictly: an unknown key, a value of the wrong type or outside its range, a score whose items
disagree with its total, each is a problem naming the file and the key; every problem is
listed. A key that is absent is unknown, never guessed: the checks that need it say so.
``[]`` for a list (``previous_radiotherapy_dates = []``) says "none", which is known.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from rtcheck.case.scores import (
    SCORES,
    Score,
    score_from_items,
    score_range,
    sins_location_problem,
)
from rtcheck.errors import InputError
from rtcheck.rules.case_schema import (  # noqa: F401  (the case file's keys, re-exported)
    CASE_KEYS,
    DERIVED_FACTS,
    INDICATIONS,
    PLAN_FACTS,
    RULE_FACTS,
    SITES,
    SPECS,
    FactSpec,
    literal,
)
from rtcheck.tomlfile import parse_toml, problem_text

#: Version of the case-file schema (``schema_version``, optional in the file).
CASE_SCHEMA_VERSION = 1
_TREATMENT_KEYS = {"drug", "last_dose", "ongoing"}


@dataclass(frozen=True)
class Treatment:
    """One systemic treatment: the drug as written, its last dose, whether it goes on."""

    drug: str
    last_dose: dt.date | None = None
    ongoing: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"drug": self.drug, "ongoing": self.ongoing,
                "last_dose": self.last_dose.isoformat() if self.last_dose else None}


@dataclass(frozen=True)
class CaseFacts:
    """A validated case file: the values given, by key (absent keys are unknown).

    Values are typed: int, float, bool, str, :class:`datetime.date`, tuple of dates,
    ``(first, last)`` vertebral ordinals with their text, :class:`Score`, tuple of
    :class:`Treatment`.
    """

    values: Mapping[str, Any] = field(default_factory=dict)
    path: str | None = None

    def get(self, key: str) -> Any:
        return self.values.get(key)

    def has(self, key: str) -> bool:
        return key in self.values

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON (dates as ISO text, scores with their items)."""
        return {k: _plain(v) for k, v in self.values.items()}


def load_case(path: str | PathLike) -> CaseFacts:
    """Read and validate a case file (``.toml`` or ``.json``).

    Raises
    ------
    InputError
        Unreadable file, bad syntax, or any problem with a key (all listed, each naming the
        key).
    """
    where = str(path)
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read case file: {exc.strerror or exc}", where) from exc
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError) as exc:
            raise InputError(f"not valid JSON ({exc})", where) from exc
    elif p.suffix.lower() == ".toml":
        data = parse_toml(raw, where)
    else:
        raise InputError("a case file must be .toml or .json", where)
    return case_from_mapping(data, where)


def case_from_mapping(data: Any, where: str | None = None) -> CaseFacts:
    """Validate a mapping of case facts (a parsed file, a batch facts row, a form)."""
    if not isinstance(data, dict):
        raise InputError("a case file holds a table of facts at its top level", where)
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key in data:
        if key not in SPECS:
            problems.append(f"{key}: unknown key (known: {', '.join(SPECS)})")
    for spec in CASE_KEYS:
        if spec.key in data and data[spec.key] is not None:
            value = _value(spec, data[spec.key], problems)
            if value is not None:
                values[spec.key] = value
    values.pop("schema_version", None)
    problems += _disagreements(values)
    if problems:
        raise InputError(problem_text(problems), where)
    return CaseFacts(values, where)


def _disagreements(values: Mapping[str, Any]) -> list[str]:
    """Keys that contradict each other: the treated lesion larger than the largest
    metastasis, a surgery before the course dated after its start."""
    out = []
    size, largest = values.get("lesion_size_cm"), values.get("largest_metastasis_cm")
    if size is not None and largest is not None and size > largest:
        out.append(f"lesion_size_cm: {size:g} cm is larger than largest_metastasis_cm "
                   f"{largest:g} cm (the treated lesion is one of the metastases)")
    surgery, start = values.get("surgery_date"), values.get("start_date")
    if surgery is not None and start is not None and surgery > start:
        out.append(f"surgery_date: {surgery.isoformat()} is after start_date "
                   f"{start.isoformat()}; give the surgery before the course")
    sins, levels = values.get("sins"), values.get("vertebral_levels")
    if sins is not None and levels is not None:
        problem = sins_location_problem(sins, *levels)
        if problem:
            out.append(problem)
    return out


# ======================================================================== one key each


def _value(spec: FactSpec, raw: Any, problems: list[str]) -> Any:
    reader = {"int": _int, "number": _number, "bool": _bool, "choice": _choice,
              "date": _date, "dates": _dates, "levels": _levels, "score": _score,
              "treatments": _treatments}[spec.kind]
    try:
        return reader(spec, raw)
    except ValueError as exc:
        text = str(exc)  # "[0].last_dose: ..." names an item of a list
        problems.append(f"{spec.key}{'' if text.startswith('[') else ': '}{text}")
        return None


def _int(spec: FactSpec, raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ValueError(f"must be a whole number, got {literal(raw)}")
    _range(spec, raw)
    return raw


def _number(spec: FactSpec, raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise ValueError(f"must be a number{_unit(spec)}, got {literal(raw)}")
    _range(spec, raw)
    return float(raw)


def _range(spec: FactSpec, value: float) -> None:
    if (spec.lo is not None and value < spec.lo) or (spec.hi is not None and value > spec.hi):
        lo = "" if spec.lo is None else f"{spec.lo:g}"
        hi = "" if spec.hi is None else f"{spec.hi:g}"
        where = f"between {lo} and {hi}" if lo and hi else (f">= {lo}" if lo else f"<= {hi}")
        raise ValueError(f"must be {where}{_unit(spec)}, got {literal(value)}")


def _unit(spec: FactSpec) -> str:
    return f" ({spec.unit})" if spec.unit else ""


def _bool(spec: FactSpec, raw: Any) -> bool:
    if not isinstance(raw, bool):
        raise ValueError(f"must be true or false, got {literal(raw)}")
    return raw


def _choice(spec: FactSpec, raw: Any) -> str:
    # Bilsky 0, 2 and 3 are naturally written as numbers
    text = str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else raw
    if not isinstance(text, str) or text.strip().lower() not in spec.choices:
        raise ValueError(f"{literal(raw)} is not one of {', '.join(spec.choices)}")
    return text.strip().lower()


def _date(spec: FactSpec, raw: Any) -> dt.date:
    if isinstance(raw, dt.datetime):
        return raw.date()
    if isinstance(raw, dt.date):
        return raw
    if isinstance(raw, str):
        try:
            return dt.date.fromisoformat(raw.strip())
        except ValueError:
            pass
    raise ValueError(f"must be a date YYYY-MM-DD, got {literal(raw)}")


def _dates(spec: FactSpec, raw: Any) -> tuple[dt.date, ...]:
    if not isinstance(raw, list):
        raise ValueError(f"must be a list of dates YYYY-MM-DD ([] for none), got {literal(raw)}")
    out = []
    for i, v in enumerate(raw):
        try:
            out.append(_date(spec, v))
        except ValueError as exc:
            raise ValueError(f"[{i}]: {exc}") from exc
    return tuple(sorted(out))


def _levels(spec: FactSpec, raw: Any) -> tuple[int, int, str]:
    from rtcheck.rules.protocols import parse_vertebral_level

    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(f"must be a vertebra or a span such as \"T11-L1\", got {literal(raw)}")
    parts = [t.strip() for t in raw.split("-")]
    if len(parts) not in (1, 2):
        raise ValueError(f"{literal(raw)}: give one vertebra (T4) or a span (T11-L1)")
    ordinals = [parse_vertebral_level(t) for t in parts]
    return min(ordinals), max(ordinals), raw.strip()


def _score(spec: FactSpec, raw: Any) -> Score:
    items, _, table = SCORES[spec.key]
    lo, hi = score_range(spec.key)
    if isinstance(raw, int) and not isinstance(raw, bool):
        if not lo <= raw <= hi:
            raise ValueError(f"a {spec.key.upper()} total is {lo}-{hi} ({table}), got {raw}")
        return Score(spec.key, raw)
    if not isinstance(raw, dict):
        raise ValueError(f"must be a total ({lo}-{hi}) or a table of its items "
                         f"({', '.join(items)})")
    problems = []
    for key in raw:
        if key not in items and key != "total":
            problems.append(f"unknown item {literal(key)} (items: {', '.join(items)}, total)")
    for item, choices in items.items():
        if item not in raw:
            problems.append(f"{item} missing")
        elif raw[item] not in choices:
            problems.append(f"{item} {literal(raw[item])} is not one of {', '.join(choices)}")
    if problems:
        raise ValueError("; ".join(problems))
    score = score_from_items(spec.key, {k: raw[k] for k in items})
    total = raw.get("total")
    if total is not None and total != score.total:
        raise ValueError(f"total {literal(total)} disagrees with its items: {score.sum_text}")
    return score


def _treatments(spec: FactSpec, raw: Any) -> tuple[Treatment, ...]:
    if not isinstance(raw, list):
        raise ValueError("must be an array of tables {drug, last_dose} ([] for none)")
    out = []
    for i, item in enumerate(raw):
        where = f"[{i}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected a table {{drug, last_dose}}")
        unknown = sorted(set(item) - _TREATMENT_KEYS)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)} (allowed: drug, "
                             "last_dose, ongoing)")
        drug = item.get("drug")
        if not isinstance(drug, str) or not drug.strip():
            raise ValueError(f"{where}.drug: must be the drug's name, got {literal(drug)}")
        try:
            last = _date(spec, item["last_dose"]) if item.get("last_dose") is not None else None
        except ValueError as exc:
            raise ValueError(f"{where}.last_dose: {exc}") from exc
        ongoing = item.get("ongoing", False)
        if not isinstance(ongoing, bool):
            raise ValueError(f"{where}.ongoing: must be true or false, got {literal(ongoing)}")
        out.append(Treatment(drug.strip(), last, ongoing))
    return tuple(out)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _plain(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Score):
        return value.as_dict()
    if isinstance(value, Treatment):
        return value.as_dict()
    if isinstance(value, tuple) and len(value) == 3 and isinstance(value[2], str):
        return value[2]  # vertebral span: its text
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def merge_case(case: CaseFacts | Mapping[str, Any] | str | PathLike | None,
               indication: str | None, site: str | None, vertebral_level: str | None
               ) -> tuple[CaseFacts | None, str | None, str | None, str | None]:
    """The case facts and the indication, site and vertebral level a check uses.

    The case file's ``indication``, ``site`` and ``vertebral_levels`` stand in for options not
    given; given both ways, they must agree (else InputError naming the file and the key).
    """
    if case is None:
        return None, indication, site, vertebral_level
    if isinstance(case, CaseFacts):
        facts = case
    elif isinstance(case, Mapping):
        facts = case_from_mapping(dict(case), "case facts")
    else:
        facts = load_case(case)
    given = {"indication": indication, "site": site}
    for key, value in given.items():
        if facts.has(key) and value is not None and value != facts.get(key):
            raise InputError(f"{key}: the case file says {literal(facts.get(key))}, the option "
                             f"--{key} says {literal(value)}", facts.path)
    levels_text = vertebral_level
    option = None
    if vertebral_level is not None:
        try:
            option = _levels(SPECS["vertebral_levels"], vertebral_level)
        except ValueError as exc:
            raise InputError(f"--vertebral-level: {exc}") from None
    if option is not None and facts.has("sins"):
        problem = sins_location_problem(facts.get("sins"), *option)
        if problem:
            raise InputError(f"{problem}, given by --vertebral-level", facts.path)
    if facts.has("vertebral_levels"):
        lo, hi, text = facts.get("vertebral_levels")
        if option is not None and option[:2] != (lo, hi):
            raise InputError(f"vertebral_levels: the case file says {literal(text)}, the option "
                             f"--vertebral-level says {literal(vertebral_level)}", facts.path)
        levels_text = vertebral_level or text
    return (facts, indication or facts.get("indication"), site or facts.get("site"),
            levels_text)


#: Words read as true / false in a text cell (a CSV facts file).
_TRUE, _FALSE = ("true", "yes", "1"), ("false", "no", "0")


def case_from_strings(cells: Mapping[str, str], where: str | None = None) -> CaseFacts:
    """Case facts from text cells (the columns of a batch facts CSV named as the case keys).

    Numbers and dates as written; true/false (also yes/no, 1/0); lists separated by ``;``
    (``none`` for an empty list); SINS and Mirels as totals; systemic treatments as
    ``drug@YYYY-MM-DD`` or ``drug@ongoing``, separated by ``;``. Empty cells are absent.

    Raises
    ------
    InputError
        Naming ``where`` (the file and line), the column and the problem.
    """
    data: dict[str, Any] = {}
    problems: list[str] = []
    for key, text in cells.items():
        spec = SPECS.get(key)
        text = (text or "").strip()
        if spec is None or not text:
            continue
        try:
            data[key] = _from_text(spec, text)
        except ValueError as exc:
            problems.append(f"{key}: {exc}")
    if problems:
        raise InputError(problem_text(problems), where)
    return case_from_mapping(data, where)


def _from_text(spec: FactSpec, text: str) -> Any:
    if spec.kind in ("int", "score"):
        return int(text) if text.lstrip("-").isdigit() else text
    if spec.kind == "number":
        return float(text)
    if spec.kind == "bool":
        low = text.lower()
        if low not in _TRUE + _FALSE:
            raise ValueError(f"must be true or false, got {literal(text)}")
        return low in _TRUE
    if spec.kind in ("dates", "treatments"):
        items = [] if text.lower() == "none" else [t.strip() for t in text.split(";") if t.strip()]
        if spec.kind == "dates":
            return items
        out = []
        for item in items:
            drug, _, when = item.partition("@")
            entry: dict[str, Any] = {"drug": drug.strip()}
            if when.strip().lower() == "ongoing":
                entry["ongoing"] = True
            elif when.strip():
                entry["last_dose"] = when.strip()
            out.append(entry)
        return out
    return text
