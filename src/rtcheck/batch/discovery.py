"""Finding the plans of an archive: headers only, grouped by UID, nothing left silent.

:func:`discover` walks a folder (:func:`rtcheck.dicom.walk_files`), reads every file's
header (:func:`rtcheck.dicom.scan`, no pixel data; on worker processes for large archives)
and groups each RTPLAN with the RTDOSE objects that reference it and the RTSTRUCT it
references (:func:`rtcheck.dicom.group_plans`). What it finds is a :class:`Discovery`:

* a :class:`PlanRef` per plan, compact (a few UIDs and paths: what the batch keeps per plan
  and sends to a worker), saying what is missing;
* a :class:`BadFile` per file that claims to be DICOM but cannot be read (an ERROR record);
* a :class:`SkippedFile` per file not read as DICOM (not a regular file, never opened, or
  bytes that are not DICOM), with the reason (a SKIPPED record);
* counts of files not checked (other modalities, other formats) and the doses or structure
  sets without a plan.

Leans on :mod:`rtcheck.dicom` (imported lazily: ``rtcheck --help`` stays fast) and
:mod:`rtcheck.batch.processes` for the header-reading pool.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtcheck.batch.processes import init_worker, mp_context, worker_environment
from rtcheck.errors import InputError

#: its bytes do not look like DICOM at all.
DICOM_EXTENSIONS = frozenset({".dcm", ".dicom", ".dic", ".ima"})
#: Extensions never worth opening.
NOT_DICOM_EXTENSIONS = frozenset(
    ".txt .xml .json .jsonl .csv .pdf .png .jpg .jpeg .gif .bmp .tif .tiff .zip .gz .tgz .bz2 "
    ".xz .7z .tar .log .md .html .htm .py .ini .cfg .toml .yaml .yml .exe .dll .doc .docx .xls "
    ".xlsx .lock".split())
#: The missing parts a plan's record lists (PlanGroup.missing_parts).
_MISSING_CODES = ("RTDOSE", "RTSTRUCT")


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
    error = header.error
    if error:  # a header scan() could not read
        if _not_dicom(error) and path.suffix.lower() not in DICOM_EXTENSIONS:
            return SkippedFile(str(path), "", error)
        return BadFile(str(path), "", error)
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
    with worker_environment(), ProcessPoolExecutor(
            max_workers=jobs, mp_context=mp_context(None), initializer=init_worker,
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
