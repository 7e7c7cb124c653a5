"""Hostile input, dose classes: doses that must never become a verdict as they stand.

One test per class of issue 10, parametrised over several examples. Each example ends in an
InputError naming the file (exit 2 on the command line) or in a ``DoseGrid.problems`` entry
(the checker's NOT_EVALUATED), never in a silently shifted or rescaled dose.

Classes: implausible dose (and the ``dose_summation`` override), ambiguous objects (one UID
for two contents, a beam with monitor units but BeamDose 0), plan numbers that lie.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from click.testing import CliRunner
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag
from support import synthetic as syn

from rtcheck.cli import main
from rtcheck.dicom import check_dose_plausibility, load_plan, read_dose
from rtcheck.errors import InputError

RX, FRACTIONS = 27.0, 3  # the synthetic SBRT spine plan: 27 Gy in 3 fractions


@pytest.fixture(scope="module")
def sbrt():
    """The objects of the synthetic SBRT spine plan (PLAN dose), built once."""
    return syn.spine_plan("sbrt", seed="hostile-dose")


@pytest.fixture(scope="module")
def sbrt_beams():
    """The same plan with one BEAM dose per beam."""
    return syn.spine_plan("sbrt", seed="hostile-dose", summation="BEAM")


def write(folder: Path, datasets: dict) -> Path:
    with warnings.catch_warnings():  # pydicom warns when writing the invalid values planted
        warnings.simplefilter("ignore")
        syn.write_plan(folder, {k: copy.deepcopy(v) for k, v in datasets.items()})
    return folder


def set_raw(ds, keyword: str, text: str, vr: str) -> None:
    """Store ``text`` as the raw value of ``keyword`` (any bytes, whatever the VR says)."""
    tag = Tag(keyword)
    data = text.encode("latin-1")
    if len(data) % 2:
        data += b" "
    ds[tag] = RawDataElement(tag, vr, len(data), data, 0, False, True)


def cli(*args: str):
    return CliRunner().invoke(main, list(map(str, args)))


def assert_exit_2(result, *names: str) -> str:
    assert result.exit_code == 2, result.output
    err = result.stderr
    assert "Traceback" not in result.output + err
    assert err.startswith("rtcheck: error: ") and len(err.strip().splitlines()) >= 1
    for name in names:
        assert name in err
    return err


# --------------------------------------------------------------------------------------
# Implausible dose
# --------------------------------------------------------------------------------------

def _relabel(summation: str):
    def mutate(objs):
        objs["RD"].DoseSummationType = summation
    return mutate


def _scale(factor: float):
    def mutate(objs):
        rd = objs["RD"]
        rd.DoseGridScaling = f"{float(rd.DoseGridScaling) * factor:.9e}"
    return mutate


def _dose_type(kind: str):
    def mutate(objs):
        objs["RD"].DoseType = kind
    return mutate


IMPLAUSIBLE = {
    # Pinnacle: the whole course labelled FRACTION, multiplied by 3 fractions.
    "whole course labelled FRACTION": (_relabel("FRACTION"), r"multiplied by 3 fractions",
                                       "PLAN"),
    # One fraction labelled PLAN: 1/3 of the course.
    "one fraction labelled PLAN": (_scale(1 / FRACTIONS), r"per-fraction dose labelled PLAN",
                                   "FRACTION"),
    # A grid scaled to cGy while DoseUnits says GY.
    "cGy labelled GY": (_scale(100.0), r"cGy", None),
    # A tenth of the dose (no summation explains it).
    "a tenth": (_scale(0.1), r"does not belong to this plan", None),
    # An error dose (difference between two doses).
    "DoseType ERROR": (_dose_type("ERROR"), r"DoseType ERROR", None),
}


@pytest.mark.parametrize("case", list(IMPLAUSIBLE))
def test_implausible_dose_is_a_problem_with_its_numbers(tmp_path, sbrt, case):
    mutate, reason, fix = IMPLAUSIBLE[case]
    objs = copy.deepcopy(sbrt)
    mutate(objs)
    folder = write(tmp_path, objs)
    data = load_plan(folder)
    problems = data.dose.problems
    assert len(problems) == 1 and re.search(reason, problems[0]), problems
    if case != "DoseType ERROR":  # the numbers: dose maximum, factor, prescription
        dmax = float(data.dose.values.max())
        assert f"dose maximum {dmax:.4g} Gy" in problems[0]
        assert f"{dmax / RX:.3g} x the plan's prescription 27 Gy" in problems[0]
        assert "median dose of target" in problems[0]
    else:
        assert str(folder / "RD.dcm") in problems[0]
    assert any(problems[0] in w for w in data.warnings)  # and said in the warnings
    if fix is None:
        return
    # The user who knows overrides the label: the problem goes, the override is recorded.
    fixed = load_plan(folder, dose_summation=fix)
    assert fixed.dose.problems == [] and fixed.dose.summation_override == fix
    assert any(f"--dose-summation {fix}" in n for n in fixed.dose.notes)
    stored = read_dose(folder / "RD.dcm").values
    expected = stored if fix == "PLAN" else stored * FRACTIONS
    np.testing.assert_allclose(fixed.dose.values, expected, rtol=1e-12)
    assert fixed.dose.fractions_applied == (FRACTIONS if fix == "FRACTION" else None)


def test_plausible_doses_have_no_problem(tmp_path, sbrt):
    # The plan as written, its FRACTION version (one fraction stored), a hot spot of 2x.
    data = load_plan(write(tmp_path / "plan", sbrt))
    assert data.dose.problems == []
    fraction = syn.spine_plan("sbrt", seed="hostile-dose", summation="FRACTION")
    data = load_plan(write(tmp_path / "fraction", fraction))
    assert data.dose.problems == [] and data.dose.fractions_applied == FRACTIONS
    assert data.dose.summation_override is None


def test_beam_doses_are_a_reference_without_a_prescription(tmp_path, sbrt):
    # No DoseReferenceSequence: the beams' BeamDose x fractions (27 Gy) is the reference.
    objs = copy.deepcopy(sbrt)
    del objs["RP"].DoseReferenceSequence
    objs["RD"].DoseSummationType = "FRACTION"
    data = load_plan(write(tmp_path, objs))
    assert data.plan.prescription_gy == pytest.approx(RX)
    assert len(data.dose.problems) == 1 and "prescription 27 Gy" in data.dose.problems[0]
    # Neither a prescription nor beam doses: nothing to compare with, no problem invented.
    for ref in objs["RP"].FractionGroupSequence[0].ReferencedBeamSequence:
        del ref.BeamDose
    data = load_plan(write(tmp_path / "none", objs))
    assert data.plan.prescription_gy is None and data.dose.problems == []


def test_prescription_and_beams_disagreeing_are_both_named(tmp_path, sbrt):
    # The prescription says 27 Gy, the beams 13.5 Gy; the dose is 3 x 27 Gy: it agrees
    # with neither, and both comparisons are in the text.
    objs = copy.deepcopy(sbrt)
    for ref in objs["RP"].FractionGroupSequence[0].ReferencedBeamSequence:
        ref.BeamDose = f"{float(ref.BeamDose) / 2:.6f}"
    objs["RD"].DoseSummationType = "FRACTION"
    data = load_plan(write(tmp_path, objs))
    (text,) = data.dose.problems
    assert "x the plan's prescription 27 Gy" in text
    assert "7.14 x the beams' BeamDose x fractions 13.5 Gy" in text


def test_a_stated_reference_that_agrees_is_enough(tmp_path, sbrt):
    # The prescription written per fraction (9 Gy, a plan-side mistake) while the beams say
    # 27 Gy: the dose agrees with the beams, so it is not the dose that is wrong.
    objs = copy.deepcopy(sbrt)
    objs["RP"].DoseReferenceSequence[0].TargetPrescriptionDose = "9"
    data = load_plan(write(tmp_path, objs))
    assert data.dose.problems == []


def test_plausibility_is_checked_on_hand_built_grids():
    from rtcheck.model import DoseGrid, FractionGroup, Plan

    axis = np.arange(5.0)
    plan = Plan(uid="1", prescription_gy=20.0,
                fraction_groups=[FractionGroup(1, 5, (1,), {1: 4.0}, {1: 100.0})])
    grid = DoseGrid(axis, axis, axis, np.full((5, 5, 5), 21.0))
    assert check_dose_plausibility(grid, plan) == []
    grid.values *= 5
    grid.fractions_applied = 5
    (text,) = check_dose_plausibility(grid, plan)
    assert "dose maximum 105 Gy = 5.25 x the plan's prescription 20 Gy" in text
    assert "multiplied by 5 fractions" in text and "--dose-summation PLAN" in text


def _inside_by_hand(px: float, py: float, polygon: np.ndarray) -> bool:
    """Even-odd ray casting for one point, written out edge by edge (the reference)."""
    inside = False
    n = len(polygon)
    for i in range(n):
        (xa, ya), (xb, yb) = polygon[i - 1], polygon[i]
        if (ya > py) != (yb > py) and px < xa + (py - ya) * (xb - xa) / (yb - ya):
            inside = not inside
    return inside


def test_target_median_is_the_median_over_the_voxels_inside_the_target():
    """The target median the plausibility check reports: a non-convex target with a hole,
    on a grid whose voxel centres fall on its vertices' rows and columns, against a median
    computed point by point."""
    from rtcheck.model import Contour, DoseGrid, FractionGroup, Plan, Structure, StructureSet

    x = np.arange(-20.0, 21.0, 2.0)
    y = np.arange(-15.0, 16.0, 2.5)
    z = np.array([0.0, 3.0])
    xx, yy = np.meshgrid(x, y)
    field = 30.0 + 0.5 * xx + 0.2 * yy ** 2 / 10  # varies along both axes
    values = np.stack([field, field + 6.0])  # a second plane 6 Gy hotter
    outer = np.array([[-12.0, -10.0], [14.0, -10.0], [14.0, 0.0], [2.0, 0.0], [2.0, 12.5],
                      [-12.0, 12.5]])  # an L, vertices on voxel rows and columns
    hole = syn.rectangle(-8.0, -5.0, -3.0, 5.0)
    target = Structure(1, "PTV", [Contour(1.0, outer), Contour(1.0, hole)], roi_type="PTV")
    expected = [(2 / 3) * field[j, i] + (1 / 3) * (field[j, i] + 6.0)  # z = 1 of 0..3 mm
                for j in range(y.size) for i in range(x.size)
                if _inside_by_hand(x[i], y[j], outer) != _inside_by_hand(x[i], y[j], hole)]
    median = float(np.median(expected))
    # A prescription (and beam doses) the median cannot agree with, so the problem names it.
    plan = Plan(uid="1", prescription_gy=median * 3,
                fraction_groups=[FractionGroup(1, 5, (1,), {1: median * 3 / 5}, {1: 100.0})])
    (text,) = check_dose_plausibility(DoseGrid(x, y, z, values), plan,
                                      StructureSet([target]))
    assert len(expected) > 20
    assert f"median dose of target 'PTV' {median:.4g} Gy" in text


def test_override_needs_the_fractions(tmp_path, sbrt):
    objs = copy.deepcopy(sbrt)
    folder = write(tmp_path, {"RS": objs["RS"], "RD": objs["RD"]})
    with pytest.raises(InputError, match="--dose-summation FRACTION") as err:
        load_plan(dose=folder / "RD.dcm", structures=folder / "RS.dcm",
                  dose_summation="FRACTION")
    assert str(folder / "RD.dcm") in str(err.value)
    with pytest.raises(InputError, match="neither PLAN nor FRACTION"):
        load_plan(folder, dose_summation="BEAM")


def test_dose_summation_option_on_the_command_line(tmp_path, sbrt):
    objs = copy.deepcopy(sbrt)
    objs["RD"].DoseSummationType = "FRACTION"  # Pinnacle's whole course
    folder = write(tmp_path, objs)
    res = cli("dvh", folder, "--structure", "PTV", "--format", "json")
    assert res.exit_code == 0, res.output
    assert any("dose not usable for a verdict" in w for w in json.loads(res.stdout)["warnings"])
    res = cli("dvh", folder, "--structure", "PTV", "--format", "json", "--dose-summation", "plan")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert any("--dose-summation PLAN" in w for w in report["warnings"])
    assert not any("dose not usable" in w for w in report["warnings"])
    assert report["structures"][0]["metrics"]["Dmax"] < 1.6 * RX
    res = cli("check", folder, "--dose-summation", "PLAN", "--format", "json")
    assert res.exit_code != 2 and "Traceback" not in res.output, res.output
    assert "--dose-summation PLAN" in res.stdout
    res = cli("check", folder, "--dose-summation", "SUM")
    assert res.exit_code == 2 and "Traceback" not in res.output


# --------------------------------------------------------------------------------------
# Ambiguous objects
# --------------------------------------------------------------------------------------

def _twin_dose_scaled(folder: Path) -> tuple[str, ...]:
    """A second RTDOSE with the same SOPInstanceUID and half the dose."""
    rd = pydicom.dcmread(folder / "RD.dcm")
    rd.DoseGridScaling = f"{float(rd.DoseGridScaling) / 2:.9e}"
    twin = folder / "sub" / "RD_copy.dcm"
    syn.write(rd, twin)
    return str(folder / "RD.dcm"), str(twin)


def _twin_plan_fractions(folder: Path) -> tuple[str, ...]:
    rp = pydicom.dcmread(folder / "RP.dcm")
    rp.FractionGroupSequence[0].NumberOfFractionsPlanned = 5
    twin = folder / "RP_b.dcm"
    syn.write(rp, twin)
    return str(folder / "RP.dcm"), str(twin)


def _twin_structures(folder: Path) -> tuple[str, ...]:
    rs = pydicom.dcmread(folder / "RS.dcm")
    rs.StructureSetROISequence[0].ROIName = "BODY2"
    twin = folder / "a" / "RS.dcm"
    syn.write(rs, twin)
    return str(folder / "RS.dcm"), str(twin)


def _twin_beam_dose(folder: Path) -> tuple[str, ...]:
    rd = pydicom.dcmread(folder / "RD.B2.dcm")
    rd.DoseGridScaling = f"{float(rd.DoseGridScaling) * 1.5:.9e}"
    twin = folder / "zz" / "RD.B2.dcm"
    syn.write(rd, twin)
    return str(folder / "RD.B2.dcm"), str(twin)


TWINS = {"dose": (_twin_dose_scaled, False), "plan": (_twin_plan_fractions, False),
         "structure set": (_twin_structures, False), "beam dose": (_twin_beam_dose, True)}


@pytest.mark.parametrize("case", list(TWINS))
def test_one_uid_two_contents_is_bad_input_naming_both(tmp_path, sbrt, sbrt_beams, case):
    make_twin, beams = TWINS[case]
    folder = write(tmp_path / "plan", sbrt_beams if beams else sbrt)
    first, second = make_twin(folder)
    with pytest.raises(InputError) as err:
        load_plan(folder)
    text = str(err.value)
    assert first in text and second in text and "same SOPInstanceUID" in text
    assert_exit_2(cli("dvh", folder), first, second)


def test_identical_copies_are_deduplicated_with_a_note(tmp_path, sbrt):
    folder = write(tmp_path / "plan", sbrt)
    shutil.copy(folder / "RD.dcm", folder / "RD_copy.dcm")
    # a copy re-written by another tool: other file meta, same dataset
    rs = pydicom.dcmread(folder / "RS.dcm")
    rs.file_meta.ImplementationVersionName = "OTHER_TOOL"
    syn.write(rs, folder / "RS_copy.dcm")
    data = load_plan(folder)
    assert data.dose.problems == []
    assert any("RD_copy.dcm duplicates" in w and "same content" in w for w in data.warnings)
    assert any("RS_copy.dcm duplicates" in w for w in data.warnings)


def _beam_dose_zero(objs, beam: int = 3):
    ref = objs["RP"].FractionGroupSequence[0].ReferencedBeamSequence[beam - 1]
    ref.BeamDose = "0"  # monitor units stay: the beam delivers dose


@pytest.mark.parametrize("beam", [1, 3, 7])
def test_a_beam_with_monitor_units_but_beam_dose_0_is_not_dropped(tmp_path, sbrt_beams, beam):
    objs = copy.deepcopy(sbrt_beams)
    _beam_dose_zero(objs, beam)
    complete = write(tmp_path / "complete", objs)
    data = load_plan(complete)  # every beam dose present: all are summed
    assert f"beam {beam}" in " ".join(data.warnings) or len(data.dose.sop_instance_uids) == 7
    assert len(data.dose.sop_instance_uids) == 7
    reference = load_plan(write(tmp_path / "reference", sbrt_beams))
    np.testing.assert_allclose(data.dose.values, reference.dose.values)
    del objs[f"RD.B{beam}"]  # its dose missing: an error naming the beam, not a lower dose
    partial = write(tmp_path / "partial", objs)
    with pytest.raises(InputError, match=rf"no dose for beam\(s\) {beam}\b"):
        load_plan(partial)
    assert_exit_2(cli("dvh", partial), "RP.dcm")


def test_a_setup_beam_needs_no_dose(tmp_path, sbrt_beams):
    objs = copy.deepcopy(sbrt_beams)
    ref = objs["RP"].FractionGroupSequence[0].ReferencedBeamSequence[6]
    ref.BeamDose, ref.BeamMeterset = "0", "0"
    del objs["RD.B7"]
    data = load_plan(write(tmp_path, objs))
    assert len(data.dose.sop_instance_uids) == 6


# --------------------------------------------------------------------------------------
# Plan numbers that lie
# --------------------------------------------------------------------------------------

def _fraction_group(objs):
    return objs["RP"].FractionGroupSequence[0]


PLAN_NUMBERS = {
    "fractions 3.5": (lambda o: set_raw(_fraction_group(o), "NumberOfFractionsPlanned", "3.5",
                                        "IS"), "NumberOfFractionsPlanned"),
    "fractions -3": (lambda o: set_raw(_fraction_group(o), "NumberOfFractionsPlanned", "-3",
                                       "IS"), "NumberOfFractionsPlanned"),
    "fractions 0": (lambda o: set_raw(_fraction_group(o), "NumberOfFractionsPlanned", "0",
                                      "IS"), "NumberOfFractionsPlanned"),
    "fractions three": (lambda o: set_raw(_fraction_group(o), "NumberOfFractionsPlanned",
                                          "three", "IS"), "NumberOfFractionsPlanned"),
    "prescription abc": (lambda o: set_raw(o["RP"].DoseReferenceSequence[0],
                                           "TargetPrescriptionDose", "abc", "DS"),
                         "TargetPrescriptionDose"),
    "prescription -27": (lambda o: set_raw(o["RP"].DoseReferenceSequence[0],
                                           "TargetPrescriptionDose", "-27", "DS"),
                         "TargetPrescriptionDose"),
    "prescription nan": (lambda o: set_raw(o["RP"].DoseReferenceSequence[0],
                                           "TargetPrescriptionDose", "NaN", "DS"),
                         "TargetPrescriptionDose"),
    "beam dose inf": (lambda o: set_raw(_fraction_group(o).ReferencedBeamSequence[0],
                                        "BeamDose", "inf", "DS"), "BeamDose of beam 1"),
    "beam dose -1": (lambda o: set_raw(_fraction_group(o).ReferencedBeamSequence[0],
                                       "BeamDose", "-1", "DS"), "BeamDose of beam 1"),
    "meterset abc": (lambda o: set_raw(_fraction_group(o).ReferencedBeamSequence[1],
                                       "BeamMeterset", "abc", "DS"), "BeamMeterset of beam 2"),
}


@pytest.mark.parametrize("case", list(PLAN_NUMBERS))
def test_plan_numbers_that_lie_are_bad_input(tmp_path, sbrt, case):
    mutate, attribute = PLAN_NUMBERS[case]
    objs = copy.deepcopy(sbrt)
    mutate(objs)
    folder = write(tmp_path, objs)
    with pytest.raises(InputError) as err:
        load_plan(folder)
    assert err.value.path == str(folder / "RP.dcm") and attribute in err.value.message
    assert_exit_2(cli("dvh", folder), str(folder / "RP.dcm"), attribute)
