"""Worker processes of a batch: how they start, what they inherit, and how they end.

Shared by the two pools of a batch, the header reads of :mod:`rtcheck.batch.discovery` and
the plan checks of :func:`rtcheck.batch.executors.run_local`. A worker is started from a fork
server where there is one (a clean, pre-imported process: cheap restarts, no inherited
threads or open files), ignores Ctrl-C (the batch's business), keeps pydicom's log off the
terminal, runs numerical libraries on one thread, and exits when the batch process is gone.

Leans on the standard library only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from multiprocessing import get_context
from typing import Any


def alive(pid: int) -> bool:
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
    while alive(batch_pid):
        time.sleep(poll_seconds)
    os._exit(1)


def init_worker(batch_pid: int) -> None:
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
def worker_environment() -> Iterator[None]:
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


def mp_context(start_method: str | None) -> Any:
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
