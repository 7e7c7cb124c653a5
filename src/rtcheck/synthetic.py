"""Synthetic DICOM-RT objects (RTPLAN, RTDOSE, RTSTRUCT) for tests, bad-input tests and benchmarks.

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

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

RT_PLAN_STORAGE = "1.2.840.10008.5.1.4.1.1.481.5"
RT_DOSE_STORAGE = "1.2.840.10008.5.1.4.1.1.481.2"
RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"

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
    text = np.format_float_positional(round(float(value), digits), trim="-")
    return "0" if text in ("-0", "-0.") else text


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


def _contour_item(kind: str, xyz: np.ndarray) -> Dataset:
    return _item(ContourGeometricType=kind, NumberOfContourPoints=len(xyz),
                 ContourData=_ds_list(xyz))


def _roi_contour_item(roi: ROI) -> Dataset:
    item = _item(ROIDisplayColor=list(roi.color), ReferencedROINumber=roi.number)
    contours = []
    for z, xy in roi.contours:
        xy = np.asarray(xy, dtype=float)
        xyz = np.column_stack([xy, np.full(len(xy), float(z))])
        contours.append(_contour_item("CLOSED_PLANAR", xyz))
    for p in roi.points:
        contours.append(_contour_item("POINT", np.asarray(p, dtype=float).reshape(1, 3)))
    if contours:
        item.ContourSequence = DicomSequence(contours)
    return item


def structure_set_dataset(
        rois: Mapping[str, object] | Sequence[ROI], *, types: Mapping[str, str] | None = None,
        label: str = "RTCHECK", frame_uid: str | None = None,
        referenced_series_uid: str | None = None, patient_id: str = DEFAULT_PATIENT_ID,
        patient_name: str = DEFAULT_PATIENT_NAME, study_uid: str | None = None,
        series_uid: str | None = None, sop_uid: str | None = None,
        date: str = "20260301") -> FileDataset:
    """An RTSTRUCT with the given ROIs.

    Parameters
    ----------
    rois : dict name -> list of (z, N x 2) contours or ROI, or a list of ROI
        A list allows duplicate names; :func:`point_roi` makes a POINT ROI, an empty list an
        empty ROI (listed in StructureSetROISequence, no ContourSequence).
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
        [_roi_contour_item(r) for r in roi_list if not r.omit_contour_item])
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
    refs = []
    for beam in group.beams:
        dose = group.dose_per_fraction_gy * beam.weight / total_weight
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
