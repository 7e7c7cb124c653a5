"""The DVH engine: :func:`compute_dvh` and :func:`compute_dvhs`, with bounded work.

A structure's planes become slabs with exact areas (:mod:`rtcheck.dvh.geometry`); its work
is counted and bounded before anything is made (:func:`plan_work`, caps in
:mod:`rtcheck.dvh.limits`); its planes are then taken in groups of bounded size, each
sampled on its lattice (:mod:`rtcheck.dvh.lattice`) through its slab faces
(:mod:`rtcheck.dvh.interpolate`), its Dmax/Dmin searched exactly
(:mod:`rtcheck.dvh.extremes`), and the samples binned into a
:class:`~rtcheck.dvh.histogram.DVH`. The method is described in the :mod:`rtcheck.dvh`
docstring. :mod:`rtcheck.dvh.union` reuses these steps for the union of several structures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from rtcheck.dvh import limits
from rtcheck.dvh.arrays import FloatArray, IntArray, chunks
from rtcheck.dvh.extremes import boundary_extremes, node_extremes, node_search_work
from rtcheck.dvh.geometry import (
    check_coordinates,
    even_odd_area,
    points_per_edge,
    slab_bounds,
    typical_spacing,
)
from rtcheck.dvh.histogram import DVH, Accumulator, finish_dvh
from rtcheck.dvh.interpolate import Faces, Interpolator
from rtcheck.dvh.lattice import (
    PlaneGroup,
    Samples,
    choose_step,
    lattice_offsets,
    lattice_samples,
    plane_samples,
)
from rtcheck.dvh.limits import DVHInputError
from rtcheck.model import DoseGrid, Structure, common_plane_spacing

#: A structure's planes (:func:`structure_slabs`): the polygons of each plane, its exact
#: even-odd area (mm²) and its slab's lower and upper z (mm).
Slabs = tuple[list[list[FloatArray]], FloatArray, FloatArray, FloatArray]


def compute_dvh(structure: Structure, dose: DoseGrid, *, step_mm: float | None = None,
                sample_budget: int = limits.DEFAULT_SAMPLE_BUDGET,
                slice_spacing_mm: float | None = None,
                _interpolator: Interpolator | None = None) -> DVH:
    """Cumulative DVH of ``structure`` in ``dose`` (the method: :mod:`rtcheck.dvh`)."

    Parameters
    ----------
    structure : Structure
        A structure with CLOSED_PLANAR contours.
    dose : DoseGrid
        The dose, in Gy (a RELATIVE dose gives a DVH in relative units, flagged in warnings).
    step_mm : float, optional
        Sampling step; by default chosen from the structure's size (0.1-0.5 mm below 30 cc).
        It is raised (with a warning) when the structure would need more samples than
        :data:`~rtcheck.dvh.limits.MAX_SAMPLE_PAIRS`.
    sample_budget : int
        Approximate number of in-plane samples over all planes (it sets the step of
        structures above 30 cc; Dmax and Dmin do not depend on it).
    slice_spacing_mm : float, optional
        The structure set's contour plane spacing
        (:attr:`rtcheck.model.StructureSet.plane_spacing_mm`). It sets the slab thickness
        of a structure on a single plane and of a structure whose planes are not contiguous
        (two consecutive planes more than 1.5 spacings apart): see the :mod:`rtcheck.dvh`
        docstring, *Geometry*. Structures on contiguous planes use their own median plane spacing.
        Without it, every structure uses its own spacing, and a single plane the dose grid's
        frame spacing.

    Returns
    -------
    DVH

    Raises
    ------
    ValueError
        When the structure has no closed contour (a point or an empty ROI has no DVH).
    DVHInputError
        (a ValueError and an :class:`~rtcheck.errors.InputError`) When the input cannot be
        honoured: contour coordinates that are not finite or beyond 1 km, a dose grid that
        is not finite, a structure whose coarsest sampling is still over budget.
    """
    if not structure.contours:
        what = "a point ROI" if structure.is_point else "empty"
        raise ValueError(f"structure {structure.name!r} is {what}: it has no volume and no DVH")
    if step_mm is not None and not (math.isfinite(step_mm) and step_mm > 0):
        raise ValueError(f"step_mm must be a positive number of mm, not {step_mm!r}")
    polys, areas, z_lo, z_hi = structure_slabs(structure, dose, slice_spacing_mm)
    volume_mm3 = float(np.sum(areas * (z_hi - z_lo)))

    h = step_mm if step_mm else choose_step(float(areas.sum()), volume_mm3, dose, sample_budget)
    interp = _interpolator if _interpolator is not None else interpolator_for(structure.name,
                                                                                dose)
    acc = Accumulator()
    warnings: list[str] = []
    h = sample_structure(structure.name, polys, areas, z_lo, z_hi, h, interp, acc, warnings)

    return finish_dvh(structure.name, dose, volume_mm3, h, acc, warnings)


def interpolator_for(name: str, dose: DoseGrid) -> Interpolator:
    """The dose grid's :class:`~rtcheck.dvh.interpolate.Interpolator`; a grid it refuses is
    reported against the structure ``name``."""
    try:
        return Interpolator(dose)
    except DVHInputError as exc:
        raise DVHInputError(f"structure {name!r}: {exc.message}") from None


def structure_slabs(structure: Structure, dose: DoseGrid, slice_spacing_mm: float | None
                    ) -> Slabs:
    """A structure's planes: polygons, exact even-odd areas (mm²) and slab bounds (mm)."""
    planes = structure.planes()
    zs = np.array(list(planes.keys()), dtype=np.float64)
    polys = [[np.asarray(p, dtype=np.float64)[:, :2] for p in plist] for plist in planes.values()]
    check_coordinates(structure.name, zs, polys)
    typical = typical_spacing(zs, slice_spacing_mm, dose)
    z_lo, z_hi = slab_bounds(zs, typical)
    areas = np.array([max(even_odd_area(p), 0.0) for p in polys])
    return polys, areas, z_lo, z_hi


@dataclass
class WorkPlan:
    """What :func:`plan_work` decided for a whole structure."""

    h: float  # step of the first lattice
    first: list[Samples | None]  # each group's first-lattice samples (None: made group by group)
    reserved: list[float]  # each group's first-lattice work (sample-face pairs)
    boundary_step: float  # spacing of the contour points of the Dmax/Dmin search
    nodes: bool  # whether the grid-node search of Dmax/Dmin is affordable


@dataclass
class _Counts:
    """The work of a structure's Dmax/Dmin search and its extent, counted group by group."""

    b_points: float = 0.0  # contour points times faces, at the normal step
    b_length: float = 0.0  # outline length times faces (mm)
    b_fixed: float = 0.0  # contour vertices times faces (the fewest points possible)
    node_work: float = 0.0  # row crossings times dose planes of the grid-node search
    extent: float = 0.0  # largest in-plane extent of a plane (mm)

    def add(self, g: PlaneGroup, step: float, interp: Interpolator) -> None:
        """Count group ``g`` (its contour points at ``step`` are kept in ``g.points``)."""
        cost = g.faces.count[g.edges.plane].astype(float)
        length = np.hypot(g.edges.x2 - g.edges.x1, g.edges.y2 - g.edges.y1)
        g.points = points_per_edge(g.edges, step, length)
        self.b_points += float(np.dot(g.points, cost))
        self.b_length += float(np.dot(length, cost))
        self.b_fixed += float(cost.sum())
        self.node_work += node_search_work(g, interp)
        finite = np.isfinite(g.edges.xmax)
        self.extent = max(self.extent,
                          float(np.max(g.edges.xmax[finite] - g.edges.xmin[finite],
                                       initial=0.0)),
                          float(np.max(g.edges.ymax[finite] - g.edges.ymin[finite],
                                       initial=0.0)))


def sample_structure(name: str, polys: list[list[FloatArray]], areas: FloatArray,
                     z_lo: FloatArray, z_hi: FloatArray, h: float, interp: Interpolator,
                     acc: Accumulator, warnings: list[str], samples: bool = True) -> float:
    """Histogram samples (unless ``samples`` is False) and Dmin/Dmax candidates of every
    plane's slab.

    Planes are processed in groups of about :data:`~rtcheck.dvh.limits.GROUP_EDGES` contour
    edges (one group for almost every structure), so memory does not grow with the
    structure's vertex count; the work of the whole structure is planned first
    (:func:`plan_work`). Returns the in-plane step used (``h``, or coarser when the budget
    required it).
    """
    each = _Groups(polys, areas, z_lo, z_hi, interp)
    plan = plan_work(name, each, each.single, h, interp, warnings, samples)
    used = 0.0
    for k, g in enumerate(each()):
        if samples:
            left = limits.MAX_SAMPLE_PAIRS - used - sum(plan.reserved[k + 1:])
            plane, xs, ys, w, spent = plane_samples(g, plan.h, plan.first[k], left)
            used += spent
            add_samples(plane, xs, ys, w, g.faces, interp, acc)
        boundary_extremes(g.edges, g.faces, plan.boundary_step, interp, acc, g.points)
        if plan.nodes:
            node_extremes(g.edges, g.faces, interp, acc, g.n)
    return plan.h


class _Groups:
    """The groups of planes of a structure, made anew at each call; a structure of one
    group (almost every one) keeps it, so what :func:`plan_work` counted on it is kept."""

    def __init__(self, polys: list[list[FloatArray]], areas: FloatArray, z_lo: FloatArray,
                 z_hi: FloatArray, interp: Interpolator) -> None:
        self.polys, self.areas, self.z_lo, self.z_hi = polys, areas, z_lo, z_hi
        self.interp = interp
        self.stagger = lattice_offsets(len(polys))
        sizes = np.array([sum(len(p) for p in plist) for plist in polys])
        self.slices = chunks(sizes, limits.GROUP_EDGES)
        self.single = len(self.slices) == 1
        self.only = self.make(self.slices[0]) if self.single else None

    def make(self, sl: slice) -> PlaneGroup:
        """The group of the planes ``sl``."""
        return PlaneGroup(self.polys[sl], self.areas[sl], self.z_lo[sl], self.z_hi[sl],
                          self.stagger[sl], self.interp)

    def __call__(self) -> Iterator[PlaneGroup]:
        if self.only is not None:
            return iter([self.only])
        return (self.make(sl) for sl in self.slices)



def plan_work(name: str, each: Callable[[], Iterator[PlaneGroup]], single: bool, h: float,
              interp: Interpolator, warnings: list[str], samples: bool) -> WorkPlan:
    """Count the work of a structure before doing it, and bound it.

    The step of the first lattice is raised until its samples fit
    :data:`~rtcheck.dvh.limits.MAX_SAMPLE_PAIRS`; the contour points of the Dmax/Dmin search
    are spread until they fit :data:`~rtcheck.dvh.limits.MAX_BOUNDARY_PAIRS`; the grid-node
    search is left out beyond :data:`~rtcheck.dvh.limits.MAX_NODE_WORK`. Each departure from
    the normal method is a warning.
    """
    asked, step = h, min(h, interp.edge_step)
    counts = _Counts()
    counted = False
    while True:
        first: list[Samples | None] = []
        reserved: list[float] = []
        total, over = 0.0, 0.0
        for g in each():
            if over and counted:
                break  # over budget: recount at a coarser step
            if not counted:
                counts.add(g, step, interp)
            if over or not samples:
                continue
            got, ratio, pairs = lattice_samples(g.edges, g.todo, h, g.stagger, g.faces.count,
                                                limits.MAX_SAMPLE_PAIRS - total, make=single)
            if ratio:
                over = ratio
                continue
            first.append(got)
            reserved.append(pairs)
            total += pairs
        counted = True
        if not over:
            break
        if h > 2 * counts.extent + 1.0:
            raise DVHInputError(
                f"structure {name!r}: its contours need more than "
                f"{limits.MAX_SAMPLE_PAIRS:,} dose samples even sampled every {h:.3g} mm: "
                "no DVH in bounded memory")
        h *= max(1.25, 1.05 * over)
    if h > asked * (1 + 1e-9):
        warnings.append(
            f"sampled every {h:.3g} mm, not {asked:.3g} mm: at the finer step this structure "
            f"would need more than {limits.MAX_SAMPLE_PAIRS:,} dose samples")
    step, widened = _boundary_step(counts, step, warnings)
    if widened and single:
        for g in each():
            g.points = None  # counted at the finer step
    nodes = counts.node_work <= limits.MAX_NODE_WORK
    if not nodes:
        warnings.append(
            "outline too intricate for the dose grid (more than "
            f"{limits.MAX_NODE_WORK:,} row crossings): Dmax and Dmin searched on the samples "
            "and the contour points only, not at every dose-grid node inside the contours")
    return WorkPlan(h, first, reserved, step, nodes)


def _boundary_step(counts: _Counts, step: float, warnings: list[str]) -> tuple[float, bool]:
    """Spacing of the contour points of the Dmax/Dmin search: ``step``, or wider (with a
    warning) when the points would exceed :data:`~rtcheck.dvh.limits.MAX_BOUNDARY_PAIRS`;
    and whether it was widened."""
    if counts.b_points <= limits.MAX_BOUNDARY_PAIRS:
        return step, False
    # An outline far longer than the structure is large (a 10 m sliver): points further
    # apart, so that their number stays bounded (every vertex is still a point).
    spare = limits.MAX_BOUNDARY_PAIRS - counts.b_fixed
    coarse = max(step, counts.b_length / spare) if spare > 0 else math.inf
    warnings.append(
        "outline too long for the structure's size: Dmax and Dmin searched on contour "
        + (f"points {coarse:.3g} mm apart (not {step:.3g} mm)" if math.isfinite(coarse)
           else "vertices only") + " to bound the work")
    return coarse, True


def add_samples(plane: IntArray, xs: FloatArray, ys: FloatArray, w: FloatArray,
                faces: Faces, interp: Interpolator, acc: Accumulator) -> None:
    """Histogram samples: in-plane samples (plane, x, y, area) through their plane's slab.

    Evaluated in chunks of about :data:`~rtcheck.dvh.limits.CHUNK_PAIRS` sample-face pairs.
    """
    for sl in chunks(faces.count[plane], limits.CHUNK_PAIRS):
        _add_sample_chunk(plane[sl], xs[sl], ys[sl], w[sl], faces, interp, acc)


def _add_sample_chunk(plane: IntArray, xs: FloatArray, ys: FloatArray, w: FloatArray,
                      faces: Faces, interp: Interpolator, acc: Accumulator) -> None:
    """:func:`add_samples` for one chunk: the samples inside the grid, their dose on every
    face, and each slab piece between two faces inside the grid as one histogram sample."""
    inside = interp.inside_xy(xs, ys)
    plane, xs, ys, w = plane[inside], xs[inside], ys[inside], w[inside]
    if plane.size == 0:
        return
    # Dose on every face of each sample's slab pieces. Over a piece the dose runs linearly
    # from one face to the next, and the piece counts when both faces are inside the grid.
    corners, weights = interp.xy_weights(xs, ys)
    point, face, d = interp.at_faces(corners, weights, plane, faces)
    ok = faces.ok[face]
    acc.extremes(d[ok])
    piece = (point[1:] == point[:-1]) & ok[1:] & ok[:-1]
    thickness = faces.z[face[1:]] - faces.z[face[:-1]]
    acc.add(d[:-1][piece], d[1:][piece], w[point[:-1][piece]] * thickness[piece])


def plane_spacing(structures: list[Structure]) -> float | None:
    """The common contour plane spacing of a structure set's ROIs (mm), None if unknown.

    :func:`rtcheck.model.common_plane_spacing` (the median gap between consecutive planes,
    pooled over every ROI).
    """
    return common_plane_spacing(structures)


def compute_dvhs(structures: list[Structure], dose: DoseGrid, *,
                 slice_spacing_mm: float | None = None, **kwargs: Any) -> list[DVH]:
    """DVHs of several structures, in order; points and empty ROIs are skipped.

    A list rather than a mapping by name, because a structure set may hold two ROIs with
    the same name; each DVH carries its ROI number.

    ``slice_spacing_mm`` is the structure set's plane spacing (see :func:`compute_dvh`); pass
    :attr:`rtcheck.model.StructureSet.plane_spacing_mm` when ``structures`` is a selection.
    By default it is computed from ``structures`` (:func:`plane_spacing`). Other keywords
    are :func:`compute_dvh`'s.
    """
    if slice_spacing_mm is None:
        slice_spacing_mm = plane_spacing(structures)
    kwargs.setdefault("_interpolator", Interpolator(dose))
    out: list[DVH] = []
    for s in structures:
        if s.contours:
            d = compute_dvh(s, dose, slice_spacing_mm=slice_spacing_mm, **kwargs)
            d.roi_number = s.number
            out.append(d)
    return out


