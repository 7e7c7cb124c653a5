"""The DVH of the union of several structures, evaluated as one organ.

For an organ contoured in parts (jejunum + ileum, heart + pericardium): the z axis is cut
into layers where each part has at most one plane, each layer's in-plane union is sampled
row by row (the parts' exact inside-intervals, merged), and its Dmax/Dmin are the parts'
own (see :func:`compute_union_dvh`). Leans on :mod:`rtcheck.dvh.engine` (slabs, sampling
through slab faces, the Dmax/Dmin search of each part) and on :mod:`rtcheck.dvh.geometry`
and :mod:`rtcheck.dvh.lattice` for the rows and the lattice.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rtcheck.dvh import limits
from rtcheck.dvh.arrays import FloatArray, IntArray
from rtcheck.dvh.engine import (
    add_samples,
    compute_dvh,
    interpolator_for,
    sample_structure,
    structure_slabs,
)
from rtcheck.dvh.geometry import (
    Edges,
    interval_samples,
    piece_counts,
    row_intervals,
    row_span,
    vertex_centroids,
)
from rtcheck.dvh.histogram import DVH, Accumulator, finish_dvh
from rtcheck.dvh.interpolate import Faces, Interpolator
from rtcheck.dvh.lattice import Samples, choose_step, lattice_offsets, rescaled
from rtcheck.dvh.limits import DVHInputError
from rtcheck.model import DoseGrid, Structure, distinct


def compute_union_dvh(structures: list[Structure], dose: DoseGrid, name: str | None = None,
                      **kwargs: Any) -> DVH:
    """DVH of the union of several structures, evaluated as one organ.

    For an organ contoured in parts (jejunum + ileum, colon + sigmoid, heart + pericardium):
    D5cc of the small bowel is the dose to its hottest 5 cc, wherever they lie. A point is in
    the union when it is inside *any* structure, each structure with its own planes, slabs
    (:mod:`rtcheck.dvh` docstring) and even-odd holes; overlapping or nested parts (a
    pericardium holding the heart) count once. Concatenating the contours would be wrong: by
    the even-odd rule a heart inside its pericardium would become a hole.

    Method: the z axis is cut at every slab bound of every structure, giving *layers* in which
    each structure has at most one plane; each layer's in-plane union is sampled row by row
    (the exact inside-intervals of each structure, merged), and sampled through the layer's
    thickness exactly as :func:`compute_dvh` samples a slab. The union area of a layer is its
    sampled area rescaled by the ratio of the parts' exact areas to their sampled areas on the
    same rows (exact for one structure, disjoint parts and identical parts; otherwise only
    the overlap is estimated). Dmax and Dmin are searched on each part's own contours and
    grid nodes as in :func:`compute_dvh`, so the union's Dmax is the largest of the parts'.

    Parameters
    ----------
    structures : list of Structure
        The parts. Empty or point ROIs are left out, with a warning in the DVH.
    dose : DoseGrid
    name : str, optional
        Name of the DVH; by default the parts' names joined by ``" + "``.
    **kwargs
        Keywords of :func:`compute_dvh` (``step_mm``, ``sample_budget``,
        ``slice_spacing_mm``).

    Returns
    -------
    DVH
        With one structure (after leaving out empty ones), exactly :func:`compute_dvh`'s.

    Raises
    ------
    ValueError
        When no structure has a closed contour.
    """
    label = name if name is not None else " + ".join(s.name for s in structures)
    solid = [s for s in structures if s.contours]
    if not solid:
        raise ValueError(f"{label!r}: no structure with a closed contour, no volume and no DVH")
    # An empty part of an organ is worth a warning, not a failure: the rest is still the organ
    # as contoured.
    notes = [f"structure {s.name!r} has no closed contour: left out of the union"
             for s in structures if not s.contours]
    if len(solid) == 1:
        dvh = compute_dvh(solid[0], dose, **kwargs)
    else:
        dvh = _union_dvh(solid, dose, label, **kwargs)
    dvh.name = label
    dvh.warnings[:0] = notes
    return dvh


def _union_dvh(structures: list[Structure], dose: DoseGrid, label: str, *,
               step_mm: float | None = None, sample_budget: int = limits.DEFAULT_SAMPLE_BUDGET,
               slice_spacing_mm: float | None = None,
               _interpolator: Interpolator | None = None) -> DVH:
    """:func:`compute_union_dvh` for two structures or more."""
    parts = [structure_slabs(s, dose, slice_spacing_mm) for s in structures]
    z_lo, z_hi, g_part, g_plane, g_layer = _union_layers([(p[2], p[3]) for p in parts])
    n = z_lo.size
    exact = np.array([parts[k][1][i] for k, i in zip(g_part, g_plane)])
    # The union holds its largest part on every layer: a lower bound of the union's area and
    # volume, so the step stays fine for a small organ (see choose_step).
    lower = np.zeros(n)
    np.maximum.at(lower, g_layer, exact)
    thick = z_hi - z_lo
    if step_mm is not None and not (math.isfinite(step_mm) and step_mm > 0):
        raise ValueError(f"step_mm must be a positive number of mm, not {step_mm!r}")
    h = step_mm if step_mm else choose_step(float(lower.sum()), float(np.dot(lower, thick)),
                                            dose, sample_budget)
    interp = _interpolator if _interpolator is not None else interpolator_for(label, dose)
    acc = Accumulator()
    warnings: list[str] = []

    edges = Edges([parts[k][0][i] for k, i in zip(g_part, g_plane)])
    faces = Faces(z_lo, z_hi, interp)
    plane, xs, ys, w, area, used = _union_plane_samples(label, edges, g_layer, exact, lower, h,
                                                        faces.count, warnings)
    add_samples(plane, xs, ys, w, faces, interp, acc)
    # The union's extremes are the parts' extremes: search each part's own boundary and nodes.
    for s, (polys, areas, lo, hi) in zip(structures, parts):
        sample_structure(s.name, polys, areas, lo, hi, h, interp, acc, warnings,
                         samples=False)
    return finish_dvh(label, dose, float(np.dot(area, thick)), used, acc, warnings)


def _union_layers(slabs: list[tuple[FloatArray, FloatArray]], tol: float = 1e-6
                  ) -> tuple[FloatArray, FloatArray, IntArray, IntArray, IntArray]:
    """Cut z at every slab bound of every part: layers where each part has at most one plane.

    Parameters
    ----------
    slabs : list of (z_lo, z_hi)
        Each part's slab bounds (sorted, not overlapping within a part).
    tol : float
        Bounds closer than this (mm) are one bound (rounding of the same plane position).

    Returns
    -------
    z_lo, z_hi : ndarray
        Bounds of the layers that hold at least one part (gaps between parts are left out).
    part, plane, layer : ndarray
        One row per *group*: part ``part``'s plane ``plane`` is present on layer ``layer``.
    """
    bounds = distinct(np.concatenate([np.concatenate(b) for b in slabs]))
    bounds = bounds[np.concatenate(([True], np.diff(bounds) > tol))]
    mids = 0.5 * (bounds[:-1] + bounds[1:])
    part: list[IntArray] = []
    plane: list[IntArray] = []
    layer: list[IntArray] = []
    for k, (lo, hi) in enumerate(slabs):
        i = np.searchsorted(lo, mids, side="right") - 1
        on = (i >= 0) & (mids < hi[np.maximum(i, 0)])
        layer.append(np.nonzero(on)[0])
        plane.append(i[on])
        part.append(np.full(int(on.sum()), k))
    part_a, plane_a, layer_a = (np.concatenate(x).astype(np.int64) for x in (part, plane, layer))
    used, layer_a = np.unique(layer_a, return_inverse=True)
    order = np.argsort(layer_a, kind="stable")  # groups layer by layer (edges come in order)
    return (bounds[:-1][used], bounds[1:][used], part_a[order], plane_a[order],
            layer_a[order])


def _union_plane_samples(label: str, edges: Edges, layer: IntArray, exact: FloatArray,
                         lower: FloatArray, h: float, cost: IntArray, warnings: list[str]
                         ) -> tuple[IntArray, FloatArray, FloatArray, FloatArray, FloatArray,
                                    float]:
    """In-plane samples of each layer's union (layer, x, y, area weight), its area (mm²) and
    the step used.

    ``edges`` holds one "plane" per group (a part's plane on a layer), ``layer`` the layer of
    each group and ``exact`` its exact even-odd area; ``lower`` is the largest part's area on
    each layer. Like :func:`plane_samples`, a layer whose samples hold less than half of its
    largest part is sampled again on finer lattices. Only layers made of slivers are refined:
    refining a whole layer for a sliver beside a large part would multiply the large part's
    samples by 16 per round. A sliver beside a resolved part still counts in the layer's area
    (ratio estimate), its tiny volume taking the dose of the samples around it. The work is
    bounded as in :func:`plane_samples` (``cost``: faces of each layer's slab).
    """
    n = lower.size
    stagger = lattice_offsets(n)
    xmin, ymin = np.full(n, np.inf), np.full(n, np.inf)
    np.minimum.at(xmin, layer, edges.xmin)
    np.minimum.at(ymin, layer, edges.ymin)
    exact_sum = np.bincount(layer, weights=exact, minlength=n)
    area = np.zeros(n)
    todo = np.nonzero(lower > 0)[0]
    out: list[Samples] = []
    budget, used, asked, hs = float(limits.MAX_SAMPLE_PAIRS), 0.0, h, h
    finite = np.isfinite(edges.xmax)
    extent = float(max(np.max(edges.xmax[finite] - edges.xmin[finite], initial=0.0),
                       np.max(edges.ymax[finite] - edges.ymin[finite], initial=0.0)))
    rounds = 0
    while rounds < 6 and todo.size:
        # One lattice per layer, shared by its parts, so their rows line up and merge.
        x0 = xmin - stagger[:, 0] * hs
        y0 = ymin - stagger[:, 1] * hs
        rows, over = _union_rows(edges, layer, todo, hs, x0, y0, cost, budget - used)
        if rows is None:
            if rounds:
                break  # over budget: the layers left get the sliver sample below
            if hs > 2 * extent + 1.0:
                raise DVHInputError(
                    f"structure {label!r}: its contours need more than "
                    f"{limits.MAX_SAMPLE_PAIRS:,} dose samples even sampled every {hs:.3g} mm: "
                    "no DVH in bounded memory")
            hs *= max(1.25, 1.05 * over)
            h = hs
            continue
        g, j, a, b = rows
        part_sampled = np.bincount(g, weights=(b - a) * hs, minlength=layer.size)
        sp, xs, ys, length = interval_samples(*_merge_intervals(layer[g], j, a, b), hs, x0, y0)
        w = length * hs
        sampled = np.bincount(sp, weights=w, minlength=n)
        good = (sampled >= 0.5 * lower) & (sampled > 0)
        # Ratio estimate: the union's sampled area, corrected as its parts' are.
        parts_sampled = np.bincount(layer, weights=part_sampled, minlength=n)
        ratio = np.divide(exact_sum, parts_sampled, out=np.zeros(n), where=parts_sampled > 0)
        area[todo] = (sampled * ratio)[todo]
        keep = good[sp]
        out.append((sp[keep], xs[keep], ys[keep], w[keep]))
        used += float(cost[sp[keep]].sum())
        todo = todo[~good[todo]]
        hs /= 4.0
        rounds += 1
    if h > asked * (1 + 1e-9):
        warnings.append(
            f"sampled every {h:.3g} mm, not {asked:.3g} mm: at the finer step these "
            f"structures would need more than {limits.MAX_SAMPLE_PAIRS:,} dose samples")
    if todo.size:
        area[todo] = lower[todo]
        out.append(_sliver_samples(edges, layer, exact, lower, todo))
    plane, xs, ys, w = rescaled(out, area)
    return plane, xs, ys, w, area, h


def _union_rows(edges: Edges, layer: IntArray, todo: IntArray, hs: float, x0: FloatArray,
                y0: FloatArray, cost: IntArray, spare: float
                ) -> tuple[tuple[IntArray, IntArray, FloatArray, FloatArray] | None, float]:
    """The row intervals of the parts on the layers ``todo``, on their layer's lattice of step
    ``hs`` (origins ``x0``, ``y0`` per layer): group, row, start and end x of each.

    None, and roughly how much coarser the step should be, when the row crossings exceed
    :data:`~rtcheck.dvh.limits.MAX_CROSSINGS` or the samples times their cost (faces of
    their layer's slab) exceed ``spare``.
    """
    groups = np.nonzero(np.isin(layer, todo))[0]
    sub = edges if groups.size == layer.size else edges.subset(groups)
    span = row_span(sub, hs, y0[layer])
    crossings = int(np.maximum(span[2] - span[1] + 1, 0).sum())
    if crossings > limits.MAX_CROSSINGS:
        return None, crossings / limits.MAX_CROSSINGS
    g, j, a, b = row_intervals(sub, hs, y0[layer], span=span)
    # Pieces of the merged intervals are at most those of the parts' intervals.
    pairs = float(np.dot(piece_counts(a, b, hs, x0[layer[g]]), cost[layer[g]]))
    if pairs > spare:
        return None, math.sqrt(pairs / max(spare, 1.0))
    return (g, j, a, b), 0.0


def _sliver_samples(edges: Edges, layer: IntArray, exact: FloatArray, lower: FloatArray,
                    todo: IntArray) -> Samples:
    """Samples of layers ``todo``, slivers far below the sampling resolution: one sample at
    the vertex centroid of the layer's largest part, holding its area (the overlap of such
    slivers is unknown)."""
    n = lower.size
    order = np.lexsort((exact, layer))  # by layer, then area: each layer's last is largest
    last = np.append(layer[order][1:] != layer[order][:-1], True)
    largest = np.zeros(n, np.int64)
    largest[layer[order][last]] = order[last]
    sel = np.isin(edges.plane, largest[todo])
    own = layer[edges.plane[sel]]
    cx, cy = vertex_centroids(own, edges.x1[sel], edges.y1[sel], n)
    return todo, cx[todo], cy[todo], lower[todo]


def _merge_intervals(key: IntArray, j: IntArray, a: FloatArray, b: FloatArray
                     ) -> tuple[IntArray, IntArray, FloatArray, FloatArray]:
    """Union of the x-intervals ``[a, b]`` of each row ``(key, j)``: disjoint, sorted.

    A sweep over the interval ends: a running count of open intervals; a merged interval
    starts where the count leaves 0 and ends where it returns to 0. Each row's count ends at
    0, so one cumulative sum serves every row.
    """
    m = a.size
    kk, jj = np.concatenate((key, key)), np.concatenate((j, j))
    x = np.concatenate((a, b))
    delta = np.concatenate((np.ones(m, np.int64), -np.ones(m, np.int64)))
    # At equal x an interval opens before another closes: touching intervals merge.
    order = np.lexsort((-delta, x, jj, kk))
    d = delta[order]
    depth = np.cumsum(d)
    opens, closes = order[(d == 1) & (depth == 1)], order[(d == -1) & (depth == 0)]
    return kk[opens], jj[opens], x[opens], x[closes]
