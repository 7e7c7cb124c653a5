"""Files written whole or not at all, and the fingerprint of a file.

Every output rtcheck writes (``-o``, reports, batch records, exported RTDOSE, downloaded
objects) goes through :class:`atomic_path`: the data are written to a temporary file in the
target's folder, flushed to disk, then renamed over the target, so that a killed process or a
full disk never leaves half a file under the target's name, and the old file stays as it was.
Also: whether a name given as a path is a URL instead (:func:`looks_like_url`).
Standard library only (floor 0 of the house).
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from types import TracebackType

PathLike = str | os.PathLike[str]


class atomic_path:
    """``with atomic_path(path) as tmp:`` write the file ``tmp``; on leaving the block without
    an exception it replaces ``path``; on an exception it is removed and ``path`` is untouched.

    Parameters
    ----------
    path : str or PathLike
        The file to write.
    default_suffix : str
        Suffix of the temporary file when ``path`` has none (some writers choose the format
        by the suffix).
    durable : bool
        Also flush the folder after the rename, so that the new name survives a power cut
        (batch records, which a resumed run reads back).

    The new file keeps the old file's permissions, else gets what ``open`` would give
    (``mkstemp`` makes 0o600 files).
    """

    def __init__(self, path: PathLike, default_suffix: str = "", *, durable: bool = False
                 ) -> None:
        self.path = os.fspath(path)
        self.default_suffix = default_suffix
        self.durable = durable
        self.tmp: str | None = None

    def __enter__(self) -> str:
        folder = os.path.dirname(os.path.abspath(self.path))
        base = os.path.basename(self.path)
        suffix = os.path.splitext(base)[1] or self.default_suffix
        fd, self.tmp = tempfile.mkstemp(dir=folder, prefix=f".{base}.", suffix=f".tmp{suffix}")
        os.close(fd)
        return self.tmp

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self.tmp is not None
        try:
            if exc_type is None:
                _fsync_file(self.tmp)
                os.chmod(self.tmp, _new_file_mode(self.path))
                os.replace(self.tmp, self.path)
                self.tmp = None
                if self.durable:
                    fsync_folder(os.path.dirname(os.path.abspath(self.path)))
        finally:
            if self.tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self.tmp)


def write_text_atomic(path: PathLike, text: str, *, durable: bool = False) -> None:
    """Write ``text`` (UTF-8) to ``path`` whole or not at all; OSError when it cannot."""
    with atomic_path(path, durable=durable) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)


def write_bytes_atomic(path: PathLike, data: bytes, *, durable: bool = False) -> None:
    """Write ``data`` to ``path`` whole or not at all; OSError when it cannot."""
    with atomic_path(path, durable=durable) as tmp, open(tmp, "wb") as f:
        f.write(data)


def file_sha256(path: PathLike) -> str:
    """SHA-256 (hex) of a file's bytes, read a megabyte at a time."""
    import hashlib  # here: OpenSSL's start-up is 5-7 ms that writing a file does not need

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _new_file_mode(path: str) -> int:
    """The old file's mode, else what ``open`` would give (0o666 less the umask)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: PathLike, *, required: bool = False) -> None:
    """Flush a folder's entries (a file renamed into it) to disk. Not every filesystem lets a
    folder be flushed: its OSError is ignored unless ``required`` (the DICOM node acknowledges
    an object only once it is on disk)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        if required:
            raise


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def looks_like_url(text: str) -> bool:
    """Whether ``text`` is meant as a URL (``scheme://...``) rather than a file path.

    Here, not in :mod:`rtcheck.dicomweb`, so that a command can tell a path from a DICOMweb
    study URL without importing the DICOMweb client."""
    return bool(_SCHEME.match(str(text)))
