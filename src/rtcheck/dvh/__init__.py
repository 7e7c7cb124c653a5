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
once (:data:`limits.MAX_CROSSINGS`), the histogram samples times the faces of their slabs
(:data:`limits.MAX_SAMPLE_PAIRS`) and the contour points of the Dmax/Dmin search
(:data:`limits.MAX_BOUNDARY_PAIRS`) are counted exactly before they are made. A structure
that would exceed them at its step is sampled more coarsely (a warning says so); a plane too
thin for its lattice at any affordable step is sampled along its outline; everything is
evaluated in chunks of :data:`limits.CHUNK_PAIRS`, and planes in groups of
:data:`limits.GROUP_EDGES` contour edges. Beyond the dose grid (and its float32 copy), a DVH
needs a few tens of MB and at most a few hundred, whatever the structure's extent, vertex
count, sampling step or dose scaling; only a single contour plane of more than a million
vertices needs more (about 150 bytes a vertex, in proportion to the input itself). Input that
cannot be honoured (contour coordinates beyond 1 km, a dose that is not finite, a structure
with so many contours that even its coarsest sampling is over budget) raises
:class:`DVHInputError` naming the structure.


The rooms of this package
-------------------------
Each module's docstring says what it does and what it leans on.

- :mod:`~rtcheck.dvh.metrics`: the one metric grammar (:func:`parse_metric`,
  :class:`Metric`); light, for rules, evaluators, plotting and the command line.
- :mod:`~rtcheck.dvh.histogram`: the :class:`DVH` type, the accumulation of samples and
  the cumulative histogram.
- :mod:`~rtcheck.dvh.engine`: :func:`compute_dvh` and :func:`compute_dvhs`, and the
  planning that bounds their work.
- :mod:`~rtcheck.dvh.union`: :func:`compute_union_dvh`, one organ contoured in parts.
- :mod:`~rtcheck.dvh.geometry`: even-odd areas, slabs, contour edges and row intervals.
- :mod:`~rtcheck.dvh.lattice`: the staggered sampling lattice, its refinement, slivers.
- :mod:`~rtcheck.dvh.interpolate`: the trilinear :class:`~rtcheck.dvh.interpolate.Interpolator`
  and the slab :class:`~rtcheck.dvh.interpolate.Faces`.
- :mod:`~rtcheck.dvh.extremes`: the exact Dmax/Dmin search.
- :mod:`~rtcheck.dvh.limits`: every cap on the work, and :class:`DVHInputError`; patch
  caps there (``rtcheck.dvh.limits.CHUNK_PAIRS``), not on this package, whose copies
  of them are for reading only.
- :mod:`~rtcheck.dvh.arrays`: array types and ragged-array helpers.
"""

from __future__ import annotations

from rtcheck.dvh.engine import compute_dvh, compute_dvhs, plane_spacing
from rtcheck.dvh.geometry import even_odd_area, slab_bounds
from rtcheck.dvh.histogram import COVERAGE_TOLERANCE, DVH, NEAR_MAX_CC
from rtcheck.dvh.limits import (
    CHUNK_PAIRS,
    CONTIGUOUS_GAP,
    DEFAULT_SAMPLE_BUDGET,
    GROUP_EDGES,
    MAX_BINS,
    MAX_BOUNDARY_PAIRS,
    MAX_COORDINATE_MM,
    MAX_CROSSINGS,
    MAX_NODE_WORK,
    MAX_SAMPLE_PAIRS,
    MIN_STEP_MM,
    SMALL_STRUCTURE_STEP_MM,
    DVHInputError,
)
from rtcheck.dvh.metrics import Metric, parse_metric
from rtcheck.dvh.union import compute_union_dvh

__all__ = [
    "CHUNK_PAIRS",
    "CONTIGUOUS_GAP",
    "COVERAGE_TOLERANCE",
    "DEFAULT_SAMPLE_BUDGET",
    "DVH",
    "GROUP_EDGES",
    "MAX_BINS",
    "MAX_BOUNDARY_PAIRS",
    "MAX_COORDINATE_MM",
    "MAX_CROSSINGS",
    "MAX_NODE_WORK",
    "MAX_SAMPLE_PAIRS",
    "MIN_STEP_MM",
    "NEAR_MAX_CC",
    "SMALL_STRUCTURE_STEP_MM",
    "DVHInputError",
    "Metric",
    "compute_dvh",
    "compute_dvhs",
    "compute_union_dvh",
    "even_odd_area",
    "parse_metric",
    "plane_spacing",
    "slab_bounds",
]
