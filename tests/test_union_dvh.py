"""DVH of the union of several structures (one organ contoured in parts), against closed-form
truth.

Geometry: boxes and cylinders built plane by plane (2 mm apart, so each plane's slab is 2 mm
and the end caps add 1 mm at each end). Dose: linear, D = 20 + 0.5 x Gy (or along z), which
trilinear interpolation reproduces exactly, so every metric has a closed form:

- a region whose volume per mm of x is known gives Dx cc by walking down from the hot side;
- a disc of radius r cut at x = a has the segment area r² acos(a/r) - a sqrt(r² - a²).

Polygons of n = 256 vertices on a circle have the area (n/2) r² sin(2 pi/n), 0.01 % less than
the circle's; the lens where two circles overlap is taken from the circles (1 % tolerance).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from support.synthetic import cylinder, rectangle

from rtcheck.dvh import compute_dvh, compute_union_dvh
from rtcheck.model import Contour, DoseGrid, Structure

ZS = np.arange(-10.0, 10.01, 2.0)  # planes; slabs reach -11..11 mm: 22 mm tall
HEIGHT = 22.0
N = 256  # polygon vertices of the cylinders


def linear_dose(gx: float = 0.5, gz: float = 0.0, d0: float = 20.0) -> DoseGrid:
    """D = d0 + gx x + gz z on a 2 mm grid over -40..40 mm (exact under trilinear interp)."""
    ax = np.arange(-40.0, 40.01, 2.0)
    z, _, x = np.meshgrid(ax, ax, ax, indexing="ij")
    return DoseGrid(ax, ax.copy(), ax.copy(), d0 + gx * x + gz * z)


def box(name: str, x0: float, y0: float, x1: float, y1: float, zs=ZS, number: int = 1
        ) -> Structure:
    xy = rectangle(x0, y0, x1, y1)
    return Structure(number, name, [Contour(float(z), xy) for z in zs])


def cyl(name: str, cx: float, cy: float, r: float, zs=ZS, number: int = 1) -> Structure:
    return Structure(number, name, [Contour(z, xy) for z, xy in cylinder(cx, cy, r, zs, n=N)])


def ngon_area(r: float) -> float:
    return 0.5 * N * r * r * math.sin(2 * math.pi / N)


def segment_area(r: float, a: float) -> float:
    """Area of the part of a disc of radius r beyond the chord at distance a from its centre."""
    return r * r * math.acos(a / r) - a * math.sqrt(r * r - a * a)


def disc_dose_at_volume(r: float, cc: float, d0: float = 20.0, gx: float = 0.5) -> float:
    """Dx cc of a centred cylinder (radius r, HEIGHT tall) in D = d0 + gx x, by bisection."""
    lo, hi = -r, r
    for _ in range(80):
        a = 0.5 * (lo + hi)
        if segment_area(r, a) * HEIGHT / 1000 > cc:
            lo = a
        else:
            hi = a
    return d0 + gx * 0.5 * (lo + hi)


# -- disjoint parts: volumes add, metrics span both -------------------------------------


def test_two_disjoint_boxes():
    # A: x in [-20, -5], B: x in [5, 20], both 20 mm in y: 15 * 20 * 22 = 6600 mm³ = 6.6 cc each,
    # 0.44 cc per mm of x. Dose 20 + 0.5 x: A gets 10-17.5 Gy, B 22.5-30 Gy.
    a, b = box("Jejunum", -20, -10, -5, 10), box("Ileum", 5, -10, 20, 10, number=2)
    dose = linear_dose()
    u = compute_union_dvh([a, b], dose)
    assert u.name == "Jejunum + Ileum"
    assert u.volume_cc == pytest.approx(13.2, rel=1e-9)
    assert u.covered_fraction == pytest.approx(1.0, abs=1e-9)
    assert (u.dmin, u.dmax) == (pytest.approx(10.0, abs=1e-5), pytest.approx(30.0, abs=1e-5))
    assert u.dmean == pytest.approx(20.0, abs=0.01)  # (13.75 + 26.25) / 2
    # D5cc: the hottest 5 cc lie in B, from x = 20 - 5 / 0.44 = 8.636 -> 24.318 Gy.
    assert u.metric("D5cc") == pytest.approx(20 + 0.5 * (20 - 5 / 0.44), abs=0.02)
    # D8cc exists only for the union: all of B (6.6 cc) and the hottest 1.4 cc of A,
    # x = -5 - 1.4 / 0.44 -> 15.909 Gy.
    assert math.isnan(compute_dvh(b, dose).metric("D8cc"))
    assert u.metric("D8cc") == pytest.approx(20 + 0.5 * (-5 - 1.4 / 0.44), abs=0.02)
    assert u.metric("V20Gy[cc]") == pytest.approx(6.6, abs=0.01)


# -- nested parts: the union is the outer one, not outer minus inner --------------------


def test_nested_cylinders_union_is_the_outer_one():
    outer, inner = cyl("Pericardium", 0, 0, 20), cyl("Heart", 0, 0, 8, number=2)
    dose = linear_dose()
    truth_cc = ngon_area(20) * HEIGHT / 1000  # 27.64 cc
    ref = compute_dvh(outer, dose)
    for parts in ([outer, inner], [inner, outer]):
        u = compute_union_dvh(parts, dose, name="heart")
        assert u.name == "heart"
        assert u.volume_cc == pytest.approx(truth_cc, rel=1e-3)
        assert u.dmax == pytest.approx(30.0, abs=1e-5)  # vertex at x = 20
        assert u.dmin == pytest.approx(10.0, abs=1e-3)
        assert u.dmean == pytest.approx(20.0, abs=0.01)
        for cc in (1, 5, 15):
            assert u.metric(f"D{cc}cc") == pytest.approx(disc_dose_at_volume(20, cc), abs=0.05)
            # The union adds no error of its own: it is the outer cylinder's DVH.
            assert u.metric(f"D{cc}cc") == pytest.approx(ref.metric(f"D{cc}cc"), abs=1e-3)
    # Concatenated contours would make the heart a hole (even-odd): outer minus inner.
    both = Structure(3, "concat", outer.contours + inner.contours)
    holed = (ngon_area(20) - ngon_area(8)) * HEIGHT / 1000
    assert compute_dvh(both, dose).volume_cc == pytest.approx(holed, rel=1e-6)
    assert compute_union_dvh([outer, inner], dose).volume_cc > holed * 1.15


# -- overlapping parts: A + B - overlap ---------------------------------------------------


def test_overlapping_cylinders_volume_is_a_plus_b_minus_lens():
    # Discs r = 10 centred at x = -6 and x = +6: lens of the circles
    # 2 r² acos(d / 2r) - (d/2) sqrt(4r² - d²), d = 12.
    r, d = 10.0, 12.0
    lens = 2 * r * r * math.acos(d / (2 * r)) - 0.5 * d * math.sqrt(4 * r * r - d * d)
    truth_cc = (2 * math.pi * r * r - lens) * HEIGHT / 1000
    left, right = cyl("Colon", -6, 0, r), cyl("Sigmoid", 6, 0, r, number=2)
    u = compute_union_dvh([left, right], linear_dose())
    assert u.volume_cc == pytest.approx(truth_cc, rel=0.01)
    assert u.volume_cc == pytest.approx(truth_cc, rel=2e-3)  # what it achieves
    assert u.dmax == pytest.approx(20 + 0.5 * 16, abs=1e-5)
    assert u.dmean == pytest.approx(20.0, abs=0.01)  # symmetric about x = 0


def test_overlapping_boxes_metrics():
    # A = [-10, 5] x [-10, 10], B = [-5, 10] x [-5, 15], overlap [-5, 5] x [-5, 10] (150 mm²):
    # union 300 + 300 - 150 = 450 mm², 9.9 cc. Per mm of x: 20 mm of y for x < -5 and x > 5,
    # 25 mm (y in [-10, 15]) in between.
    a, b = box("A", -10, -10, 5, 10), box("B", -5, -5, 10, 15, number=2)
    u = compute_union_dvh([a, b], linear_dose())
    assert u.volume_cc == pytest.approx(9.9, rel=1e-3)
    # D2cc: x in (5, 10] holds 20 * 22 * 5 = 2.2 cc; 2 cc from x = 10 - 2000 / 440.
    assert u.metric("D2cc") == pytest.approx(20 + 0.5 * (10 - 2000 / 440), abs=0.02)
    # D5cc: 2.2 cc beyond x = 5, then 2.8 cc at 550 mm³/mm: x = 5 - 2800 / 550.
    assert u.metric("D5cc") == pytest.approx(20 + 0.5 * (5 - 2800 / 550), abs=0.02)
    assert u.dmean == pytest.approx(20.0, abs=0.01)
    assert (u.dmin, u.dmax) == (pytest.approx(15.0, abs=1e-5), pytest.approx(25.0, abs=1e-5))


def test_parts_on_different_planes_union_of_slabs():
    # A = [-10, 10]², planes -10..10 (slabs -11..11); B = [0, 20] x [-10, 10], planes -5..15
    # (slabs -6..16). Union: A 8800 + B 8800 - overlap [0, 10] x [-10, 10] x [-6, 11] (3400)
    # = 14200 mm³. Dose along z, 20 + 0.5 z: Dmax on B's top (z = 16), Dmin on A's bottom.
    a = box("A", -10, -10, 10, 10)
    b = box("B", 0, -10, 20, 10, zs=np.arange(-5.0, 15.01, 2.0), number=2)
    u = compute_union_dvh([a, b], linear_dose(gx=0.0, gz=0.5))
    assert u.volume_cc == pytest.approx(14.2, rel=1e-3)
    assert (u.dmin, u.dmax) == (pytest.approx(14.5, abs=1e-5), pytest.approx(28.0, abs=1e-5))
    # Above z = 11 only B (400 mm²) is left, up to z = 16: exactly 2 cc above 25.5 Gy.
    assert u.metric("D2cc") == pytest.approx(20 + 0.5 * 11, abs=0.02)
    # V25Gy (z >= 10): A over [10, 11] (400) + B's x > 10 over [10, 11] (200) + B over
    # (11, 16] (2000) = 2600 mm³.
    assert u.metric("V25Gy[cc]") == pytest.approx(2.6, abs=0.01)


# -- extremes and consistency with compute_dvh -------------------------------------------


def test_union_dmax_is_the_largest_part_dmax():
    # A curved dose with a hot spot inside the larger part and a cold one near the smaller.
    ax = np.arange(-40.0, 40.01, 2.0)
    z, y, x = np.meshgrid(ax, ax, ax, indexing="ij")
    values = 30 * np.exp(-((x - 7) ** 2 + (y - 3) ** 2 + z ** 2) / 150) + 0.1 * x
    dose = DoseGrid(ax, ax.copy(), ax.copy(), values)
    parts = [cyl("Colon", -6, 0, 10), cyl("Sigmoid", 6, 0, 10, number=2),
             box("Rectosigmoid", -3, -15, 3, -5, zs=np.arange(-6.0, 14.01, 2.0), number=3)]
    u = compute_union_dvh(parts, dose)
    singles = [compute_dvh(p, dose) for p in parts]
    assert u.dmax == pytest.approx(max(s.dmax for s in singles), abs=1e-6)
    assert u.dmin == pytest.approx(min(s.dmin for s in singles), abs=1e-6)


def test_single_structure_is_compute_dvh():
    s = cyl("Heart", 2, -3, 12)
    dose = linear_dose(gx=0.3, gz=0.2)
    ref, u = compute_dvh(s, dose), compute_union_dvh([s], dose)
    assert u.name == "Heart"
    assert (u.volume_cc, u.dmin, u.dmax, u.dmean) == (ref.volume_cc, ref.dmin, ref.dmax, ref.dmean)
    assert np.array_equal(u.doses, ref.doses) and np.array_equal(u.volumes, ref.volumes)


def test_identical_parts_count_once():
    s = cyl("Heart", 2, -3, 12)
    copy = Structure(2, "Heart copy", list(s.contours))
    dose = linear_dose(gx=0.3, gz=0.2)
    ref, u = compute_dvh(s, dose), compute_union_dvh([s, copy], dose)
    assert u.volume_cc == pytest.approx(ref.volume_cc, rel=1e-9)
    assert u.dmax == pytest.approx(ref.dmax, abs=1e-6)
    for m in ("D0.03cc", "D2cc", "D50%", "Dmean"):
        assert u.metric(m) == pytest.approx(ref.metric(m), abs=1e-3)


def test_empty_parts_are_left_out_with_a_warning():
    s, empty = box("Colon", -5, -5, 5, 5), Structure(2, "Sigmoid")
    u = compute_union_dvh([s, empty], linear_dose())
    assert u.name == "Colon + Sigmoid"
    assert u.volume_cc == pytest.approx(2.2, rel=1e-9)
    assert any("'Sigmoid' has no closed contour" in w for w in u.warnings)
    with pytest.raises(ValueError, match="no structure with a closed contour"):
        compute_union_dvh([empty], linear_dose())


def test_sliver_beside_a_large_part_is_cheap_and_counted():
    # A 1e-5 mm square beside a 20 mm box: refining the whole layer for the sliver would need
    # billions of samples; the sliver's area still counts (ratio estimate).
    big = box("Colon", -10, -10, 10, 10)
    tiny = box("Sigmoid", 12, 0, 12.00001, 0.00001, number=2)
    u = compute_union_dvh([big, tiny], linear_dose())
    assert u.volume_cc == pytest.approx(8.8 + 22e-13, rel=1e-9)
    assert u.dmax == pytest.approx(26.0, abs=1e-5)  # the sliver's x = 12
    assert u.covered_fraction == pytest.approx(1.0, abs=1e-9)
