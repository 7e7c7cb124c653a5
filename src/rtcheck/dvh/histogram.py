"""The DVH type, and how accumulated dose samples become one.

:class:`DVH` is the cumulative curve of one structure with its exact volume, coverage and
extremes; its metrics are read through :mod:`rtcheck.dvh.metrics`. :class:`Accumulator`
collects a structure's samples (sub-slab pieces whose dose runs linearly between two
values) and its Dmax/Dmin candidates; :func:`finish_dvh` bins them into the cumulative
histogram (:func:`cumulative_histogram`, exact for samples spread uniformly over a dose
range). Leans on numpy, :mod:`rtcheck.dvh.metrics` and :mod:`rtcheck.dvh.limits`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from rtcheck.dvh import limits
from rtcheck.dvh.arrays import FloatArray
from rtcheck.dvh.limits import DVHInputError
from rtcheck.dvh.metrics import parse_metric

if TYPE_CHECKING:
    from rtcheck.model import DoseGrid

#: Covered fraction below which a structure is reported as partly outside the dose grid.
COVERAGE_TOLERANCE = 0.999
#: Volume (cc) of the near-maximum reported with every DVH (``D0.03cc``).
NEAR_MAX_CC = 0.03


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
        """Volume (cc) of the part of the structure inside the dose grid."""
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


class Accumulator:
    """Collects the dose samples and the extremes candidates of one structure.

    Each sample is a small sub-slab piece whose dose varies linearly in z from ``lo`` to
    ``hi`` (trilinear dose between its faces); the histogram spreads its volume uniformly
    over that range rather than piling it on one value.
    """

    def __init__(self) -> None:
        self.lo: list[FloatArray] = []
        self.hi: list[FloatArray] = []
        self.weights: list[FloatArray] = []
        self.dmin = math.inf
        self.dmax = -math.inf
        self.covered = 0.0

    def add(self, lo: FloatArray, hi: FloatArray, w: FloatArray) -> None:
        """Samples whose dose runs from ``lo`` to ``hi`` over volumes ``w`` (mm³)."""
        self.lo.append(lo)
        self.hi.append(hi)
        self.weights.append(w)
        self.covered += float(w.sum())

    def extremes(self, d: FloatArray) -> None:
        """Dmin/Dmax candidates ``d`` (Gy)."""
        if d.size:
            self.dmin = min(self.dmin, float(d.min()))
            self.dmax = max(self.dmax, float(d.max()))


def bin_width(dmax: float) -> float:
    """Width (Gy) of the DVH's dose bins: 0.01 Gy (finer below 50 Gy) up to 200 Gy of
    maximum dose, wider above so that there are never more than
    :data:`~rtcheck.dvh.limits.MAX_BINS` bins."""
    return max(min(0.01, max(dmax, 1e-6) / 5000.0), dmax / limits.MAX_BINS)


def finish_dvh(name: str, dose: DoseGrid, volume_mm3: float, h: float, acc: Accumulator,
               warnings: list[str]) -> DVH:
    """The DVH of a structure from its accumulated samples and extremes.

    ``volume_mm3`` is the structure's exact volume, ``h`` the sampling step used; coverage,
    units and size warnings are appended to ``warnings``, which the DVH keeps.

    Raises
    ------
    DVHInputError
        When the dose inside the structure is not finite.
    """
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
    bin_w = bin_width(dmax)
    doses, volumes = cumulative_histogram(lo, hi, w, bin_w, dmax)
    if volume_cc < NEAR_MAX_CC * 10:
        warnings.append(f"small structure ({volume_cc:.3f} cc): near-maximum metrics such as "
                        "D0.03cc cover a large share of it")
    return DVH(name, volume_cc, covered_fraction, dmin, dmax, dmean, doses, volumes, bin_w, h,
               dose.units, warnings)


def cumulative_histogram(lo: FloatArray, hi: FloatArray, w: FloatArray, bin_w: float,
                         dmax: float) -> tuple[FloatArray, FloatArray]:
    """Cumulative DVH at the bin edges of samples spread uniformly over [lo, hi].

    The volume below dose e of one sample is a ramp from ``lo`` to ``hi``; a ramp is the
    difference of two hinge functions, whose second differences on the bin edges are two
    weights on the edges around each hinge. Two cumulative sums then give every sample's
    contribution at every edge, exactly, in O(samples + bins). Samples are taken in chunks
    (the sums are additive), so the temporaries stay small.
    """
    nbins = math.ceil(max(dmax, 0.0) / bin_w) + 2
    edges = np.arange(nbins + 1, dtype=np.float64) * bin_w
    first = np.zeros(nbins + 3)
    second = np.zeros(nbins + 3)
    for at in range(0, max(lo.size, 1), limits.CHUNK_PAIRS):
        sl = slice(at, at + limits.CHUNK_PAIRS)
        _histogram_chunk(lo[sl], hi[sl], w[sl], bin_w, nbins, first, second)
    below = np.cumsum(first)[: nbins + 1] + np.cumsum(np.cumsum(second))[: nbins + 1]
    volumes = np.clip(float(w.sum()) - below, 0.0, None)
    return edges, volumes


def _histogram_chunk(lo: FloatArray, hi: FloatArray, w: FloatArray, bin_w: float,
                     nbins: int, first: FloatArray, second: FloatArray) -> None:
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

