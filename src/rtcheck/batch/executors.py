"""Executors: run the per-plan worker over the tasks, on local processes or a Dask cluster.

Both take an iterable of :class:`~rtcheck.batch.records.PlanTask` (consumed lazily: at most
a few tasks ahead of their records) and call ``emit(task, record)`` as each plan finishes,
in the calling process; neither writes anything itself.

* :func:`run_local`: rtcheck's own pool of worker processes
  (:mod:`rtcheck.batch.processes`), one plan at a time each, so that it knows which plan each
  is on and since when. A plan over ``--plan-timeout`` is an ERROR record and its worker is
  killed and replaced; a worker that dies is replaced and its plan re-run alone, an ERROR
  record if it kills its worker again.
* :func:`run_dask`: the same on a Dask distributed cluster (``--scheduler``), with
  :func:`parse_scheduler_address`, :func:`check_scheduler` and :func:`connect_dask` failing
  fast, before any work, on an address that is malformed, refused or silent.

Whatever a worker raises or returns instead of a record becomes the plan's ERROR record
(:mod:`rtcheck.batch.records`). Leans on :mod:`rtcheck.batch.checking` (the default worker,
:func:`~rtcheck.batch.checking.check_one`) and, lazily, on Dask.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from multiprocessing.connection import wait as wait_for
from typing import Any

from rtcheck.batch.checking import check_one
from rtcheck.batch.processes import init_worker, mp_context, worker_environment
from rtcheck.batch.records import (
    PlanTask,
    crash_record,
    error_record,
    timeout_record,
    valid_record,
)
from rtcheck.errors import InputError

#: Default of ``--plan-timeout`` (seconds): a plan still running after it is an ERROR record.
#: Real plans take seconds (a 10-million-voxel body grid about a minute); 0 or None: no limit.
DEFAULT_PLAN_TIMEOUT = 600.0
#: Seconds allowed to reach a Dask scheduler (``--scheduler``) before the batch gives up.
SCHEDULER_CONNECT_TIMEOUT = 5.0

#: The per-plan function a worker runs (:func:`~rtcheck.batch.checking.check_one`, or a
#: wrapper of it importable by name): a task in, its record out.
Worker = Callable[[PlanTask], dict]
#: What an executor calls, in the calling process, with each task and its record.
Emit = Callable[[PlanTask, dict], None]
#: "No record came back" (distinct from None, which a faulty worker may return).
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
    init_worker(batch_pid)
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
    ctx = mp_context(start_method)
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

    with worker_environment():
        try:
            while True:
                busy = [s for s in slots if s.task is not None]
                if retry:
                    if not busy:
                        assign(retry.popleft(), alone=True)
                else:
                    while not exhausted and len(busy) < width:
                        task = next(source, None)
                        if task is None:
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
                            emit(task, valid_record(task, rec))
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
                task = next(source, None)
                if task is None:
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
                        rec = valid_record(task, fut.result())
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
