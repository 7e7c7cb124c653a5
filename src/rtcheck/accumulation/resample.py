"""A course's dose read at any point: trilinear interpolation, through a rigid map.

A dose grid knows its dose at its nodes (voxel centres) and, between them, by trilinear
interpolation, the DVH engine's convention (:mod:`rtcheck.dvh`). A point outside the box of
the nodes has no dose: it is NaN, never 0 or the nearest node's value, so that a sum over
courses can say it is unknown (:mod:`rtcheck.accumulation.accumulate`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from rtcheck.model import DoseGrid

#: Points this close (mm) outside the node box are read on its face (rounding of coordinates).
EDGE_TOLERANCE_MM = 1e-6


def apply(matrix: np.ndarray | None, points: np.ndarray) -> np.ndarray:
    """Points (N x 3) mapped by a 4 x 4 homogeneous matrix (None: unchanged)."""
    if matrix is None:
        return points
    return points @ matrix[:3, :3].T + matrix[:3, 3]


def _fractional_index(axis: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Fractional node index of each coordinate along a strictly increasing axis; NaN outside."""
    lo, hi = axis[0] - EDGE_TOLERANCE_MM, axis[-1] + EDGE_TOLERANCE_MM
    if axis.size == 1:
        return np.where((coords >= lo) & (coords <= hi), 0.0, np.nan)
    index = np.interp(np.clip(coords, axis[0], axis[-1]), axis, np.arange(axis.size, dtype=float))
    return np.where((coords >= lo) & (coords <= hi), index, np.nan)


def trilinear(values: np.ndarray, fk: np.ndarray, fj: np.ndarray, fi: np.ndarray) -> np.ndarray:
    """``values`` (nz, ny, nx) at fractional node indices (each inside its axis' range):
    the blend of the 8 surrounding nodes, weighted by the distances along each axis."""
    shape = values.shape
    out = np.zeros(fk.shape, dtype=float)
    lower, weight = [], []
    for f, n in zip((fk, fj, fi), shape):
        # the cell's lower node; the last node's cell is the one below it (weight 1 on top)
        i0 = np.clip(np.floor(f).astype(np.intp), 0, max(n - 2, 0))
        lower.append(i0)
        weight.append(f - i0)
    for dk in (0, 1):
        for dj in (0, 1):
            for di in (0, 1):
                k = np.minimum(lower[0] + dk, shape[0] - 1)
                j = np.minimum(lower[1] + dj, shape[1] - 1)
                i = np.minimum(lower[2] + di, shape[2] - 1)
                w = ((weight[0] if dk else 1 - weight[0]) * (weight[1] if dj else 1 - weight[1])
                     * (weight[2] if di else 1 - weight[2]))
                out += w * values[k, j, i]
    return out


def sample(grid: DoseGrid, points: np.ndarray, matrix: np.ndarray | None = None) -> np.ndarray:
    """The grid's dose (trilinear) at points (N x 3, patient mm of the frame ``matrix`` maps
    from: None for the grid's own frame); NaN where a point falls outside the grid."""
    p = apply(matrix, np.asarray(points, dtype=float).reshape(-1, 3))
    fi = _fractional_index(grid.x, p[:, 0])
    fj = _fractional_index(grid.y, p[:, 1])
    fk = _fractional_index(grid.z, p[:, 2])
    outside = np.isnan(fi) | np.isnan(fj) | np.isnan(fk)
    values = trilinear(np.asarray(grid.values, dtype=float), np.nan_to_num(fk),
                       np.nan_to_num(fj), np.nan_to_num(fi))
    values[outside] = np.nan
    return values


def planes_of(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """Each plane k of a target grid as its node coordinates (ny * nx, 3): resampling plane
    by plane keeps the memory to a few planes, whatever the grid's size."""
    gy, gx = np.meshgrid(y, x, indexing="ij")
    xy = np.column_stack([gx.ravel(), gy.ravel()])
    for k, zk in enumerate(z):
        yield k, np.column_stack([xy, np.full(len(xy), zk)])


def resample(source: DoseGrid, x: np.ndarray, y: np.ndarray, z: np.ndarray,
             matrix: np.ndarray | None = None) -> np.ndarray:
    """``source`` read at every node of the target axes (nz, ny, nx); NaN outside it.

    ``matrix`` maps target patient coordinates into the source's (None: same frame).
    """
    out = np.empty((len(z), len(y), len(x)), dtype=float)
    for k, pts in planes_of(x, y, z):
        out[k] = sample(source, pts, matrix).reshape(len(y), len(x))
    return out
