"""Opening one DICOM file safely: sniffing, truncation, modality, and the value parsers.

Every reader of the package opens its files here. A file is opened only when it is a regular
file (a FIFO named ``*.dcm`` would block), judged DICOM or not from its first
:data:`SNIFF_BYTES` bytes (a zero-filled file is rejected in microseconds), read with
pydicom, and refused when it is truncated or holds garbage where a data element should be.
The lenient value parsers (``as_text``, ``as_int``...) and the decorators that silence
pydicom's warnings (:func:`quietly`) and turn any unforeseen exception into an
:class:`~rtcheck.errors.InputError` naming the file (:func:`guarded`) live here too.

Leans on pydicom, numpy and :mod:`rtcheck.errors` only.
"""

from __future__ import annotations

import datetime as _dt
import os
import stat
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filereader import read_partial
from pydicom.tag import BaseTag

from rtcheck.errors import InputError, RTCheckError, short_message

PathLike = str | os.PathLike[str]

#: SOP classes rtcheck reads, and the modality each one is.
SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.481.2": "RTDOSE",
    "1.2.840.10008.5.1.4.1.1.481.3": "RTSTRUCT",
    "1.2.840.10008.5.1.4.1.1.481.5": "RTPLAN",
    "1.2.840.10008.5.1.4.1.1.481.8": "RTPLAN",  # RT Ion Plan
    "1.2.840.10008.5.1.4.1.1.481.4": "RTRECORD",  # RT Beams Treatment Record
    "1.2.840.10008.5.1.4.1.1.481.6": "RTRECORD",  # RT Brachy Treatment Record
    "1.2.840.10008.5.1.4.1.1.481.7": "RTRECORD",  # RT Treatment Summary Record
    "1.2.840.10008.5.1.4.1.1.481.9": "RTRECORD",  # RT Ion Beams Treatment Record
}
RT_MODALITIES = ("RTPLAN", "RTDOSE", "RTSTRUCT", "RTRECORD")

#: Bytes read to decide whether a file is DICOM (preamble, file meta, first element).
SNIFF_BYTES = 4096
#: Extensions that claim a file is DICOM: one that is not is listed as skipped, not ignored.
DICOM_EXTENSIONS = frozenset({".dcm", ".dicom", ".dic", ".ima"})
#: Explicit-VR value representations with a 2-byte reserved field and a 4-byte length.
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR",
             b"UT", b"UV"}
_UNDEFINED_LENGTH = 0xFFFFFFFF

_P = ParamSpec("_P")
_R = TypeVar("_R")


# --------------------------------------------------------------------------------------
# Warnings and the readers' last line of defence
# --------------------------------------------------------------------------------------

@contextmanager
def quiet() -> Iterator[None]:
    """Silence pydicom's warnings about odd values (invalid UIDs...): we report what matters."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def quietly(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Decorate ``func`` to run inside :func:`quiet`."""
    @wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with quiet():
            return func(*args, **kwargs)
    return wrapper


def _source_name(source: object) -> str | None:
    """The file a reader's first argument names, for an error message (None when unknown)."""
    if isinstance(source, Dataset):
        return getattr(source, "filename", None) or None
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, (list, tuple)):
        return ", ".join(map(str, source)) or None
    return None


def guarded(kind: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Readers' last line of defence: an exception that is not an RTCheckError (a value of a
    wrong VR met deep in pydicom, a corrupted byte no check foresaw) becomes an InputError
    naming the file (the first argument), so no input ends in a traceback."""
    def decorate(func: Callable[_P, _R]) -> Callable[_P, _R]:
        @wraps(func)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return func(*args, **kwargs)
            except RTCheckError:
                raise
            except (MemoryError, KeyboardInterrupt):
                raise
            except Exception as exc:
                source = args[0] if args else next(iter(kwargs.values()), None)
                raise InputError(f"unreadable {kind} ({type(exc).__name__}: "
                                 f"{short_message(exc)})", _source_name(source)) from exc
        return wrapper
    return decorate


# --------------------------------------------------------------------------------------
# Sniffing and reading a file
# --------------------------------------------------------------------------------------

def _looks_like_dicom(head: bytes) -> tuple[bool, bool]:
    """(is DICOM, has file meta) from a file's first bytes (:data:`SNIFF_BYTES`).

    A Part 10 file has 'DICM' at byte 128, followed by its file meta group (0002). Some
    exports (older CMS/Elekta, pydicom's own rtstruct.dcm) hold a bare little-endian dataset
    instead, which starts with a group 0002 or 0008 tag; anything else is not DICOM, which
    keeps folder scans fast. The element after the file meta group must not be group 0000
    (a command group, never stored in a file: zero-filled bytes read as such would make
    pydicom parse millions of empty elements, 10 s for a 24 MB zero-filled file).
    """
    if len(head) >= 132 and head[128:132] == b"DICM":
        return _first_dataset_group(head, 132) != 0, True
    if len(head) >= 8 and head[:2] in (b"\x02\x00", b"\x08\x00"):
        return _first_dataset_group(head, 0) != 0, False
    return False, False


def _first_dataset_group(head: bytes, pos: int) -> int | None:
    """The group of the first element after the file meta group (explicit VR little endian),
    or None when it lies beyond ``head`` (a long file meta: not checked)."""
    while pos + 8 <= len(head):
        group = int.from_bytes(head[pos:pos + 2], "little")
        if group != 0x0002:
            return group
        vr = head[pos + 4:pos + 6]
        if vr in _LONG_VRS:
            if pos + 12 > len(head):
                return None
            pos += 12 + int.from_bytes(head[pos + 8:pos + 12], "little")
        else:
            pos += 8 + int.from_bytes(head[pos + 6:pos + 8], "little")
    return None


def read_file(path: PathLike, header_only: bool = False, named: bool = True) -> Dataset | None:
    """Read a DICOM file; None for a non-DICOM file found while scanning (``named=False``).

    Parameters
    ----------
    path : path
    header_only : bool
        Stop before the pixel data (and float/double pixel data).
    named : bool
        The user named this file: it must be DICOM. False while walking a folder: a file
        that is not DICOM (and not named like DICOM, see :data:`DICOM_EXTENSIONS`) gives None.

    Raises
    ------
    InputError
        A named file that is not DICOM, or any DICOM file that is truncated or corrupt.
    """
    where = str(path)
    kind = _non_regular(where)
    if kind:
        raise InputError(f"not a regular file ({kind}): not read", where)
    try:
        with open(where, "rb") as f:
            head = f.read(SNIFF_BYTES)
        size = os.path.getsize(where)
    except OSError as exc:
        raise InputError(f"cannot open the file ({exc.strerror or exc})", where) from exc
    is_dicom, has_meta = _looks_like_dicom(head)
    if not is_dicom:
        if named or Path(where).suffix.lower() in DICOM_EXTENSIONS:
            raise InputError("not a DICOM file" + (
                " (zero-filled or garbage after the DICOM header)"
                if head[128:132] == b"DICM" or head[:2] in (b"\x02\x00", b"\x08\x00")
                else ""), where)
        return None
    garbage: list[int] = []

    def stop_when(tag: BaseTag, vr: str | None, length: int) -> bool:
        """Stop at garbage (group 0000) and, for a header, at the pixel data."""
        if tag >> 16 == 0:  # group 0000 inside a stored dataset: zero-filled or garbage bytes
            garbage.append(int(tag))
            return True
        return header_only and tag in (0x7FE00010, 0x7FE00009, 0x7FE00008)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with open(where, "rb") as f:
                ds = read_partial(f, stop_when, force=not has_meta)
        except Exception as exc:  # pydicom raises many types on bad bytes
            raise InputError("not a readable DICOM file: truncated or corrupt "
                             f"({short_message(exc)})", where) from exc
    if garbage:
        raise InputError("corrupt DICOM file: zero-filled or garbage bytes where a data "
                         "element should be (tag (0000,xxxx) inside the dataset)", where)
    if any("EOF" in str(w.message) or "end of file" in str(w.message).lower() for w in caught):
        raise InputError("truncated DICOM file (ends inside a sequence)", where)
    check_complete(ds, where, size, whole_file=not header_only)
    if not has_meta and not (ds.get("SOPClassUID") or ds.get("Modality")):
        if named:
            raise InputError("not a DICOM file (no SOP class, no modality)", where)
        return None
    return ds


def _non_regular(path: str) -> str | None:
    """What a path is when it is not a regular file (FIFO, device, socket...), else None.

    Opening a FIFO or a character device named ``*.dcm`` would block for ever (or read an
    endless stream): only regular files are opened. Symbolic links are followed.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None  # open() reports it
    if stat.S_ISREG(mode):
        return None
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a regular file"


def check_complete(ds: Dataset, where: str, size: int, whole_file: bool) -> None:
    """Raise if the file ended inside its last data element.

    pydicom reads a truncated file without complaint: it keeps a short last value, and
    ignores fewer than 8 trailing bytes (a cut element header). The last element's declared
    length then exceeds the bytes read, or (whole-file reads) ends short of the file's end.
    A cut exactly between two elements is invisible here; the readers then report the
    mandatory sequences that are missing.
    """
    tags = list(ds.keys())
    if not tags:
        raise InputError("truncated or empty DICOM file (no data elements)", where)
    elem = ds.get_item(tags[-1])
    if not isinstance(elem, RawDataElement) or elem.length == _UNDEFINED_LENGTH:
        return
    value = elem.value
    if isinstance(value, (bytes, bytearray)) and len(value) < elem.length:
        raise InputError(
            f"truncated DICOM file ({size} bytes; element {elem.tag} needs "
            f"{elem.length} bytes, {len(value)} present)", where)
    leftover = size - (elem.value_tell + elem.length)
    if whole_file and 0 < leftover < 8:
        raise InputError(f"truncated DICOM file ({size} bytes; it ends inside the header of "
                         f"the element after {elem.tag})", where)


def open_dataset(source: PathLike | Dataset, header_only: bool = False
                 ) -> tuple[Dataset, str | None]:
    """The dataset of a named file (which must be DICOM) or a given dataset, and where it is."""
    if isinstance(source, Dataset):
        return source, getattr(source, "filename", None) or None
    ds = read_file(source, header_only=header_only, named=True)
    assert ds is not None  # named=True: a file that is not DICOM raised
    return ds, str(source)


def as_paths(paths: PathLike | Sequence[PathLike]) -> list[PathLike]:
    """One path or several, as a list."""
    return [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)


# --------------------------------------------------------------------------------------
# Modality
# --------------------------------------------------------------------------------------

def modality_of(ds: Dataset) -> str:
    """``RTPLAN``, ``RTDOSE``, ``RTSTRUCT``, ``RTRECORD`` from the SOP class when known, else
    the Modality attribute (``CT``, ``MR``...), or ``""``."""
    sop_class = str(ds.get("SOPClassUID", "") or "")
    return SOP_CLASSES.get(sop_class) or str(ds.get("Modality", "") or "").strip().upper()


def wrong_modality(found: str, expected: str, where: str | PathLike | None) -> InputError:
    """The error for a file that is ``found`` (a modality, or ``""``) where ``expected`` was
    wanted."""
    return InputError(f"is {found or 'an unknown DICOM object'}, not an {expected}", where)


def expect_modality(ds: Dataset, modality: str, where: str | None) -> None:
    """InputError unless the dataset is a ``modality``."""
    found = modality_of(ds)
    if found != modality:
        raise wrong_modality(found, modality, where)


# --------------------------------------------------------------------------------------
# Lenient value parsers: None when absent or unreadable
# --------------------------------------------------------------------------------------

def as_text(value: object) -> str | None:
    """The value as stripped text; None when absent or empty."""
    text = "" if value is None else str(value).strip()
    return text or None


def as_int(value: Any) -> int | None:
    """The value as an int; None when absent or not a whole number."""
    try:
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None


def as_float(value: Any) -> float | None:
    """The value as a finite float; None when absent, not a number, NaN or infinite."""
    try:
        out = None if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return None
    return out if out is not None and np.isfinite(out) else None


def as_date(value: object) -> _dt.date | None:
    """A DICOM date (YYYYMMDD, separators tolerated) as a date; None when not one."""
    digits = "".join(ch for ch in str(value or "") if ch.isdigit())
    if len(digits) < 8:
        return None
    try:  # not strptime: its first call imports _strptime and locale tables
        return _dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return None


def first_in(ds: Dataset, sequence: str, keyword: str) -> Any:
    """The ``keyword`` value of the first item of ``sequence``; None without items."""
    items = ds.get(sequence) or []
    return items[0].get(keyword) if len(items) else None
