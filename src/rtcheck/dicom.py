"""Reading DICOM-RT files and pairing them into a plan: RTPLAN, RTDOSE, RTSTRUCT and RTRECORD.

Public functions
----------------
read_dose, read_structure_set, read_plan
    One object each, from a file or a pydicom dataset.
scan, group_plans
    Headers-only discovery of every RT object under folders (nested, files without
    extension, CT/MR slices and non-DICOM files mixed in) and their grouping per plan.
load_plan
    The plan, dose and structure set a command works on, paired by UID references, checked
    for frame-of-reference consistency, with BEAM doses summed and FRACTION doses multiplied;
    and the dates the plan was delivered on, from its treatment records.

Pairing rules (DICOM-RT): an RTDOSE names its plan (ReferencedRTPlanSequence), an RTPLAN names
its structure set (ReferencedStructureSetSequence), a treatment record (RTRECORD: RT Beams, Ion
Beams or Brachy Treatment Record, RT Treatment Summary Record) names the plan it delivered
(ReferencedRTPlanSequence). Nothing is paired by guesswork: several
plans, several whole-plan doses or a missing beam dose are errors that name the files and say
how to choose. Decisions that change doses are recorded in ``PlanData.warnings``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import stat
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path

import numpy as np
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filereader import read_partial
from pydicom.multival import MultiValue

from rtcheck.dose import (
    dose_grid_from_dataset,
    multiply_fractions,
    parse_count,
    parse_number,
    sum_doses,
)
from rtcheck.errors import InputError, RTCheckError
from rtcheck.model import (
    Contour,
    DoseGrid,
    FractionGroup,
    Plan,
    PlanData,
    Structure,
    StructureSet,
)

__all__ = [
    "FileHeader",
    "PlanGroup",
    "beams_total_gy",
    "check_dose_plausibility",
    "group_plans",
    "load_plan",
    "read_dose",
    "read_plan",
    "read_structure_set",
    "scan",
]

PathLike = str | os.PathLike

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

#: Where a treatment record states delivery dates: (sequence path, keyword). The record's own
#: TreatmentDate (RT General Treatment Record, Type 2: may be empty) is the session's date;
#: TreatmentControlPointDate (Type 1) dates each delivered control point of each beam; some
#: systems put a TreatmentDate in the beam items; an RT Treatment Summary Record gives the
#: first and most recent treatment dates and a TreatmentDate per fraction.
_RECORD_DATES: tuple[tuple[tuple[str, ...], str], ...] = (
    ((), "TreatmentDate"),
    (("TreatmentSessionBeamSequence",), "TreatmentDate"),
    (("TreatmentSessionBeamSequence", "ControlPointDeliverySequence"),
     "TreatmentControlPointDate"),
    (("TreatmentSessionIonBeamSequence",), "TreatmentDate"),
    (("TreatmentSessionIonBeamSequence", "IonControlPointDeliverySequence"),
     "TreatmentControlPointDate"),
    ((), "FirstTreatmentDate"),
    ((), "MostRecentTreatmentDate"),
    (("FractionGroupSummarySequence", "FractionStatusSummarySequence"), "TreatmentDate"),
)

#: Contours whose points' z differ by more than this (mm) are not on one axial plane.
PLANAR_TOLERANCE_MM = 0.01
#: No patient coordinate is 100 m from the origin: a contour point beyond is corrupt.
MAX_COORDINATE_MM = 1e5

_CONTOUR_DATA = 0x30060050
_CLOSED_TYPES = ("CLOSED_PLANAR", "CLOSEDPLANAR_XOR")
_UNDEFINED_LENGTH = 0xFFFFFFFF


# --------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------

@contextmanager
def _quiet() -> Iterator[None]:
    """Silence pydicom's warnings about odd values (invalid UIDs...): we report what matters."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _quietly(func):
    @wraps(func)
    def wrapper(*args, **kwargs):
        with _quiet():
            return func(*args, **kwargs)
    return wrapper


def _guarded(kind: str):
    """Readers' last line of defence: an exception that is not an RTCheckError (a value of a
    wrong VR met deep in pydicom, a corrupted byte no check foresaw) becomes an InputError
    naming the file (the first argument), so no input ends in a traceback."""
    def decorate(func):
        @wraps(func)
        def wrapper(*args, **kwargs):
            try:
                return func(*args, **kwargs)
            except RTCheckError:
                raise
            except (MemoryError, KeyboardInterrupt):
                raise
            except Exception as exc:
                source = args[0] if args else next(iter(kwargs.values()), None)
                if isinstance(source, Dataset):
                    where = getattr(source, "filename", None) or None
                elif isinstance(source, (str, os.PathLike)):
                    where = str(source)
                elif isinstance(source, (list, tuple)):
                    where = ", ".join(map(str, source)) or None
                else:
                    where = None
                raise InputError(f"unreadable {kind} ({type(exc).__name__}: {_short(exc)})",
                                 where) from exc
        return wrapper
    return decorate


#: Bytes read to decide whether a file is DICOM (preamble, file meta, first element).
SNIFF_BYTES = 4096
#: Extensions that claim a file is DICOM: one that is not is listed as skipped, not ignored.
DICOM_EXTENSIONS = frozenset({".dcm", ".dicom", ".dic", ".ima"})
#: Explicit-VR value representations with a 2-byte reserved field and a 4-byte length.
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR",
             b"UT", b"UV"}


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


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _read(path: PathLike, header_only: bool = False, named: bool = True) -> Dataset | None:
    """Read a DICOM file; None for a non-DICOM file found while scanning (``named=False``).

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

    def stop_when(tag, vr, length) -> bool:
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
            raise InputError(f"not a readable DICOM file: truncated or corrupt ({_short(exc)})",
                             where) from exc
    if garbage:
        raise InputError("corrupt DICOM file: zero-filled or garbage bytes where a data "
                         "element should be (tag (0000,xxxx) inside the dataset)", where)
    if any("EOF" in str(w.message) or "end of file" in str(w.message).lower() for w in caught):
        raise InputError("truncated DICOM file (ends inside a sequence)", where)
    _check_complete(ds, where, size, whole_file=not header_only)
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


def _check_complete(ds: Dataset, where: str, size: int, whole_file: bool) -> None:
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


def _dataset(source: PathLike | Dataset, header_only: bool = False) -> tuple[Dataset, str | None]:
    if isinstance(source, Dataset):
        return source, getattr(source, "filename", None) or None
    ds = _read(source, header_only=header_only, named=True)
    assert ds is not None
    return ds, str(source)


def _modality(ds: Dataset) -> str:
    sop_class = str(ds.get("SOPClassUID", "") or "")
    return SOP_CLASSES.get(sop_class) or str(ds.get("Modality", "") or "").strip().upper()


def _expect(ds: Dataset, modality: str, where: str | None) -> None:
    found = _modality(ds)
    if found != modality:
        raise InputError(f"is {found or 'an unknown DICOM object'}, not an {modality}", where)


def _text(value) -> str | None:
    text = "" if value is None else str(value).strip()
    return text or None


def _int(value) -> int | None:
    try:
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None


def _float(value) -> float | None:
    try:
        out = None if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return None
    return out if out is not None and np.isfinite(out) else None


def _first(ds: Dataset, sequence: str, keyword: str):
    items = ds.get(sequence) or []
    return items[0].get(keyword) if len(items) else None


# --------------------------------------------------------------------------------------
# RTDOSE
# --------------------------------------------------------------------------------------

@_quietly
@_guarded("RTDOSE")
def read_dose(source: PathLike | Dataset) -> DoseGrid:
    """Read an RTDOSE into a :class:`DoseGrid` (as stored: no summation or fraction scaling).

    Parameters
    ----------
    source : path or pydicom.Dataset

    Returns
    -------
    DoseGrid
        DoseGridScaling applied; increasing x, y, z axes whatever the orientation (HFS, FFS,
        HFP, FFP, decubitus); ``units`` ``"GY"`` or ``"RELATIVE"`` (never converted).

    Raises
    ------
    InputError
        Not an RTDOSE, unknown or missing DoseUnits, oblique or non-axial grid, truncated or
        missing pixel data.
    """
    ds, where = _dataset(source)
    _expect(ds, "RTDOSE", where)
    return dose_grid_from_dataset(ds, where)


# --------------------------------------------------------------------------------------
# RTSTRUCT
# --------------------------------------------------------------------------------------

def _contour_points(item: Dataset) -> np.ndarray:
    """ContourData as an (N, 3) array, parsed from the raw bytes when possible.

    Converting each value to pydicom's DSfloat costs ~10x more than numpy parsing the bytes.
    """
    elem = item.get_item(_CONTOUR_DATA)
    if elem is None:
        return np.zeros((0, 3))
    value = elem.value
    if isinstance(value, (bytes, bytearray)):
        text = bytes(value).strip(b" \x00")
        flat = np.array(text.split(b"\\"), dtype=float) if text else np.zeros(0)
    elif value is None or value == "":
        flat = np.zeros(0)
    else:
        flat = np.atleast_1d(np.asarray(value, dtype=float))
    if flat.size % 3:
        raise ValueError(f"{flat.size} values, not a multiple of 3")
    return flat.reshape(-1, 3)


class _RoiReport:
    """Per-ROI counts of what was skipped, turned into warnings and the structure's
    ``problems`` once all its contours are read."""

    def __init__(self) -> None:
        self.short = 0
        self.bad = 0
        self.nonfinite = 0
        self.far = 0
        self.nonplanar = 0
        self.nonplanar_span = 0.0
        self.ignored: dict[str, int] = {}

    def problems(self) -> list[str]:
        """Why the ROI as read is incomplete, one sentence per class of skipped contour."""
        out = []
        if self.nonplanar:
            out.append(
                f"{self.nonplanar} contour(s) not on an axial plane (z varies by up to "
                f"{self.nonplanar_span:.3g} mm within a contour): all of its contours dropped")
        if self.short:
            out.append(f"{self.short} contour(s) with fewer than 3 points skipped")
        if self.bad:
            out.append(f"{self.bad} contour(s) with unreadable ContourData (not numbers, or a "
                       "count of values that is not a multiple of 3) skipped")
        if self.nonfinite:
            out.append(f"{self.nonfinite} contour(s) with non-finite coordinates (NaN or "
                       "infinity) skipped")
        if self.far:
            out.append(f"{self.far} contour(s) with coordinates more than "
                       f"{MAX_COORDINATE_MM:g} mm from the origin skipped")
        for kind, n in sorted(self.ignored.items()):
            out.append(f"{n} {kind} contour(s) ignored (a closed contour or a point is "
                       "expected)")
        return out

    def messages(self, label: str) -> list[str]:
        out = []
        for text in self.problems():
            if text.startswith(f"{self.nonplanar} contour(s) not on an axial plane"):
                text = (f"{self.nonplanar} contour(s) not on an axial plane (z varies by up to "
                        f"{self.nonplanar_span:.3g} mm within a contour); rtcheck needs axial "
                        "contours, so this ROI's contours were dropped and it has no DVH")
            out.append(f"{label}: {text}")
        return out


def _add_contours(structure: Structure, items: Iterable[Dataset], report: _RoiReport) -> None:
    points = []
    for item in items:
        kind = str(item.get("ContourGeometricType", "") or "").strip().upper()
        if kind not in _CLOSED_TYPES and kind != "POINT":
            report.ignored[kind or "untyped"] = report.ignored.get(kind or "untyped", 0) + 1
            continue
        try:
            xyz = _contour_points(item)
        except (ValueError, TypeError):
            report.bad += 1
            continue
        if xyz.size and not np.all(np.isfinite(xyz)):
            report.nonfinite += 1
            continue
        if xyz.size and float(np.max(np.abs(xyz))) > MAX_COORDINATE_MM:
            report.far += 1
            continue
        if kind == "POINT":
            points.append(xyz)
            continue
        if len(xyz) < 3:
            report.short += 1
            continue
        span = float(np.ptp(xyz[:, 2]))
        if span > PLANAR_TOLERANCE_MM:
            report.nonplanar += 1
            report.nonplanar_span = max(report.nonplanar_span, span)
            continue
        structure.contours.append(Contour(z=float(xyz[0, 2]), xy=np.ascontiguousarray(xyz[:, :2])))
    if points:
        structure.points = np.concatenate([structure.points, *points])
    if report.nonplanar:
        structure.contours = []
    structure.problems.extend(report.problems())


def _structure_set_frame(ds: Dataset, warn: list[str]) -> str | None:
    """The frame of reference of a structure set (top level, or its referenced frames)."""
    top = _text(ds.get("FrameOfReferenceUID"))
    if top:
        return top
    uids = [u for u in (_text(i.get("FrameOfReferenceUID"))
                        for i in ds.get("ReferencedFrameOfReferenceSequence") or []) if u]
    uids = list(dict.fromkeys(uids))
    if not uids:
        uids = list(dict.fromkeys(u for u in (
            _text(r.get("ReferencedFrameOfReferenceUID"))
            for r in ds.get("StructureSetROISequence") or []) if u))
    if len(uids) > 1:
        warn.append(f"structure set refers to {len(uids)} frames of reference; using the first "
                    f"({uids[0]}) for consistency checks")
    return uids[0] if uids else None


@_quietly
@_guarded("RTSTRUCT")
def read_structure_set(source: PathLike | Dataset) -> StructureSet:
    """Read an RTSTRUCT into a :class:`StructureSet`.

    CLOSED_PLANAR (and CLOSEDPLANAR_XOR) contours become :class:`Contour` objects, POINT
    contours become ``Structure.points``; other geometric types (OPEN_PLANAR,
    OPEN_NONPLANAR) are ignored with a warning.

    What is reported in ``StructureSet.warnings`` (never raised, so one odd ROI does not stop
    a plan): duplicate ROI names, empty ROIs, contours with fewer than 3 points (skipped),
    contours not on an axial plane (z varying by more than 0.01 mm within a contour: all of
    that ROI's contours are dropped, so it gets no DVH rather than a wrong one), contours for
    an unknown ROI number.

    Raises
    ------
    InputError
        Not an RTSTRUCT; a truncated or unreadable file; no StructureSetROISequence or
        ROIContourSequence (both mandatory).
    """
    ds, where = _dataset(source)
    _expect(ds, "RTSTRUCT", where)
    for keyword in ("StructureSetROISequence", "ROIContourSequence"):
        if keyword not in ds:  # both Type 1: missing means a cut or incomplete file
            raise InputError(f"RTSTRUCT has no {keyword} (incomplete or truncated file)", where)
    warn: list[str] = []
    if "RTROIObservationsSequence" not in ds:
        warn.append("no RTROIObservationsSequence (incomplete file?): ROI types are unknown")
    structures: dict[int, Structure] = {}
    for item in ds.get("StructureSetROISequence") or []:
        number = _int(item.get("ROINumber"))
        if number is None:
            warn.append("a StructureSetROISequence item has no ROINumber: ignored")
            continue
        if number in structures:
            warn.append(f"ROI number {number} is defined twice; the second one is ignored")
            continue
        structures[number] = Structure(number=number, name=str(item.get("ROIName", "") or ""))
    for item in ds.get("RTROIObservationsSequence") or []:
        s = structures.get(_int(item.get("ReferencedROINumber")))
        if s is not None and s.roi_type is None:
            s.roi_type = _text(item.get("RTROIInterpretedType"))
    dropped = set()  # ROIs whose contours were dropped (non-axial): already explained
    for item in ds.get("ROIContourSequence") or []:
        number = _int(item.get("ReferencedROINumber"))
        if number not in structures:
            warn.append(f"contours for ROI number {number}, which the structure set does not "
                        "define: ignored")
            continue
        s, report = structures[number], _RoiReport()
        _add_contours(s, item.get("ContourSequence") or [], report)
        warn.extend(report.messages(f"ROI {s.name!r} ({number})"))
        if report.nonplanar:
            dropped.add(number)
    ss = StructureSet(
        structures=list(structures.values()),
        uid=_text(ds.get("SOPInstanceUID")),
        label=_text(ds.get("StructureSetLabel")),
        frame_of_reference_uid=_structure_set_frame(ds, warn),
        path=where,
    )
    for name in ss.duplicate_names():
        numbers = [str(s.number) for s in ss.structures if s.name == name]
        warn.append(f"ROI name {name!r} is used by {len(numbers)} ROIs (numbers "
                    f"{', '.join(numbers)}): select them by number")
    for s in ss.structures:
        if s.is_empty and s.number not in dropped:
            warn.append(f"ROI {s.name!r} ({s.number}) is empty (no contour)")
    ss.warnings = warn
    return ss


# --------------------------------------------------------------------------------------
# RTPLAN
# --------------------------------------------------------------------------------------

def _date(value) -> _dt.date | None:
    digits = "".join(ch for ch in str(value or "") if ch.isdigit())
    if len(digits) < 8:
        return None
    try:
        return _dt.datetime.strptime(digits[:8], "%Y%m%d").date()
    except ValueError:
        return None


def _fraction_groups(ds: Dataset, where: str | None) -> list[FractionGroup]:
    """The fraction groups, their numbers read strictly.

    NumberOfFractionsPlanned must be a positive whole number when present ("3.5" is not 3,
    "-3" and "0" are no number of fractions); BeamDose and BeamMeterset must be finite
    numbers, BeamDose not negative. Anything else is an InputError naming the attribute: the
    fractions scale FRACTION doses and every biological conversion.
    """
    groups = []
    for i, item in enumerate(ds.get("FractionGroupSequence") or [], start=1):
        beams, doses, metersets = [], {}, {}
        for ref in item.get("ReferencedBeamSequence") or []:
            number = _int(ref.get("ReferencedBeamNumber"))
            if number is None:
                continue
            beams.append(number)
            dose = parse_number(ref.get("BeamDose"), f"BeamDose of beam {number}", where,
                                "RTPLAN")
            if dose is not None:
                if dose < 0:
                    raise InputError(f"RTPLAN BeamDose of beam {number} is negative ({dose:g} "
                                     "Gy)", where)
                doses[number] = dose
            mu = parse_number(ref.get("BeamMeterset"), f"BeamMeterset of beam {number}", where,
                              "RTPLAN")
            if mu is not None:
                metersets[number] = mu
        groups.append(FractionGroup(
            number=_int(item.get("FractionGroupNumber")) or i,
            fractions=parse_count(item.get("NumberOfFractionsPlanned"),
                                  f"NumberOfFractionsPlanned (fraction group {i})", where,
                                  "RTPLAN"),
            beam_numbers=tuple(beams), beam_doses_gy=doses, beam_metersets=metersets))
    return groups


def _prescription(ds: Dataset, groups: list[FractionGroup], notes: list[str],
                  where: str | None = None) -> float | None:
    """Total prescribed dose (Gy): TARGET TargetPrescriptionDose, else beam doses x fractions.

    Site or volume targets are preferred over point targets (a plan's calculation point
    often carries a lower dose than the site, as in the breast example: 14 Gy site, 11.3 Gy
    point). If several different target prescriptions remain, the largest is used (in a
    simultaneous boost it is the boost's) and the choice is recorded in the notes.
    """
    targets = []
    for item in ds.get("DoseReferenceSequence") or []:
        if str(item.get("DoseReferenceType", "") or "").strip().upper() != "TARGET":
            continue
        dose = parse_number(item.get("TargetPrescriptionDose"), "TargetPrescriptionDose",
                            where, "RTPLAN")
        if dose is not None and dose < 0:
            raise InputError(f"RTPLAN TargetPrescriptionDose is negative ({dose:g} Gy)", where)
        if dose is not None and dose > 0:
            kind = str(item.get("DoseReferenceStructureType", "") or "").strip().upper()
            label = _text(item.get("DoseReferenceDescription")) or kind or "target"
            targets.append((kind, label, dose))
    preferred = [t for t in targets if t[0] in ("SITE", "VOLUME")] or targets
    values = sorted({round(t[2], 6) for t in preferred})
    if len(values) > 1:
        listed = ", ".join(f"{label} {dose:g} Gy" for _, label, dose in preferred)
        notes.append(f"several target prescriptions ({listed}): the largest, {values[-1]:g} Gy, "
                     "is taken as the plan's prescription")
    if values:
        return values[-1]
    return _prescription_from_beams(groups, notes)


def beams_total_gy(groups: list[FractionGroup]) -> float | None:
    """The whole-course dose the plan's beams state: sum of BeamDose x fractions.

    None unless every fraction group states its fractions and every beam that delivers
    (BeamMeterset not 0) states a positive BeamDose: a beam with monitor units but BeamDose
    0 delivers dose the sum would miss.
    """
    total = 0.0
    for g in groups:
        if not g.fractions or not g.beam_numbers:
            return None
        for n in g.beam_numbers:
            mu, dose = g.beam_metersets.get(n), g.beam_doses_gy.get(n)
            if mu == 0 or (mu is None and dose == 0):
                continue  # a setup beam (as _treatment_beams decides)
            if not dose or dose <= 0:
                return None
        total += sum(g.beam_doses_gy.values()) * g.fractions
    return total if total > 0 else None


def _prescription_from_beams(groups: list[FractionGroup], notes: list[str]) -> float | None:
    for g in groups:
        if not g.fractions or not g.beam_numbers or set(g.beam_doses_gy) != set(g.beam_numbers):
            return None
    total = beams_total_gy(groups)
    if total is None:
        return None
    notes.append(f"no target prescription dose in the plan: prescription taken as the sum of "
                 f"beam doses x fractions, {total:g} Gy")
    return total


@_quietly
@_guarded("RTPLAN")
def read_plan(source: PathLike | Dataset) -> Plan:
    """Read the facts of an RTPLAN a checker needs into a :class:`Plan`.

    See :func:`_prescription` for how the prescription is chosen; how it was derived, when
    not from a single target prescription, is in ``Plan.notes``.

    Raises
    ------
    InputError
        Not an RTPLAN, no SOPInstanceUID, or an unreadable file.
    """
    ds, where = _dataset(source)
    _expect(ds, "RTPLAN", where)
    uid = _text(ds.get("SOPInstanceUID"))
    if not uid:
        raise InputError("RTPLAN has no SOPInstanceUID", where)
    notes: list[str] = []
    groups = _fraction_groups(ds, where)
    if not groups:
        notes.append("plan has no FractionGroupSequence: the number of fractions is unknown")
    if len(groups) > 1:
        notes.append(f"plan has {len(groups)} fraction groups: the number of fractions is "
                     "not a single number")
    return Plan(
        uid=uid,
        label=_text(ds.get("RTPlanLabel")),
        name=_text(ds.get("RTPlanName")),
        patient_id=_text(ds.get("PatientID")),
        patient_name=_text(ds.get("PatientName")),
        date=_date(ds.get("RTPlanDate")),
        intent=_text(ds.get("PlanIntent")),
        fraction_groups=groups,
        prescription_gy=_prescription(ds, groups, notes, where),
        referenced_structure_set_uid=_text(
            _first(ds, "ReferencedStructureSetSequence", "ReferencedSOPInstanceUID")),
        frame_of_reference_uid=_text(ds.get("FrameOfReferenceUID")),
        path=where,
        notes=notes,
    )


# --------------------------------------------------------------------------------------
# Discovery: headers of every file, grouped per plan
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FileHeader:
    """What a folder scan learns about one DICOM file from its header (no pixel data).

    Attributes
    ----------
    path : str
    modality : str
        ``RTPLAN``, ``RTDOSE``, ``RTSTRUCT``, ``RTRECORD`` (from the SOP class when known),
        else the Modality attribute (``CT``, ``MR``...), or ``""``.
    sop_instance_uid, sop_class_uid, frame_of_reference_uid, patient_id : str or None
    label : str or None
        RTPlanLabel or StructureSetLabel.
    referenced_plan_uid : str or None
        RTDOSE: the plan it belongs to. RTRECORD: the plan it records the delivery of.
    referenced_structure_set_uid : str or None
        RTPLAN: its structure set.
    summation : str or None
        RTDOSE: DoseSummationType.
    beam_numbers : tuple of int
        RTDOSE: the beams it holds (BEAM doses).
    fraction_group : int or None
        RTDOSE: the fraction group it refers to.
    treatment_beams : tuple of (int, tuple of int)
        RTPLAN: per fraction group number, the beams that deliver dose (BeamMeterset and
        BeamDose not zero: setup beams excluded).
    error : str or None
        Why the file could not be read (it is then otherwise empty).
    treatment_dates : tuple of str
        RTRECORD: every non-empty date value it holds (see ``_RECORD_DATES``), as stored;
        :func:`load_plan` parses them and warns about those that are not dates.
    """

    path: str
    modality: str = ""
    sop_instance_uid: str | None = None
    sop_class_uid: str | None = None
    frame_of_reference_uid: str | None = None
    patient_id: str | None = None
    label: str | None = None
    referenced_plan_uid: str | None = None
    referenced_structure_set_uid: str | None = None
    summation: str | None = None
    beam_numbers: tuple[int, ...] = ()
    fraction_group: int | None = None
    treatment_beams: tuple[tuple[int, tuple[int, ...]], ...] = ()
    error: str | None = None
    treatment_dates: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line naming the object for error messages and listings."""
        what = self.modality or "DICOM"
        parts = [what]
        if self.label:
            parts.append(f"label {self.label!r}")
        if self.summation:
            parts.append(f"DoseSummationType {self.summation}")
        if self.beam_numbers:
            parts.append(f"beam(s) {', '.join(map(str, self.beam_numbers))}")
        parts.append(f"UID {self.sop_instance_uid}")
        return f"{', '.join(parts)} ({self.path})"


def _dose_references(ds: Dataset) -> tuple[str | None, int | None, tuple[int, ...]]:
    plan_ref = (ds.get("ReferencedRTPlanSequence") or [None])[0]
    if plan_ref is None:
        return None, None, ()
    uid = _text(plan_ref.get("ReferencedSOPInstanceUID"))
    group = (plan_ref.get("ReferencedFractionGroupSequence") or [None])[0]
    if group is None:
        return uid, None, ()
    beams = tuple(n for n in (_int(b.get("ReferencedBeamNumber"))
                              for b in group.get("ReferencedBeamSequence") or []) if n is not None)
    return uid, _int(group.get("ReferencedFractionGroupNumber")), beams


def _treatment_beams(ds: Dataset) -> tuple[tuple[int, tuple[int, ...]], ...]:
    """Per fraction group, the beams that deliver dose.

    A beam delivers unless it is a SETUP beam (TreatmentDeliveryType), its BeamMeterset is 0,
    or it states no meterset and a BeamDose of 0. A BeamDose of 0 with monitor units is not a
    setup beam (some systems write 0 when the dose is specified elsewhere): its BEAM dose is
    required, never dropped.
    """
    setup = set()
    for key in ("BeamSequence", "IonBeamSequence"):
        for beam in ds.get(key) or []:
            if str(beam.get("TreatmentDeliveryType", "") or "").strip().upper() == "SETUP":
                number = _int(beam.get("BeamNumber"))
                if number is not None:
                    setup.add(number)
    out = []
    for i, item in enumerate(ds.get("FractionGroupSequence") or [], start=1):
        beams = []
        for ref in item.get("ReferencedBeamSequence") or []:
            number = _int(ref.get("ReferencedBeamNumber"))
            meterset, dose = _float(ref.get("BeamMeterset")), _float(ref.get("BeamDose"))
            if number is None or number in setup or meterset == 0:
                continue
            if meterset is None and dose == 0:
                continue
            beams.append(number)
        out.append((_int(item.get("FractionGroupNumber")) or i, tuple(beams)))
    return tuple(out)


def _items(ds: Dataset, path: tuple[str, ...]) -> Iterator[Dataset]:
    """The items at the end of a path of nested sequences (the dataset itself for ())."""
    if not path:
        yield ds
        return
    for item in ds.get(path[0]) or []:
        yield from _items(item, path[1:])


def _record_dates(ds: Dataset) -> tuple[str, ...]:
    """Every non-empty date value of a treatment record, as stored (unique, in file order).

    A value pydicom cannot even decode is kept as ``"?"`` so that it is reported, not lost.
    """
    out: list[str] = []
    for path, keyword in _RECORD_DATES:
        try:
            values = [item.get(keyword) for item in _items(ds, path)]
        except Exception:  # a malformed sequence or value: reported as unreadable
            values = ["?"]
        for value in values:
            if isinstance(value, (list, tuple, MultiValue)):
                out.extend(str(v) for v in value)
            elif value is not None:
                out.append(str(value))
    return tuple(dict.fromkeys(v.strip() for v in out if v and v.strip()))


def _header(ds: Dataset, path: str) -> FileHeader:
    modality = _modality(ds)
    fields: dict = {}
    if modality == "RTDOSE":
        plan_uid, group, beams = _dose_references(ds)
        fields = dict(referenced_plan_uid=plan_uid, fraction_group=group, beam_numbers=beams,
                      summation=(_text(ds.get("DoseSummationType")) or "PLAN").upper())
    elif modality == "RTPLAN":
        fields = dict(label=_text(ds.get("RTPlanLabel")), treatment_beams=_treatment_beams(ds),
                      referenced_structure_set_uid=_text(_first(
                          ds, "ReferencedStructureSetSequence", "ReferencedSOPInstanceUID")))
    elif modality == "RTSTRUCT":
        fields = dict(label=_text(ds.get("StructureSetLabel")))
    elif modality == "RTRECORD":
        fields = dict(referenced_plan_uid=_text(_first(
                          ds, "ReferencedRTPlanSequence", "ReferencedSOPInstanceUID")),
                      treatment_dates=_record_dates(ds))
    frame = (_structure_set_frame(ds, []) if modality == "RTSTRUCT"
             else _text(ds.get("FrameOfReferenceUID")))
    return FileHeader(
        path=path, modality=modality, sop_instance_uid=_text(ds.get("SOPInstanceUID")),
        sop_class_uid=_text(ds.get("SOPClassUID")), frame_of_reference_uid=frame,
        patient_id=_text(ds.get("PatientID")), **fields)


def _scan_file(path: str, named: bool) -> FileHeader | None:
    try:
        ds = _read(path, header_only=True, named=named)
        if ds is not None and _modality(ds) == "RTRECORD":  # no pixel data: all was read
            _check_complete(ds, path, os.path.getsize(path), whole_file=True)
        return None if ds is None else _header(ds, path)
    except InputError as exc:
        if named:
            raise
        return FileHeader(path=path, error=exc.message)
    except Exception as exc:  # a corrupt header in an archive must not stop the scan
        if named:
            raise InputError(f"unreadable DICOM header ({_short(exc)})", path) from exc
        return FileHeader(path=path, error=f"unreadable DICOM header ({_short(exc)})")


def walk_files(folder: str | os.PathLike) -> Iterator[str]:
    """Every file under ``folder``, in a stable (sorted) order; hidden files and folders are
    skipped and symlinked folders are not followed (no loops). Non-regular entries (FIFOs...)
    are included: the caller sorts them out without opening them."""
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield os.path.join(root, name)


def _as_list(paths: PathLike | Sequence[PathLike]) -> list[PathLike]:
    return [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)


@_quietly
def scan(paths: PathLike | Sequence[PathLike]) -> list[FileHeader]:
    """Headers of the DICOM files in folders (recursively) and/or named files.

    Files met while walking a folder that are not DICOM are skipped silently, unless named
    like DICOM (``.dcm``, ``.dicom``, ``.dic``, ``.ima``); those, DICOM files that cannot be
    read and anything that is not a regular file (a FIFO or device is never opened: it would
    block) are returned with ``error`` set, saying why they were skipped. Whether a file is
    DICOM is decided from its first 4 KB (a zero-filled file is rejected in microseconds). A
    file named explicitly must be a readable DICOM file (else InputError).

    Parameters
    ----------
    paths : path or sequence of paths
        Folders and/or files.

    Returns
    -------
    list of FileHeader
        In path order; every DICOM file (CT and MR slices included: filter on ``modality``).
    """
    out: list[FileHeader] = []
    for item in _as_list(paths):
        p = Path(item)
        if p.is_dir():
            out.extend(h for h in (_scan_file(f, named=False) for f in walk_files(p)) if h)
        elif p.exists():
            header = _scan_file(str(p), named=True)
            assert header is not None
            out.append(header)
        else:
            raise InputError("no such file or folder", p)
    return out


@dataclass
class PlanGroup:
    """A plan and the files that belong to it, as found by :func:`group_plans`.

    ``plan`` is None for doses or structure sets whose plan is not there. ``missing`` names
    what a complete plan would have but this group lacks (a plan without a dose is reported,
    never dropped); ``notes`` records duplicates and other findings. ``records`` are the
    treatment records (RTRECORD) that name this plan (or, without a plan, the plan the doses
    name); a plan without records is not incomplete.

    ``conflicts`` lists files of this group that share a SOPInstanceUID with another file
    but differ in content, as ``(modality, kept path, other path, message)``: which one is
    the object cannot be told, so :func:`load_plan` refuses the plan (InputError naming both
    files). The messages are in ``notes`` too. Identical copies are only noted.
    """

    plan: FileHeader | None
    doses: list[FileHeader] = field(default_factory=list)
    structure_set: FileHeader | None = None
    missing: list[str] = field(default_factory=list)
    #: The modality of each ``missing`` entry ("RTDOSE", "RTSTRUCT"), in the same order:
    #: what programs read (the sentences are for people).
    missing_parts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    records: list[FileHeader] = field(default_factory=list)
    conflicts: list[tuple[str, str, str, str]] = field(default_factory=list)

    def add_missing(self, part: str, text: str) -> None:
        """Record a missing part (``"RTDOSE"``, ``"RTSTRUCT"``) and its sentence."""
        self.missing.append(text)
        self.missing_parts.append(part)

    def describe(self) -> str:
        if self.plan is not None:
            return self.plan.describe()
        first = (self.doses or [self.structure_set])[0]
        return f"no plan: {first.describe() if first else 'empty'}"

    def files(self) -> list[FileHeader]:
        out = [self.plan, *self.doses, self.structure_set, *self.records]
        return [h for h in out if h is not None]


def _same_content(a: str, b: str) -> bool:
    """True when two files hold the same DICOM object: the same bytes, or (copies written by
    different tools) equal datasets once the file meta group is set aside."""
    try:
        if os.path.getsize(a) == os.path.getsize(b):
            with open(a, "rb") as fa, open(b, "rb") as fb:
                while True:
                    block_a, block_b = fa.read(1 << 20), fb.read(1 << 20)
                    if block_a != block_b:
                        break
                    if not block_a:
                        return True
        datasets = []
        for path in (a, b):
            with open(path, "rb") as f:
                datasets.append(read_partial(f, None, force=True))
        return datasets[0] == datasets[1]
    except Exception:  # unreadable: cannot be shown to be the same object
        return False


def _digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:12]


def _deduplicate(records: Iterable[FileHeader]) -> tuple[list[FileHeader], dict[str, list[str]]]:
    """Records with one per SOPInstanceUID (the first), and the duplicates' paths per UID."""
    kept: dict[str, FileHeader] = {}
    duplicates: dict[str, list[str]] = {}
    for r in records:
        if r.error or r.modality not in RT_MODALITIES:
            continue
        uid = r.sop_instance_uid or r.path
        if uid in kept:
            duplicates.setdefault(uid, []).append(r.path)
        else:
            kept[uid] = r
    return list(kept.values()), duplicates


def _orphan_groups(doses: list[FileHeader], structures: list[FileHeader],
                   records_of: dict[str | None, list[FileHeader]]) -> list[PlanGroup]:
    """Groups without a plan: doses by the plan UID they name (with the treatment records
    that name the same plan), structure sets by frame."""
    by_plan: dict[str, PlanGroup] = {}
    for d in doses:
        key = d.referenced_plan_uid or f"dose:{d.sop_instance_uid}"
        if key not in by_plan:
            reason = (f"plan: RTPLAN {d.referenced_plan_uid} (referenced by the dose) not found"
                      if d.referenced_plan_uid else "plan: the dose references no RTPLAN")
            by_plan[key] = PlanGroup(plan=None, missing=[reason],
                                     records=list(records_of.get(d.referenced_plan_uid, []))
                                     if d.referenced_plan_uid else [])
        by_plan[key].doses.append(d)
    groups = list(by_plan.values())
    for s in structures:
        same_frame = [g for g in groups if g.structure_set is None and g.doses
                      and g.doses[0].frame_of_reference_uid == s.frame_of_reference_uid
                      and s.frame_of_reference_uid]
        if len(same_frame) == 1:
            same_frame[0].structure_set = s
            same_frame[0].notes.append(
                f"structure set {s.path} paired with the dose by frame of reference only")
        else:
            groups.append(PlanGroup(plan=None, structure_set=s,
                                    missing=["plan: no RTPLAN references this structure set",
                                             "dose: no RTDOSE"]))
    for g in groups:
        if g.doses and g.structure_set is None:
            g.add_missing("RTSTRUCT", "structure set: none found for this dose")
    return groups


def group_plans(records: Iterable[FileHeader]) -> list[PlanGroup]:
    """Group scanned headers per plan: each plan with its dose file(s) and structure set.

    Pairing is by UID reference only (dose -> plan, treatment record -> plan, plan ->
    structure set); duplicates (same SOPInstanceUID in several files) are kept once and noted.
    Doses whose plan is absent form groups with ``plan=None`` (with the records naming the
    same plan); a structure set no plan references joins such a group when exactly one has
    its frame of reference, else it forms its own group. Records whose plan is absent and
    that no dose joins belong to no group (:func:`load_plan` notes them).

    Returns
    -------
    list of PlanGroup
        Plans first (in scan order), then the groups without a plan.
    """
    unique, duplicates = _deduplicate(records)
    plans = [r for r in unique if r.modality == "RTPLAN"]
    doses = [r for r in unique if r.modality == "RTDOSE"]
    structs = {r.sop_instance_uid: r for r in unique if r.modality == "RTSTRUCT"}
    plan_uids = {p.sop_instance_uid for p in plans}
    doses_of: dict[str | None, list[FileHeader]] = {}  # by referenced plan: linear, not n^2
    for d in doses:
        doses_of.setdefault(d.referenced_plan_uid, []).append(d)
    records_of: dict[str | None, list[FileHeader]] = {}
    for r in unique:
        if r.modality == "RTRECORD":
            records_of.setdefault(r.referenced_plan_uid, []).append(r)
    groups = []
    for p in plans:
        g = PlanGroup(plan=p, doses=list(doses_of.get(p.sop_instance_uid, [])),
                      records=list(records_of.get(p.sop_instance_uid, [])))
        if not g.doses:
            g.add_missing("RTDOSE", "dose: no RTDOSE references this plan")
        ref = p.referenced_structure_set_uid
        g.structure_set = structs.get(ref) if ref else None
        if g.structure_set is None:
            g.add_missing("RTSTRUCT",
                          f"structure set: RTSTRUCT {ref} (referenced by the plan) not found"
                          if ref else "structure set: the plan references none")
        groups.append(g)
    referenced = {p.referenced_structure_set_uid for p in plans}
    groups += _orphan_groups([d for d in doses if d.referenced_plan_uid not in plan_uids],
                             [s for uid, s in structs.items() if uid not in referenced],
                             records_of)
    for g in groups:
        for h in g.files():
            for path in duplicates.get(h.sop_instance_uid or h.path, []):
                if _same_content(h.path, path):
                    g.notes.append(f"{path} duplicates {h.path} (same SOPInstanceUID, same "
                                   "content): ignored")
                    continue
                message = (f"{h.path} and {path} are two different {h.modality} objects with "
                           f"the same SOPInstanceUID {h.sop_instance_uid} (contents differ: "
                           f"sha256 {_digest(h.path)}... and {_digest(path)}...): which one "
                           "is the plan's cannot be told; remove or fix one of them")
                g.conflicts.append((h.modality, h.path, path, message))
                g.notes.append(message)
    return groups


# --------------------------------------------------------------------------------------
# load_plan
# --------------------------------------------------------------------------------------

def _listing(headers: Iterable[FileHeader]) -> str:
    return "".join(f"\n  - {h.describe()}" for h in headers)


def _choose_group(groups: list[PlanGroup], plan: str | None, where: str | None,
                  need_group: bool) -> PlanGroup | None:
    with_plan = [g for g in groups if g.plan is not None]
    if plan is not None:
        by_uid = [g for g in with_plan if g.plan.sop_instance_uid == plan]
        by_label = [g for g in with_plan if g.plan.label == plan]
        found = by_uid or by_label
        if len(found) == 1:
            return found[0]
        if not found:
            raise InputError(f"no plan with label or UID {plan!r}; plans found:"
                             + (_listing(g.plan for g in with_plan) or " none"), where)
        raise InputError(f"several plans are labelled {plan!r}: choose one by UID with --plan"
                         + _listing(g.plan for g in found), where)
    if len(with_plan) > 1:
        raise InputError(f"{len(with_plan)} plans found; choose one with --plan LABEL_OR_UID:"
                         + _listing(g.plan for g in with_plan), where)
    if with_plan:
        return with_plan[0]
    if len(groups) == 1:
        return groups[0]
    if not groups:
        if need_group:
            raise InputError("no RTPLAN, RTDOSE or RTSTRUCT found", where)
        return None
    if not need_group:
        return None
    raise InputError("no RTPLAN, and the doses and structure sets found do not belong together; "
                     "choose them with --structures FILE --dose FILE:"
                     + _listing(h for g in groups for h in g.files()), where)


def _explicit(paths: PathLike | Sequence[PathLike] | None, modality: str) -> list[FileHeader]:
    if paths is None:
        return []
    out = []
    for p in _as_list(paths):
        header = _scan_file(str(p), named=True)
        assert header is not None
        if header.modality != modality:
            raise InputError(f"is {header.modality or 'an unknown DICOM object'}, "
                             f"not an {modality}", p)
        out.append(header)
    return out


_ONE_FRACTION = ("FRACTION", "FRACTION_SESSION")
_BEAMS = ("BEAM", "BEAM_SESSION")
_WHOLE = ("PLAN", "MULTI_PLAN")


def _fractions_for(plan: Plan | None, group_number: int | None) -> int | None:
    if plan is None:
        return None
    if group_number is not None:
        for g in plan.fraction_groups:
            if g.number == group_number:
                return g.fractions
    return plan.fractions


def _only_one(headers: list[FileHeader], kind: str) -> FileHeader:
    if len(headers) > 1:
        raise InputError(f"{len(headers)} {kind} doses found for this plan; choose one with "
                         "--dose FILE:" + _listing(headers), headers[0].path)
    return headers[0]


def _beam_doses(headers: list[FileHeader], plan_header: FileHeader | None,
                notes: list[str]) -> list[tuple[int, FileHeader]]:
    """The BEAM doses of the plan's treatment beams, one per beam, checked complete."""
    if plan_header is None:
        if len(headers) > 1:
            raise InputError(
                f"{len(headers)} BEAM doses without their RTPLAN: rtcheck cannot check that "
                "every beam is there; give the plan, or a PLAN dose:" + _listing(headers),
                headers[0].path)
        notes.append(f"BEAM dose without its RTPLAN: the dose of beam(s) "
                     f"{', '.join(map(str, headers[0].beam_numbers)) or '?'} only, kept as "
                     "stored; other beams may be missing")
        return [(headers[0].beam_numbers[0] if headers[0].beam_numbers else 0, headers[0])]
    groups = dict(plan_header.treatment_beams)
    wanted_group = next((h.fraction_group for h in headers if h.fraction_group in groups), None)
    if wanted_group is None:
        if len(groups) != 1:
            raise InputError("BEAM doses do not say which of the plan's fraction groups they "
                             "belong to", plan_header.path)
        wanted_group = next(iter(groups))
    by_beam: dict[int, list[FileHeader]] = {}
    for h in headers:
        if not h.beam_numbers:
            raise InputError("BEAM dose does not say which beam it holds "
                             "(no ReferencedBeamNumber)", h.path)
        for n in h.beam_numbers:
            by_beam.setdefault(n, []).append(h)
    expected = groups[wanted_group]
    if not expected:
        raise InputError(
            f"the plan's fraction group {wanted_group} has no beam that delivers dose (every "
            "beam has BeamMeterset 0 or is a setup beam): its BEAM doses cannot be matched",
            plan_header.path)
    missing = [n for n in expected if n not in by_beam]
    if missing:
        raise InputError(
            f"BEAM doses are incomplete: no dose for beam(s) {', '.join(map(str, missing))} of "
            f"fraction group {wanted_group}; doses found:" + _listing(headers), plan_header.path)
    twice = [n for n in expected if len(by_beam[n]) > 1]
    if twice:
        raise InputError(f"several BEAM doses for beam(s) {', '.join(map(str, twice))}; choose "
                         "with --dose FILE..." + _listing(by_beam[twice[0]]), plan_header.path)
    extra = sorted(set(by_beam) - set(expected))
    if extra:
        notes.append(f"BEAM doses for beam(s) {', '.join(map(str, extra))}, not treatment beams "
                     f"of fraction group {wanted_group}, were not added")
    chosen: dict[str, tuple[int, FileHeader]] = {}
    for n in expected:  # a file holding several beams is added once
        chosen.setdefault(by_beam[n][0].path, (n, by_beam[n][0]))
    return list(chosen.values())


def _select_doses(headers: list[FileHeader], explicit: bool, notes: list[str]
                  ) -> tuple[str, list[FileHeader]]:
    """The summation kind to build and its files; other kinds present are noted and unused."""
    kinds = {h.summation or "PLAN" for h in headers}
    unsupported = kinds - set(_WHOLE + _ONE_FRACTION + _BEAMS)
    if unsupported and (explicit or kinds <= unsupported):
        raise InputError(f"DoseSummationType {', '.join(sorted(unsupported))} is not supported "
                         "(PLAN, FRACTION or BEAM doses are)", headers[0].path)
    for family in (_WHOLE, _ONE_FRACTION, _BEAMS):
        chosen = [h for h in headers if h.summation in family]
        if chosen:
            if explicit and len(chosen) != len(headers):
                raise InputError("the doses given mix DoseSummationTypes "
                                 f"({', '.join(sorted(kinds))}): give one kind",
                                 headers[0].path)
            unused = [h for h in headers if h not in chosen]
            if unused:
                others = ", ".join(sorted(kinds - set(family)))
                notes.append(f"{len(unused)} other dose file(s) ({others}) not used: the "
                             f"{chosen[0].summation} dose is preferred")
            return family[0], chosen
    raise AssertionError("unreachable")


def _build_dose(headers: list[FileHeader], plan: Plan | None, plan_header: FileHeader | None,
                explicit: bool, notes: list[str], override: str | None = None
                ) -> DoseGrid | None:
    if not headers:
        return None
    family, chosen = _select_doses(headers, explicit, notes)
    if family == "BEAM":
        beams = _beam_doses(chosen, plan_header, notes)
        grids = [read_dose(h.path) for _, h in beams]
        dose = grids[0] if len(grids) == 1 else sum_doses(grids, [f"beam {n}" for n, _ in beams])
        per_session = any(h.summation == "BEAM_SESSION" for _, h in beams)
    else:
        header = _only_one(chosen, family)
        dose, per_session = read_dose(header.path), family == "FRACTION"
        if header.summation == "MULTI_PLAN":
            notes.append("MULTI_PLAN dose: the summed dose of several plans, used as stored")
    fractions = _fractions_for(plan, chosen[0].fraction_group)
    if override is not None:
        labels = ", ".join(sorted({h.summation or "PLAN" for h in chosen}))
        per_session = override == "FRACTION"
        dose.summation_override = override
        if per_session and not fractions:
            raise InputError(
                f"--dose-summation FRACTION: the dose (DoseSummationType {labels}) cannot be "
                "multiplied by the fractions: "
                + ("there is no RTPLAN" if plan is None
                   else "the plan does not give a single number of fractions"),
                ", ".join(h.path for h in chosen))
        dose.notes.append(
            f"DoseSummationType {labels} overridden by the user (--dose-summation {override}): "
            + (f"the stored dose is one fraction, multiplied by {fractions} fractions"
               if per_session else "the stored dose is the whole course, used as stored "
               "(not multiplied by the fractions)"))
    if per_session:
        if fractions:
            multiply_fractions(dose, fractions)
        else:
            notes.append(
                f"{chosen[0].summation} dose holds one fraction and is kept as stored: the "
                + ("number of fractions is unknown without the RTPLAN" if plan is None
                   else "plan does not give a single number of fractions"))
    return dose


def _check_frames(pairs: list[tuple[str | None, str | None, str | None, str | None]]) -> None:
    """InputError when two paired objects state different frames of reference."""
    for uid_a, path_a, uid_b, path_b in pairs:
        if uid_a and uid_b and uid_a != uid_b:
            raise InputError(
                f"frame of reference mismatch: {path_a} is in {uid_a} but {path_b} is in "
                f"{uid_b}; they do not describe the same patient geometry", path_a)


#: The dose maximum of a whole-course dose, as a multiple of the plan's total dose (its
#: prescription, or its beams' BeamDose x fractions), lies in this band in real plans:
#: conventional plans peak at 1.02-1.15 x, SBRT at 1.1-1.5 x (hot spots of 120-150 %), SRS
#: prescribed to the 50 % isodose at 2 x and to the 30-40 % isodose at 2.5-3.3 x; a
#: simultaneous boost is covered because the largest target prescription is the plan's.
#: Below 0.8 x the target is not treated (or the prescription is not this dose's); a
#: per-fraction dose labelled PLAN gives (1.0-1.5)/n x, caught for n >= 2 (n = 2: 0.5-0.75).
#: Above 3.5 x: a whole-course dose labelled FRACTION and multiplied by n gives n x
#: (1.0-1.5): caught for n >= 3 (Pinnacle exports: n = 5-35), a grid in cGy labelled GY 100 x.
DOSE_MAX_BAND = (0.8, 3.5)
#: The median dose of the hottest target ROI (PTV, CTV or GTV with contours inside the grid),
#: as a multiple of the plan's total dose: ~1.0-1.05 x for a conventional plan prescribed to
#: the target's D50 or D95, 1.1-1.3 x for SBRT, ~1.3 x for SRS prescribed to the 50 % isodose
#: and ~1.6 x at the 30 % isodose (a sphere's median lies at 0.79 of its radius). Below 0.7 x
#: no target is treated to its prescription; above 2.0 x every target would receive twice its
#: prescription, which catches a FRACTION-labelled whole-course dose with n = 2 fractions.
TARGET_MEDIAN_BAND = (0.7, 2.0)
#: Targets whose median is computed for the cross-check (RTROIInterpretedType, or the start of
#: the ROI name when the type is not stated).
_TARGET_TYPES = ("PTV", "CTV", "GTV")


def check_dose_plausibility(dose: DoseGrid, plan: Plan,
                            structure_set: StructureSet | None = None) -> list[str]:
    """Why ``dose`` cannot be the plan's whole-course dose; empty when it can (or when the
    plan states no total dose to compare with).

    The dose is compared with each total dose the plan states: its prescription
    (TargetPrescriptionDose) and its beams' own BeamDose per fraction x fractions (see
    :func:`beams_total_gy`). It agrees with one when its maximum lies within
    :data:`DOSE_MAX_BAND` of it and, when a target ROI (PTV, CTV, GTV) has contours inside
    the grid, the hottest target's median dose lies within :data:`TARGET_MEDIAN_BAND`. The
    dose is implausible when it agrees with none: then each returned text names the numbers
    and, when a factor explains it (the fractions a FRACTION dose was multiplied by, 1/n for a
    per-fraction dose labelled PLAN, 100 for cGy), says so and how to override the label.
    Cost: one max over the grid and a polygon test on the target planes' bounding boxes.
    """
    if dose.units != "GY" or dose.values.size == 0:
        return []
    refs = []
    if plan.prescription_gy:
        refs.append(("the plan's prescription", float(plan.prescription_gy)))
    beams = beams_total_gy(plan.fraction_groups)
    if beams and not any(abs(beams - v) <= 0.01 * v for _, v in refs):
        refs.append(("the beams' BeamDose x fractions", beams))
    if not refs:
        return []
    dmax = float(np.max(dose.values))
    target = _hottest_target_median(dose, structure_set) if structure_set else None

    def agrees(ref: float) -> bool:
        ok = DOSE_MAX_BAND[0] <= dmax / ref <= DOSE_MAX_BAND[1]
        if target is not None:
            ok = ok and TARGET_MEDIAN_BAND[0] <= target[1] / ref <= TARGET_MEDIAN_BAND[1]
        return ok

    if any(agrees(v) for _, v in refs):
        return []
    label, ref = refs[0]
    ratio = dmax / ref
    facts = [(f"dose maximum {dmax:.4g} Gy = {ratio:.3g} x {label} {ref:g} Gy (plausible "
              f"{DOSE_MAX_BAND[0]:g}-{DOSE_MAX_BAND[1]:g} x)")]
    if target is not None:
        facts.append(f"median dose of target {target[0]!r} {target[1]:.4g} Gy = "
                     f"{target[1] / ref:.3g} x (plausible {TARGET_MEDIAN_BAND[0]:g}-"
                     f"{TARGET_MEDIAN_BAND[1]:g} x)")
    for other_label, other in refs[1:]:
        facts.append(f"{dmax / other:.3g} x {other_label} {other:g} Gy")
    return ["; ".join(facts) + ": " + _diagnosis(dose, plan, ratio, target, ref)]


def _diagnosis(dose: DoseGrid, plan: Plan, ratio: float, target: tuple[str, float] | None,
               ref: float) -> str:
    """The likely explanation of an implausible dose/plan ratio, and what to do."""
    # The ratio the dose would have with a factor f removed, judged on the maximum (and the
    # target median when known).
    def fits(f: float) -> bool:
        ok = DOSE_MAX_BAND[0] <= ratio / f <= DOSE_MAX_BAND[1]
        if target is not None:
            ok = ok and TARGET_MEDIAN_BAND[0] <= target[1] / ref / f <= TARGET_MEDIAN_BAND[1]
        return ok

    label = dose.summation
    n = dose.fractions_applied
    fractions = plan.fractions
    override = dose.summation_override
    if override:
        return (f"the dose disagrees with the plan even with the summation given "
                f"(--dose-summation {override}): it does not belong to this plan, or its "
                "scaling or units are wrong; not evaluated")
    if n and fits(n):
        return (f"a {label} dose multiplied by {n} fractions: was it already the whole course "
                "(Pinnacle exports label whole-course doses FRACTION)? If so, use "
                "--dose-summation PLAN")
    if not n and fractions and fractions > 1 and fits(1 / fractions):
        return (f"a per-fraction dose labelled {label} (1/{fractions} of the course)? If so, "
                "use --dose-summation FRACTION")
    if fits(100.0) or (n and fits(100.0 * n)):
        return "a dose in cGy labelled GY (100 x too high)? The RTDOSE's DoseGridScaling is wrong"
    if fits(0.01):
        return "a dose 100 x too low (DoseGridScaling in the wrong unit?)"
    return ("the dose does not belong to this plan, or its summation type, scaling or units are "
            "wrong; not evaluated")


def _is_target(s: Structure) -> bool:
    kind = (s.roi_type or "").strip().upper()
    if kind:
        return kind in _TARGET_TYPES
    return s.name.strip().upper()[:3] in _TARGET_TYPES


def _hottest_target_median(dose: DoseGrid, ss: StructureSet) -> tuple[str, float] | None:
    """(name, median dose) of the target ROI with the highest median over its voxels inside
    the grid; None without such a target. Complete targets only (no ``problems``)."""
    best = None
    for s in ss.structures:
        if not s.contours or s.problems or not _is_target(s):
            continue
        values = _dose_inside(dose, s)
        if values.size:
            median = float(np.median(values))
            if best is None or median > best[1]:
                best = (s.name, median)
    return best


def _polygon_mask(xy: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Grid points (gy rows x gx columns) inside the polygon ``xy`` (even-odd ray casting)."""
    inside = np.zeros((gy.size, gx.size), dtype=bool)
    px, py = xy[:, 0], xy[:, 1]
    for xa, ya, xb, yb in zip(np.roll(px, 1), np.roll(py, 1), px, py):
        if ya == yb:
            continue
        rows = (ya > gy) != (yb > gy)
        if not rows.any():
            continue
        xi = xa + (gy[rows] - ya) * (xb - xa) / (yb - ya)
        inside[rows] ^= gx[None, :] < xi[:, None]
    return inside


def _dose_inside(dose: DoseGrid, s: Structure) -> np.ndarray:
    """Dose at the grid's (x, y) voxel centres inside the structure's contours, on each
    contour plane within the grid (linear between the two nearest frames)."""
    z = dose.z
    half = float(z[1] - z[0]) / 2 if z.size > 1 else 0.5
    out = []
    for zc, polygons in s.planes().items():
        if not z[0] - half <= zc <= z[-1] + half:
            continue
        lo_xy = np.min([p.min(axis=0) for p in polygons], axis=0)
        hi_xy = np.max([p.max(axis=0) for p in polygons], axis=0)
        ix = np.flatnonzero((dose.x >= lo_xy[0]) & (dose.x <= hi_xy[0]))
        iy = np.flatnonzero((dose.y >= lo_xy[1]) & (dose.y <= hi_xy[1]))
        if ix.size == 0 or iy.size == 0:
            continue
        gx, gy = dose.x[ix], dose.y[iy]
        mask = np.zeros((iy.size, ix.size), dtype=bool)
        for p in polygons:
            mask ^= _polygon_mask(p, gx, gy)
        if not mask.any():
            continue
        k = int(np.clip(np.searchsorted(z, zc) - 1, 0, max(z.size - 2, 0)))
        if z.size == 1:
            plane = dose.values[0][np.ix_(iy, ix)]
        else:
            t = float(np.clip((zc - z[k]) / (z[k + 1] - z[k]), 0.0, 1.0))
            plane = ((1 - t) * dose.values[k][np.ix_(iy, ix)]
                     + t * dose.values[k + 1][np.ix_(iy, ix)])
        out.append(plane[mask])
    return np.concatenate(out) if out else np.zeros(0)


def _check_targets_in_grid(dose: DoseGrid, ss: StructureSet, notes: list[str]) -> None:
    """Warn when no target ROI has a contour within the dose grid's z range.

    The DVH engine reports each structure's coverage; this catches the systematic case
    (a dose that belongs elsewhere, or a feet-first grid whose frame offsets its writer
    measured along +z rather than along the row x column normal, which mirrors it in z).
    """
    targets = [s for s in ss.structures
               if s.contours and (s.roi_type or "").upper() in _TARGET_TYPES]
    if not targets or dose.z.size == 0:
        return
    half = float(dose.z[1] - dose.z[0]) / 2 if dose.z.size > 1 else 0.0
    lo, hi = float(dose.z[0]) - half - 1e-3, float(dose.z[-1]) + half + 1e-3
    if any(lo <= c.z <= hi for s in targets for c in s.contours):
        return
    zs = [c.z for s in targets for c in s.contours]
    notes.append(
        f"no target ROI ({', '.join(s.name for s in targets)}) has a contour within the dose "
        f"grid (z {lo:g}..{hi:g} mm; targets at z {min(zs):g}..{max(zs):g} mm): the dose does "
        "not belong to these structures, or (feet-first grids) its frame offsets were written "
        "along +z instead of along the normal DICOM defines")


@_quietly
@_guarded("plan")
def load_plan(path_or_paths: PathLike | Sequence[PathLike] | None = None,
              plan: str | None = None,
              structures: PathLike | None = None,
              dose: PathLike | Sequence[PathLike] | None = None,
              dose_summation: str | None = None) -> PlanData:
    """Load a plan with its dose and structure set, paired and checked.

    Parameters
    ----------
    path_or_paths : path, sequence of paths, or None
        Folders (searched recursively; CT/MR slices and non-DICOM files are skipped) and/or
        files. A file named here must be DICOM.
    plan : str, optional
        RTPlanLabel or SOPInstanceUID of the plan to use when several are found.
    structures : path, optional
        The RTSTRUCT to use (overrides the one the plan references).
    dose : path or sequence of paths, optional
        The RTDOSE file(s) to use (several for BEAM doses). With ``structures`` and no plan,
        doses are as stored and the number of fractions is unknown.
    dose_summation : {"PLAN", "FRACTION"}, optional
        Overrides the RTDOSE's DoseSummationType label, for a user who knows better than the
        file: ``"PLAN"`` takes the stored dose (or the sum of BEAM doses) as the whole course,
        never multiplied by the fractions (Pinnacle labels whole-course doses FRACTION);
        ``"FRACTION"`` takes it as one fraction and multiplies it by the plan's fractions
        (InputError when they are unknown). Recorded in ``DoseGrid.summation_override`` and
        in the dose's notes (hence the warnings).

    Returns
    -------
    PlanData
        ``warnings`` gathers every note: how the dose was built (beams summed, fractions
        multiplied, the summation override), the plan's prescription notes, the structure
        set's warnings, missing parts, the files skipped and why (unreadable, not DICOM though
        named like it, not regular files such as FIFOs), treatment records not counted.
        ``dose.problems`` says why the dose must not become a verdict: it disagrees with the
        plan (see :func:`check_dose_plausibility`: the factors and why), or is a DoseType
        ERROR grid; each problem is also a warning. ``structure_set.structures[i].problems``
        says which structures are incomplete (contours skipped).
        ``treatment_dates`` and ``treatment_records``: the delivery dates found in the
        treatment records (RTRECORD) that reference the selected plan, and their files. A
        record whose date is not readable, or that states none, is a warning naming it; a
        record of a plan that is not among the files found is not counted, with a warning; a
        record of another plan found is that plan's (not counted, no warning).

    Raises
    ------
    InputError
        Several plans and no ``plan``; an ambiguous or unknown ``plan``; several whole-plan
        doses; an incomplete set of BEAM doses (a beam with monitor units needs its dose,
        whatever its BeamDose); mismatched frames of reference; unreadable, truncated or
        non-DICOM files named explicitly; two files of the plan with one SOPInstanceUID and
        different content; any RTDOSE, RTPLAN or RTSTRUCT value that lies (see
        :func:`read_dose`, :func:`read_plan`); ``dose_summation`` not PLAN or FRACTION.

    Notes
    -----
    Dose summation:

    - PLAN (and MULTI_PLAN): used as stored. Preferred when several kinds are present.
    - FRACTION (one fraction, as planning systems export it; FRACTION_SESSION likewise):
      multiplied by the plan's NumberOfFractionsPlanned (``DoseGrid.fractions_applied``).
      Without a plan it is kept as stored, with a warning.
    - BEAM: the doses of every treatment beam of the plan's fraction group are summed (a
      missing beam is an error); grids that differ are resampled onto the first grid by
      trilinear interpolation and must cover it. BEAM_SESSION sums are then multiplied by
      the fractions. A single BEAM dose without a plan is kept as stored, with a warning.
    - ``dose_summation`` overrides the label (PLAN: as stored; FRACTION: multiplied).

    Plausibility (:func:`check_dose_plausibility`): the dose so built is compared with the
    plan's prescription and its beams' BeamDose x fractions. Its maximum must lie within
    0.8-3.5 x one of them (:data:`DOSE_MAX_BAND`: SBRT hot spots reach 1.5 x, SRS at the
    30 % isodose 3.3 x; a per-fraction dose labelled PLAN is 1/n, a whole-course dose
    labelled FRACTION and multiplied is n x, a cGy grid 100 x) and, when a target ROI lies
    in the grid, the hottest target's median dose within 0.7-2.0 x
    (:data:`TARGET_MEDIAN_BAND`). Otherwise ``dose.problems`` says so with the numbers.

    Treatment dates: a plan's RTPlanDate is when it was made; when it was delivered is in
    its treatment records (one per session, as treatment systems export them). Every date a
    record states is collected: its TreatmentDate, the TreatmentControlPointDate of each
    delivered control point (and a TreatmentDate in beam items, which some systems write),
    the dates of an RT Treatment Summary Record. Records are only found in
    ``path_or_paths`` (folders or files).
    """
    where = None if path_or_paths is None else ", ".join(map(str, _as_list(path_or_paths)))
    override = _summation_override(dose_summation)
    notes: list[str] = []
    records = scan(path_or_paths) if path_or_paths is not None else []
    notes += [f"{r.path}: skipped ({r.error})" for r in records if r.error]
    given_structures = _explicit(structures, "RTSTRUCT")
    given_doses = _explicit(dose, "RTDOSE")
    groups = group_plans(records)
    referenced = {h.referenced_plan_uid for h in given_doses}
    if plan is None and len(referenced) == 1 and any(
            g.plan and g.plan.sop_instance_uid in referenced for g in groups):
        plan = referenced.pop()  # the dose given names its plan: no choice to make
    group = _choose_group(groups, plan, where, need_group=not (given_structures or given_doses))
    plan_header = group.plan if group else None
    if group is not None:
        _refuse_conflicts(group, bool(given_doses), bool(given_structures))
        notes += group.notes
        missing = [m for m, part in zip(group.missing, group.missing_parts)
                   if not (part == "RTDOSE" and given_doses)
                   and not (part == "RTSTRUCT" and given_structures)]
        _unreadable_may_be_missing(records, missing, where)
        notes += [f"{(plan_header or group.files()[0]).path}: missing {m}" for m in missing]
    plan_obj = read_plan(plan_header.path) if plan_header else None
    dose_headers = given_doses or (group.doses if group else [])
    if plan_obj is not None:
        for h in given_doses:
            if h.referenced_plan_uid and h.referenced_plan_uid != plan_obj.uid:
                notes.append(f"{h.path}: references plan {h.referenced_plan_uid}, not the "
                             f"selected plan {plan_obj.label or plan_obj.uid}")
    struct_header = (given_structures[0] if given_structures
                     else group.structure_set if group else None)
    if given_structures and plan_header and plan_header.referenced_structure_set_uid not in (
            None, struct_header.sop_instance_uid):
        notes.append(f"{struct_header.path}: is not the structure set the plan references "
                     f"({plan_header.referenced_structure_set_uid})")
    _check_frames(_frame_pairs(plan_header, dose_headers, struct_header))
    dose_grid = _build_dose(dose_headers, plan_obj, plan_header, bool(given_doses), notes,
                            override)
    ss = read_structure_set(struct_header.path) if struct_header else None
    if plan_obj is None:
        notes.append("no RTPLAN: doses are as stored in the RTDOSE and the number of "
                     "fractions is unknown")
    else:
        notes = plan_obj.notes + notes
        if dose_grid is not None:
            dose_grid.problems.extend(check_dose_plausibility(dose_grid, plan_obj, ss))
    if dose_grid is not None:
        notes += dose_grid.notes
        notes += [f"dose not usable for a verdict: {p}" for p in dose_grid.problems]
    if ss is not None:
        notes += ss.warnings
        if dose_grid is not None:
            _check_targets_in_grid(dose_grid, ss, notes)
    own = group.records if group else []
    dates = _treatment_dates(own, plan_obj, notes)
    _other_records(records, groups, notes)
    return PlanData(plan=plan_obj, dose=dose_grid, structure_set=ss,
                    warnings=list(dict.fromkeys(notes)), treatment_dates=dates,
                    treatment_records=[r.path for r in own])


def _summation_override(value: str | None) -> str | None:
    if value is None:
        return None
    text = str(value).strip().upper()
    if text not in ("PLAN", "FRACTION"):
        raise InputError(f"dose summation override {value!r} is neither PLAN nor FRACTION")
    return text


def _refuse_conflicts(group: PlanGroup, given_doses: bool, given_structures: bool) -> None:
    """InputError when a file of the plan has a twin with the same UID and other content
    (a dose or structure set the user chose explicitly is not in doubt)."""
    for modality, _, _, message in group.conflicts:
        if (modality == "RTDOSE" and given_doses) or (modality == "RTSTRUCT"
                                                      and given_structures):
            continue
        raise InputError(message)


def _treatment_dates(own: list[FileHeader], plan: Plan | None,
                     notes: list[str]) -> list[_dt.date]:
    """The sorted, unique delivery dates of the plan's records; what cannot be read is noted."""
    dates: set[_dt.date] = set()
    for r in own:
        found = []
        for raw in r.treatment_dates:
            day = _date(raw)
            if day is None:
                notes.append(f"{r.path}: treatment date {raw!r} is not a readable date "
                             "(YYYYMMDD): ignored, so this record's delivery dates may be "
                             "incomplete")
            else:
                found.append(day)
        if not found and not any(_date(raw) is None for raw in r.treatment_dates):
            notes.append(f"{r.path}: treatment record states no treatment date: the delivery "
                         "it records is not dated")
        dates.update(found)
        if plan is not None and plan.patient_id and r.patient_id not in (None, plan.patient_id):
            notes.append(f"{r.path}: treatment record of patient {r.patient_id!r} references "
                         f"the plan of patient {plan.patient_id!r}; its dates are counted")
    return sorted(dates)


def _other_records(records: list[FileHeader], groups: list[PlanGroup],
                   notes: list[str]) -> None:
    """Note the treatment records whose plan is not among the files found: their deliveries
    count for no plan (a record of a replaced plan may hold a course's last fraction).

    Records of another plan that was found belong to that plan and are not mentioned.
    """
    known = ({g.plan.sop_instance_uid for g in groups if g.plan is not None}
             | {d.referenced_plan_uid for g in groups if g.plan is None for d in g.doses})
    for r in records:
        if r.modality != "RTRECORD" or r.error or (
                r.referenced_plan_uid and r.referenced_plan_uid in known):
            continue
        what = (f"references plan {r.referenced_plan_uid}, which is not among the files found"
                if r.referenced_plan_uid else
                "references no RTPLAN (it names none, or the file is cut short)")
        notes.append(f"{r.path}: treatment record {what}: its dates are not counted")


def _unreadable_may_be_missing(records: list[FileHeader], missing: list[str],
                               where: str | None) -> None:
    """A part of the plan is missing and some files could not be read: say which, loudly.

    A truncated RTDOSE in the plan's folder would otherwise surface as "no dose".
    """
    bad = [r for r in records if r.error]
    if bad and missing:
        raise InputError(
            f"{'; '.join(missing)}; these files could not "
            "be read and may be the missing part:"
            + "".join(f"\n  - {r.path}: {r.error}" for r in bad), where)


def _frame_pairs(plan: FileHeader | None, doses: list[FileHeader],
                 structure_set: FileHeader | None):
    objects = [h for h in (plan, *doses, structure_set) if h is not None]
    return [(a.frame_of_reference_uid, a.path, b.frame_of_reference_uid, b.path)
            for i, a in enumerate(objects) for b in objects[i + 1:]]
