"""Writing an RTDOSE: a computed dose grid (EQD2, BED, accumulated courses) back to DICOM.

:func:`rtdose_dataset` builds an RT Dose object a planning system can import as a reference
dose: new SOP instance and series UIDs, the patient, study and frame of reference of the plan
it was computed on (copied from that plan's RTDOSE), the grid written axial with rows along +y
and columns along +x (ImageOrientationPatient 1\\0\\0\\0\\1\\0, valid whatever the patient
position, since the axes are patient axes), 32-bit unsigned pixels with DoseGridScaling = the
largest value / (2^32 - 1), so that every value is stored within half that step.

DoseType is EFFECTIVE (a dose modified by a biological model, as DICOM defines it) and
DoseSummationType PLAN by default; DoseComment (at most 64 characters) says what it is in
short, ImageComments states the model, alpha/beta map and courses in full.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence

import numpy as np

from rtcheck.errors import InputError
from rtcheck.files import atomic_path
from rtcheck.model import DoseGrid

RT_DOSE_STORAGE = "1.2.840.10008.5.1.4.1.1.481.2"
RT_PLAN_STORAGE = "1.2.840.10008.5.1.4.1.1.481.5"
#: Bits per stored value: 32-bit unsigned, a step of max / 4.3e9 (far below any dose meaning).
BITS = 32
#: Attributes copied from the reference RTDOSE (patient, study, frame of reference).
COPIED = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
          "StudyDate", "StudyTime", "StudyID", "ReferringPhysicianName", "AccessionNumber",
          "FrameOfReferenceUID", "PositionReferenceIndicator")
#: DoseComment is LO: at most 64 characters.
DOSE_COMMENT_MAX = 64


def _ds(values: Sequence[float]) -> list[str]:
    """Decimal strings of at most 16 characters (DICOM DS)."""
    from pydicom.valuerep import format_number_as_ds

    return [format_number_as_ds(float(v)) for v in values]


def rtdose_dataset(grid: DoseGrid, reference: os.PathLike | str, *, comment: str,
                   description: str, dose_type: str = "EFFECTIVE", summation: str = "PLAN",
                   plan_uid: str | None = None, series_description: str = "rtcheck EQD2"):
    """An RTDOSE (pydicom FileDataset) holding ``grid`` (Gy, finite and >= 0 everywhere).

    Parameters
    ----------
    grid : DoseGrid
        Increasing x, y, z axes (any z spacing); ``values[k, j, i]`` at (x[i], y[j], z[k]).
    reference : path
        The RTDOSE the grid was computed on: its patient, study and frame of reference are
        copied (the frame of reference of ``grid`` must be that one's).
    comment : str
        DoseComment (cut to 64 characters).
    description : str
        ImageComments: the model, alpha/beta map and courses, in full.
    plan_uid : str, optional
        The RTPLAN it belongs to (ReferencedRTPlanSequence, required for a PLAN dose).

    Raises
    ------
    InputError
        Values that are not finite or negative, or a grid in another frame than the reference.
    """
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.sequence import Sequence as DicomSequence
    from pydicom.tag import Tag
    from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

    values = np.asarray(grid.values, dtype=float)
    if not np.isfinite(values).all() or (values < 0).any():
        raise InputError("the dose grid to write holds values that are not finite or are "
                         "negative: nothing written")
    ref = pydicom.dcmread(os.fspath(reference), stop_before_pixels=True)
    if grid.frame_of_reference_uid and ref.get("FrameOfReferenceUID") not in (
            None, grid.frame_of_reference_uid):
        raise InputError(f"{reference}: frame of reference differs from the grid's")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(RT_DOSE_STORAGE)
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    for keyword in COPIED:
        if keyword in ref:
            setattr(ds, keyword, ref[keyword].value)
    now = dt.datetime.now()
    ds.SOPClassUID, ds.SOPInstanceUID = RT_DOSE_STORAGE, meta.MediaStorageSOPInstanceUID
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality, ds.Manufacturer = "RTDOSE", "rtcheck"
    ds.SeriesNumber, ds.InstanceNumber = 1, 1
    ds.SeriesDescription = series_description[:DOSE_COMMENT_MAX]
    ds.ContentDate, ds.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.InstanceCreationDate, ds.InstanceCreationTime = ds.ContentDate, ds.ContentTime
    ds.ImagePositionPatient = _ds((grid.x[0], grid.y[0], grid.z[0]))
    ds.ImageOrientationPatient = _ds((1, 0, 0, 0, 1, 0))
    ds.PixelSpacing = _ds((_step(grid.y), _step(grid.x)))  # row spacing (along y) first
    ds.GridFrameOffsetVector = _ds(grid.z - grid.z[0])
    ds.FrameIncrementPointer = Tag("GridFrameOffsetVector")
    ds.NumberOfFrames, ds.Rows, ds.Columns = values.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = BITS
    ds.HighBit, ds.PixelRepresentation = BITS - 1, 0
    ds.DoseUnits, ds.DoseType, ds.DoseSummationType = "GY", dose_type, summation
    ds.DoseComment = comment[:DOSE_COMMENT_MAX]
    ds.ImageComments = description
    top = float(values.max())
    ds.DoseGridScaling = _ds(((top if top > 0 else 1.0) / (2 ** BITS - 1),))[0]
    scaling = float(ds.DoseGridScaling)
    ints = np.clip(np.rint(values / scaling), 0, 2 ** BITS - 1).astype("<u4")
    ds.PixelData = ints.tobytes()
    if plan_uid:
        item = pydicom.Dataset()
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = RT_PLAN_STORAGE, plan_uid
        ds.ReferencedRTPlanSequence = DicomSequence([item])
    return ds


def _step(axis: np.ndarray) -> float:
    """The spacing of an in-plane axis, which a DICOM grid needs regular."""
    if axis.size < 2:
        return 1.0
    steps = np.diff(axis)
    if np.ptp(steps) > 1e-4 * max(abs(float(steps[0])), 1e-9):
        raise InputError("the grid's rows or columns are not evenly spaced: not writable as "
                         "an RTDOSE")
    return float(steps.mean())


def write_rtdose(path: os.PathLike | str, dataset) -> None:
    """Write ``dataset`` to ``path`` atomically (a temporary file in its folder, renamed)."""
    with atomic_path(path, ".dcm") as tmp:
        dataset.save_as(tmp, enforce_file_format=True)
