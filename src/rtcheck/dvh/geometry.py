"""Structure geometry: exact even-odd areas, slabs, contour edges and their row intervals.

A structure is a stack of contour planes; each stands for a slab (:func:`slab_bounds`,
:func:`typical_spacing`) whose area is exact by the even-odd rule (:func:`even_odd_area`).
The sampling lattice and the Dmax/Dmin search both work on :class:`Edges`, every contour
edge of a group of planes: :func:`row_intervals` gives the exact inside-intervals of rows
across them, :func:`interval_samples` cuts those into samples, and
:func:`boundary_points` puts points along the edges. Nothing here knows the dose except the
fallback slab thickness of a single plane. Leans on numpy, :mod:`rtcheck.dvh.arrays` and
:mod:`rtcheck.dvh.limits`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from rtcheck.dvh import limits
from rtcheck.dvh.arrays import FloatArray, IntArray, expand
from rtcheck.dvh.limits import DVHInputError
from rtcheck.model import median
from rtcheck.model import slab_bounds  # noqa: F401  (re-exported: the engine's slabs)

if TYPE_CHECKING:
    from rtcheck.model import DoseGrid

#: The non-horizontal edges of an :class:`Edges` (their index) and the first and last row
#: each crosses (:func:`row_span`).
RowSpan = tuple[IntArray, IntArray, IntArray]


def _shoelace(xy: FloatArray) -> float:
    """Area (mm²) of one polygon (vertices as rows, not repeated at the end)."""
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * abs(float(np.dot(x[:-1], y[1:]) - np.dot(y[:-1], x[1:])
                           + x[-1] * y[0] - y[-1] * x[0]))


def _point_in_polygon(px: float, py: float, xy: FloatArray) -> bool:
    """Whether (px, py) is inside the polygon ``xy`` (crossing count of a ray towards +x)."""
    x1, y1 = xy[:, 0], xy[:, 1]
    x2, y2 = np.concatenate((x1[1:], x1[:1])), np.concatenate((y1[1:], y1[:1]))
    crosses = (y1 > py) != (y2 > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        xc = x1 + (py - y1) * (x2 - x1) / (y2 - y1)
    return bool(np.count_nonzero(crosses & (px < xc)) % 2)


def even_odd_area(polygons: list[FloatArray]) -> float:
    """Area (mm²) of polygons on one plane combined by the even-odd rule.

    A polygon nested inside an odd number of others is a hole. Polygons are assumed not to
    cross each other (DICOM CLOSED_PLANAR contours on one plane do not).
    """
    if len(polygons) == 1:
        return _shoelace(polygons[0])
    total = 0.0
    lo = [p.min(axis=0) for p in polygons]
    hi = [p.max(axis=0) for p in polygons]
    for i, poly in enumerate(polygons):
        px, py = poly[0]
        # Only a polygon whose bounding box holds the point can hold it.
        depth = sum(_point_in_polygon(px, py, other) for j, other in enumerate(polygons)
                    if j != i and lo[j][0] <= px <= hi[j][0] and lo[j][1] <= py <= hi[j][1])
        total += _shoelace(poly) * (-1 if depth % 2 else 1)
    return total




class Edges:
    """Every edge of every contour of a structure, with the index of its plane.

    Attributes
    ----------
    x1, y1, x2, y2 : ndarray
        Start and end of each edge (mm).
    plane : ndarray
        Index of each edge's plane (edges come plane by plane).
    xmin, ymin, xmax, ymax : ndarray
        Bounding box of each plane's contours (infinite for a plane without edges); a
        :meth:`subset` keeps every plane's box.
    """

    x1: FloatArray
    y1: FloatArray
    x2: FloatArray
    y2: FloatArray
    plane: IntArray
    xmin: FloatArray
    ymin: FloatArray
    xmax: FloatArray
    ymax: FloatArray

    def __init__(self, polys: list[list[FloatArray]]) -> None:
        firsts: list[FloatArray] = []
        ends: list[FloatArray] = []
        plane: list[IntArray] = []
        for p, plist in enumerate(polys):
            for poly in plist:
                firsts.append(poly)
                ends.append(np.concatenate((poly[1:], poly[:1])))
                plane.append(np.full(len(poly), p, np.int64))
        s, e = np.concatenate(firsts), np.concatenate(ends)
        self.x1, self.y1, self.x2, self.y2 = s[:, 0], s[:, 1], e[:, 0], e[:, 1]
        self.plane = np.concatenate(plane)
        # Edges come plane by plane, so per-plane bounds are segment reductions.
        n = len(polys)
        count = np.bincount(self.plane, minlength=n)
        has = count > 0
        starts = (np.cumsum(count) - count)[has]
        self.xmin, self.ymin = np.full(n, np.inf), np.full(n, np.inf)
        self.xmax, self.ymax = np.full(n, -np.inf), np.full(n, -np.inf)
        self.xmin[has] = np.minimum.reduceat(self.x1, starts)
        self.ymin[has] = np.minimum.reduceat(self.y1, starts)
        self.xmax[has] = np.maximum.reduceat(self.x1, starts)
        self.ymax[has] = np.maximum.reduceat(self.y1, starts)

    def subset(self, planes: IntArray) -> Edges:
        """The edges of the planes ``planes`` only (plane indices and boxes unchanged)."""
        keep = np.isin(self.plane, planes)
        out = object.__new__(Edges)
        out.x1, out.y1, out.x2, out.y2 = self.x1[keep], self.y1[keep], self.x2[keep], self.y2[keep]
        out.plane, out.xmin, out.ymin = self.plane[keep], self.xmin, self.ymin
        out.xmax, out.ymax = self.xmax, self.ymax
        return out


def row_span(edges: Edges, h: float, y0: FloatArray, jlim: tuple[int, int] | None = None
             ) -> RowSpan:
    """Non-horizontal edges (their index) and the first and last row each crosses.

    Rows are ``y = y0[plane] + (j + 0.5) h``; an edge crosses the rows with
    ``ylo <= y_j < yhi`` (half-open, so a vertex on a row is counted once). ``jlim`` keeps only
    the rows ``jlim[0] <= j <= jlim[1]`` (whole rows: every row keeps its even crossings).
    """
    keep = np.nonzero(edges.y1 != edges.y2)[0]
    y1, y2 = edges.y1[keep], edges.y2[keep]
    base = y0[edges.plane[keep]]
    j0 = np.ceil((np.minimum(y1, y2) - base) / h - 0.5).astype(np.int64)
    j1 = np.ceil((np.maximum(y1, y2) - base) / h - 0.5).astype(np.int64) - 1
    if jlim is not None:
        j0, j1 = np.maximum(j0, jlim[0]), np.minimum(j1, jlim[1])
    return keep, j0, j1


def row_intervals(edges: Edges, h: float, y0: FloatArray,
                  jlim: tuple[int, int] | None = None, span: RowSpan | None = None
                  ) -> tuple[IntArray, IntArray, FloatArray, FloatArray]:
    """Exact inside-intervals of the rows ``y = y0[plane] + (j + 0.5) h`` (even-odd rule).

    Returns the plane, the row index and the start and end x of each interval. ``span`` is
    :func:`row_span`'s result when already known.
    """
    keep, j0, j1 = span if span is not None else row_span(edges, h, y0, jlim)
    x1, y1, x2, y2 = edges.x1[keep], edges.y1[keep], edges.x2[keep], edges.y2[keep]
    plane = edges.plane[keep]
    base = y0[plane]
    edge, rank = expand(np.maximum(j1 - j0 + 1, 0))
    j = j0[edge] + rank
    yj = base[edge] + (j + 0.5) * h
    xe1, ye1 = x1[edge], y1[edge]
    x = xe1 + (yj - ye1) * (x2[edge] - xe1) / (y2[edge] - ye1)
    p = plane[edge]
    order = np.lexsort((x, j, p))
    p, j, x = p[order], j[order], x[order]
    return p[0::2], j[0::2], x[0::2], x[1::2]


def piece_counts(a: FloatArray, b: FloatArray, h: float, xb: FloatArray) -> IntArray:
    """Pieces :func:`interval_samples` cuts each interval into (an upper bound: empty pieces
    are dropped there)."""
    return np.floor((b - xb) / h).astype(np.int64) - np.floor((a - xb) / h).astype(np.int64) + 1


def interval_samples(p: IntArray, j: IntArray, a: FloatArray, b: FloatArray, h: float,
                     x0: FloatArray, y0: FloatArray
                     ) -> tuple[IntArray, FloatArray, FloatArray, FloatArray]:
    """Cut row intervals into pieces at most ``h`` long: plane, centre x, y and length."""
    xb = x0[p]
    k0 = np.floor((a - xb) / h).astype(np.int64)
    k1 = np.floor((b - xb) / h).astype(np.int64)
    idx, rank = expand(k1 - k0 + 1)
    k = k0[idx] + rank
    lo = np.maximum(a[idx], xb[idx] + k * h)
    hi = np.minimum(b[idx], xb[idx] + (k + 1) * h)
    length = hi - lo
    keep = length > 0
    pl = p[idx][keep]
    return pl, (0.5 * (lo + hi))[keep], (y0[pl] + (j[idx][keep] + 0.5) * h), length[keep]


def points_per_edge(edges: Edges, step: float, length: FloatArray | None = None
                    ) -> IntArray:
    """Points :func:`boundary_points` puts on each edge (``length``: the edges' lengths)."""
    if length is None:
        length = np.hypot(edges.x2 - edges.x1, edges.y2 - edges.y1)
    # Coordinates are finite (checked); an infinite step puts one point (the vertex) per edge.
    return np.maximum(np.ceil(length / step).astype(np.int64), 1)


def boundary_points(edges: Edges, step: float, sel: slice | None = None,
                    n: IntArray | None = None) -> tuple[IntArray, FloatArray, FloatArray]:
    """Points along every contour edge (or the edges ``sel``), at most ``step`` apart,
    vertices included (``n``: the points of each edge, when known)."""
    sel = slice(None) if sel is None else sel
    x1, y1, x2, y2 = edges.x1[sel], edges.y1[sel], edges.x2[sel], edges.y2[sel]
    if n is None:
        n = np.maximum(np.ceil(np.hypot(x2 - x1, y2 - y1) / step).astype(np.int64), 1)
    idx, rank = expand(n)
    t = rank / n[idx]
    return (edges.plane[sel][idx], x1[idx] + t * (x2[idx] - x1[idx]),
            y1[idx] + t * (y2[idx] - y1[idx]))


def typical_spacing(zs: FloatArray, common: float | None, dose: DoseGrid) -> float:
    """Typical plane spacing of a structure (mm); see the :mod:`rtcheck.dvh` docstring, *Geometry*.

    ``zs`` are the structure's sorted plane positions, ``common`` the structure set's plane
    spacing (None when unknown).
    """
    if common is not None and not (math.isfinite(common) and common > 0):
        common = None
    if zs.size > 1:
        gaps = np.diff(zs)
        own = median(gaps)
        if common is None or float(gaps.max()) <= limits.CONTIGUOUS_GAP * common:
            return own  # contiguous planes: the structure's own spacing, as always
        return min(own, float(common))  # isolated planes or runs: the structure set's
    if common is not None:
        return float(common)
    dz = dose.spacing[2]
    return dz if dz > 0 else min(dose.spacing[:2])


def check_coordinates(name: str, zs: FloatArray, polys: list[list[FloatArray]]) -> None:
    """Refuse coordinates no DVH can be computed from (not finite, or beyond 1 km)."""
    worst = [float(np.max(np.abs(zs)))] if zs.size else []
    worst += [float(np.max(np.abs(poly))) for plist in polys for poly in plist if poly.size]
    if not all(w <= limits.MAX_COORDINATE_MM for w in worst):  # NaN fails the comparison too
        raise DVHInputError(
            f"structure {name!r}: contour coordinates are not finite or lie beyond "
            f"{limits.MAX_COORDINATE_MM:.0e} mm: no volume and no DVH")


def vertex_centroids(owner: IntArray, x: FloatArray, y: FloatArray, n: int
                     ) -> tuple[FloatArray, FloatArray]:
    """Mean x and y of the vertices ``(x, y)`` of each of ``n`` owners (0 for an owner
    without vertices): the one sample of a sliver no lattice resolves."""
    cnt = np.maximum(np.bincount(owner, minlength=n), 1)
    return (np.bincount(owner, weights=x, minlength=n) / cnt,
            np.bincount(owner, weights=y, minlength=n) / cnt)
