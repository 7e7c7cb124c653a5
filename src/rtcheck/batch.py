"""Batch QA over plan archives: discovery, parallel checking, resumable streaming output.

The pipeline of ``rtcheck batch``::

    discover(ARCHIVE)  ->  PlanTask per plan  ->  executor  ->  sink (JSONL or CSV)
      headers only          + facts from            local processes      one record per plan,
      (RTPLAN, RTDOSE,        --indication-from     or Dask workers      written and fsync'ed
       RTSTRUCT grouped                             run check_one()      as each plan finishes
       by their UIDs)

*Discovery* reads DICOM headers only (:func:`rtcheck.dicom.scan`, no pixel data) and groups
every RTPLAN with the RTDOSE objects that reference it and the RTSTRUCT it references
(:func:`rtcheck.dicom.group_plans`). A plan without dose or structures is kept and says what
is missing; a file that claims to be DICOM but cannot be read becomes an ERROR record of its
own; doses and structure sets without a plan are listed in the summary.

*Facts* DICOM does not hold (indication, site, vertebral level, prior courses) come from an
optional CSV/JSON keyed by plan UID or patient ID. A rule the checker skipped because such a
fact was not given (its typed skip: ``code == "fact_missing"``, ``needs``) is reported
NOT_EVALUATED in a batch (one ``facts.<fact>`` finding per missing fact), never PASS.

*Verdicts* of a record are the checker's (PASS, REVIEW, NOT_EVALUATED, FAIL: see
:mod:`rtcheck.checker.findings`), raised to NOT_EVALUATED when a fact is missing, or ERROR for a plan
that could not be read or checked. The batch's exit code is 4 when any record is ERROR, else
the exit code of the worst verdict over every record of the output (resumed runs included).

*Workers* are local processes, one plan at a time each, that run :func:`check_one` and
return a plain JSON-able record; any exception (OverflowError, RecursionError, MemoryError
included) becomes an ERROR record naming the file and the problem. A plan still running
after ``plan_timeout`` seconds (``--plan-timeout``, default :data:`DEFAULT_PLAN_TIMEOUT`) is
an ERROR record "timed out after N s": its worker process is killed and replaced, and the
batch goes on. A worker process that dies (segfault, out of memory) is replaced; its plan is
run once more, alone, and recorded as ERROR if it kills its worker again.

*Output* is written by the parent process only, one record at a time, flushed and
``fsync``'ed, so a run killed at any moment keeps every record it wrote. The output file is
locked (``fcntl.flock`` on ``OUTPUT.lock``, which holds the PID) for the whole run: a second
batch writing the same file stops at once (exit 2, naming the PID). Records are strict JSON:
a non-finite number (a BED that overflowed to inf, a NaN) is written as ``null`` and named in
the record's warnings, and nothing in a plan's content can make the writer raise. A partly
written last line (killed mid-write) is cut off by ``--resume``, which then skips every plan
whose key is already in the file (earlier records holding ``NaN``/``Infinity`` tokens are
rewritten strict, atomically). The key of a plan is its SOPInstanceUID plus the
SOPInstanceUIDs of its dose files: a plan that gains a new dose is checked again.

*Skipped files* (not regular files: FIFOs, sockets, devices, never opened; files whose bytes
are not DICOM, as :func:`rtcheck.dicom.scan` reports) are listed with their reason in the
summary and as ``SKIPPED`` records in the output; they do not change the exit code.

Memory stays flat as the archive grows: the parent keeps the compact discovery list (a few
UIDs and paths per plan, about a kilobyte), at most ``jobs`` plans in flight, the counts
and the slowest plans; results are never accumulated.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import heapq
import io
import json
import logging
import math
import numbers
import os
import re
import shutil
import signal
import socket
import stat
import sys
import threading
import time
import warnings
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from multiprocessing.connection import wait as wait_for
from pathlib import Path
from typing import IO, Any

from rtcheck.checker import findings as F
from rtcheck.errors import InputError, RTCheckError

#: Verdicts of a batch record, lowest first: the checker's levels, then ERROR (a plan or file
#: that could not be read or checked).
VERDICTS = (*F.VERDICTS, "ERROR")
#: The verdict of a record that lists a skipped file (not a plan: no exit code of its own).
SKIPPED = "SKIPPED"

#: Default of ``--plan-timeout`` (seconds): a plan still running after it is an ERROR record.
#: Real plans take seconds (a 10-million-voxel body grid about a minute); 0 or None: no limit.
DEFAULT_PLAN_TIMEOUT = 600.0
#: Seconds allowed to reach a Dask scheduler (``--scheduler``) before the batch gives up.
SCHEDULER_CONNECT_TIMEOUT = 5.0

#: Exit codes of a batch (also in the README): 4 when any record is ERROR, else the worst
#: verdict's code (findings.EXIT_CODES): PASS 0, FAIL 1, NOT_EVALUATED 3, REVIEW 5; 2 usage.
EXIT_OK, EXIT_FAIL = F.EXIT_CODES["PASS"], F.EXIT_CODES["FAIL"]
EXIT_NOT_EVALUATED, EXIT_REVIEW = F.EXIT_CODES["NOT_EVALUATED"], F.EXIT_CODES["REVIEW"]
EXIT_USAGE, EXIT_ERROR = F.EXIT_BAD_INPUT, F.EXIT_ERROR


def batch_exit_code(counts: Mapping[str, int]) -> int:
    """The exit code of a batch whose records have these verdict counts.

    4 when any record is ERROR; else the exit code of the worst verdict
    (:func:`rtcheck.checker.findings.worst_verdict`): FAIL 1 > NOT_EVALUATED 3 > REVIEW 5 > PASS 0. A
    verdict rtcheck does not know (a foreign or older record) counts as NOT_EVALUATED, and a
    batch without any record checked nothing: NOT_EVALUATED (3), never PASS. SKIPPED records
    (files that are not plans) do not count.
    """
    present = [v for v, n in counts.items() if n and v != SKIPPED]
    if "ERROR" in present:
        return EXIT_ERROR
    levels = [v if v in F.VERDICTS else "NOT_EVALUATED" for v in present]
    return F.EXIT_CODES[F.worst_verdict(levels)]

#: Extensions that claim to be DICOM: such a file that cannot be read is reported even when
#: its bytes do not look like DICOM at all.
DICOM_EXTENSIONS = frozenset({".dcm", ".dicom", ".dic", ".ima"})
#: Extensions never worth opening.
NOT_DICOM_EXTENSIONS = frozenset(
    ".txt .xml .json .jsonl .csv .pdf .png .jpg .jpeg .gif .bmp .tif .tiff .zip .gz .tgz .bz2 "
    ".xz .7z .tar .log .md .html .htm .py .ini .cfg .toml .yaml .yml .exe .dll .doc .docx .xls "
    ".xlsx .lock".split())
#: The missing parts a plan's record lists (PlanGroup.missing_parts).
_MISSING_CODES = ("RTDOSE", "RTSTRUCT")

#: Number of slowest plans listed in the summary.
SLOWEST_SHOWN = 5


# --------------------------------------------------------------------------------------
# Worker processes
# --------------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True  # no /proc: trust os.kill


def _exit_when_orphaned(batch_pid: int, poll_seconds: float = 1.0) -> None:
    """Exit this worker once the batch process is gone: a SIGKILLed batch must not leave
    workers blocked forever on their task queue (with a fork server, the worker's own
    parent is the server, which in turn waits for its workers)."""
    while _alive(batch_pid):
        time.sleep(poll_seconds)
    os._exit(1)


def _init_worker(batch_pid: int) -> None:
    """Worker set-up: Ctrl-C is the parent's business, pydicom's log stays off the terminal,
    and the worker dies with the batch."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger("pydicom").addHandler(logging.NullHandler())
    logging.getLogger("pydicom").propagate = False
    threading.Thread(target=_exit_when_orphaned, args=(batch_pid,), daemon=True,
                     name="rtcheck-orphan-watch").start()


#: Thread pools of numerical libraries, limited to one thread per worker process: the
#: batch is parallel across plans, and nested threads would only oversubscribe the cores
#: (measured: twice the CPU time per plan for a few percent less wall time). Dask's nanny
#: sets the same for its workers. A value the user set is kept.
SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                     "MKL_NUM_THREADS": "1"}


@contextlib.contextmanager
def _worker_environment() -> Iterator[None]:
    """Set SINGLE_THREAD_ENV for the processes started inside, then restore."""
    added = {k: v for k, v in SINGLE_THREAD_ENV.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


#: Modules a fork server imports once, so each new worker starts warm.
WORKER_PRELOAD = ["rtcheck.batch", "rtcheck.checker", "rtcheck.dicom", "rtcheck.dvh"]


def _context(start_method: str | None) -> Any:
    """The multiprocessing context: a fork server where available (each worker is forked
    from a clean, pre-imported process: cheap restarts, no inherited threads or files),
    else spawn."""
    import multiprocessing

    if start_method is None:
        start_method = ("forkserver" if "forkserver" in multiprocessing.get_all_start_methods()
                        else "spawn")
    ctx = get_context(start_method)
    if start_method == "forkserver":
        ctx.set_forkserver_preload(WORKER_PRELOAD)
    return ctx


# --------------------------------------------------------------------------------------
# Discovery: headers, grouping
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BadFile:
    """A file that claims to be DICOM (extension or DICOM bytes) but cannot be read."""

    path: str
    key: str
    problem: str


@dataclass(frozen=True)
class SkippedFile:
    """A file of the archive that was not read as DICOM, and why (listed, never silent)."""

    path: str
    key: str
    reason: str


@dataclass(frozen=True)
class PlanRef:
    """One plan of the archive with the files that belong to it, compactly (what the parent
    keeps per plan and sends to a worker).

    Attributes
    ----------
    plan_uid, patient_id, plan_label : str
        From the RTPLAN header.
    plan_path : str
    dose_paths, dose_uids : tuple of str
        Every RTDOSE that references the plan (several for per-beam doses), sorted by UID.
    structure_path : str or None
        The RTSTRUCT the plan references, when found in the archive.
    missing : tuple of str
        ``"RTDOSE"`` and/or ``"RTSTRUCT"`` when not found.
    notes : tuple of str
        Sentences for the record's warnings: what is missing and why, duplicate copies
        ignored.
    """

    plan_uid: str
    patient_id: str | None
    plan_label: str | None
    plan_path: str
    dose_paths: tuple[str, ...] = ()
    dose_uids: tuple[str, ...] = ()
    structure_path: str | None = None
    missing: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The resume key: plan SOPInstanceUID (its file when it has none) and the dose
        SOPInstanceUIDs."""
        return f"{self.plan_uid or 'file:' + self.plan_path}|{','.join(self.dose_uids)}"

    @property
    def files(self) -> list[str]:
        """Plan, dose(s) and structure set files, in that order."""
        return [self.plan_path, *self.dose_paths,
                *([self.structure_path] if self.structure_path else [])]


@dataclass
class Discovery:
    """Everything :func:`discover` found under an archive."""

    groups: list[PlanRef] = field(default_factory=list)
    bad_files: list[BadFile] = field(default_factory=list)
    unattached: list[str] = field(default_factory=list)  # doses/structure sets with no plan
    skipped: Counter = field(default_factory=Counter)  # files not checked, by kind
    skipped_files: list[SkippedFile] = field(default_factory=list)  # ...those read, and why
    files_seen: int = 0


def _walk(root: Path) -> Iterator[Path]:
    """Every file under ``root`` (:func:`rtcheck.dicom.walk_files`), as paths."""
    from rtcheck.dicom import walk_files

    return (Path(p) for p in walk_files(root))


_FILE_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
               (stat.S_ISDIR, "a folder"))


def not_regular(path: str | os.PathLike) -> str | None:
    """Why ``path`` must not be opened (not a regular file, or a link to nothing), else None.

    Reading a FIFO blocks until someone writes to it, a device may never end: only regular
    files are opened (links to regular files are followed).
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if os.path.islink(path):
            return "not a regular file: a symbolic link to nothing"
        return f"not a regular file: cannot be examined ({exc.strerror or exc})"
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _FILE_KINDS if test(mode)), "of an unknown kind")
    return f"not a regular file: {kind}, never opened"


def classify_file(path: Path) -> Any:
    """The header of one file, or why it is not one.

    Returns
    -------
    rtcheck.dicom.FileHeader
        A readable DICOM object (any modality: filter on ``modality``).
    BadFile
        A file that claims to be DICOM (``.dcm``-like extension, or DICOM bytes) but cannot
        be read; its ``key`` is still to be set.
    SkippedFile
        Not opened (not a regular file) or not DICOM (its bytes say so, as
        :func:`rtcheck.dicom.scan` reports): the reason; its ``key`` is still to be set.
    None
        Not DICOM by its extension (``.txt``, ``.pdf``...): not opened.
    """
    from rtcheck.dicom import scan

    if path.suffix.lower() in NOT_DICOM_EXTENSIONS:
        return None
    why = not_regular(path)
    if why is not None:
        return SkippedFile(str(path), "", why)
    try:
        (header,) = scan(path)
    except InputError as exc:
        if _not_dicom(exc.message) and path.suffix.lower() not in DICOM_EXTENSIONS:
            return SkippedFile(str(path), "", exc.message)
        return BadFile(str(path), "", exc.message)
    except Exception as exc:  # a header read must never stop the discovery
        return BadFile(str(path), "", f"unreadable ({type(exc).__name__}: {exc})")
    if getattr(header, "error", None):  # a header scan() could not read
        if _not_dicom(header.error) and path.suffix.lower() not in DICOM_EXTENSIONS:
            return SkippedFile(str(path), "", header.error)
        return BadFile(str(path), "", header.error)
    return header


def _not_dicom(message: str) -> bool:
    """Whether scan()'s message says the bytes are not DICOM at all (as opposed to DICOM
    that is damaged): such a file is skipped unless its name claims DICOM."""
    text = message.lower()
    return text.startswith(("not a dicom file", "not a regular file"))


def _plan_ref(group: Any) -> PlanRef:
    """A compact PlanRef from an :class:`rtcheck.dicom.PlanGroup` that has a plan."""
    plan = group.plan
    doses = sorted(group.doses, key=lambda h: h.sop_instance_uid or h.path)
    missing = tuple(dict.fromkeys(p for p in group.missing_parts if p in _MISSING_CODES))
    return PlanRef(plan.sop_instance_uid, plan.patient_id, plan.label, plan.path,
                   tuple(d.path for d in doses), tuple(d.sop_instance_uid or "" for d in doses),
                   group.structure_set.path if group.structure_set else None, missing,
                   tuple([*group.missing, *group.notes]))


#: Files per header-scanning task when discovery runs on worker processes.
SCAN_CHUNK = 64


def classify_files(paths: list[str]) -> list[Any]:
    """:func:`classify_file` over a chunk of files, for a worker process: RT headers, bad
    files and None come back as they are, other DICOM objects as their modality only."""
    from rtcheck.dicom import RT_MODALITIES

    out: list[Any] = []
    for path in paths:
        got = classify_file(Path(path))
        keep = (got is None or isinstance(got, (BadFile, SkippedFile))
                or got.modality in RT_MODALITIES)
        out.append(got if keep else got.modality or "other DICOM")
    return out


def _classify_all(paths: list[str], jobs: int, on_file: Callable[[int], None] | None
                  ) -> Iterator[Any]:
    """What each file is, in ``paths`` order; on ``jobs`` worker processes when > 1 (header
    reads are CPU-bound: a 10,000-plan archive has 30,000 RT files)."""
    if jobs <= 1 or len(paths) <= SCAN_CHUNK:
        for i, path in enumerate(paths, start=1):
            if on_file is not None:
                on_file(i)
            yield classify_files([path])[0]
        return
    chunks = [paths[i:i + SCAN_CHUNK] for i in range(0, len(paths), SCAN_CHUNK)]
    with _worker_environment(), ProcessPoolExecutor(
            max_workers=jobs, mp_context=_context(None), initializer=_init_worker,
            initargs=(os.getpid(),)) as pool:
        done = 0
        for results in pool.map(classify_files, chunks):
            done += len(results)
            if on_file is not None:
                on_file(done)
            yield from results


def discover(archive: str | os.PathLike, on_file: Callable[[int], None] | None = None,
             jobs: int = 1) -> Discovery:
    """Find and group every plan under ``archive`` from file headers.

    Headers are read by :func:`rtcheck.dicom.scan` and grouped by
    :func:`rtcheck.dicom.group_plans` (pairing by UID references only, duplicates kept
    once). Only RT headers are kept, so CT/MR slices cost nothing but their header read.

    Parameters
    ----------
    archive : path
        A folder, searched recursively (nested patient/course folders, files with or without
        extension, other modalities mixed in).
    on_file : callable, optional
        Called with the number of files classified so far, for a progress display.
    jobs : int
        Worker processes reading headers (1: in this process). The result does not depend
        on it.
    """
    from rtcheck.dicom import group_plans

    root = Path(archive)
    if not root.is_dir():
        raise InputError("not a folder", root)
    found = Discovery()
    headers = []
    paths = [str(p) for p in _walk(root)]
    found.files_seen = len(paths)
    try:
        classified = list(_classify_all(paths, jobs, on_file))
    except BrokenProcessPool:  # a header read killed a worker: read them here instead
        classified = list(_classify_all(paths, 1, on_file))
    for got in classified:
        if isinstance(got, BadFile):
            key = "file:" + os.path.relpath(got.path, root)
            found.bad_files.append(BadFile(got.path, key, got.problem))
        elif isinstance(got, SkippedFile):
            key = "skipped:" + os.path.relpath(got.path, root)
            found.skipped_files.append(SkippedFile(got.path, key, got.reason))
            found.skipped["not a regular file" if got.reason.startswith("not a regular file")
                          else "not DICOM"] += 1
        elif got is None:
            found.skipped["not DICOM"] += 1
        elif isinstance(got, str):
            found.skipped[got] += 1
        else:
            headers.append(got)
    for group in group_plans(headers):
        if group.plan is not None and group.conflicts:
            # one UID, two contents: `rtcheck check` refuses the plan (exit 2); so does batch
            ref = _plan_ref(group)
            found.bad_files.append(BadFile(ref.plan_path, ref.key, "; ".join(
                c[3] for c in group.conflicts)))
        elif group.plan is not None:
            found.groups.append(_plan_ref(group))
        else:
            found.unattached.append(" + ".join(h.describe() for h in group.files())
                                    + ": " + "; ".join(group.missing))
    return found


# --------------------------------------------------------------------------------------
# Per-plan facts (--indication-from)
# --------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------
# Per-plan work
# --------------------------------------------------------------------------------------


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


def _error_message(exc: BaseException, group: PlanRef) -> str:
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
    rec.update(verdict="ERROR", error=_error_message(exc, task.group), seconds=seconds)
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


def _valid_record(task: PlanTask, rec: Any) -> dict[str, Any]:
    """``rec`` when it is a record of ``task`` (a dict with the key and a verdict), else the
    plan's ERROR record saying what the worker returned."""
    if isinstance(rec, dict) and isinstance(rec.get("key"), str) and isinstance(
            rec.get("verdict"), str):
        return rec
    what = (f"a {type(rec).__name__}" if not isinstance(rec, dict)
            else "a record without key or verdict")
    return error_record(task, TypeError(f"the worker returned {what}, not a batch record"))


#: Facts-file columns passed to :func:`rtcheck.checker.check`, and how each is converted.
#: ``prior_summary`` may hold several courses separated by ``;``. Other columns are kept in
#: the record's ``facts`` but not used.
CHECK_FACTS = {
    "indication": ("indication", str),
    "site": ("site", str),
    "technique": ("technique", str),
    "vertebral_level": ("vertebral_level", str),
    "prior_summary": ("priors", lambda v: [c.strip() for c in v.split(";") if c.strip()]),
    "interval_months": ("interval_months", float),
    "date": ("date", str),
}
_PROTOCOLS: dict[tuple[str, ...], list] = {}


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
    return out


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


def _evaluate(task: PlanTask) -> dict[str, Any]:
    """Load the plan and run the checker; returns verdict, findings, notes, warnings and the
    plan's facts as the checker used them. A missing fact raises a PASS or REVIEW to
    NOT_EVALUATED (a FAIL stays FAIL)."""
    from rtcheck.checker import check
    from rtcheck.dicom import load_plan

    group = task.group
    data = load_plan(group.files, plan=group.plan_uid)
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
        rec.update(verdict="ERROR", error=_error_message(exc, task.group))
    rec["seconds"] = round(time.perf_counter() - start, 3)
    return rec


# --------------------------------------------------------------------------------------
# Executors: local processes, Dask
# --------------------------------------------------------------------------------------

Worker = Callable[[PlanTask], dict]
Emit = Callable[[PlanTask, dict], None]
_END = object()


def _run_task(worker: Worker, task: PlanTask) -> Any:
    """``worker(task)``; anything it raises becomes the plan's ERROR record."""
    try:
        return worker(task)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        return error_record(task, exc)


def _worker_loop(conn: Any, worker: Worker, batch_pid: int, max_tasks: int | None) -> None:
    """A worker process: receive a task, send back its record, until told to stop (None),
    the batch goes away, or ``max_tasks`` were done."""
    _init_worker(batch_pid)
    done = 0
    while max_tasks is None or done < max_tasks:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        rec = _run_task(worker, task)
        try:
            conn.send(rec)
        except Exception as exc:  # the record does not pickle: nothing was sent
            conn.send(error_record(task, exc))
        done += 1


@dataclass(eq=False)
class _Slot:
    """One worker process of :func:`run_local` and the plan it is checking."""

    process: Any
    conn: Any
    task: PlanTask | None = None
    started: float = 0.0
    alone: bool = False  # the task is a re-run after its worker died
    count: int = 0

    def stop(self, kill: bool) -> None:
        if not kill and self.process.is_alive():
            try:
                self.conn.send(None)
            except OSError:
                kill = True
            self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self.conn.close()


def run_local(tasks: Iterable[PlanTask], emit: Emit, *, jobs: int, worker: Worker = check_one,
              inflight: int | None = None, start_method: str | None = None,
              max_tasks_per_child: int | None = None,
              plan_timeout: float | None = DEFAULT_PLAN_TIMEOUT) -> None:
    """Run ``worker`` over ``tasks`` on ``jobs`` local processes, emitting records as they finish.

    Each worker process checks one plan at a time, so the batch knows which plan each is on
    and since when. At most ``min(jobs, inflight)`` tasks are taken from ``tasks`` ahead of
    their records, so a generator of tasks is consumed lazily.

    * A plan still running after ``plan_timeout`` seconds (None or 0: no limit) gets an
      ERROR record "timed out after N s"; its worker is killed and replaced.
    * A worker that dies (segfault, out of memory, ``os._exit``) is replaced; its plan is run
      again alone (no other plan in flight) and gets an ERROR record if it kills its worker
      again.
    * Whatever the worker raises or returns instead of a record is the plan's ERROR record.

    ``start_method`` defaults to "forkserver" where available, else "spawn"; both start
    workers without the parent's threads or open files, so ``worker`` must be importable by
    name (a module-level function or a partial of one). ``max_tasks_per_child`` replaces a
    worker after that many plans.
    """
    source = iter(tasks)
    width = max(1, min(jobs, inflight or jobs))
    limit = plan_timeout if plan_timeout and plan_timeout > 0 else None
    ctx = _context(start_method)
    slots: list[_Slot] = []
    retry: deque[PlanTask] = deque()
    exhausted = False

    def idle_slot() -> _Slot:
        for slot in list(slots):
            if slot.task is None:
                if slot.process.is_alive() and not (
                        max_tasks_per_child and slot.count >= max_tasks_per_child):
                    return slot
                slots.remove(slot)  # exited (max_tasks_per_child) or died while idle
                slot.stop(kill=False)
        parent, child = ctx.Pipe(duplex=True)
        process = ctx.Process(target=_worker_loop, name="rtcheck-batch-worker", daemon=True,
                              args=(child, worker, os.getpid(), max_tasks_per_child))
        process.start()
        child.close()
        slot = _Slot(process, parent)
        slots.append(slot)
        return slot

    def assign(task: PlanTask, alone: bool = False) -> None:
        slot = idle_slot()
        slot.task, slot.started, slot.alone = task, time.monotonic(), alone
        slot.count += 1
        try:
            slot.conn.send(task)
        except OSError:  # died between is_alive() and send: noticed by the wait below
            pass

    def finish(slot: _Slot) -> PlanTask:
        task, slot.task = slot.task, None
        assert task is not None
        return task

    with _worker_environment():
        try:
            while True:
                busy = [s for s in slots if s.task is not None]
                if retry:
                    if not busy:
                        assign(retry.popleft(), alone=True)
                else:
                    while not exhausted and len(busy) < width:
                        task = next(source, _END)
                        if task is _END:
                            exhausted = True
                            break
                        assign(task)
                        busy = [s for s in slots if s.task is not None]
                busy = [s for s in slots if s.task is not None]
                if not busy:
                    if exhausted and not retry:
                        break
                    continue
                timeout = None
                if limit is not None:
                    timeout = max(0.0, min(s.started for s in busy) + limit - time.monotonic())
                ready = set(wait_for([s.conn for s in busy] + [s.process.sentinel for s in busy],
                                     timeout))
                now = time.monotonic()
                for slot in busy:
                    if slot.conn in ready or slot.process.sentinel in ready:
                        rec: Any = _END
                        try:
                            if slot.conn.poll():
                                rec = slot.conn.recv()
                        except (EOFError, OSError):
                            pass
                        if rec is not _END:
                            task = finish(slot)
                            emit(task, _valid_record(task, rec))
                            continue
                        if slot.process.is_alive():
                            continue  # a spurious wake-up
                        task = finish(slot)
                        slots.remove(slot)
                        slot.stop(kill=True)
                        if slot.alone:
                            emit(task, crash_record(task))
                        else:
                            retry.append(task)
                    elif limit is not None and now - slot.started >= limit:
                        task = finish(slot)
                        slots.remove(slot)
                        slot.stop(kill=True)
                        emit(task, timeout_record(task, limit))
        except BaseException:
            for slot in slots:
                slot.stop(kill=True)
            raise
        for slot in slots:
            slot.stop(kill=False)


#: What ``--scheduler`` accepts: Dask's TCP or TLS address of a scheduler.
_SCHEDULER_ADDRESS = re.compile(r"^(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


def parse_scheduler_address(address: str) -> tuple[str, str, int]:
    """``(protocol, host, port)`` of a ``tcp://HOST:PORT`` or ``tls://HOST:PORT`` address.

    Raises
    ------
    InputError
        Anything else (a bare host, a missing or impossible port, another protocol).
    """
    m = _SCHEDULER_ADDRESS.match(address.strip()) if isinstance(address, str) else None
    if m is None or not 0 < int(m.group(3)) < 65536:
        raise InputError(f"--scheduler {address!r}: expected tcp://HOST:PORT, or "
                         "tls://HOST:PORT for an encrypted connection")
    return m.group(1), m.group(2).strip("[]"), int(m.group(3))


def check_scheduler(address: str, timeout: float = SCHEDULER_CONNECT_TIMEOUT) -> None:
    """Fail fast on a malformed or unreachable scheduler address: a plain TCP connection
    within ``timeout`` seconds (no Dask handshake), before any work.

    Raises
    ------
    InputError
        Malformed address, unknown host, refused or timed-out connection.
    """
    _, host, port = parse_scheduler_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except socket.gaierror as exc:
        raise InputError(f"cannot connect to the Dask scheduler: unknown host {host!r} "
                         f"({exc.strerror or exc})", address) from None
    except TimeoutError:
        raise InputError(f"cannot connect to the Dask scheduler: no answer within {timeout:g} s",
                         address) from None
    except OSError as exc:
        raise InputError(f"cannot connect to the Dask scheduler ({exc.strerror or exc})",
                         address) from None


def connect_dask(scheduler: str, timeout: str | float = SCHEDULER_CONNECT_TIMEOUT) -> Any:
    """A :class:`distributed.Client` of ``scheduler``, within ``timeout`` (Dask's security
    settings apply: TLS for ``tls://`` addresses).

    Raises
    ------
    InputError
        Dask not installed, malformed address, or no working connection in time.
    """
    try:
        from dask.distributed import Client
    except ImportError:
        raise InputError("--scheduler needs Dask: pip install 'rtcheck[dask]'") from None
    parse_scheduler_address(scheduler)
    if isinstance(timeout, str):
        import dask.utils

        seconds = float(dask.utils.parse_timedelta(timeout))
    else:
        seconds = float(timeout)
    # Dask's own timeout does not bound its handshake: a server that accepts the TCP
    # connection and never answers hangs Client() for ever. Connect on a helper thread and
    # give up at the deadline (a client that connects later is closed at once).
    outcome: dict[str, Any] = {}
    given_up = threading.Event()

    def connect() -> None:
        try:
            client = Client(scheduler, timeout=seconds, set_as_default=False)
        except BaseException as exc:
            outcome["error"] = exc
            return
        if given_up.is_set():
            with contextlib.suppress(Exception):
                client.close()
        else:
            outcome["client"] = client

    helper = threading.Thread(target=connect, daemon=True, name="rtcheck-dask-connect")
    helper.start()
    helper.join(seconds + 2.0)
    if helper.is_alive():
        given_up.set()
        raise InputError(f"cannot connect to the Dask scheduler: no Dask answer within "
                         f"{seconds:g} s", scheduler)
    if "client" in outcome:
        return outcome["client"]
    exc = outcome.get("error")
    if isinstance(exc, (OSError, TimeoutError)):
        raise InputError(f"cannot connect to the Dask scheduler ({exc})", scheduler) from None
    raise InputError(f"cannot connect to the Dask scheduler ({type(exc).__name__}: {exc})",
                     scheduler) from None


def run_dask(tasks: Iterable[PlanTask], emit: Emit, *, scheduler: str | None = None,
             worker: Worker = check_one, inflight: int | None = None,
             connect_timeout: str | float = SCHEDULER_CONNECT_TIMEOUT,
             plan_timeout: float | None = DEFAULT_PLAN_TIMEOUT, client: Any = None) -> None:
    """Run ``worker`` over ``tasks`` on a Dask distributed cluster at ``scheduler``.

    The workers must have rtcheck installed and see the archive at the same path. At most
    ``inflight`` tasks (default: twice the cluster's threads) are submitted at a time. A
    task whose workers keep dying ends as an ERROR record (Dask's KilledWorker).

    The connection's security (TLS certificates, ``require-encryption``) is Dask's
    configuration (``distributed.comm.tls.*``, read by :class:`distributed.Security`); the
    records come back to this process through the scheduler.

    ``plan_timeout``: a task not finished that many seconds after it was submitted gets an
    ERROR record "timed out" and is cancelled; Dask cannot stop a task that already runs in
    a worker thread, which stays busy until the task ends (or the worker is restarted).

    ``client``: an open :class:`distributed.Client` to use (and leave open) instead of
    connecting to ``scheduler``.
    """
    from dask.distributed import as_completed

    if client is None:
        if scheduler is None:
            raise InputError("run_dask needs a scheduler address or a client")
        owned = connect_dask(scheduler, connect_timeout)
    else:
        owned = contextlib.nullcontext(client)
    limit_s = plan_timeout if plan_timeout and plan_timeout > 0 else None
    with owned as dask:
        limit = inflight or max(2, 2 * sum(dask.nthreads().values()))
        source = iter(tasks)
        pending: dict[Any, tuple[PlanTask, float]] = {}
        stream = as_completed(loop=dask.loop)
        exhausted = False
        while True:
            while not exhausted and len(pending) < limit:
                task = next(source, _END)
                if task is _END:
                    exhausted = True
                    break
                fut = dask.submit(worker, task, pure=False)
                pending[fut] = (task, time.monotonic())
                stream.add(fut)
            if not pending:
                return
            if limit_s is None:
                finished = stream.next_batch(block=True)
            else:  # Dask's waits take no timeout here: poll
                finished = stream.next_batch(block=False)
                if not finished:
                    time.sleep(0.05)
            for fut in finished:
                if fut not in pending:  # timed out and cancelled before
                    continue
                task, _ = pending.pop(fut)
                if fut.status == "error":
                    rec = error_record(task, fut.exception())
                else:
                    try:
                        rec = _valid_record(task, fut.result())
                    except Exception as exc:  # cancelled, lost...
                        rec = error_record(task, exc)
                fut.release()
                emit(task, rec)
            if limit_s is not None:
                now = time.monotonic()
                for fut, (task, submitted) in list(pending.items()):
                    if now - submitted >= limit_s and not fut.done():
                        del pending[fut]
                        fut.cancel()
                        emit(task, timeout_record(
                            task, limit_s, "cancelled on the Dask cluster (a task that "
                            "already runs keeps its worker thread until it ends)"))


# --------------------------------------------------------------------------------------
# Output sinks: JSONL and CSV, append-only, resumable
# --------------------------------------------------------------------------------------

#: CSV columns: one row per finding (a plan without findings still has one row).
CSV_FINDING_FIELDS = ("rule", "structure", "role", "stands_for", "metric", "value", "limit",
                      "unit", "alpha_beta", "model", "status", "code", "missing", "reason",
                      "source")
CSV_COLUMNS = ("key", "plan_uid", "patient_id", "plan_label", "verdict", "error", "row", "rows",
               *CSV_FINDING_FIELDS, "seconds", "files", "missing", "warnings")


class ResumeError(InputError):
    """An output file that cannot be resumed safely (foreign content, damaged middle)."""


class OutputLocked(InputError):
    """The output file is being written by another batch (its lock is held)."""


# -- strict JSON ----------------------------------------------------------------------

#: Containers nested deeper than this in a record are written as a placeholder string.
MAX_RECORD_DEPTH = 64


def _json_safe(value: Any, where: str, notes: list[str], depth: int = 0,
               active: frozenset = frozenset()) -> Any:
    """``value`` as plain JSON data: non-finite numbers become None (named in ``notes``),
    NumPy values plain numbers, containers lists and str-keyed dicts, anything else its text.
    Never raises on content (cycles and absurd nesting are cut, with a note)."""
    if value is None or isinstance(value, (str, bool)):
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:  # lone surrogates (undecodable file names...)
                value = value.encode("utf-8", "replace").decode("utf-8")
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float) or (isinstance(value, numbers.Real)
                                    and not isinstance(value, numbers.Integral)):
        try:
            number = float(value)
        except (OverflowError, ValueError, TypeError):
            number = math.nan
        if math.isfinite(number):
            return number
        notes.append(f"{where or 'value'} ({value})")
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if hasattr(value, "tolist") and callable(value.tolist) and not isinstance(
            value, (Mapping, list, tuple)):  # NumPy scalars and arrays
        try:
            plain = value.tolist()
        except Exception:
            plain = str(value)
        if plain is not value:
            return _json_safe(plain, where, notes, depth, active)
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        if depth >= MAX_RECORD_DEPTH or id(value) in active:
            notes.append(f"{where or 'value'} (nested too deep or circular: cut)")
            return "<cut>"
        inner = active | {id(value)}
        if isinstance(value, Mapping):
            out = {}
            for k, v in list(value.items()):
                key = k if isinstance(k, str) else str(
                    _json_safe(k, where, [], depth + 1, inner))
                out[key] = _json_safe(v, f"{where}.{key}" if where else str(key), notes,
                                      depth + 1, inner)
            return out
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [_json_safe(v, f"{where}[{i}]", notes, depth + 1, inner)
                for i, v in enumerate(items)]
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    if hasattr(value, "isoformat"):
        try:
            return str(value.isoformat())
        except Exception:
            pass
    try:
        return _json_safe(str(value), where, notes, depth, active)
    except Exception:
        return f"<{type(value).__name__}>"


def strict_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``record`` that ``json.dumps(..., allow_nan=False)`` always accepts.

    Non-finite numbers (inf from an overflow, NaN) become null and the record's warnings
    name where they were; other non-JSON values are converted (see :func:`_json_safe`).
    """
    notes: list[str] = []
    out = _json_safe(dict(record), "", notes)
    if notes:
        warned = out.get("warnings")
        warned = warned if isinstance(warned, list) else ([] if warned is None else [warned])
        shown = ", ".join(notes[:10]) + (f" and {len(notes) - 10} more" if len(notes) > 10
                                          else "")
        out["warnings"] = [*warned, "not a finite number or not JSON, written as null: "
                           + shown]
    return out


def _minimal_record(record: Mapping[str, Any], exc: BaseException) -> dict[str, Any]:
    """An ERROR record for a plan whose record could not be written at all (the key kept,
    so that --resume knows the plan is done)."""
    key = record.get("key") if isinstance(record, Mapping) else None
    return _record(key if isinstance(key, str) else f"unwritable:{id(record)}", [],
                   verdict="ERROR", error=f"the record of this plan could not be written "
                   f"({type(exc).__name__}: {str(exc)[:200]})")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not strict JSON")


def loads_strict(text: str | bytes) -> Any:
    """``json.loads`` that rejects the ``NaN``, ``Infinity`` and ``-Infinity`` tokens."""
    return json.loads(text, parse_constant=_reject_constant)


# -- the output file: checks, lock ------------------------------------------------------


def output_file_problem(path: str | os.PathLike, *, folder_writable: bool = False) -> str | None:
    """Why the output file ``path`` cannot be written (checked before any work), else None.

    ``folder_writable``: its folder must be writable even when the file exists (the batch
    puts its lock file there and rewrites the output atomically).
    """
    p = Path(path)
    folder = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        return "is a folder, not a file"
    if not folder.exists():
        return f"the folder {folder} does not exist"
    if not folder.is_dir():
        return f"{folder} is not a folder"
    if p.exists() and not os.access(p, os.W_OK):
        return "is read-only"
    if (folder_writable or not p.exists()) and not os.access(folder, os.W_OK | os.X_OK):
        return f"the folder {folder} is read-only"
    return None


class OutputLock:
    """An exclusive lock on an output file: ``fcntl.flock`` on ``OUTPUT.lock``, which holds
    the PID and host of the batch that holds it (removed when released; a stale file left by a
    killed batch is free, the kernel released its lock). Not locked where there is no
    ``fcntl`` (Windows)."""

    def __init__(self, output: str | os.PathLike) -> None:
        self.output = str(output)
        self.path = self.output + ".lock"
        self._fd: int | None = None

    def acquire(self) -> OutputLock:
        try:
            import fcntl
        except ImportError:
            return self
        for _ in range(20):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise InputError(f"cannot create the lock file {self.path} "
                                 f"({exc.strerror or exc})", self.output) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)  # no locks on this file system (ENOLCK): go on unlocked
                    return self
                holder = self._holder(fd)
                os.close(fd)
                raise OutputLocked(
                    f"is being written by another rtcheck batch ({holder}; lock file "
                    f"{self.path}): wait for it to end, or write to another file",
                    self.output) from None
            try:  # the file we locked must still be the lock file (not one just removed)
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except OSError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
                self._fd = fd
                return self
            os.close(fd)
        raise OutputLocked(f"could not take the lock {self.path}", self.output)

    @staticmethod
    def _holder(fd: int) -> str:
        try:
            text = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
        except OSError:
            text = []
        if text and text[0].isdigit():
            host = f" on {text[1]}" if len(text) > 1 else ""
            return f"PID {text[0]}{host}"
        return "a process that is starting"

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None


class Sink:
    """An append-only, line-oriented result file; each record durable once written.

    Subclasses define how a record becomes lines and how existing content is checked. The
    file is locked (:class:`OutputLock`) from before it is read or truncated until
    :meth:`close`.
    """

    fmt = ""

    def __init__(self, path: str | None, *, resume: bool = False, overwrite: bool = False):
        self.path = path
        self.done: set[str] = set()
        self.earlier: Counter = Counter()  # verdicts of the records already in the file
        self._lock: OutputLock | None = None
        if path is None:
            if resume:
                raise InputError("--resume needs --output FILE")
            self._fp: IO[bytes] = sys.stdout.buffer
            self._fsync = False
            self._start()
            return
        problem = output_file_problem(path, folder_writable=True)
        if problem:
            raise InputError(problem, path)
        self._lock = OutputLock(path).acquire()
        try:
            self._open(Path(path), resume, overwrite)
        except BaseException:
            self._lock.release()
            raise

    def _open(self, p: Path, resume: bool, overwrite: bool) -> None:
        try:
            exists = p.exists() and p.stat().st_size > 0
            if exists and not (resume or overwrite):
                raise InputError("exists: add --resume to continue it or --overwrite to "
                                 "replace it", self.path)
            if resume and exists:
                keep = self._scan(p.read_bytes())
                with open(p, "r+b") as fp:  # cut off a record left half-written by a kill
                    fp.truncate(keep)
                    fp.flush()
                    os.fsync(fp.fileno())
                self._fp = open(p, "ab")
            else:
                self._fp = open(p, "wb")
        except OSError as exc:
            raise InputError(f"cannot write the output ({exc.strerror or exc})",
                             self.path) from None
        self._fsync = True
        if self._fp.tell() == 0:
            self._start()

    def _start(self) -> None:
        """Write what a new file begins with (the CSV header)."""

    def _scan(self, data: bytes) -> int:
        """Read existing content into :attr:`done`; return the byte length to keep."""
        raise NotImplementedError

    def lines(self, record: dict) -> bytes:
        raise NotImplementedError

    def _write(self, data: bytes) -> None:
        try:
            self._fp.write(data)
            self._fp.flush()
            if self._fsync:
                os.fsync(self._fp.fileno())
        except OSError as exc:  # disk full, file system gone: the batch cannot go on
            raise InputError(f"cannot write the output ({exc.strerror or exc}); every record "
                             "before this one is kept: continue with --resume",
                             self.path) from None

    def write(self, record: dict) -> dict:
        """Append one plan's record, durably (flush + fsync) before returning; returns the
        record as written (strict JSON data). Never raises on the record's content."""
        try:
            written = strict_record(record)
            data = self.lines(written)
        except Exception as exc:  # cannot happen on JSON data; never lose the plan for it
            written = _minimal_record(record, exc)
            data = self.lines(written)
        self._write(data)
        self.done.add(written["key"])
        return written

    def close(self) -> None:
        try:
            if self._fp is not sys.stdout.buffer:
                self._fp.close()
            else:
                self._fp.flush()
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None


def _complete_lines(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(line number, end offset, line) of every newline-terminated line; a last line without
    its newline (killed mid-write) is not returned."""
    pos = 0
    number = 0
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            return
        number += 1
        yield number, end + 1, data[pos:end]
        pos = end + 1


class JsonlSink(Sink):
    """One JSON object per line and per plan (strict JSON: no NaN or Infinity tokens)."""

    fmt = "jsonl"

    def lines(self, record: dict) -> bytes:
        return (json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")

    def _scan(self, data: bytes) -> int:
        keep = 0
        lines = list(_complete_lines(data))
        loose: dict[int, dict] = {}  # line index -> record read with NaN/Infinity tokens
        for i, (number, end, line) in enumerate(lines):
            try:
                try:
                    record = loads_strict(line)
                except ValueError:
                    record = json.loads(line)  # an earlier rtcheck wrote NaN / Infinity
                    loose[i] = record
                key, verdict = record["key"], record["verdict"]
                if not isinstance(key, str):
                    raise TypeError
            except (ValueError, TypeError, KeyError, RecursionError):
                loose.pop(i, None)
                if i == len(lines) - 1 and end == len(data):
                    # The last line is damaged but complete: also a kill mid-write (rare).
                    break
                raise ResumeError(f"line {number} is not an rtcheck batch record; "
                                  "cannot resume safely", self.path) from None
            self.done.add(key)
            self.earlier[verdict] += 1
            keep = end
        if loose:
            keep = self._rewrite_strict(data, lines, loose, keep)
        return keep

    def _rewrite_strict(self, data: bytes, lines: list, loose: dict[int, dict],
                        keep: int) -> int:
        """Rewrite the file with the records that held NaN/Infinity made strict (null, with
        a warning), atomically (a new file renamed over the old one); returns its length."""
        assert self.path is not None
        parts = []
        start = 0
        for i, (_, end, line) in enumerate(lines):
            if end > keep:
                break
            parts.append(self.lines(strict_record(loose[i])) if i in loose
                         else data[start:end])
            start = end
        content = b"".join(parts)
        target = Path(self.path)
        tmp = target.with_name(f".{target.name}.strict-{os.getpid()}")
        try:
            with open(tmp, "wb") as fp:
                fp.write(content)
                fp.flush()
                os.fsync(fp.fileno())
            with contextlib.suppress(OSError):
                shutil.copymode(target, tmp)
            os.replace(tmp, target)
            with contextlib.suppress(OSError):  # make the rename durable
                dir_fd = os.open(target.parent, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise InputError(f"cannot rewrite the earlier records as strict JSON "
                             f"({exc.strerror or exc})", self.path) from None
        return len(content)


def _cell(value: Any) -> str:
    """A CSV cell on one physical line (so that resume can work line by line)."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        value = " | ".join(map(str, value))
    return " / ".join(str(value).splitlines())


class CsvSink(Sink):
    """One row per finding; ``row``/``rows`` number a plan's rows so a cut block is detected."""

    fmt = "csv"

    def _start(self) -> None:
        self._write(self._row(CSV_COLUMNS))

    @staticmethod
    def _row(cells: Iterable[Any]) -> bytes:
        from rtcheck.report import csv_safe  # no formula a spreadsheet would run

        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow([csv_safe(_cell(c)) for c in cells])
        return buf.getvalue().encode("utf-8")

    def lines(self, record: dict) -> bytes:
        findings = record.get("findings") or [{}]
        out = []
        for i, f in enumerate(findings, start=1):
            values = {**{k: record.get(k) for k in CSV_COLUMNS}, "row": i,
                      "rows": len(findings), **{k: f.get(k) for k in CSV_FINDING_FIELDS}}
            out.append(self._row(values[c] for c in CSV_COLUMNS))
        return b"".join(out)

    def _scan(self, data: bytes) -> int:
        lines = list(_complete_lines(data))
        if not lines:
            return 0
        header = next(csv.reader([lines[0][2].decode("utf-8")]))
        if tuple(header) != CSV_COLUMNS:
            raise ResumeError("not an rtcheck batch CSV (its header differs); cannot resume",
                              self.path)
        keep = lines[0][1]
        block = (None, 0, 0)  # key, last row number, rows: a plan's block being read
        for number, end, line in lines[1:]:
            cells = next(csv.reader([line.decode("utf-8")]), [])
            row = dict(zip(CSV_COLUMNS, cells))
            try:
                i, n = int(row["row"]), int(row["rows"])
            except (KeyError, ValueError):
                i, n = -1, 0
            block_open = block[1] < block[2]
            consistent = len(cells) == len(CSV_COLUMNS) and 1 <= i <= n and (
                (i == block[1] + 1 and (row["key"], n) == (block[0], block[2])) if block_open
                else i == 1)
            if not consistent:
                if end == len(data):
                    break  # a damaged last line: the block it belongs to is cut
                raise ResumeError(f"line {number} breaks the row numbering; cannot resume "
                                  "safely", self.path)
            block = (row["key"], i, n)
            if i == n:
                self.done.add(row["key"])
                self.earlier[row["verdict"]] += 1
                keep = end
        return keep


def open_sink(path: str | None, fmt: str | None = None, *, resume: bool = False,
              overwrite: bool = False) -> Sink:
    """A JSONL or CSV sink; the format comes from ``fmt`` or the file's extension."""
    if fmt is None:
        suffix = Path(path).suffix.lower() if path else ".jsonl"
        fmt = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv"}.get(suffix)
        if fmt is None:
            raise InputError("unknown output format: name the file .jsonl or .csv, or give "
                             "--format", path)
    cls = {"jsonl": JsonlSink, "csv": CsvSink}[fmt]
    return cls(path, resume=resume, overwrite=overwrite)


# --------------------------------------------------------------------------------------
# Progress and summary
# --------------------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


def _key_function(deidentify: bool) -> Callable[[str], str]:
    """How a plan's key is written in the output (a pseudonym with --deidentify)."""
    if not deidentify:
        return lambda key: key
    from rtcheck.report import deidentified_key

    return deidentified_key


def _is_pseudonym(key: Any) -> bool:
    from rtcheck.report import is_deidentified_key

    return is_deidentified_key(key)


def _scrub(rec: dict, archive: Any) -> dict:
    from rtcheck.report import scrub_record

    return scrub_record(rec, archive=archive)


def record_label(rec: dict) -> str:
    """``patient / plan label`` for messages, else the plan UID, else the file (a de-identified
    record: its pseudonymous key and label)."""
    if _is_pseudonym(rec.get("key")):
        from rtcheck.report import deidentified_progress_label

        return deidentified_progress_label(rec)
    return str(" / ".join(str(x) for x in (rec.get("patient_id"), rec.get("plan_label")) if x)
               or rec.get("plan_uid") or (rec.get("files") or ["?"])[0])


class Progress:
    """Progress on a stream: a redrawn bar on a terminal, else one line per plan.

    ``mode`` is "bar", "lines" or "off" ("auto" picks bar or lines from ``isatty``).
    """

    def __init__(self, total: int, stream: IO[str] | None = None, mode: str = "auto") -> None:
        self.stream = stream if stream is not None else sys.stderr
        if mode == "auto":
            mode = "bar" if getattr(self.stream, "isatty", lambda: False)() else "lines"
        self.mode = mode
        self.total = total
        self.done = 0
        self.counts: Counter = Counter()
        self.start = time.monotonic()
        self._last_draw = 0.0

    def update(self, rec: dict) -> None:
        self.done += 1
        self.counts[rec["verdict"]] += 1
        if self.mode == "lines":
            secs = rec.get("seconds")
            secs = secs if isinstance(secs, (int, float)) else None
            tail = f": {rec['error']}" if rec.get("error") else ""
            self.stream.write(f"[{self.done}/{self.total}] {rec['verdict']:<13} "
                              f"{record_label(rec)}"
                              f"{f' ({secs:.1f} s)' if secs else ''}{tail}\n")
            self.stream.flush()
        elif self.mode == "bar":
            now = time.monotonic()
            if now - self._last_draw >= 0.1 or self.done == self.total:
                self._last_draw = now
                self.draw()

    def rate(self) -> float:
        elapsed = time.monotonic() - self.start
        return self.done / elapsed if elapsed > 0 else 0.0

    def bar_text(self, width: int) -> str:
        """The bar line: counts, percentage, rate, ETA, fitted to ``width`` characters."""
        rate = self.rate()
        eta = (self.total - self.done) / rate if rate > 0 else None
        counts = "  ".join(f"{v} {self.counts[v]}" for v in VERDICTS if self.counts[v])
        tail = (f" {self.done}/{self.total} {100 * self.done / max(self.total, 1):3.0f}%"
                f"  {rate:.1f} plans/s  ETA {_duration(eta) if eta is not None else '?'}"
                f"  {counts}")
        room = max(10, min(40, width - len(tail) - 3))
        filled = int(room * self.done / max(self.total, 1))
        return (f"[{'#' * filled}{'.' * (room - filled)}]{tail}")[:width - 1]

    def draw(self) -> None:
        width = shutil.get_terminal_size((100, 20)).columns
        self.stream.write("\r" + self.bar_text(width).ljust(width - 1))
        self.stream.flush()

    def close(self) -> None:
        if self.mode == "bar":
            self.draw()
            self.stream.write("\n")
            self.stream.flush()


@dataclass
class BatchSummary:
    """The end-of-batch figures: counts, slowest plans, what was skipped or unattached."""

    counts: Counter = field(default_factory=Counter)
    earlier: Counter = field(default_factory=Counter)  # records already in a resumed output
    already_done: int = 0
    elapsed: float = 0.0
    slowest: list[tuple[float, str]] = field(default_factory=list)  # heap of (s, label)
    discovery: Discovery | None = None
    unused_facts: list[str] = field(default_factory=list)
    output: str | None = None
    #: With --deidentify, what scrubs the summary (rtcheck.report.Deidentifier).
    deidentifier: Any = None

    @property
    def checked(self) -> int:
        return sum(self.counts.values())

    @property
    def exit_code(self) -> int:
        """4 when a record is ERROR, else the worst verdict's code: FAIL 1, NOT_EVALUATED 3,
        REVIEW 5, PASS 0 (:func:`batch_exit_code`).

        A resumed batch answers for its whole output file, records of the killed run
        included (counted by the same rule), so that the last run's exit code is the batch's.
        """
        return batch_exit_code(self.counts + self.earlier)

    def add(self, rec: dict) -> None:
        self.counts[rec["verdict"]] += 1
        secs = rec.get("seconds")
        item = (float(secs) if isinstance(secs, (int, float)) else 0.0, record_label(rec))
        if len(self.slowest) < SLOWEST_SHOWN:
            heapq.heappush(self.slowest, item)
        else:
            heapq.heappushpop(self.slowest, item)

    def render(self) -> str:
        out = io.StringIO()
        rate = self.checked / self.elapsed if self.elapsed > 0 else 0.0
        plans = f"{self.checked} plan{'' if self.checked == 1 else 's'}"
        out.write(f"rtcheck batch: {plans} checked in {_duration(self.elapsed)} "
                  f"({rate:.2f} plans/s)")
        if self.already_done:
            out.write(f"; {self.already_done} already in {self.output}, skipped")
        out.write("\n  " + "  ".join(f"{v} {self.counts[v]}" for v in VERDICTS) + "\n")
        if self.earlier:
            total = self.counts + self.earlier
            out.write(f"  whole output, {sum(total[v] for v in VERDICTS)} records: "
                      + "  ".join(f"{v} {total[v]}" for v in VERDICTS) + "\n")
        if self.slowest:
            out.write("  slowest: " + "; ".join(f"{label} {secs:.1f} s" for secs, label in
                                                sorted(self.slowest, reverse=True)) + "\n")
        d = self.discovery
        if d is not None:
            skipped = ", ".join(f"{n} {kind}" for kind, n in d.skipped.most_common())
            out.write(f"  {d.files_seen} files: {len(d.groups)} plans, {len(d.bad_files)} "
                      f"unreadable{'; skipped ' + skipped if skipped else ''}\n")
            for item in d.skipped_files[:10]:
                out.write(f"  skipped {item.path}: {item.reason}\n")
            if len(d.skipped_files) > 10:
                out.write(f"  ... and {len(d.skipped_files) - 10} more skipped (SKIPPED "
                          "records of the output)\n")
            for line in d.unattached[:10]:
                out.write(f"  not attached to a plan: {line}\n")
            if len(d.unattached) > 10:
                out.write(f"  ... and {len(d.unattached) - 10} more not attached\n")
        for key in self.unused_facts[:10]:
            out.write(f"  facts row matched no plan: {key}\n")
        out.write(f"  exit code {self.exit_code}\n")
        text = out.getvalue()
        return self.deidentifier.text(text) if self.deidentifier is not None else text


# --------------------------------------------------------------------------------------
# The batch
# --------------------------------------------------------------------------------------


def default_jobs() -> int:
    """All cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def run_batch(archive: str | os.PathLike, *, output: str | None = None, fmt: str | None = None,
              protocols: Iterable[str] = (), facts: FactsTable | str | None = None,
              jobs: int | None = None, resume: bool = False, overwrite: bool = False,
              scheduler: str | None = None, progress: str = "auto",
              stream: IO[str] | None = None, worker: Worker = check_one,
              plan_timeout: float | None = DEFAULT_PLAN_TIMEOUT, deidentify: bool = False,
              **executor_options: Any) -> BatchSummary:
    """Check every plan under ``archive`` and stream one record per plan to ``output``.

    Parameters
    ----------
    archive : path
        Folder searched recursively.
    output : str, optional
        ``.jsonl`` or ``.csv`` file; standard output (JSONL) when omitted.
    fmt : {"jsonl", "csv"}, optional
        Overrides the format implied by ``output``'s extension.
    protocols : iterable of str
        Passed to the checker.
    facts : FactsTable or path, optional
        Per-plan indication, site, prior course (``--indication-from``).
    jobs : int, optional
        Local worker processes (default: all cores). Ignored with ``scheduler``.
    resume : bool
        Skip plans already in ``output`` (after cutting a half-written last record).
    overwrite : bool
        Replace an existing ``output``; without it or ``resume`` an existing file is an error.
    scheduler : str, optional
        ``tcp://HOST:PORT`` (or ``tls://HOST:PORT``) of a Dask scheduler: run there instead
        of local processes. Checked (a TCP connection within ``SCHEDULER_CONNECT_TIMEOUT``
        seconds) before anything else.
    progress : {"auto", "bar", "lines", "off"}
    stream : text stream, optional
        Where progress and the summary go (standard error by default).
    worker : callable
        The per-plan function (:func:`check_one`); must be importable by worker processes.
    plan_timeout : float, optional
        Seconds a plan may run before it becomes an ERROR record (None or 0: no limit).
    deidentify : bool
        Every record, progress line and the summary without patient identifiers, UIDs or
        paths that hold them (:func:`rtcheck.report.scrub_record`); keys become pseudonyms.
    executor_options
        Passed to :func:`run_local` or :func:`run_dask` (``inflight``, ``start_method``...).

    Returns
    -------
    BatchSummary
        Its :attr:`~BatchSummary.exit_code` is the command's.

    Raises
    ------
    InputError
        Bad archive, facts file, output file (missing or read-only folder, locked by another
        batch) or scheduler address (nothing is checked then).
    """
    stream = stream if stream is not None else sys.stderr
    protocols = tuple(protocols)
    table = load_facts(facts) if isinstance(facts, (str, os.PathLike)) else facts
    if worker is check_one:  # usage errors before any output is touched
        load_protocols(protocols)
        if table is not None:
            validate_facts(table, protocols)
    client = None
    if scheduler:  # a malformed or unreachable scheduler: exit 2 now, not after discovery
        check_scheduler(scheduler)
        client = connect_dask(scheduler, executor_options.pop("connect_timeout",
                                                              SCHEDULER_CONNECT_TIMEOUT))
    try:
        sink = open_sink(output, fmt, resume=resume, overwrite=overwrite)
    except BaseException:
        if client is not None:
            client.close()
        raise
    summary = BatchSummary(output=output)
    started = time.monotonic()
    try:
        show = progress != "off"
        tty = show and getattr(stream, "isatty", lambda: False)() and progress in ("auto", "bar")

        shown_archive = "the archive" if deidentify else str(archive)

        def scanning(n: int) -> None:
            if tty and n % 200 == 0:
                stream.write(f"\rscanning {shown_archive}: {n} files")
                stream.flush()

        found = discover(archive, on_file=scanning, jobs=jobs or default_jobs())
        summary.discovery = found
        summary.earlier = sink.earlier
        kf = _key_function(deidentify)
        if resume and sink.done and any(_is_pseudonym(k) for k in sink.done) != deidentify:
            raise InputError("written " + ("without" if deidentify else "with")
                             + " --deidentify: resume it the same way", output)
        if deidentify:
            from rtcheck.report import batch_deidentifier

            summary.deidentifier = batch_deidentifier(archive, discovery=found, facts=table)
        todo_bad = [b for b in found.bad_files if kf(b.key) not in sink.done]
        todo = [g for g in found.groups if kf(g.key) not in sink.done]
        summary.already_done = (len(found.groups) + len(found.bad_files)
                                - len(todo) - len(todo_bad))
        if show:
            stream.write(("\r" if tty else "") + f"rtcheck batch: {len(found.groups)} plans and "
                         f"{len(found.bad_files)} unreadable files in {found.files_seen} files "
                         f"({time.monotonic() - started:.0f} s); {summary.already_done} already "
                         f"in the output, {len(todo) + len(todo_bad)} to do\n")
            stream.flush()
        if table is not None:  # every row that names a plan of the archive counts as used
            for g in found.groups:
                table.lookup(g.plan_uid, g.patient_id)
        bar = Progress(len(todo) + len(todo_bad), stream, progress if show else "off")

        def emit(task: PlanTask | None, rec: dict) -> None:
            if deidentify:
                rec = _scrub(rec, archive)
            if rec["key"] in sink.done:  # never write a plan twice
                return
            rec = sink.write(rec)
            summary.add(rec)
            bar.update(rec)

        for item in found.skipped_files:  # listed, not counted: they are not plans
            if kf(item.key) not in sink.done:
                rec = skipped_record(item)
                sink.write(_scrub(rec, archive) if deidentify else rec)
        for bad in todo_bad:
            emit(None, bad_file_record(bad))
        tasks = (PlanTask(g, protocols,
                          table.lookup(g.plan_uid, g.patient_id) if table else None)
                 for g in todo)
        if todo and client is not None:
            run_dask(tasks, emit, client=client, worker=worker, plan_timeout=plan_timeout,
                     **executor_options)
        elif todo:
            run_local(tasks, emit, jobs=jobs or default_jobs(), worker=worker,
                      plan_timeout=plan_timeout, **executor_options)
        bar.close()
        if table is not None:
            summary.unused_facts = table.unused()
    finally:
        sink.close()
        if client is not None:
            client.close()
        summary.elapsed = time.monotonic() - started
    return summary
