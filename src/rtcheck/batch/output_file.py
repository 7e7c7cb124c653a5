"""The output file of a batch: whether it can be written, and the lock that keeps it one
batch's.

:func:`output_file_problem` says, before any work, why an output path cannot be written
(missing or read-only folder, a folder of that name, a read-only file); ``rtcheck check``
and ``rtcheck dvh`` use it for their ``--output`` too. :class:`OutputLock` holds
``fcntl.flock`` on ``OUTPUT.lock`` (which names the PID and host) for the whole run, so a
second batch writing the same file stops at once with :class:`OutputLocked`.

Leans on :mod:`rtcheck.errors` only.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from pathlib import Path

from rtcheck.errors import InputError


class OutputLocked(InputError):
    """The output file is being written by another batch (its lock is held)."""



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
