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
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from rtcheck.dose import dose_grid_from_dataset, multiply_fractions, sum_doses
from rtcheck.errors import InputError
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
#: A dose maximum outside [LOW, HIGH] x prescription is suspicious (see _check_against_rx).
RX_RATIO_LOW, RX_RATIO_HIGH = 0.5, 3.0

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


def _looks_like_dicom(head: bytes) -> tuple[bool, bool]:
    """(is DICOM, has file meta) from a file's first 132 bytes.

    A Part 10 file has 'DICM' at byte 128. Some exports (older CMS/Elekta, pydicom's own
    rtstruct.dcm) hold a bare little-endian dataset instead, which starts with a group 0002
    or 0008 tag; anything else is not DICOM, which keeps folder scans fast.
    """
    if len(head) >= 132 and head[128:132] == b"DICM":
        return True, True
    if len(head) >= 8 and head[:2] in (b"\x02\x00", b"\x08\x00"):
        return True, False
    return False, False


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
    try:
        with open(where, "rb") as f:
            head = f.read(132)
        size = os.path.getsize(where)
    except OSError as exc:
        raise InputError(f"cannot open the file ({exc.strerror or exc})", where) from exc
    is_dicom, has_meta = _looks_like_dicom(head)
    if not is_dicom:
        if named:
            raise InputError("not a DICOM file", where)
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = dcmread(where, stop_before_pixels=header_only, force=not has_meta)
        except Exception as exc:  # pydicom raises many types on bad bytes
            raise InputError(f"not a readable DICOM file: truncated or corrupt ({_short(exc)})",
                             where) from exc
    if any("EOF" in str(w.message) or "end of file" in str(w.message).lower() for w in caught):
        raise InputError("truncated DICOM file (ends inside a sequence)", where)
    _check_complete(ds, where, size, whole_file=not header_only)
    if not has_meta and not (ds.get("SOPClassUID") or ds.get("Modality")):
        if named:
            raise InputError("not a DICOM file (no SOP class, no modality)", where)
        return None
    return ds


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
    """Per-ROI counts of what was skipped, turned into warnings once all contours are read."""

    def __init__(self) -> None:
        self.short = 0
        self.bad = 0
        self.nonplanar = 0
        self.nonplanar_span = 0.0
        self.ignored: dict[str, int] = {}

    def messages(self, label: str) -> list[str]:
        out = []
        if self.nonplanar:
            out.append(
                f"{label}: {self.nonplanar} contour(s) not on an axial plane (z varies by up to "
                f"{self.nonplanar_span:.3g} mm within a contour); rtcheck needs axial contours, "
                "so this ROI's contours were dropped and it has no DVH")
        if self.short:
            out.append(f"{label}: {self.short} contour(s) with fewer than 3 points skipped")
        if self.bad:
            out.append(f"{label}: {self.bad} contour(s) with unreadable ContourData skipped")
        for kind, n in sorted(self.ignored.items()):
            out.append(f"{label}: {n} {kind} contour(s) ignored (not a closed contour or point)")
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
        except ValueError:
            report.bad += 1
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


def _fraction_groups(ds: Dataset) -> list[FractionGroup]:
    groups = []
    for i, item in enumerate(ds.get("FractionGroupSequence") or [], start=1):
        beams, doses = [], {}
        for ref in item.get("ReferencedBeamSequence") or []:
            number = _int(ref.get("ReferencedBeamNumber"))
            if number is None:
                continue
            beams.append(number)
            dose = _float(ref.get("BeamDose"))
            if dose is not None:
                doses[number] = dose
        groups.append(FractionGroup(
            number=_int(item.get("FractionGroupNumber")) or i,
            fractions=_int(item.get("NumberOfFractionsPlanned")),
            beam_numbers=tuple(beams), beam_doses_gy=doses))
    return groups


def _prescription(ds: Dataset, groups: list[FractionGroup], notes: list[str]) -> float | None:
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
        dose = _float(item.get("TargetPrescriptionDose"))
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


def _prescription_from_beams(groups: list[FractionGroup], notes: list[str]) -> float | None:
    total = 0.0
    for g in groups:
        if not g.fractions or not g.beam_numbers or set(g.beam_doses_gy) != set(g.beam_numbers):
            return None
        total += sum(g.beam_doses_gy.values()) * g.fractions
    if total <= 0:
        return None
    notes.append(f"no target prescription dose in the plan: prescription taken as the sum of "
                 f"beam doses x fractions, {total:g} Gy")
    return total


@_quietly
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
    groups = _fraction_groups(ds)
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
        prescription_gy=_prescription(ds, groups, notes),
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
    out = []
    for i, item in enumerate(ds.get("FractionGroupSequence") or [], start=1):
        beams = []
        for ref in item.get("ReferencedBeamSequence") or []:
            number = _int(ref.get("ReferencedBeamNumber"))
            meterset, dose = _float(ref.get("BeamMeterset")), _float(ref.get("BeamDose"))
            if number is not None and meterset != 0 and dose != 0:
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


def _walk(folder: Path) -> Iterator[str]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield os.path.join(root, name)


def _as_list(paths: PathLike | Sequence[PathLike]) -> list[PathLike]:
    return [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)


@_quietly
def scan(paths: PathLike | Sequence[PathLike]) -> list[FileHeader]:
    """Headers of the DICOM files in folders (recursively) and/or named files.

    Files met while walking a folder that are not DICOM are skipped silently; DICOM files
    that cannot be read are returned with ``error`` set. A file named explicitly must be a
    readable DICOM file (else InputError).

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
            out.extend(h for h in (_scan_file(f, named=False) for f in _walk(p)) if h)
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
    """

    plan: FileHeader | None
    doses: list[FileHeader] = field(default_factory=list)
    structure_set: FileHeader | None = None
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    records: list[FileHeader] = field(default_factory=list)

    def describe(self) -> str:
        if self.plan is not None:
            return self.plan.describe()
        first = (self.doses or [self.structure_set])[0]
        return f"no plan: {first.describe() if first else 'empty'}"

    def files(self) -> list[FileHeader]:
        out = [self.plan, *self.doses, self.structure_set, *self.records]
        return [h for h in out if h is not None]


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
            g.missing.append("structure set: none found for this dose")
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
            g.missing.append("dose: no RTDOSE references this plan")
        ref = p.referenced_structure_set_uid
        g.structure_set = structs.get(ref) if ref else None
        if g.structure_set is None:
            g.missing.append(f"structure set: RTSTRUCT {ref} (referenced by the plan) not found"
                             if ref else "structure set: the plan references none")
        groups.append(g)
    referenced = {p.referenced_structure_set_uid for p in plans}
    groups += _orphan_groups([d for d in doses if d.referenced_plan_uid not in plan_uids],
                             [s for uid, s in structs.items() if uid not in referenced],
                             records_of)
    for g in groups:
        for h in g.files():
            for path in duplicates.get(h.sop_instance_uid or h.path, []):
                g.notes.append(f"{path} duplicates {h.path} (same SOPInstanceUID): ignored")
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
                explicit: bool, notes: list[str]) -> DoseGrid | None:
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
    if per_session:
        fractions = _fractions_for(plan, chosen[0].fraction_group)
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


def _check_against_rx(dose: DoseGrid, plan: Plan, notes: list[str]) -> None:
    """Warn when the dose maximum is implausible for the plan's prescription.

    A whole-plan dose peaks near the prescription (radiosurgery prescribed to the 50 %
    isodose reaches 2x). A maximum below half the prescription usually means a per-fraction
    dose stored as PLAN; above 3x, a FRACTION dose that already held every fraction.
    """
    if dose.units != "GY" or not plan.prescription_gy or dose.values.size == 0:
        return
    dmax = float(np.max(dose.values))
    ratio = dmax / plan.prescription_gy
    if ratio < RX_RATIO_LOW or ratio > RX_RATIO_HIGH:
        notes.append(
            f"dose maximum {dmax:.3g} Gy is {ratio:.2g} x the plan's prescription "
            f"{plan.prescription_gy:g} Gy: check that the dose is the whole plan's "
            f"(DoseSummationType {dose.summation}"
            + (f", multiplied by {dose.fractions_applied} fractions)" if dose.fractions_applied
               else ")"))


_TARGET_TYPES = ("PTV", "CTV", "GTV")


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
def load_plan(path_or_paths: PathLike | Sequence[PathLike] | None = None,
              plan: str | None = None,
              structures: PathLike | None = None,
              dose: PathLike | Sequence[PathLike] | None = None) -> PlanData:
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

    Returns
    -------
    PlanData
        ``warnings`` gathers every note: how the dose was built (beams summed, fractions
        multiplied), the plan's prescription notes, the structure set's warnings, missing
        parts, skipped unreadable files, treatment records not counted.
        ``treatment_dates`` and ``treatment_records``: the delivery dates found in the
        treatment records (RTRECORD) that reference the selected plan, and their files. A
        record whose date is not readable, or that states none, is a warning naming it; a
        record of a plan that is not among the files found is not counted, with a warning; a
        record of another plan found is that plan's (not counted, no warning).

    Raises
    ------
    InputError
        Several plans and no ``plan``; an ambiguous or unknown ``plan``; several whole-plan
        doses; an incomplete set of BEAM doses; mismatched frames of reference; unreadable,
        truncated or non-DICOM files named explicitly.

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

    Treatment dates: a plan's RTPlanDate is when it was made; when it was delivered is in
    its treatment records (one per session, as treatment systems export them). Every date a
    record states is collected: its TreatmentDate, the TreatmentControlPointDate of each
    delivered control point (and a TreatmentDate in beam items, which some systems write),
    the dates of an RT Treatment Summary Record. Records are only found in
    ``path_or_paths`` (folders or files).
    """
    where = None if path_or_paths is None else ", ".join(map(str, _as_list(path_or_paths)))
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
        notes += group.notes
        missing = [m for m in group.missing
                   if not (m.startswith("dose") and given_doses)
                   and not (m.startswith("structure") and given_structures)]
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
    dose_grid = _build_dose(dose_headers, plan_obj, plan_header, bool(given_doses), notes)
    ss = read_structure_set(struct_header.path) if struct_header else None
    if plan_obj is None:
        notes.append("no RTPLAN: doses are as stored in the RTDOSE and the number of "
                     "fractions is unknown")
    else:
        notes = plan_obj.notes + notes
        if dose_grid is not None:
            _check_against_rx(dose_grid, plan_obj, notes)
    if dose_grid is not None:
        notes += dose_grid.notes
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
    if bad and any(not m.startswith("plan") for m in missing):
        raise InputError(
            f"{'; '.join(m for m in missing if not m.startswith('plan'))}; these files could not "
            "be read and may be the missing part:"
            + "".join(f"\n  - {r.path}: {r.error}" for r in bad), where)


def _frame_pairs(plan: FileHeader | None, doses: list[FileHeader],
                 structure_set: FileHeader | None):
    objects = [h for h in (plan, *doses, structure_set) if h is not None]
    return [(a.frame_of_reference_uid, a.path, b.frame_of_reference_uid, b.path)
            for i, a in enumerate(objects) for b in objects[i + 1:]]
