"""Dose grids from RTDOSE datasets: geometry, pixel values, summation and fraction scaling.

This module turns one pydicom RTDOSE dataset into a :class:`~rtcheck.model.DoseGrid` whose
axes are increasing patient coordinates whatever the patient orientation, and combines grids
(BEAM doses summed, FRACTION doses multiplied). File reading and the pairing of doses with
plans live in :mod:`rtcheck.dicom`.

Geometry follows DICOM PS3.3 C.7.6.2.1.1 and C.8.8.3.2: the voxel in frame ``k``, row ``j``
and column ``i`` is at ``IPP + i * PixelSpacing[1] * r + j * PixelSpacing[0] * c
+ offset[k] * n`` where ``r`` and ``c`` are the row and column direction cosines of
ImageOrientationPatient and ``n = r x c``. Relative GridFrameOffsetVector values (first
value 0) are therefore measured along ``n``, which is -z for feet-first supine
(-1,0,0,0,1,0) and feet-first prone (1,0,0,0,-1,0).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from pydicom.dataset import Dataset

from rtcheck.errors import InputError
from rtcheck.model import DoseGrid

#: Direction cosines closer than this to 0 or +-1 count as exactly axis-aligned.
COSINE_TOLERANCE = 1e-4
#: Voxel-centre positions closer than this (mm) are the same position.
POSITION_TOLERANCE_MM = 1e-3

DOSE_UNITS = ("GY", "RELATIVE")


def dose_grid_from_dataset(ds: Dataset, path: str | os.PathLike | None = None) -> DoseGrid:
    """The dose grid of one RTDOSE dataset, as stored (no summation or fraction scaling).

    Parameters
    ----------
    ds : pydicom.Dataset
        A complete RTDOSE dataset (pixel data included).
    path : str, optional
        Its file, named in error messages and recorded in :attr:`DoseGrid.paths`.

    Returns
    -------
    DoseGrid
        ``values[k, j, i]`` is the dose at ``(x[i], y[j], z[k])`` with increasing axes, in
        DoseUnits (``GY`` or ``RELATIVE``) after DoseGridScaling.

    Raises
    ------
    InputError
        Unknown or missing DoseUnits, oblique or non-axial orientation, inconsistent frame
        offsets, missing or truncated pixel data.
    """
    where = None if path is None else str(path)
    units = _dose_units(ds, where)
    rows, cols = _required_int(ds, "Rows", where), _required_int(ds, "Columns", where)
    nframes = _number_of_frames(ds)
    axes = _GridAxes(ds, nframes, rows, cols, where)
    stored = _stored_values(ds, nframes, rows, cols, where)
    scaling = _dose_grid_scaling(ds, stored, where)
    values = axes.to_patient_order(stored, scaling)
    summation = str(ds.get("DoseSummationType", "") or "").strip().upper()
    notes = []
    if not summation:
        notes.append("DoseSummationType missing: the dose is taken as a whole-plan (PLAN) dose")
        summation = "PLAN"
    if units == "RELATIVE":
        notes.append("DoseUnits RELATIVE: values are relative doses, not Gy")
    dose_type = str(ds.get("DoseType", "") or "").strip().upper()
    if dose_type and dose_type != "PHYSICAL":
        notes.append(f"DoseType {dose_type} (not PHYSICAL)")
    return DoseGrid(
        x=axes.x, y=axes.y, z=axes.z, values=values, units=units, summation=summation,
        frame_of_reference_uid=_str_or_none(ds.get("FrameOfReferenceUID")),
        sop_instance_uids=(str(ds.get("SOPInstanceUID", "")),),
        paths=() if where is None else (where,),
        notes=notes,
    )


# --------------------------------------------------------------------------------------
# Attributes
# --------------------------------------------------------------------------------------

def _str_or_none(value) -> str | None:
    text = "" if value is None else str(value).strip()
    return text or None


def _required_int(ds: Dataset, keyword: str, where: str | None) -> int:
    value = ds.get(keyword)
    if value in (None, ""):
        raise InputError(f"RTDOSE has no {keyword}", where)
    return int(value)


def _number_of_frames(ds: Dataset) -> int:
    value = ds.get("NumberOfFrames")
    return 1 if value in (None, "") else max(int(value), 1)


def _dose_units(ds: Dataset, where: str | None) -> str:
    units = str(ds.get("DoseUnits", "") or "").strip().upper()
    if not units:
        raise InputError("RTDOSE has no DoseUnits: cannot tell whether doses are in Gy", where)
    if units not in DOSE_UNITS:
        raise InputError(f"DoseUnits {units!r} is neither GY nor RELATIVE: doses not understood",
                         where)
    return units


def _dose_grid_scaling(ds: Dataset, stored: np.ndarray, where: str | None) -> float:
    value = ds.get("DoseGridScaling")
    if value in (None, ""):
        if stored.dtype.kind == "f":  # float pixel data carry doses directly
            return 1.0
        raise InputError("RTDOSE has integer pixel data but no DoseGridScaling: stored values "
                         "cannot be converted to dose", where)
    scaling = float(value)
    if not np.isfinite(scaling) or scaling <= 0:
        raise InputError(f"DoseGridScaling {value} is not a positive number", where)
    return scaling


# --------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------

def _axis_of(cosines: np.ndarray, what: str, iop: list[float], where: str | None
             ) -> tuple[int, int]:
    """Patient axis (0 x, 1 y, 2 z) and sign of an axis-aligned direction cosine vector."""
    rounded = np.round(cosines)
    if (np.max(np.abs(cosines - rounded)) > COSINE_TOLERANCE
            or np.count_nonzero(rounded) != 1):
        raise InputError(
            f"oblique dose grid orientation (ImageOrientationPatient {iop}: the {what} "
            "direction is not along a patient axis) is not supported", where)
    axis = int(np.flatnonzero(rounded)[0])
    return axis, int(rounded[axis])


class _GridAxes:
    """Patient coordinates of an RTDOSE's array axes and how to reorder them to (z, y, x)."""

    def __init__(self, ds: Dataset, nframes: int, rows: int, cols: int,
                 where: str | None) -> None:
        ipp = _float_list(ds, "ImagePositionPatient", 3, where)
        iop = _float_list(ds, "ImageOrientationPatient", 6, where)
        spacing = _float_list(ds, "PixelSpacing", 2, where)
        if min(spacing) <= 0:
            raise InputError(f"PixelSpacing {spacing} is not positive", where)
        r, c = np.array(iop[:3]), np.array(iop[3:])
        col_axis, col_sign = _axis_of(r, "row", iop, where)   # moving along a row: columns
        row_axis, row_sign = _axis_of(c, "column", iop, where)  # moving down a column: rows
        if {col_axis, row_axis} != {0, 1}:
            raise InputError(
                f"dose planes are not axial (ImageOrientationPatient {iop}): only axial "
                "dose grids are supported", where)
        normal_sign = int(np.cross(np.round(r), np.round(c))[2])
        offsets = _frame_offsets(ds, nframes, ipp[2], iop, where)

        # Positions along each stored array axis, in the order pixels are stored.
        along_cols = ipp[col_axis] + col_sign * spacing[1] * np.arange(cols)
        along_rows = ipp[row_axis] + row_sign * spacing[0] * np.arange(rows)
        z = offsets.absolute if offsets.absolute is not None else (
            ipp[2] + normal_sign * offsets.relative)

        self.transpose = col_axis == 1  # decubitus: rows run along x, columns along y
        self.flip_cols, self.flip_rows = col_sign < 0, row_sign < 0
        self.frame_order = np.argsort(z, kind="stable")
        self.z = np.asarray(z, dtype=float)[self.frame_order]
        if self.z.size > 1 and np.min(np.diff(self.z)) < POSITION_TOLERANCE_MM:
            raise InputError("GridFrameOffsetVector gives two dose frames at the same position",
                             where)
        cols_sorted = along_cols[::-1] if self.flip_cols else along_cols
        rows_sorted = along_rows[::-1] if self.flip_rows else along_rows
        if self.transpose:
            self.x, self.y = rows_sorted, cols_sorted
        else:
            self.x, self.y = cols_sorted, rows_sorted

    def to_patient_order(self, stored: np.ndarray, scaling: float) -> np.ndarray:
        """Stored (frame, row, column) values as float64 dose in (z, y, x) order."""
        view = stored
        if self.flip_rows:
            view = view[:, ::-1, :]
        if self.flip_cols:
            view = view[:, :, ::-1]
        if self.transpose:
            view = view.transpose(0, 2, 1)
        if not np.array_equal(self.frame_order, np.arange(self.frame_order.size)):
            view = view[self.frame_order]
        # One pass: index/flip views are free, the multiply makes the contiguous result.
        return np.multiply(view, scaling, dtype=np.float64)


class _Offsets:
    def __init__(self, relative: np.ndarray | None = None,
                 absolute: np.ndarray | None = None) -> None:
        self.relative, self.absolute = relative, absolute


def _frame_offsets(ds: Dataset, nframes: int, ipp_z: float, iop: list[float],
                   where: str | None) -> _Offsets:
    """Frame positions from GridFrameOffsetVector (relative, or absolute z: C.8.8.3.2)."""
    raw = ds.get("GridFrameOffsetVector")
    if raw is None or raw == "" or (hasattr(raw, "__len__") and len(raw) == 0):
        if nframes > 1:
            raise InputError(f"RTDOSE has {nframes} frames but no GridFrameOffsetVector", where)
        return _Offsets(relative=np.zeros(1))
    values = np.atleast_1d(np.asarray(raw, dtype=float))
    if nframes == 1:
        values = values[:1]  # some single-frame files carry a longer vector: one plane is stored
    elif values.size != nframes:
        raise InputError(f"GridFrameOffsetVector has {values.size} values for {nframes} frames",
                         where)
    if abs(values[0]) <= POSITION_TOLERANCE_MM:
        return _Offsets(relative=values - values[0])
    if abs(values[0] - ipp_z) <= POSITION_TOLERANCE_MM:
        # Option (b): absolute patient z. The standard allows it only for HFS orientation,
        # but values equal to the IPP z are absolute z whatever the orientation says.
        return _Offsets(absolute=values)
    raise InputError(
        f"GridFrameOffsetVector starts at {values[0]:g}, neither 0 (relative offsets) nor the "
        f"ImagePositionPatient z {ipp_z:g} (absolute positions)", where)


def _float_list(ds: Dataset, keyword: str, n: int, where: str | None) -> list[float]:
    value = ds.get(keyword)
    try:
        out = [float(v) for v in value]
    except (TypeError, ValueError):
        out = []
    if len(out) != n or not all(np.isfinite(out)):
        raise InputError(f"RTDOSE {keyword} is missing or invalid ({value!r})", where)
    return out


# --------------------------------------------------------------------------------------
# Pixel data
# --------------------------------------------------------------------------------------

def _stored_values(ds: Dataset, nframes: int, rows: int, cols: int,
                   where: str | None) -> np.ndarray:
    """Stored pixel values, shape (frames, rows, columns), without copying when possible."""
    count = nframes * rows * cols
    if "PixelData" not in ds:
        for keyword, dtype in (("FloatPixelData", "f4"), ("DoubleFloatPixelData", "f8")):
            if keyword in ds:
                return _from_buffer(ds, ds[keyword].value, np.dtype(dtype), count,
                                    (nframes, rows, cols), where)
        raise InputError("RTDOSE has no pixel data (no dose grid)", where)
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        raise InputError("RTDOSE pixel data has more than one sample per pixel", where)
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is not None and syntax.is_compressed:
        return _decoded(ds, (nframes, rows, cols), where)
    bits = int(ds.get("BitsAllocated", 0) or 0)
    if bits not in (8, 16, 32):
        raise InputError(f"RTDOSE BitsAllocated {bits} is not supported", where)
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    dtype = np.dtype(f"{'i' if signed else 'u'}{bits // 8}")
    return _from_buffer(ds, ds.PixelData, dtype, count, (nframes, rows, cols), where)


def _is_little_endian(ds: Dataset) -> bool:
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is not None and syntax.is_transfer_syntax:
        return bool(syntax.is_little_endian)
    encoding = getattr(ds, "original_encoding", (None, None))
    return encoding[1] is not False  # files without meta (force=True) are little endian


def _from_buffer(ds: Dataset, buffer: bytes, dtype: np.dtype, count: int,
                 shape: tuple[int, int, int], where: str | None) -> np.ndarray:
    dtype = dtype.newbyteorder("<" if _is_little_endian(ds) else ">")
    if buffer is None or len(buffer) < count * dtype.itemsize:
        got = 0 if buffer is None else len(buffer)
        raise InputError(
            f"dose pixel data is truncated: {got} bytes for the {count * dtype.itemsize} that "
            f"{shape[0]} frame(s) of {shape[1]} x {shape[2]} need", where)
    return np.frombuffer(buffer, dtype=dtype, count=count).reshape(shape)


def _decoded(ds: Dataset, shape: tuple[int, int, int], where: str | None) -> np.ndarray:
    """Compressed pixel data, decoded by pydicom (RLE is built in; others need plugins)."""
    try:
        array = np.asarray(ds.pixel_array)
    except Exception as exc:  # pydicom raises many types for undecodable data
        raise InputError(f"cannot decode the compressed dose pixel data ({exc})", where) from exc
    if array.size != shape[0] * shape[1] * shape[2]:
        raise InputError(f"decoded dose pixel data has {array.size} values, expected "
                         f"{shape[0]} x {shape[1]} x {shape[2]}", where)
    return array.reshape(shape)


# --------------------------------------------------------------------------------------
# Combining grids
# --------------------------------------------------------------------------------------

def same_grid(a: DoseGrid, b: DoseGrid) -> bool:
    """True when two grids have the same voxel centres (within 1 um)."""
    return all(
        u.shape == v.shape and np.allclose(u, v, rtol=0, atol=POSITION_TOLERANCE_MM)
        for u, v in ((a.x, b.x), (a.y, b.y), (a.z, b.z)))


def _covers(source: np.ndarray, target: np.ndarray) -> bool:
    return (source[0] <= target[0] + POSITION_TOLERANCE_MM
            and source[-1] >= target[-1] - POSITION_TOLERANCE_MM)


def _interp_axis(values: np.ndarray, src: np.ndarray, dst: np.ndarray, axis: int
                 ) -> np.ndarray:
    """Linear interpolation of ``values`` along one axis from positions src to dst."""
    if src.size == 1:
        return np.repeat(values, dst.size, axis=axis)
    pos = np.clip(np.interp(dst, src, np.arange(src.size, dtype=float)), 0, src.size - 1)
    lo = np.minimum(pos.astype(np.int64), src.size - 2)
    t = pos - lo
    shape = [1] * values.ndim
    shape[axis] = dst.size
    t = t.reshape(shape)
    return (np.take(values, lo, axis=axis) * (1 - t)
            + np.take(values, lo + 1, axis=axis) * t)


def resample(dose: DoseGrid, onto: DoseGrid) -> np.ndarray:
    """Trilinear interpolation of ``dose`` at the voxel centres of ``onto``.

    Trilinear interpolation on a rectilinear grid is separable, so it is done one axis at a
    time (exact, and far cheaper in memory than interpolating 3-D points).

    Raises
    ------
    InputError
        When ``dose`` does not cover every voxel centre of ``onto``: dose outside a grid is
        unknown, and filling it with zero would under-estimate a sum.
    """
    for name, src, dst in (("x", dose.x, onto.x), ("y", dose.y, onto.y), ("z", dose.z, onto.z)):
        if not _covers(src, dst):
            raise InputError(
                f"dose grid spans {name} {src[0]:g}..{src[-1]:g} mm and does not cover the "
                f"grid it must be added to ({dst[0]:g}..{dst[-1]:g} mm): cannot sum without "
                "losing dose", ", ".join(dose.paths) or None)
    out = _interp_axis(dose.values, dose.x, onto.x, axis=2)
    out = _interp_axis(out, dose.y, onto.y, axis=1)
    return _interp_axis(out, dose.z, onto.z, axis=0)


def sum_doses(grids: Sequence[DoseGrid], labels: Sequence[str]) -> DoseGrid:
    """Sum of several dose grids (e.g. the BEAM doses of a plan) on the first grid.

    Grids that differ from the first are resampled onto it with trilinear interpolation
    (and must cover it, see :func:`resample`); each resampling is recorded in the notes.

    Parameters
    ----------
    grids : sequence of DoseGrid
        Same units. The result's ``summation`` is ``"PLAN"``.
    labels : sequence of str
        One label per grid for the notes (e.g. ``"beam 2"``).
    """
    first = grids[0]
    units = {g.units for g in grids}
    if len(units) > 1:
        raise InputError(f"cannot sum doses in different units ({', '.join(sorted(units))})",
                         ", ".join(p for g in grids for p in g.paths) or None)
    total = np.array(first.values, dtype=np.float64, copy=True)
    notes = [f"sum of {len(grids)} {first.summation} doses ({', '.join(labels)})"]
    for grid, label in zip(grids[1:], labels[1:]):
        if same_grid(first, grid):
            total += grid.values
        else:
            total += resample(grid, first)
            notes.append(f"{label}: its dose grid differs from {labels[0]}'s and was resampled "
                         "onto it (trilinear interpolation)")
    for grid in grids:
        notes.extend(grid.notes)
    return DoseGrid(
        x=first.x, y=first.y, z=first.z, values=total, units=first.units, summation="PLAN",
        frame_of_reference_uid=first.frame_of_reference_uid,
        sop_instance_uids=tuple(u for g in grids for u in g.sop_instance_uids),
        paths=tuple(p for g in grids for p in g.paths),
        notes=list(dict.fromkeys(notes)),
    )


def multiply_fractions(dose: DoseGrid, fractions: int) -> DoseGrid:
    """A one-fraction dose multiplied by the number of fractions (in place, returned)."""
    dose.values = np.multiply(dose.values, fractions, dtype=np.float64)
    dose.fractions_applied = fractions
    dose.notes.append(f"{dose.summation} dose multiplied by {fractions} fractions")
    return dose
