"""Reading and pairing DICOM-RT objects (rtcheck.dicom, rtcheck.dose).

Truth comes from outside the reader: the published facts of the breast export (its README),
pydicom's own pixel decoding, analytical dose fields written by support.synthetic (linear
fields, which trilinear interpolation reproduces exactly), and DICOM's geometry formulas
applied by hand.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from support import synthetic as syn

from rtcheck.dicom import (
    group_plans,
    load_plan,
    read_dose,
    read_plan,
    read_structure_set,
    scan,
)
from rtcheck.errors import InputError

FRAME = syn.make_uid("test-dicom", "frame")


def linear_dose(x, y, z):
    """A dose field with a different slope along each axis (flips and swaps show)."""
    return 10.0 + 0.10 * x + 0.03 * y + 0.05 * z


LO, HI, STEP = (-20.0, -16.0, -12.0), (20.0, 16.0, 12.0), (2.0, 2.0, 3.0)


# --------------------------------------------------------------------------------------
# The real breast export: facts from its README
# --------------------------------------------------------------------------------------

def test_breast_example_loads_with_published_facts(breast):
    data = load_plan(breast)
    plan, dose, ss = data.plan, data.dose, data.structure_set
    assert plan.label == "B1"
    assert plan.fractions == 7
    assert plan.prescription_gy == pytest.approx(14.0)
    assert len(plan.fraction_groups[0].beam_numbers) == 4
    assert dose.shape == (98, 129, 194)
    assert dose.spacing == pytest.approx((2.5, 2.5, 3.0))
    assert dose.units == "GY" and dose.summation == "PLAN" and dose.fractions_applied is None
    assert ss.names() == ["BODY", "Areola", "Borders", "Breast", "Heart", "Lt Lung", "Nodes",
                          "Scar", "Tumor Bed", "Tumor Bed Block"]
    assert ss.get("Areola").is_empty
    assert any("Areola" in w and "empty" in w for w in data.warnings)
    # The structure set has no top-level FrameOfReferenceUID: it comes from its references.
    assert ss.frame_of_reference_uid == plan.frame_of_reference_uid \
        == dose.frame_of_reference_uid


def test_breast_dose_values_match_pydicom_decoding(breast):
    ds = pydicom.dcmread(breast / "rtdose.dcm")
    expected = ds.pixel_array * float(ds.DoseGridScaling)
    dose = read_dose(breast / "rtdose.dcm")
    np.testing.assert_allclose(dose.values, expected, rtol=1e-12)
    ipp = [float(v) for v in ds.ImagePositionPatient]
    assert (dose.x[0], dose.y[0], dose.z[0]) == pytest.approx(ipp)
    assert dose.z[-1] == pytest.approx(ipp[2] + float(ds.GridFrameOffsetVector[-1]))


def test_breast_contours_match_contour_data(breast):
    ss = read_structure_set(breast / "rtss.dcm")
    ds = pydicom.dcmread(breast / "rtss.dcm")
    heart_item = next(r for r in ds.ROIContourSequence if r.ReferencedROINumber == 5)
    first = heart_item.ContourSequence[0]
    xyz = np.array([float(v) for v in first.ContourData]).reshape(-1, 3)
    heart = ss.get("Heart")
    assert heart.roi_type == "ORGAN"
    assert len(heart.contours) == len(heart_item.ContourSequence)
    assert heart.contours[0].z == pytest.approx(xyz[0, 2])
    np.testing.assert_allclose(heart.contours[0].xy, xyz[:, :2])


def test_nelms_fraction_dose_without_plan_is_kept_as_stored(nelms):
    dose_file = nelms / "dose" / "Linear_SupInf_2mm_Aligned.dcm"
    data = load_plan(structures=nelms / "structures" / "Sphere_20_0.dcm", dose=dose_file)
    assert data.plan is None and data.fractions is None
    assert data.dose.summation == "FRACTION" and data.dose.fractions_applied is None
    ds = pydicom.dcmread(dose_file)
    assert data.dose.values.max() == pytest.approx(
        ds.pixel_array.max() * float(ds.DoseGridScaling))
    assert any("unknown" in w and "fraction" in w for w in data.warnings)


# --------------------------------------------------------------------------------------
# pydicom's bundled RT files
# --------------------------------------------------------------------------------------

def test_pydicom_rtdose_relative_units_and_encodings():
    ds = pydicom.dcmread(get_testdata_file("rtdose.dcm"))
    expected = ds.pixel_array * float(ds.DoseGridScaling)
    for name in ("rtdose.dcm", "rtdose_expb.dcm", "rtdose_rle.dcm"):
        dose = read_dose(get_testdata_file(name))
        assert dose.units == "RELATIVE"
        assert dose.summation == "BEAM"
        np.testing.assert_allclose(dose.values, expected, rtol=1e-12)
        assert dose.z == pytest.approx(-761.87 + 5.0 * np.arange(15))


@pytest.mark.parametrize("name", ["rtdose_1frame.dcm", "rtdose_expb_1frame.dcm",
                                  "rtdose_rle_1frame.dcm"])
def test_single_frame_dose(name):
    dose = read_dose(get_testdata_file(name))
    ds = pydicom.dcmread(get_testdata_file(name))
    assert dose.shape == (1, 10, 10)
    assert dose.z == pytest.approx([-761.87])
    np.testing.assert_allclose(dose.values[0], ds.pixel_array * float(ds.DoseGridScaling))


def test_pydicom_rtplan_facts():
    plan = read_plan(get_testdata_file("rtplan.dcm"))
    assert plan.label == "Plan1" and plan.name == "Plan1"
    assert plan.fractions == 30
    # The TARGET dose reference; the ORGAN_AT_RISK one (75 Gy maximum) is not a prescription.
    assert plan.prescription_gy == pytest.approx(30.826203)
    assert plan.date == dt.date(2003, 9, 3)
    assert plan.patient_id == "id00001"
    assert plan.referenced_structure_set_uid == "1.2.333.444.55.6.7777.88888"
    assert plan.fraction_groups[0].beam_doses_gy == {1: pytest.approx(1.0275401)}


def test_pydicom_rtstruct_without_file_meta_is_read():
    # rtstruct.dcm has no preamble or file meta (like some CMS/Elekta exports).
    ss = read_structure_set(get_testdata_file("rtstruct.dcm"))
    assert ss.names() == ["patient", "Isocenter 1", "Isocenter 2"]
    body = ss.get("patient")
    assert body.roi_type == "EXTERNAL" and len(body.contours) == 3
    iso = ss.get("Isocenter 1")
    assert iso.is_point and iso.points.shape == (1, 3)
    assert ss.frame_of_reference_uid == "1.2.826.0.1.3680043.8.498.2010020400001.2"


# --------------------------------------------------------------------------------------
# Orientation and frame offsets
# --------------------------------------------------------------------------------------

DECUBITUS = {
    "HFDL": (0.0, -1.0, 0.0, 1.0, 0.0, 0.0),
    "HFDR": (0.0, 1.0, 0.0, -1.0, 0.0, 0.0),
    "FFDL": (0.0, 1.0, 0.0, 1.0, 0.0, 0.0),
    "FFDR": (0.0, -1.0, 0.0, -1.0, 0.0, 0.0),
}


@pytest.mark.parametrize("orientation", ["HFS", "FFS", "HFP", "FFP", *DECUBITUS])
@pytest.mark.parametrize("offsets", ["relative", "absolute"])
def test_same_physical_dose_in_every_orientation(orientation, offsets):
    iop = DECUBITUS.get(orientation, orientation)
    ds = syn.dose_dataset_from_function(linear_dose, LO, HI, STEP, orientation=iop,
                                        offsets=offsets)
    dose = read_dose(ds)
    x, y, z = syn.grid_axes(LO, HI, STEP)
    np.testing.assert_allclose(dose.x, x)
    np.testing.assert_allclose(dose.y, y)
    np.testing.assert_allclose(dose.z, z)
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    np.testing.assert_allclose(dose.values, linear_dose(xx, yy, zz), atol=1e-6)


def _frames_dataset(frames, ipp, iop, spacing, offsets):
    return syn.dose_dataset_from_frames(np.asarray(frames, float), ipp, iop, spacing, offsets)


def test_feet_first_frame_offsets_follow_the_plane_normal():
    # DICOM C.8.8.3.2: relative offsets run along rowcos x colcos, which is -z for FFS.
    # Frame k holds the constant k+1; columns add 0.1*i so a missed x flip shows.
    frames = [[[k + 1 + 0.1 * i for i in range(3)]] * 2 for k in range(2)]
    ds = _frames_dataset(frames, ipp=(0.0, 0.0, 10.0), iop="FFS", spacing=(4.0, 2.0),
                         offsets=[0.0, 5.0])
    dose = read_dose(ds)
    assert dose.z == pytest.approx([5.0, 10.0])       # frame 1 at 10 - 5
    assert dose.x == pytest.approx([-4.0, -2.0, 0.0])  # row cosine -x from IPP x = 0
    assert dose.y == pytest.approx([0.0, 4.0])         # row spacing is PixelSpacing[0]
    assert dose.values[0, 0] == pytest.approx([2.2, 2.1, 2.0])
    assert dose.values[1, 1] == pytest.approx([1.2, 1.1, 1.0])


def test_unevenly_spaced_and_descending_offsets():
    frames = np.arange(3, dtype=float).reshape(3, 1, 1) * np.ones((3, 2, 2))
    ds = _frames_dataset(frames, (0.0, 0.0, 0.0), "HFS", (1.0, 1.0), [0.0, -2.0, -5.0])
    dose = read_dose(ds)
    assert dose.z == pytest.approx([-5.0, -2.0, 0.0])
    assert dose.values[:, 0, 0] == pytest.approx([2.0, 1.0, 0.0])


def test_dose_without_frame_offsets_single_frame():
    ds = _frames_dataset(np.ones((1, 2, 2)), (1.0, 2.0, 3.0), "HFS", (1.0, 1.0), [0.0])
    del ds.GridFrameOffsetVector
    dose = read_dose(ds)
    assert dose.z == pytest.approx([3.0]) and dose.shape == (1, 2, 2)


# --------------------------------------------------------------------------------------
# Structure sets and plans
# --------------------------------------------------------------------------------------

def test_structure_set_contours_points_types_and_holes():
    zs = syn.planes(-6, 6, 3)
    ring = syn.cylinder(0, 0, 10, zs) + syn.cylinder(0, 0, 4, zs)  # hole on each plane
    rois = [syn.ROI("Ring", ring, roi_type="PTV"), syn.point_roi("Iso", (1, 2, 3))]
    ss = read_structure_set(syn.structure_set_dataset(rois, frame_uid=FRAME))
    ring_s = ss.get("Ring")
    assert ring_s.roi_type == "PTV" and len(ring_s.contours) == 2 * len(zs)
    assert sorted(ring_s.planes()) == pytest.approx(list(zs))
    assert ss.get("Iso").points.tolist() == [[1.0, 2.0, 3.0]]
    assert ss.frame_of_reference_uid == FRAME
    assert ss.warnings == []


def test_plan_with_several_target_prescriptions_takes_the_largest_and_says_so():
    ds = syn.plan_dataset("SIB", 5, 25.0)
    boost = pydicom.Dataset()
    boost.DoseReferenceNumber, boost.DoseReferenceType = 2, "TARGET"
    boost.DoseReferenceStructureType, boost.DoseReferenceDescription = "SITE", "BOOST"
    boost.TargetPrescriptionDose = "35"
    ds.DoseReferenceSequence.append(boost)
    plan = read_plan(ds)
    assert plan.prescription_gy == pytest.approx(35.0)
    assert any("largest" in n and "35" in n for n in plan.notes)


def test_point_target_ignored_when_a_site_target_exists():
    ds = syn.plan_dataset("P", 5, 25.0)
    point = pydicom.Dataset()
    point.DoseReferenceNumber, point.DoseReferenceType = 2, "TARGET"
    point.DoseReferenceStructureType, point.TargetPrescriptionDose = "COORDINATES", "21.5"
    ds.DoseReferenceSequence.append(point)
    plan = read_plan(ds)
    assert plan.prescription_gy == pytest.approx(25.0) and plan.notes == []


def test_prescription_from_beam_doses_when_no_dose_reference():
    plan = read_plan(syn.plan_dataset("P", 4, None))  # no DoseReferenceSequence
    assert plan.prescription_gy is None  # beam doses are 0 when no prescription is given
    ds = syn.plan_dataset("P", 4, 20.0)
    del ds.DoseReferenceSequence
    plan = read_plan(ds)
    assert plan.prescription_gy == pytest.approx(20.0)  # 2 beams x 2.5 Gy x 4 fractions
    assert any("beam doses" in n for n in plan.notes)


@pytest.mark.filterwarnings("ignore:Invalid value for VR DA")  # pydicom, writing the bad date
def test_plan_date_and_fraction_groups():
    ds = syn.plan_dataset("P", 5, 25.0, date="2026-13-40")
    assert read_plan(ds).date is None
    groups = [syn.FractionGroupSpec(5, 5.0, syn.default_beams()),
              syn.FractionGroupSpec(3, 2.0, syn.default_beams((90.0,)))]
    plan = read_plan(syn.plan_dataset("2FG", None, 31.0, fraction_groups=groups))
    assert plan.fractions is None and [g.fractions for g in plan.fraction_groups] == [5, 3]
    assert plan.fraction_groups[1].beam_numbers == (3,)


# --------------------------------------------------------------------------------------
# Pairing: folders, plans, dose summation
# --------------------------------------------------------------------------------------

def write_plan(folder: Path, label: str = "P1", *, fractions: int = 5, rx_gy: float = 25.0,
               summation: str = "PLAN", beams: int = 2, frame: str = FRAME,
               scale: float | None = None, plan_uid: str | None = None) -> dict:
    """A plan, its structure set and dose(s) written in ``folder``; returns paths and data.

    The dose is ``scale * linear_dose``: by default scaled so the whole-plan maximum is
    1.05 x the prescription, divided per fraction (FRACTION) and per beam (BEAM).
    """
    zs = syn.planes(-9, 9, 3)
    rs = syn.structure_set_dataset({"PTV": syn.sphere(0, 0, 0, 8, zs),
                                    "Cord": syn.cylinder(0, 10, 3, zs)},
                                   types={"PTV": "PTV"}, frame_uid=frame)
    rp = syn.plan_dataset(label, fractions, rx_gy, beams=syn.default_beams((0, 120, 240)[:beams]),
                          structure_set_uid=rs.SOPInstanceUID, frame_uid=frame,
                          plan_uid=plan_uid)
    x, y, z = syn.grid_axes(LO, HI, STEP)
    peak = float(linear_dose(x[-1], y[-1], z[-1]))
    if scale is None:
        scale = 1.05 * rx_gy / peak
    share = scale / (fractions if summation == "FRACTION" else 1)
    out = {"plan": syn.write(rp, folder / f"RP_{label}.dcm"),
           "structures": syn.write(rs, folder / f"RS_{label}.dcm"), "doses": [],
           "plan_uid": rp.SOPInstanceUID, "scale": scale}
    numbers = [b.ReferencedBeamNumber for b in rp.FractionGroupSequence[0].ReferencedBeamSequence]
    for n in numbers if summation == "BEAM" else [None]:
        part = share / (len(numbers) if n is not None else 1)
        rd = syn.dose_dataset_from_function(lambda *p, s=part: s * linear_dose(*p), LO, HI, STEP,
                                            summation=summation, plan_uid=rp.SOPInstanceUID,
                                            beam_number=n, frame_uid=frame)
        out["doses"].append(syn.write(rd, folder / f"RD_{label}_{n or 'plan'}.dcm"))
    return out


def expected_values(scale: float) -> np.ndarray:
    zz, yy, xx = np.meshgrid(*syn.grid_axes(LO, HI, STEP)[::-1], indexing="ij")
    return scale * linear_dose(xx, yy, zz)


def test_archive_with_nested_folders_junk_duplicates_and_images(tmp_path):
    files = write_plan(tmp_path / "a" / "b")
    (tmp_path / "notes.txt").write_text("not DICOM")
    (tmp_path / "a" / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    ct = syn.dose_dataset_from_function(linear_dose, LO, HI, STEP)
    ct.SOPClassUID, ct.Modality = "1.2.840.10008.5.1.4.1.1.2", "CT"  # a CT slice stand-in
    syn.write(ct, tmp_path / "a" / "CT0001")  # no extension
    shutil.copy(files["doses"][0], tmp_path / "copy_of_dose")  # duplicate SOPInstanceUID
    data = load_plan(tmp_path)
    assert data.plan.label == "P1" and data.structure_set.names() == ["PTV", "Cord"]
    np.testing.assert_allclose(data.dose.values, expected_values(files["scale"]), rtol=1e-6)
    assert any("duplicates" in w for w in data.warnings)
    headers = scan(tmp_path)
    assert sorted(h.modality for h in headers) == ["CT", "RTDOSE", "RTDOSE", "RTPLAN",
                                                   "RTSTRUCT"]


def test_several_plans_need_a_choice(tmp_path):
    write_plan(tmp_path / "1", "ALPHA")
    second = write_plan(tmp_path / "2", "BETA", fractions=3, rx_gy=24.0)
    with pytest.raises(InputError) as err:
        load_plan(tmp_path)
    message = str(err.value)
    assert "ALPHA" in message and "BETA" in message and "--plan" in message
    assert load_plan(tmp_path, plan="BETA").plan.fractions == 3
    assert load_plan(tmp_path, plan=second["plan_uid"]).plan.label == "BETA"
    with pytest.raises(InputError, match="no plan with label or UID 'GAMMA'"):
        load_plan(tmp_path, plan="GAMMA")


def test_ambiguous_plan_label_is_an_error(tmp_path):
    write_plan(tmp_path / "1", "SAME")
    write_plan(tmp_path / "2", "SAME")
    with pytest.raises(InputError, match="several plans are labelled 'SAME'"):
        load_plan(tmp_path, plan="SAME")


def test_fraction_dose_is_multiplied_by_the_plans_fractions(tmp_path):
    files = write_plan(tmp_path, fractions=5, summation="FRACTION")
    data = load_plan(tmp_path)
    assert data.dose.fractions_applied == 5
    np.testing.assert_allclose(data.dose.values, expected_values(files["scale"]), rtol=1e-6)
    assert "FRACTION dose multiplied by 5 fractions" in data.warnings


def test_beam_doses_are_summed(tmp_path):
    files = write_plan(tmp_path, summation="BEAM", beams=3)
    data = load_plan(tmp_path)
    assert data.dose.summation == "PLAN" and len(data.dose.paths) == 3
    np.testing.assert_allclose(data.dose.values, expected_values(files["scale"]), rtol=1e-6)
    assert any("sum of 3 BEAM doses" in w for w in data.warnings)


def test_beam_doses_on_different_grids_are_resampled(tmp_path):
    files = write_plan(tmp_path, summation="BEAM", beams=2)
    rp = pydicom.dcmread(files["plan"])
    # Replace beam 2's dose by one on a larger, shifted, finer grid: trilinear
    # interpolation of a linear field is exact, so the sum is still exact.
    part = files["scale"] / 2
    rd = syn.dose_dataset_from_function(lambda *p: part * linear_dose(*p), (-23, -19.5, -15),
                                        (23.5, 19, 15), (1.5, 1.5, 2.5), summation="BEAM",
                                        plan_uid=rp.SOPInstanceUID, beam_number=2,
                                        frame_uid=FRAME)
    files["doses"][1].unlink()
    syn.write(rd, tmp_path / "RD_beam2_fine.dcm")
    data = load_plan(tmp_path)
    np.testing.assert_allclose(data.dose.values, expected_values(files["scale"]), rtol=1e-6)
    assert any("resampled" in w for w in data.warnings)


def test_several_plan_doses_need_a_choice(tmp_path):
    files = write_plan(tmp_path)
    rp = pydicom.dcmread(files["plan"])
    other = syn.dose_dataset_from_function(linear_dose, LO, HI, STEP,
                                           plan_uid=rp.SOPInstanceUID, frame_uid=FRAME)
    other_path = syn.write(other, tmp_path / "RD_other.dcm")
    with pytest.raises(InputError, match="2 PLAN doses") as err:
        load_plan(tmp_path)
    assert str(other_path) in str(err.value) and "--dose" in str(err.value)
    chosen = load_plan(tmp_path, dose=other_path)
    np.testing.assert_allclose(chosen.dose.values, expected_values(1.0), rtol=1e-6)


def test_per_fraction_dose_stored_as_plan_is_flagged(tmp_path):
    write_plan(tmp_path, fractions=5, rx_gy=25.0, scale=1.05 * 25.0 / 5 / linear_dose(*HI))
    data = load_plan(tmp_path)
    assert any("x the plan's prescription" in w for w in data.warnings)


def test_group_plans_reports_a_plan_without_dose_or_structures(tmp_path):
    files = write_plan(tmp_path / "full")
    lone = syn.plan_dataset("LONE", 1, 8.0)
    syn.write(lone, tmp_path / "lone" / "RP.dcm")
    groups = group_plans(scan(tmp_path))
    by_label = {g.plan.label: g for g in groups if g.plan}
    assert set(by_label) == {"P1", "LONE"}
    assert by_label["P1"].missing == [] and len(by_label["P1"].doses) == 1
    assert by_label["P1"].structure_set.path == str(files["structures"])
    missing = " ".join(by_label["LONE"].missing)
    assert "no RTDOSE" in missing and "structure set" in missing


def test_structures_and_dose_without_plan(tmp_path):
    files = write_plan(tmp_path)
    data = load_plan(structures=files["structures"], dose=files["doses"][0])
    assert data.plan is None
    assert data.structure_set.names() == ["PTV", "Cord"]
    assert any("no RTPLAN" in w and "fractions is unknown" in w for w in data.warnings)


def test_explicit_dose_selects_its_plan_among_several(tmp_path):
    write_plan(tmp_path / "1", "ALPHA")
    beta = write_plan(tmp_path / "2", "BETA")
    data = load_plan(tmp_path, dose=beta["doses"][0])
    assert data.plan.label == "BETA"


@pytest.mark.parametrize("convention, warned", [("dicom", False), ("z", True)])
def test_feet_first_dose_away_from_the_targets_is_flagged(tmp_path, convention, warned):
    files = write_plan(tmp_path)
    rp = pydicom.dcmread(files["plan"])
    # "z": offsets added along +z although the FFS normal is -z (a non-conforming writer);
    # read per DICOM, that grid lands below the targets.
    rd = syn.dose_dataset_from_function(linear_dose, LO, HI, STEP, orientation="FFS",
                                        frame_convention=convention,
                                        plan_uid=rp.SOPInstanceUID, frame_uid=FRAME)
    syn.write(rd, files["doses"][0])
    data = load_plan(tmp_path)
    assert any("no target ROI (PTV)" in w for w in data.warnings) == warned


def test_dicom_dates_are_read_leniently_and_only_when_real():
    from datetime import date

    from rtcheck.dicom.read import as_date

    assert as_date("20261202") == date(2026, 12, 2)
    assert as_date("2026-12-02") == date(2026, 12, 2)  # separators tolerated
    assert as_date("20261202120000") == date(2026, 12, 2)  # a DT value: its date
    for not_a_date in ("20260230", "20261302", "00000101", "2026120", "", None, "Dec 2"):
        assert as_date(not_a_date) is None, not_a_date
