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

Rooms, each leaning only on those above it
------------------------------------------
``read``
    Opening one file safely: sniffing, truncation, modality; the lenient value parsers.
``rtrecord``, ``rtstruct``, ``rtplan``, ``rtdose``
    One modality each: its reader, and the facts a folder scan records of it; ``rtdose``
    also holds the dose plausibility check.
``discovery``
    :class:`FileHeader`, :func:`scan`, :func:`walk_files`, :class:`PlanGroup`,
    :func:`group_plans`: which files there are and which plan each belongs to.
``summation``
    The plan's dose built from its dose files by DoseSummationType.
``loading``
    :func:`load_plan` and its pairing policy.
``tps_dvh``
    The planning system's own DVHs stored in an RTDOSE (import it from
    ``rtcheck.dicom.tps_dvh``; nothing else here uses it).

Importing this package loads pydicom and numpy, never the checker, the report or batch.
"""

from rtcheck.dicom.discovery import FileHeader, PlanGroup, group_plans, scan, walk_files
from rtcheck.dicom.loading import load_plan
from rtcheck.dicom.read import (
    DICOM_EXTENSIONS,
    RT_MODALITIES,
    SNIFF_BYTES,
    SOP_CLASSES,
    PathLike,
)
from rtcheck.dicom.rtdose import (
    DOSE_MAX_BAND,
    TARGET_MEDIAN_BAND,
    check_dose_plausibility,
    read_dose,
)
from rtcheck.dicom.rtplan import beams_total_gy, read_plan
from rtcheck.dicom.rtstruct import (
    MAX_COORDINATE_MM,
    PLANAR_TOLERANCE_MM,
    read_structure_set,
)

__all__ = [
    "DICOM_EXTENSIONS",
    "DOSE_MAX_BAND",
    "MAX_COORDINATE_MM",
    "PLANAR_TOLERANCE_MM",
    "RT_MODALITIES",
    "SNIFF_BYTES",
    "SOP_CLASSES",
    "TARGET_MEDIAN_BAND",
    "FileHeader",
    "PathLike",
    "PlanGroup",
    "beams_total_gy",
    "check_dose_plausibility",
    "group_plans",
    "load_plan",
    "read_dose",
    "read_plan",
    "read_structure_set",
    "scan",
    "walk_files",
]
