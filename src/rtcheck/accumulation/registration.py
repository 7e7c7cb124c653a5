"""How a prior course's coordinates map onto the current course's: same frame, or a REG.

Two courses planned on one CT share a FrameOfReferenceUID: their patient coordinates agree and
the prior dose is read at the current grid's points as they are. Courses planned on different
CTs have different frames; a DICOM Spatial Registration object (REG, SOP class
1.2.840.10008.5.1.4.1.1.66.1) then relates them. Each item of its RegistrationSequence names a
FrameOfReferenceUID and a 4 x 4 FrameOfReferenceTransformationMatrix that maps that frame's
patient coordinates into the registration's own frame (the fixed image's): x_reg = M_item x.
A prior point that corresponds to a current point x_c is therefore
``x_p = inv(M_prior) M_current x_c`` (an item for the registration's own frame may be omitted:
identity). Only RIGID matrices are accepted (an orthonormal rotation and a translation, bottom
row 0 0 0 1): a deformable or scaled registration is refused, never applied as if rigid.
With neither a shared frame nor a REG that names both frames, rtcheck does not guess.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtcheck.errors import InputError

REG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.1"
#: Largest deviation of R^T R from the identity for a rotation to count as rigid.
RIGID_TOLERANCE = 1e-4
#: Files larger than this are not opened when looking for REG objects beside a course (a
#: spatial registration is a few kB; CT slices and dose grids are skipped unread).
MAX_REG_BYTES = 1_000_000


@dataclass(frozen=True)
class Registration:
    """A rigid registration: for each frame it names, the matrix into its own frame."""

    path: str
    frame_of_reference_uid: str | None
    matrices: dict[str, np.ndarray]

    def matrix_into(self, frame: str) -> np.ndarray | None:
        """The matrix taking ``frame``'s coordinates into this registration's frame."""
        if frame in self.matrices:
            return self.matrices[frame]
        return np.eye(4) if frame == self.frame_of_reference_uid else None


@dataclass(frozen=True)
class Mapping:
    """How current coordinates map into a prior course's: ``matrix`` (4 x 4) or None for the
    same frame; ``how`` in words (for the report); ``registration`` the REG file used."""

    matrix: np.ndarray | None
    how: str
    registration: str | None = None


def read_registration(path: str | os.PathLike) -> Registration:
    """Read a REG file's rigid matrices.

    Raises
    ------
    InputError
        Not a spatial registration, or a matrix that is missing, malformed or not rigid.
    """
    import pydicom

    where = str(path)
    try:
        ds = pydicom.dcmread(where, stop_before_pixels=True)
    except Exception as exc:  # pydicom raises many kinds for a file that is not DICOM
        raise InputError(f"{where}: not a readable DICOM file ({exc})") from exc
    if str(ds.get("SOPClassUID", "")) != REG_SOP_CLASS and ds.get("Modality") != "REG":
        raise InputError(f"{where}: not a DICOM spatial registration (REG) object")
    matrices: dict[str, np.ndarray] = {}
    for item in ds.get("RegistrationSequence", []):
        frame = str(item.get("FrameOfReferenceUID", "") or "")
        for reg in item.get("MatrixRegistrationSequence", []):
            for m in reg.get("MatrixSequence", []):
                matrices[frame] = _rigid(m, where, frame)
    if not matrices:
        raise InputError(f"{where}: the registration holds no FrameOfReferenceTransformationMatrix")
    return Registration(where, str(ds.get("FrameOfReferenceUID", "") or "") or None, matrices)


def _rigid(item, where: str, frame: str) -> np.ndarray:
    kind = str(item.get("FrameOfReferenceTransformationMatrixType", "RIGID") or "RIGID")
    if kind != "RIGID":
        raise InputError(f"{where}: matrix type {kind} for frame {frame}: only RIGID "
                         "registrations are supported (a deformable or scaled one is not "
                         "applied as if rigid)")
    try:
        values = [float(v) for v in item.FrameOfReferenceTransformationMatrix]
    except (AttributeError, TypeError, ValueError) as exc:
        raise InputError(f"{where}: FrameOfReferenceTransformationMatrix for frame {frame} is "
                         "not 16 numbers") from exc
    if len(values) != 16 or not all(math.isfinite(v) for v in values):
        raise InputError(f"{where}: FrameOfReferenceTransformationMatrix for frame {frame} is "
                         "not 16 finite numbers")
    m = np.array(values).reshape(4, 4)  # row-major, as DICOM stores it
    rot = m[:3, :3]
    if not np.allclose(m[3], [0, 0, 0, 1]) or \
            np.abs(rot.T @ rot - np.eye(3)).max() > RIGID_TOLERANCE or np.linalg.det(rot) < 0:
        raise InputError(f"{where}: the matrix for frame {frame} is not rigid (a rotation and a "
                         "translation)")
    return m


def find_registrations(folders: Iterable[str | os.PathLike]) -> list[Registration]:
    """The REG objects in these folders (recursively); small files only, headers only.
    An unreadable or non-rigid REG found this way is skipped (it was not asked for)."""
    out, seen = [], set()
    for folder in folders:
        for root, _dirs, files in os.walk(str(folder)):
            for name in sorted(files):
                path = Path(root) / name
                if path in seen or not path.is_file() or path.stat().st_size > MAX_REG_BYTES:
                    continue
                seen.add(path)
                if _is_reg(path):
                    try:
                        out.append(read_registration(path))
                    except InputError:
                        continue
    return out


def _is_reg(path: Path) -> bool:
    import pydicom

    try:
        ds = pydicom.dcmread(str(path), stop_before_pixels=True,
                             specific_tags=["SOPClassUID", "Modality"])
    except Exception:  # noqa: BLE001 (any failure to read a file not asked for: not a REG)
        return False
    return str(ds.get("SOPClassUID", "")) == REG_SOP_CLASS or ds.get("Modality") == "REG"


def mapping(current_frame: str | None, prior_frame: str | None,
            registrations: Sequence[Registration]) -> Mapping | str:
    """How the current course's coordinates map into the prior's, or why it is unknown."""
    if current_frame and current_frame == prior_frame:
        return Mapping(None, "same FrameOfReferenceUID")
    if not current_frame or not prior_frame:
        return "a course's dose states no FrameOfReferenceUID"
    for reg in registrations:
        into_c, into_p = reg.matrix_into(current_frame), reg.matrix_into(prior_frame)
        if into_c is not None and into_p is not None:
            return Mapping(np.linalg.inv(into_p) @ into_c,
                           f"rigid registration {Path(reg.path).name}", reg.path)
    return ("the courses have different FrameOfReferenceUIDs and no spatial registration "
            "(REG) relates them (give --registration FILE)")
