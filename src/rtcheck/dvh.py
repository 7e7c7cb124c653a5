"""Dose-volume histograms with sub-voxel accuracy.

How a structure becomes a DVH
-----------------------------
*Geometry.* Each axial contour plane stands for a slab one contour spacing thick, centred on
its plane (the convention of the Nelms 2015 analytical data set and of most planning
systems). The first and last planes of a structure therefore add half a spacing beyond
their contours ("end caps"). Where the spacing between planes varies, a slab extends half
way to each neighbouring plane, but never more than half the structure's typical spacing,
so a gap between two parts of a structure is not filled. The typical spacing is the
structure's own median plane spacing, unless its planes are *not contiguous* in its
structure set: a single plane, or two consecutive planes more than 1.5 structure-set
spacings apart (a plane of the structure set skipped: a helper ROI or a lesion drawn on a
few isolated planes). Such a structure's typical spacing is the structure set's plane
spacing (or its own, if smaller): each contiguous run of its planes is a stack of slabs with
end caps of half a spacing, and two planes 30 mm apart are two thin slabs, not one 60 mm
block. The structure set's spacing is the ``slice_spacing_mm`` keyword
(:attr:`rtcheck.model.StructureSet.plane_spacing_mm`); without it, a structure's own spacing
is used (and the dose grid's frame spacing for a single plane). Several contours on one
plane combine by the even-odd rule: a contour inside another is a hole.

*Volume* is exact for that geometry: the even-odd polygon area of each plane (shoelace
formula) times its slab thickness. It does not depend on any sampling.

*Dose sampling.* Each plane is cut into rows ``h`` mm apart; the exact x-intervals where a row
is inside the polygons are cut into pieces at most ``h`` long, and each piece is one sample,
weighted by its exact length. Each plane's lattice is shifted by a different fraction of a
step (a low-discrepancy sequence), so the planes together sample far finer than ``h``. ``h``
is chosen per structure within a sample budget, and never above 0.5 mm for structures under
30 cc (a spinal cord, a small target), where near-maximum doses decide verdicts. The sample
weights of a plane are rescaled to its exact area, so the DVH's total volume is exact.
Through a slab, trilinear dose is linear in z between dose planes: the slab is cut at the
dose planes crossing it, and each sample's dose over a piece runs linearly from one face to
the other; the histogram spreads the sample's volume uniformly over that range, which is
exact in z.

*Dmax and Dmin* do not come from the samples alone. A trilinear dose is linear in z
between dose planes, so along any vertical line through a slab its extremes sit on the
slab's faces or on a dose plane inside it. On each of those planes the dose is bilinear
within each voxel, so its extremes over a contour sit on the contour or at a dose-grid node
inside it. rtcheck therefore evaluates the dose at points along every contour edge (at most
half a voxel apart) and at every node inside the contour, on the faces of each slab and on
every dose plane crossing it (nodes whose values cannot beat the extremes already found are
skipped by a bound). The result does not depend on where voxel centres happen to fall.

*Coverage.* A sample is inside the dose grid when it lies within the grid's voxels (half a
voxel beyond the outermost voxel centres; there the dose of the outermost voxels is used).
:attr:`DVH.covered_fraction` is the covered share of the structure volume; when it is below
1 every metric carries a warning, and a checker must not use them for a verdict.

*Histogram.* Covered samples are binned in fine dose bins (``bin_width_gy``): 0.01 Gy (finer
below 50 Gy of maximum dose) up to 200 Gy of maximum dose, and ``Dmax / 20000`` above, so
the histogram never holds more than about 20 000 bins whatever the dose scaling. The
cumulative curve is linear within a bin, and Dx/Vx metrics interpolate along it. Dmean is the
exact weighted mean of the samples.

*Bounded work.* Whatever the input, the work is bounded by the structure's real size and the
dose range, not by its extent or by the sampling step alone: the row crossings computed at
once (:data:`MAX_CROSSINGS`), the histogram samples times the faces of their slabs
(:data:`MAX_SAMPLE_PAIRS`) and the contour points of the Dmax/Dmin search
(:data:`MAX_BOUNDARY_PAIRS`) are counted exactly before they are made. A structure that
would exceed them at its step is sampled more coarsely (a warning says so); a plane too thin
for its lattice at any affordable step is sampled along its outline; everything is evaluated
in chunks of :data:`CHUNK_PAIRS`, and planes in groups of :data:`GROUP_EDGES` contour edges.
Beyond the dose grid (and its float32 copy), a DVH needs a few tens of MB and at most a few
hundred, whatever the structure's extent, vertex count, sampling step or dose scaling; only a
single contour plane of more than a million vertices needs more (about 150 bytes a vertex,
in proportion to the input itself). Input that cannot be honoured (contour coordinates beyond
1 km, a dose that is not finite, a structure with so many contours that even its coarsest
sampling is over budget) raises :class:`DVHInputError` naming the structure.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field

import numpy as np

from rtcheck.errors import InputError, MetricError
from rtcheck.model import DoseGrid, Structure

#: In-plane samples aimed at per structure, over all its planes (see _choose_step).
DEFAULT_SAMPLE_BUDGET = 10_000
#: Finest in-plane / through-plane sampling step (mm).
MIN_STEP_MM = 0.1
#: Coarsest step for structures under 30 cc, where near-maximum doses decide verdicts (mm).
SMALL_STRUCTURE_STEP_MM = 0.5
#: Covered fraction below which a structure is reported as partly outside the dose grid.
COVERAGE_TOLERANCE = 0.999
#: Volume (cc) of the near-maximum reported with every DVH (``D0.03cc``).
NEAR_MAX_CC = 0.03
#: Two consecutive planes of a structure more than this many structure-set plane spacings
#: apart are not contiguous (see the module docstring, *Geometry*).
CONTIGUOUS_GAP = 1.5
#: Hard cap on the histogram samples times the faces of their slabs (dose evaluations) of one
#: structure: about 50 MB of samples kept until the histogram is made.
MAX_SAMPLE_PAIRS = 2_000_000
#: Row crossings (contour edges x sampling rows) computed at once.
MAX_CROSSINGS = 1_000_000
#: Cap on the contour points times faces of the Dmax/Dmin search (their spacing grows beyond).
MAX_BOUNDARY_PAIRS = 8_000_000
#: Cap on the row crossings times dose planes of the grid-node search for Dmax/Dmin (beyond
#: it, Dmax and Dmin come from the samples and contour points only, with a warning).
MAX_NODE_WORK = 30_000_000
#: Contour edges processed at once: a structure's planes are taken in groups of about this
#: many edges, so memory does not grow with its vertex count.
GROUP_EDGES = 250_000
#: Points times faces evaluated at once: bounds every temporary array.
CHUNK_PAIRS = 250_000
#: Dose bins of a DVH at most (0.01 Gy bins up to 200 Gy of maximum dose).
MAX_BINS = 20_000
#: Contour coordinates (mm) beyond which a structure is refused (1 km).
MAX_COORDINATE_MM = 1e6


class DVHInputError(InputError, ValueError):
    """A structure or dose the DVH engine cannot honour in bounded memory, or not at all.

    The message names the structure (contour coordinates beyond 1 km, a dose that is not
    finite, more contours than even the coarsest sampling can afford).
    """


# --------------------------------------------------------------------------------------
# The DVH object and its metrics
# --------------------------------------------------------------------------------------


@dataclass
class DVH:
    """Cumulative dose-volume histogram of one structure, in Gy and cc.

    Attributes
    ----------
    name : str
        The structure's name.
    volume_cc : float
        Exact volume of the structure (slab convention, see the module docstring).
    covered_fraction : float
        Share of :attr:`volume_cc` inside the dose grid (1.0 = fully covered).
    dmin, dmax, dmean : float
        Minimum, maximum and mean dose (Gy) over the covered part of the structure.
    doses : ndarray
        Dose bin edges (Gy), increasing from 0.
    volumes : ndarray
        Cumulative volume (cc) receiving at least ``doses[i]``; ``volumes[0]`` is the
        covered volume.
    bin_width_gy : float
        Width of the dose bins.
    step_mm : float
        In-plane and through-plane sampling step used.
    warnings : list of str
        Anything that limits the numbers (partial coverage, tiny structure...).
    """

    name: str
    volume_cc: float
    covered_fraction: float
    dmin: float
    dmax: float
    dmean: float
    doses: np.ndarray
    volumes: np.ndarray
    bin_width_gy: float
    step_mm: float
    units: str = "GY"
    warnings: list[str] = field(default_factory=list)
    roi_number: int | None = None

    @property
    def covered_volume_cc(self) -> float:
        return float(self.volumes[0]) if self.volumes.size else 0.0

    @property
    def fully_covered(self) -> bool:
        """True when the whole structure lies inside the dose grid."""
        return self.covered_fraction >= COVERAGE_TOLERANCE

    # -- metrics along the curve -------------------------------------------------------

    def dose_at_volume(self, volume_cc: float) -> float:
        """Minimum dose (Gy) received by the hottest ``volume_cc`` of the structure.

        Interpolated linearly along the cumulative DVH. ``nan`` when the structure's covered
        volume is smaller than ``volume_cc`` (a D2cc of a 1 cc structure does not exist).
        """
        total = self.covered_volume_cc
        if volume_cc < 0 or volume_cc > total * (1 + 1e-9) or total <= 0:
            return math.nan
        if volume_cc <= 0:
            return self.dmax
        if volume_cc >= total:
            return self.dmin
        # volumes decrease with dose; np.interp needs increasing x.
        d = float(np.interp(volume_cc, self.volumes[::-1], self.doses[::-1]))
        return min(max(d, self.dmin), self.dmax)

    def dose_at_percent(self, percent: float) -> float:
        """Minimum dose (Gy) received by the hottest ``percent`` % of the covered volume."""
        if not 0 <= percent <= 100:
            return math.nan
        return self.dose_at_volume(self.covered_volume_cc * percent / 100.0)

    def volume_at_dose(self, dose_gy: float) -> float:
        """Volume (cc) receiving at least ``dose_gy``."""
        if dose_gy <= self.dmin:
            return self.covered_volume_cc
        if dose_gy > self.dmax:
            return 0.0
        return float(np.interp(dose_gy, self.doses, self.volumes, right=0.0))

    def metric(self, name: str) -> float:
        """Value of a DVH metric given by name.

        Accepted forms (TG-263 and plain): ``Max[Gy]``/``Dmax``, ``Min[Gy]``/``Dmin``,
        ``Mean[Gy]``/``Dmean``, ``D0.03cc[Gy]``/``D0.03cc``, ``D95%[Gy]``/``D95%``,
        ``V20Gy[cc]``, ``V20Gy[%]``, ``DC2%[Gy]`` (dose to the coldest 2 %),
        ``CV20Gy[cc]`` (volume receiving less than 20 Gy). Doses may be given and asked in
        ``cGy`` (``V2000cGy[%]``, ``D95%[cGy]``). See :func:`parse_metric`.

        Returns
        -------
        float
            In the unit of the metric; ``nan`` when it does not exist for this structure
            (e.g. ``D2cc`` of a 1 cc structure).
        """
        return parse_metric(name).evaluate(self)

    def metrics(self, names: list[str]) -> dict[str, float]:
        """Several metrics at once, keyed by the names as given."""
        return {n: self.metric(n) for n in names}

    def summary(self) -> dict[str, float]:
        """The metrics every report shows: Dmax, Dmin, Dmean and D0.03cc (Gy)."""
        return {
            "Dmax": self.dmax,
            "Dmin": self.dmin,
            "Dmean": self.dmean,
            "D0.03cc": self.dose_at_volume(NEAR_MAX_CC),
        }


@dataclass(frozen=True)
class Metric:
    """A parsed DVH metric (see :func:`parse_metric`)."""

    text: str
    kind: str  # "max", "min", "mean", "D", "DC", "V", "CV"
    value: float | None = None  # the x of Dx / Vx, in the input unit
    input_unit: str | None = None  # "%", "cc", "Gy", "cGy"
    output_unit: str = "Gy"  # "Gy", "cGy", "cc", "%"

    def evaluate(self, dvh: DVH) -> float:
        if self.kind in ("max", "min", "mean"):
            gy = {"max": dvh.dmax, "min": dvh.dmin, "mean": dvh.dmean}[self.kind]
            return _from_gy(gy, self.output_unit)
        if self.kind in ("D", "DC"):
            x = float(self.value)  # type: ignore[arg-type]
            vol = dvh.covered_volume_cc * x / 100.0 if self.input_unit == "%" else x
            if self.kind == "DC":  # coldest x: the dose at the complement volume
                if vol > dvh.covered_volume_cc * (1 + 1e-9):
                    return math.nan
                vol = max(dvh.covered_volume_cc - vol, 0.0)
            return _from_gy(dvh.dose_at_volume(vol), self.output_unit)
        # V and CV
        gy = float(self.value) / (100.0 if self.input_unit == "cGy" else 1.0)  # type: ignore[arg-type]
        vol = dvh.volume_at_dose(gy)
        if self.kind == "CV":
            vol = dvh.covered_volume_cc - vol
        if self.output_unit == "%":
            total = dvh.covered_volume_cc
            return 100.0 * vol / total if total > 0 else math.nan
        return vol


def _from_gy(value: float, unit: str) -> float:
    return value * 100.0 if unit == "cGy" else value


_NUM = r"(\d+(?:\.\d*)?|\.\d+)"
_PLAIN = {"dmax": "max", "dmin": "min", "dmean": "mean", "max": "max", "min": "min", "mean": "mean"}
_RE_STAT = re.compile(r"^(?P<stat>D?(?:max|min|mean))(?:\[(?P<out>c?Gy)\])?$", re.IGNORECASE)
_RE_DOSE = re.compile(rf"^(?P<kind>DC|D){_NUM}(?P<in>%|cc)(?:\[(?P<out>c?Gy)\])?$", re.IGNORECASE)
_RE_VOL = re.compile(rf"^(?P<kind>CV|V){_NUM}(?P<in>c?Gy)(?:\[(?P<out>cc|%)\])?$", re.IGNORECASE)


def parse_metric(text: str) -> Metric:
    """Parse a DVH metric name.

    Parameters
    ----------
    text : str
        ``Max[Gy]``, ``Dmax``, ``Min[Gy]``, ``Dmin``, ``Mean[Gy]``, ``Dmean``,
        ``D<x>cc[Gy]``, ``D<x>%[Gy]``, ``DC<x>%[Gy]``, ``V<x>Gy[cc]``, ``V<x>Gy[%]``,
        ``CV<x>Gy[cc]``; ``cGy`` wherever ``Gy`` stands. The ``[Gy]`` of a dose metric may be
        left out; a volume metric must say ``[cc]`` or ``[%]``.

    Raises
    ------
    MetricError
        When the text is not one of these forms.
    """
    s = text.strip().replace(" ", "")
    m = _RE_STAT.match(s)
    if m:
        stat = _PLAIN[m["stat"].lower()]
        return Metric(text, stat, output_unit=_unit(m["out"] or "Gy"))
    m = _RE_DOSE.match(s)
    if m:
        return Metric(text, m["kind"].upper(), float(m[2]), m["in"].lower(),
                      _unit(m["out"] or "Gy"))
    m = _RE_VOL.match(s)
    if m:
        if not m["out"]:
            raise MetricError(
                f"metric {text!r}: say which volume unit, e.g. {s}[cc] or {s}[%]")
        return Metric(text, m["kind"].upper(), float(m[2]), _unit(m["in"]), m["out"].lower())
    raise MetricError(
        f"cannot read metric {text!r}; examples: Dmax, Mean[Gy], D95%[Gy], D0.03cc[Gy], "
        "V20Gy[cc], V20Gy[%], DC2%[Gy], CV20Gy[cc]")


def _unit(u: str) -> str:
    return {"gy": "Gy", "cgy": "cGy"}.get(u.lower(), u)


# --------------------------------------------------------------------------------------
# Geometry: exact areas, slabs, row intervals
# --------------------------------------------------------------------------------------


def _shoelace(xy: np.ndarray) -> float:
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * abs(float(np.dot(x[:-1], y[1:]) - np.dot(y[:-1], x[1:])
                           + x[-1] * y[0] - y[-1] * x[0]))


def _point_in_polygon(px: float, py: float, xy: np.ndarray) -> bool:
    x1, y1 = xy[:, 0], xy[:, 1]
    x2, y2 = np.concatenate((x1[1:], x1[:1])), np.concatenate((y1[1:], y1[:1]))
    crosses = (y1 > py) != (y2 > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        xc = x1 + (py - y1) * (x2 - x1) / (y2 - y1)
    return bool(np.count_nonzero(crosses & (px < xc)) % 2)


def even_odd_area(polygons: list[np.ndarray]) -> float:
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


def slab_bounds(zs: np.ndarray, typical: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper z of the slab each contour plane stands for (see module docstring)."""
    half = typical / 2.0
    lo = np.full(zs.shape, half)
    hi = np.full(zs.shape, half)
    if zs.size > 1:
        gaps = np.diff(zs) / 2.0
        lo[1:] = np.minimum(gaps, half)
        hi[:-1] = np.minimum(gaps, half)
    return zs - lo, zs + hi


class _Edges:
    """Every edge of every contour of a structure, with the index of its plane."""

    def __init__(self, polys: list[list[np.ndarray]]) -> None:
        starts, ends, plane = [], [], []
        for p, plist in enumerate(polys):
            for poly in plist:
                starts.append(poly)
                ends.append(np.concatenate((poly[1:], poly[:1])))
                plane.append(np.full(len(poly), p, np.int64))
        s, e = np.concatenate(starts), np.concatenate(ends)
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

    def subset(self, planes: np.ndarray) -> "_Edges":
        keep = np.isin(self.plane, planes)
        out = object.__new__(_Edges)
        out.x1, out.y1, out.x2, out.y2 = self.x1[keep], self.y1[keep], self.x2[keep], self.y2[keep]
        out.plane, out.xmin, out.ymin = self.plane[keep], self.xmin, self.ymin
        out.xmax, out.ymax = self.xmax, self.ymax
        return out


def _expand(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For counts n: the owner index of each expanded item and its rank within its owner."""
    owner = np.repeat(np.arange(n.size), n)
    starts = np.cumsum(n) - n
    return owner, np.arange(int(n.sum())) - starts[owner]


def _row_span(edges: _Edges, h: float, y0: np.ndarray, jlim: tuple[int, int] | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def _row_intervals(edges: _Edges, h: float, y0: np.ndarray,
                   jlim: tuple[int, int] | None = None, span=None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Exact inside-intervals of the rows ``y = y0[plane] + (j + 0.5) h`` (even-odd rule).

    Returns the plane, the row index and the start and end x of each interval. ``span`` is
    :func:`_row_span`'s result when already known.
    """
    keep, j0, j1 = span if span is not None else _row_span(edges, h, y0, jlim)
    x1, y1, x2, y2 = edges.x1[keep], edges.y1[keep], edges.x2[keep], edges.y2[keep]
    plane = edges.plane[keep]
    base = y0[plane]
    edge, rank = _expand(np.maximum(j1 - j0 + 1, 0))
    j = j0[edge] + rank
    yj = base[edge] + (j + 0.5) * h
    xe1, ye1 = x1[edge], y1[edge]
    x = xe1 + (yj - ye1) * (x2[edge] - xe1) / (y2[edge] - ye1)
    p = plane[edge]
    order = np.lexsort((x, j, p))
    p, j, x = p[order], j[order], x[order]
    return p[0::2], j[0::2], x[0::2], x[1::2]


def _piece_counts(a: np.ndarray, b: np.ndarray, h: float, xb: np.ndarray) -> np.ndarray:
    """Pieces :func:`_interval_samples` cuts each interval into (an upper bound: empty pieces
    are dropped there)."""
    return np.floor((b - xb) / h).astype(np.int64) - np.floor((a - xb) / h).astype(np.int64) + 1


def _interval_samples(p: np.ndarray, j: np.ndarray, a: np.ndarray, b: np.ndarray, h: float,
                      x0: np.ndarray, y0: np.ndarray) -> tuple[np.ndarray, ...]:
    """Cut row intervals into pieces at most ``h`` long: plane, centre x, y and length."""
    xb = x0[p]
    k0 = np.floor((a - xb) / h).astype(np.int64)
    k1 = np.floor((b - xb) / h).astype(np.int64)
    idx, rank = _expand(k1 - k0 + 1)
    k = k0[idx] + rank
    lo = np.maximum(a[idx], xb[idx] + k * h)
    hi = np.minimum(b[idx], xb[idx] + (k + 1) * h)
    length = hi - lo
    keep = length > 0
    pl = p[idx][keep]
    return pl, (0.5 * (lo + hi))[keep], (y0[pl] + (j[idx][keep] + 0.5) * h), length[keep]


def _points_per_edge(edges: _Edges, step: float, length: np.ndarray | None = None
                     ) -> np.ndarray:
    """Points :func:`_boundary_points` puts on each edge (``length``: the edges' lengths)."""
    if length is None:
        length = np.hypot(edges.x2 - edges.x1, edges.y2 - edges.y1)
    # Coordinates are finite (checked); an infinite step puts one point (the vertex) per edge.
    return np.maximum(np.ceil(length / step).astype(np.int64), 1)


def _boundary_points(edges: _Edges, step: float, sel: slice | None = None,
                     n: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points along every contour edge (or the edges ``sel``), at most ``step`` apart,
    vertices included (``n``: the points of each edge, when known)."""
    sel = slice(None) if sel is None else sel
    x1, y1, x2, y2 = edges.x1[sel], edges.y1[sel], edges.x2[sel], edges.y2[sel]
    if n is None:
        n = np.maximum(np.ceil(np.hypot(x2 - x1, y2 - y1) / step).astype(np.int64), 1)
    idx, rank = _expand(n)
    t = rank / n[idx]
    return (edges.plane[sel][idx], x1[idx] + t * (x2[idx] - x1[idx]),
            y1[idx] + t * (y2[idx] - y1[idx]))


def _chunks(weights: np.ndarray, limit: int) -> list[slice]:
    """Consecutive slices of items whose weights add up to about ``limit`` at most each (one
    item heavier than ``limit`` is a slice of its own)."""
    n = weights.size
    cum = np.cumsum(weights, dtype=np.float64)
    total = float(cum[-1]) if n else 0.0
    if total <= limit:
        return [slice(0, n)]
    cuts = np.searchsorted(cum, np.arange(1, int(total // limit) + 1) * float(limit),
                           side="right")
    bounds = np.unique(np.concatenate(([0], np.maximum(cuts, 1), [n])))
    bounds = bounds[bounds <= n]
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]


# --------------------------------------------------------------------------------------
# Dose interpolation
# --------------------------------------------------------------------------------------


class _Interpolator:
    """Trilinear interpolation of a :class:`DoseGrid`, organised plane by plane.

    In-plane values are interpolated once per dose frame for a set of (x, y) points; values
    at any z are then linear blends of two frames. This is exact trilinear interpolation and
    far cheaper than interpolating every (x, y, z) sample independently.
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
        self.padded = np.empty(values.size + 1, dtype=np.float32)
        self.flat = self.padded[:-1]
        self.values = self.flat.reshape(values.shape)
        with np.errstate(over="ignore", invalid="ignore"):
            self.values[...] = values
        self.padded[-1] = self.padded[-2]
        if not np.isfinite(self.padded).all():
            raise DVHInputError(
                "the dose grid holds values that are not finite (NaN, infinite, or beyond "
                f"{float(np.finfo(np.float32).max):.1e}): no DVH")
        self.nz, self.ny, self.nx = self.values.shape
        self.x0, self.y0 = float(dose.x[0]), float(dose.y[0])
        self.dx = float(dose.x[1] - dose.x[0]) if self.nx > 1 else 1.0
        self.dy = float(dose.y[1] - dose.y[0]) if self.ny > 1 else 1.0
        self.z = np.asarray(dose.z, dtype=float)
        # Contour points for the extremes: half a voxel apart at most. Along an edge the
        # bilinear dose is a parabola within each voxel, whose largest departure from its
        # chords is |d2D/dxdy| * step^2 / 8: a few cGy at most for clinical doses.
        self.edge_step = min(self.dx, self.dy) / 2
        # Grid coverage reaches half a voxel beyond the outer voxel centres. A single-frame
        # dose has no thickness we can trust: it covers only its own plane.
        self.xlim = (self.x0 - self.dx / 2, float(dose.x[-1]) + self.dx / 2)
        self.ylim = (self.y0 - self.dy / 2, float(dose.y[-1]) + self.dy / 2)
        if self.nz > 1:
            self.zlim = (self.z[0] - (self.z[1] - self.z[0]) / 2,
                         self.z[-1] + (self.z[-1] - self.z[-2]) / 2)
        else:
            self.zlim = (self.z[0] - 1e-6, self.z[0] + 1e-6)

    def inside_xy(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        eps = 1e-6
        return ((x >= self.xlim[0] - eps) & (x <= self.xlim[1] + eps)
                & (y >= self.ylim[0] - eps) & (y <= self.ylim[1] + eps))

    def inside_z(self, z: np.ndarray) -> np.ndarray:
        return (z >= self.zlim[0] - 1e-6) & (z <= self.zlim[1] + 1e-6)

    def xy_weights(self, x: np.ndarray, y: np.ndarray):
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

    def at_faces(self, corners, weights, plane: np.ndarray, faces: "_Faces"
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Trilinear dose of in-plane points on every face of their plane's slab pieces.

        The bilinear value of each point is computed once on each dose plane its slab
        needs; face values are then linear blends of two of those. Returns the point and
        face index of each value, in order of point then face.
        """
        nxy = self.nx * self.ny
        first = faces.k0[faces.start][plane]  # lowest dose plane each point's slab needs
        count = faces.frames[plane]
        most = int(count.max()) if plane.size else 0
        if most * plane.size <= 2 * int(count.sum()) + 1024:
            # Slabs needing about as many dose planes each: one column per dose plane.
            fv = np.empty((plane.size, most))
            for r in range(most):
                # Column r: the r-th dose plane of each point's slab (clamped where a slab
                # needs fewer planes; those values are never read).
                base = np.minimum(first + r, self.nz - 1) * nxy
                col = self.flat[base + corners[0]] * weights[0]
                for c, w in zip(corners[1:], weights[1:]):
                    col += self.flat[base + c] * w
                fv[:, r] = col
            point, face = faces.pairs(plane)
            lower = faces.k0[face] - first[point]
            upper = np.minimum(lower + 1, count[point] - 1)
            t = faces.t[face]
            return point, face, fv[point, lower] * (1 - t) + fv[point, upper] * t
        # Slabs of very different thicknesses (a rectangle would be mostly waste): the values
        # of each point on the dose planes its slab needs, point after point (count[i]
        # values from offset[i]).
        offset = np.cumsum(count) - count
        fv = np.empty(int(count.sum()))
        least = int(count.min()) if plane.size else 0
        for r in range(int(count.max()) if plane.size else 0):
            sel = slice(None) if r < least else np.nonzero(count > r)[0]
            base = (first[sel] + r) * nxy
            col = self.flat[base + corners[0][sel]] * weights[0][sel]
            for c, w in zip(corners[1:], weights[1:]):
                col += self.flat[base + c[sel]] * w[sel]
            fv[offset[sel] + r] = col
        point, face = faces.pairs(plane)
        lower = faces.k0[face] - first[point]
        upper = np.minimum(lower + 1, count[point] - 1)
        t = faces.t[face]
        at = offset[point]
        return point, face, fv[at + lower] * (1 - t) + fv[at + upper] * t

    def nodes_at_faces(self, flat: np.ndarray, point: np.ndarray, face: np.ndarray,
                       faces: "_Faces") -> np.ndarray:
        """Dose at (grid node, face) pairs: a blend of the node's values on two dose planes."""
        nxy = self.nx * self.ny
        k0 = faces.k0[face]
        t = faces.t[face]
        f = flat[point]
        return (self.flat[k0 * nxy + f] * (1 - t)
                + self.flat[np.minimum(k0 + 1, self.nz - 1) * nxy + f] * t)

    def frame_position(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lower frame index and blend weight for each z (clamped to the grid)."""
        if self.nz == 1:
            return np.zeros(z.shape, np.int64), np.zeros(z.shape)
        fz = np.interp(z, self.z, np.arange(self.nz, dtype=float))
        k0 = np.minimum(fz.astype(np.int64), self.nz - 2)
        return k0, fz - k0


# --------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------


def _choose_step(plane_area_mm2: float, volume_mm3: float, dose: DoseGrid,
                 budget: int) -> float:
    """In-plane sampling step (mm): fine for small structures, within budget for large ones.

    ``budget`` is the number of in-plane samples over all planes. Dmax and Dmin do not
    depend on the step (see the module docstring), so a large structure (BODY, lungs) may be
    sampled more coarsely than the dose grid: its sampling lattice shifts from plane to
    plane, and its DVH is an average over many planes.
    """
    step = max(math.sqrt(plane_area_mm2 / budget), MIN_STEP_MM) if plane_area_mm2 > 0 \
        else MIN_STEP_MM
    if volume_mm3 < 30_000:  # under 30 cc: near-max doses decide verdicts, stay fine
        step = min(step, SMALL_STRUCTURE_STEP_MM)
    positive = [s for s in dose.spacing[:2] if s > 0]
    return min(step, 4.0 * min(positive)) if positive else step


def _typical_spacing(zs: np.ndarray, common: float | None, dose: DoseGrid) -> float:
    """Typical plane spacing of a structure (mm); see the module docstring, *Geometry*.

    ``zs`` are the structure's sorted plane positions, ``common`` the structure set's plane
    spacing (None when unknown).
    """
    if common is not None and not (math.isfinite(common) and common > 0):
        common = None
    if zs.size > 1:
        gaps = np.diff(zs)
        own = float(np.median(gaps))
        if common is None or float(gaps.max()) <= CONTIGUOUS_GAP * common:
            return own  # contiguous planes: the structure's own spacing, as always
        return min(own, float(common))  # isolated planes or runs: the structure set's
    if common is not None:
        return float(common)
    dz = dose.spacing[2]
    return dz if dz > 0 else min(dose.spacing[:2])


class _Accumulator:
    """Collects the dose samples and the extremes candidates of one structure.

    Each sample is a small sub-slab piece whose dose varies linearly in z from ``lo`` to
    ``hi`` (trilinear dose between its faces); the histogram spreads its volume uniformly
    over that range rather than piling it on one value.
    """

    def __init__(self) -> None:
        self.lo: list[np.ndarray] = []
        self.hi: list[np.ndarray] = []
        self.weights: list[np.ndarray] = []
        self.dmin = math.inf
        self.dmax = -math.inf
        self.covered = 0.0

    def add(self, lo: np.ndarray, hi: np.ndarray, w: np.ndarray) -> None:
        self.lo.append(lo)
        self.hi.append(hi)
        self.weights.append(w)
        self.covered += float(w.sum())

    def extremes(self, d: np.ndarray) -> None:
        if d.size:
            self.dmin = min(self.dmin, float(d.min()))
            self.dmax = max(self.dmax, float(d.max()))


def compute_dvh(structure: Structure, dose: DoseGrid, *, step_mm: float | None = None,
                sample_budget: int = DEFAULT_SAMPLE_BUDGET,
                slice_spacing_mm: float | None = None,
                _interpolator: _Interpolator | None = None) -> DVH:
    """Cumulative DVH of ``structure`` in ``dose`` (see the module docstring for the method).

    Parameters
    ----------
    structure : Structure
        A structure with CLOSED_PLANAR contours.
    dose : DoseGrid
        The dose, in Gy (a RELATIVE dose gives a DVH in relative units, flagged in warnings).
    step_mm : float, optional
        Sampling step; by default chosen from the structure's size (0.1-0.5 mm below 30 cc).
        It is raised (with a warning) when the structure would need more samples than
        :data:`MAX_SAMPLE_PAIRS`.
    sample_budget : int
        Approximate number of in-plane samples over all planes (it sets the step of
        structures above 30 cc; Dmax and Dmin do not depend on it).
    slice_spacing_mm : float, optional
        The structure set's contour plane spacing
        (:attr:`rtcheck.model.StructureSet.plane_spacing_mm`). It sets the slab thickness
        of a structure on a single plane and of a structure whose planes are not contiguous
        (two consecutive planes more than 1.5 spacings apart): see the module docstring,
        *Geometry*. Structures on contiguous planes use their own median plane spacing.
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
    polys, areas, z_lo, z_hi = _slabs(structure, dose, slice_spacing_mm)
    volume_mm3 = float(np.sum(areas * (z_hi - z_lo)))

    h = step_mm if step_mm else _choose_step(float(areas.sum()), volume_mm3, dose, sample_budget)
    interp = _interpolator if _interpolator is not None else _interpolator_for(structure.name,
                                                                                dose)
    acc = _Accumulator()
    warnings: list[str] = []
    h = _sample_structure(structure.name, polys, areas, z_lo, z_hi, h, interp, acc, warnings)

    return _finish(structure.name, dose, volume_mm3, h, acc, warnings)


def _interpolator_for(name: str, dose: DoseGrid) -> _Interpolator:
    try:
        return _Interpolator(dose)
    except DVHInputError as exc:
        raise DVHInputError(f"structure {name!r}: {exc.message}") from None


def _slabs(structure: Structure, dose: DoseGrid, slice_spacing_mm: float | None
           ) -> tuple[list[list[np.ndarray]], np.ndarray, np.ndarray, np.ndarray]:
    """A structure's planes: polygons, exact even-odd areas (mm²) and slab bounds (mm)."""
    planes = structure.planes()
    zs = np.array(list(planes.keys()), dtype=float)
    polys = [[np.asarray(p, dtype=float)[:, :2] for p in plist] for plist in planes.values()]
    _check_coordinates(structure.name, zs, polys)
    typical = _typical_spacing(zs, slice_spacing_mm, dose)
    z_lo, z_hi = slab_bounds(zs, typical)
    areas = np.array([max(even_odd_area(p), 0.0) for p in polys])
    return polys, areas, z_lo, z_hi


def _check_coordinates(name: str, zs: np.ndarray, polys: list[list[np.ndarray]]) -> None:
    """Refuse coordinates no DVH can be computed from (not finite, or beyond 1 km)."""
    worst = [float(np.max(np.abs(zs)))] if zs.size else []
    worst += [float(np.max(np.abs(poly))) for plist in polys for poly in plist if poly.size]
    if not all(w <= MAX_COORDINATE_MM for w in worst):  # NaN fails the comparison too
        raise DVHInputError(
            f"structure {name!r}: contour coordinates are not finite or lie beyond "
            f"{MAX_COORDINATE_MM:.0e} mm: no volume and no DVH")


def _stagger(n: int) -> np.ndarray:
    """Offsets (in steps) of each plane's sampling lattice: a low-discrepancy (R2) sequence.

    Shifting each plane's rows and columns by a different fraction of a step makes the planes
    together sample the structure far more finely than one lattice would; without it, a dose
    gradient parallel to the rows is seen in steps of a whole row.
    """
    i = np.arange(n)
    return np.column_stack(((i * 0.7548776662466927) % 1.0, (i * 0.5698402909980532) % 1.0))


class _Faces:
    """The faces of every slab piece: each slab cut at the dose planes crossing it.

    Plane ``p`` has ``count[p]`` faces starting at ``start[p]``: its slab's lower bound, the dose
    planes strictly inside the slab, and its upper bound.
    """

    def __init__(self, z_lo: np.ndarray, z_hi: np.ndarray, interp: "_Interpolator") -> None:
        if interp.nz > 1:
            ilo = np.searchsorted(interp.z, z_lo, side="right")
            inner = np.maximum(np.searchsorted(interp.z, z_hi, side="left") - ilo, 0)
        else:
            ilo = np.zeros(z_lo.size, np.int64)
            inner = np.zeros(z_lo.size, np.int64)
        self.count = inner + 2
        self.start = np.cumsum(self.count) - self.count
        z = np.empty(int(self.count.sum()))
        z[self.start] = z_lo
        z[self.start + self.count - 1] = z_hi
        owner, rank = _expand(inner)
        z[self.start[owner] + 1 + rank] = interp.z[ilo[owner] + rank]
        self.z = z
        self.ok = interp.inside_z(z)
        self.k0, self.t = interp.frame_position(z)
        # Dose planes each slab's faces need: from its lowest face's lower plane to its
        # highest face's upper plane.
        last = np.minimum(self.k0[self.start + self.count - 1] + 1, interp.nz - 1)
        self.frames = last - self.k0[self.start] + 1

    def pairs(self, plane: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(point, face) index pairs: every point with every face of its plane, in order."""
        point, rank = _expand(self.count[plane])
        return point, self.start[plane[point]] + rank


class _Group:
    """Consecutive planes of a structure, processed together: their contour edges, slab
    faces, exact areas and lattice offsets (plane indices are local to the group)."""

    def __init__(self, polys: list[list[np.ndarray]], areas: np.ndarray, z_lo: np.ndarray,
                 z_hi: np.ndarray, stagger: np.ndarray, interp: _Interpolator) -> None:
        self.n = len(polys)
        self.edges = _Edges(polys)
        self.faces = _Faces(z_lo, z_hi, interp)
        self.areas = areas
        self.stagger = stagger
        self.todo = np.nonzero(areas > 0)[0]
        self.points = None  # contour points per edge of the Dmax/Dmin search, when counted


@dataclass
class _Plan:
    """What :func:`_plan` decided for a whole structure."""

    h: float  # step of the first lattice
    first: list  # each group's first-lattice samples (None: to be made group by group)
    reserved: list  # each group's first-lattice work (sample-face pairs)
    boundary_step: float  # spacing of the contour points of the Dmax/Dmin search
    nodes: bool  # whether the grid-node search of Dmax/Dmin is affordable


def _sample_structure(name: str, polys: list[list[np.ndarray]], areas: np.ndarray,
                      z_lo: np.ndarray, z_hi: np.ndarray, h: float, interp: _Interpolator,
                      acc: _Accumulator, warnings: list[str], samples: bool = True) -> float:
    """Histogram samples (unless ``samples`` is False) and Dmin/Dmax candidates of every
    plane's slab.

    Planes are processed in groups of about :data:`GROUP_EDGES` contour edges (one group for
    almost every structure), so memory does not grow with the structure's vertex count; the
    work of the whole structure is planned first (:func:`_plan`). Returns the in-plane step
    used (``h``, or coarser when the budget required it).
    """
    stagger = _stagger(len(polys))
    sizes = np.array([sum(len(p) for p in plist) for plist in polys])
    slices = _chunks(sizes, GROUP_EDGES)

    def make(sl: slice) -> _Group:
        return _Group(polys[sl], areas[sl], z_lo[sl], z_hi[sl], stagger[sl], interp)

    if len(slices) == 1:
        only = make(slices[0])
        def each():
            return iter([only])
    else:
        def each():
            return (make(sl) for sl in slices)
    plan = _plan(name, each, len(slices) == 1, h, interp, warnings, samples)
    used = 0.0
    for k, g in enumerate(each()):
        if samples:
            left = MAX_SAMPLE_PAIRS - used - sum(plan.reserved[k + 1:])
            plane, xs, ys, w, spent = _plane_samples(g, plan.h, plan.first[k], left)
            used += spent
            _add_samples(plane, xs, ys, w, g.faces, interp, acc)
        _boundary_extremes(g.edges, g.faces, plan.boundary_step, interp, acc, g.points)
        if plan.nodes:
            _node_extremes(g.edges, g.faces, interp, acc, g.n)
    return plan.h


def _plan(name: str, each, single: bool, h: float, interp: _Interpolator,
          warnings: list[str], samples: bool) -> _Plan:
    """Count the work of a structure before doing it, and bound it.

    The step of the first lattice is raised until its samples fit :data:`MAX_SAMPLE_PAIRS`;
    the contour points of the Dmax/Dmin search are spread until they fit
    :data:`MAX_BOUNDARY_PAIRS`; the grid-node search is left out beyond
    :data:`MAX_NODE_WORK`. Each departure from the normal method is a warning.
    """
    asked, step = h, min(h, interp.edge_step)
    b_points = b_length = b_fixed = node_work = extent = 0.0
    counted = False
    while True:
        first, reserved, total, over = [], [], 0.0, 0.0
        for g in each():
            if over and counted:
                break  # over budget: recount at a coarser step
            if not counted:
                cost = g.faces.count[g.edges.plane].astype(float)
                length = np.hypot(g.edges.x2 - g.edges.x1, g.edges.y2 - g.edges.y1)
                g.points = _points_per_edge(g.edges, step, length)
                b_points += float(np.dot(g.points, cost))
                b_length += float(np.dot(length, cost))
                b_fixed += float(cost.sum())
                node_work += _node_work(g, interp)
                finite = np.isfinite(g.edges.xmax)
                extent = max(extent, float(np.max(g.edges.xmax[finite] - g.edges.xmin[finite],
                                                  initial=0.0)),
                             float(np.max(g.edges.ymax[finite] - g.edges.ymin[finite],
                                          initial=0.0)))
            if over or not samples:
                continue
            got, ratio, pairs = _lattice(g.edges, g.todo, h, g.stagger, g.faces.count,
                                         MAX_SAMPLE_PAIRS - total, make=single)
            if ratio:
                over = ratio
                continue
            first.append(got)
            reserved.append(pairs)
            total += pairs
        counted = True
        if not over:
            break
        if h > 2 * extent + 1.0:
            raise DVHInputError(
                f"structure {name!r}: its contours need more than {MAX_SAMPLE_PAIRS:,} dose "
                f"samples even sampled every {h:.3g} mm: no DVH in bounded memory")
        h *= max(1.25, 1.05 * over)
    if h > asked * (1 + 1e-9):
        warnings.append(
            f"sampled every {h:.3g} mm, not {asked:.3g} mm: at the finer step this structure "
            f"would need more than {MAX_SAMPLE_PAIRS:,} dose samples")
    if b_points > MAX_BOUNDARY_PAIRS:
        # An outline far longer than the structure is large (a 10 m sliver): points further
        # apart, so that their number stays bounded (every vertex is still a point).
        spare = MAX_BOUNDARY_PAIRS - b_fixed
        coarse = max(step, b_length / spare) if spare > 0 else math.inf
        warnings.append(
            "outline too long for the structure's size: Dmax and Dmin searched on contour "
            + (f"points {coarse:.3g} mm apart (not {step:.3g} mm)" if math.isfinite(coarse)
               else "vertices only") + " to bound the work")
        step = coarse
        if single:
            for g in each():
                g.points = None  # counted at the finer step
    nodes = node_work <= MAX_NODE_WORK
    if not nodes:
        warnings.append(
            "outline too intricate for the dose grid (more than "
            f"{MAX_NODE_WORK:,} row crossings): Dmax and Dmin searched on the samples and the "
            "contour points only, not at every dose-grid node inside the contours")
    return _Plan(h, first, reserved, step, nodes)


def _add_samples(plane: np.ndarray, xs: np.ndarray, ys: np.ndarray, w: np.ndarray,
                 faces: _Faces, interp: _Interpolator, acc: _Accumulator) -> None:
    """Histogram samples: in-plane samples (plane, x, y, area) through their plane's slab.

    Evaluated in chunks of about :data:`CHUNK_PAIRS` sample-face pairs.
    """
    for sl in _chunks(faces.count[plane], CHUNK_PAIRS):
        _add_sample_chunk(plane[sl], xs[sl], ys[sl], w[sl], faces, interp, acc)


def _add_sample_chunk(plane: np.ndarray, xs: np.ndarray, ys: np.ndarray, w: np.ndarray,
                      faces: _Faces, interp: _Interpolator, acc: _Accumulator) -> None:
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


def _add_extremes(edges: _Edges, faces: _Faces, n_planes: int, h: float,
                  interp: _Interpolator, acc: _Accumulator) -> None:
    """Dmin/Dmax candidates of one group of planes, with the normal contour-point step."""
    _boundary_extremes(edges, faces, min(h, interp.edge_step), interp, acc)
    _node_extremes(edges, faces, interp, acc, n_planes)


def _boundary_extremes(edges: _Edges, faces: _Faces, step: float, interp: _Interpolator,
                       acc: _Accumulator, count: np.ndarray | None = None) -> None:
    """Dmin/Dmax candidates along every contour edge (points at most ``step`` apart, vertices
    included) on every face, in chunks of :data:`CHUNK_PAIRS` point-face pairs. ``count``:
    the points of each edge at that step, when known."""
    if count is None:
        count = _points_per_edge(edges, step)
    for sl in _chunks(count * faces.count[edges.plane], CHUNK_PAIRS):
        bplane, bx, by = _boundary_points(edges, step, sl, count[sl])
        inside = interp.inside_xy(bx, by)
        bplane, bx, by = bplane[inside], bx[inside], by[inside]
        if bplane.size:
            corners, weights = interp.xy_weights(bx, by)
            _, face, d = interp.at_faces(corners, weights, bplane, faces)
            acc.extremes(d[faces.ok[face]])


def _node_rows(edges: _Edges, interp: _Interpolator, n_planes: int):
    """Rows through the dose-grid nodes (their ``y0`` per plane and index range) and, per
    non-horizontal edge, the rows it crosses within the grid."""
    y0 = np.full(n_planes, interp.y0 - interp.dy / 2)  # rows through the voxel centres
    jlim = (0, interp.ny - 1)
    keep, j0, j1 = _row_span(edges, interp.dy, y0, jlim)
    return y0, jlim, keep, j0, j1


def _node_work(g: _Group, interp: _Interpolator) -> float:
    """Row crossings times dose planes of the grid-node search of a group."""
    if interp.nx < 2 or interp.ny < 2:
        return 0.0
    if g.edges.plane.size * interp.ny * float(g.faces.frames.max()) <= MAX_NODE_WORK:
        return 0.0  # every edge crossing every row would still be affordable
    _, _, keep, j0, j1 = _node_rows(g.edges, interp, g.n)
    return float(np.dot(np.maximum(j1 - j0 + 1, 0), g.faces.frames[g.edges.plane[keep]]))


def _node_extremes(edges: _Edges, faces: _Faces, interp: _Interpolator, acc: _Accumulator,
                   n_planes: int) -> None:
    """Dmin/Dmax candidates at the grid nodes inside the contours, on every face.

    Rows of the dose grid are processed in bands of at most about :data:`MAX_CROSSINGS`
    crossings times dose planes, and nodes in chunks of :data:`CHUNK_PAIRS` node-face pairs.
    """
    if interp.nx < 2 or interp.ny < 2:
        return
    y0, jlim, keep, j0, j1 = _node_rows(edges, interp, n_planes)
    n = np.maximum(j1 - j0 + 1, 0)
    frames = faces.frames[edges.plane[keep]].astype(float)
    span = None
    if float(np.dot(n, frames)) <= MAX_CROSSINGS:
        bands, span = [jlim], (keep, j0, j1)
    else:
        has = n > 0
        per_row = (np.bincount(j0[has], weights=frames[has], minlength=interp.ny + 1)
                   - np.bincount(j1[has] + 1, weights=frames[has], minlength=interp.ny + 1))
        per_row = np.cumsum(per_row)[: interp.ny]
        bands = [(sl.start, sl.stop - 1) for sl in _chunks(per_row, MAX_CROSSINGS)]
    del n, frames
    for band in bands:
        p, flat_start, length = _candidate_runs(edges, faces, interp, acc, y0, band, span)
        for sl in _chunks(length * faces.count[p], CHUNK_PAIRS):
            idx, rank = _expand(length[sl])
            nplane, flat = p[sl][idx], flat_start[sl][idx] + rank
            point, face = faces.pairs(nplane)
            d = interp.nodes_at_faces(flat, point, face, faces)
            acc.extremes(d[faces.ok[face]])


def _candidate_runs(edges: _Edges, faces: _Faces, interp: _Interpolator, acc: _Accumulator,
                    y0: np.ndarray, band: tuple[int, int], span=None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    p, j, a, b = _row_intervals(edges, interp.dy, y0, band, span)
    i0 = np.maximum(np.ceil((a - interp.x0) / interp.dx).astype(np.int64), 0)
    i1 = np.minimum(np.floor((b - interp.x0) / interp.dx).astype(np.int64), interp.nx - 1)
    keep = (j >= 0) & (j < interp.ny) & (i1 >= i0)
    p, j, i0, i1 = p[keep], j[keep], i0[keep], i1[keep]
    if p.size == 0:
        return empty, empty, empty
    frames = faces.frames[p]
    run, rank = _expand(frames)
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


def _lattice(edges: _Edges, todo: np.ndarray, hs: float, stagger: np.ndarray,
             cost: np.ndarray, budget: float, make: bool = True):
    """Samples (plane, x, y, area) of the planes ``todo`` on their lattices of step ``hs``.

    The work is counted exactly before anything is made. Returns ``(samples, over, pairs)``:
    ``over`` is 0 when the row crossings stay within :data:`MAX_CROSSINGS` and the samples
    times their cost (faces of their slab) within ``budget``, otherwise roughly how much
    coarser the step should be (and ``samples`` is None); ``pairs`` is the work counted.
    With ``make`` False the work is only counted.
    """
    if todo.size == 0:
        return None, 0.0, 0.0
    n = stagger.shape[0]
    sub = edges if todo.size == n else edges.subset(todo)
    # Lattices are per plane, so planes refined together share one step.
    x0 = edges.xmin - stagger[:, 0] * hs
    y0 = edges.ymin - stagger[:, 1] * hs
    span = _row_span(sub, hs, y0)
    crossings = int(np.maximum(span[2] - span[1] + 1, 0).sum())
    if crossings > MAX_CROSSINGS:
        return None, crossings / MAX_CROSSINGS, float(crossings)
    p, j, a, b = _row_intervals(sub, hs, y0, span=span)
    pairs = float(np.dot(_piece_counts(a, b, hs, x0[p]), cost[p]))
    if pairs > budget:
        return None, math.sqrt(pairs / max(budget, 1.0)), pairs
    if not make:
        return None, 0.0, pairs
    sp, xs, ys, length = _interval_samples(p, j, a, b, hs, x0, y0)
    return (sp, xs, ys, length * hs), 0.0, pairs


def _plane_samples(g: _Group, h: float, first, budget: float
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """In-plane samples of every plane of a group (plane, x, y, area weight), rescaled to
    exact areas, and the work they cost (sample-face pairs).

    ``first`` is the group's first lattice at step ``h`` (None: made here). A plane thinner
    than the step (a sliver, a tiny contour) is sampled again on finer lattices until the
    samples hold at least half its area, as long as ``budget`` allows; a plane that no
    affordable lattice resolves is sampled along its outline.
    """
    n, areas, cost, todo = g.n, g.areas, g.faces.count, g.todo
    out = []
    used, hs = 0.0, h
    for r in range(6):
        if todo.size == 0:
            break
        if r == 0:
            got = first
            if got is None:  # counted (and reserved) by _plan, made now
                got, _, _ = _lattice(g.edges, todo, hs, g.stagger, cost, math.inf)
        else:
            got, _, _ = _lattice(g.edges, todo, hs, g.stagger, cost, budget - used)
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
        out.append(_outline_samples(g.edges, todo, h, cost, budget - used))
        used += float(cost[out[-1][0]].sum())
    if not out:
        empty = np.zeros(0)
        return np.zeros(0, np.int64), empty, empty, empty, used
    plane, xs, ys, w = (np.concatenate(c) for c in zip(*out))
    sampled = np.bincount(plane, weights=w, minlength=n)
    scale = np.divide(areas, sampled, out=np.zeros(n), where=sampled > 0)
    return plane, xs, ys, w * scale[plane], used


def _outline_samples(edges: _Edges, todo: np.ndarray, h: float, cost: np.ndarray,
                     budget: float) -> tuple[np.ndarray, ...]:
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
        idx, rank = _expand(k)
        t = (rank + 0.5) / k[idx]
        return (plane[idx], x1[idx] + t * (x2 - x1)[idx], y1[idx] + t * (y2 - y1)[idx],
                (length / k)[idx])
    cnt = np.maximum(np.bincount(plane, minlength=n), 1)
    cx = np.bincount(plane, weights=x1, minlength=n) / cnt
    cy = np.bincount(plane, weights=y1, minlength=n) / cnt
    return todo, cx[todo], cy[todo], np.ones(todo.size)


def _bin_width(dmax: float) -> float:
    """Width (Gy) of the DVH's dose bins: 0.01 Gy (finer below 50 Gy) up to 200 Gy of
    maximum dose, wider above so that there are never more than :data:`MAX_BINS` bins."""
    return max(min(0.01, max(dmax, 1e-6) / 5000.0), dmax / MAX_BINS)


def _finish(name: str, dose: DoseGrid, volume_mm3: float, h: float, acc: _Accumulator,
            warnings: list[str]) -> DVH:
    volume_cc = volume_mm3 / 1000.0
    covered_cc = acc.covered / 1000.0
    covered_fraction = min(covered_cc / volume_cc, 1.0) if volume_cc > 0 else 0.0
    if dose.units.upper() != "GY":
        warnings.append(f"dose units are {dose.units}: values are not in Gy")
    if not acc.lo or covered_cc <= 0:
        warnings.append("the structure has no area (degenerate contours): no dose metric"
                        if volume_cc <= 0 else
                        "the structure lies entirely outside the dose grid: no dose metric")
        return DVH(name, volume_cc, 0.0, math.nan, math.nan, math.nan, np.zeros(1),
                   np.zeros(1), 0.0, h, dose.units, warnings)
    if covered_fraction < COVERAGE_TOLERANCE:
        warnings.append(
            f"only {100 * covered_fraction:.1f} % of the structure lies inside the dose grid: "
            "every metric describes the covered part only")
    lo = np.concatenate(acc.lo)
    hi = np.concatenate(acc.hi)
    w = np.concatenate(acc.weights)
    acc.lo, acc.hi, acc.weights = [lo], [hi], [w]  # the pieces are free now
    w /= 1000.0  # mm3 -> cc
    dmean = float(np.dot(0.5 * (lo + hi), w) / w.sum())
    dmax, dmin = acc.dmax, acc.dmin
    if not (math.isfinite(dmax) and math.isfinite(dmin) and math.isfinite(dmean)):
        raise DVHInputError(f"structure {name!r}: the dose inside it is not finite: no DVH")
    bin_w = _bin_width(dmax)
    doses, volumes = _cumulative_histogram(lo, hi, w, bin_w, dmax)
    if volume_cc < NEAR_MAX_CC * 10:
        warnings.append(f"small structure ({volume_cc:.3f} cc): near-maximum metrics such as "
                        "D0.03cc cover a large share of it")
    return DVH(name, volume_cc, covered_fraction, dmin, dmax, dmean, doses, volumes, bin_w, h,
               dose.units, warnings)


def _cumulative_histogram(lo: np.ndarray, hi: np.ndarray, w: np.ndarray, bin_w: float,
                          dmax: float) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative DVH at the bin edges of samples spread uniformly over [lo, hi].

    The volume below dose e of one sample is a ramp from ``lo`` to ``hi``; a ramp is the
    difference of two hinge functions, whose second differences on the bin edges are two
    weights on the edges around each hinge. Two cumulative sums then give every sample's
    contribution at every edge, exactly, in O(samples + bins). Samples are taken in chunks
    (the sums are additive), so the temporaries stay small.
    """
    nbins = int(math.ceil(max(dmax, 0.0) / bin_w)) + 2
    edges = np.arange(nbins + 1) * bin_w
    first = np.zeros(nbins + 3)
    second = np.zeros(nbins + 3)
    for at in range(0, max(lo.size, 1), CHUNK_PAIRS):
        sl = slice(at, at + CHUNK_PAIRS)
        _histogram_chunk(lo[sl], hi[sl], w[sl], bin_w, nbins, first, second)
    below = np.cumsum(first)[: nbins + 1] + np.cumsum(np.cumsum(second))[: nbins + 1]
    volumes = np.clip(float(w.sum()) - below, 0.0, None)
    return edges, volumes


def _histogram_chunk(lo: np.ndarray, hi: np.ndarray, w: np.ndarray, bin_w: float, nbins: int,
                     first: np.ndarray, second: np.ndarray) -> None:
    """Add samples' steps (``first``) and ramps' second differences (``second``)."""
    a = np.maximum(np.minimum(lo, hi), 0.0)
    b = np.maximum(np.maximum(lo, hi), 0.0)
    point = (b - a) < bin_w
    # Samples whose dose spans less than a bin: a step at their mean dose, linear within its
    # bin (spreading them would only add rounding error).
    k = np.minimum((0.5 * (a[point] + b[point]) / bin_w).astype(np.int64), nbins - 1)
    first += np.bincount(k + 1, weights=w[point], minlength=nbins + 3)
    # Spread samples: slope w / (b - a) starting at a, ending at b.
    spread = ~point
    slope = w[spread] / (b[spread] - a[spread])
    for hinge, sign in ((a[spread], 1.0), (b[spread], -1.0)):
        f = hinge / bin_w
        kk = np.minimum(f.astype(np.int64), nbins - 1)
        frac = f - kk
        second += np.bincount(kk + 1, weights=sign * slope * (1 - frac) * bin_w,
                              minlength=nbins + 3)
        second += np.bincount(kk + 2, weights=sign * slope * frac * bin_w, minlength=nbins + 3)


def plane_spacing(structures: list[Structure]) -> float | None:
    """The common contour plane spacing of a structure set's ROIs (mm), None if unknown.

    :func:`rtcheck.model.common_plane_spacing` (the median gap between consecutive planes,
    pooled over every ROI).
    """
    try:
        from rtcheck.model import common_plane_spacing
    except ImportError:  # pragma: no cover - older model without it
        gaps = [np.diff(sorted(s.planes())) for s in structures if len(s.planes()) > 1]
        return float(np.median(np.concatenate(gaps))) if gaps else None
    return common_plane_spacing(structures)


def compute_dvhs(structures: list[Structure], dose: DoseGrid, *,
                 slice_spacing_mm: float | None = None, **kwargs) -> list[DVH]:
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
    kwargs.setdefault("_interpolator", _Interpolator(dose))
    out = []
    for s in structures:
        if s.contours:
            d = compute_dvh(s, dose, slice_spacing_mm=slice_spacing_mm, **kwargs)
            d.roi_number = s.number
            out.append(d)
    return out


# --------------------------------------------------------------------------------------
# Union of several structures (one organ contoured in parts)
# --------------------------------------------------------------------------------------


def compute_union_dvh(structures: list[Structure], dose: DoseGrid, name: str | None = None,
                      **kwargs) -> DVH:
    """DVH of the union of several structures, evaluated as one organ.

    For an organ contoured in parts (jejunum + ileum, colon + sigmoid, heart + pericardium):
    D5cc of the small bowel is the dose to its hottest 5 cc, wherever they lie. A point is in
    the union when it is inside *any* structure, each structure with its own planes, slabs
    (module docstring) and even-odd holes; overlapping or nested parts (a pericardium holding
    the heart) count once. Concatenating the contours would be wrong: by the even-odd rule a
    heart inside its pericardium would become a hole.

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
               step_mm: float | None = None, sample_budget: int = DEFAULT_SAMPLE_BUDGET,
               slice_spacing_mm: float | None = None,
               _interpolator: _Interpolator | None = None) -> DVH:
    """:func:`compute_union_dvh` for two structures or more."""
    parts = [_slabs(s, dose, slice_spacing_mm) for s in structures]
    z_lo, z_hi, g_part, g_plane, g_layer = _union_layers([(p[2], p[3]) for p in parts])
    n = z_lo.size
    exact = np.array([parts[k][1][i] for k, i in zip(g_part, g_plane)])
    # The union holds its largest part on every layer: a lower bound of the union's area and
    # volume, so the step stays fine for a small organ (see _choose_step).
    lower = np.zeros(n)
    np.maximum.at(lower, g_layer, exact)
    thick = z_hi - z_lo
    if step_mm is not None and not (math.isfinite(step_mm) and step_mm > 0):
        raise ValueError(f"step_mm must be a positive number of mm, not {step_mm!r}")
    h = step_mm if step_mm else _choose_step(float(lower.sum()), float(np.dot(lower, thick)),
                                             dose, sample_budget)
    interp = _interpolator if _interpolator is not None else _interpolator_for(label, dose)
    acc = _Accumulator()
    warnings: list[str] = []

    edges = _Edges([parts[k][0][i] for k, i in zip(g_part, g_plane)])
    faces = _Faces(z_lo, z_hi, interp)
    plane, xs, ys, w, area, used = _union_plane_samples(label, edges, g_layer, exact, lower, h,
                                                        faces.count, warnings)
    _add_samples(plane, xs, ys, w, faces, interp, acc)
    # The union's extremes are the parts' extremes: search each part's own boundary and nodes.
    for s, (polys, areas, lo, hi) in zip(structures, parts):
        _sample_structure(s.name, polys, areas, lo, hi, h, interp, acc, warnings,
                          samples=False)
    return _finish(label, dose, float(np.dot(area, thick)), used, acc, warnings)


def _union_layers(slabs: list[tuple[np.ndarray, np.ndarray]], tol: float = 1e-6
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
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
    bounds = np.unique(np.concatenate([np.concatenate(b) for b in slabs]))
    bounds = bounds[np.concatenate(([True], np.diff(bounds) > tol))]
    mids = 0.5 * (bounds[:-1] + bounds[1:])
    part, plane, layer = [], [], []
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


def _union_plane_samples(label: str, edges: _Edges, layer: np.ndarray, exact: np.ndarray,
                         lower: np.ndarray, h: float, cost: np.ndarray, warnings: list[str]
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                    float]:
    """In-plane samples of each layer's union (layer, x, y, area weight), its area (mm²) and
    the step used.

    ``edges`` holds one "plane" per group (a part's plane on a layer), ``layer`` the layer of
    each group and ``exact`` its exact even-odd area; ``lower`` is the largest part's area on
    each layer. Like :func:`_plane_samples`, a layer whose samples hold less than half of its
    largest part is sampled again on finer lattices. Only layers made of slivers are refined:
    refining a whole layer for a sliver beside a large part would multiply the large part's
    samples by 16 per round. A sliver beside a resolved part still counts in the layer's area
    (ratio estimate), its tiny volume taking the dose of the samples around it. The work is
    bounded as in :func:`_plane_samples` (``cost``: faces of each layer's slab).
    """
    n = lower.size
    stagger = _stagger(n)
    xmin, ymin = np.full(n, np.inf), np.full(n, np.inf)
    np.minimum.at(xmin, layer, edges.xmin)
    np.minimum.at(ymin, layer, edges.ymin)
    exact_sum = np.bincount(layer, weights=exact, minlength=n)
    area = np.zeros(n)
    todo = np.nonzero(lower > 0)[0]
    out = []
    budget, used, asked, hs = float(MAX_SAMPLE_PAIRS), 0.0, h, h
    finite = np.isfinite(edges.xmax)
    extent = float(max(np.max(edges.xmax[finite] - edges.xmin[finite], initial=0.0),
                       np.max(edges.ymax[finite] - edges.ymin[finite], initial=0.0)))
    rounds = 0
    while rounds < 6 and todo.size:
        groups = np.nonzero(np.isin(layer, todo))[0]
        sub = edges if groups.size == layer.size else edges.subset(groups)
        # One lattice per layer, shared by its parts, so their rows line up and merge.
        x0 = xmin - stagger[:, 0] * hs
        y0 = ymin - stagger[:, 1] * hs
        span = _row_span(sub, hs, y0[layer])
        crossings = int(np.maximum(span[2] - span[1] + 1, 0).sum())
        over = crossings / MAX_CROSSINGS if crossings > MAX_CROSSINGS else 0.0
        if not over:
            g, j, a, b = _row_intervals(sub, hs, y0[layer], span=span)
            # Pieces of the merged intervals are at most those of the parts' intervals.
            pairs = float(np.dot(_piece_counts(a, b, hs, x0[layer[g]]), cost[layer[g]]))
            if pairs > budget - used:
                over = math.sqrt(pairs / max(budget - used, 1.0))
        if over:
            if rounds:
                break  # over budget: the layers left get the sliver sample below
            if hs > 2 * extent + 1.0:
                raise DVHInputError(
                    f"structure {label!r}: its contours need more than {MAX_SAMPLE_PAIRS:,} "
                    f"dose samples even sampled every {hs:.3g} mm: no DVH in bounded memory")
            hs *= max(1.25, 1.05 * over)
            h = hs
            continue
        part_sampled = np.bincount(g, weights=(b - a) * hs, minlength=layer.size)
        sp, xs, ys, length = _interval_samples(*_merge_intervals(layer[g], j, a, b), hs, x0, y0)
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
            f"structures would need more than {MAX_SAMPLE_PAIRS:,} dose samples")
    if todo.size:
        # Slivers far below the sampling resolution: one sample at the vertex centroid of the
        # layer's largest part, holding its area (the overlap of such slivers is unknown).
        order = np.lexsort((exact, layer))  # by layer, then area: each layer's last is largest
        last = np.append(layer[order][1:] != layer[order][:-1], True)
        largest = np.zeros(n, np.int64)
        largest[layer[order][last]] = order[last]
        sel = np.isin(edges.plane, largest[todo])
        own = layer[edges.plane[sel]]
        cnt = np.maximum(np.bincount(own, minlength=n), 1)
        cx = np.bincount(own, weights=edges.x1[sel], minlength=n) / cnt
        cy = np.bincount(own, weights=edges.y1[sel], minlength=n) / cnt
        area[todo] = lower[todo]
        out.append((todo, cx[todo], cy[todo], lower[todo]))
    if not out:
        empty = np.zeros(0)
        return np.zeros(0, np.int64), empty, empty, empty, area, h
    plane, xs, ys, w = (np.concatenate(c) for c in zip(*out))
    sampled = np.bincount(plane, weights=w, minlength=n)
    scale = np.divide(area, sampled, out=np.zeros(n), where=sampled > 0)
    return plane, xs, ys, w * scale[plane], area, h


def _merge_intervals(key: np.ndarray, j: np.ndarray, a: np.ndarray, b: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
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
