"""support.synthetic: the synthetic DICOM-RT builders round-trip through pydicom.dcmread.

Truth is independent of the builders: voxel positions are recomputed here from the stored
ImagePositionPatient, ImageOrientationPatient, PixelSpacing and GridFrameOffsetVector with the
formula of DICOM PS3.3 C.7.6.2.1.1 / C.8.8.3.2, and the dose function is evaluated there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from support import synthetic as syn


def _roundtrip(ds, tmp_path, name="x.dcm"):
    return pydicom.dcmread(syn.write(ds, tmp_path / name))


def _stored_dose(ds) -> np.ndarray:
    """Stored pixels x DoseGridScaling, shape (frames, rows, columns)."""
    bits = int(ds.BitsAllocated)
    raw = np.frombuffer(ds.PixelData, dtype=f"<u{bits // 8}")
    return raw.reshape(int(ds.NumberOfFrames), ds.Rows, ds.Columns) * float(ds.DoseGridScaling)


def _positions(ds, convention: str = "dicom"):
    """Patient (x, y, z) of every stored pixel, each of shape (frames, rows, columns)."""
    ipp = np.array(ds.ImagePositionPatient, dtype=float)
    iop = np.array(ds.ImageOrientationPatient, dtype=float)
    rowcos, colcos = iop[:3], iop[3:]
    normal = np.cross(rowcos, colcos)
    d_row, d_col = (float(v) for v in ds.PixelSpacing)
    offsets = np.array(ds.GridFrameOffsetVector, dtype=float)
    k, r, c = np.meshgrid(np.arange(int(ds.NumberOfFrames)), np.arange(ds.Rows),
                          np.arange(ds.Columns), indexing="ij")
    pos = (ipp[:, None, None, None] + c * d_col * rowcos[:, None, None, None]
           + r * d_row * colcos[:, None, None, None])
    frame_dir = normal if convention == "dicom" else np.array([0.0, 0.0, 1.0])
    if offsets[0] != 0:  # absolute offsets: patient z of each frame
        pos[2] = offsets[k]
    else:
        pos = pos + offsets[k] * frame_dir[:, None, None, None]
    return pos[0], pos[1], pos[2]


def _field(x, y, z):
    """A dose field with no symmetry in x, y or z (so any flip would show), in Gy."""
    return 2.0 + 0.05 * x + 0.02 * y * y / 10 + 0.03 * z + 0.001 * x * z


BOUNDS = ((-20.0, -10.0, 30.0), (16.0, 14.0, 50.0))
SPACING = (3.0, 2.0, 2.5)


def test_file_meta_and_identity(tmp_path):
    ds = _roundtrip(syn.dose_dataset_from_function(
        _field, *BOUNDS, SPACING, patient_id="P1", patient_name="A^B", frame_uid="1.2.3"),
        tmp_path)
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert ds.file_meta.MediaStorageSOPClassUID == syn.RT_DOSE_STORAGE == ds.SOPClassUID
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.Modality == "RTDOSE"
    assert (ds.PatientID, str(ds.PatientName), ds.FrameOfReferenceUID) == ("P1", "A^B", "1.2.3")
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID"):
        assert pydicom.uid.UID(ds[keyword].value).is_valid


@pytest.mark.parametrize("bits", [16, 32])
def test_dose_values_within_scaling_precision(tmp_path, bits):
    rng = np.random.default_rng(1)
    values = rng.uniform(0.0, 30.0, size=(4, 5, 6))
    ds = _roundtrip(syn.dose_dataset(values, (0, 0, 0), (1, 1, 1), bits=bits), tmp_path)
    scaling = float(ds.DoseGridScaling)
    assert int(ds.BitsAllocated) == bits
    assert scaling * (2 ** bits - 1) == pytest.approx(values.max(), rel=1e-8)
    assert np.max(np.abs(_stored_dose(ds) - values)) <= scaling / 2 * (1 + 1e-9)


@pytest.mark.parametrize("orientation", ["HFS", "FFS", "HFP", "FFP",
                                         (0, -1, 0, 1, 0, 0), (0, 1, 0, -1, 0, 0)])
@pytest.mark.parametrize("offsets", ["relative", "absolute"])
def test_voxel_positions_reproduce_the_dose_function(tmp_path, orientation, offsets):
    ds = _roundtrip(syn.dose_dataset_from_function(
        _field, *BOUNDS, SPACING, orientation=orientation, offsets=offsets), tmp_path)
    x, y, z = _positions(ds, "dicom")
    np.testing.assert_allclose(_stored_dose(ds), _field(x, y, z),
                               atol=float(ds.DoseGridScaling))
    # The grid covers exactly the requested box whatever the orientation.
    assert (x.min(), y.min(), z.min()) == pytest.approx(BOUNDS[0])
    assert (x.max(), y.max(), z.max()) == pytest.approx(BOUNDS[1])


@pytest.mark.parametrize("orientation", ["FFS", "FFP"])
def test_z_frame_convention(tmp_path, orientation):
    ds = _roundtrip(syn.dose_dataset_from_function(
        _field, *BOUNDS, SPACING, orientation=orientation, frame_convention="z"), tmp_path)
    offsets = np.array(ds.GridFrameOffsetVector, dtype=float)
    assert offsets[0] == 0 and np.all(np.diff(offsets) > 0)
    x, y, z = _positions(ds, "z")
    np.testing.assert_allclose(_stored_dose(ds), _field(x, y, z),
                               atol=float(ds.DoseGridScaling))


def test_ffs_dicom_frames_run_towards_feet(tmp_path):
    ds = _roundtrip(syn.dose_dataset_from_function(_field, *BOUNDS, SPACING,
                                                   orientation="FFS"), tmp_path)
    assert float(ds.ImagePositionPatient[2]) == BOUNDS[1][2]  # first frame at the top z
    assert list(map(float, ds.ImageOrientationPatient)) == [-1, 0, 0, 0, 1, 0]
    assert float(ds.ImagePositionPatient[0]) == BOUNDS[1][0]  # first column at max x


def test_pixel_spacing_row_spacing_first(tmp_path):
    ds = _roundtrip(syn.dose_dataset(np.ones((2, 3, 4)), (0, 0, 0), (1.5, 2.5, 3.0)), tmp_path)
    assert [float(v) for v in ds.PixelSpacing] == [2.5, 1.5]
    assert (ds.Rows, ds.Columns, int(ds.NumberOfFrames)) == (3, 4, 2)
    assert [float(v) for v in ds.GridFrameOffsetVector] == [0.0, 3.0]


def test_beam_dose_references_plan_and_beam(tmp_path):
    ds = _roundtrip(syn.dose_dataset(np.ones((1, 2, 2)), (0, 0, 0), (1, 1, 1),
                                     summation="BEAM", plan_uid="1.2.3.4", beam_number=2,
                                     units="GY"), tmp_path)
    ref = ds.ReferencedRTPlanSequence[0]
    assert ds.DoseSummationType == "BEAM"
    assert ref.ReferencedSOPInstanceUID == "1.2.3.4"
    assert ref.ReferencedSOPClassUID == syn.RT_PLAN_STORAGE
    group = ref.ReferencedFractionGroupSequence[0]
    assert group.ReferencedBeamSequence[0].ReferencedBeamNumber == 2


def test_single_frame(tmp_path):
    ds = _roundtrip(syn.dose_dataset(np.full((1, 2, 3), 4.0), (1, 2, 3), (1, 1, 1)), tmp_path)
    assert int(ds.NumberOfFrames) == 1
    assert np.allclose(_stored_dose(ds), 4.0)


def test_bad_dose_arguments():
    with pytest.raises(ValueError):
        syn.dose_dataset(-np.ones((1, 1, 1)), (0, 0, 0), (1, 1, 1))
    with pytest.raises(ValueError):
        syn.dose_dataset(np.ones((1, 1, 1)), (0, 0, 0), (1, 1, 1), orientation="XYZ")
    with pytest.raises(ValueError):  # oblique: only the low-level builder makes those
        syn.dose_dataset(np.ones((1, 1, 1)), (0, 0, 0), (1, 1, 1),
                         orientation=(0.8, 0.6, 0, -0.6, 0.8, 0))


def test_low_level_frames_are_stored_as_given(tmp_path):
    frames = np.arange(2 * 3 * 4, dtype=float).reshape(2, 3, 4)
    iop = (0.8, 0.6, 0, -0.6, 0.8, 0)
    ds = _roundtrip(syn.dose_dataset_from_frames(frames, (1, 2, 3), iop, (2, 1), (0, 5)),
                    tmp_path)
    np.testing.assert_allclose(_stored_dose(ds), frames, atol=float(ds.DoseGridScaling))
    assert [float(v) for v in ds.ImageOrientationPatient] == list(iop)


def _contour_points(item) -> np.ndarray:
    return np.array(item.ContourData, dtype=float).reshape(-1, 3)


def test_structure_set_roundtrip(tmp_path):
    zs = syn.planes(0.0, 10.0, 2.5)
    outer, inner = syn.circle(0, 0, 20), syn.circle(0, 0, 5, n=16)
    rois = [
        syn.ROI("Ring", [(z, outer) for z in zs] + [(z, inner) for z in zs], roi_type="ORGAN"),
        syn.ROI("Two", [(0.0, syn.rectangle(30, 0, 40, 10)), (0.0, syn.rectangle(50, 0, 60, 5))],
                roi_type="PTV"),
        syn.point_roi("Iso", (1.0, 2.0, 3.0)),
        syn.ROI("Empty", roi_type="ORGAN"),
        syn.ROI("Gone", roi_type="ORGAN", omit_contour_item=True),
        syn.ROI("Two", syn.sphere(0, 0, 5, 4, zs), roi_type="GTV"),
    ]
    ds = _roundtrip(syn.structure_set_dataset(rois, frame_uid="1.2.9"), tmp_path)
    assert ds.Modality == "RTSTRUCT" and ds.SOPClassUID == syn.RT_STRUCTURE_SET_STORAGE
    names = [r.ROIName for r in ds.StructureSetROISequence]
    assert names == ["Ring", "Two", "Iso", "Empty", "Gone", "Two"]
    assert [r.ROINumber for r in ds.StructureSetROISequence] == [1, 2, 3, 4, 5, 6]
    types = [o.RTROIInterpretedType for o in ds.RTROIObservationsSequence]
    assert types == ["ORGAN", "PTV", "MARKER", "ORGAN", "ORGAN", "GTV"]
    by_number = {c.ReferencedROINumber: c for c in ds.ROIContourSequence}
    assert 5 not in by_number and "ContourSequence" not in by_number[4]
    ring = by_number[1].ContourSequence
    assert len(ring) == 2 * len(zs)
    pts = _contour_points(ring[0])
    assert ring[0].ContourGeometricType == "CLOSED_PLANAR"
    assert ring[0].NumberOfContourPoints == 64 == len(pts)
    np.testing.assert_allclose(np.hypot(pts[:, 0], pts[:, 1]), 20.0, atol=1e-4)
    assert np.all(pts[:, 2] == 0.0)
    point = by_number[3].ContourSequence[0]
    assert point.ContourGeometricType == "POINT"
    np.testing.assert_allclose(_contour_points(point), [[1.0, 2.0, 3.0]])
    sphere = by_number[6].ContourSequence  # planes 2.5, 5, 7.5 cut the r=4 sphere at z=5
    radii = [np.hypot(*_contour_points(c)[0, :2]) for c in sphere]
    np.testing.assert_allclose(radii, [np.sqrt(16 - 2.5 ** 2), 4.0, np.sqrt(16 - 2.5 ** 2)],
                               atol=1e-4)
    assert ds.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID == "1.2.9"
    assert all(r.ReferencedFrameOfReferenceUID == "1.2.9" for r in ds.StructureSetROISequence)


def test_structure_set_from_dict(tmp_path):
    zs = syn.planes(-3, 3, 3)
    ds = _roundtrip(syn.structure_set_dataset(
        {"PTV": syn.cylinder(0, 0, 10, zs), "Cord": syn.elliptic_cylinder(0, 30, 5, 4, zs)},
        types={"PTV": "PTV"}), tmp_path)
    assert [o.RTROIInterpretedType for o in ds.RTROIObservationsSequence] == ["PTV", "ORGAN"]
    cord = _contour_points(ds.ROIContourSequence[1].ContourSequence[0])
    np.testing.assert_allclose(((cord[:, 0] / 5) ** 2 + ((cord[:, 1] - 30) / 4) ** 2), 1.0,
                               atol=1e-4)


def test_plan_roundtrip(tmp_path):
    beams = [syn.Beam("AP", 0, weight=1), syn.Beam("PA", 180, weight=2),
             syn.Beam("LAO", 45, weight=1)]
    ds = _roundtrip(syn.plan_dataset("SPINE", 10, 30.0, beams=beams, date="20250301",
                                     intent="PALLIATIVE", structure_set_uid="1.2.5",
                                     frame_uid="1.2.9", plan_uid="1.2.7"), tmp_path)
    assert ds.Modality == "RTPLAN" and ds.SOPClassUID == syn.RT_PLAN_STORAGE
    assert (ds.SOPInstanceUID, ds.RTPlanLabel, ds.RTPlanDate, ds.PlanIntent) == (
        "1.2.7", "SPINE", "20250301", "PALLIATIVE")
    assert ds.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID == "1.2.5"
    ref = ds.DoseReferenceSequence[0]
    assert ref.DoseReferenceType == "TARGET" and float(ref.TargetPrescriptionDose) == 30.0
    (group,) = ds.FractionGroupSequence
    assert group.NumberOfFractionsPlanned == 10 and group.NumberOfBeams == 3
    doses = [float(b.BeamDose) for b in group.ReferencedBeamSequence]
    assert doses == pytest.approx([0.75, 1.5, 0.75])  # 3 Gy per fraction split 1:2:1
    assert [b.ReferencedBeamNumber for b in group.ReferencedBeamSequence] == [1, 2, 3]
    assert [b.BeamName for b in ds.BeamSequence] == ["AP", "PA", "LAO"]
    assert all(b.TreatmentDeliveryType == "TREATMENT" for b in ds.BeamSequence)
    assert float(ds.BeamSequence[2].ControlPointSequence[0].GantryAngle) == 45.0


def test_plan_with_two_fraction_groups(tmp_path):
    groups = [syn.FractionGroupSpec(5, 4.0, syn.default_beams()),
              syn.FractionGroupSpec(3, 2.0, [syn.Beam("BOOST", 90)])]
    ds = _roundtrip(syn.plan_dataset("TWO", None, 26.0, fraction_groups=groups), tmp_path)
    assert [g.NumberOfFractionsPlanned for g in ds.FractionGroupSequence] == [5, 3]
    assert [b.BeamNumber for b in ds.BeamSequence] == [1, 2, 3]
    boost = ds.FractionGroupSequence[1].ReferencedBeamSequence[0]
    assert (boost.ReferencedBeamNumber, float(boost.BeamDose)) == (3, 2.0)


def test_plan_without_prescription(tmp_path):
    ds = _roundtrip(syn.plan_dataset("NORX", 5, None), tmp_path)
    assert "DoseReferenceSequence" not in ds


def test_make_uid_is_deterministic():
    assert syn.make_uid("a", 1) == syn.make_uid("a", 1) != syn.make_uid("a", 2)
    assert pydicom.uid.UID(syn.make_uid("a")).is_valid


# --------------------------------------------------------------------------------------
# Spine phantom and sample plans
# --------------------------------------------------------------------------------------

SAMPLES = Path(__file__).resolve().parents[1] / "sample_plans"


def test_sbrt_cord_dmax_closed_form():
    case = syn.spine_case("sbrt")
    a, dose = case.anatomy, case.dose
    # Closed form: Rx exp(-gap / falloff), the gap being 25.5 - 4.5 - (15 + 2) = 4 mm.
    assert a.cord_gap == pytest.approx(4.0)
    assert 27.0 * np.exp(-4.0 / dose.falloff_mm) == pytest.approx(17.0)
    assert case.cord_dmax() == pytest.approx(17.0, abs=1e-9)
    # On the PTV surface the dose is the prescription; in its centre 1.2 x.
    cx, cy, cz = a.centre
    assert float(dose(np.array(cx), np.array(cy + 17.0), np.array(cz))) == pytest.approx(27.0)
    assert float(dose(np.array(cx), np.array(cy), np.array(cz))) == pytest.approx(
        27.0 * (1 + 0.2 * (1 - np.exp(-15.0 / 5.0))))


@pytest.mark.parametrize("kind, expected", [("sbrt", 17.0), ("conventional", 31.0),
                                            ("single", 8.96)])
def test_cord_maximum_is_where_stated(kind, expected):
    """Sampling the contoured cord never finds more than the stated maximum, and comes
    within the lattice resolution of it."""
    case = syn.spine_case(kind)
    cord = syn.roi_by_name(case.rois(), "SpinalCord")
    x, y, z, _ = syn.roi_samples(cord, case.contour_step, 0.1, 2.0)
    polygon_z = np.array([c[0] for c in cord.contours])
    vx, vy = np.vstack([c[1] for c in cord.contours]).T  # all contour vertices
    doses = np.concatenate([case.dose(x, y, z),
                            case.dose(vx, vy, np.repeat(polygon_z, 64))])
    assert case.cord_dmax() == pytest.approx(expected, abs=1e-9)
    assert doses.max() <= expected + 1e-9
    assert doses.max() == pytest.approx(expected, abs=1e-6)  # reached at a contour vertex


def test_conventional_prescription_point():
    case = syn.spine_case("conventional")
    assert float(case.dose(*(np.array(v) for v in case.anatomy.centre))) == pytest.approx(30.0)


def test_spine_plan_objects_are_linked(tmp_path):
    files = syn.write_plan(tmp_path, syn.spine_plan("sbrt", seed=7, patient_id="P7"))
    rp, rs, rd = (pydicom.dcmread(f) for f in files)
    assert (rp.Modality, rs.Modality, rd.Modality) == ("RTPLAN", "RTSTRUCT", "RTDOSE")
    assert rp.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID == rs.SOPInstanceUID
    assert rd.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID == rp.SOPInstanceUID
    frame = rp.FrameOfReferenceUID
    assert rd.FrameOfReferenceUID == frame
    assert rs.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID == frame
    assert {rp.PatientID, rs.PatientID, rd.PatientID} == {"P7"}
    assert rp.StudyInstanceUID == rs.StudyInstanceUID == rd.StudyInstanceUID
    group = rp.FractionGroupSequence[0]
    beam_doses = [float(b.BeamDose) for b in group.ReferencedBeamSequence]
    assert len(beam_doses) == 7 and sum(beam_doses) == pytest.approx(9.0, abs=1e-9)
    assert float(rp.DoseReferenceSequence[0].TargetPrescriptionDose) == 27.0
    assert int(rd.BitsAllocated) == 16
    names = [r.ROIName for r in rs.StructureSetROISequence]
    assert names == ["BODY", "PTV", "GTV", "SpinalCord", "ThecalSac", "Esophagus", "ISO"]
    types = [o.RTROIInterpretedType for o in rs.RTROIObservationsSequence]
    assert types == ["EXTERNAL", "PTV", "GTV", "ORGAN", "ORGAN", "ORGAN", "MARKER"]


def test_spine_plan_is_deterministic(tmp_path):
    a = syn.write_plan(tmp_path / "a", syn.spine_plan("conventional", seed="s"))
    b = syn.write_plan(tmp_path / "b", syn.spine_plan("conventional", seed="s"))
    c = syn.write_plan(tmp_path / "c", syn.spine_plan("conventional", seed="t"))
    assert [f.read_bytes() for f in a] == [f.read_bytes() for f in b]
    assert a[0].read_bytes() != c[0].read_bytes()


def test_beam_and_fraction_doses_add_up():
    plan = syn.spine_plan("conventional", summation="PLAN")["RD"]
    beams = syn.spine_plan("conventional", summation="BEAM")
    fraction = syn.spine_plan("conventional", summation="FRACTION")["RD"]
    total = _stored_dose(plan)
    beam_keys = sorted(k for k in beams if k.startswith("RD.B"))
    assert beam_keys == ["RD.B1", "RD.B2"]
    assert [beams[k].ReferencedRTPlanSequence[0].ReferencedFractionGroupSequence[0]
            .ReferencedBeamSequence[0].ReferencedBeamNumber for k in beam_keys] == [1, 2]
    step = float(plan.DoseGridScaling)
    np.testing.assert_allclose(sum(_stored_dose(beams[k]) for k in beam_keys), total,
                               atol=2 * step)
    np.testing.assert_allclose(_stored_dose(fraction) * 10, total, atol=10 * step)
    assert fraction.DoseSummationType == "FRACTION"


def test_varied_anatomy_keeps_its_promises():
    for seed in range(20):
        case = syn.spine_case("sbrt", seed=seed, vary=True, cord_dmax_gy=16.0)
        assert 3.0 <= case.anatomy.cord_gap <= 5.0
        assert case.cord_dmax() == pytest.approx(16.0)
    assert syn.varied_anatomy(3) == syn.varied_anatomy(3) != syn.varied_anatomy(4)


def test_structure_samples_measure_volume():
    """Dense samples of an analytic cylinder give its volume (independent closed form)."""
    roi = syn.ROI("C", syn.cylinder(0, 0, 10, syn.planes(-9, 9, 2), n=256))
    x, y, z, cell = syn.roi_samples(roi, 2.0, 0.1, 1.0)
    polygon_area = 0.5 * 256 * 100 * np.sin(2 * np.pi / 256)
    assert x.size * cell == pytest.approx(polygon_area * 20.0, rel=1e-3)
    assert syn.dose_at_volume(np.arange(10.0), 100.0, 0.3) == 7.0  # the 3 hottest samples


def test_committed_samples_match_the_generator(tmp_path):
    """sample_plans/ is what scripts/make_sample_plans.py writes today (byte for byte)."""
    samples = syn.make_sample_plans(tmp_path)
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.dcm"))
    assert len(written) == 31 and len(samples) == 7  # 21 RP/RS/RD + 10 treatment records
    committed = sorted(p.relative_to(SAMPLES) for p in SAMPLES.rglob("*.dcm"))
    assert committed == written
    for rel in written:
        assert (SAMPLES / rel).read_bytes() == (tmp_path / rel).read_bytes(), rel
    assert sum((SAMPLES / rel).stat().st_size for rel in written) < 5e6


def test_sample_set_facts():
    by_folder = {(s.folder, s.tag): s.case for s in syn.sample_set()}
    c1 = by_folder[("reirradiation/course1-30Gy10", None)]
    c2 = by_folder[("reirradiation/course2-sbrt-27Gy3", None)]
    assert c1.patient_id == c2.patient_id and c1.frame_uid == c2.frame_uid
    assert (c1.date, c2.date) == ("20250301", "20260301")
    assert (c1.cord_dmax(), c2.cord_dmax()) == pytest.approx((31.0, 15.0))
    a, b = by_folder[("two-plans", "A")], by_folder[("two-plans", "B")]
    assert a.patient_id == b.patient_id and a.uid("RP") != b.uid("RP")
    sbrt = by_folder[("spine-sbrt-27Gy3", None)]
    assert 14.0 <= sbrt.cord_dmax() <= 18.0 < 20.3
