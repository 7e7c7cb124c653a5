"""The DVH engine on ROIs contoured on isolated planes, and its bounds on hostile input.

Isolated planes (issue 10): a ROI whose planes are not contiguous in its structure set (a
single plane, or two consecutive planes more than 1.5 structure-set spacings apart) takes
its slab thickness from the structure set's plane spacing, not from its own median spacing:
three 10 x 10 mm squares 30 mm apart in a structure set contoured every 3 mm are
3 x 100 mm2 x 3 mm = 0.9 cc, not 9 cc. Contiguous ROIs are unchanged.

Bounds: whatever the input, one DVH needs at most a few hundred MB beyond the dose grid
(tracemalloc sees numpy's allocations; the dose grid is made before tracing starts, the
engine's float32 copy of it is counted). The histogram never holds more than about
``MAX_BINS`` bins; input that cannot be honoured is refused with a DVHInputError naming the
structure.
"""

from __future__ import annotations

import math
import time
import tracemalloc

import numpy as np
import pytest

from rtcheck.dvh import (
    MAX_BINS,
    DVHInputError,
    compute_dvh,
    compute_dvhs,
    compute_union_dvh,
    even_odd_area,
    limits,
)
from rtcheck.errors import InputError
from rtcheck.model import Contour, DoseGrid, Structure

#: Peak memory (MB) one DVH may allocate on the hostile inputs below (dose grid excluded).
PEAK_MB = 300
#: Seconds each hostile DVH may take.
SECONDS = 10


def linear_grid(gradient: tuple[float, float, float], d0: float, spacing: float = 2.5,
                extent: float = 100.0) -> DoseGrid:
    """Dose d0 + g . r on a regular grid; trilinear interpolation of it is exact."""
    axis = np.arange(-extent, extent + 1e-9, spacing)
    z, y, x = np.meshgrid(axis, axis, axis, indexing="ij")
    return DoseGrid(axis, axis, axis.copy(),
                    d0 + gradient[0] * x + gradient[1] * y + gradient[2] * z)


def square(half: float, cx: float = 0.0, cy: float = 0.0) -> np.ndarray:
    return np.array([[cx - half, cy - half], [cx + half, cy - half], [cx + half, cy + half],
                     [cx - half, cy + half]], dtype=float)


def circle(r: float, n: int = 360) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.column_stack((r * np.cos(t), r * np.sin(t)))


def on_planes(xy: np.ndarray, zs, name: str = "S", number: int = 1) -> Structure:
    return Structure(number, name, [Contour(float(z), xy) for z in zs])


def measured(fn):
    """(result or exception, peak MB allocated, seconds) of fn()."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        out = fn()
    except Exception as exc:  # noqa: BLE001 - returned for the test to judge
        out = exc
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return out, peak, seconds


# -- isolated planes ------------------------------------------------------------------------

def test_isolated_planes_take_the_structure_set_spacing():
    # Three single planes 30 mm apart, each a 10 x 10 mm square; structure set every 3 mm.
    s = on_planes(square(5), (-30.0, 0.0, 30.0), "Helper")
    dose = linear_grid((0, 0, 0.1), 20.0)  # 0.1 Gy/mm along z
    dvh = compute_dvh(s, dose, slice_spacing_mm=3.0)
    assert dvh.volume_cc == pytest.approx(3 * 100 * 3 / 1000, rel=1e-9)  # 0.9 cc
    # Each slab reaches 1.5 mm beyond its plane: extremes and mean are exact.
    assert dvh.dmax == pytest.approx(20 + 0.1 * 31.5, abs=1e-6)
    assert dvh.dmin == pytest.approx(20 - 0.1 * 31.5, abs=1e-6)
    assert dvh.dmean == pytest.approx(20.0, abs=1e-6)
    # A third of the volume sits around each plane: V20.5Gy is the top slab.
    assert dvh.metric("V20.5Gy[%]") == pytest.approx(100 / 3, abs=0.2)
    # Without the structure set's spacing the ROI's own spacing (30 mm) is used: 10x larger.
    assert compute_dvh(s, dose).volume_cc == pytest.approx(9.0, rel=1e-9)


def test_single_plane_takes_the_structure_set_spacing():
    s = on_planes(square(5), (0.0,), "Lesion")
    dvh = compute_dvh(s, linear_grid((0, 0, 0), 7.0), slice_spacing_mm=2.0)
    assert dvh.volume_cc == pytest.approx(100 * 2 / 1000, rel=1e-9)


def test_gap_in_the_middle_of_a_cylinder_is_not_filled():
    # Planes every 3 mm on -45..-15 and 15..45 (11 + 11), nothing between: 30 mm gap.
    zs = np.concatenate((np.arange(-45, -14.9, 3.0), np.arange(15, 45.1, 3.0)))
    xy = circle(10)
    area = even_odd_area([xy])
    s = on_planes(xy, zs, "Cylinder")
    dose = linear_grid((0, 0, 0.1), 20.0)
    truth = area * 22 * 3 / 1000
    for spacing in (None, 3.0):
        dvh = compute_dvh(s, dose, slice_spacing_mm=spacing)
        assert dvh.volume_cc == pytest.approx(truth, rel=1e-9)
        # Nothing of the gap: no dose between 20 - 1.35 and 20 + 1.35 Gy is received.
        assert dvh.volume_at_dose(20 - 1.35) == pytest.approx(truth / 2, rel=1e-3)
        assert dvh.dmax == pytest.approx(20 + 4.65, abs=1e-6)


def test_runs_of_planes_each_get_end_caps_of_half_a_spacing():
    # A run of three planes, an isolated plane and a run of two, structure set every 3 mm:
    # six slabs of 3 mm (each run with end caps of 1.5 mm).
    zs = (0.0, 3.0, 6.0, 40.0, 70.0, 73.0)
    s = on_planes(square(5), zs)
    dose = linear_grid((0, 0, 0), 5.0)
    assert compute_dvh(s, dose, slice_spacing_mm=3.0).volume_cc == \
        pytest.approx(6 * 100 * 3 / 1000, rel=1e-9)
    # Planes every other structure-set plane: each plane is a slab of one structure-set
    # spacing (the planes between were not contoured), as a planning system counts it.
    s = on_planes(square(5), (0.0, 6.0, 12.0, 18.0))
    assert compute_dvh(s, dose, slice_spacing_mm=3.0).volume_cc == \
        pytest.approx(4 * 100 * 3 / 1000, rel=1e-9)


def test_contiguous_structures_are_unchanged():
    # Own spacing 3 mm; structure-set spacings for which its planes are contiguous.
    s = on_planes(circle(10), np.arange(-15, 15.1, 3.0))
    dose = linear_grid((0.05, 0.1, 0.2), 20.0)
    ref = compute_dvh(s, dose)
    for spacing in (3.0, 2.5, 2.0, 5.0):
        d = compute_dvh(s, dose, slice_spacing_mm=spacing)
        assert (d.volume_cc, d.dmin, d.dmax, d.dmean) == \
            (ref.volume_cc, ref.dmin, ref.dmax, ref.dmean)
        assert np.array_equal(d.volumes, ref.volumes)


def test_compute_dvhs_and_union_use_the_structure_set_spacing():
    body = on_planes(circle(60), np.arange(-60, 60.1, 3.0), "BODY", 1)
    helper = on_planes(square(5), (-30.0, 0.0, 30.0), "Helper", 2)
    dose = linear_grid((0, 0, 0), 10.0)
    # From the structures given (the BODY's many 3 mm gaps make the median)...
    dvhs = compute_dvhs([body, helper], dose)
    assert dvhs[1].name == "Helper" and dvhs[1].volume_cc == pytest.approx(0.9, rel=1e-9)
    # ...or given explicitly, as a caller with a selection of the structure set must.
    alone = compute_dvhs([helper], dose, slice_spacing_mm=3.0)
    assert alone[0].volume_cc == pytest.approx(0.9, rel=1e-9)
    other = on_planes(square(5, cx=20), (-30.0, 0.0, 30.0), "Other", 3)
    union = compute_union_dvh([helper, other], dose, slice_spacing_mm=3.0)
    assert union.volume_cc == pytest.approx(1.8, rel=1e-6)


# -- bounded memory and time ----------------------------------------------------------------

@pytest.mark.parametrize("direction", ["x", "diagonal"])
def test_thin_10m_structure_is_bounded(direction):
    # 10 um wide, 10 m long, 20 mm thick (10 planes 2 mm apart): 2 cc. It once tried to
    # allocate 4.7 GiB refining its planes on ever finer lattices.
    length, width = 10_000.0, 0.01
    if direction == "x":
        xy = np.array([[-length / 2, 0], [length / 2, 0], [length / 2, width],
                       [-length / 2, width]])
    else:
        u, n = np.array([1.0, 1.0]) / math.sqrt(2), np.array([-1.0, 1.0]) / math.sqrt(2)
        xy = np.array([-u * length / 2, u * length / 2, u * length / 2 + n * width,
                       -u * length / 2 + n * width])
    s = on_planes(xy, np.arange(-9.0, 9.1, 2.0), "Sliver")
    dose = linear_grid((0.05, 0.1, 0.2), 20.0)
    dvh, peak, seconds = measured(lambda: compute_dvh(s, dose))
    assert not isinstance(dvh, Exception), dvh
    assert peak < PEAK_MB and seconds < SECONDS, (peak, seconds)
    assert dvh.volume_cc == pytest.approx(2.0, rel=1e-6)
    # The covered part (2 % of its length lies inside the 200 mm grid) has sane doses.
    assert 0 < dvh.covered_fraction < 0.05
    assert dvh.dmin <= dvh.dmean <= dvh.dmax
    assert dvh.dmin >= 20 - 0.15 * 100 * math.sqrt(2) - 2 and dvh.dmax <= 20 + 0.15 * 101 + 2


def test_dose_scaled_1e5_is_bounded_and_keeps_relative_accuracy():
    # DoseGridScaling x1e5 made the histogram grow with Dmax / 0.01 Gy (7.6 GB).
    s = on_planes(circle(20), np.arange(-20, 20.1, 2.0))
    dose = linear_grid((0.05, 0.1, 0.2), 20.0)
    ref = compute_dvh(s, dose)
    big = DoseGrid(dose.x, dose.y, dose.z, dose.values * 1e5)
    dvh, peak, seconds = measured(lambda: compute_dvh(s, big))
    assert not isinstance(dvh, Exception), dvh
    assert peak < PEAK_MB and seconds < SECONDS, (peak, seconds)
    assert dvh.doses.size <= MAX_BINS + 4
    assert dvh.bin_width_gy == pytest.approx(dvh.dmax / MAX_BINS)
    assert dvh.dmax == pytest.approx(ref.dmax * 1e5, rel=1e-6)
    for m in ("D95%", "D50%", "D2%", "D0.03cc"):
        assert dvh.metric(m) == pytest.approx(ref.metric(m) * 1e5, rel=2e-4), m


def test_bins_are_001_gy_up_to_200_gy():
    s = on_planes(square(5), np.arange(-4, 4.1, 2.0))
    for d0, width in ((60.0, 0.01), (190.0, 0.01), (400.0, None)):
        dvh = compute_dvh(s, linear_grid((0, 0, 0.1), d0))
        assert dvh.bin_width_gy == pytest.approx(width or dvh.dmax / MAX_BINS)
        assert dvh.doses.size <= MAX_BINS + 4


def test_huge_slabs_and_long_outlines_are_bounded():
    # Two planes 10 m apart (each slab 10 m thick, through every dose plane) and a zigzag
    # outline 50 times longer than the structure is wide.
    dose = linear_grid((0.05, 0.1, 0.2), 20.0, spacing=1.0, extent=60.0)
    slabs = Structure(1, "Slabs", [Contour(0.0, circle(40)), Contour(10_000.0, circle(40))])
    t = np.linspace(0, 1, 20_001)
    x, y = -50 + 100 * t, 40 * np.sin(t * 2 * np.pi * 25)
    zigzag = np.vstack((np.column_stack((x, y)), np.column_stack((x[::-1], y[::-1] + 0.05))))
    wiggle = on_planes(zigzag, np.arange(-10, 10.1, 2.0), "Wiggle")
    for s in (slabs, wiggle):
        dvh, peak, seconds = measured(lambda s=s: compute_dvh(s, dose))
        assert not isinstance(dvh, Exception), dvh
        assert peak < PEAK_MB and seconds < SECONDS, (s.name, peak, seconds)
        assert dvh.dmin <= dvh.dmean <= dvh.dmax


def test_work_caps_hold_when_lowered(monkeypatch):
    # With caps 100x lower, an ordinary structure is sampled more coarsely (and says so), and
    # its DVH stays close to the normal one.
    s = on_planes(circle(30), np.arange(-30, 30.1, 2.0))
    dose = linear_grid((0.05, 0.1, 0.2), 20.0)
    ref = compute_dvh(s, dose)
    monkeypatch.setattr(limits, "MAX_SAMPLE_PAIRS", 20_000)
    monkeypatch.setattr(limits, "MAX_BOUNDARY_PAIRS", 5_000)
    monkeypatch.setattr(limits, "CHUNK_PAIRS", 1_000)
    monkeypatch.setattr(limits, "GROUP_EDGES", 2_000)
    low = compute_dvh(s, dose)
    assert low.step_mm > ref.step_mm
    assert any("sampled every" in w for w in low.warnings)
    assert any("Dmax and Dmin searched on contour" in w for w in low.warnings)
    assert low.volume_cc == pytest.approx(ref.volume_cc, rel=1e-12)
    assert low.dmean == pytest.approx(ref.dmean, abs=0.02)
    for m in ("D98%", "D50%", "D2%"):
        assert low.metric(m) == pytest.approx(ref.metric(m), abs=0.1), m


def test_grouped_planes_give_the_same_dvh(monkeypatch):
    # Planes processed in groups (memory bounded by the largest plane, not the structure):
    # the same samples, so the same DVH up to rounding.
    s = on_planes(circle(25, 720), np.arange(-30, 30.1, 1.0))
    dose = linear_grid((0.05, 0.1, 0.2), 20.0)
    ref = compute_dvh(s, dose)
    monkeypatch.setattr(limits, "GROUP_EDGES", 3_000)
    grouped = compute_dvh(s, dose)
    assert grouped.dmax == ref.dmax and grouped.dmin == ref.dmin
    assert grouped.dmean == pytest.approx(ref.dmean, rel=1e-12)
    assert np.allclose(grouped.volumes, ref.volumes, rtol=0, atol=1e-9)


# -- refused clearly ------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e39])
def test_non_finite_dose_is_refused_naming_the_structure(bad):
    s = on_planes(square(5), (0.0, 2.0), "Cord")
    dose = linear_grid((0, 0, 0), 10.0)
    dose.values[3, 4, 5] = bad
    with pytest.raises(DVHInputError, match="'Cord'.*not finite") as info:
        compute_dvh(s, dose)
    assert isinstance(info.value, InputError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("bad", [np.nan, 2e6])
def test_unusable_coordinates_are_refused_naming_the_structure(bad):
    xy = square(5)
    xy[2, 0] = bad
    s = on_planes(xy, (0.0, 2.0), "Cord")
    with pytest.raises(DVHInputError, match="'Cord'.*coordinates"):
        compute_dvh(s, linear_grid((0, 0, 0), 10.0))
