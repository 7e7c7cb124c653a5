"""Checking one plan: what a batch worker runs, and the facts checked before any plan.

:func:`check_one` turns a :class:`~rtcheck.batch.records.PlanTask` into its record: it loads
the plan (:func:`rtcheck.dicom.load_plan`), runs the checker (:func:`rtcheck.checker.check`)
with the plan's facts, reports NOT_EVALUATED the rules a missing fact left out, and never
raises for a bad plan (any exception is the plan's ERROR record). :func:`validate_facts` runs
the checker on every distinct row of the facts file before the batch starts, so that a typo
is a usage error, not thousands of ERROR records. Protocols are loaded once per process
(:func:`load_protocols`).

Leans on :mod:`rtcheck.batch.facts`, :mod:`rtcheck.batch.records`, and, lazily (worker
processes import them once, the command line not at all), :mod:`rtcheck.checker`,
:mod:`rtcheck.dicom` and :mod:`rtcheck.rules.protocols`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable
from typing import Any

from rtcheck.batch.facts import FactsTable, check_arguments, facts_not_given
from rtcheck.batch.records import PlanTask, base_record, error_message
from rtcheck.checker import findings as F
from rtcheck.errors import InputError

#: The protocols loaded in this process, by their names: a worker checks many plans with the
#: same ones.
_PROTOCOLS: dict[tuple[str, ...], list] = {}


def load_protocols(names: Iterable[str]) -> list:
    """The protocols (loaded once per process: workers check many plans with the same ones).

    An empty list means the checker's default protocols.
    """
    from rtcheck.checker import DEFAULT_PROTOCOLS
    from rtcheck.rules.protocols import load_protocol

    key = tuple(names) or tuple(DEFAULT_PROTOCOLS)
    if key not in _PROTOCOLS:
        _PROTOCOLS[key] = [load_protocol(n) for n in key]
    return _PROTOCOLS[key]


def validate_facts(table: FactsTable, protocols: Iterable[str]) -> None:
    """Check every facts row against the checker before any plan is run, so that a typo
    (``indication=pian``) is a usage error naming the file and line, not thousands of
    ERROR records. Rows with the same values are checked once.

    Raises
    ------
    InputError
        Naming the facts file, the row and the problem.
    """
    from rtcheck.checker import check
    from rtcheck.model import PlanData

    protos = load_protocols(protocols)
    seen: set[tuple] = set()
    for rows in (table.by_plan, table.by_patient, table.by_id):
        for key, facts in rows.items():
            where = facts.get("row", key)
            try:
                kwargs = check_arguments(facts)
                signature = tuple(sorted((k, str(v)) for k, v in kwargs.items()))
                if signature not in seen:
                    check(PlanData(None, None, None), protocols=protos, **kwargs)
                    seen.add(signature)
            except InputError as exc:
                raise InputError(f"{where}: {exc.message}", table.path) from None


def _evaluate(task: PlanTask) -> dict[str, Any]:
    """Load the plan and run the checker; returns verdict, findings, notes, warnings and the
    plan's facts as the checker used them. A missing fact raises a PASS or REVIEW to
    NOT_EVALUATED (a FAIL stays FAIL)."""
    from rtcheck.checker import check
    from rtcheck.dicom import load_plan

    group = task.group
    data = load_plan(group.files, plan=group.plan_uid, contours="when_used")
    arguments = check_arguments(task.facts)
    out = check(data, protocols=load_protocols(task.protocols), **arguments).to_dict()
    reported = [f["missing"] for f in out["findings"]
                if f.get("code") == F.FACT_MISSING and f.get("kind") == "facts"
                and f.get("missing")]
    unevaluated = facts_not_given(out["skipped"], arguments, reported)
    verdict = out["verdict"]
    if unevaluated:
        verdict = F.worst_verdict([verdict, "NOT_EVALUATED"])
    return {"verdict": verdict, "findings": out["findings"] + unevaluated,
            "notes": list(out["notes"]), "warnings": list(out["warnings"]),
            "plan": out["plan"]}


def check_one(task: PlanTask) -> dict[str, Any]:
    """Check one plan and return its batch record; never raises for a bad plan.

    Python warnings raised while reading or checking (pydicom's, numpy's) go into the
    record's warnings instead of the terminal.
    """
    start = time.perf_counter()
    rec = base_record(task.group, task.facts)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = _evaluate(task)
        rec["verdict"] = out["verdict"]
        rec["findings"] = out["findings"]
        rec["notes"] = out["notes"]
        rec["plan"] = out["plan"]
        rec["warnings"] += out["warnings"] + [
            f"{w.category.__name__}: {w.message}" for w in caught]
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # one bad plan never stops the batch (MemoryError,
        # RecursionError, OverflowError, a library's SystemExit included)
        rec.update(verdict="ERROR", error=error_message(exc, task.group))
    rec["seconds"] = round(time.perf_counter() - start, 3)
    return rec
