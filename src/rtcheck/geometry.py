"""Distances and sizes measured on contours: tumour-to-cord distance, largest diameter.

The geometry is that of the DVH engine (:mod:`rtcheck.dvh`, *Geometry*): each plane's
contours are filled polygons combined by the even-odd rule (a contour inside another is a
hole), and each plane stands for a slab of +- half its structure's plane spacing along z (half
way to a nearer neighbouring plane; the spacing is the structure's median plane spacing, or the
structure set's when its planes are not contiguous or it has a single plane). Structures
contoured on different planes (a GTV on even planes, the cord on odd planes 1 mm away) thus
overlap in z where their slabs do, and no z gap is added there. Every number here is exact for
that geometry, up to floating-point rounding:

- :func:`min_distance_mm` is the smallest 3-D distance between two structures' slabs. Two
  slabs are ``sqrt(dz**2 + d**2)`` apart, where ``dz`` is the gap between their z ranges (0
  when they overlap) and ``d`` the 2-D distance between their outlines projected on one plane
  (0 when the regions overlap: a GTV inside the thecal sac is at distance 0), since every
  point pair splits into an in-plane and an out-of-plane part. ``d`` is found exactly: overlap
  by point-in-region and edge-crossing tests, else the smallest vertex-to-edge distance (two
  disjoint segments are closest at an end of one of them).
- :func:`largest_diameter_mm` is the largest distance between two points of a structure's
  contours, which is reached at two vertices (a segment's farthest point from anything is one
  of its ends); the vertices are first reduced to each plane's convex hull.

A curved surface contoured as a polygon is measured as that polygon: a circle of radius r drawn
with n vertices lies up to r (1 - cos(pi/n)) inside the circle (0.012 mm for r = 10 mm,
n = 64); the slabs of planes spaced s mm apart may reach up to s/2 beyond (or short of) the
anatomy in z.

Leans only on :mod:`rtcheck.model` and numpy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from rtcheck.model import Structure, distinct, median, slab_bounds

#: Planes more than this many structure-set spacings apart are not contiguous (as the DVH
#: engine's ``rtcheck.dvh.limits.CONTIGUOUS_GAP``).
CONTIGUOUS_GAP = 1.5
#: Vertex-to-edge distance blocks are computed this many pairs at a time (memory bound).
_BLOCK_PAIRS = 2_000_000


@dataclass(frozen=True)
class Plane:
    """One plane of a structure: its contours (closed polygons, N x 2 mm) at ``z`` (mm), standing
    for the slab ``z_lo``-``z_hi`` (mm; both ``z`` when the thickness is unknown)."""

    z: float
    polygons: tuple[np.ndarray, ...]
    z_lo: float | None = None
    z_hi: float | None = None

    @property
    def lo(self) -> float:
        return self.z if self.z_lo is None else self.z_lo

    @property
    def hi(self) -> float:
        return self.z if self.z_hi is None else self.z_hi

    def z_gap(self, other: "Plane") -> float:
        """Gap between the two planes' slabs along z (0 when they overlap)."""
        return max(0.0, other.lo - self.hi, self.lo - other.hi)

    @cached_property  # a distance search reads them for many plane pairs
    def vertices(self) -> np.ndarray:
        return np.concatenate(self.polygons) if self.polygons else np.zeros((0, 2))

    @cached_property
    def bbox(self) -> tuple[float, float, float, float]:
        return _box(self.vertices)


@dataclass(frozen=True)
class Distance:
    """The smallest distance between two structures and where it lies.

    Attributes
    ----------
    mm : float
        The 3-D distance (0 when the structures overlap on a plane).
    in_plane_mm, dz_mm : float
        Its in-plane part and the gap between the slabs of the two planes it joins (0 when
        the slabs overlap in z).
    z_from, z_to : float
        The planes (mm) of the first and second structure it joins.
    """

    mm: float
    in_plane_mm: float
    dz_mm: float
    z_from: float
    z_to: float


def planes_of(structure: Structure, slice_spacing_mm: float | None = None) -> list[Plane]:
    """The structure's contours grouped by plane (at least 3 vertices each), sorted by z, each
    with its slab (see the module; ``slice_spacing_mm`` is the structure set's plane spacing)."""
    grouped: dict[float, list[np.ndarray]] = {}
    for c in structure.contours:
        xy = np.asarray(c.xy, dtype=float).reshape(-1, 2)
        if len(xy) >= 3 and np.isfinite(xy).all() and math.isfinite(c.z):
            grouped.setdefault(round(float(c.z), 3), []).append(xy)
    zs = sorted(grouped)
    los, his = slab_bounds(np.asarray(zs, dtype=float), typical_spacing(zs, slice_spacing_mm))
    return [Plane(z, tuple(grouped[z]), float(lo), float(hi)) for z, lo, hi in zip(zs, los, his)]


def typical_spacing(zs: Sequence[float], common: float | None) -> float:
    """A structure's slab thickness (mm): its median plane spacing when its planes are
    contiguous, else the structure set's spacing ``common`` (or its own, if smaller); for a
    single plane ``common``, or 0 (no thickness) when that is unknown."""
    if common is not None and not (math.isfinite(common) and common > 0):
        common = None
    if len(zs) > 1:
        gaps = np.diff(np.asarray(zs, dtype=float))
        own = median(gaps)
        if common is None or float(gaps.max()) <= CONTIGUOUS_GAP * common:
            return own
        return min(own, common)
    return common if common is not None else 0.0


def min_distance_mm(a: Structure | Sequence[Plane], b: Structure | Sequence[Plane],
                    slice_spacing_mm: float | None = None) -> Distance | None:
    """The smallest 3-D distance between two structures' filled slabs (see the module).

    Returns None when either has no closed contour. Plane pairs are visited best first, in
    order of a lower bound of their distance (their slabs' z gap and their bounding boxes'
    gap), and the search stops once that bound exceeds the best distance found. Of pairs at
    the same distance, the one with the smallest z gap (then the nearest planes) is reported.
    """
    pa = planes_of(a, slice_spacing_mm) if isinstance(a, Structure) else list(a)
    pb = planes_of(b, slice_spacing_mm) if isinstance(b, Structure) else list(b)
    if not pa or not pb:
        return None
    pairs = sorted((math.hypot(p.z_gap(q), _bbox_gap(p.bbox, q.bbox)), p.z_gap(q),
                    abs(p.z - q.z), i, j) for i, p in enumerate(pa) for j, q in enumerate(pb))
    best: Distance | None = None
    best_key = (math.inf, math.inf, 0, 0)
    for lower, dz, dplanes, i, j in pairs:
        if best is not None and lower > best.mm:
            break  # every remaining pair is at least that far apart
        p, q = pa[i], pb[j]
        d = region_distance_2d(p.polygons, q.polygons)
        total = math.hypot(dz, d)
        key = (dz, dplanes, i, j)
        if best is None or total < best.mm or (total == best.mm and key < best_key):
            best, best_key = Distance(total, d, dz, p.z, q.z), key
    return best


def region_distance_2d(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> float:
    """2-D distance between two filled regions (even-odd polygons); 0 when they overlap."""
    va, vb = np.concatenate(a), np.concatenate(b)
    ea, eb = _edges(a), _edges(b)
    apart = _bbox_gap(_box(va), _box(vb)) > 0  # then neither overlaps nor touches the other
    if not apart and (_inside(va, b).any() or _inside(vb, a).any() or _edges_cross(ea, eb)):
        return 0.0
    return min(_point_edge_min(va, eb), _point_edge_min(vb, ea))


def _box(points: np.ndarray) -> tuple[float, float, float, float]:
    lo, hi = points.min(axis=0), points.max(axis=0)
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def largest_diameter_mm(structure: Structure | Sequence[Plane]) -> float | None:
    """The largest distance between two points of the structure's contours (mm), or None."""
    planes = planes_of(structure) if isinstance(structure, Structure) else list(structure)
    if not planes:
        return None
    pts = np.concatenate([np.column_stack([h, np.full(len(h), p.z)])
                          for p in planes for h in [_hull(p.vertices)]])
    best = 0.0
    step = max(1, _BLOCK_PAIRS // max(len(pts), 1))
    for start in range(0, len(pts), step):
        block = pts[start:start + step]
        d2 = ((block[:, None, :] - pts[None, :, :]) ** 2).sum(axis=2)
        best = max(best, float(d2.max()))
    return math.sqrt(best)


def union_planes(structures: Iterable[Structure], slice_spacing_mm: float | None = None
                 ) -> list[Plane]:
    """Several structures as one list of planes (each keeping its own slab), sorted by z.

    For distances and diameters only: a distance is the smallest over the planes, a diameter
    reads vertices only, so neither needs the structures' planes merged.
    """
    planes = [p for s in structures for p in planes_of(s, slice_spacing_mm)]
    return sorted(planes, key=lambda p: p.z)


# ======================================================================== helpers


def _edges(polygons: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Start and end points of every edge of the closed polygons (each M x 2)."""
    starts = np.concatenate(polygons)
    ends = np.concatenate([np.roll(p, -1, axis=0) for p in polygons])
    return starts, ends


def _inside(points: np.ndarray, polygons: Sequence[np.ndarray]) -> np.ndarray:
    """Even-odd inside test of each point against all the polygons together (ray along +x)."""
    x, y = points[:, 0][:, None], points[:, 1][:, None]
    crossings = np.zeros(len(points), dtype=int)
    for poly in polygons:
        x0, y0 = poly[:, 0][None, :], poly[:, 1][None, :]
        x1, y1 = np.roll(poly[:, 0], -1)[None, :], np.roll(poly[:, 1], -1)[None, :]
        straddles = (y0 > y) != (y1 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        crossings += (straddles & (x < x_cross)).sum(axis=1)
    return crossings % 2 == 1


def _edges_cross(ea: tuple[np.ndarray, np.ndarray], eb: tuple[np.ndarray, np.ndarray]) -> bool:
    """True when an edge of one set crosses or touches an edge of the other."""
    (p, p2), (q, q2) = ea, eb
    step = max(1, _BLOCK_PAIRS // max(len(q), 1))
    for s in range(0, len(p), step):
        a, a2 = p[s:s + step, None, :], p2[s:s + step, None, :]
        b, b2 = q[None, :, :], q2[None, :, :]
        d1, d2 = _orient(b, b2, a), _orient(b, b2, a2)
        d3, d4 = _orient(a, a2, b), _orient(a, a2, b2)
        proper = (d1 * d2 < 0) & (d3 * d4 < 0)
        if proper.any():
            return True
        # touching: an end lies on the other segment (orientation 0 and within its box)
        if (_on_segment(b, b2, a, d1) | _on_segment(b, b2, a2, d2)
                | _on_segment(a, a2, b, d3) | _on_segment(a, a2, b2, d4)).any():
            return True
    return False


def _orient(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Cross product (b - a) x (c - a): its sign says on which side of ab the point c lies."""
    return (b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1]) \
        - (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0])


def _on_segment(a: np.ndarray, b: np.ndarray, c: np.ndarray, orient: np.ndarray) -> np.ndarray:
    within = (np.minimum(a[..., 0], b[..., 0]) <= c[..., 0]) \
        & (c[..., 0] <= np.maximum(a[..., 0], b[..., 0])) \
        & (np.minimum(a[..., 1], b[..., 1]) <= c[..., 1]) \
        & (c[..., 1] <= np.maximum(a[..., 1], b[..., 1]))
    return (orient == 0) & within


def _point_edge_min(points: np.ndarray, edges: tuple[np.ndarray, np.ndarray]) -> float:
    """Smallest distance from any point to any edge (segments)."""
    start, end = edges
    seg = end - start
    length2 = (seg ** 2).sum(axis=1)
    best = math.inf
    step = max(1, _BLOCK_PAIRS // max(len(start), 1))
    for s in range(0, len(points), step):
        pts = points[s:s + step, None, :]
        rel = pts - start[None, :, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(length2 > 0, (rel * seg[None]).sum(axis=2) / length2, 0.0)
        t = np.clip(t, 0.0, 1.0)
        nearest = start[None, :, :] + t[..., None] * seg[None, :, :]
        d2 = ((pts - nearest) ** 2).sum(axis=2)
        best = min(best, float(d2.min()))
    return math.sqrt(best)


def _bbox_gap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]
              ) -> float:
    """Distance between two axis-aligned boxes (a lower bound of the regions' distance)."""
    dx = max(0.0, b[0] - a[2], a[0] - b[2])
    dy = max(0.0, b[1] - a[3], a[1] - b[3])
    return math.hypot(dx, dy)


def _hull(points: np.ndarray) -> np.ndarray:
    """2-D convex hull (Andrew's monotone chain); the farthest pair of a set lies on it."""
    pts = distinct(points, axis=0)
    if len(pts) <= 2:
        return pts
    pts = pts[np.lexsort((pts[:, 1], pts[:, 0]))]

    def half(seq: np.ndarray) -> list[np.ndarray]:
        chain: list[np.ndarray] = []
        for p in seq:
            while len(chain) >= 2 and _cross(chain[-2], chain[-1], p) <= 0:
                chain.pop()
            chain.append(p)
        return chain

    lower, upper = half(pts), half(pts[::-1])
    return np.array(lower[:-1] + upper[:-1])


def _cross(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    return float((a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]))
