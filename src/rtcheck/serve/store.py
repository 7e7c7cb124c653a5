"""The store: received objects on disk, written atomically, never over a different object.

Layout: ``STORE/<patient>/<study>/<SOPInstanceUID>.dcm``, where ``<patient>`` and
``<study>`` are the PatientID and StudyInstanceUID made safe for a file name (a hash
replaces them when they hold anything else). A second, identical copy of an object is not
written again; a *different* object with an SOPInstanceUID already stored is kept beside
it as ``<UID>.conflict-<n>.dcm`` and reported: the first one stays the object of that UID.
The index (:mod:`rtcheck.serve.index`) lives in ``STORE/.rtcheck/``.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rtcheck.files import fsync_folder
from rtcheck.report import file_sha256  # light: no matplotlib, no pydicom

#: The node's own files (index, reports) live here, inside the store.
STATE_DIR = ".rtcheck"
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: How many conflicting copies of one UID are kept before the node refuses more.
MAX_CONFLICTS = 99


@dataclass(frozen=True)
class Stored:
    """Where an object went. ``outcome`` is ``new`` (written), ``duplicate`` (an identical
    copy was already there: nothing written) or ``conflict`` (a different object with this
    UID was there: written under a new name, ``path``)."""

    path: Path
    outcome: str
    sha256: str
    first_path: Path | None = None


def safe_name(value: str | None, kind: str) -> str:
    """A folder name for a PatientID or a study UID: the value when it is a plain name,
    else ``<kind>-<hash>`` (no path separator, dot-name or control character reaches the
    file system)."""
    if value and _SAFE.match(value) and value not in (".", ".."):
        return value
    digest = hashlib.sha256((value or "").encode("utf-8", "surrogateescape")).hexdigest()
    return f"{kind}-{digest[:12]}"


class Store:
    """The objects on disk under ``root``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.state = self.root / STATE_DIR

    def prepare(self) -> None:
        """Create the store and its state folder.

        Raises
        ------
        OSError
            The folder cannot be created or written.
        """
        self.state.mkdir(parents=True, exist_ok=True)
        (self.state / "reports").mkdir(exist_ok=True)
        probe = self.state / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()

    def folder_for(self, patient_id: str | None, study_uid: str | None) -> Path:
        return self.root / safe_name(patient_id, "patient") / safe_name(study_uid, "study")

    def relative(self, path: Path) -> str:
        """``path`` as the index holds it: relative to the store."""
        return path.relative_to(self.root).as_posix()

    def absolute(self, relative: str) -> Path:
        return self.root / relative

    def write(self, data: bytes, uid: str, patient_id: str | None,
              study_uid: str | None) -> Stored:
        """Write one object (the bytes of a DICOM file) atomically.

        The bytes go to a temporary file in the target folder, are synced, then linked to
        their name (``os.link`` fails if the name exists: nothing is ever replaced), and the
        folder is synced: once this returns, the object survives a crash or power loss.

        Raises
        ------
        OSError
            Disk full, folder not writable, too many conflicting copies.
        """
        folder = self.folder_for(patient_id, study_uid)
        folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(data).hexdigest()
        name = safe_name(uid, "object")
        first = folder / f"{name}.dcm"
        candidates = itertools.chain([first], (folder / f"{name}.conflict-{n}.dcm"
                                               for n in range(1, MAX_CONFLICTS + 1)))
        tmp = folder / f".{name}.{os.getpid()}.{id(data)}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            for target in candidates:
                if target.exists() and same_object(target, data, digest):
                    return Stored(target, "duplicate", digest, first)
                try:
                    os.link(tmp, target)
                except FileExistsError:
                    continue
                fsync_folder(folder, required=True)
                return Stored(target, "new" if target == first else "conflict", digest, first)
        finally:
            tmp.unlink(missing_ok=True)
        raise OSError(f"{MAX_CONFLICTS} different objects with UID {uid} already stored")

    def files(self) -> Iterator[Path]:
        """Every object file of the store (not the node's state, not temporary files)."""
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if d != STATE_DIR]
            for name in filenames:
                if name.endswith(".dcm") and not name.startswith("."):
                    yield Path(dirpath) / name

    def remove_temporaries(self) -> int:
        """Delete the temporary files a killed node left (objects never acknowledged)."""
        count = 0
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if d != STATE_DIR]
            for name in filenames:
                if name.startswith(".") and name.endswith(".tmp"):
                    (Path(dirpath) / name).unlink(missing_ok=True)
                    count += 1
        return count


def same_object(path: Path, data: bytes, digest: str) -> bool:
    """Whether the file at ``path`` holds the object ``data`` holds: the same bytes, or
    the same elements sent in another transfer syntax (implicit and explicit VR encode one
    object differently; the file meta, which names the syntax, is not compared)."""
    if file_sha256(path) == digest:
        return True
    import io

    from pydicom import dcmread

    try:
        return bool(dcmread(path) == dcmread(io.BytesIO(data)))
    except Exception:  # an unreadable stored copy is not the same object
        return False
