"""rtcheck.synthetic: the synthetic DICOM-RT builders round-trip through pydicom.dcmread.

Truth is independent of the builders: voxel positions are recomputed here from the stored
ImagePositionPatient, ImageOrientationPatient, PixelSpacing and GridFrameOffsetVector with the
formula of DICOM PS3.3 C.7.6.2.1.1 / C.8.8.3.2, and the dose function is evaluated there.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from rtcheck import synthetic as syn


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
