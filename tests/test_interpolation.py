"""rtcheck's trilinear dose interpolation against scipy's, on NON-linear fields.

A linear field is reproduced by any interpolator that is exact on planes, whatever its
weights, corner choice or axis order: it cannot show a wrong weight or a swapped corner.
Here the field is a Gaussian (and a sin*cos product) on a grid with uneven z spacing, where
trilinear interpolation differs from the field itself, and the reference is
``scipy.interpolate.RegularGridInterpolator(method="linear")`` (exact trilinear on a
rectilinear grid).

What is compared:

* the DVH engine's interpolator (``rtcheck.dvh.interpolate.Interpolator``), through the
  paths the engine uses: ``xy_weights`` + ``at_faces`` (both of its layouts: slabs of similar
  thickness, and slabs of very different thicknesses crossing many dose planes) and
  ``nodes_at_faces``;
* the resampling used to sum dose grids (``rtcheck.dose.resample``);

at seeded random points inside the grid, at grid nodes, on the grid's outer faces and on the
dose planes. The engine stores the dose as float32, so the fields are rounded to float32
first (both interpolators then see the same node values) and agreement is to 1e-9 relative.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import interpolate  # a dependency, so no importorskip: missing, it must fail

from rtcheck.dose import resample
from rtcheck.dvh import compute_dvh
from rtcheck.dvh.interpolate import Faces, Interpolator
from rtcheck.model import Contour, DoseGrid, Structure

RTOL = 1e-9

# Uniform in-plane spacing (as DICOM requires), uneven frame spacing (GridFrameOffsetVector).
X = -30.0 + 2.5 * np.arange(25)  # -30 .. 30
Y = -20.0 + 2.0 * np.arange(21)  # -20 .. 20
Z = np.array([-21.0, -18.0, -16.5, -12.0, -11.0, -5.0, -2.5, 0.0, 1.0, 4.0, 9.0, 10.5, 17.0])


def gaussian(x, y, z):
    """A Gaussian dose hot spot (2 to 62 Gy), off-centre and anisotropic."""
    return 2.0 + 60.0 * np.exp(-((x - 3.0) ** 2 / 180.0 + (y + 2.0) ** 2 / 90.0
                                 + (z - 1.5) ** 2 / 120.0))


def sincos(x, y, z):
    """A wavy positive field whose wavelengths are a few voxels."""
    return 20.0 + 8.0 * np.sin(x / 7.0 + 0.3) * np.cos(y / 5.0 - 0.2) * np.cos(z / 6.0)


FIELDS = {"gaussian": gaussian, "sincos": sincos}


@pytest.fixture(params=sorted(FIELDS))
def grid(request):
    """(DoseGrid, scipy interpolator, field) of a field sampled at the voxel centres."""
    zz, yy, xx = np.meshgrid(Z, Y, X, indexing="ij")
    # float32-exact values: the engine's float32 copy is then the same data as scipy's.
    values = FIELDS[request.param](xx, yy, zz).astype(np.float32).astype(np.float64)
    dose = DoseGrid(X.copy(), Y.copy(), Z.copy(), values)
    ref = interpolate.RegularGridInterpolator((Z, Y, X), values, method="linear",
                                              bounds_error=True)
    return dose, ref, FIELDS[request.param]


def random_points(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.uniform(X[0], X[-1], n), rng.uniform(Y[0], Y[-1], n),
            rng.uniform(Z[0], Z[-1], n))


def special_points() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid nodes (every one), points on the six outer faces, edges and corners of the grid,
    and points on interior dose planes (z exactly at a frame)."""
    rng = np.random.default_rng(7)
    zz, yy, xx = np.meshgrid(Z, Y, X, indexing="ij")
    xs, ys, zs = [xx.ravel()], [yy.ravel()], [zz.ravel()]
    n = 200
    for axis, bound in [(0, X[0]), (0, X[-1]), (1, Y[0]), (1, Y[-1]), (2, Z[0]), (2, Z[-1])]:
        x, y, z = random_points(n, seed=int(rng.integers(1 << 30)))
        (x, y, z)[axis][:] = bound
        xs.append(x), ys.append(y), zs.append(z)
    x, y, _ = random_points(n, seed=11)
    xs.append(x), ys.append(y), zs.append(rng.choice(Z, n))  # on dose planes
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(zs)


def engine_values(interp: Interpolator, x, y, z_lo, z_hi):
    """The engine's trilinear dose at every face of slabs [z_lo, z_hi] over points (x, y):
    (point index, face z, value), as ``rtcheck.dvh.engine.sample_structure`` computes them."""
    faces = Faces(z_lo, z_hi, interp)
    corners, weights = interp.xy_weights(x, y)
    point, face, values = interp.at_faces(corners, weights, np.arange(x.size), faces)
    assert faces.ok[face].all()
    return point, faces.z[face], values, faces


def rectangle_layout(faces: Faces, n: int) -> bool:
    """Which of at_faces's two layouts it uses (its own test, restated)."""
    count = faces.frames[np.arange(n)]
    return int(count.max()) * n <= 2 * int(count.sum()) + 1024


def test_engine_at_random_points(grid):
    dose, ref, field = grid
    interp = Interpolator(dose)
    x, y, z = random_points(20_000, seed=2026)
    # Zero-thickness slabs: both faces at the point itself.
    point, fz, got, faces = engine_values(interp, x, y, z, z)
    assert rectangle_layout(faces, x.size)
    np.testing.assert_array_equal(fz, z[point])
    np.testing.assert_allclose(got, ref(np.column_stack([z[point], y[point], x[point]])),
                               rtol=RTOL, atol=0)
    # The field is not linear: trilinear interpolation departs from it (so the test bites).
    assert np.max(np.abs(got - field(x[point], y[point], z[point]))) > 0.05


def test_engine_at_nodes_faces_and_dose_planes(grid):
    dose, ref, _ = grid
    interp = Interpolator(dose)
    x, y, z = special_points()
    point, fz, got, _ = engine_values(interp, x, y, z, z)
    want = ref(np.column_stack([fz, y[point], x[point]]))
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=0)
    # At the nodes, the stored values themselves.
    nodes = dose.values.size
    at_node = point < nodes
    np.testing.assert_allclose(got[at_node], dose.values.ravel()[point[at_node]],
                               rtol=RTOL, atol=0)


def test_engine_on_thick_slabs_crossing_dose_planes(grid):
    """Slabs of very different thicknesses (at_faces's second layout): every face, including
    the dose planes inside a slab, against scipy."""
    dose, ref, _ = grid
    interp = Interpolator(dose)
    rng = np.random.default_rng(99)
    n = 5_000
    x, y, _ = random_points(n, seed=5)
    z_lo = rng.uniform(Z[0], Z[-1], n)
    thick = rng.random(n) < 0.02  # a few slabs spanning most of the grid
    span = np.where(thick, rng.uniform(20.0, 38.0, n), rng.uniform(0.0, 0.8, n))
    z_hi = np.minimum(z_lo + span, Z[-1])
    point, fz, got, faces = engine_values(interp, x, y, z_lo, z_hi)
    assert not rectangle_layout(faces, n)
    assert faces.count.max() > 5  # some slabs do cross several dose planes
    np.testing.assert_allclose(got, ref(np.column_stack([fz, y[point], x[point]])),
                               rtol=RTOL, atol=0)


def test_engine_nodes_at_faces(grid):
    dose, ref, _ = grid
    interp = Interpolator(dose)
    rng = np.random.default_rng(3)
    n = 2_000
    flat = rng.integers(0, X.size * Y.size, n)  # in-plane node (j * nx + i)
    z_lo = rng.uniform(Z[0], Z[-1], n)
    z_hi = np.minimum(z_lo + rng.uniform(0.0, 12.0, n), Z[-1])
    faces = Faces(z_lo, z_hi, interp)
    point, face = faces.pairs(np.arange(n))
    got = interp.nodes_at_faces(flat, point, face, faces)
    j, i = np.divmod(flat[point], X.size)
    np.testing.assert_allclose(got, ref(np.column_stack([faces.z[face], Y[j], X[i]])),
                               rtol=RTOL, atol=0)


def test_resample_onto_another_grid(grid):
    """rtcheck.dose.resample (summing grids) on an offset grid with its own uneven z."""
    dose, ref, _ = grid
    rng = np.random.default_rng(11)
    onto_z = np.sort(np.concatenate([rng.uniform(Z[0], Z[-1], 15), Z[[0, 4, -1]]]))
    onto = DoseGrid(np.linspace(X[0], X[-1], 17), np.linspace(Y[0] + 0.3, Y[-1] - 0.7, 13),
                    onto_z, np.zeros((onto_z.size, 13, 17)))
    got = resample(dose, onto)
    zz, yy, xx = np.meshgrid(onto.z, onto.y, onto.x, indexing="ij")
    want = ref(np.column_stack([zz.ravel(), yy.ravel(), xx.ravel()])).reshape(got.shape)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=0)


def test_dvh_dmax_and_dmin_of_a_small_cube_in_the_gaussian():
    """DVH level: a 4 x 4 mm square on 3 planes (slabs -2..4 mm) near the Gaussian's peak.
    Dmax and Dmin are the extremes of the trilinear dose over the structure; scipy finds
    them on a lattice that holds every corner of the structure-cell intersections."""
    zz, yy, xx = np.meshgrid(Z, Y, X, indexing="ij")
    values = gaussian(xx, yy, zz).astype(np.float32).astype(np.float64)
    dose = DoseGrid(X.copy(), Y.copy(), Z.copy(), values)
    ref = interpolate.RegularGridInterpolator((Z, Y, X), values, method="linear")
    square = np.array([[0.6, -3.1], [4.6, -3.1], [4.6, 0.9], [0.6, 0.9]])
    planes = [-1.0, 1.0, 3.0]  # slabs [-2, 4] mm: crossing the dose planes at 0 and 1 mm
    structure = Structure(1, "cube", [Contour(z, square.copy()) for z in planes])
    dvh = compute_dvh(structure, dose)
    g = np.linspace(0.0, 1.0, 81)
    sx = square[0, 0] + 4.0 * g
    sy = square[0, 1] + 4.0 * g
    sz = np.linspace(-2.0, 4.0, 121)
    zz, yy, xx = np.meshgrid(sz, sy, sx, indexing="ij")
    dense = ref(np.column_stack([zz.ravel(), yy.ravel(), xx.ravel()]))
    # Over a box, a multilinear function has its extremes at the box's corners; the lattice
    # (0.05 mm) holds the structure's bounds and every grid line crossing it (x 2.5; y -2, 0;
    # z 0, 1, 4), hence every corner of the pieces "structure within one dose cell".
    assert dvh.metric("Dmax") == pytest.approx(dense.max(), rel=RTOL)
    assert dvh.metric("Dmin") == pytest.approx(dense.min(), rel=RTOL)
    assert dense.max() > 60 and dense.min() < 50  # a non-linear, steep field over it
