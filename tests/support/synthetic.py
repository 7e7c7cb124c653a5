"""Synthetic DICOM-RT objects (RTPLAN, RTDOSE, RTSTRUCT, RT Beams Treatment Records) for tests,
bad-input tests and benchmarks, and archives of such plans with known batch verdicts
(:func:`build_archive`, :func:`write_spine_plan`).

Every builder returns a :class:`pydicom.dataset.FileDataset` with a complete file meta
(Explicit VR Little Endian) that :func:`write` saves as a standard DICOM Part 10 file. Nothing
here is patient data: names and identifiers are synthetic.

Dose geometry
-------------
The caller describes a *physical* dose field on increasing patient axes (the convention of
:class:`rtcheck.model.DoseGrid`): ``values_gy[k, j, i]`` is the dose at
``(x0 + i*dx, y0 + j*dy, z0 + k*dz)``. :func:`dose_dataset` then encodes that same field in the
requested patient orientation, so an FFS, HFP or FFP file describes exactly the dose of the HFS
file: a reader that honours ImageOrientationPatient must find identical DVHs.

In the file, pixel (frame ``k``, row ``r``, column ``c``) is at::

    IPP + c * PixelSpacing[1] * rowcos + r * PixelSpacing[0] * colcos + frame term

where the frame term depends on ``frame_convention``:

``"dicom"`` (default)
    ``offset_k * n`` with ``n = rowcos x colcos`` (DICOM PS3.3 C.8.8.3.2 read strictly, and
    how :mod:`rtcheck.dose` reads it). For FFS (-1,0,0,0,1,0) and FFP (1,0,0,0,-1,0) the normal
    is -z, so with increasing offsets the frames run from high z to low z.
``"z"``
    ``(0, 0, offset_k)``: offsets added to the IPP z whatever the normal (the reading of
    dicompyler-core and of some planning-system exports). Frames run from low to high z.

The two conventions coincide for HFS and HFP (normal +z). ``offsets="absolute"`` stores each
frame's patient z instead of relative offsets, which is unambiguous in both readings.

Identifiers
-----------
:func:`make_uid` derives a UID from any strings (``generate_uid(entropy_srcs=...)``), so a
seeded plan is byte-identical each time it is generated. Builders draw a random UID for any
UID the caller does not give.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

RT_PLAN_STORAGE = "1.2.840.10008.5.1.4.1.1.481.5"
RT_DOSE_STORAGE = "1.2.840.10008.5.1.4.1.1.481.2"
RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
RT_BEAMS_TREATMENT_RECORD_STORAGE = "1.2.840.10008.5.1.4.1.1.481.4"

#: ImageOrientationPatient of the four axial patient positions.
ORIENTATIONS: dict[str, tuple[float, ...]] = {
    "HFS": (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    "FFS": (-1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    "HFP": (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0),
    "FFP": (1.0, 0.0, 0.0, 0.0, -1.0, 0.0),
}

#: Fixed implementation identity, so files do not change with the pydicom version.
IMPLEMENTATION_CLASS_UID = "1.2.826.0.1.3680043.8.498.74551052231139214227925196117"
IMPLEMENTATION_VERSION_NAME = "RTCHECK_SYNTH_1"

DEFAULT_PATIENT_ID = "RTCHECK-SYNTH"
DEFAULT_PATIENT_NAME = "Synthetic^Phantom"


def make_uid(*parts: object) -> str:
    """A UID derived deterministically from ``parts`` (same parts, same UID)."""
    return generate_uid(entropy_srcs=[str(p) for p in parts])


def _ds_str(value: float, digits: int = 4) -> str:
    """A DICOM DS string (at most 16 characters) rounded to ``digits`` decimals."""
    text = f"{float(value):.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _ds_list(values: Sequence[float] | np.ndarray, digits: int = 4) -> list[str]:
    return [_ds_str(v, digits) for v in np.ravel(values)]


# --------------------------------------------------------------------------------------
# Common modules
# --------------------------------------------------------------------------------------

def _base_dataset(sop_class: str, modality: str, *, sop_uid: str | None, patient_id: str,
                  patient_name: str, study_uid: str | None, series_uid: str | None,
                  date: str, series_number: int = 1) -> FileDataset:
    """Patient, study, series, equipment and SOP common modules with file meta."""
    sop_uid = sop_uid or generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    ds = FileDataset("", Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.InstanceCreationDate = date
    ds.StudyDate = date
    ds.StudyTime = "090000"
    ds.Modality = modality
    ds.Manufacturer = "rtcheck synthetic"
    ds.ReferringPhysicianName = ""
    ds.AccessionNumber = ""
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.StudyID = "1"
    ds.SeriesNumber = series_number
    return ds


def _item(**attributes: object) -> Dataset:
    item = Dataset()
    for keyword, value in attributes.items():
        setattr(item, keyword, value)
    return item


# --------------------------------------------------------------------------------------
# RTDOSE
# --------------------------------------------------------------------------------------

def _iop(orientation: str | Sequence[float]) -> np.ndarray:
    if isinstance(orientation, str):
        try:
            return np.array(ORIENTATIONS[orientation.upper()], dtype=float)
        except KeyError:
            raise ValueError(f"unknown orientation {orientation!r}; use one of "
                             f"{sorted(ORIENTATIONS)} or a 6-tuple") from None
    iop = np.asarray(orientation, dtype=float)
    if iop.shape != (6,):
        raise ValueError("ImageOrientationPatient needs 6 values")
    return iop


def _axis_sign(cosines: np.ndarray) -> tuple[int, int]:
    rounded = np.round(cosines)
    if np.count_nonzero(rounded) != 1 or np.max(np.abs(cosines - rounded)) > 1e-9:
        raise ValueError(f"direction {cosines} is not along a patient axis; use "
                         "dose_dataset_from_frames for oblique grids")
    axis = int(np.flatnonzero(rounded)[0])
    return axis, int(rounded[axis])


def dose_dataset_from_frames(
        frames_gy: np.ndarray, image_position: Sequence[float],
        orientation: str | Sequence[float], pixel_spacing: Sequence[float],
        frame_offsets: Sequence[float], *, units: str = "GY", summation: str = "PLAN",
        plan_uid: str | None = None, beam_number: int | None = None,
        frame_uid: str | None = None, bits: int = 32, dose_type: str = "PHYSICAL",
        patient_id: str = DEFAULT_PATIENT_ID, patient_name: str = DEFAULT_PATIENT_NAME,
        study_uid: str | None = None, series_uid: str | None = None,
        sop_uid: str | None = None, date: str = "20260301") -> FileDataset:
    """An RTDOSE holding ``frames_gy`` exactly as stored (frame, row, column order).

    The low-level builder: geometry attributes are written as given, with no reordering, so
    tests can make any grid (oblique, uneven or absolute offsets, single frame...).

    Parameters
    ----------
    frames_gy : ndarray, shape (frames, rows, columns)
        Non-negative dose in ``units``.
    image_position, orientation, pixel_spacing, frame_offsets
        ImagePositionPatient, ImageOrientationPatient (name or 6 values), PixelSpacing (row
        spacing first) and GridFrameOffsetVector.
    units, summation, dose_type
        DoseUnits, DoseSummationType and DoseType.
    plan_uid : str, optional
        Written as ReferencedRTPlanSequence; with ``beam_number`` the reference goes down to
        ReferencedFractionGroupSequence (group 1) > ReferencedBeamSequence (for BEAM doses).
    bits : {32, 16}
        BitsAllocated; pixels are unsigned and DoseGridScaling = max dose / (2**bits - 1).
    """
    frames = np.asarray(frames_gy, dtype=float)
    if frames.ndim != 3:
        raise ValueError("frames_gy must have shape (frames, rows, columns)")
    if np.any(frames < 0) or not np.all(np.isfinite(frames)):
        raise ValueError("dose values must be finite and non-negative")
    if bits not in (16, 32):
        raise ValueError("bits must be 16 or 32")
    if len(frame_offsets) != frames.shape[0]:
        raise ValueError("one frame offset per frame is needed")
    ds = _base_dataset(RT_DOSE_STORAGE, "RTDOSE", sop_uid=sop_uid, patient_id=patient_id,
                       patient_name=patient_name, study_uid=study_uid,
                       series_uid=series_uid, date=date, series_number=3)
    ds.FrameOfReferenceUID = frame_uid or generate_uid()
    ds.PositionReferenceIndicator = ""
    ds.ImagePositionPatient = _ds_list(image_position)
    ds.ImageOrientationPatient = _ds_list(_iop(orientation), 6)
    ds.PixelSpacing = _ds_list(pixel_spacing)
    ds.GridFrameOffsetVector = _ds_list(frame_offsets)
    ds.FrameIncrementPointer = Tag("GridFrameOffsetVector")
    ds.NumberOfFrames = frames.shape[0]
    ds.Rows, ds.Columns = frames.shape[1], frames.shape[2]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.DoseUnits = units
    ds.DoseType = dose_type
    ds.DoseSummationType = summation
    top = float(frames.max()) if frames.size else 0.0
    # The scaling is written as a DS string first and the pixels rounded with the value a
    # reader will parse, so stored * scaling reproduces the dose to half a pixel step.
    ds.DoseGridScaling = f"{(top if top > 0 else 1.0) / (2 ** bits - 1):.9e}"
    scaling = float(ds.DoseGridScaling)
    ints = np.clip(np.rint(frames / scaling), 0, 2 ** bits - 1)
    ds.PixelData = ints.astype(f"<u{bits // 8}").tobytes()
    if plan_uid is not None:
        ref = _item(ReferencedSOPClassUID=RT_PLAN_STORAGE, ReferencedSOPInstanceUID=plan_uid)
        if beam_number is not None:
            beam = _item(ReferencedBeamNumber=int(beam_number))
            group = _item(ReferencedFractionGroupNumber=1,
                          ReferencedBeamSequence=DicomSequence([beam]))
            ref.ReferencedFractionGroupSequence = DicomSequence([group])
        ds.ReferencedRTPlanSequence = DicomSequence([ref])
    return ds


def _encode_planes(values: np.ndarray, iop: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Reorder (z, y, x) values into stored (frame, row, column) order for an axial IOP.

    Returns the stored array and the patient axes (0 x, 1 y) along columns and rows.
    """
    col_axis, col_sign = _axis_sign(iop[:3])  # moving along a row (column index grows)
    row_axis, row_sign = _axis_sign(iop[3:])  # moving down a column (row index grows)
    if {col_axis, row_axis} != {0, 1}:
        raise ValueError("dose_dataset only builds axial grids (rows and columns along x, y)")
    planes = values if col_axis == 0 else values.transpose(0, 2, 1)
    if row_sign < 0:
        planes = planes[:, ::-1, :]
    if col_sign < 0:
        planes = planes[:, :, ::-1]
    return planes, col_axis, row_axis


def dose_dataset(values_gy: np.ndarray, origin_xyz: Sequence[float],
                 spacing: Sequence[float], *, orientation: str | Sequence[float] = "HFS",
                 offsets: str = "relative", frame_convention: str = "dicom",
                 **kwargs) -> FileDataset:
    """An RTDOSE describing the physical dose field ``values_gy`` in a given orientation.

    Parameters
    ----------
    values_gy : ndarray, shape (nz, ny, nx)
        ``values_gy[k, j, i]`` is the dose at ``origin + (i*dx, j*dy, k*dz)`` (increasing
        patient axes, whatever the orientation of the file).
    origin_xyz : 3 floats
        Patient position (mm) of the voxel centre with the smallest x, y and z.
    spacing : (dx, dy, dz)
        Voxel size in mm.
    orientation : {"HFS", "FFS", "HFP", "FFP"} or 6 floats
        ImageOrientationPatient; any axial IOP (rows and columns along x and y, including
        decubitus transposes) is accepted as 6 values.
    offsets : {"relative", "absolute"}
        GridFrameOffsetVector starting at 0, or holding each frame's patient z.
    frame_convention : {"dicom", "z"}
        How relative offsets map to z (see the module docstring).
    **kwargs
        Passed to :func:`dose_dataset_from_frames` (units, summation, plan_uid, beam_number,
        frame_uid, bits, patient and UID fields).
    """
    values = np.asarray(values_gy, dtype=float)
    if values.ndim != 3:
        raise ValueError("values_gy must have shape (nz, ny, nx)")
    iop = _iop(orientation)
    planes, col_axis, row_axis = _encode_planes(values, iop)
    origin = np.asarray(origin_xyz, dtype=float)
    d = np.asarray(spacing, dtype=float)
    n_xy = (values.shape[2], values.shape[1])
    far = origin + np.array([(n_xy[0] - 1) * d[0], (n_xy[1] - 1) * d[1], 0.0])
    ipp = origin.copy()
    # The first stored pixel sits at the low or high end of each in-plane axis.
    for axis, cos in ((col_axis, iop[col_axis]), (row_axis, iop[3 + row_axis])):
        ipp[axis] = origin[axis] if cos > 0 else far[axis]
    z = origin[2] + d[2] * np.arange(values.shape[0])
    normal_z = float(np.cross(np.round(iop[:3]), np.round(iop[3:]))[2])
    if frame_convention not in ("dicom", "z"):
        raise ValueError("frame_convention must be 'dicom' or 'z'")
    if frame_convention == "dicom" and normal_z < 0 and offsets == "relative":
        planes, z = planes[::-1], z[::-1]  # offsets grow along -z: frame 0 is the top plane
    ipp[2] = z[0]
    if offsets == "relative":
        frame_offsets = np.abs(z - z[0])
    elif offsets == "absolute":
        frame_offsets = z
    else:
        raise ValueError("offsets must be 'relative' or 'absolute'")
    pixel_spacing = (d[row_axis], d[col_axis])
    return dose_dataset_from_frames(planes, ipp, iop, pixel_spacing, frame_offsets, **kwargs)


def grid_axes(bounds_min: Sequence[float], bounds_max: Sequence[float],
              spacing: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voxel-centre positions (x, y, z) from ``bounds_min`` stepping by ``spacing`` up to
    ``bounds_max`` (included when it falls on the lattice)."""
    out = []
    for lo, hi, d in zip(bounds_min, bounds_max, spacing):
        n = int(np.floor((hi - lo) / d + 1e-9)) + 1
        out.append(lo + d * np.arange(n))
    return out[0], out[1], out[2]


def sample_function(f: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
                    x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``f`` evaluated on the grid, shape (nz, ny, nx); ``f`` must broadcast over arrays."""
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    return np.broadcast_to(np.asarray(f(xx, yy, zz), dtype=float), zz.shape).copy()


def dose_dataset_from_function(
        f: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
        bounds_min: Sequence[float], bounds_max: Sequence[float], spacing: Sequence[float],
        *, orientation: str | Sequence[float] = "HFS", **kwargs) -> FileDataset:
    """An RTDOSE sampling the dose function ``f(x, y, z)`` (Gy, patient mm) at voxel centres.

    The grid covers ``bounds_min`` to ``bounds_max`` with voxel ``spacing`` (see
    :func:`grid_axes`); the same physical points are sampled whatever the orientation, so
    the files for HFS, FFS, HFP and FFP differ only in how they store the same dose.
    ``kwargs`` go to :func:`dose_dataset`.
    """
    x, y, z = grid_axes(bounds_min, bounds_max, spacing)
    values = sample_function(f, x, y, z)
    return dose_dataset(values, (x[0], y[0], z[0]), spacing, orientation=orientation,
                        **kwargs)


# --------------------------------------------------------------------------------------
# Contour shapes
# --------------------------------------------------------------------------------------

Contour = tuple[float, np.ndarray]  # (z, N x 2 polygon), one CLOSED_PLANAR contour


def ellipse(cx: float, cy: float, ax: float, ay: float, n: int = 64,
            phase: float = 0.0) -> np.ndarray:
    """N x 2 polygon with vertices on the ellipse of semi-axes ``ax``, ``ay`` (mm)."""
    t = phase + 2.0 * np.pi * np.arange(n) / n
    return np.column_stack([cx + ax * np.cos(t), cy + ay * np.sin(t)])


def circle(cx: float, cy: float, r: float, n: int = 64) -> np.ndarray:
    """N x 2 polygon with vertices on the circle of radius ``r`` (mm)."""
    return ellipse(cx, cy, r, r, n)


def rectangle(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """4 x 2 polygon of the axis-aligned rectangle with corners (x0, y0) and (x1, y1)."""
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=float)


def planes(z0: float, z1: float, step: float) -> np.ndarray:
    """Contour plane positions from ``z0`` to ``z1`` inclusive, every ``step`` mm."""
    n = int(np.floor((z1 - z0) / step + 1e-9)) + 1
    return z0 + step * np.arange(n)


def extrude(polygon: np.ndarray, zs: Sequence[float]) -> list[Contour]:
    """The same polygon on each plane of ``zs`` (a prism, e.g. a cylinder along z)."""
    return [(float(z), np.asarray(polygon, dtype=float)) for z in zs]


def cylinder(cx: float, cy: float, r: float, zs: Sequence[float], n: int = 64
             ) -> list[Contour]:
    """Circular cylinder along z: one circle per plane of ``zs``."""
    return extrude(circle(cx, cy, r, n), zs)


def elliptic_cylinder(cx: float, cy: float, ax: float, ay: float, zs: Sequence[float],
                      n: int = 64) -> list[Contour]:
    """Elliptical cylinder along z: one ellipse per plane of ``zs``."""
    return extrude(ellipse(cx, cy, ax, ay, n), zs)


def sphere(cx: float, cy: float, cz: float, r: float, zs: Sequence[float], n: int = 64
           ) -> list[Contour]:
    """Sphere cut by the planes ``zs``: a circle on each plane that crosses it."""
    out = []
    for z in zs:
        h = float(z) - cz
        if abs(h) < r:
            out.append((float(z), circle(cx, cy, float(np.sqrt(r * r - h * h)), n)))
    return out


# --------------------------------------------------------------------------------------
# RTSTRUCT
# --------------------------------------------------------------------------------------

@dataclass
class ROI:
    """One ROI to write in a structure set.

    Attributes
    ----------
    name : str
        ROIName (duplicates are allowed on purpose).
    contours : list of (z, N x 2 array)
        CLOSED_PLANAR contours; several per plane allowed, a contour inside another is a hole.
    points : list of (x, y, z)
        POINT contours (a point of interest).
    roi_type : str
        RTROIInterpretedType (PTV, CTV, GTV, ORGAN, EXTERNAL, MARKER, ...), or "" for none.
    number : int, optional
        ROINumber (default: position in the list, from 1).
    omit_contour_item : bool
        Leave this ROI out of ROIContourSequence altogether (an empty ROI written by some
        systems); otherwise an ROI with no contours gets an item without ContourSequence.
    color : (r, g, b)
    """

    name: str
    contours: list[Contour] = field(default_factory=list)
    points: list[Sequence[float]] = field(default_factory=list)
    roi_type: str = "ORGAN"
    number: int | None = None
    omit_contour_item: bool = False
    color: tuple[int, int, int] = (255, 0, 0)


def point_roi(name: str, xyz: Sequence[float], roi_type: str = "MARKER") -> ROI:
    """A POINT ROI (point of interest) at ``xyz``."""
    return ROI(name, points=[tuple(float(v) for v in xyz)], roi_type=roi_type)


def _as_rois(rois: Mapping[str, object] | Sequence[ROI],
             types: Mapping[str, str] | None) -> list[ROI]:
    if isinstance(rois, Mapping):
        out = []
        for name, spec in rois.items():
            if isinstance(spec, ROI):
                out.append(spec)
            else:
                roi_type = (types or {}).get(name, "ORGAN")
                out.append(ROI(name, contours=list(spec), roi_type=roi_type))  # type: ignore
        rois = out
    numbered = []
    for k, roi in enumerate(rois, start=1):
        numbered.append(roi if roi.number is not None else
                        ROI(roi.name, roi.contours, roi.points, roi.roi_type, k,
                            roi.omit_contour_item, roi.color))
    return numbered


def _set_raw_ds(item: Dataset, keyword: str, values: list[str]) -> None:
    """Store a DS list already encoded.

    pydicom would otherwise build and validate one DSfloat per number, which dominates the
    time to build a structure set; the element is parsed normally when it is read.
    """
    text = "\\".join(values)
    if len(text) % 2:
        text += " "
    tag = Tag(keyword)
    item[tag] = RawDataElement(tag, "DS", len(text), text.encode("ascii"), 0, False, True)
    item.set_original_encoding(False, True, "iso8859")  # the writer then copies the bytes


def _contour_item(kind: str, xyz: np.ndarray, decimals: int) -> Dataset:
    item = _item(ContourGeometricType=kind, NumberOfContourPoints=len(xyz))
    _set_raw_ds(item, "ContourData", _ds_list(xyz, decimals))
    return item


def _roi_contour_item(roi: ROI, decimals: int) -> Dataset:
    item = _item(ROIDisplayColor=list(roi.color), ReferencedROINumber=roi.number)
    contours = []
    for z, xy in roi.contours:
        xy = np.asarray(xy, dtype=float)
        xyz = np.column_stack([xy, np.full(len(xy), float(z))])
        contours.append(_contour_item("CLOSED_PLANAR", xyz, decimals))
    for p in roi.points:
        contours.append(_contour_item("POINT", np.asarray(p, dtype=float).reshape(1, 3),
                                      decimals))
    if contours:
        item.ContourSequence = DicomSequence(contours)
    return item


def structure_set_dataset(
        rois: Mapping[str, object] | Sequence[ROI], *, types: Mapping[str, str] | None = None,
        label: str = "RTCHECK", frame_uid: str | None = None,
        referenced_series_uid: str | None = None, patient_id: str = DEFAULT_PATIENT_ID,
        patient_name: str = DEFAULT_PATIENT_NAME, study_uid: str | None = None,
        series_uid: str | None = None, sop_uid: str | None = None,
        date: str = "20260301", decimals: int = 4) -> FileDataset:
    """An RTSTRUCT with the given ROIs.

    Parameters
    ----------
    rois : dict name -> list of (z, N x 2) contours or ROI, or a list of ROI
        A list allows duplicate names; :func:`point_roi` makes a POINT ROI, an empty list an
        empty ROI (listed in StructureSetROISequence, no ContourSequence).
    decimals : int
        Contour coordinates are written rounded to this many decimals of a mm.
    types : dict name -> RTROIInterpretedType, optional
        Types for the ROIs given as plain contour lists (default ORGAN).
    referenced_series_uid : str, optional
        The image series the contours were drawn on (written in
        ReferencedFrameOfReferenceSequence > RTReferencedStudySequence).
    """
    roi_list = _as_rois(rois, types)
    ds = _base_dataset(RT_STRUCTURE_SET_STORAGE, "RTSTRUCT", sop_uid=sop_uid,
                       patient_id=patient_id, patient_name=patient_name, study_uid=study_uid,
                       series_uid=series_uid, date=date, series_number=2)
    frame_uid = frame_uid or generate_uid()
    ds.StructureSetLabel = label
    ds.StructureSetDate = date
    ds.StructureSetTime = "090000"
    frame = _item(FrameOfReferenceUID=frame_uid)
    if referenced_series_uid:
        series = _item(SeriesInstanceUID=referenced_series_uid)
        study = _item(ReferencedSOPClassUID="1.2.840.10008.3.1.2.3.1",  # Detached Study Mgmt
                      ReferencedSOPInstanceUID=ds.StudyInstanceUID,
                      RTReferencedSeriesSequence=DicomSequence([series]))
        frame.RTReferencedStudySequence = DicomSequence([study])
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([frame])
    ds.StructureSetROISequence = DicomSequence([
        _item(ROINumber=r.number, ReferencedFrameOfReferenceUID=frame_uid, ROIName=r.name,
              ROIGenerationAlgorithm="MANUAL") for r in roi_list])
    ds.ROIContourSequence = DicomSequence(
        [_roi_contour_item(r, decimals) for r in roi_list if not r.omit_contour_item])
    ds.RTROIObservationsSequence = DicomSequence([
        _item(ObservationNumber=r.number, ReferencedROINumber=r.number,
              RTROIInterpretedType=r.roi_type, ROIInterpreter="") for r in roi_list])
    return ds


# --------------------------------------------------------------------------------------
# RTPLAN
# --------------------------------------------------------------------------------------

@dataclass
class Beam:
    """One static treatment beam.

    ``weight`` is the beam's share of its fraction group's dose per fraction; ``meterset``
    (MU per fraction) defaults to 100 MU per Gy of beam dose.
    """

    name: str
    gantry_angle: float = 0.0
    weight: float = 1.0
    meterset: float | None = None
    number: int | None = None
    energy_mv: float = 6.0


@dataclass
class FractionGroupSpec:
    """One fraction group: ``fractions`` of ``dose_per_fraction_gy`` delivered by ``beams``."""

    fractions: int
    dose_per_fraction_gy: float
    beams: Sequence[Beam] = ()


def default_beams(angles: Sequence[float] = (0.0, 180.0)) -> list[Beam]:
    """Equally weighted static beams at the given gantry angles (AP/PA by default)."""
    return [Beam(f"G{int(a):03d}", float(a)) for a in angles]


def _beam_item(beam: Beam, isocenter: Sequence[float]) -> Dataset:
    cp0 = _item(ControlPointIndex=0, NominalBeamEnergy=_ds_str(beam.energy_mv),
                GantryAngle=_ds_str(beam.gantry_angle), GantryRotationDirection="NONE",
                BeamLimitingDeviceAngle="0", BeamLimitingDeviceRotationDirection="NONE",
                PatientSupportAngle="0", PatientSupportRotationDirection="NONE",
                IsocenterPosition=_ds_list(isocenter), CumulativeMetersetWeight="0")
    cp1 = _item(ControlPointIndex=1, CumulativeMetersetWeight="1")
    return _item(BeamNumber=beam.number, BeamName=beam.name, BeamType="STATIC",
                 RadiationType="PHOTON", TreatmentMachineName="SYNTH_LINAC",
                 PrimaryDosimeterUnit="MU", SourceAxisDistance="1000",
                 TreatmentDeliveryType="TREATMENT", NumberOfWedges=0,
                 NumberOfCompensators=0, NumberOfBoli=0, NumberOfBlocks=0,
                 FinalCumulativeMetersetWeight="1", NumberOfControlPoints=2,
                 ControlPointSequence=DicomSequence([cp0, cp1]))


def _fraction_group_item(number: int, group: FractionGroupSpec) -> Dataset:
    total_weight = sum(b.weight for b in group.beams) or 1.0
    doses = [round(group.dose_per_fraction_gy * b.weight / total_weight, 6)
             for b in group.beams]
    if doses:  # the last beam takes the rounding remainder: stored beam doses sum exactly
        doses[-1] = round(group.dose_per_fraction_gy - sum(doses[:-1]), 6)
    refs = []
    for beam, dose in zip(group.beams, doses):
        mu = beam.meterset if beam.meterset is not None else 100.0 * dose
        refs.append(_item(ReferencedBeamNumber=beam.number, BeamDose=_ds_str(dose, 6),
                          BeamMeterset=_ds_str(mu, 3)))
    return _item(FractionGroupNumber=number, NumberOfFractionsPlanned=int(group.fractions),
                 NumberOfBeams=len(group.beams), NumberOfBrachyApplicationSetups=0,
                 ReferencedBeamSequence=DicomSequence(refs))


def plan_dataset(
        label: str, fractions: int | None, prescription_gy: float | None, *,
        beams: Sequence[Beam] | None = None,
        fraction_groups: Sequence[FractionGroupSpec] | None = None,
        date: str = "20260301", intent: str = "PALLIATIVE", name: str | None = None,
        structure_set_uid: str | None = None, frame_uid: str | None = None,
        target_roi_number: int | None = None, isocenter: Sequence[float] = (0.0, 0.0, 0.0),
        patient_position: str = "HFS", patient_id: str = DEFAULT_PATIENT_ID,
        patient_name: str = DEFAULT_PATIENT_NAME, study_uid: str | None = None,
        series_uid: str | None = None, plan_uid: str | None = None) -> FileDataset:
    """An RTPLAN of static photon beams.

    Parameters
    ----------
    label : str
        RTPlanLabel.
    fractions, prescription_gy
        Fractions planned and total prescribed dose (TargetPrescriptionDose of a TARGET dose
        reference). With ``fraction_groups`` given, ``fractions`` is ignored; a None
        ``prescription_gy`` writes no DoseReferenceSequence.
    beams : list of Beam, optional
        Beams of the single fraction group (default AP/PA). BeamDose per fraction is the
        prescription per fraction split by beam weight, so beam doses sum to it.
    fraction_groups : list of FractionGroupSpec, optional
        Several fraction groups (beams are numbered across all groups).
    date, intent, name
        RTPlanDate (YYYYMMDD), PlanIntent, RTPlanName.
    structure_set_uid : str, optional
        ReferencedStructureSetSequence.
    target_roi_number : int, optional
        Makes the dose reference a VOLUME reference to this ROI (else a SITE).
    """
    if fraction_groups is None:
        if fractions is None:
            raise ValueError("give fractions or fraction_groups")
        per_fraction = (prescription_gy or 0.0) / fractions
        fraction_groups = [FractionGroupSpec(fractions, per_fraction,
                                             list(beams) if beams else default_beams())]
    ds = _base_dataset(RT_PLAN_STORAGE, "RTPLAN", sop_uid=plan_uid, patient_id=patient_id,
                       patient_name=patient_name, study_uid=study_uid,
                       series_uid=series_uid, date=date, series_number=4)
    ds.FrameOfReferenceUID = frame_uid or generate_uid()
    ds.PositionReferenceIndicator = ""
    ds.RTPlanLabel = label
    ds.RTPlanName = name if name is not None else label
    ds.RTPlanDate = date
    ds.RTPlanTime = "090000"
    ds.RTPlanGeometry = "PATIENT"
    ds.PlanIntent = intent
    ds.ApprovalStatus = "APPROVED"
    if structure_set_uid:
        ds.ReferencedStructureSetSequence = DicomSequence([_item(
            ReferencedSOPClassUID=RT_STRUCTURE_SET_STORAGE,
            ReferencedSOPInstanceUID=structure_set_uid)])
    if prescription_gy is not None:
        ref = _item(DoseReferenceNumber=1, DoseReferenceUID=make_uid(ds.SOPInstanceUID, "dr1"),
                    DoseReferenceType="TARGET", DoseReferenceDescription="PRESCRIPTION",
                    TargetPrescriptionDose=_ds_str(prescription_gy, 6))
        if target_roi_number is not None:
            ref.DoseReferenceStructureType = "VOLUME"
            ref.ReferencedROINumber = int(target_roi_number)
        else:
            ref.DoseReferenceStructureType = "SITE"
        ds.DoseReferenceSequence = DicomSequence([ref])
    numbered_groups, beam_items, next_number = [], [], 1
    for group in fraction_groups:
        group_beams = []
        for beam in group.beams:
            number = beam.number if beam.number is not None else next_number
            next_number = max(next_number, number) + 1
            group_beams.append(Beam(beam.name, beam.gantry_angle, beam.weight, beam.meterset,
                                    number, beam.energy_mv))
            beam_items.append(_beam_item(group_beams[-1], isocenter))
        numbered_groups.append(FractionGroupSpec(group.fractions, group.dose_per_fraction_gy,
                                                 group_beams))
    ds.FractionGroupSequence = DicomSequence(
        [_fraction_group_item(k, g) for k, g in enumerate(numbered_groups, start=1)])
    ds.BeamSequence = DicomSequence(beam_items)
    ds.PatientSetupSequence = DicomSequence([_item(PatientSetupNumber=1,
                                                   PatientPosition=patient_position)])
    for item in ds.BeamSequence:
        item.ReferencedPatientSetupNumber = 1
    return ds


# --------------------------------------------------------------------------------------
# RT Beams Treatment Record
# --------------------------------------------------------------------------------------

def dicom_date(date: str | _dt.date) -> str:
    """``date`` (a date, ``YYYYMMDD`` or ``YYYY-MM-DD``) as a DICOM DA string; ValueError if
    it is not a calendar date."""
    if isinstance(date, _dt.date):
        return date.strftime("%Y%m%d")
    text = str(date).strip().replace("-", "")
    _dt.datetime.strptime(text, "%Y%m%d")
    return text


def weekdays(start: str | _dt.date, n: int) -> tuple[str, ...]:
    """The first ``n`` weekdays (Monday to Friday) from ``start`` on, ``start`` included when
    it is one, as ``YYYYMMDD``: the dates of a course of daily fractions."""
    day = _dt.datetime.strptime(dicom_date(start), "%Y%m%d").date()
    out: list[str] = []
    while len(out) < n:
        if day.weekday() < 5:
            out.append(day.strftime("%Y%m%d"))
        day += _dt.timedelta(days=1)
    return tuple(out)


def _session_beam_item(beam: Dataset, meterset: float, fraction: int, date: str,
                       time: str) -> Dataset:
    """One TreatmentSessionBeamSequence item: the beam delivered in full, its two control
    points dated (TreatmentControlPointDate is Type 1)."""
    cp = (beam.get("ControlPointSequence") or [Dataset()])[0]
    first = _item(ReferencedControlPointIndex=0, TreatmentControlPointDate=date,
                  TreatmentControlPointTime=time, SpecifiedMeterset="0", DeliveredMeterset="0",
                  DoseRateSet="600", DoseRateDelivered="600", NominalBeamEnergyUnit="MV",
                  NominalBeamEnergy=cp.get("NominalBeamEnergy", "6"),
                  GantryAngle=cp.get("GantryAngle", "0"), GantryRotationDirection="NONE",
                  BeamLimitingDeviceAngle=cp.get("BeamLimitingDeviceAngle", "0"),
                  BeamLimitingDeviceRotationDirection="NONE",
                  PatientSupportAngle=cp.get("PatientSupportAngle", "0"),
                  PatientSupportRotationDirection="NONE", TableTopEccentricAngle="0",
                  TableTopEccentricRotationDirection="NONE")
    last = _item(ReferencedControlPointIndex=1, TreatmentControlPointDate=date,
                 TreatmentControlPointTime=time, SpecifiedMeterset=_ds_str(meterset, 3),
                 DeliveredMeterset=_ds_str(meterset, 3), DoseRateSet="600",
                 DoseRateDelivered="600")
    jaws = [_item(RTBeamLimitingDeviceType=kind, NumberOfLeafJawPairs=1)
            for kind in ("ASYMX", "ASYMY")]
    return _item(ReferencedBeamNumber=int(beam.BeamNumber),
                 BeamName=str(beam.get("BeamName", "") or ""),
                 BeamType=str(beam.get("BeamType", "STATIC") or "STATIC"),
                 RadiationType=str(beam.get("RadiationType", "PHOTON") or "PHOTON"),
                 TreatmentDeliveryType="TREATMENT", NumberOfWedges=0, NumberOfCompensators=0,
                 NumberOfBoli=0, NumberOfBlocks=0,
                 BeamLimitingDeviceLeafPairsSequence=DicomSequence(jaws),
                 CurrentFractionNumber=int(fraction), TreatmentTerminationStatus="NORMAL",
                 TreatmentVerificationStatus="",
                 SpecifiedPrimaryMeterset=_ds_str(meterset, 3),
                 DeliveredPrimaryMeterset=_ds_str(meterset, 3), NumberOfControlPoints=2,
                 ControlPointDeliverySequence=DicomSequence([first, last]))


def treatment_record_dataset(
        plan: Dataset, fraction: int, date: str | _dt.date, *, time: str = "090000",
        record_date: bool = True, fraction_group: int = 1, sop_uid: str | None = None,
        series_uid: str | None = None, instance_number: int | None = None) -> FileDataset:
    """An RT Beams Treatment Record of one session: fraction ``fraction`` of ``plan``.

    Every treatment beam of the plan's fraction group ``fraction_group`` is recorded as
    delivered in full (DeliveredMeterset = the plan's BeamMeterset) on ``date`` at ``time``.
    The record references the plan (ReferencedRTPlanSequence) and shares its patient and
    study; like any treatment record (the IOD has no Frame of Reference module) it states
    no frame of reference: it reaches the plan's through the reference.

    Parameters
    ----------
    plan : pydicom.Dataset
        The RTPLAN delivered (from :func:`plan_dataset` or read from a file).
    fraction : int
        CurrentFractionNumber of every beam (1 for the first fraction).
    date : str or datetime.date
        The session's date: the record's TreatmentDate and every TreatmentControlPointDate.
    record_date : bool
        False writes TreatmentDate and TreatmentTime empty (both Type 2, as some systems
        export them): the date is then only in the TreatmentSessionBeamSequence items.
    sop_uid, series_uid : str, optional
        Random when not given; give them (see :func:`make_uid`) for reproducible files.
    instance_number : int, optional
        InstanceNumber (default ``fraction``).
    """
    day = dicom_date(date)
    groups = {int(g.FractionGroupNumber): g for g in plan.get("FractionGroupSequence") or []}
    if fraction_group not in groups:
        raise ValueError(f"the plan has no fraction group {fraction_group}")
    group = groups[fraction_group]
    planned = group.get("NumberOfFractionsPlanned")
    if fraction < 1 or (planned and fraction > int(planned)):
        raise ValueError(f"fraction {fraction} is outside the {planned} fractions planned")
    beams = {int(b.BeamNumber): b for b in plan.get("BeamSequence") or []}
    session = []
    for ref in group.get("ReferencedBeamSequence") or []:
        beam = beams.get(int(ref.ReferencedBeamNumber))
        if beam is None or str(beam.get("TreatmentDeliveryType", "TREATMENT")) != "TREATMENT":
            continue
        session.append(_session_beam_item(beam, float(ref.get("BeamMeterset") or 0.0),
                                          fraction, day, time))
    if not session:
        raise ValueError(f"fraction group {fraction_group} of the plan has no treatment beam")
    ds = _base_dataset(RT_BEAMS_TREATMENT_RECORD_STORAGE, "RTRECORD", sop_uid=sop_uid,
                       patient_id=str(plan.PatientID), patient_name=str(plan.PatientName),
                       study_uid=plan.StudyInstanceUID, series_uid=series_uid,
                       date=str(plan.get("StudyDate", day) or day), series_number=5)
    ds.InstanceCreationDate = day
    ds.OperatorsName = ""
    ds.InstanceNumber = int(instance_number if instance_number is not None else fraction)
    ds.TreatmentDate = day if record_date else ""
    ds.TreatmentTime = time if record_date else ""
    ds.ReferencedRTPlanSequence = DicomSequence([_item(
        ReferencedSOPClassUID=plan.SOPClassUID, ReferencedSOPInstanceUID=plan.SOPInstanceUID)])
    machine = str((plan.get("BeamSequence") or [Dataset()])[0].get("TreatmentMachineName", "")
                  or "SYNTH_LINAC")
    ds.TreatmentMachineSequence = DicomSequence([_item(
        TreatmentMachineName=machine, Manufacturer="rtcheck synthetic", InstitutionName="",
        ManufacturerModelName="", DeviceSerialNumber="")])
    ds.ReferencedFractionGroupNumber = fraction_group
    ds.NumberOfFractionsPlanned = int(planned) if planned else ""
    ds.PrimaryDosimeterUnit = "MU"
    ds.TreatmentSessionBeamSequence = DicomSequence(session)
    return ds


# --------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------

def write(ds: Dataset, path: str | os.PathLike) -> Path:
    """Save ``ds`` as a DICOM Part 10 file (preamble, DICM prefix, file meta); returns the path.

    Parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


# --------------------------------------------------------------------------------------
# Spine phantom: anatomy, analytic doses, whole plans
# --------------------------------------------------------------------------------------
#
# Patient coordinates (HFS): x towards the patient's left, y posterior, z superior. All
# anatomy is placed relative to the centre of the vertebral body. Shapes are contoured as
# polygons whose vertices lie on the analytic curves (64 vertices for ellipses, so the
# points at 0, 90, 180 and 270 degrees are vertices: the cord's nearest and farthest points
# from the vertebral body are exactly on its contours).

@dataclass(frozen=True)
class SpineAnatomy:
    """A thoracic vertebra with its neighbours, in mm.

    Offsets are from :attr:`centre`, the centre of the vertebral body. Ellipses are given by
    their semi-axes (x, y). The SBRT PTV is the vertebral body grown by ``sbrt_margin``; the
    conventional PTV is a box over the vertebra with its posterior elements and canal.
    """

    centre: tuple[float, float, float] = (5.0, 45.0, -310.0)
    vertebral_body: tuple[float, float] = (20.0, 15.0)
    vertebra_half_height: float = 13.0
    sbrt_margin: float = 2.0
    cord_y: float = 25.5
    cord: tuple[float, float] = (5.5, 4.5)
    thecal_sac: tuple[float, float] = (8.0, 7.5)
    esophagus: tuple[float, float, float] = (6.0, -29.0, 7.0)  # x, y, radius
    gtv: tuple[float, float, float, float] = (4.0, 0.0, 0.0, 9.0)  # x, y, z, radius
    skin_y: float = -45.0
    skin: tuple[float, float] = (160.0, 110.0)
    conventional_ptv: tuple[float, float, float, float] = (-35.0, -25.0, 35.0, 45.0)
    conventional_ptv_half_length: float = 28.5
    organ_half_length: float = 40.0

    @property
    def sbrt_ptv(self) -> tuple[float, float]:
        """Semi-axes of the SBRT PTV cross-section."""
        return (self.vertebral_body[0] + self.sbrt_margin,
                self.vertebral_body[1] + self.sbrt_margin)

    @property
    def sbrt_ptv_half_length(self) -> float:
        return self.vertebra_half_height + self.sbrt_margin

    @property
    def cord_gap(self) -> float:
        """Distance (mm) from the SBRT PTV's posterior edge to the cord's anterior edge."""
        return self.cord_y - self.cord[1] - self.sbrt_ptv[1]

    def at(self, dx: float, dy: float, dz: float) -> tuple[float, float, float]:
        """Patient coordinates of a point given relative to the centre."""
        return (self.centre[0] + dx, self.centre[1] + dy, self.centre[2] + dz)


def _slab_planes(half_length: float, step: float) -> np.ndarray:
    """Plane offsets whose slabs of thickness ``step`` fill [-half_length, half_length]
    (or the largest such span when the step does not divide it)."""
    n = int(np.floor(2 * half_length / step + 1e-9))
    return (np.arange(n) - (n - 1) / 2) * step


def _erf_field(u: np.ndarray, half_width: float, sigma: float) -> np.ndarray:
    """Open-field profile: 1 in the middle, 0.5 at +-half_width, Gaussian penumbra."""
    from scipy.special import erf
    s = sigma * np.sqrt(2.0)
    return 0.5 * (erf((half_width - u) / s) + erf((half_width + u) / s))


@dataclass(frozen=True)
class ConventionalDose:
    """Dose of a static open-field spine treatment (AP/PA or single PA), in Gy.

    ``D = Rx * F(x) * F(z) * (1 + a1*v + a2*v**2)`` with ``v = (y - y_iso) / 100 mm``,
    F an open-field profile (50 % at the field edge, Gaussian penumbra ``sigma``). The
    prescription point is the isocentre (vertebral body centre), where D = Rx. An AP/PA pair
    has a2 > 0 (hotter towards both surfaces), a single PA field a1 > 0 (hotter posteriorly).
    """

    prescription_gy: float
    centre: tuple[float, float, float]
    linear: float = 0.0
    quadratic: float = 0.0
    half_width_x: float = 45.0
    half_length_z: float = 35.0
    sigma: float = 4.0

    def __call__(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        v = (np.asarray(y) - self.centre[1]) / 100.0
        return (self.prescription_gy
                * _erf_field(np.asarray(x) - self.centre[0], self.half_width_x, self.sigma)
                * _erf_field(np.asarray(z) - self.centre[2], self.half_length_z, self.sigma)
                * (1.0 + self.linear * v + self.quadratic * v * v))


@dataclass(frozen=True)
class SBRTDose:
    """Dose conforming to an elliptic-cylinder PTV with an exponential fall-off, in Gy.

    With ``s`` the signed distance (mm, positive outside) to the PTV surface:
    ``D = Rx * exp(-s / falloff_mm)`` outside, ``Rx * (1 + hot * (1 - exp(s / hot_depth_mm)))``
    inside: the PTV surface gets exactly Rx, the centre about (1 + hot) Rx. In-plane, ``s`` is
    the first-order distance ``(rho - 1) / |grad rho|`` to the ellipse ``rho = 1``, exact on
    the ellipse's axes (where the cord's nearest point lies); along z it is combined with the
    distance to the end planes as for a box.
    """

    prescription_gy: float
    centre: tuple[float, float, float]
    semi_axes: tuple[float, float]
    half_length: float
    falloff_mm: float
    hot: float = 0.2
    hot_depth_mm: float = 5.0

    def signed_distance(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        a, b = self.semi_axes
        u = np.asarray(x, dtype=float) - self.centre[0]
        v = np.asarray(y, dtype=float) - self.centre[1]
        rho = np.sqrt((u / a) ** 2 + (v / b) ** 2)
        grad = np.sqrt((u / a ** 2) ** 2 + (v / b ** 2) ** 2)  # = rho * |grad rho|
        with np.errstate(divide="ignore", invalid="ignore"):
            s_xy = np.where(grad > 0, (rho - 1.0) * rho / grad, -min(a, b))
        s_z = np.abs(np.asarray(z, dtype=float) - self.centre[2]) - self.half_length
        outside = np.hypot(np.maximum(s_xy, 0.0), np.maximum(s_z, 0.0))
        return outside + np.minimum(np.maximum(s_xy, s_z), 0.0)

    def __call__(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        s = self.signed_distance(x, y, z)
        inside = 1.0 + self.hot * (1.0 - np.exp(np.minimum(s, 0.0) / self.hot_depth_mm))
        return self.prescription_gy * np.where(s > 0, np.exp(-np.maximum(s, 0.0)
                                                             / self.falloff_mm), inside)


#: Per kind: fractions, prescription (Gy), cord Dmax as a fraction of it, contour plane and
#: dose grid spacing (mm), plan intent, label prefix, beam gantry angles.
SPINE_KINDS: dict[str, dict] = {
    "sbrt": dict(fractions=3, prescription_gy=27.0, cord_ratio=17.0 / 27.0, contour_step=2.0,
                 dose_step=2.0, intent="CURATIVE", tag="SBRT",
                 angles=(100.0, 130.0, 160.0, 180.0, 200.0, 230.0, 260.0)),
    "conventional": dict(fractions=10, prescription_gy=30.0, cord_ratio=31.0 / 30.0,
                         contour_step=3.0, dose_step=2.5, intent="PALLIATIVE", tag="CONV",
                         angles=(0.0, 180.0)),
    "single": dict(fractions=1, prescription_gy=8.0, cord_ratio=1.12, contour_step=3.0,
                   dose_step=2.5, intent="PALLIATIVE", tag="SINGLE", angles=(180.0,)),
}


def _seed_int(seed: object) -> int:
    return int(make_uid("rtcheck-seed", seed).rsplit(".", 1)[-1]) % (2 ** 63)


def varied_anatomy(seed: object) -> SpineAnatomy:
    """A plausible variant of the default anatomy, drawn reproducibly from ``seed``:
    position, cord size and cord-to-PTV gap (3-5 mm), oesophagus position."""
    rng = np.random.default_rng(_seed_int(seed))
    base = SpineAnatomy()
    cord = (float(rng.uniform(4.5, 6.0)), float(rng.uniform(3.8, 5.0)))
    gap = float(rng.uniform(3.0, 5.0))
    centre = (float(rng.uniform(-20, 20)), float(rng.uniform(20, 70)),
              float(rng.uniform(-600, 100)))
    esophagus = (float(rng.uniform(0.0, 10.0)), base.esophagus[1], base.esophagus[2])
    return SpineAnatomy(centre=centre, cord=cord, esophagus=esophagus,
                        cord_y=base.sbrt_ptv[1] + gap + cord[1],
                        thecal_sac=(cord[0] + 2.5, cord[1] + 3.0))


@dataclass
class SpineCase:
    """A synthetic spine plan: anatomy, analytic dose, plan facts and identifiers.

    Build with :func:`spine_case`; :meth:`datasets` gives the DICOM objects, :meth:`cord_dmax`
    the analytic truth for the cord maximum.
    """

    kind: str
    anatomy: SpineAnatomy
    dose: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    prescription_gy: float
    fractions: int
    label: str
    date: str
    intent: str
    angles: tuple[float, ...]
    contour_step: float
    dose_step: float
    seed: object
    patient_id: str
    patient_name: str
    frame_uid: str
    study_uid: str
    orientation: str | Sequence[float] = "HFS"
    summation: str = "PLAN"
    bits: int = 16

    def uid(self, role: str) -> str:
        return make_uid("rtcheck-synthetic", self.seed, self.label, role)

    @property
    def cord_max_point(self) -> tuple[float, float, float]:
        """Where the cord receives its maximum dose (patient mm).

        SBRT: the cord's anterior edge facing the PTV (any z within the PTV length: the
        dose is constant along z there; z = centre is returned). Conventional: the cord's
        posterior edge at the field centre (dose grows with y posterior of the isocentre).
        """
        a = self.anatomy
        edge = -a.cord[1] if self.kind == "sbrt" else a.cord[1]
        return a.at(0.0, a.cord_y + edge, 0.0)

    def cord_dmax(self) -> float:
        """Analytic maximum of the dose function over the cord (Gy)."""
        return float(self.dose(*(np.array(v) for v in self.cord_max_point)))

    def rois(self) -> list[ROI]:
        """The structures, contoured every :attr:`contour_step` mm."""
        a, step = self.anatomy, self.contour_step
        cx, cy, cz = a.centre
        organ_z = cz + _slab_planes(a.organ_half_length, step)
        scan_z = cz + _slab_planes(a.organ_half_length + 4.0, step)
        if self.kind == "sbrt":
            ptv = elliptic_cylinder(cx, cy, *a.sbrt_ptv,
                                    cz + _slab_planes(a.sbrt_ptv_half_length, step))
        else:
            x0, y0, x1, y1 = a.conventional_ptv
            ptv = extrude(rectangle(cx + x0, cy + y0, cx + x1, cy + y1),
                          cz + _slab_planes(a.conventional_ptv_half_length, step))
        gx, gy, gz, gr = a.gtv
        ex, ey, er = a.esophagus
        return [
            ROI("BODY", elliptic_cylinder(cx, cy + a.skin_y, *a.skin, scan_z), roi_type="EXTERNAL",
                color=(0, 255, 0)),
            ROI("PTV", ptv, roi_type="PTV", color=(255, 0, 0)),
            ROI("GTV", sphere(cx + gx, cy + gy, cz + gz, gr, cz + _slab_planes(gr, step), 32),
                roi_type="GTV", color=(255, 0, 255)),
            ROI("SpinalCord", elliptic_cylinder(cx, cy + a.cord_y, *a.cord, organ_z),
                roi_type="ORGAN", color=(255, 255, 0)),
            ROI("ThecalSac", elliptic_cylinder(cx, cy + a.cord_y, *a.thecal_sac, organ_z),
                roi_type="ORGAN", color=(0, 255, 255)),
            ROI("Esophagus", cylinder(cx + ex, cy + ey, er, organ_z, 32), roi_type="ORGAN",
                color=(0, 0, 255)),
            point_roi("ISO", a.centre),
        ]

    def grid_bounds(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Dose grid box: 120 x 120 mm around the spine, 4 mm beyond the organs in z."""
        a, d = self.anatomy, self.dose_step
        half_z = d * np.ceil((a.organ_half_length + 4.0) / d)
        lo = a.at(-60.0, -60.0, -half_z)
        hi = a.at(60.0, 60.0, half_z)
        return lo, hi

    def beams(self) -> list[Beam]:
        return [Beam(f"G{int(g):03d}", g) for g in self.angles]

    def _common(self, role: str) -> dict:
        return dict(patient_id=self.patient_id, patient_name=self.patient_name,
                    study_uid=self.study_uid, series_uid=self.uid(f"series-{role}"),
                    date=self.date)

    def rtplan(self) -> FileDataset:
        """The plan ("RP" of :meth:`datasets`), referencing the structure set by its UID."""
        return plan_dataset(self.label, self.fractions, self.prescription_gy,
                            beams=self.beams(), intent=self.intent,
                            structure_set_uid=self.uid("RS"), frame_uid=self.frame_uid,
                            target_roi_number=2, isocenter=self.anatomy.centre,
                            patient_position=(self.orientation if isinstance(self.orientation,
                                                                             str) else "HFS"),
                            plan_uid=self.uid("RP"), **self._common("RP"))

    def treatment_records(self, dates: Sequence[str | _dt.date], time: str = "090000"
                          ) -> dict[str, FileDataset]:
        """One RT Beams Treatment Record per fraction delivered, fraction k on ``dates[k-1]``:
        keys "RT.F01", "RT.F02"... (UIDs derived from the seed)."""
        if len(dates) > self.fractions:
            raise ValueError(f"{len(dates)} dates for {self.fractions} fractions")
        rp = self.rtplan()
        return {f"RT.F{k:02d}": treatment_record_dataset(
                    rp, k, day, time=time, sop_uid=self.uid(f"RT{k}"),
                    series_uid=self.uid("series-RT"))
                for k, day in enumerate(dates, start=1)}

    def datasets(self) -> dict[str, FileDataset]:
        """The plan ("RP"), structure set ("RS") and dose: "RD" for a PLAN or FRACTION
        dose, "RD.B1", "RD.B2"... (one per beam) for BEAM doses."""
        rs = structure_set_dataset(self.rois(), label=self.label[:16],
                                   frame_uid=self.frame_uid, sop_uid=self.uid("RS"),
                                   decimals=2, **self._common("RS"))
        rp = self.rtplan()
        lo, hi = self.grid_bounds()
        x, y, z = grid_axes(lo, hi, (self.dose_step,) * 3)
        values = sample_function(self.dose, x, y, z)
        dose_kw = dict(orientation=self.orientation, plan_uid=rp.SOPInstanceUID,
                       frame_uid=self.frame_uid, bits=self.bits, **self._common("RD"))
        origin, spacing = (x[0], y[0], z[0]), (self.dose_step,) * 3
        out = {"RP": rp, "RS": rs}
        if self.summation == "BEAM":
            n = len(self.angles)  # equal weights: each beam gives 1/n of the dose
            for k in range(1, n + 1):
                out[f"RD.B{k}"] = dose_dataset(values / n, origin, spacing, summation="BEAM",
                                               beam_number=k, sop_uid=self.uid(f"RD{k}"),
                                               **dose_kw)
        elif self.summation in ("PLAN", "FRACTION"):
            per = self.fractions if self.summation == "FRACTION" else 1
            out["RD"] = dose_dataset(values / per, origin, spacing, summation=self.summation,
                                     sop_uid=self.uid("RD"), **dose_kw)
        else:
            raise ValueError("summation must be PLAN, FRACTION or BEAM")
        return out


def spine_case(kind: str = "sbrt", *, seed: object = 0, prescription_gy: float | None = None,
               fractions: int | None = None, cord_dmax_gy: float | None = None,
               anatomy: SpineAnatomy | None = None, vary: bool = False,
               label: str | None = None, date: str = "20260301", intent: str | None = None,
               patient_id: str = DEFAULT_PATIENT_ID, patient_name: str = "Synthetic^Spine",
               frame_uid: str | None = None, study_uid: str | None = None,
               orientation: str | Sequence[float] = "HFS", summation: str = "PLAN",
               bits: int = 16) -> SpineCase:
    """A synthetic spine plan whose cord maximum dose is known exactly.

    Parameters
    ----------
    kind : {"sbrt", "conventional", "single"}
        SBRT to the vertebral body (7 posterior beams, steep fall-off towards the cord),
        an AP/PA conventional plan, or a single PA field.
    seed : any
        Derives every UID (and the anatomy when ``vary``): same seed, identical files.
    prescription_gy, fractions
        Default 27 Gy/3 (sbrt), 30 Gy/10 (conventional), 8 Gy/1 (single).
    cord_dmax_gy : float, optional
        The analytic cord maximum the dose is built to give (default 17/27 of the
        prescription for SBRT, 31/30 for AP/PA, 1.12 for a PA field). For SBRT it sets the
        fall-off length ``gap / ln(Rx / cord_dmax)``; for the open fields the depth term.
    anatomy, vary
        The anatomy (default :class:`SpineAnatomy`), or ``vary=True`` for
        :func:`varied_anatomy` drawn from ``seed``.
    orientation, summation, bits
        Passed to the RTDOSE builder (BEAM writes one dose per beam, FRACTION the dose of
        one fraction).
    """
    if kind not in SPINE_KINDS:
        raise ValueError(f"kind must be one of {sorted(SPINE_KINDS)}")
    spec = SPINE_KINDS[kind]
    rx = float(prescription_gy if prescription_gy is not None else spec["prescription_gy"])
    n = int(fractions if fractions is not None else spec["fractions"])
    target = float(cord_dmax_gy if cord_dmax_gy is not None else spec["cord_ratio"] * rx)
    if anatomy is None:
        anatomy = varied_anatomy(seed) if vary else SpineAnatomy()
    dose = _spine_dose(kind, anatomy, rx, target)
    label = (label or f"{SPINE_KINDS[kind]['tag']}_{rx:g}GY{n}")[:16]  # RTPlanLabel is SH
    return SpineCase(
        kind=kind, anatomy=anatomy, dose=dose, prescription_gy=rx, fractions=n, label=label,
        date=date, intent=intent or spec["intent"], angles=tuple(spec["angles"]),
        contour_step=spec["contour_step"], dose_step=spec["dose_step"], seed=seed,
        patient_id=patient_id, patient_name=patient_name,
        frame_uid=frame_uid or make_uid("rtcheck-synthetic", seed, "frame"),
        study_uid=study_uid or make_uid("rtcheck-synthetic", seed, "study"),
        orientation=orientation, summation=summation, bits=bits)


def _spine_dose(kind: str, a: SpineAnatomy, rx: float, cord_dmax: float):
    """The analytic dose of ``kind`` whose maximum over the cord is ``cord_dmax``."""
    if kind == "sbrt":
        if not 0 < cord_dmax < rx:
            raise ValueError("an SBRT cord maximum must be below the prescription")
        falloff = a.cord_gap / np.log(rx / cord_dmax)
        return SBRTDose(rx, a.centre, a.sbrt_ptv, a.sbrt_ptv_half_length, float(falloff))
    excess = cord_dmax / rx - 1.0
    if excess < 0:
        raise ValueError("an open-field cord maximum cannot be below the prescription here")
    v = (a.cord_y + a.cord[1]) / 100.0  # the cord's posterior edge
    if kind == "single":
        return ConventionalDose(rx, a.centre, linear=excess / v)
    return ConventionalDose(rx, a.centre, quadratic=excess / v ** 2)


def spine_plan(kind: str = "sbrt", seed: object = 0, **kwargs) -> dict[str, FileDataset]:
    """The DICOM objects of :func:`spine_case` (keys "RP", "RS", "RD" or "RD.B<n>")."""
    return spine_case(kind, seed=seed, **kwargs).datasets()


def write_plan(folder: str | os.PathLike, datasets: Mapping[str, Dataset],
               tag: str | None = None) -> list[Path]:
    """Write ``datasets`` as ``<key>.dcm`` (or ``<key>.<tag>.dcm``) files in ``folder``."""
    suffix = f".{tag}" if tag else ""
    return [write(ds, Path(folder) / f"{key}{suffix}.dcm") for key, ds in datasets.items()]


# --------------------------------------------------------------------------------------
# Batch archives: spine SBRT plans with known verdicts
# --------------------------------------------------------------------------------------
# Used by the batch benchmark (benchmarks/batch.py) and the batch tests (tests/support), so
# that neither copies the other.

#: Analytic cord maximum (Gy) of each kind of plan; the limit for 3 fractions is 20.3 Gy.
CORD_DMAX_GY = {"pass": 17.0, "fail": 23.0}
#: Facts that make every rule of the referential decidable for these plans: 27 Gy/3 is a
#: listed oligometastatic scheme and within the spine SBRT range; L2 is outside C5-T10 (no
#: oesophagus rule); no prior course.
FACTS = {"indication": "oligometastatic", "site": "spine", "vertebral_level": "L2"}


def spine_datasets(kind: str, seed: object, **kwargs) -> dict[str, FileDataset]:
    """The RP/RS/RD datasets of an SBRT spine plan whose cord maximum is CORD_DMAX_GY[kind].

    The synthetic thecal sac lies in the steep fall-off 1 mm behind the vertebral body and is
    over the 20.3 Gy limit in every synthetic SBRT plan, whatever the cord maximum; Sahgal's
    limit is read on the thecal sac first. Without it the cord stands in for the sac and the
    analytic cord maximum (17 or 23 Gy) decides, so the expected verdicts stay known.
    """
    ds = spine_plan("sbrt", seed=seed, cord_dmax_gy=CORD_DMAX_GY[kind], vary=True, **kwargs)
    _drop_roi(ds["RS"], "ThecalSac")
    return ds


def _drop_roi(rs: Dataset, name: str) -> None:
    """Remove the ROI called ``name`` from a structure set dataset, in place."""
    gone = {r.ROINumber for r in rs.StructureSetROISequence if r.ROIName == name}
    rs.StructureSetROISequence = [r for r in rs.StructureSetROISequence
                                  if r.ROINumber not in gone]
    rs.ROIContourSequence = [r for r in rs.ROIContourSequence
                             if r.ReferencedROINumber not in gone]
    rs.RTROIObservationsSequence = [r for r in rs.RTROIObservationsSequence
                                    if r.ReferencedROINumber not in gone]


def write_spine_plan(folder: Path, kind: str = "pass", *, patient_id: str = "SYNTH",
                     label: str = "SPINE27", dose: bool = True, structures: bool = True
                     ) -> dict:
    """Write one plan (RP/RS/RD.<label>.dcm) into ``folder``; returns the paths and the plan
    and dose UIDs. ``dose=False`` or ``structures=False`` leaves that file out."""
    ds = spine_datasets(kind, (patient_id, label), patient_id=patient_id, label=label)
    keep = {k: v for k, v in ds.items()
            if (dose or k != "RD") and (structures or k != "RS")}
    paths = dict(zip(keep, write_plan(folder, keep, tag=label)))
    return {"plan_uid": ds["RP"].SOPInstanceUID, "dose_uid": ds["RD"].SOPInstanceUID,
            "plan": paths["RP"], "dose": folder / f"RD.{label}.dcm",
            "structures": folder / f"RS.{label}.dcm"}


def _retag(t: dict, patient_id: str) -> None:
    """Give a template plan a new patient and fresh, consistent UIDs."""
    uid = {k: generate_uid() for k in ("RP", "RS", "RD", "frame", "study")}
    for k in ("RP", "RS", "RD"):
        ds = t[k]
        ds.PatientID = patient_id
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid[k]
        ds.StudyInstanceUID = uid["study"]
    t["RP"].FrameOfReferenceUID = t["RD"].FrameOfReferenceUID = uid["frame"]
    t["RS"].ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID = uid["frame"]
    for roi in t["RS"].StructureSetROISequence:
        roi.ReferencedFrameOfReferenceUID = uid["frame"]
    t["RP"].ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID = uid["RS"]
    t["RD"].ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID = uid["RP"]


def build_archive(root: Path, n: int, *, anatomies: int = 4) -> list[str]:
    """``n`` plans in ``root/PATxxxxx/courseK/`` from ``anatomies`` template anatomies,
    alternating pass (even index) and fail (odd index). Returns the patient IDs.

    The templates are copied with fresh UIDs (:func:`_retag`), not resampled: fast."""
    templates = [{k: spine_datasets(k, ("template", i)) for k in CORD_DMAX_GY}
                 for i in range(anatomies)]
    patients = []
    for i in range(n):
        t = templates[i % anatomies]["pass" if i % 2 == 0 else "fail"]
        patient = f"PAT{i:05d}"
        patients.append(patient)
        _retag(t, patient)
        write_plan(root / patient / f"course{1 + i % 3}", t)
    return patients


# --------------------------------------------------------------------------------------
# Independent truth by dense sampling
# --------------------------------------------------------------------------------------

def polygon_mask(polygon: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Points (x, y) inside ``polygon`` (N x 2) by the even-odd rule (ray casting)."""
    px, py = np.asarray(polygon, dtype=float).T
    inside = np.zeros(np.broadcast(x, y).shape, dtype=bool)
    for k in range(len(px)):
        x0, y0, x1, y1 = px[k - 1], py[k - 1], px[k], py[k]
        if y0 == y1:
            continue
        crosses = (y0 > y) != (y1 > y)
        x_cross = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (x < x_cross)
    return inside


def roi_samples(roi: ROI, slab: float, xy_step: float = 0.05, z_step: float = 0.5
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Sample points filling an ROI: each contour plane's polygons (even-odd) extruded over
    its slab ``[z - slab/2, z + slab/2]``, on a lattice of cell ``xy_step`` x ``z_step``
    (cell centres). Returns x, y, z arrays and the volume of one sample (mm3)."""
    xs, ys, zs = [], [], []
    by_plane: dict[float, list[np.ndarray]] = {}
    for z, xy in roi.contours:
        by_plane.setdefault(round(float(z), 3), []).append(np.asarray(xy, dtype=float))
    n_sub = max(1, int(round(slab / z_step)))
    dz = slab / n_sub
    for z, polys in by_plane.items():
        allxy = np.vstack(polys)
        lo, hi = allxy.min(axis=0), allxy.max(axis=0)
        gx = np.arange(lo[0] + xy_step / 2, hi[0], xy_step)
        gy = np.arange(lo[1] + xy_step / 2, hi[1], xy_step)
        X, Y = np.meshgrid(gx, gy)
        mask = np.zeros(X.shape, dtype=bool)
        for poly in polys:
            mask ^= polygon_mask(poly, X, Y)
        px, py = X[mask], Y[mask]
        for k in range(n_sub):
            xs.append(px)
            ys.append(py)
            zs.append(np.full(px.size, z - slab / 2 + (k + 0.5) * dz))
    return (np.concatenate(xs), np.concatenate(ys), np.concatenate(zs),
            xy_step * xy_step * dz)


def dose_at_volume(doses: np.ndarray, sample_volume_mm3: float, volume_cc: float) -> float:
    """D(volume): the lowest dose within the hottest ``volume_cc`` of the samples."""
    ordered = np.sort(np.asarray(doses))[::-1]
    k = int(np.ceil(volume_cc * 1000.0 / sample_volume_mm3)) - 1
    return float(ordered[min(max(k, 0), ordered.size - 1)])


def roi_by_name(rois: Sequence[ROI], name: str) -> ROI:
    found = [r for r in rois if r.name == name]
    if len(found) != 1:
        raise KeyError(f"{len(found)} ROIs named {name!r}")
    return found[0]


# --------------------------------------------------------------------------------------
# The sample set
# --------------------------------------------------------------------------------------

SAMPLE_PATIENT_NAME = "Sample^Spine"


@dataclass
class Sample:
    """One plan of the sample set: where it goes and what it is.

    ``treatment_dates``: the days its fractions were delivered (YYYYMMDD), one RT Beams
    Treatment Record each ("RT.F01.dcm"...); empty for a plan with no records.
    """

    folder: str
    tag: str | None
    case: SpineCase
    description: str
    treatment_dates: tuple[str, ...] = ()

    def datasets(self) -> dict[str, FileDataset]:
        """The plan's objects (:meth:`SpineCase.datasets`) and its treatment records."""
        return {**self.case.datasets(), **self.case.treatment_records(self.treatment_dates)}


def sample_set() -> list[Sample]:
    """The plans written under ``sample_plans/`` (see sample_plans/README.md)."""

    def case(kind: str, key: str, patient: int, **kw) -> SpineCase:
        return spine_case(kind, seed=f"rtcheck-sample/{key}",
                          patient_id=f"RTCHECK-SAMPLE-{patient:02d}",
                          patient_name=SAMPLE_PATIENT_NAME, **kw)

    reirr_frame = make_uid("rtcheck-sample", "reirradiation", "frame")
    two_frame = make_uid("rtcheck-sample", "two-plans", "frame")
    two_study = make_uid("rtcheck-sample", "two-plans", "study")
    return [
        Sample("spine-30Gy10", None,
               case("conventional", "spine-30Gy10", 1, date="20260301", label="SPINE_30GY10"),
               "Palliative spine, 30 Gy in 10 fractions, AP/PA open fields. The cord lies "
               "inside the field and the PTV (a box over the vertebra and its canal)."),
        Sample("spine-sbrt-27Gy3", None,
               case("sbrt", "spine-sbrt-27Gy3", 2, date="20260305", label="SBRT_27GY3"),
               "Spine SBRT, 27 Gy in 3 fractions to the vertebral body + 2 mm, 7 posterior "
               "beams; the cord is 4 mm behind the PTV, in a steep fall-off."),
        Sample("single-8Gy1", None,
               case("single", "single-8Gy1", 3, date="20260310", label="SPINE_8GY1"),
               "Palliative spine, a single 8 Gy fraction, one PA field."),
        Sample("reirradiation/course1-30Gy10", None,
               case("conventional", "reirradiation/course1", 4, date="20250301",
                    frame_uid=reirr_frame, label="C1_30GY10"),
               "Re-irradiation, first course: 30 Gy/10 AP/PA on the same vertebra.",
               treatment_dates=weekdays("20250303", 10)),
        Sample("reirradiation/course2-sbrt-27Gy3", None,
               case("sbrt", "reirradiation/course2", 4, date="20260301",
                    frame_uid=reirr_frame, cord_dmax_gy=15.0, intent="PALLIATIVE",
                    label="C2_SBRT_27GY3"),
               "Re-irradiation, second course 12 months later: SBRT 27 Gy/3, cord held to "
               "15.0 Gy (same patient ID and frame of reference as course 1)."),
        Sample("two-plans", "A",
               case("conventional", "two-plans/A", 5, date="20260312", frame_uid=two_frame,
                    study_uid=two_study, prescription_gy=20.0, fractions=5,
                    label="PLAN_A_20GY5"),
               "Plan A of two in one folder: 20 Gy/5 AP/PA."),
        Sample("two-plans", "B",
               case("single", "two-plans/B", 5, date="20260312", frame_uid=two_frame,
                    study_uid=two_study, label="PLAN_B_8GY1"),
               "Plan B of two in one folder: 8 Gy/1 PA (same patient, same images)."),
    ]


def make_sample_plans(out_dir: str | os.PathLike) -> list[Sample]:
    """Write the sample set under ``out_dir`` (deterministic: identical bytes every time)."""
    samples = sample_set()
    for s in samples:
        write_plan(Path(out_dir) / s.folder, s.datasets(), s.tag)
    return samples
