"""Trilinear interpolation of the dose grid, organised plane by plane, and slab faces.

:class:`Interpolator` holds a float32 copy of the dose grid and evaluates the exact
trilinear dose at in-plane points on many z at once: the bilinear value of a point is
computed once per dose plane, and the value at any z is a linear blend of two of them.
:class:`Faces` cuts each contour plane's slab at the dose planes crossing it: between two
consecutive faces the trilinear dose is linear in z, which is what makes the histogram and
the Dmax/Dmin search exact in z. Leans on numpy, :mod:`rtcheck.dvh.arrays` and
:class:`rtcheck.model.DoseGrid` (for typing only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from rtcheck.dvh.arrays import BoolArray, FloatArray, IntArray, expand
from rtcheck.dvh.limits import DVHInputError

if TYPE_CHECKING:
    from rtcheck.model import DoseGrid

#: Flat in-plane indices of the four corners of each point's voxel (:meth:`xy_weights`).
Corners = tuple[IntArray, IntArray, IntArray, IntArray]
#: Bilinear weights of those four corners.
Weights = tuple[FloatArray, FloatArray, FloatArray, FloatArray]


class Interpolator:
    """Trilinear interpolation of a :class:`DoseGrid`, organised plane by plane.

    In-plane values are interpolated once per dose frame for a set of (x, y) points; values
    at any z are then linear blends of two frames. This is exact trilinear interpolation and
    far cheaper than interpolating every (x, y, z) sample independently.

    Raises
    ------
    DVHInputError
        When the grid is not 3-D, is empty, or holds values that are not finite.
    """

    def __init__(self, dose: DoseGrid) -> None:
        self.dose = dose
        # float32 halves the memory traffic of the gathers (7 significant digits: far below
        # any dose tolerance). One copy, one element longer than the grid, so that segment
        # reductions may end at the last voxel ("padded"); "flat" is the grid itself.
        values = np.asarray(dose.values)
        if values.ndim != 3 or values.size == 0:
            raise DVHInputError(f"the dose grid has shape {values.shape}, not (frames, rows, "
                                "columns): no DVH")
        self.padded: NDArray[np.float32] = np.empty(values.size + 1, dtype=np.float32)
        self.flat: NDArray[np.float32] = self.padded[:-1]
        self.values: NDArray[np.float32] = self.flat.reshape(values.shape)
        with np.errstate(over="ignore", invalid="ignore"):
            self.values[...] = values
        self.padded[-1] = self.padded[-2]
        if not np.isfinite(self.padded).all():
            raise DVHInputError(
                "the dose grid holds values that are not finite (NaN, infinite, or beyond "
                f"{float(np.finfo(np.float32).max):.1e}): no DVH")
        self.nz: int = int(values.shape[0])
        self.ny: int = int(values.shape[1])
        self.nx: int = int(values.shape[2])
        self.x0, self.y0 = float(dose.x[0]), float(dose.y[0])
        self.dx = float(dose.x[1] - dose.x[0]) if self.nx > 1 else 1.0
        self.dy = float(dose.y[1] - dose.y[0]) if self.ny > 1 else 1.0
        self.z: FloatArray = np.asarray(dose.z, dtype=np.float64)
        # Contour points for the extremes: half a voxel apart at most. Along an edge the
        # bilinear dose is a parabola within each voxel, whose largest departure from its
        # chords is |d2D/dxdy| * step^2 / 8: a few cGy at most for clinical doses.
        self.edge_step = min(self.dx, self.dy) / 2
        # Grid coverage reaches half a voxel beyond the outer voxel centres. A single-frame
        # dose has no thickness we can trust: it covers only its own plane.
        self.xlim = (self.x0 - self.dx / 2, float(dose.x[-1]) + self.dx / 2)
        self.ylim = (self.y0 - self.dy / 2, float(dose.y[-1]) + self.dy / 2)
        z = self.z
        if self.nz > 1:
            self.zlim = (float(z[0] - (z[1] - z[0]) / 2), float(z[-1] + (z[-1] - z[-2]) / 2))
        else:
            self.zlim = (float(z[0] - 1e-6), float(z[0] + 1e-6))

    def inside_xy(self, x: FloatArray, y: FloatArray) -> BoolArray:
        """Whether each point (x, y) lies within the grid's voxels in the plane."""
        eps = 1e-6
        return ((x >= self.xlim[0] - eps) & (x <= self.xlim[1] + eps)
                & (y >= self.ylim[0] - eps) & (y <= self.ylim[1] + eps))

    def inside_z(self, z: FloatArray) -> BoolArray:
        """Whether each z lies within the grid's frames (half a frame beyond the outer ones)."""
        return (z >= self.zlim[0] - 1e-6) & (z <= self.zlim[1] + 1e-6)

    def xy_weights(self, x: FloatArray, y: FloatArray) -> tuple[Corners, Weights]:
        """Flat corner indices and bilinear weights of points (x, y), clamped to the grid."""
        fx = np.clip((x - self.x0) / self.dx, 0, self.nx - 1)
        fy = np.clip((y - self.y0) / self.dy, 0, self.ny - 1)
        i0 = np.minimum(fx.astype(np.int64), max(self.nx - 2, 0))
        j0 = np.minimum(fy.astype(np.int64), max(self.ny - 2, 0))
        tx, ty = fx - i0, fy - j0
        i1 = np.minimum(i0 + 1, self.nx - 1)
        j1 = np.minimum(j0 + 1, self.ny - 1)
        corners = (j0 * self.nx + i0, j0 * self.nx + i1, j1 * self.nx + i0, j1 * self.nx + i1)
        weights = ((1 - tx) * (1 - ty), tx * (1 - ty), (1 - tx) * ty, tx * ty)
        return corners, weights

    def at_faces(self, corners: Corners, weights: Weights, plane: IntArray, faces: Faces
                 ) -> tuple[IntArray, IntArray, FloatArray]:
        """Trilinear dose of in-plane points on every face of their plane's slab pieces.

        The bilinear value of each point is computed once on each dose plane its slab
        needs; face values are then linear blends of two of those. Returns the point and
        face index of each value, in order of point then face.
        """
        first = faces.k0[faces.start][plane]  # lowest dose plane each point's slab needs
        count = faces.frames[plane]
        most = int(count.max()) if plane.size else 0
        if most * plane.size <= 2 * int(count.sum()) + 1024:
            # Slabs needing about as many dose planes each: one column per dose plane.
            fv = self._columns(corners, weights, first, most)
            point, face, lower, upper, t = faces.blend(plane, first, count)
            return point, face, fv[point, lower] * (1 - t) + fv[point, upper] * t
        # Slabs of very different thicknesses (a rectangle would be mostly waste).
        runs, offset = self._runs(corners, weights, first, count)
        point, face, lower, upper, t = faces.blend(plane, first, count)
        at = offset[point]
        return point, face, runs[at + lower] * (1 - t) + runs[at + upper] * t

    def _columns(self, corners: Corners, weights: Weights, first: IntArray, most: int
                 ) -> FloatArray:
        """Bilinear values of each point (rows) on the ``most`` dose planes from ``first``."""
        nxy = self.nx * self.ny
        fv = np.empty((first.size, most))
        for r in range(most):
            # Column r: the r-th dose plane of each point's slab (clamped where a slab
            # needs fewer planes; those values are never read).
            base = np.minimum(first + r, self.nz - 1) * nxy
            col = self.flat[base + corners[0]] * weights[0]
            for c, w in zip(corners[1:], weights[1:]):
                col += self.flat[base + c] * w
            fv[:, r] = col
        return fv

    def _runs(self, corners: Corners, weights: Weights, first: IntArray, count: IntArray
              ) -> tuple[FloatArray, IntArray]:
        """Bilinear values of each point on the dose planes its slab needs, point after point
        (``count[i]`` values from ``offset[i]``): the values and the offsets."""
        nxy = self.nx * self.ny
        offset = np.cumsum(count) - count
        fv = np.empty(int(count.sum()))
        least = int(count.min()) if count.size else 0
        for r in range(int(count.max()) if count.size else 0):
            sel: slice | IntArray = slice(None) if r < least else np.nonzero(count > r)[0]
            base = (first[sel] + r) * nxy
            col = self.flat[base + corners[0][sel]] * weights[0][sel]
            for c, w in zip(corners[1:], weights[1:]):
                col += self.flat[base + c[sel]] * w[sel]
            fv[offset[sel] + r] = col
        return fv, offset

    def nodes_at_faces(self, flat: IntArray, point: IntArray, face: IntArray,
                       faces: Faces) -> FloatArray:
        """Dose at (grid node, face) pairs: a blend of the node's values on two dose planes."""
        nxy = self.nx * self.ny
        k0 = faces.k0[face]
        t = faces.t[face]
        f = flat[point]
        return (self.flat[k0 * nxy + f] * (1 - t)
                + self.flat[np.minimum(k0 + 1, self.nz - 1) * nxy + f] * t)

    def frame_position(self, z: FloatArray) -> tuple[IntArray, FloatArray]:
        """Lower frame index and blend weight for each z (clamped to the grid)."""
        if self.nz == 1:
            return np.zeros(z.shape, np.int64), np.zeros(z.shape)
        fz = np.interp(z, self.z, np.arange(self.nz, dtype=np.float64))
        k0 = np.minimum(fz.astype(np.int64), self.nz - 2)
        return k0, fz - k0


class Faces:
    """The faces of every slab piece: each slab cut at the dose planes crossing it.

    Plane ``p`` has ``count[p]`` faces starting at ``start[p]``: its slab's lower bound, the dose
    planes strictly inside the slab, and its upper bound.

    Attributes
    ----------
    count, start : ndarray
        Faces of each plane's slab and the index of its first face.
    z : ndarray
        Position of each face (mm).
    ok : ndarray
        Whether each face lies within the dose grid.
    k0, t : ndarray
        Lower dose plane and blend weight of each face (:meth:`Interpolator.frame_position`).
    frames : ndarray
        Dose planes each slab's faces need, from its lowest face's lower plane.
    """

    def __init__(self, z_lo: FloatArray, z_hi: FloatArray, interp: Interpolator) -> None:
        if interp.nz > 1:
            ilo = np.searchsorted(interp.z, z_lo, side="right")
            inner = np.maximum(np.searchsorted(interp.z, z_hi, side="left") - ilo, 0)
        else:
            ilo = np.zeros(z_lo.size, np.int64)
            inner = np.zeros(z_lo.size, np.int64)
        self.count: IntArray = inner + 2
        self.start: IntArray = np.cumsum(self.count) - self.count
        z = np.empty(int(self.count.sum()))
        z[self.start] = z_lo
        z[self.start + self.count - 1] = z_hi
        owner, rank = expand(inner)
        z[self.start[owner] + 1 + rank] = interp.z[ilo[owner] + rank]
        self.z: FloatArray = z
        self.ok = interp.inside_z(z)
        self.k0, self.t = interp.frame_position(z)
        # Dose planes each slab's faces need: from its lowest face's lower plane to its
        # highest face's upper plane.
        last = np.minimum(self.k0[self.start + self.count - 1] + 1, interp.nz - 1)
        self.frames: IntArray = last - self.k0[self.start] + 1

    def pairs(self, plane: IntArray) -> tuple[IntArray, IntArray]:
        """(point, face) index pairs: every point with every face of its plane, in order."""
        point, rank = expand(self.count[plane])
        return point, self.start[plane[point]] + rank

    def blend(self, plane: IntArray, first: IntArray, count: IntArray
              ) -> tuple[IntArray, IntArray, IntArray, IntArray, FloatArray]:
        """Every (point, face) pair of points on ``plane`` with the rank of the two dose
        planes its value blends (among the ``count`` planes from ``first`` of the point's
        slab) and the weight of the upper one."""
        point, face = self.pairs(plane)
        lower = self.k0[face] - first[point]
        upper = np.minimum(lower + 1, count[point] - 1)
        return point, face, lower, upper, self.t[face]
