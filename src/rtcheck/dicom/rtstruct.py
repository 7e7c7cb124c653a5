"""Reading an RTSTRUCT into a :class:`~rtcheck.model.StructureSet`.

CLOSED_PLANAR contours become :class:`~rtcheck.model.Contour` objects and POINT contours
``Structure.points``; what cannot be used (open contours, unreadable or non-finite
coordinates, contours not on an axial plane) is skipped, counted per ROI, and reported both
as warnings and as each structure's ``problems``. Also gives a structure set's frame of
reference (:func:`structure_set_frame`), which a folder scan records.

Leans on :mod:`rtcheck.dicom.read` (opening, value parsers) and :mod:`rtcheck.model`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from pydicom.dataset import Dataset

from rtcheck.dicom.read import (
    PathLike,
    as_int,
    as_text,
    expect_modality,
    guarded,
    open_dataset,
    quietly,
)
from rtcheck.errors import InputError
from rtcheck.model import MAX_COORDINATE_MM, Contour, Structure, StructureSet

#: Contours whose points' z differ by more than this (mm) are not on one axial plane.
PLANAR_TOLERANCE_MM = 0.01

_CONTOUR_DATA = 0x30060050
_CLOSED_TYPES = ("CLOSED_PLANAR", "CLOSEDPLANAR_XOR")


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
            out.append(f"{self._nonplanar()}: all of its contours dropped")
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

    def _nonplanar(self) -> str:
        """The sentence's head for the contours not on an axial plane."""
        return (f"{self.nonplanar} contour(s) not on an axial plane (z varies by up to "
                f"{self.nonplanar_span:.3g} mm within a contour)")

    def messages(self, label: str) -> list[str]:
        """The warnings for the structure set: :meth:`problems`, each prefixed by ``label``,
        the non-axial one saying what it costs (no DVH)."""
        out = []
        for text in self.problems():
            if self.nonplanar and text.startswith(self._nonplanar()):
                text = (f"{self._nonplanar()}; rtcheck needs axial contours, so this ROI's "
                        "contours were dropped and it has no DVH")
            out.append(f"{label}: {text}")
        return out


def _add_contours(structure: Structure, items: Iterable[Dataset], report: _RoiReport) -> None:
    """Add the usable contours of ``items`` (a ContourSequence) to ``structure``; count the
    others in ``report`` and record them as the structure's ``problems``."""
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


def structure_set_frame(ds: Dataset, warn: list[str]) -> str | None:
    """The frame of reference of a structure set (top level, or its referenced frames)."""
    top = as_text(ds.get("FrameOfReferenceUID"))
    if top:
        return top
    uids = [u for u in (as_text(i.get("FrameOfReferenceUID"))
                        for i in ds.get("ReferencedFrameOfReferenceSequence") or []) if u]
    uids = list(dict.fromkeys(uids))
    if not uids:
        uids = list(dict.fromkeys(u for u in (
            as_text(r.get("ReferencedFrameOfReferenceUID"))
            for r in ds.get("StructureSetROISequence") or []) if u))
    if len(uids) > 1:
        warn.append(f"structure set refers to {len(uids)} frames of reference; using the first "
                    f"({uids[0]}) for consistency checks")
    return uids[0] if uids else None


@quietly
@guarded("RTSTRUCT")
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
    ds, where = open_dataset(source)
    expect_modality(ds, "RTSTRUCT", where)
    for keyword in ("StructureSetROISequence", "ROIContourSequence"):
        if keyword not in ds:  # both Type 1: missing means a cut or incomplete file
            raise InputError(f"RTSTRUCT has no {keyword} (incomplete or truncated file)", where)
    warn: list[str] = []
    if "RTROIObservationsSequence" not in ds:
        warn.append("no RTROIObservationsSequence (incomplete file?): ROI types are unknown")
    structures: dict[int, Structure] = {}
    for item in ds.get("StructureSetROISequence") or []:
        number = as_int(item.get("ROINumber"))
        if number is None:
            warn.append("a StructureSetROISequence item has no ROINumber: ignored")
            continue
        if number in structures:
            warn.append(f"ROI number {number} is defined twice; the second one is ignored")
            continue
        structures[number] = Structure(number=number, name=str(item.get("ROIName", "") or ""))
    for item in ds.get("RTROIObservationsSequence") or []:
        referenced = as_int(item.get("ReferencedROINumber"))
        s = structures.get(referenced) if referenced is not None else None
        if s is not None and s.roi_type is None:
            s.roi_type = as_text(item.get("RTROIInterpretedType"))
    dropped: set[int] = set()  # ROIs whose contours were dropped (non-axial): already explained
    for item in ds.get("ROIContourSequence") or []:
        number = as_int(item.get("ReferencedROINumber"))
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
        uid=as_text(ds.get("SOPInstanceUID")),
        label=as_text(ds.get("StructureSetLabel")),
        frame_of_reference_uid=structure_set_frame(ds, warn),
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
