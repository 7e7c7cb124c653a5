"""Voxel-wise EQD2 accumulation across courses, against closed forms.

The phantom: a cord, a cylinder of radius 5 mm along z (planes every 2 mm from -30 to 30, so
its slabs reach +-31 mm), and two courses whose doses are piecewise linear with their kinks on
grid nodes, so that trilinear interpolation reproduces them exactly:

- this course, 3 fractions: a(x, z) = (1 + 0.02 x) * max(0, 15 - 0.5 |z - 10|), peak at z = 10;
- the prior, 10 fractions: b(z) = max(0, 31 - 0.5 |z + 10|), peak at z = -10.

EQD2 at alpha/beta 2: E(D, n) = D (D/n + 2) / 4. On the cord (x <= 5: a <= 16.5):

- sum of maxima: E(16.5, 3) + E(31, 10) = 30.9375 + 39.525 = 70.4625 Gy;
- voxel-wise: between the peaks the sum is convex in z, so its maximum is at an end, z = 10
  (x = 5): E(16.5, 3) + E(21, 10) = 30.9375 + 21.525 = 52.4625 Gy, this course's share
  30.9375 / 52.4625;
- envelope within 2.5 mm: the grid node x = 7 (2 mm outside the cord): a = 15 * 1.14 = 17.1,
  E(17.1, 3) + E(21, 10) = 32.9175 + 21.525 = 54.4425 Gy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from click.testing import CliRunner
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from support.phantoms import cylinder, structure

from rtcheck import check, load_plan
from rtcheck.accumulation import (
    AlphaBetaMap,
    CourseDose,
    Mapping,
    accumulate_grid,
    convert,
    mapping,
    organ_sum,
    read_registration,
)
from rtcheck.accumulation.registration import REG_SOP_CLASS
from rtcheck.cli import main
from rtcheck.errors import InputError
from rtcheck.model import DoseGrid

CURRENT_FOR = "1.2.826.0.1.3680043.10.999.1"
PRIOR_FOR = "1.2.826.0.1.3680043.10.999.2"


def E(d, n, ab=2.0):
    return d * (d / n + ab) / (2 + ab)


SUM_OF_MAXIMA = E(16.5, 3) + E(31.0, 10)
VOXEL = E(16.5, 3) + E(21.0, 10)
ENVELOPE = E(17.1, 3) + E(21.0, 10)


def a_dose(x, y, z):
    return (1 + 0.02 * x) * np.maximum(0.0, 15 - 0.5 * np.abs(z - 10))


def b_dose(x, y, z):
    return np.maximum(0.0, 31 - 0.5 * np.abs(z + 10)) + 0 * x


def grid(f, step=(1.0, 1.0, 2.0), lo=(-12.0, -12.0, -40.0), hi=(12.0, 12.0, 40.0),
         shift=(0.0, 0.0, 0.0), frame=CURRENT_FOR) -> DoseGrid:
    """The dose f sampled on a grid; ``shift`` (mm) is the offset of this grid's frame: its
    node at frame coordinate p holds f(p - shift)."""
    axes = [np.arange(lo[i], hi[i] + 1e-9, step[i]) for i in range(3)]
    gz, gy, gx = np.meshgrid(axes[2], axes[1], axes[0], indexing="ij")
    values = f(gx - shift[0], gy - shift[1], gz - shift[2])
    return DoseGrid(x=axes[0], y=axes[1], z=axes[2], values=values,
                    frame_of_reference_uid=frame)


@pytest.fixture(scope="module")
def cord():
    return structure("Cord", cylinder(0.0, 0.0, 5.0, np.arange(-30.0, 30.1, 2.0)))


def courses(prior_grid: DoseGrid):
    return CourseDose("this course", grid(a_dose), 3), CourseDose("prior", prior_grid, 10)


# ------------------------------------------------------------------ organ maximum


def test_maxima_at_different_heights_sum_below_the_sum_of_maxima(cord):
    this, prior = courses(grid(b_dose))
    got = organ_sum([cord], 2.0, this, [(prior, Mapping(None, "same frame"))], 2.0,
                    uncertainty_mm=2.5)
    assert got.code == "evaluated"
    assert got.value == pytest.approx(VOXEL, abs=1e-9)
    assert got.value < SUM_OF_MAXIMA - 17  # 52.46 vs 70.46 Gy
    assert got.point == pytest.approx((5.0, 0.0, 10.0), abs=1e-9)
    assert got.share == pytest.approx(E(16.5, 3) / VOXEL)
    assert got.envelope == pytest.approx(ENVELOPE, abs=1e-9)
    assert [c["value_gy"] for c in got.courses] == pytest.approx([E(16.5, 3), E(21.0, 10)])


def test_grids_of_different_spacing(cord):
    # the prior on a 2 x 3 x 4 mm grid (its kinks at z = -10 and -72 are nodes)
    this, prior = courses(grid(b_dose, step=(2.0, 3.0, 4.0), lo=(-14.0, -15.0, -42.0)))
    got = organ_sum([cord], 2.0, this, [(prior, Mapping(None, "same frame"))], 2.0,
                    uncertainty_mm=2.5)
    assert got.value == pytest.approx(VOXEL, abs=1e-9)
    assert got.envelope == pytest.approx(ENVELOPE, abs=1e-9)


def test_structure_partly_outside_a_prior_grid_is_not_evaluated(cord):
    this, prior = courses(grid(b_dose, lo=(-12.0, -12.0, -20.0)))  # cord reaches z = -31
    got = organ_sum([cord], 2.0, this, [(prior, Mapping(None, "same frame"))], 2.0)
    assert got.code == "not_covered" and got.value is None
    assert "prior's dose grid" in got.reason


def test_envelope_unknown_when_a_grid_stops_at_the_organ(cord):
    # the prior covers the cord (|x| <= 5) but not 2.5 mm around it
    this, prior = courses(grid(b_dose, lo=(-6.0, -6.0, -40.0), hi=(6.0, 6.0, 40.0)))
    got = organ_sum([cord], 2.0, this, [(prior, Mapping(None, "same frame"))], 2.0,
                    uncertainty_mm=2.5)
    assert got.value == pytest.approx(VOXEL, abs=1e-9)
    assert got.envelope is None and "2.5 mm" in got.envelope_reason


def test_bed_sum():
    # BED = D (1 + d / (a/b)): 30 Gy/10 at a/b 2 -> 75 Gy
    assert convert(np.array([30.0]), 10, 2.0, "BED")[0] == pytest.approx(75.0)


# ------------------------------------------------------------------ registration


def write_reg(path, matrices: dict[str, np.ndarray], kind="RIGID", frame=CURRENT_FOR):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = REG_SOP_CLASS
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = REG_SOP_CLASS, ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.FrameOfReferenceUID = "REG", frame
    items = []
    for uid, m in matrices.items():
        mat = Dataset()
        mat.FrameOfReferenceTransformationMatrixType = kind
        mat.FrameOfReferenceTransformationMatrix = [f"{v:.6f}" for v in m.ravel()]
        reg = Dataset()
        reg.MatrixSequence = [mat]
        item = Dataset()
        item.FrameOfReferenceUID = uid
        item.MatrixRegistrationSequence = [reg]
        items.append(item)
    ds.RegistrationSequence = items
    pydicom.dcmwrite(str(path), ds, enforce_file_format=True)
    return path


def translation(t) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = t
    return m


def test_rigid_reg_shift_of_known_mm(cord, tmp_path):
    # the prior was planned on a CT whose frame is shifted by t: an anatomical point at p in
    # this course's frame is at p + t in the prior's; the REG maps prior -> this frame by -t
    t = np.array([3.0, -2.0, 8.0])
    prior_grid = grid(b_dose, shift=t, frame=PRIOR_FOR, lo=(-12.0, -14.0, -32.0),
                      hi=(15.0, 10.0, 48.0))
    reg = read_registration(write_reg(tmp_path / "REG.dcm", {CURRENT_FOR: np.eye(4),
                                                             PRIOR_FOR: translation(-t)}))
    how = mapping(CURRENT_FOR, PRIOR_FOR, [reg])
    assert isinstance(how, Mapping) and how.matrix[:3, 3] == pytest.approx(t)
    this, prior = courses(prior_grid)
    got = organ_sum([cord], 2.0, this, [(prior, how)], 2.0, uncertainty_mm=2.5)
    assert got.value == pytest.approx(VOXEL, abs=1e-9)
    # without the registration the same grid, read in this frame, is off by t
    wrong = organ_sum([cord], 2.0, this, [(prior, Mapping(None, "ignored"))], 2.0)
    assert wrong.value != pytest.approx(VOXEL, abs=1e-3)


def test_rotation_and_its_inverse(tmp_path):
    # a 90 degree rotation about z: the REG's own frame needs no item (identity)
    rot = np.array([[0.0, -1, 0, 5], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    reg = read_registration(write_reg(tmp_path / "R.dcm", {PRIOR_FOR: rot}))
    how = mapping(CURRENT_FOR, PRIOR_FOR, [reg])
    assert how.matrix == pytest.approx(np.linalg.inv(rot))


def test_different_frames_without_registration_are_not_mapped():
    why = mapping(CURRENT_FOR, PRIOR_FOR, [])
    assert isinstance(why, str) and "--registration" in why


@pytest.mark.parametrize("kind, matrix, needle", [
    ("DEFORMABLE", np.eye(4), "only RIGID"),
    ("RIGID", np.diag([2.0, 1, 1, 1]), "not rigid"),
])
def test_non_rigid_registration_is_refused(tmp_path, kind, matrix, needle):
    path = write_reg(tmp_path / "bad.dcm", {PRIOR_FOR: matrix}, kind=kind)
    with pytest.raises(InputError, match=needle) as exc:
        read_registration(path)
    assert str(path) in str(exc.value)


# ------------------------------------------------------------------ whole grid, alpha/beta map


def test_accumulated_grid_nodes_match_the_closed_form(cord):
    this, prior = courses(grid(b_dose, lo=(-12.0, -12.0, -20.0)))
    acc = accumulate_grid(this, [(prior, Mapping(None, "same frame"))],
                          AlphaBetaMap(3.0, (("Cord", 2.0),)), {"Cord": cord}, 2.0)
    g = acc.grid
    k = int(np.searchsorted(g.z, 10.0))
    i, j = int(np.searchsorted(g.x, 5.0)), int(np.searchsorted(g.y, 0.0))
    assert g.values[k, j, i] == pytest.approx(VOXEL)  # inside the cord: alpha/beta 2
    i_out = int(np.searchsorted(g.x, 10.0))          # outside: the default, 3 Gy
    assert g.values[k, j, i_out] == pytest.approx(E(15 * 1.2, 3, 3.0) + E(21.0, 10, 3.0))
    # the prior grid starts at z = -20: every node below is unknown, none above
    assert np.isnan(g.values[g.z < -20]).all() and not np.isnan(g.values[g.z >= -20]).any()
    assert acc.uncovered == int((g.z < -20).sum()) * g.values.shape[1] * g.values.shape[2]
    assert "Cord 2 Gy; elsewhere 3 Gy" in acc.describe()


def test_eqd2_dvh_of_the_accumulated_grid(cord):
    this, prior = courses(grid(b_dose))
    acc = accumulate_grid(this, [(prior, Mapping(None, "same frame"))],
                          AlphaBetaMap(3.0, (("Cord", 2.0),)), {"Cord": cord}, 2.0)
    dvh = acc.dvh(cord, 2.0)
    # the maximum lies on a grid node, (5, 0, 10): the DVH engine reads it there
    assert dvh.dmax == pytest.approx(VOXEL, abs=1e-4)  # the DVH engine works in float32
    assert dvh.volume_cc == pytest.approx(np.pi * 25 * 62 / 1000, rel=0.01)  # r 5, 62 mm
    cropped = accumulate_grid(this, [(courses(grid(b_dose, lo=(-12.0, -12.0, -20.0)))[1],
                                      Mapping(None, "same frame"))],
                              AlphaBetaMap(3.0, (("Cord", 2.0),)), {"Cord": cord}, 2.0)
    assert cropped.dvh(cord, 2.0) is None  # the cord leaves the prior grid


def test_alpha_beta_precedence_first_listed_wins(cord):
    box = structure("Box", [(z, np.array([[-8.0, -8], [8, -8], [8, 8], [-8, 8]]))
                            for z in np.arange(-30.0, 30.1, 2.0)])
    g = grid(a_dose)
    first = AlphaBetaMap(3.0, (("Cord", 2.0), ("Box", 10.0)))
    vol = first.volume({"Cord": cord, "Box": box}, g.x, g.y, g.z, 2.0)
    k = int(np.searchsorted(g.z, 0.0))
    centre, ring, out = (12, 12), (12, 19), (12, 23)  # (j, i): x = 0, 7, 11 mm
    assert [vol[k][p] for p in (centre, ring, out)] == [2.0, 10.0, 3.0]
    swapped = AlphaBetaMap(3.0, (("Box", 10.0), ("Cord", 2.0)))
    assert swapped.volume({"Cord": cord, "Box": box}, g.x, g.y, g.z, 2.0)[k][centre] == 10.0


def test_alpha_beta_map_needs_a_default_and_known_structures(cord):
    with pytest.raises(InputError, match="default alpha/beta"):
        AlphaBetaMap.parse([("Cord", 2.0)], None)
    with pytest.raises(InputError, match="no structure named PTV"):
        AlphaBetaMap(3.0, (("PTV", 10.0),)).volume({"Cord": cord}, *np.zeros((3, 1)), 2.0)


# ------------------------------------------------------------------ in the checker's findings

SAMPLES = Path(__file__).resolve().parents[1] / "sample_plans" / "reirradiation"
VOXEL_RULES = ("reirradiation.cumulative-cord-eqd2", "reirradiation.course-share")


def moved_prior(folder: Path, frame: str = PRIOR_FOR) -> Path:
    """The sample prior course copied with a new FrameOfReferenceUID (as if planned on
    another CT that happens to be aligned with this course's)."""
    shutil.copytree(SAMPLES / "course1-30Gy10", folder)
    old = pydicom.dcmread(str(folder / "RD.dcm")).FrameOfReferenceUID

    def swap(ds, elem):
        if elem.VR == "UI" and elem.value == old:
            elem.value = frame

    for path in folder.glob("*.dcm"):
        ds = pydicom.dcmread(str(path))
        ds.walk(swap)
        ds.save_as(str(path))
    return folder


@pytest.fixture(scope="module")
def this_plan():
    return load_plan(str(SAMPLES / "course2-sbrt-27Gy3"))


def voxel_findings(result):
    return {f.rule: f for f in result.findings if f.rule in VOXEL_RULES}


@pytest.fixture(scope="module")
def same_frame(this_plan):
    prior = load_plan(str(SAMPLES / "course1-30Gy10"))
    return voxel_findings(check(this_plan, priors=[prior], indication="reirradiation",
                                site="spine"))


def test_sample_pair_voxel_sum_is_at_most_the_sum_of_maxima(same_frame):
    for f in same_frame.values():
        d = f.details
        assert d["voxel_code"] == "evaluated" and d["voxel_mapping"] == ["same FrameOfReferenceUID"]
        assert d["voxel_cumulative_eqd2_gy"] <= d["cumulative_eqd2_gy"] + 1e-6
        # each course's voxel value is at most its own maximum
        for part, course in zip(d["voxel_courses"], d["courses"]):
            assert part["value_gy"] <= course["value_gy"] + 1e-6
        assert d["voxel_envelope_eqd2_gy"] >= d["voxel_cumulative_eqd2_gy"]
        assert d["uncertainty_mm"] == 2.0


def test_other_frame_without_registration_is_not_evaluated_voxel_wise(this_plan, same_frame,
                                                                       tmp_path):
    prior = load_plan(str(moved_prior(tmp_path / "prior")))
    got = voxel_findings(check(this_plan, priors=[prior], indication="reirradiation",
                               site="spine"))
    for rule, f in got.items():
        assert f.details["voxel_code"] == "no_registration"
        assert f.details["voxel_cumulative_eqd2_gy"] is None
        assert f.value == pytest.approx(same_frame[rule].value)  # the sum of maxima stands
        assert f.status == same_frame[rule].status


def test_registration_beside_the_prior_or_given(this_plan, same_frame, tmp_path):
    frame = pydicom.dcmread(str(SAMPLES / "course2-sbrt-27Gy3" / "RD.dcm")).FrameOfReferenceUID
    prior_dir = moved_prior(tmp_path / "prior")
    write_reg(prior_dir / "REG.dcm", {frame: np.eye(4), PRIOR_FOR: np.eye(4)}, frame=frame)
    found = voxel_findings(check(this_plan, priors=[load_plan(str(prior_dir))],
                                 indication="reirradiation", site="spine"))
    other = moved_prior(tmp_path / "prior2", frame=PRIOR_FOR + ".7")
    reg = write_reg(tmp_path / "given.dcm", {frame: np.eye(4), PRIOR_FOR + ".7": np.eye(4)},
                    frame=frame)
    given = voxel_findings(check(this_plan, priors=[load_plan(str(other))],
                                 indication="reirradiation", site="spine", registrations=[reg]))
    for got, reg_name in ((found, "REG.dcm"), (given, "given.dcm")):
        for rule, f in got.items():
            assert f.details["voxel_mapping"] == [f"rigid registration {reg_name}"]
            assert f.details["voxel_cumulative_eqd2_gy"] == pytest.approx(
                same_frame[rule].details["voxel_cumulative_eqd2_gy"])


def test_summary_prior_has_no_voxel_sum(this_plan):
    got = voxel_findings(check(this_plan, priors=["30Gy/10 cord_dmax=31Gy sac_dmax=31.5Gy"],
                               indication="reirradiation", site="spine"))
    assert {f.details["voxel_code"] for f in got.values()} == {"no_prior_dose"}


def test_cli_bad_registration_is_one_line(tmp_path):
    bogus = tmp_path / "REG.dcm"
    bogus.write_text("not dicom")
    result = CliRunner().invoke(main, ["check", str(SAMPLES / "course2-sbrt-27Gy3"), "--prior",
                                       str(SAMPLES / "course1-30Gy10"), "--registration",
                                       str(bogus)])
    assert result.exit_code == 2 and str(bogus) in result.output
    assert "Traceback" not in result.output


def test_trilinear_agrees_with_scipy_on_a_random_field():
    # independent reference: scipy.ndimage.map_coordinates (order 1) on a non-linear field,
    # including points on the last node of each axis and a one-plane grid
    from scipy.ndimage import map_coordinates

    from rtcheck.accumulation.resample import trilinear

    rng = np.random.default_rng(7)
    for shape in ((5, 6, 7), (1, 4, 3)):
        values = rng.random(shape) ** 3
        idx = [rng.uniform(0, n - 1, 500) for n in shape]
        for axis, n in zip(idx, shape):
            axis[:3] = n - 1  # on the last node
        want = map_coordinates(values, np.vstack(idx), order=1, mode="nearest")
        np.testing.assert_allclose(trilinear(values, *idx), want, atol=1e-12)
