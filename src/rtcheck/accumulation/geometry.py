"""Where a structure is, point by point: inside, distance to it, and points that sample it.

The geometry is the DVH engine's (:mod:`rtcheck.dvh`): each contour plane stands for a slab one
plane spacing thick centred on its plane (end caps included), and the contours of a plane
combine by the even-odd rule (a contour inside another is a hole). A structure made of several
(an organ in parts) is their union: a point's distance is the smallest over the parts.

The distance of a point at height z to one slab of half-thickness h on plane z_p is
``sqrt(dz**2 + dxy**2)``, with ``dz = max(0, |z - z_p| - h)`` and ``dxy`` the in-plane distance
to the plane's filled polygons (0 inside); the distance to the structure is the smallest over
its slabs. It is exact for that geometry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rtcheck.model import Structure

#: Spacing (mm) of the points laid along every contour edge to sample a structure's boundary:
#: the DVH engine reads its maximum on the contours too, which voxel centres alone can miss.
BOUNDARY_STEP_MM = 0.5


@dataclass(frozen=True)
class Slabs:
    """One structure as slabs: plane heights, each plane's polygons, the slab half-thickness."""

    name: str
    zs: np.ndarray
    polygons: tuple[tuple[np.ndarray, ...], ...]
    half: float

    @classmethod
    def of(cls, structure: Structure, spacing_mm: float | None) -> Slabs:
        """``spacing_mm``: the structure set's common plane spacing (the DVH engine's slab
        thickness); without it, the structure's own smallest plane spacing (0 for one plane)."""
        planes: dict[float, list[np.ndarray]] = {}
        for c in structure.contours:
            planes.setdefault(round(float(c.z), 6), []).append(np.asarray(c.xy, dtype=float))
        zs = np.array(sorted(planes))
        if spacing_mm is None or not spacing_mm > 0:
            spacing_mm = float(np.min(np.diff(zs))) if zs.size > 1 else 0.0
        return cls(structure.name, zs, tuple(tuple(planes[z]) for z in zs), spacing_mm / 2.0)

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) corners (x, y, z) of the slabs' box, mm."""
        xy = np.vstack([p for plane in self.polygons for p in plane])
        lo = np.array([*xy.min(axis=0), self.zs[0] - self.half])
        hi = np.array([*xy.max(axis=0), self.zs[-1] + self.half])
        return lo, hi


def organ_slabs(structures: Sequence[Structure], spacing_mm: float | None) -> list[Slabs]:
    """Slabs of each part of an organ that has contours."""
    return [Slabs.of(s, spacing_mm) for s in structures if s.contours]


def inside_polygons(xy: np.ndarray, polygons: Sequence[np.ndarray]) -> np.ndarray:
    """Even-odd inside test of points (N x 2) against a plane's polygons."""
    from matplotlib.path import Path  # C point-in-polygon, no pyplot

    out = np.zeros(len(xy), dtype=bool)
    for poly in polygons:
        if len(poly) >= 3:
            out ^= Path(poly).contains_points(xy)
    return out


#: Points x edges handled at once by :func:`_edge_distance` (bounds its memory).
EDGE_CHUNK = 1_000_000


def _edge_distance(xy: np.ndarray, polygons: Sequence[np.ndarray]) -> np.ndarray:
    """Smallest distance of each point to the polygons' edges."""
    best = np.full(len(xy), np.inf)
    for poly in polygons:
        a = poly
        ab = np.roll(poly, -1, axis=0) - a
        length2 = np.maximum((ab ** 2).sum(axis=1), 1e-300)
        step = max(1, EDGE_CHUNK // max(len(a), 1))
        for lo in range(0, len(xy), step):
            # points x edges: the projection parameter clipped to the segment
            ap = xy[lo:lo + step, None, :] - a[None, :, :]
            t = np.clip((ap * ab[None]).sum(axis=2) / length2[None], 0.0, 1.0)
            d = ap - t[..., None] * ab[None]
            best[lo:lo + step] = np.minimum(best[lo:lo + step],
                                            np.sqrt((d ** 2).sum(axis=2)).min(axis=1))
    return best


def _plane_distance(xy: np.ndarray, polygons: Sequence[np.ndarray], limit: float
                    ) -> np.ndarray:
    """In-plane distance to the filled polygons (0 inside); inf when beyond ``limit``."""
    out = np.where(inside_polygons(xy, polygons), 0.0, np.inf)
    corners = np.vstack(polygons)
    lo, hi = corners.min(axis=0) - limit, corners.max(axis=0) + limit
    todo = np.nonzero(np.isinf(out) & np.all((xy >= lo) & (xy <= hi), axis=1))[0]
    if todo.size:
        out[todo] = _edge_distance(xy[todo], polygons)
    return out


def distance_mm(slabs: Sequence[Slabs], points: np.ndarray, limit: float = np.inf
                ) -> np.ndarray:
    """Distance (mm) of points (N x 3) to the organ (0 inside); beyond ``limit`` the value is
    only known to exceed it (returned as inf), which keeps the work near the organ."""
    best = np.full(len(points), np.inf)
    for s in slabs:
        for z, polys in zip(s.zs, s.polygons):
            dz = np.maximum(np.abs(points[:, 2] - z) - s.half, 0.0)
            near = np.nonzero((dz <= limit) & (dz < best))[0]
            if near.size == 0:
                continue
            dxy = _plane_distance(points[near, :2], polys, limit)
            d = np.sqrt(dz[near] ** 2 + dxy ** 2)
            best[near] = np.minimum(best[near], np.where(d <= limit, d, np.inf))
    return best


def boundary_points(slabs: Sequence[Slabs], step: float = BOUNDARY_STEP_MM) -> np.ndarray:
    """Points along every contour, every ``step`` mm or closer, on its plane and on both slab
    faces (M x 3)."""
    out = []
    for s in slabs:
        for z, polys in zip(s.zs, s.polygons):
            for poly in polys:
                a, b = poly, np.roll(poly, -1, axis=0)
                n = np.maximum(np.ceil(np.hypot(*(b - a).T) / step).astype(int), 1)
                t = np.concatenate([np.arange(k) / k for k in n])
                i = np.repeat(np.arange(len(a)), n)
                xy = a[i] + t[:, None] * (b[i] - a[i])
                for zz in {z - s.half, z, z + s.half}:
                    out.append(np.column_stack([xy, np.full(len(xy), zz)]))
    return np.vstack(out) if out else np.zeros((0, 3))


def nodes_near(slabs: Sequence[Slabs], x: np.ndarray, y: np.ndarray, z: np.ndarray,
               within_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Grid nodes (axes x, y, z) at most ``within_mm`` from the organ: their (N x 3) patient
    coordinates and their distances (0 inside)."""
    if not slabs:
        return np.zeros((0, 3)), np.zeros(0)
    lows, highs = zip(*(s.bounds for s in slabs))
    lo, hi = np.min(lows, axis=0) - within_mm, np.max(highs, axis=0) + within_mm
    sel = [np.nonzero((a >= lo[i]) & (a <= hi[i]))[0] for i, a in enumerate((x, y, z))]
    if any(s.size == 0 for s in sel):
        return np.zeros((0, 3)), np.zeros(0)
    gz, gy, gx = np.meshgrid(z[sel[2]], y[sel[1]], x[sel[0]], indexing="ij")
    pts = np.column_stack([gx.ravel(), gy.ravel(), gz.ravel()])
    d = distance_mm(slabs, pts, within_mm)
    keep = d <= within_mm
    return pts[keep], d[keep]


def grid_mask(slabs: Sequence[Slabs], x: np.ndarray, y: np.ndarray, z: np.ndarray
              ) -> np.ndarray:
    """Boolean (nz, ny, nx): the grid nodes inside the organ (plane by plane, the slab that
    holds each grid plane). Each polygon is tested on the nodes of its bounding box only."""
    mask = np.zeros((len(z), len(y), len(x)), dtype=bool)
    for s in slabs:
        for k, zk in enumerate(z):
            for p in np.nonzero(np.abs(s.zs - zk) <= s.half + 1e-9)[0]:
                mask[k] |= _plane_mask(s.polygons[p], x, y)
    return mask


def _plane_mask(polygons: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Even-odd inside test of a plane's nodes, polygon by polygon within its box."""
    from matplotlib.path import Path

    out = np.zeros((len(y), len(x)), dtype=bool)
    for poly in polygons:
        if len(poly) < 3:
            continue
        i0, i1 = np.searchsorted(x, poly[:, 0].min(), side="left"), \
            np.searchsorted(x, poly[:, 0].max(), side="right")
        j0, j1 = np.searchsorted(y, poly[:, 1].min(), side="left"), \
            np.searchsorted(y, poly[:, 1].max(), side="right")
        if i1 <= i0 or j1 <= j0:
            continue
        gy, gx = np.meshgrid(y[j0:j1], x[i0:i1], indexing="ij")
        inside = Path(poly).contains_points(np.column_stack([gx.ravel(), gy.ravel()]))
        out[j0:j1, i0:i1] ^= inside.reshape(j1 - j0, i1 - i0)
    return out
