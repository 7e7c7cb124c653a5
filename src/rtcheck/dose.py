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

from rtcheck.errors import InputError, short_message
from rtcheck.model import MAX_COORDINATE_MM, DoseGrid

#: Direction cosines closer than this to 0 or +-1 count as exactly axis-aligned.
COSINE_TOLERANCE = 1e-4
#: ImageOrientationPatient must hold two unit vectors (length 1 within this) at right angles
#: (dot product within this): DS values written with 6 digits are well inside it, while
#: [2,0,0,0,2,0] (which once doubled the spacing) or a sheared pair are far outside.
ORTHONORMAL_TOLERANCE = 1e-3
#: Voxel-centre positions closer than this (mm) are the same position.
POSITION_TOLERANCE_MM = 1e-3
#: The largest dose value (in DoseUnits) accepted in a grid. External-beam courses stay below
#: ~100 Gy (hot spots of SRS plans prescribed to the 30 % isodose, ~80 Gy); brachytherapy grids
#: reach a few hundred to a few thousand Gy next to a source; a whole-course grid written in
#: cGy but labelled GY stays below 10,000 (and is caught as implausible against its plan).
#: A larger value is a corrupt DoseGridScaling (1e5, 1e300) or corrupt pixel data, and would
#: make any dose histogram unbounded: bad input.
MAX_DOSE_VALUE = 1e4
#: Negative voxels down to this fraction of the grid's maximum are rounding noise of signed
#: grids (a TPS interpolating near zero); they are set to 0 with a note. Anything more negative
#: is impossible as a dose (a signed grid misread as unsigned or the reverse, corrupt data).
NEGATIVE_DOSE_TOLERANCE = 1e-3

DOSE_UNITS = ("GY", "RELATIVE")
#: DoseType values that are a dose (EFFECTIVE: RBE-weighted, as ion plans export it).
#: ERROR is "an error dose": the difference between two doses, never a dose to judge a plan by.
DOSE_TYPES = ("PHYSICAL", "EFFECTIVE")


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
        DoseUnits (``GY`` or ``RELATIVE``) after DoseGridScaling. A DoseType ERROR grid (a
        dose difference) is returned with a :attr:`DoseGrid.problems` entry.

    Raises
    ------
    InputError
        Naming the file and the attribute: unknown or missing DoseUnits; Rows, Columns,
        NumberOfFrames, BitsAllocated, PixelRepresentation that are not positive whole numbers
        or disagree with the pixel data's length (shorter or longer); oblique, non-axial or
        non-orthonormal orientation; PixelSpacing not positive; frame offsets not finite,
        repeated or not monotonic; DoseGridScaling unreadable, not positive or making doses
        above :data:`MAX_DOSE_VALUE`; non-finite dose values; negative doses beyond
        :data:`NEGATIVE_DOSE_TOLERANCE` of the maximum.
    """
    where = None if path is None else str(path)
    units = _dose_units(ds, where)
    rows, cols = _required_int(ds, "Rows", where), _required_int(ds, "Columns", where)
    nframes = _number_of_frames(ds, where)
    axes = _GridAxes(ds, nframes, rows, cols, where)
    stored = _stored_values(ds, nframes, rows, cols, where)
    scaling = _dose_grid_scaling(ds, stored, where)
    notes: list[str] = []
    stored = _checked_values(stored, scaling, units, where, notes)
    values = axes.to_patient_order(stored, scaling)
    summation = _attribute_text(ds, "DoseSummationType", where).upper()
    if not summation:
        notes.append("DoseSummationType missing: the dose is taken as a whole-plan (PLAN) dose")
        summation = "PLAN"
    if units == "RELATIVE":
        notes.append("DoseUnits RELATIVE: values are relative doses, not Gy")
    problems = []
    dose_type = _attribute_text(ds, "DoseType", where).upper()
    if dose_type == "ERROR":
        problems.append(f"{where or 'RTDOSE'}: DoseType ERROR: the grid is an error dose (the "
                        "difference between two doses), not a dose to evaluate")
    elif dose_type and dose_type not in DOSE_TYPES:
        notes.append(f"DoseType {dose_type} (not PHYSICAL)")
    elif dose_type == "EFFECTIVE":
        notes.append("DoseType EFFECTIVE (not PHYSICAL): RBE-weighted dose")
        comment = _attribute_text(ds, "DoseComment", where)
        if comment.startswith(("EQD2 ", "BED ")) and comment.endswith("rtcheck"):
            # rtcheck eqd2 writes these: a biologically converted dose, not the physical dose
            # in Gy that every rule is stated in (reading it as one would convert it twice)
            problems.append(f"{where or 'RTDOSE'}: DoseType EFFECTIVE, DoseComment "
                            f"{comment!r}: an EQD2/BED dose written by rtcheck eqd2, not a "
                            "physical dose")
    return DoseGrid(
        x=axes.x, y=axes.y, z=axes.z, values=values, units=units, summation=summation,
        frame_of_reference_uid=_str_or_none(_attribute(ds, "FrameOfReferenceUID", where)),
        sop_instance_uids=(str(_attribute(ds, "SOPInstanceUID", where) or ""),),
        paths=() if where is None else (where,),
        notes=notes,
        problems=problems,
    )


# --------------------------------------------------------------------------------------
# Attributes
# --------------------------------------------------------------------------------------

def _attribute(ds: Dataset, keyword: str, where: str | None, owner: str = "RTDOSE"):
    """``ds.get(keyword)``, with a value pydicom cannot decode (wrong VR, unknown VR after a
    corrupted byte, bad length) turned into an InputError naming the attribute."""
    try:
        return ds.get(keyword)
    except Exception as exc:  # pydicom raises many types on undecodable values
        raise InputError(f"{owner} {keyword} is unreadable ({short_message(exc)})", where) from exc


def _attribute_text(ds: Dataset, keyword: str, where: str | None, owner: str = "RTDOSE") -> str:
    value = _attribute(ds, keyword, where, owner)
    return "" if value is None else str(value).strip()


def _str_or_none(value) -> str | None:
    text = "" if value is None else str(value).strip()
    return text or None


def parse_number(value, keyword: str, where: str | None, owner: str = "RTDOSE") -> float | None:
    """A DICOM numeric value (DS, IS, US, FL...) as a float; None when absent or empty.

    Raises
    ------
    InputError
        Naming the attribute, when the value is present but is not one finite number (text
        such as 'abc', several values where one is expected, NaN, infinity).
    """
    if value is None or (isinstance(value, (str, bytes)) and not value.strip()):
        return None
    if not isinstance(value, (str, bytes)) and hasattr(value, "__len__"):
        items = list(value)
        if len(items) == 0:
            return None
        if len(items) != 1:
            raise InputError(f"{owner} {keyword} holds {len(items)} values ({_show(value)}) "
                             "where one number is expected", where)
        value = items[0]
    try:
        number = float(value.decode("ascii") if isinstance(value, bytes) else value)
    except (TypeError, ValueError, UnicodeDecodeError):
        raise InputError(f"{owner} {keyword} {_show(value)} is not a number", where) from None
    if not np.isfinite(number):
        raise InputError(f"{owner} {keyword} {_show(value)} is not a finite number", where)
    return number


def parse_count(value, keyword: str, where: str | None, owner: str = "RTDOSE",
                minimum: int = 1) -> int | None:
    """A DICOM count (IS, US...) as an int >= ``minimum``; None when absent or empty.

    A value that is not a whole number ("3.5", which int() would silently make 3), below
    ``minimum`` or unreadable is an InputError naming the attribute.
    """
    number = parse_number(value, keyword, where, owner)
    if number is None:
        return None
    if number != round(number) or number < minimum:
        need = "a positive whole number" if minimum == 1 else f"a whole number >= {minimum}"
        raise InputError(f"{owner} {keyword} {_show(value)} is not {need}", where)
    return round(number)


def _show(value) -> str:
    text = repr(str(value)) if not isinstance(value, (int, float)) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _required_int(ds: Dataset, keyword: str, where: str | None) -> int:
    value = parse_count(_attribute(ds, keyword, where), keyword, where)
    if value is None:
        raise InputError(f"RTDOSE has no {keyword}", where)
    return value


def _number_of_frames(ds: Dataset, where: str | None) -> int:
    value = parse_count(_attribute(ds, "NumberOfFrames", where), "NumberOfFrames", where)
    return 1 if value is None else value


def _dose_units(ds: Dataset, where: str | None) -> str:
    units = _attribute_text(ds, "DoseUnits", where).upper()
    if not units:
        raise InputError("RTDOSE has no DoseUnits: cannot tell whether doses are in Gy", where)
    if units not in DOSE_UNITS:
        raise InputError(f"DoseUnits {units!r} is neither GY nor RELATIVE: doses not understood",
                         where)
    return units


def _dose_grid_scaling(ds: Dataset, stored: np.ndarray, where: str | None) -> float:
    raw = _attribute(ds, "DoseGridScaling", where)
    scaling = parse_number(raw, "DoseGridScaling", where)
    if scaling is None:
        if stored.dtype.kind == "f":  # float pixel data carry doses directly
            return 1.0
        raise InputError("RTDOSE has integer pixel data but no DoseGridScaling: stored values "
                         "cannot be converted to dose", where)
    if scaling <= 0:
        raise InputError(f"DoseGridScaling {_show(raw)} is not a positive number", where)
    return scaling


def _checked_values(stored: np.ndarray, scaling: float, units: str, where: str | None,
                    notes: list[str]) -> np.ndarray:
    """The stored values, checked finite, not negative and not absurd once scaled.

    Cheap: one min/max pass over the stored array (integer grids cannot hold NaN).
    """
    if stored.size == 0:
        return stored
    if stored.dtype.kind == "f":
        finite = np.isfinite(stored)
        if not finite.all():
            bad = int(stored.size - np.count_nonzero(finite))
            raise InputError(f"dose pixel data holds {bad} non-finite value(s) (NaN or "
                             "infinity): not a dose", where)
    lo, hi = float(stored.min()), float(stored.max())
    top = hi * scaling
    if not np.isfinite(top) or top > MAX_DOSE_VALUE:
        raise InputError(
            f"dose maximum {top:.4g} {units} (stored {hi:.6g} x DoseGridScaling {scaling:.6g}) "
            f"is beyond any radiotherapy dose (> {MAX_DOSE_VALUE:g}): DoseGridScaling or the "
            "pixel data is corrupt", where)
    if lo < 0:
        bottom = lo * scaling
        if bottom < -NEGATIVE_DOSE_TOLERANCE * max(top, 0.0):
            count = int(np.count_nonzero(stored < 0))
            raise InputError(
                f"{count} dose voxel(s) are negative (down to {bottom:.4g} {units}, maximum "
                f"{top:.4g}): a dose cannot be negative (signed pixel data where unsigned was "
                "meant, or corrupt data)", where)
        notes.append(f"{int(np.count_nonzero(stored < 0))} slightly negative dose voxel(s) "
                     f"(down to {bottom:.3g} {units}, within {NEGATIVE_DOSE_TOLERANCE:g} of the "
                     "maximum: rounding) set to 0")
        stored = np.maximum(stored, 0).astype(stored.dtype, copy=False)
    return stored


# --------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------

def _check_orthonormal(r: np.ndarray, c: np.ndarray, iop: list[float],
                       where: str | None) -> None:
    """InputError unless the row and column cosines are unit vectors at right angles.

    Reading the axis of each vector by rounding alone would take [2,0,0,0,2,0] for HFS and
    silently double the voxel spacing.
    """
    lengths = (float(np.linalg.norm(r)), float(np.linalg.norm(c)))
    dot = float(np.dot(r, c))
    if (abs(lengths[0] - 1) > ORTHONORMAL_TOLERANCE or abs(lengths[1] - 1) > ORTHONORMAL_TOLERANCE
            or abs(dot) > ORTHONORMAL_TOLERANCE):
        raise InputError(
            f"ImageOrientationPatient {iop} is not two orthonormal unit vectors (lengths "
            f"{lengths[0]:.4g} and {lengths[1]:.4g}, dot product {dot:.4g}): the grid geometry "
            "is corrupt", where)


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
        if max(abs(v) for v in ipp) > MAX_COORDINATE_MM:
            raise InputError(f"ImagePositionPatient {ipp} is more than {MAX_COORDINATE_MM:g} mm "
                             "from the origin: corrupt", where)
        r, c = np.array(iop[:3]), np.array(iop[3:])
        _check_orthonormal(r, c, iop, where)
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
        z = offsets.z(ipp[2], normal_sign)

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
        for name, axis in (("x", self.x), ("y", self.y), ("z", self.z)):
            if axis.size and (not np.all(np.isfinite(axis))
                              or max(abs(axis[0]), abs(axis[-1])) > MAX_COORDINATE_MM):
                raise InputError(f"dose grid {name} positions reach {axis[0]:g}..{axis[-1]:g} mm "
                                 "(ImagePositionPatient, PixelSpacing or GridFrameOffsetVector "
                                 "corrupt)", where)

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
    """GridFrameOffsetVector read as offsets from the first frame, or as absolute z."""

    def __init__(self, relative: np.ndarray | None = None,
                 absolute: np.ndarray | None = None) -> None:
        self.relative, self.absolute = relative, absolute

    def z(self, first_z: float, normal_sign: int) -> np.ndarray:
        """Patient z of every frame (the first frame at ``first_z``)."""
        if self.absolute is not None:
            return self.absolute
        assert self.relative is not None  # one of the two is always set
        return first_z + normal_sign * self.relative


def _frame_offsets(ds: Dataset, nframes: int, ipp_z: float, iop: list[float],
                   where: str | None) -> _Offsets:
    """Frame positions from GridFrameOffsetVector (relative, or absolute z: C.8.8.3.2)."""
    raw = _attribute(ds, "GridFrameOffsetVector", where)
    if raw is None or raw == "" or (hasattr(raw, "__len__") and len(raw) == 0):
        if nframes > 1:
            raise InputError(f"RTDOSE has {nframes} frames but no GridFrameOffsetVector", where)
        return _Offsets(relative=np.zeros(1))
    try:
        values = np.atleast_1d(np.asarray(
            [raw] if isinstance(raw, (str, bytes)) else raw, dtype=float)).ravel()
    except (TypeError, ValueError):
        raise InputError(f"GridFrameOffsetVector {_show(raw)} is not a list of numbers",
                         where) from None
    if nframes == 1:
        values = values[:1]  # some single-frame files carry a longer vector: one plane is stored
    elif values.size != nframes:
        raise InputError(f"GridFrameOffsetVector has {values.size} values for {nframes} frames",
                         where)
    if not np.all(np.isfinite(values)):
        raise InputError(f"GridFrameOffsetVector holds non-finite values (NaN or infinity) "
                         f"for {int(np.count_nonzero(~np.isfinite(values)))} frame(s): the "
                         "frames' positions are unknown", where)
    steps = np.diff(values)
    if steps.size and not (np.all(steps > 0) or np.all(steps < 0)):
        raise InputError("GridFrameOffsetVector is not monotonic (its offsets go up and down): "
                         "the frames' order is not a geometry", where)
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
    value = _attribute(ds, keyword, where)
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
        for keyword, float_code in (("FloatPixelData", "f4"), ("DoubleFloatPixelData", "f8")):
            if keyword in ds:
                return _from_buffer(ds, _attribute(ds, keyword, where), np.dtype(float_code), count,
                                    (nframes, rows, cols), where)
        raise InputError("RTDOSE has no pixel data (no dose grid)", where)
    samples = parse_count(_attribute(ds, "SamplesPerPixel", where), "SamplesPerPixel", where)
    if samples not in (None, 1):
        raise InputError(f"RTDOSE SamplesPerPixel is {samples}: a dose has one sample per "
                         "pixel", where)
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is not None and syntax.is_compressed:
        return _decoded(ds, (nframes, rows, cols), where)
    bits = parse_count(_attribute(ds, "BitsAllocated", where), "BitsAllocated", where) or 0
    if bits not in (8, 16, 32):
        raise InputError(f"RTDOSE BitsAllocated {bits} is not supported (8, 16 or 32)", where)
    stored_bits = parse_count(_attribute(ds, "BitsStored", where), "BitsStored", where)
    if stored_bits not in (None, bits):
        # RT Dose module (C.8.8.3): Bits Stored shall equal Bits Allocated. Fewer bits stored
        # would leave unspecified high bits in each value: the dose would be misread.
        raise InputError(f"RTDOSE BitsStored {stored_bits} differs from BitsAllocated {bits} "
                         "(an RT dose stores every allocated bit)", where)
    representation = parse_count(_attribute(ds, "PixelRepresentation", where),
                                 "PixelRepresentation", where, minimum=0)
    if representation not in (None, 0, 1):
        raise InputError(f"RTDOSE PixelRepresentation {representation} is neither 0 "
                         "(unsigned) nor 1 (signed)", where)
    dtype = np.dtype(f"{'i' if representation == 1 else 'u'}{bits // 8}")
    return _from_buffer(ds, _attribute(ds, "PixelData", where), dtype, count,
                        (nframes, rows, cols), where)


def _is_little_endian(ds: Dataset) -> bool:
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is not None and syntax.is_transfer_syntax:
        return bool(syntax.is_little_endian)
    encoding = getattr(ds, "original_encoding", (None, None))
    return encoding[1] is not False  # files without meta (force=True) are little endian


def _from_buffer(ds: Dataset, buffer: bytes, dtype: np.dtype, count: int,
                 shape: tuple[int, int, int], where: str | None) -> np.ndarray:
    dtype = dtype.newbyteorder("<" if _is_little_endian(ds) else ">")
    need = count * dtype.itemsize
    if not isinstance(buffer, (bytes, bytearray, memoryview)) and buffer is not None:
        raise InputError("dose pixel data is not a byte string (wrong VR)", where)
    got = 0 if buffer is None else len(buffer)
    if got < need:
        raise InputError(
            f"dose pixel data is truncated: {got} bytes for the {need} that "
            f"{shape[0]} frame(s) of {shape[1]} x {shape[2]} need", where)
    if got > need + (need % 2):  # one pad byte makes an odd length even (PS3.5 7.1)
        raise InputError(
            f"dose pixel data holds {got} bytes but {shape[0]} frame(s) of {shape[1]} x "
            f"{shape[2]} values of {dtype.itemsize} byte(s) need {need}: Rows, Columns, "
            "NumberOfFrames or BitsAllocated disagree with the pixel data", where)
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
        problems=list(dict.fromkeys(p for g in grids for p in g.problems)),
    )


def multiply_fractions(dose: DoseGrid, fractions: int) -> DoseGrid:
    """A one-fraction dose multiplied by the number of fractions (in place, returned)."""
    dose.values = np.multiply(dose.values, fractions, dtype=np.float64)
    dose.fractions_applied = fractions
    dose.notes.append(f"{dose.summation} dose multiplied by {fractions} fractions")
    return dose
