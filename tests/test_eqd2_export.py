"""``rtcheck eqd2``: the EQD2 dose written as an RTDOSE, read back with rtcheck and pydicom.

Round trip: the file's values match the grid computed in memory within half the
DoseGridScaling step. Independent values: a single course's EQD2 at a node is the closed form
D (D/n + a/b) / (2 + a/b) of the stored physical dose there, with the alpha/beta of the
structure the node lies in (the first given when it lies in several).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from click.testing import CliRunner

from rtcheck import accumulation as acc
from rtcheck import load_plan
from rtcheck.cli import main
from rtcheck.dicom import read_dose

SAMPLES = Path(__file__).resolve().parents[1] / "sample_plans" / "reirradiation"
THIS = SAMPLES / "course2-sbrt-27Gy3"
PRIOR = SAMPLES / "course1-30Gy10"
AB = ["--alpha-beta", "SpinalCord=2", "--alpha-beta", "PTV=10", "--default-alpha-beta", "3"]


def run(*args):
    return CliRunner().invoke(main, ["eqd2", *map(str, args)])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("eqd2") / "RD_EQD2.dcm"
    result = run(THIS, "--prior", PRIOR, *AB, "--output", out)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def this_plan():
    return load_plan(str(THIS))


def test_round_trip_matches_the_grid_in_memory(exported, this_plan):
    prior = load_plan(str(PRIOR))
    ab = acc.AlphaBetaMap(3.0, (("SpinalCord", 2.0), ("PTV", 10.0)))
    structures = {s.name: s for s in this_plan.structure_set.structures}
    memory = acc.accumulate_grid(
        acc.CourseDose("this plan", this_plan.dose, 3),
        [(acc.CourseDose("prior", prior.dose, 10), acc.Mapping(None, "same frame"))], ab,
        structures, this_plan.structure_set.plane_spacing_mm)
    back = read_dose(exported)
    ds = pydicom.dcmread(str(exported))
    step = float(ds.DoseGridScaling)
    assert back.values.shape == memory.grid.values.shape
    assert np.abs(back.values - memory.grid.values).max() <= step / 2 * (1 + 1e-6) + 1e-12
    for axis in "xyz":
        assert getattr(back, axis) == pytest.approx(getattr(this_plan.dose, axis), abs=1e-6)


def test_header(exported, this_plan):
    ds = pydicom.dcmread(str(exported))
    ref = pydicom.dcmread(str(THIS / "RD.dcm"), stop_before_pixels=True)
    assert ds.Modality == "RTDOSE" and ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.481.2"
    assert ds.SOPInstanceUID != ref.SOPInstanceUID
    assert ds.SeriesInstanceUID != ref.SeriesInstanceUID
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.FrameOfReferenceUID == ref.FrameOfReferenceUID
    assert ds.StudyInstanceUID == ref.StudyInstanceUID and ds.PatientID == ref.PatientID
    assert (ds.DoseType, ds.DoseSummationType, ds.DoseUnits) == ("EFFECTIVE", "PLAN", "GY")
    assert ds.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID == this_plan.plan.uid
    assert len(ds.DoseComment) <= 64 and ds.DoseComment.startswith("EQD2 LQ")
    comment = ds.ImageComments
    for words in ("EQD2 (LQ", "SpinalCord 2 Gy > PTV 10 Gy; elsewhere 3 Gy", "3 fx",
                  "10 fx (same FrameOfReferenceUID)"):
        assert words in comment


def eqd2_hand(d, n, ab):
    return d * (d / n + ab) / (2 + ab)


def test_single_course_values_are_the_closed_form(tmp_path, this_plan):
    out = tmp_path / "RD.dcm"
    assert run(THIS, *AB, "-o", out).exit_code == 0
    back = read_dose(out)
    physical = this_plan.dose.values
    step = float(pydicom.dcmread(str(out)).DoseGridScaling)
    # nodes: the cord's centre line (cord and not PTV), the vertebral body centre (PTV), a
    # corner of the grid (neither); the anatomy is sample_plans/README.md's
    def node(x, y, z):
        g = this_plan.dose
        return (int(np.argmin(abs(g.z - z))), int(np.argmin(abs(g.y - y))),
                int(np.argmin(abs(g.x - x))))
    for where, ab in ((node(5.0, 70.5, -310.0), 2.0), (node(5.0, 45.0, -310.0), 10.0),
                      ((0, 0, 0), 3.0)):
        assert back.values[where] == pytest.approx(eqd2_hand(physical[where], 3, ab),
                                                   abs=step)


def test_recovery_is_off_by_default_and_stated_when_used(tmp_path, exported):
    # the prior's last fraction (treatment records) is 11 whole months before this plan's
    # date (README: interval 11.54 months): Nieder's assumption counts it 75 %
    out = tmp_path / "RD.dcm"
    assert run(THIS, "--prior", PRIOR, *AB, "--recovery", "nieder2006", "-o", out).exit_code == 0
    full, discounted = read_dose(exported).values, read_dose(out).values
    this_only = read_dose(_single(tmp_path)).values
    assert discounted == pytest.approx(this_only + 0.75 * (full - this_only), abs=1e-4)
    comment = pydicom.dcmread(str(out)).ImageComments
    assert "weight 0.75" in comment and "Nieder" in comment and "11 months" in comment
    assert "weight" not in pydicom.dcmread(str(exported)).ImageComments


def _single(tmp_path):
    out = tmp_path / "single.dcm"
    assert run(THIS, *AB, "-o", out).exit_code == 0
    return out


@pytest.mark.parametrize("args, needle", [
    ((), "--default-alpha-beta"),
    (("--default-alpha-beta", "3", "--alpha-beta", "Nope=2"), "no structure named Nope"),
    (("--default-alpha-beta", "0"), "must be a number > 0"),
])
def test_bad_input_is_one_line(tmp_path, args, needle):
    result = run(THIS, *args, "-o", tmp_path / "x.dcm")
    assert result.exit_code == 2 and needle in result.output
    assert "Traceback" not in result.output and not (tmp_path / "x.dcm").exists()


def test_prior_grid_that_does_not_reach_is_refused_unless_allowed(tmp_path):
    # the sample prior cropped to its upper half along z
    prior = tmp_path / "prior"
    prior.mkdir()
    for f in PRIOR.glob("*.dcm"):
        ds = pydicom.dcmread(str(f))
        if ds.Modality == "RTDOSE":
            keep = ds.NumberOfFrames // 2
            frame = ds.Rows * ds.Columns * ds.BitsAllocated // 8
            ds.PixelData = ds.PixelData[-keep * frame:]
            offsets = [float(v) for v in ds.GridFrameOffsetVector][-keep:]
            z0 = float(ds.ImagePositionPatient[2]) + offsets[0]
            ds.ImagePositionPatient = [*ds.ImagePositionPatient[:2], z0]
            ds.GridFrameOffsetVector = [o - offsets[0] for o in offsets]
            ds.NumberOfFrames = keep
        ds.save_as(str(prior / f.name))
    refused = run(THIS, "--prior", prior, *AB, "-o", tmp_path / "a.dcm")
    assert refused.exit_code == 2 and "--allow-uncovered" in refused.output
    allowed = run(THIS, "--prior", prior, *AB, "--allow-uncovered", "-o", tmp_path / "b.dcm")
    assert allowed.exit_code == 0, allowed.output
    assert "written as 0 (unknown)" in pydicom.dcmread(str(tmp_path / "b.dcm")).ImageComments


def test_output_never_replaces_an_input_file(tmp_path):
    import shutil

    plan = tmp_path / "plan"
    shutil.copytree(THIS, plan)
    before = {p.name: p.read_bytes() for p in plan.iterdir()}
    for f in plan.iterdir():
        if pydicom.dcmread(f, stop_before_pixels=True).Modality == "RTDOSE":
            res = run(plan, *AB, "-o", f)
            assert res.exit_code == 2 and "one of the input files" in res.output
    assert {p.name: p.read_bytes() for p in plan.iterdir()} == before


def test_an_exported_eqd2_dose_is_never_checked_as_a_physical_dose(tmp_path, exported):
    # DoseType EFFECTIVE with rtcheck's comment: reading it as Gy would convert twice
    import shutil

    plan = tmp_path / "plan"
    shutil.copytree(THIS, plan)
    for f in plan.iterdir():
        if pydicom.dcmread(f, stop_before_pixels=True).Modality == "RTDOSE":
            shutil.copy(exported, f)
    data = load_plan(str(plan))
    assert any("written by rtcheck eqd2" in p for p in data.dose.problems)
