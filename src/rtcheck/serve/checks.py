"""Checking plans away from the SCP: a worker process, and the queue that feeds it.

The check (:func:`rtcheck.load_plan` and :func:`rtcheck.check`, the same calls as ``rtcheck
check``) runs in a separate process, started with ``spawn`` (the node is threaded: a forked
child could inherit a held lock). A check that crashes the process (a segfault, the memory
killer) or outlasts its time is that plan's error; the process is started again and the queue
goes on. The verdict is recorded as soon as the check returns; the HTML report is rendered
next, from the same loaded plan kept in the worker.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import queue
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: Modules the worker imports once, so that the first check is not slower than the others.
PRELOAD = ("rtcheck.checker", "rtcheck.dicom", "rtcheck.dvh", "rtcheck.report")


@dataclass(frozen=True)
class CheckJob:
    """Everything the worker needs to check one plan (picklable: plain values only).

    ``files`` are the plan's parts in the store (plan, doses, structure set, records);
    ``facts`` the facts-file columns (:mod:`rtcheck.serve.facts`); ``priors`` the files of
    each prior plan of the store given as the prior course; ``report_path`` where the HTML
    report goes.
    """

    check_id: int
    plan_uid: str
    files: tuple[str, ...]
    facts: dict[str, str] = field(default_factory=dict)
    priors: tuple[tuple[str, ...], ...] = ()
    protocols: tuple[str, ...] = ()
    deidentify: bool = False
    report_path: str = ""


@dataclass(frozen=True)
class CheckOutcome:
    """A check's verdict and ``rtcheck check`` JSON (text), or the error that stopped it."""

    verdict: str | None
    result: str | None
    error: str | None
    seconds: float


def _finite(node: Any) -> Any:
    """The document with every non-finite number as ``null``: strict JSON for any client."""
    if isinstance(node, float):
        return node if math.isfinite(node) else None
    if isinstance(node, dict):
        return {k: _finite(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_finite(v) for v in node]
    return node


# ------------------------------------------------------------ in the worker process

#: check id -> (data, priors, result, deidentifier): the last checks, for their report.
_LOADED: dict[int, tuple[Any, list, Any, Any]] = {}


def _load_and_check(job: CheckJob) -> tuple[Any, list, Any, Any]:
    from rtcheck import check, load_plan
    from rtcheck.batch import load_protocols
    from rtcheck.serve.facts import check_arguments

    data = load_plan(list(job.files), plan=job.plan_uid, contours="when_used")
    arguments = check_arguments(job.facts)
    prior_plans = [load_plan(list(files), contours="when_used") for files in job.priors]
    priors = [*arguments.pop("priors", []), *prior_plans]
    result = check(data, protocols=load_protocols(job.protocols), priors=priors or None,
                   **arguments)
    deid = None
    if job.deidentify:
        from rtcheck.report import check_deidentifier

        deid = check_deidentifier(data, prior_plans, [os.path.dirname(f) for f in job.files])
    return data, prior_plans, result, deid


def _message(exc: BaseException, job: CheckJob) -> str:
    """One line naming the object and the problem (de-identified when asked)."""
    from rtcheck.errors import InputError, RTCheckError

    text = str(exc) or type(exc).__name__
    if not isinstance(exc, RTCheckError):
        text = f"{type(exc).__name__}: {text}"
    if not (isinstance(exc, InputError) and exc.path):
        text = f"plan {job.plan_uid}: {text}"
    if job.deidentify:
        from rtcheck.report import deidentified_message

        text = deidentified_message(text, [os.path.dirname(f) for f in job.files])
    return " ".join(text.split())


def run_check(job: CheckJob) -> CheckOutcome:
    """Check one plan (in the worker). Never raises: an error is the outcome's ``error``."""
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom's and numpy's: the result has its notes
            loaded = _load_and_check(job)
        _LOADED.clear()  # one plan kept: the report comes right after its check
        _LOADED[job.check_id] = loaded
        result = loaded[2]
        doc = result.to_dict()
        if loaded[3] is not None:
            doc = loaded[3].doc(doc)
        text = json.dumps(_finite(doc), allow_nan=False)
        return CheckOutcome(result.verdict, text, None, time.perf_counter() - start)
    except Exception as exc:  # any failure of one plan is that plan's error
        return CheckOutcome(None, None, _message(exc, job), time.perf_counter() - start)


def render_report(job: CheckJob) -> str | None:
    """Write the plan's HTML report (what ``rtcheck check --format html`` writes) to
    ``job.report_path``; returns the error, or None."""
    try:
        from rtcheck.report import plan_input_files, render_check_report, write_atomic

        loaded = _LOADED.get(job.check_id) or _load_and_check(job)
        data, prior_plans, result, deid = loaded
        extra = [f for prior in prior_plans for f in plan_input_files(prior)]
        html = render_check_report(result.to_dict(), data, dvhs=result.dvhs or None,
                                   protocols=list(job.protocols) or None, extra_inputs=extra,
                                   deidentify=job.deidentify, deidentifier=deid)
        from pathlib import Path

        write_atomic(Path(job.report_path), html)
        return None
    except Exception as exc:
        return _message(exc, job)


def _preload() -> None:
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)


def worker_loop(conn: Any) -> None:
    """The worker process: receive ``(function name, job)``, send the function's result."""
    _preload()
    calls: dict[str, Callable[[CheckJob], Any]] = {"check": run_check, "report": render_report}
    while True:
        try:
            name, job = conn.recv()
        except (EOFError, OSError):
            return
        conn.send(calls[name](job))


# ------------------------------------------------------------ in the node


class WorkerDied(RuntimeError):
    """The worker process ended (crash, killed) or outlasted the time limit."""


class Worker:
    """One worker process, started again when it dies or is stopped for taking too long."""

    def __init__(self) -> None:
        self._ctx = mp.get_context("spawn")
        self._process: Any = None
        self._conn: Any = None

    def start(self) -> None:
        parent, child = self._ctx.Pipe()
        self._process = self._ctx.Process(target=worker_loop, args=(child,), daemon=True,
                                          name="rtcheck-serve-check")
        self._process.start()
        child.close()
        self._conn = parent

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join(5)
            self._process = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def call(self, name: str, job: CheckJob, timeout: float | None) -> Any:
        """Run ``name`` on ``job`` in the worker.

        Raises
        ------
        WorkerDied
            The process died, or gave no answer within ``timeout`` seconds (it is killed);
            either way a new one is started.
        """
        if self._process is None or not self._process.is_alive():
            self.stop()
            self.start()
        try:
            self._conn.send((name, job))
            if self._conn.poll(timeout):
                return self._conn.recv()
            reason = f"timed out after {timeout:g} s (--check-timeout); the check was stopped"
        except (EOFError, OSError, BrokenPipeError):
            code = self._process.exitcode if self._process is not None else None
            reason = ("the check process died while checking this plan (crash or out of "
                      f"memory; exit code {code})")
        self.stop()
        self.start()
        raise WorkerDied(reason)


#: What the queue reports back: (job, outcome) after the check, (job, error) after the report.
OnChecked = Callable[[CheckJob, CheckOutcome], None]
OnReport = Callable[[CheckJob, str | None], None]


class CheckQueue:
    """Checks plans one at a time in the worker process, in a thread of the node."""

    def __init__(self, on_checked: OnChecked, on_report: OnReport,
                 timeout: float | None = 600.0) -> None:
        self.on_checked = on_checked
        self.on_report = on_report
        self.timeout = timeout
        self._jobs: queue.Queue[CheckJob | None] = queue.Queue()
        self._worker = Worker()
        self._thread = threading.Thread(target=self._run, name="rtcheck-serve-queue",
                                        daemon=True)

    def start(self) -> None:
        self._worker.start()
        self._thread.start()

    def submit(self, job: CheckJob) -> None:
        self._jobs.put(job)

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join(10)
        self._worker.stop()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            start = time.perf_counter()
            try:
                outcome = self._worker.call("check", job, self.timeout)
            except WorkerDied as exc:
                outcome = CheckOutcome(None, None, f"plan {job.plan_uid}: {exc}",
                                       time.perf_counter() - start)
            self.on_checked(job, outcome)
            if outcome.error is None:
                try:
                    error = self._worker.call("report", job, self.timeout)
                except WorkerDied as exc:
                    error = f"report of plan {job.plan_uid}: {exc}"
                self.on_report(job, error)
