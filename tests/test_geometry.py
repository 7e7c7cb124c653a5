"""Contour distances and diameters (rtcheck.geometry) on analytic shapes at known distances."""

from __future__ import annotations

import math

import numpy as np
import pytest
from support.phantoms import circle, cylinder, planes, rectangle, sphere, structure

from rtcheck.geometry import Distance, largest_diameter_mm, region_distance_2d
from rtcheck.geometry import min_distance_mm as _min_distance


def min_distance_mm(a, b) -> Distance:
    d = _min_distance(a, b)
    assert d is not None
    return d


def square(cx: float, cy: float, half: float) -> np.ndarray:
    return rectangle(cx - half, cy - half, cx + half, cy + half)


def test_squares_on_one_plane_are_their_gap_apart():
    a = structure("A", [(0.0, square(0, 0, 5))])
    b = structure("B", [(0.0, square(17, 0, 5))])  # edges at x = 5 and x = 12
    d = min_distance_mm(a, b)
    assert d.mm == pytest.approx(7.0, abs=1e-12)
    assert d.dz_mm == 0.0


def test_squares_on_different_planes_combine_in_plane_and_z_gaps():
    a = structure("A", [(0.0, square(0, 0, 5))])
    b = structure("B", [(3.0, square(14, 0, 5))])  # 4 mm in plane, 3 mm in z
    d = min_distance_mm(a, b)
    assert d.mm == pytest.approx(5.0, abs=1e-12)
    assert (d.in_plane_mm, d.dz_mm) == pytest.approx((4.0, 3.0))


def test_corner_to_corner_diagonal():
    a = structure("A", [(0.0, square(0, 0, 1))])
    b = structure("B", [(0.0, square(5, 6, 1))])  # corners (1, 1) and (4, 5)
    assert min_distance_mm(a, b).mm == pytest.approx(5.0, abs=1e-12)


def test_overlap_is_zero_even_without_a_vertex_inside():
    # a cross: two thin rectangles whose edges cross, no vertex of one inside the other
    a = structure("A", [(0.0, rectangle(-10, -1, 10, 1))])
    b = structure("B", [(0.0, rectangle(-1, -10, 1, 10))])
    assert min_distance_mm(a, b).mm == 0.0
    inner = structure("C", [(0.0, square(0, 0, 1))])
    outer = structure("D", [(0.0, square(0, 0, 8))])
    assert min_distance_mm(inner, outer).mm == 0.0


def test_a_region_inside_a_hole_is_as_far_as_the_hole_edge():
    ring = structure("ring", [(0.0, square(0, 0, 20)), (0.0, square(0, 0, 10))])  # even-odd hole
    core = structure("core", [(0.0, square(0, 0, 2))])
    assert min_distance_mm(core, ring).mm == pytest.approx(8.0, abs=1e-12)


def test_sphere_to_cylinder_exact_for_the_polygons():
    # GTV: sphere r 9 mm at the origin; cord: cylinder r 5 mm along z at y = 25. Analytic
    # surface gap 25 - 9 - 5 = 11 mm; 64-vertex polygons have vertices on the y axis.
    zs = planes(-20, 20, 2)
    gtv = structure("GTV", sphere(0, 0, 0, 9, zs))
    cord = structure("Cord", cylinder(0, 25, 5, zs))
    d = min_distance_mm(gtv, cord)
    assert d.mm == pytest.approx(11.0, abs=1e-9)
    assert (d.z_from, d.z_to) == (0.0, 0.0)


def test_sphere_between_planes_is_measured_as_contoured():
    # centre at z = 1 mm, planes every 2 mm: the largest circle drawn is at z = 0 or 2 with
    # radius sqrt(81 - 1); the distance is exact for those circles, and within half a plane
    # spacing of the true sphere's 11 mm.
    zs = planes(-20, 20, 2)
    gtv = structure("GTV", sphere(0, 0, 1, 9, zs))
    cord = structure("Cord", cylinder(0, 25, 5, zs))
    d = min_distance_mm(gtv, cord)
    assert d.mm == pytest.approx(25 - 5 - math.sqrt(80), abs=1e-9)
    assert abs(d.mm - 11.0) < 1.0


def test_cord_ending_above_the_target_counts_the_gap_between_slabs():
    # planes 6 mm apart; each plane is a slab of +- 1 mm (half the 2 mm spacing), as in the
    # DVH engine: the GTV reaches z = 11, the cord starts at z = 15
    gtv = structure("GTV", cylinder(0, 0, 5, planes(-10, 10, 2)))
    cord = structure("Cord", cylinder(0, 0, 5, planes(16, 40, 2)))  # same axis
    d = min_distance_mm(gtv, cord)
    assert d.mm == pytest.approx(4.0, abs=1e-12)
    assert (d.in_plane_mm, d.dz_mm) == pytest.approx((0.0, 4.0))


def test_interleaved_planes_add_no_z_gap():
    # GTV on even planes, cord on odd planes (2 mm spacing, offset 1 mm), the cylinders'
    # surfaces 4.97 mm apart in plane: the slabs overlap in z, the distance is 4.97 mm (not
    # sqrt(4.97**2 + 1) = 5.07 mm, which would pass the "< 5 mm" criterion)
    gtv = structure("GTV", cylinder(0, 0, 5, planes(-10, 10, 2)))
    cord = structure("Cord", cylinder(0, 5 + 4.97 + 5, 5, planes(-9, 11, 2)))
    d = min_distance_mm(gtv, cord)
    assert d.mm == pytest.approx(4.97, abs=1e-9)
    assert d.dz_mm == 0.0


def test_gtv_inside_the_thecal_sac_on_other_planes_is_zero():
    gtv = structure("GTV", cylinder(0, 0, 3, planes(-10, 10, 2)))
    sac = structure("ThecalSac", cylinder(0, 0, 8, planes(-9, 11, 2)))
    assert min_distance_mm(gtv, sac).mm == 0.0


def test_single_planes_take_the_structure_set_spacing():
    # one plane each, 2 mm apart: with a 2 mm structure-set spacing the slabs touch (0 gap)
    a = structure("A", [(0.0, square(0, 0, 5))])
    b = structure("B", [(2.0, square(14, 0, 5))])  # 4 mm in plane
    assert min_distance_mm(a, b).mm == pytest.approx(math.hypot(4.0, 2.0), abs=1e-12)
    d = _min_distance(a, b, slice_spacing_mm=2.0)
    assert d is not None and d.mm == pytest.approx(4.0, abs=1e-12)
    d = _min_distance(a, b, slice_spacing_mm=1.0)  # slabs +- 0.5 mm: 1 mm apart
    assert d is not None and d.mm == pytest.approx(math.hypot(4.0, 1.0), abs=1e-12)


def test_no_contours_is_none():
    assert _min_distance(structure("A", []), structure("B", [(0.0, square(0, 0, 1))])) is None
    assert largest_diameter_mm(structure("A", [])) is None


def test_distance_agrees_with_dense_sampling_of_random_polygons():
    # independent truth: the regions' boundaries sampled every 0.01 mm; both regions are
    # convex and disjoint here, so the closest points lie on the boundaries
    rng = np.random.default_rng(7)
    for _ in range(5):
        a = circle(0, 0, 6, n=7) + rng.normal(0, 0.3, (7, 2))
        b = circle(20, rng.uniform(-5, 5), 5, n=9) + rng.normal(0, 0.3, (9, 2))
        exact = region_distance_2d([a], [b])
        sa, sb = _boundary(a), _boundary(b)
        sampled = min(np.sqrt(((sa[i:i + 500, None] - sb[None]) ** 2).sum(axis=2)).min()
                      for i in range(0, len(sa), 500))
        assert exact <= sampled + 1e-9
        assert sampled - exact < 0.01


def _boundary(poly: np.ndarray, step: float = 0.01) -> np.ndarray:
    out = []
    for p, q in zip(poly, np.roll(poly, -1, axis=0)):
        n = max(2, int(np.linalg.norm(q - p) / step))
        t = np.linspace(0, 1, n, endpoint=False)[:, None]
        out.append(p + t * (q - p))
    return np.concatenate(out)


def test_sphere_diameter():
    zs = planes(-20, 20, 1)
    assert largest_diameter_mm(structure("GTV", sphere(0, 0, 0, 9, zs))) == \
        pytest.approx(18.0, abs=1e-9)


def test_box_diameter_is_its_space_diagonal():
    box = structure("GTV", [(z, rectangle(0, 0, 10, 20)) for z in planes(0, 30, 3)])
    assert largest_diameter_mm(box) == pytest.approx(math.sqrt(10**2 + 20**2 + 30**2), abs=1e-9)


def test_diameter_agrees_with_all_vertex_pairs():
    rng = np.random.default_rng(3)
    contours = [(float(z), rng.normal(0, 10, (12, 2))) for z in planes(0, 8, 2)]
    pts = np.concatenate([np.column_stack([xy, np.full(len(xy), z)]) for z, xy in contours])
    brute = math.sqrt(((pts[:, None] - pts[None]) ** 2).sum(axis=2).max())
    assert largest_diameter_mm(structure("G", contours)) == pytest.approx(brute, abs=1e-9)


def test_the_pruned_search_is_the_exhaustive_one():
    """The best-first search over plane pairs gives what trying every pair gives: the
    smallest distance and, among pairs at that distance (extruded shapes tie on every
    plane), the one with the smallest z gap, then the nearest planes, then the first."""
    from rtcheck.geometry import planes_of

    rng = np.random.default_rng(11)
    for k in range(120):
        za = planes(rng.uniform(-20, 0), rng.uniform(1, 20), float(rng.choice([1.0, 2.5, 3.0])))
        zb = planes(rng.uniform(-20, 0), rng.uniform(1, 20), float(rng.choice([1.0, 2.0, 3.0])))
        if k % 2:
            a = structure("a", cylinder(rng.uniform(-5, 5), rng.uniform(-5, 5),
                                        rng.uniform(1, 6), za, n=int(rng.integers(6, 30))))
        else:
            x0, x1 = sorted(rng.uniform(-8, 8, 2))
            a = structure("a", [(z, rectangle(x0, -3, x1, 4)) for z in za])
        b = structure("b", cylinder(rng.uniform(-15, 15), rng.uniform(-15, 15),
                                    rng.uniform(1, 5), zb, n=int(rng.integers(6, 30))), 2)
        spacing = float(rng.choice([2.0, 3.0]))
        pa, pb = planes_of(a, spacing), planes_of(b, spacing)
        every = []
        for i, p in enumerate(pa):
            for j, q in enumerate(pb):
                d = region_distance_2d(p.polygons, q.polygons)
                dz = p.z_gap(q)
                every.append((math.hypot(dz, d), dz, abs(p.z - q.z), i, j, d))
        total, dz, _, i, j, d = min(every)
        found = _min_distance(a, b, spacing)
        assert found == Distance(total, d, dz, pa[i].z, pb[j].z)
