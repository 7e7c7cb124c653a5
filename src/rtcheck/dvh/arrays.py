"""Array types and ragged-array helpers shared by the DVH modules.

The engine works on flat arrays of variable-length groups (the points of each edge, the
faces of each slab, the nodes of each run); :func:`expand` turns per-group counts into
per-item indices, and :func:`chunks` cuts a long list of items into slices of bounded work.
Leans on numpy only.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rtcheck.model import distinct

#: Float arrays (coordinates in mm, doses in Gy, weights in mm² or mm³).
FloatArray = NDArray[np.float64]
#: Integer arrays (plane, row, face and flat grid indices; counts).
IntArray = NDArray[np.int64]
#: Boolean masks.
BoolArray = NDArray[np.bool_]
#: Any numeric array (an input whose dtype does not matter: counts, weights).
NumArray = NDArray[Any]


def expand(n: NumArray) -> tuple[IntArray, IntArray]:
    """For counts n: the owner index of each expanded item and its rank within its owner."""
    owner = np.repeat(np.arange(n.size), n)
    starts = np.cumsum(n) - n
    return owner, np.arange(int(n.sum())) - starts[owner]


def chunks(weights: NumArray, limit: int) -> list[slice]:
    """Consecutive slices of items whose weights add up to about ``limit`` at most each (one
    item heavier than ``limit`` is a slice of its own)."""
    n = weights.size
    cum = np.cumsum(weights, dtype=np.float64)
    total = float(cum[-1]) if n else 0.0
    if total <= limit:
        return [slice(0, n)]
    cuts = np.searchsorted(cum, np.arange(1, int(total // limit) + 1) * float(limit),
                           side="right")
    bounds = distinct(np.concatenate(([0], np.maximum(cuts, 1), [n])))
    bounds = bounds[bounds <= n]
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]
