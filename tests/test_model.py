"""The small numeric helpers of :mod:`rtcheck.model`, against numpy's own functions.

``distinct`` and ``median`` stand in for ``numpy.unique`` and ``numpy.median`` (whose first
call imports ``numpy.ma``): they must give the very same numbers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from rtcheck.model import Contour, Structure, common_plane_spacing, distinct, median


@pytest.mark.parametrize("n", [1, 2, 3, 10, 11, 1000, 1001])
def test_median_is_numpy_median(n):
    rng = np.random.default_rng(n)
    values = rng.normal(30.0, 7.0, n) * rng.choice([1e-3, 1.0, 1e3], n)
    assert median(values) == float(np.median(values))  # bit for bit
    ties = np.round(values[: max(n // 2, 1)])
    assert median(np.concatenate([ties, ties])) == float(np.median(np.concatenate([ties, ties])))


def test_median_of_nothing_or_nan_is_nan():
    assert math.isnan(median([]))
    assert math.isnan(median([1.0, np.nan, 3.0]))
    assert median([[4.0, 1.0], [3.0, 2.0]]) == 2.5  # all values, whatever the shape


def test_distinct_is_numpy_unique():
    rng = np.random.default_rng(7)
    values = np.round(rng.normal(0, 20, 500), 1)
    assert np.array_equal(distinct(values), np.unique(values))
    assert np.array_equal(distinct(values.astype(int)), np.unique(values.astype(int)))
    rows = np.round(rng.normal(0, 2, (300, 2)))
    assert np.array_equal(distinct(rows, axis=0), np.unique(rows, axis=0))
    assert distinct([]).size == 0


def test_common_plane_spacing_is_the_median_gap_over_all_rois():
    square = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])

    def roi(zs):
        return Structure(1, "r", [Contour(z, square) for z in zs])

    # 2.5 mm gaps dominate; one ROI on isolated planes (gaps of 10 mm) does not move it.
    structures = [roi(np.arange(0, 30, 2.5)), roi([0.0, 10.0, 20.0]), roi([5.0])]
    assert common_plane_spacing(structures) == 2.5
    assert common_plane_spacing([roi([1.0]), roi([])]) is None
