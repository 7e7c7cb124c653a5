"""The batch record: its verdicts, its fields, and every way one is made.

A record is the plain JSON-able dict a batch writes per plan (README: ``rtcheck batch``
output): identity (key, UIDs, files, what is missing, the plan's facts), verdict, error,
findings, notes, warnings, seconds. This module holds

* the verdicts (the checker's, then ERROR; SKIPPED for files that are not plans) and the
  batch's exit code (:func:`batch_exit_code`);
* :class:`PlanTask`, what a worker needs to check one plan;
* the record constructors: a plan's identity (:func:`base_record`), the ERROR records of a
  file, a failed check, a crashed worker, a timeout, an unwritable record, and the check that
  a worker returned a record at all (:func:`valid_record`);
* how a record is named in messages and, with ``--deidentify``, keyed and scrubbed (the
  de-identification itself is :mod:`rtcheck.report`'s, imported lazily).

Leans on :mod:`rtcheck.checker.findings` (verdict levels, exit codes), :mod:`rtcheck.errors`
and the discovery's types (:mod:`rtcheck.batch.discovery`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rtcheck.batch.discovery import BadFile, PlanRef, SkippedFile
from rtcheck.checker import findings as F
from rtcheck.errors import InputError, RTCheckError

#: Verdicts of a batch record, lowest first: the checker's levels, then ERROR (a plan or file
#: that could not be read or checked).
VERDICTS = (*F.VERDICTS, "ERROR")
#: The verdict of a record that lists a skipped file (not a plan: no exit code of its own).
SKIPPED = "SKIPPED"

#: Exit codes of a batch (also in the README): 4 when any record is ERROR, else the worst
#: verdict's code (findings.EXIT_CODES): PASS 0, FAIL 1, NOT_EVALUATED 3, REVIEW 5; 2 usage.
EXIT_OK, EXIT_FAIL = F.EXIT_CODES["PASS"], F.EXIT_CODES["FAIL"]
EXIT_NOT_EVALUATED, EXIT_REVIEW = F.EXIT_CODES["NOT_EVALUATED"], F.EXIT_CODES["REVIEW"]
EXIT_USAGE, EXIT_ERROR = F.EXIT_BAD_INPUT, F.EXIT_ERROR


def batch_exit_code(counts: Mapping[str, int]) -> int:
    """The exit code of a batch whose records have these verdict counts.

    4 when any record is ERROR; else the exit code of the worst verdict
    (:func:`rtcheck.checker.findings.worst_verdict`): FAIL 1 > NOT_EVALUATED 3 > REVIEW 5 >
    PASS 0. A verdict rtcheck does not know (a foreign or older record) counts as
    NOT_EVALUATED, and a batch without any record checked nothing: NOT_EVALUATED (3), never
    PASS. SKIPPED records (files that are not plans) do not count.
    """
    present = [v for v, n in counts.items() if n and v != SKIPPED]
    if "ERROR" in present:
        return EXIT_ERROR
    levels = [v if v in F.VERDICTS else "NOT_EVALUATED" for v in present]
    return F.EXIT_CODES[F.worst_verdict(levels)]


@dataclass(frozen=True)
class PlanTask:
    """What a worker needs to check one plan: the files, the protocols and the plan's facts."""

    group: PlanRef
    protocols: tuple[str, ...] = ()
    facts: Mapping[str, str] | None = None


def _record(key: str, files: list[str], **fields: Any) -> dict[str, Any]:
    """A record with every field of the schema, in order (README: ``rtcheck batch`` output)."""
    rec = {"key": key, "plan_uid": None, "patient_id": None, "plan_label": None, "files": files,
           "missing": [], "facts": None, "plan": None, "verdict": None, "error": None,
           "findings": [], "notes": [], "warnings": [], "seconds": None}
    rec.update(fields)
    return rec


def base_record(group: PlanRef, facts: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The identity part of a plan's record (verdict still unknown)."""
    return _record(group.key, group.files, plan_uid=group.plan_uid,
                   patient_id=group.patient_id, plan_label=group.plan_label,
                   missing=list(group.missing), facts=None if facts is None else dict(facts),
                   warnings=list(group.notes))


def bad_file_record(bad: BadFile) -> dict[str, Any]:
    """The ERROR record of a file that claims to be DICOM but cannot be read."""
    return _record(bad.key, [bad.path], verdict="ERROR", error=f"{bad.path}: {bad.problem}",
                   seconds=0.0)


def skipped_record(skipped: SkippedFile) -> dict[str, Any]:
    """The SKIPPED record of a file that was not read as DICOM (the reason in ``warnings``)."""
    return _record(skipped.key, [skipped.path], verdict=SKIPPED,
                   warnings=[f"skipped: {skipped.reason}"], seconds=0.0)


def error_message(exc: BaseException, group: PlanRef) -> str:
    """A one-line message that names the file: the error's own path, else the plan's."""
    if isinstance(exc, InputError) and exc.path:
        return str(exc)
    text = str(exc) or type(exc).__name__
    if not isinstance(exc, RTCheckError):
        text = f"{type(exc).__name__}: {text}"
    return f"{group.plan_path}: {text}"


def error_record(task: PlanTask, exc: BaseException, seconds: float | None = None
                 ) -> dict[str, Any]:
    """The ERROR record of a plan whose check raised ``exc``."""
    rec = base_record(task.group, task.facts)
    rec.update(verdict="ERROR", error=error_message(exc, task.group), seconds=seconds)
    return rec


def crash_record(task: PlanTask) -> dict[str, Any]:
    """The ERROR record of a plan whose worker process died while checking it, alone."""
    rec = base_record(task.group, task.facts)
    rec.update(verdict="ERROR", error=f"{task.group.plan_path}: the worker process died while "
               "checking this plan (crash or out of memory), also when re-run alone")
    return rec


def timeout_record(task: PlanTask, seconds: float, how: str = "its worker process was "
                   "stopped") -> dict[str, Any]:
    """The ERROR record of a plan still running after ``seconds`` (``--plan-timeout``)."""
    rec = base_record(task.group, task.facts)
    rec.update(verdict="ERROR", seconds=round(float(seconds), 3),
               error=f"{task.group.plan_path}: timed out after {seconds:g} s (--plan-timeout); "
                     f"{how}")
    return rec


def valid_record(task: PlanTask, rec: Any) -> dict[str, Any]:
    """``rec`` when it is a record of ``task`` (a dict with the key and a verdict), else the
    plan's ERROR record saying what the worker returned."""
    if isinstance(rec, dict) and isinstance(rec.get("key"), str) and isinstance(
            rec.get("verdict"), str):
        return rec
    what = (f"a {type(rec).__name__}" if not isinstance(rec, dict)
            else "a record without key or verdict")
    return error_record(task, TypeError(f"the worker returned {what}, not a batch record"))


def unwritable_record(record: Mapping[str, Any], exc: BaseException) -> dict[str, Any]:
    """An ERROR record for a plan whose record could not be written at all (the key kept,
    so that --resume knows the plan is done)."""
    key = record.get("key") if isinstance(record, Mapping) else None
    return _record(key if isinstance(key, str) else f"unwritable:{id(record)}", [],
                   verdict="ERROR", error=f"the record of this plan could not be written "
                   f"({type(exc).__name__}: {str(exc)[:200]})")


def record_key_function(deidentify: bool) -> Callable[[str], str]:
    """How a plan's key is written in the output (a pseudonym with --deidentify)."""
    if not deidentify:
        return lambda key: key
    from rtcheck.report import deidentified_key

    return deidentified_key


def is_pseudonym(key: Any) -> bool:
    """Whether ``key`` is a de-identified key (a record written with --deidentify)."""
    from rtcheck.report import is_deidentified_key

    return is_deidentified_key(key)


def deidentified_record(rec: dict, archive: Any) -> dict:
    """``rec`` as --deidentify writes it (:func:`rtcheck.report.scrub_record`)."""
    from rtcheck.report import scrub_record

    return scrub_record(rec, archive=archive)


def record_label(rec: dict) -> str:
    """``patient / plan label`` for messages, else the plan UID, else the file (a de-identified
    record: its pseudonymous key and label)."""
    if is_pseudonym(rec.get("key")):
        from rtcheck.report import deidentified_progress_label

        return deidentified_progress_label(rec)
    return str(" / ".join(str(x) for x in (rec.get("patient_id"), rec.get("plan_label")) if x)
               or rec.get("plan_uid") or (rec.get("files") or ["?"])[0])
