"""Dmax and Dmin: the extremes of the trilinear dose over a structure, searched exactly.

Through a slab the trilinear dose is linear in z between dose planes, so its extremes lie
on the slab's faces (:class:`~rtcheck.dvh.interpolate.Faces`); on each face the dose is
bilinear within each voxel, so its extremes over a contour lie on the contour or at a
dose-grid node inside it. :func:`boundary_extremes` evaluates points along every contour
edge, :func:`node_extremes` the grid nodes inside the contours (runs of nodes that cannot
beat the extremes already found are skipped by a bound). Both feed an
:class:`~rtcheck.dvh.histogram.Accumulator`. Leans on :mod:`rtcheck.dvh.geometry`,
:mod:`rtcheck.dvh.interpolate` and :mod:`rtcheck.dvh.limits`.
"""

from __future__ import annotations

import numpy as np

from rtcheck.dvh import limits
from rtcheck.dvh.arrays import FloatArray, IntArray, chunks, expand
from rtcheck.dvh.geometry import (
    Edges,
    RowSpan,
    boundary_points,
    points_per_edge,
    row_intervals,
    row_span,
)
from rtcheck.dvh.histogram import Accumulator
from rtcheck.dvh.interpolate import Faces, Interpolator
from rtcheck.dvh.lattice import PlaneGroup


def boundary_extremes(edges: Edges, faces: Faces, step: float, interp: Interpolator,
                      acc: Accumulator, count: IntArray | None = None) -> None:
    """Dmin/Dmax candidates along every contour edge (points at most ``step`` apart, vertices
    included) on every face, in chunks of :data:`~rtcheck.dvh.limits.CHUNK_PAIRS` point-face
    pairs. ``count``: the points of each edge at that step, when known."""
    if count is None:
        count = points_per_edge(edges, step)
    for sl in chunks(count * faces.count[edges.plane], limits.CHUNK_PAIRS):
        bplane, bx, by = boundary_points(edges, step, sl, count[sl])
        inside = interp.inside_xy(bx, by)
        bplane, bx, by = bplane[inside], bx[inside], by[inside]
        if bplane.size:
            corners, weights = interp.xy_weights(bx, by)
            _, face, d = interp.at_faces(corners, weights, bplane, faces)
            acc.extremes(d[faces.ok[face]])


def _node_rows(edges: Edges, interp: Interpolator, n_planes: int
               ) -> tuple[FloatArray, tuple[int, int], RowSpan]:
    """Rows through the dose-grid nodes (their ``y0`` per plane and index range) and, per
    non-horizontal edge, the rows it crosses within the grid."""
    y0 = np.full(n_planes, interp.y0 - interp.dy / 2)  # rows through the voxel centres
    jlim = (0, interp.ny - 1)
    return y0, jlim, row_span(edges, interp.dy, y0, jlim)


def node_search_work(g: PlaneGroup, interp: Interpolator) -> float:
    """Row crossings times dose planes of the grid-node search of a group."""
    if interp.nx < 2 or interp.ny < 2:
        return 0.0
    if g.edges.plane.size * interp.ny * float(g.faces.frames.max()) <= limits.MAX_NODE_WORK:
        return 0.0  # every edge crossing every row would still be affordable
    _, _, (keep, j0, j1) = _node_rows(g.edges, interp, g.n)
    return float(np.dot(np.maximum(j1 - j0 + 1, 0), g.faces.frames[g.edges.plane[keep]]))


def node_extremes(edges: Edges, faces: Faces, interp: Interpolator, acc: Accumulator,
                  n_planes: int) -> None:
    """Dmin/Dmax candidates at the grid nodes inside the contours, on every face.

    Rows of the dose grid are processed in bands of at most about
    :data:`~rtcheck.dvh.limits.MAX_CROSSINGS` crossings times dose planes, and nodes in
    chunks of :data:`~rtcheck.dvh.limits.CHUNK_PAIRS` node-face pairs.
    """
    if interp.nx < 2 or interp.ny < 2:
        return
    y0, jlim, rows = _node_rows(edges, interp, n_planes)
    bands, span = _row_bands(edges, faces, interp.ny, jlim, rows)
    for band in bands:
        p, flat_start, length = _candidate_runs(edges, faces, interp, acc, y0, band, span)
        for sl in chunks(length * faces.count[p], limits.CHUNK_PAIRS):
            idx, rank = expand(length[sl])
            nplane, flat = p[sl][idx], flat_start[sl][idx] + rank
            point, face = faces.pairs(nplane)
            d = interp.nodes_at_faces(flat, point, face, faces)
            acc.extremes(d[faces.ok[face]])


def _row_bands(edges: Edges, faces: Faces, ny: int, jlim: tuple[int, int], rows: RowSpan
               ) -> tuple[list[tuple[int, int]], RowSpan | None]:
    """Bands of grid rows of at most about :data:`~rtcheck.dvh.limits.MAX_CROSSINGS` row
    crossings times dose planes each, and the edges' row span when one band holds every row
    (it is then reused, not recomputed)."""
    keep, j0, j1 = rows
    n = np.maximum(j1 - j0 + 1, 0)
    frames = faces.frames[edges.plane[keep]].astype(float)
    if float(np.dot(n, frames)) <= limits.MAX_CROSSINGS:
        return [jlim], rows
    has = n > 0
    per_row = (np.bincount(j0[has], weights=frames[has], minlength=ny + 1)
               - np.bincount(j1[has] + 1, weights=frames[has], minlength=ny + 1))
    per_row = np.cumsum(per_row)[:ny]
    return [(sl.start, sl.stop - 1) for sl in chunks(per_row, limits.MAX_CROSSINGS)], None


def _candidate_runs(edges: Edges, faces: Faces, interp: Interpolator, acc: Accumulator,
                    y0: FloatArray, band: tuple[int, int], span: RowSpan | None = None
                    ) -> tuple[IntArray, IntArray, IntArray]:
    """Runs of grid nodes inside the contours, on the grid rows ``band``, that could beat
    the extremes found so far: their plane, the flat in-plane index of their first node and
    their length.

    The nodes inside a contour come in runs along grid rows. A node's dose on any face of its
    slab is a blend of its values on two of the dose planes the slab needs, so the range of a
    run on those planes (contiguous memory: one segment reduction each) bounds every value
    its nodes can take; only runs whose range reaches beyond the current extremes are
    expanded into nodes.
    """
    empty = np.zeros(0, np.int64)
    p, j, a, b = row_intervals(edges, interp.dy, y0, band, span)
    i0 = np.maximum(np.ceil((a - interp.x0) / interp.dx).astype(np.int64), 0)
    i1 = np.minimum(np.floor((b - interp.x0) / interp.dx).astype(np.int64), interp.nx - 1)
    keep = (j >= 0) & (j < interp.ny) & (i1 >= i0)
    p, j, i0, i1 = p[keep], j[keep], i0[keep], i1[keep]
    if p.size == 0:
        return empty, empty, empty
    frames = faces.frames[p]
    run, rank = expand(frames)
    k = faces.k0[faces.start][p[run]] + rank
    start = k * (interp.nx * interp.ny) + j[run] * interp.nx + i0[run]
    stop = start + (i1 - i0 + 1)[run]
    order = np.argsort(start, kind="stable")
    bounds = np.empty(2 * order.size, np.int64)
    bounds[0::2], bounds[1::2] = start[order], stop[order]
    lo = np.empty(order.size)
    hi = np.empty(order.size)
    lo[order] = np.minimum.reduceat(interp.padded, bounds)[0::2]
    hi[order] = np.maximum.reduceat(interp.padded, bounds)[0::2]
    first = np.cumsum(frames) - frames
    useful = ((np.minimum.reduceat(lo, first) < acc.dmin)
              | (np.maximum.reduceat(hi, first) > acc.dmax))
    p, j, i0, i1 = p[useful], j[useful], i0[useful], i1[useful]
    return p, j * interp.nx + i0, i1 - i0 + 1


