"""The facts file of a batch (``--indication-from``): what DICOM does not say about a plan.

Indication, site, vertebral level, prior courses, interval and date come per plan from a CSV
or JSON file keyed by plan UID or patient ID (:func:`load_facts`, which refuses a row
without a key or a key given twice, naming the line). This module also says how a row
becomes the checker's arguments (:data:`CHECK_FACTS`, :func:`check_arguments`) and which
rules a missing fact left unevaluated (:func:`facts_not_given`: one NOT_EVALUATED
``facts.<fact>`` finding per fact, read from the checker's typed skips). Checking every row
against the checker before a run is :func:`rtcheck.batch.checking.validate_facts`.

Leans on :mod:`rtcheck.checker.findings` (the finding type and codes) and
:mod:`rtcheck.errors`.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtcheck.checker import findings as F
from rtcheck.errors import InputError

#: Columns of the facts file that identify a row.
FACT_KEYS = ("plan_uid", "patient_id")


@dataclass
class FactsTable:
    """Per-plan facts a batch cannot ask for: indication, site, prior course summary...

    Rows are keyed by plan UID or patient ID; a plan-UID row wins over a patient-ID row.
    """

    path: str
    by_plan: dict[str, dict[str, str]] = field(default_factory=dict)
    by_patient: dict[str, dict[str, str]] = field(default_factory=dict)
    by_id: dict[str, dict[str, str]] = field(default_factory=dict)  # JSON keys: either
    used: set[tuple[str, str]] = field(default_factory=set)

    def _tables(self) -> tuple[tuple[str, dict[str, dict[str, str]]], ...]:
        return (("plan_uid", self.by_plan), ("id", self.by_id), ("patient_id", self.by_patient))

    def lookup(self, plan_uid: str | None, patient_id: str | None) -> dict[str, str] | None:
        """The facts of a plan, with ``matched_by`` saying which key matched; None if none."""
        for name, table in self._tables():
            for key, by in ((plan_uid, "plan_uid"), (patient_id, "patient_id")):
                if (name == "id" or name == by) and key is not None and key in table:
                    self.used.add((name, key))
                    return {**table[key], "matched_by": by}
        return None

    def unused(self) -> list[str]:
        """Row keys that matched no plan (a typo in an ID is worth a warning)."""
        return [f"{name} {key}" for name, table in self._tables() for key in table
                if (name, key) not in self.used]


def _facts_rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(where, row) pairs from a CSV file or a JSON list/mapping."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON ({exc})", path) from None
        if isinstance(data, dict):
            # {"<plan UID or patient ID>": {...}}: the key is tried as both.
            return [(f"key {k!r}", {"id": k, **v}) if isinstance(v, dict)
                    else (f"key {k!r}", {"__bad__": v}) for k, v in data.items()]
        if isinstance(data, list):
            return [(f"item {i}", row if isinstance(row, dict) else {"__bad__": row})
                    for i, row in enumerate(data)]
        raise InputError("expected a JSON list of objects or an object keyed by ID", path)
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not ({*FACT_KEYS, "id"} & {f.strip() for f in
                                                           reader.fieldnames}):
        raise InputError("the CSV needs a plan_uid or patient_id column", path)
    return [(f"line {i + 2}", {k.strip(): v for k, v in row.items() if k})
            for i, row in enumerate(reader)]


def load_facts(path: str | os.PathLike) -> FactsTable:
    """Read an ``--indication-from`` file (CSV or JSON).

    CSV: a header with ``plan_uid`` and/or ``patient_id`` and fact columns (``indication``,
    ``site``, ``prior_summary``, any other). JSON: a list of such objects, or an object
    mapping a plan UID or patient ID to its facts. Empty cells are absent facts.

    Raises
    ------
    InputError
        Unreadable file, a row without a key, or two rows with the same key.
    """
    p = Path(path)
    try:
        rows = _facts_rows(p)
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", p) from None
    table = FactsTable(str(p))
    for where, row in rows:
        if "__bad__" in row:
            raise InputError(f"{where}: expected an object of facts", p)
        facts = {k: str(v).strip() for k, v in row.items()
                 if k not in (*FACT_KEYS, "id") and v is not None and str(v).strip() != ""}
        facts["row"] = where
        plan_uid, patient_id, ident = (str(row.get(k) or "").strip()
                                       for k in (*FACT_KEYS, "id"))
        # A row naming a plan applies to that plan only; a JSON mapping's key may be either.
        target, key = ((table.by_plan, plan_uid) if plan_uid else
                       (table.by_patient, patient_id) if patient_id else (table.by_id, ident))
        if not key:
            raise InputError(f"{where}: no plan_uid or patient_id", p)
        if key in target:
            raise InputError(f"{where}: {key} appears twice", p)
        target[key] = facts
    return table


#: Facts-file columns passed to :func:`rtcheck.checker.check`, and how each is converted.
#: ``prior_summary`` may hold several courses separated by ``;``. Other columns are kept in
#: the record's ``facts`` but not used.
CHECK_FACTS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "indication": ("indication", str),
    "site": ("site", str),
    "technique": ("technique", str),
    "vertebral_level": ("vertebral_level", str),
    "prior_summary": ("priors", lambda v: [c.strip() for c in v.split(";") if c.strip()]),
    "interval_months": ("interval_months", float),
    "date": ("date", str),
}


def check_arguments(facts: Mapping[str, str] | None) -> dict[str, Any]:
    """Keyword arguments of :func:`rtcheck.checker.check` from a plan's facts row.

    Raises
    ------
    InputError
        A value that does not convert (``interval_months`` not a number).
    """
    out: dict[str, Any] = {}
    for column, (name, convert) in CHECK_FACTS.items():
        value = (facts or {}).get(column)
        if value is None:
            continue
        try:
            out[name] = convert(value)
        except ValueError:
            raise InputError(f"{column} {value!r} is not valid") from None
    case = case_columns(facts)
    if case is not None:
        out["case"] = case
    return out


def case_columns(facts: Mapping[str, str] | None) -> Any:
    """The row's case facts (columns named as the keys of a case file, README 'Case files';
    text cells as :func:`rtcheck.case.case_from_strings` reads them), or None when it has none.
    ``indication`` and ``site`` are passed as they are (CHECK_FACTS)."""
    from rtcheck.case import CASE_KEYS, case_from_strings

    cells = {s.key: (facts or {})[s.key] for s in CASE_KEYS
             if s.key in (facts or {}) and s.key not in CHECK_FACTS}
    return case_from_strings(cells) if cells else None


def facts_not_given(skipped: Iterable[Mapping[str, Any]], given: Mapping[str, Any],
                    reported: Iterable[str] = ()) -> list[dict[str, Any]]:
    """NOT_EVALUATED findings for the rules skipped because a fact was not given.

    Reads the typed skips of the check result (``code == "fact_missing"`` and ``needs``, the
    fact that would select the rule), never their reasons. In a batch the fact was simply not
    available, so those rules are reported NOT_EVALUATED, one finding ``facts.<fact>`` per
    missing fact listing the rules, never PASS. Facts in ``reported`` (the checker already
    gave their ``facts.<fact>`` finding) get none here.
    """
    done = set(reported)
    missing: dict[str, list[str]] = {}
    for item in skipped:
        need = item.get("needs")
        if item.get("code") != F.FACT_MISSING or not need or need in done:
            continue
        if CHECK_FACTS.get(need, (need,))[0] not in given:
            missing.setdefault(need, []).append(item["rule"])
    return [F.Finding(rule=f"facts.{need}", protocol=None, kind="facts",  # type: ignore[arg-type]
                      status="NOT_EVALUATED", code=F.FACT_MISSING, missing=need,
                      reason=f"{need} not given for this plan (--indication-from): "
                             f"{', '.join(rules)} not evaluated",
                      source="rtcheck batch").as_dict()
            for need, rules in missing.items()]
