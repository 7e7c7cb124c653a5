"""In-plane dose samples: the staggered sub-voxel lattice, its refinement, and slivers.

Each contour plane is sampled on a lattice of rows ``h`` mm apart whose inside-intervals
are cut into pieces at most ``h`` long, each weighted by its exact length
(:func:`lattice_samples`); every plane's lattice is shifted by a different fraction of a step
(:func:`lattice_offsets`). :func:`choose_step` picks ``h`` per structure; a plane thinner
than its lattice is sampled again on finer lattices, and one no affordable lattice
resolves is sampled along its outline (:func:`plane_samples`, :func:`outline_samples`).
The work is counted exactly before samples are made. Leans on :mod:`rtcheck.dvh.geometry`
(edges, row intervals), :mod:`rtcheck.dvh.interpolate` (a group's slab faces) and
:mod:`rtcheck.dvh.limits`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from rtcheck.dvh import limits
from rtcheck.dvh.arrays import FloatArray, IntArray, expand
from rtcheck.dvh.geometry import (
    Edges,
    interval_samples,
    piece_counts,
    row_intervals,
    row_span,
    vertex_centroids,
)
from rtcheck.dvh.interpolate import Faces, Interpolator

if TYPE_CHECKING:
    from rtcheck.model import DoseGrid

#: In-plane samples: the plane of each, its centre x and y (mm) and its weight (area, mm²,
#: or outline length before rescaling).
Samples = tuple[IntArray, FloatArray, FloatArray, FloatArray]


def choose_step(plane_area_mm2: float, volume_mm3: float, dose: DoseGrid,
                budget: int) -> float:
    """In-plane sampling step (mm): fine for small structures, within budget for large ones.

    ``budget`` is the number of in-plane samples over all planes. Dmax and Dmin do not
    depend on the step (see the :mod:`rtcheck.dvh` docstring), so a large structure (BODY,
    lungs) may be sampled more coarsely than the dose grid: its sampling lattice shifts from
    plane to plane, and its DVH is an average over many planes.
    """
    step = max(math.sqrt(plane_area_mm2 / budget), limits.MIN_STEP_MM) if plane_area_mm2 > 0 \
        else limits.MIN_STEP_MM
    if volume_mm3 < 30_000:  # under 30 cc: near-max doses decide verdicts, stay fine
        step = min(step, limits.SMALL_STRUCTURE_STEP_MM)
    positive = [s for s in dose.spacing[:2] if s > 0]
    return min(step, 4.0 * min(positive)) if positive else step


def lattice_offsets(n: int) -> FloatArray:
    """Offsets (in steps) of each plane's sampling lattice: a low-discrepancy (R2) sequence.

    Shifting each plane's rows and columns by a different fraction of a step makes the planes
    together sample the structure far more finely than one lattice would; without it, a dose
    gradient parallel to the rows is seen in steps of a whole row.
    """
    i = np.arange(n)
    return np.column_stack(((i * 0.7548776662466927) % 1.0, (i * 0.5698402909980532) % 1.0))


class PlaneGroup:
    """Consecutive planes of a structure, processed together: their contour edges, slab
    faces, exact areas and lattice offsets (plane indices are local to the group)."""

    def __init__(self, polys: list[list[FloatArray]], areas: FloatArray, z_lo: FloatArray,
                 z_hi: FloatArray, stagger: FloatArray, interp: Interpolator) -> None:
        self.n = len(polys)
        self.edges = Edges(polys)
        self.faces = Faces(z_lo, z_hi, interp)
        self.areas = areas
        self.stagger = stagger
        self.todo = np.nonzero(areas > 0)[0]
        # contour points per edge of the Dmax/Dmin search, when counted
        self.points: IntArray | None = None


def lattice_samples(edges: Edges, todo: IntArray, hs: float, stagger: FloatArray,
                    cost: IntArray, budget: float, make: bool = True
                    ) -> tuple[Samples | None, float, float]:
    """Samples (plane, x, y, area) of the planes ``todo`` on their lattices of step ``hs``.

    The work is counted exactly before anything is made. Returns ``(samples, over, pairs)``:
    ``over`` is 0 when the row crossings stay within :data:`~rtcheck.dvh.limits.MAX_CROSSINGS`
    and the samples times their cost (faces of their slab) within ``budget``, otherwise
    roughly how much coarser the step should be (and ``samples`` is None); ``pairs`` is the
    work counted. With ``make`` False the work is only counted.
    """
    if todo.size == 0:
        return None, 0.0, 0.0
    n = stagger.shape[0]
    sub = edges if todo.size == n else edges.subset(todo)
    # Lattices are per plane, so planes refined together share one step.
    x0 = edges.xmin - stagger[:, 0] * hs
    y0 = edges.ymin - stagger[:, 1] * hs
    span = row_span(sub, hs, y0)
    crossings = int(np.maximum(span[2] - span[1] + 1, 0).sum())
    if crossings > limits.MAX_CROSSINGS:
        return None, crossings / limits.MAX_CROSSINGS, float(crossings)
    p, j, a, b = row_intervals(sub, hs, y0, span=span)
    pairs = float(np.dot(piece_counts(a, b, hs, x0[p]), cost[p]))
    if pairs > budget:
        return None, math.sqrt(pairs / max(budget, 1.0)), pairs
    if not make:
        return None, 0.0, pairs
    sp, xs, ys, length = interval_samples(p, j, a, b, hs, x0, y0)
    return (sp, xs, ys, length * hs), 0.0, pairs


def plane_samples(g: PlaneGroup, h: float, first: Samples | None, budget: float
                  ) -> tuple[IntArray, FloatArray, FloatArray, FloatArray, float]:
    """In-plane samples of every plane of a group (plane, x, y, area weight), rescaled to
    exact areas, and the work they cost (sample-face pairs).

    ``first`` is the group's first lattice at step ``h`` (None: made here). A plane thinner
    than the step (a sliver, a tiny contour) is sampled again on finer lattices until the
    samples hold at least half its area, as long as ``budget`` allows; a plane that no
    affordable lattice resolves is sampled along its outline.
    """
    n, areas, cost, todo = g.n, g.areas, g.faces.count, g.todo
    out: list[Samples] = []
    used, hs = 0.0, h
    for r in range(6):
        if todo.size == 0:
            break
        if r == 0:
            got = first
            if got is None:  # counted (and reserved) by plan_work, made now
                got, _, _ = lattice_samples(g.edges, todo, hs, g.stagger, cost, math.inf)
        else:
            got, _, _ = lattice_samples(g.edges, todo, hs, g.stagger, cost, budget - used)
        if got is None:
            break  # over budget: the planes left are sampled along their outline
        sp, xs, ys, w = got
        sampled = np.bincount(sp, weights=w, minlength=n)
        good = sampled >= 0.5 * areas
        keep = good[sp]
        out.append((sp[keep], xs[keep], ys[keep], w[keep]))
        used += float(cost[sp[keep]].sum())
        todo = todo[~good[todo]]
        hs /= 4.0
    if todo.size:
        out.append(outline_samples(g.edges, todo, h, cost, budget - used))
        used += float(cost[out[-1][0]].sum())
    plane, xs, ys, w = rescaled(out, areas)
    return plane, xs, ys, w, used


def rescaled(out: list[Samples], areas: FloatArray) -> Samples:
    """The samples of several rounds, together, each plane's weights rescaled to its area
    ``areas[plane]`` (so that the DVH's volume is exact)."""
    n = areas.size
    if not out:
        empty = np.zeros(0)
        return np.zeros(0, np.int64), empty, empty, empty
    plane, xs, ys, w = (np.concatenate(c) for c in zip(*out))
    sampled = np.bincount(plane, weights=w, minlength=n)
    scale = np.divide(areas, sampled, out=np.zeros(n), where=sampled > 0)
    return plane, xs, ys, w * scale[plane]


def outline_samples(edges: Edges, todo: IntArray, h: float, cost: IntArray,
                    budget: float) -> Samples:
    """Samples of planes too thin for any affordable lattice (plane, x, y, weight).

    Slivers: the area of a thin shape lies along its outline, so samples are taken along the
    outline, at most ``h`` apart (further apart if the budget requires), each weighted by
    the length it stands for; the caller rescales each plane to its exact area. If even one
    sample per edge is over budget, one sample at the plane's vertex centroid.
    """
    n = cost.size
    sel = np.nonzero(np.isin(edges.plane, todo))[0]
    plane = edges.plane[sel]
    x1, y1, x2, y2 = edges.x1[sel], edges.y1[sel], edges.x2[sel], edges.y2[sel]
    length = np.hypot(x2 - x1, y2 - y1)
    c = cost[plane].astype(float)
    if c.sum() <= budget:
        spare = budget - float(c.sum())
        step = max(h, float(np.dot(length, c)) / spare) if spare > 0 else math.inf
        k = np.maximum(np.ceil(length / step), 1).astype(np.int64)
        idx, rank = expand(k)
        t = (rank + 0.5) / k[idx]
        return (plane[idx], x1[idx] + t * (x2 - x1)[idx], y1[idx] + t * (y2 - y1)[idx],
                (length / k)[idx])
    cx, cy = vertex_centroids(plane, x1, y1, n)
    return todo, cx[todo], cy[todo], np.ones(todo.size)


