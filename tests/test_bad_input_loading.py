"""Bad input while loading DICOM-RT: each case names the file and the problem, no traceback.

Cases that must fail raise InputError (path + message); the command line turns it into one
line on stderr and exit code 2. Cases that must load report what is odd in warnings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from click.testing import CliRunner
from pydicom.data import get_testdata_file
from support import synthetic as syn

from rtcheck.cli import main
from rtcheck.dicom import load_plan, read_dose, read_plan, read_structure_set
from rtcheck.errors import InputError

FRAME = syn.make_uid("bad-input", "frame")
ZS = syn.planes(-6, 6, 3)


def dose_field(x, y, z):
    return 2.0 + 0.01 * (x + y + z)


def write_case(folder: Path, *, beams: int = 1, summation: str = "PLAN",
               dose_frame: str = FRAME, rois=None) -> dict:
    """Plan + structures + dose(s) in ``folder`` (BEAM: one dose per beam)."""
    rois = rois or {"PTV": syn.sphere(0, 0, 0, 5, ZS)}
    rs = syn.structure_set_dataset(rois, types={"PTV": "PTV"}, frame_uid=FRAME)
    rp = syn.plan_dataset("BAD", 3, 6.0, beams=syn.default_beams((0, 90, 180)[:beams]),
                          structure_set_uid=rs.SOPInstanceUID, frame_uid=FRAME)
    out = {"plan": syn.write(rp, folder / "RP.dcm"),
           "structures": syn.write(rs, folder / "RS.dcm"), "doses": []}
    numbers = [b.BeamNumber for b in rp.BeamSequence] if summation == "BEAM" else [None]
    for n in numbers:
        rd = syn.dose_dataset_from_function(dose_field, (-10, -10, -9), (10, 10, 9), (2, 2, 3),
                                            summation=summation, plan_uid=rp.SOPInstanceUID,
                                            beam_number=n, frame_uid=dose_frame)
        out["doses"].append(syn.write(rd, folder / f"RD_{n or 'plan'}.dcm"))
    return out


def cli_fails(*args: str) -> str:
    """Run ``rtcheck dvh ARGS``: exit 2, one error line, no traceback; returns that line."""
    if "dvh" not in main.commands:
        pytest.skip("the dvh command is not registered")
    result = CliRunner().invoke(main, ["dvh", *map(str, args)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output + result.stderr
    assert result.stderr.startswith("rtcheck: error: ")
    return result.stderr


def test_not_dicom(tmp_path):
    bogus = tmp_path / "plan.dcm"
    bogus.write_text("this is a text file, not DICOM\n" * 10)
    with pytest.raises(InputError) as err:
        load_plan(bogus)
    assert err.value.path == str(bogus) and "not a DICOM file" in err.value.message
    assert f"{bogus}: not a DICOM file" in cli_fails(bogus)


def test_truncated_file_named(tmp_path):
    with pytest.raises(InputError) as err:
        load_plan(get_testdata_file("rtplan_truncated.dcm"))
    assert "truncated" in err.value.message and err.value.path.endswith("rtplan_truncated.dcm")


def test_truncated_dose_in_a_folder(tmp_path):
    files = write_case(tmp_path)
    dose_path = files["doses"][0]
    data = dose_path.read_bytes()
    dose_path.write_bytes(data[: len(data) // 2])  # cut inside the pixel data
    with pytest.raises(InputError) as err:
        load_plan(tmp_path)
    assert err.value.path == str(dose_path) and "truncated" in err.value.message
    assert str(dose_path) in cli_fails(tmp_path) and "truncated" in cli_fails(tmp_path)


def test_truncated_header_in_a_folder_is_named(tmp_path):
    files = write_case(tmp_path)
    dose_path = files["doses"][0]
    dose_path.write_bytes(dose_path.read_bytes()[:700])  # cut inside the header
    with pytest.raises(InputError) as err:
        load_plan(tmp_path)
    assert "no RTDOSE" in str(err.value) and str(dose_path) in str(err.value)


def test_dose_without_plan_loads_and_warns(tmp_path):
    files = write_case(tmp_path, summation="FRACTION")
    data = load_plan(structures=files["structures"], dose=files["doses"][0])
    assert data.plan is None and data.dose.fractions_applied is None
    assert any("kept as stored" in w for w in data.warnings)
    assert any("number of fractions is unknown" in w for w in data.warnings)


def test_relative_dose_stays_relative():
    dose = read_dose(get_testdata_file("rtdose.dcm"))
    assert dose.units == "RELATIVE"
    assert any("RELATIVE" in n and "not Gy" in n for n in dose.notes)


def test_beam_dose_with_a_missing_beam(tmp_path):
    files = write_case(tmp_path, beams=3, summation="BEAM")
    files["doses"][1].unlink()  # beam 2's dose
    with pytest.raises(InputError) as err:
        load_plan(tmp_path)
    assert err.value.path == str(files["plan"])
    assert "no dose for beam(s) 2" in err.value.message
    assert "no dose for beam(s) 2" in cli_fails(tmp_path)


def test_frame_of_reference_mismatch(tmp_path):
    files = write_case(tmp_path, dose_frame=syn.make_uid("another frame"))
    with pytest.raises(InputError) as err:
        load_plan(tmp_path)
    message = str(err.value)
    assert "frame of reference mismatch" in message
    assert str(files["doses"][0]) in message and str(files["plan"]) in message
    with pytest.raises(InputError, match="frame of reference mismatch") as err:
        load_plan(structures=files["structures"], dose=files["doses"][0])
    assert str(files["structures"]) in str(err.value)
    cli_fails("--structures", files["structures"], "--dose", files["doses"][0])


def test_empty_structure_is_reported(tmp_path):
    rois = [syn.ROI("PTV", syn.sphere(0, 0, 0, 5, ZS), roi_type="PTV"),
            syn.ROI("Empty"), syn.ROI("Omitted", omit_contour_item=True)]
    data = load_plan(write_case(tmp_path, rois=rois)["plan"].parent)
    assert data.structure_set.get("Empty").is_empty
    assert "ROI 'Empty' (2) is empty (no contour)" in data.warnings
    assert "ROI 'Omitted' (3) is empty (no contour)" in data.warnings


def test_duplicate_roi_names_are_reported():
    rois = [syn.ROI("Cord", syn.cylinder(0, 0, 3, ZS)), syn.ROI("Cord", syn.cylinder(9, 0, 3, ZS))]
    ss = read_structure_set(syn.structure_set_dataset(rois))
    assert ss.duplicate_names() == ["Cord"]
    assert any("'Cord' is used by 2 ROIs" in w for w in ss.warnings)


def test_oblique_orientation(tmp_path):
    c, s = np.cos(np.radians(10)), np.sin(np.radians(10))
    ds = syn.dose_dataset_from_frames(np.ones((2, 3, 3)), (0, 0, 0), (c, s, 0, -s, c, 0),
                                      (2, 2), (0, 2))
    path = syn.write(ds, tmp_path / "oblique.dcm")
    with pytest.raises(InputError) as err:
        read_dose(path)
    assert err.value.path == str(path)
    assert "oblique dose grid orientation" in err.value.message
    assert "not supported" in err.value.message


def test_sagittal_dose_planes(tmp_path):
    ds = syn.dose_dataset_from_frames(np.ones((2, 3, 3)), (0, 0, 0), (0, 1, 0, 0, 0, -1),
                                      (2, 2), (0, 2))
    with pytest.raises(InputError, match="not axial"):
        read_dose(syn.write(ds, tmp_path / "sagittal.dcm"))


@pytest.mark.parametrize("units, problem", [("CGY", "neither GY nor RELATIVE"),
                                            (None, "no DoseUnits")])
def test_unknown_or_missing_dose_units(tmp_path, units, problem):
    ds = syn.dose_dataset_from_frames(np.ones((1, 2, 2)), (0, 0, 0), "HFS", (1, 1), (0,))
    if units is None:
        del ds.DoseUnits
    else:
        ds.DoseUnits = units
    with pytest.raises(InputError, match=problem):
        read_dose(syn.write(ds, tmp_path / "units.dcm"))


def test_frame_offsets_that_are_neither_relative_nor_absolute(tmp_path):
    ds = syn.dose_dataset_from_frames(np.ones((2, 2, 2)), (0, 0, 50), "HFS", (1, 1), (3, 6))
    with pytest.raises(InputError, match="neither 0 .* nor the ImagePositionPatient z 50"):
        read_dose(syn.write(ds, tmp_path / "gfov.dcm"))


def test_several_frames_without_offsets(tmp_path):
    ds = syn.dose_dataset_from_frames(np.ones((2, 2, 2)), (0, 0, 0), "HFS", (1, 1), (0, 2))
    del ds.GridFrameOffsetVector
    with pytest.raises(InputError, match="2 frames but no GridFrameOffsetVector"):
        read_dose(ds)


def test_odd_contours_are_reported_not_fatal():
    ds = syn.structure_set_dataset({"Tilted": syn.cylinder(0, 0, 5, ZS),
                                    "Short": syn.cylinder(0, 0, 5, ZS)})
    tilted = ds.ROIContourSequence[0].ContourSequence[0]
    xyz = np.array(tilted.ContourData, dtype=float).reshape(-1, 3)
    xyz[:, 2] += np.linspace(0, 2, len(xyz))  # z varies along the contour
    tilted.ContourData = [f"{v:.4f}" for v in xyz.ravel()]
    short = ds.ROIContourSequence[1].ContourSequence
    short[0].ContourData = ["0", "0", "-6", "1", "0", "-6"]  # two points
    short[1].ContourGeometricType = "OPEN_PLANAR"
    ss = read_structure_set(ds)
    assert ss.get("Tilted").contours == []  # dropped: no DVH rather than a wrong one
    assert len(ss.get("Short").contours) == len(ZS) - 2
    text = " | ".join(ss.warnings)
    assert "'Tilted' (1): 1 contour(s) not on an axial plane" in text
    assert "fewer than 3 points" in text and "OPEN_PLANAR" in text
    assert "'Tilted' (1) is empty" not in text


@pytest.mark.parametrize("kind", ["RTSTRUCT", "RTPLAN", "RTDOSE"])
def test_every_cut_inside_an_element_is_reported_as_truncated(tmp_path, kind):
    files = write_case(tmp_path)
    source = {"RTSTRUCT": files["structures"], "RTPLAN": files["plan"],
              "RTDOSE": files["doses"][0]}[kind]
    reader = {"RTSTRUCT": read_structure_set, "RTPLAN": read_plan, "RTDOSE": read_dose}[kind]
    blob = source.read_bytes()
    ds = pydicom.dcmread(source)
    boundaries = {ds.get_item(t).value_tell + ds.get_item(t).length for t in ds.keys()}
    cut_file = tmp_path / "cut.dcm"
    for cut in range(200, len(blob), 13):
        cut_file.write_bytes(blob[:cut])
        if cut in boundaries:  # a cut between two elements: may still read (or not)
            try:
                reader(cut_file)
            except InputError:
                pass
            continue
        with pytest.raises(InputError, match="truncated"):
            reader(cut_file)


def test_structure_set_cut_before_its_contours(tmp_path):
    path = write_case(tmp_path)["structures"]
    ds = pydicom.dcmread(path)
    roi = ds.get_item(0x30060020)  # StructureSetROISequence: the file is cut after it
    path.write_bytes(path.read_bytes()[:roi.value_tell + roi.length])
    with pytest.raises(InputError, match="no ROIContourSequence"):
        read_structure_set(path)
