"""Reading an RTSTRUCT into a :class:`~rtcheck.model.StructureSet`.

CLOSED_PLANAR contours become :class:`~rtcheck.model.Contour` objects and POINT contours
``Structure.points``; what cannot be used (open contours, unreadable or non-finite
coordinates, contours not on an axial plane) is skipped, counted per ROI, and reported both
as warnings and as each structure's ``problems``. Also gives a structure set's frame of
reference (:func:`structure_set_frame`), which a folder scan records.

Leans on :mod:`rtcheck.dicom.read` (opening, value parsers) and :mod:`rtcheck.model`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

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
from rtcheck.model import (
    MAX_COORDINATE_MM,
    Contour,
    Structure,
    StructureSet,
    common_plane_spacing,
)

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


#: ``contours=`` of :func:`read_structure_set`: read every ROI's contours now, or each ROI's
#: on its first use.
CONTOUR_MODES = ("all", "when_used")


class _ContoursWhenUsed(Structure):
    """A :class:`Structure` whose contour data are read from the RTSTRUCT on first use of
    ``contours``, ``points`` or ``problems`` (``read_structure_set(contours="when_used")``).

    The file's ContourSequence items are parsed (pydicom) and their ContourData read only
    then: a check needs a few ROIs of a structure set, and reading them all (a BODY and the
    lungs: 80 % of a breast plan's points) was most of its time. Pickling and copying read
    them first.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # Structure's (dataclasses.replace)
        self.__dict__.update(_pending=[], _done=True, _lock=threading.RLock())
        super().__init__(*args, **kwargs)

    def defer(self, read: Callable[[Structure], None]) -> None:
        """Run ``read(self)`` before the contour data are first used."""
        self.__dict__["_pending"].append(read)
        self.__dict__["_done"] = False

    def _read(self) -> None:
        state = self.__dict__
        if state["_done"]:  # set only once every reader has run
            return
        with state["_lock"]:  # another thread waits for the whole ROI
            if "_failed" in state:  # never part of an ROI after an error
                raise state["_failed"]
            pending = state["_pending"]
            if state["_done"] or not pending:
                return  # done meanwhile, or this thread's reader using ``contours``
            state["_pending"] = []  # all at once: the readers use ``contours`` themselves
            try:
                for read in pending:
                    read(self)
            except BaseException as exc:
                state["_failed"] = exc
                raise
            state["_done"] = True

    def _get(self, key: str) -> Any:
        self._read()
        return self.__dict__[key]

    contours = property(lambda self: self._get("_contours"),
                        lambda self, value: self.__dict__.__setitem__("_contours", value))
    points = property(lambda self: self._get("_points"),
                      lambda self, value: self.__dict__.__setitem__("_points", value))
    problems = property(lambda self: self._get("_problems"),
                        lambda self, value: self.__dict__.__setitem__("_problems", value))

    def __getstate__(self) -> dict[str, Any]:
        self._read()
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _lock=threading.RLock())


class _SpacingWhenUsed(StructureSet):
    """A :class:`StructureSet` whose ``plane_spacing_mm`` is found on first use: only a DVH
    or a distance needs it. It pools every ROI's planes, as the whole read does (contours
    found unusable left out), so every ROI is read then."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # StructureSet's
        self.__dict__.update(_spacing_done=False, _lock=threading.Lock())
        super().__init__(*args, **kwargs)

    def __post_init__(self) -> None:
        pass  # found on first use (or given)

    @property
    def plane_spacing_mm(self) -> float | None:
        state = self.__dict__
        if not state["_spacing_done"]:
            with state["_lock"]:
                if not state["_spacing_done"]:
                    state["_spacing"] = common_plane_spacing(self.structures)
                    state["_spacing_done"] = True
        return state["_spacing"]

    @plane_spacing_mm.setter
    def plane_spacing_mm(self, value: float | None) -> None:
        if value is not None:  # given (dataclasses.replace): kept
            self.__dict__.update(_spacing=value, _spacing_done=True)

    def __getstate__(self) -> dict[str, Any]:
        _ = self.plane_spacing_mm
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _lock=threading.Lock())


def _read_roi_item(item: Dataset, label: str, warn: list[str], where: str | None
                   ) -> Callable[[Structure], bool]:
    """A reader of one ROIContourSequence item into a structure: adds its contours and
    appends its warnings to ``warn``; returns True when the ROI's contours were dropped
    (not axial: already explained, so no "empty" warning). Run later (contours read when
    used), it keeps the reader's guards: pydicom's warnings silenced, and any exception an
    InputError naming the file."""

    @quietly
    @guarded("RTSTRUCT")
    def read(source: str | None, structure: Structure) -> bool:
        report = _RoiReport()
        _add_contours(structure, item.get("ContourSequence") or [], report)
        warn.extend(report.messages(label))
        return bool(report.nonplanar)

    return lambda structure: read(where, structure)


def _noting_dropped(read: Callable[[Structure], bool], dropped: set[int]
                    ) -> Callable[[Structure], None]:
    def run(structure: Structure) -> None:
        if read(structure):
            dropped.add(structure.number)
    return run


def _empty_warning(dropped: set[int], warn: list[str]) -> Callable[[Structure], None]:
    def run(structure: Structure) -> None:
        _warn_if_empty(structure, structure.number in dropped, warn)
    return run


def _warn_if_empty(s: Structure, dropped: bool, warn: list[str]) -> None:
    if s.is_empty and not dropped:
        warn.append(f"ROI {s.name!r} ({s.number}) is empty (no contour)")




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


def read_structure_set(source: PathLike | Dataset, contours: str = "all") -> StructureSet:
    """Read an RTSTRUCT into a :class:`StructureSet`.

    CLOSED_PLANAR (and CLOSEDPLANAR_XOR) contours become :class:`Contour` objects, POINT
    contours become ``Structure.points``; other geometric types (OPEN_PLANAR,
    OPEN_NONPLANAR) are ignored with a warning.

    What is reported in ``StructureSet.warnings`` (never raised, so one odd ROI does not stop
    a plan): duplicate ROI names, empty ROIs, contours with fewer than 3 points (skipped),
    contours not on an axial plane (z varying by more than 0.01 mm within a contour: all of
    that ROI's contours are dropped, so it gets no DVH rather than a wrong one), contours for
    an unknown ROI number.

    With ``contours="when_used"`` each ROI's contours are read on the first use of its
    ``contours``, ``points`` or ``problems`` (a check reads the few ROIs its rules use): the
    warnings about an ROI's contours are appended to ``StructureSet.warnings`` then. The
    plane spacing pools every ROI's planes: its first use (a DVH, a distance) reads them all.

    Raises
    ------
    InputError
        Not an RTSTRUCT; a truncated or unreadable file; no StructureSetROISequence or
        ROIContourSequence (both mandatory).
    ValueError
        ``contours`` not in :data:`CONTOUR_MODES`.
    """
    if contours not in CONTOUR_MODES:
        raise ValueError(f"contours={contours!r}: expected one of {', '.join(CONTOUR_MODES)}")
    return _read_structure_set(source, contours == "when_used")


@quietly
@guarded("RTSTRUCT")
def _read_structure_set(source: PathLike | Dataset, when_used: bool) -> StructureSet:
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
        name = str(item.get("ROIName", "") or "")
        structures[number] = (_ContoursWhenUsed if when_used else Structure)(number, name)
    for item in ds.get("RTROIObservationsSequence") or []:
        referenced = as_int(item.get("ReferencedROINumber"))
        s = structures.get(referenced) if referenced is not None else None
        if s is not None and s.roi_type is None:
            s.roi_type = as_text(item.get("RTROIInterpretedType"))
    dropped: set[int] = set()  # ROIs whose contours were dropped (non-axial): already explained
    with_items: set[int] = set()  # ROIs with contours to read
    for item in ds.get("ROIContourSequence") or []:
        number = as_int(item.get("ReferencedROINumber"))
        if number not in structures:
            warn.append(f"contours for ROI number {number}, which the structure set does not "
                        "define: ignored")
            continue
        with_items.add(number)
        s = structures[number]
        read = _read_roi_item(item, f"ROI {s.name!r} ({number})", warn, where)
        if isinstance(s, _ContoursWhenUsed):
            s.defer(_noting_dropped(read, dropped))
        elif read(s):
            dropped.add(number)
    identity: dict[str, Any] = {
        "structures": list(structures.values()),
        "uid": as_text(ds.get("SOPInstanceUID")),
        "label": as_text(ds.get("StructureSetLabel")),
        "frame_of_reference_uid": structure_set_frame(ds, warn),
        "path": where,
    }
    ss = _SpacingWhenUsed(**identity) if when_used else StructureSet(**identity)
    for name in ss.duplicate_names():
        numbers = [str(s.number) for s in ss.structures if s.name == name]
        warn.append(f"ROI name {name!r} is used by {len(numbers)} ROIs (numbers "
                    f"{', '.join(numbers)}): select them by number")
    for s in ss.structures:
        if isinstance(s, _ContoursWhenUsed) and s.number in with_items:
            s.defer(_empty_warning(dropped, warn))
        else:
            _warn_if_empty(s, s.number in dropped, warn)
    ss.warnings = warn
    return ss
