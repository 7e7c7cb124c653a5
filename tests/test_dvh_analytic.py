"""The DVH engine against analytical phantoms built in memory (closed-form truth).

Tolerance, as in the project's goal: max(1 % of the true value, 0.1 Gy) for doses,
1 % for volumes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from rtcheck.dvh import compute_dvh, even_odd_area, parse_metric
from rtcheck.errors import MetricError
from rtcheck.model import Contour, DoseGrid, Structure


def within(value: float, truth: float, rel: float = 0.01, abs_gy: float = 0.1) -> bool:
    return abs(value - truth) <= max(rel * abs(truth), abs_gy)


def circle(cx: float, cy: float, r: float, n: int = 360) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.column_stack((cx + r * np.cos(t), cy + r * np.sin(t)))


def rectangle(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=float)


def linear_grid(gradient: tuple[float, float, float], d0: float, spacing: float = 1.0,
                extent: float = 40.0, origin_shift: tuple[float, float, float] = (0, 0, 0)
                ) -> DoseGrid:
    """Dose d0 + g . r on a regular grid; trilinear interpolation of it is exact."""
    axes = [np.arange(-extent, extent + 1e-9, spacing) + s for s in origin_shift]
    z, y, x = np.meshgrid(axes[2], axes[1], axes[0], indexing="ij")
    values = d0 + gradient[0] * x + gradient[1] * y + gradient[2] * z
    return DoseGrid(axes[0], axes[1], axes[2], values)


def prism(xy: np.ndarray, zs: np.ndarray, name: str = "S") -> Structure:
    return Structure(1, name, [Contour(float(z), xy) for z in zs])


# -- box in a gradient along z: exact end caps --------------------------------------------

def test_box_end_caps_and_uniform_dvh():
    # Planes every 2 mm from -10 to 10: slabs reach -11..11 mm (end caps of half a spacing).
    box = prism(rectangle(-5, -5, 5, 5), np.arange(-10, 10.01, 2.0))
    dose = linear_grid((0, 0, 0.5), 20.0, spacing=2.5)  # 0.5 Gy/mm along z
    dvh = compute_dvh(box, dose)
    assert dvh.volume_cc == pytest.approx(10 * 10 * 22 / 1000, rel=1e-9)
    assert dvh.dmin == pytest.approx(20 - 5.5, abs=1e-6)
    assert dvh.dmax == pytest.approx(20 + 5.5, abs=1e-6)
    assert dvh.dmean == pytest.approx(20.0, abs=1e-6)
    # Dose is uniform on [14.5, 25.5]: Dx% = 25.5 - 11 x / 100.
    for pct in (1, 5, 50, 95, 99):
        assert dvh.metric(f"D{pct}%[Gy]") == pytest.approx(25.5 - 11 * pct / 100, abs=0.02)
    assert dvh.metric("V20Gy[%]") == pytest.approx(50.0, abs=0.2)
    assert dvh.metric("V20Gy[cc]") == pytest.approx(1.1, abs=0.005)
    assert dvh.metric("CV20Gy[cc]") == pytest.approx(1.1, abs=0.005)
    assert dvh.metric("DC5%[Gy]") == pytest.approx(14.5 + 11 * 0.05, abs=0.02)
    assert dvh.metric("D0.22cc") == pytest.approx(25.5 - 11 * 0.1, abs=0.02)
    assert dvh.covered_fraction == pytest.approx(1.0)
    assert dvh.warnings == []


# -- sphere in an in-plane gradient: spherical-cap truth ----------------------------------

def sphere_truth_dose_at_fraction(frac_hot: float, radius: float, d0: float, g: float) -> float:
    """Dose above which ``frac_hot`` of a sphere lies, gradient g along one axis."""
    vol = 4 / 3 * math.pi * radius**3

    def cap(t: float) -> float:  # volume of the sphere above the plane at t
        return math.pi * (radius - t) ** 2 * (2 * radius + t) / 3

    lo, hi = -radius, radius
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if cap(mid) > frac_hot * vol:
            lo = mid
        else:
            hi = mid
    return d0 + g * 0.5 * (lo + hi)


def sphere(radius: float, spacing: float, cx: float = 0.0, cy: float = 0.0) -> Structure:
    zs = np.arange(-radius + spacing / 2, radius, spacing)  # plane centres fill the sphere
    contours = [Contour(float(z), circle(cx, cy, math.sqrt(radius**2 - z**2)))
                for z in zs]
    return Structure(1, "Sphere", contours)


@pytest.mark.parametrize("shift", [(0, 0, 0), (0.37, 0.61, 0.23), (0.5, 0.5, 0.5)])
def test_sphere_in_plane_gradient_matches_closed_form(shift):
    radius, d0, g = 12.0, 16.0, 1.0  # 4..28 Gy across the sphere, like the Nelms data
    s = sphere(radius, 0.5)
    dvh = compute_dvh(s, linear_grid((0, g, 0), d0, spacing=2.0, origin_shift=shift))
    # Slab geometry of a sphere with planes 0.5 mm apart: within 0.1 % of the true volume.
    assert dvh.volume_cc == pytest.approx(4 / 3 * math.pi * radius**3 / 1000, rel=2e-3)
    assert within(dvh.dmax, 28.0) and within(dvh.dmin, 4.0)
    assert dvh.dmean == pytest.approx(16.0, abs=0.02)
    for pct in (1, 5, 95, 99):
        truth = sphere_truth_dose_at_fraction(pct / 100, radius, d0, g)
        assert within(dvh.metric(f"D{pct}%"), truth), pct
    truth_near_max = sphere_truth_dose_at_fraction(30.0 / (4 / 3 * math.pi * radius**3),
                                                   radius, d0, g)
    assert within(dvh.metric("D0.03cc[Gy]"), truth_near_max)


def test_dmax_does_not_depend_on_voxel_positions():
    s = sphere(6.0, 1.0)
    maxima = []
    for shift in np.linspace(0, 2.5, 6):
        dose = linear_grid((0.3, 0.8, 0), 10.0, spacing=2.5, origin_shift=(shift, shift, 0))
        maxima.append(compute_dvh(s, dose).dmax)
    # The boundary point of the widest plane (z = +-0.5 mm) in the gradient direction.
    r_widest = math.sqrt(36 - 0.25)
    assert np.allclose(maxima, 10 + r_widest * math.hypot(0.3, 0.8), atol=0.005)


# -- a thin cord in a steep gradient: the near-maximum that decides a verdict -------------

def test_cord_near_maximum_in_steep_gradient():
    r, length = 5.0, 60.0  # spinal cord: 10 mm diameter, 6 cm
    cord = prism(circle(0, 0, r), np.arange(-length / 2 + 1.5, length / 2, 3.0), "SpinalCord")
    g, d0 = 2.0, 14.0  # 2 Gy/mm across the cord (steep SBRT fall-off), 14 Gy on its axis
    dvh = compute_dvh(cord, linear_grid((0, g, 0), d0, spacing=2.5))
    assert dvh.volume_cc == pytest.approx(math.pi * r * r * length / 1000, rel=1e-3)
    assert dvh.dmax == pytest.approx(d0 + g * r, abs=0.01)

    # D0.03cc: the circular segment above y = t holding 30 mm3 over the cord's length.
    def segment(t: float) -> float:
        return r * r * math.acos(t / r) - t * math.sqrt(r * r - t * t)

    lo, hi = 0.0, r
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if segment(mid) * length > 30.0 else (lo, mid)
    truth = d0 + g * lo
    assert within(dvh.metric("D0.03cc"), truth, abs_gy=0.05)


# -- holes, coverage, small and degenerate structures -------------------------------------

def test_hole_is_subtracted():
    ring = [circle(0, 0, 10), circle(0, 0, 4)]
    assert even_odd_area(ring) == pytest.approx(math.pi * (100 - 16), rel=1e-3)
    s = Structure(1, "Ring", [Contour(float(z), p) for z in (0.0, 2.0, 4.0) for p in ring])
    dvh = compute_dvh(s, linear_grid((0, 0, 0), 5.0))
    assert dvh.volume_cc == pytest.approx(math.pi * 84 * 6 / 1000, rel=1e-3)
    assert dvh.dmin == pytest.approx(5.0) and dvh.dmax == pytest.approx(5.0)


def test_structure_partly_outside_grid_is_flagged():
    # Grid covers x in [-40.5, 40.5] (half a voxel beyond the centres); box spans 20..60 mm.
    box = prism(rectangle(20, -5, 60, 5), np.arange(-4, 4.01, 2.0))
    dvh = compute_dvh(box, linear_grid((0, 0, 0), 10.0, spacing=1.0))
    assert dvh.covered_fraction == pytest.approx(20.5 / 40, rel=1e-2)
    assert not dvh.fully_covered
    assert any("inside the dose grid" in w for w in dvh.warnings)


def test_structure_outside_grid_has_no_dose():
    box = prism(rectangle(100, 100, 110, 110), np.array([0.0, 2.0]))
    dvh = compute_dvh(box, linear_grid((0, 0, 0), 10.0))
    assert dvh.covered_fraction == 0.0 and math.isnan(dvh.dmax)
    assert any("entirely outside" in w for w in dvh.warnings)


def test_tiny_structure_keeps_its_volume():
    tiny = prism(circle(0, 0, 0.05, 16), np.array([0.0]))  # 0.1 mm across
    dvh = compute_dvh(tiny, linear_grid((0, 0, 0), 7.0), slice_spacing_mm=1.0)
    assert dvh.volume_cc == pytest.approx(math.pi * 0.05**2 * 1e-3, rel=0.03)
    assert dvh.dmean == pytest.approx(7.0)


def test_point_and_empty_structures_have_no_dvh():
    with pytest.raises(ValueError, match="point ROI"):
        compute_dvh(Structure(1, "POI", points=np.zeros((1, 3))), linear_grid((0, 0, 0), 1.0))
    with pytest.raises(ValueError, match="empty"):
        compute_dvh(Structure(2, "Areola"), linear_grid((0, 0, 0), 1.0))


def test_dose_at_volume_larger_than_structure_is_nan_not_zero():
    box = prism(rectangle(-5, -5, 5, 5), np.array([0.0, 2.0]))  # 0.4 cc
    dvh = compute_dvh(box, linear_grid((0, 0, 0), 10.0))
    assert math.isnan(dvh.metric("D2cc[Gy]"))


# -- metric names --------------------------------------------------------------------------

@pytest.mark.parametrize("name,kind,value,unit_in,unit_out", [
    ("Max[Gy]", "max", None, None, "Gy"), ("Dmax", "max", None, None, "Gy"),
    ("Min[Gy]", "min", None, None, "Gy"), ("dmean", "mean", None, None, "Gy"),
    ("D0.03cc[Gy]", "D", 0.03, "cc", "Gy"), ("D95%", "D", 95, "%", "Gy"),
    ("D95%[cGy]", "D", 95, "%", "cGy"), ("V20Gy[cc]", "V", 20, "Gy", "cc"),
    ("V2000cGy[%]", "V", 2000, "cGy", "%"), ("DC2%[Gy]", "DC", 2, "%", "Gy"),
    ("CV20Gy[cc]", "CV", 20, "Gy", "cc"),
])
def test_metric_names_parse(name, kind, value, unit_in, unit_out):
    m = parse_metric(name)
    assert (m.kind, m.value, m.input_unit, m.output_unit) == (kind, value, unit_in, unit_out)


@pytest.mark.parametrize("bad", ["D95", "V20Gy", "Dmaximum", "D95%[cc]", "", "X20Gy[cc]"])
def test_bad_metric_names_are_clear_errors(bad):
    with pytest.raises(MetricError, match="metric"):
        parse_metric(bad)
