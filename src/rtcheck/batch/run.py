"""The batch: :func:`run_batch`, which ties the rooms of :mod:`rtcheck.batch` together.

In order, before any work: the protocols and the facts file are checked
(:mod:`rtcheck.batch.checking`), the Dask scheduler reached (:mod:`rtcheck.batch.executors`),
the output opened and locked (:mod:`rtcheck.batch.sinks`), so that a usage error is exit 2
with nothing checked. Then the archive is discovered (:mod:`rtcheck.batch.discovery`), the
plans already in a resumed output left out, SKIPPED and unreadable files written, and the
remaining plans run on the executor, each record written as it comes back and counted for
the progress and the summary (:mod:`rtcheck.batch.progress`). With ``--deidentify`` every
record, line and the summary go through :mod:`rtcheck.report`'s de-identification.

Leans on every other module of :mod:`rtcheck.batch`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable
from typing import IO, Any

from rtcheck.batch.checking import check_one, load_protocols, validate_facts
from rtcheck.batch.discovery import Discovery, discover
from rtcheck.batch.executors import (
    DEFAULT_PLAN_TIMEOUT,
    SCHEDULER_CONNECT_TIMEOUT,
    Worker,
    check_scheduler,
    connect_dask,
    run_dask,
    run_local,
)
from rtcheck.batch.facts import FactsTable, load_facts
from rtcheck.batch.progress import BatchSummary, Progress
from rtcheck.batch.records import (
    PlanTask,
    bad_file_record,
    deidentified_record,
    is_pseudonym,
    record_key_function,
    skipped_record,
)
from rtcheck.batch.sinks import open_sink
from rtcheck.errors import InputError


def default_jobs() -> int:
    """All cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _check_protocols_and_facts(protocols: tuple[str, ...], table: FactsTable | None) -> None:
    """Load the protocols and check every facts row against the checker: a usage error
    (exit 2) before the output is touched or the archive read."""
    load_protocols(protocols)
    if table is not None:
        validate_facts(table, protocols)


def _connect(scheduler: str, timeout: str | float) -> Any:
    """A Dask client of ``scheduler``, after a plain TCP probe (fails fast, before any work)."""
    check_scheduler(scheduler)
    return connect_dask(scheduler, timeout)


def _check_same_deidentification(done: set[str], deidentify: bool, output: str | None) -> None:
    """Refuse to resume an output written the other way (keys plain vs pseudonymous): its
    plans would not be found again and would be checked and written twice."""
    if done and any(is_pseudonym(k) for k in done) != deidentify:
        raise InputError("written " + ("without" if deidentify else "with")
                         + " --deidentify: resume it the same way", output)


def _announce(stream: IO[str], tty: bool, found: Discovery, seconds: float, already_done: int,
              to_do: int) -> None:
    """The line that ends discovery: what the archive holds and what is left to check."""
    stream.write(("\r" if tty else "") + f"rtcheck batch: {len(found.groups)} plans and "
                 f"{len(found.bad_files)} unreadable files in {found.files_seen} files "
                 f"({seconds:.0f} s); {already_done} already in the output, {to_do} to do\n")
    stream.flush()


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
        _check_protocols_and_facts(protocols, table)
    client = None
    if scheduler:  # a malformed or unreachable scheduler: exit 2 now, not after discovery
        client = _connect(scheduler, executor_options.pop("connect_timeout",
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
        kf = record_key_function(deidentify)
        if resume:
            _check_same_deidentification(sink.done, deidentify, output)
        if deidentify:
            from rtcheck.report import batch_deidentifier

            summary.deidentifier = batch_deidentifier(archive, discovery=found, facts=table)
        todo_bad = [b for b in found.bad_files if kf(b.key) not in sink.done]
        todo = [g for g in found.groups if kf(g.key) not in sink.done]
        summary.already_done = (len(found.groups) + len(found.bad_files)
                                - len(todo) - len(todo_bad))
        if show:
            _announce(stream, tty, found, time.monotonic() - started, summary.already_done,
                      len(todo) + len(todo_bad))
        if table is not None:  # every row that names a plan of the archive counts as used
            for g in found.groups:
                table.lookup(g.plan_uid, g.patient_id)
        bar = Progress(len(todo) + len(todo_bad), stream, progress if show else "off")

        def emit(task: PlanTask | None, rec: dict) -> None:
            if deidentify:
                rec = deidentified_record(rec, archive)
            if rec["key"] in sink.done:  # never write a plan twice
                return
            rec = sink.write(rec)
            summary.add(rec)
            bar.update(rec)

        for item in found.skipped_files:  # listed, not counted: they are not plans
            if kf(item.key) not in sink.done:
                rec = skipped_record(item)
                sink.write(deidentified_record(rec, archive) if deidentify else rec)
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
