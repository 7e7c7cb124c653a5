"""Treatment records (RTRECORD): the dates a plan was delivered on, read by load_plan.

The re-irradiation interval runs from the prior course's last fraction as delivered, which only
the RT Beams Treatment Records state (the RTPlanDate is when the plan was made). Truth here is
the calendar: the sample course 1 was delivered on the ten weekdays from 2025-03-03.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pydicom
import pytest
from click.testing import CliRunner
from support import synthetic as syn

from rtcheck.dicom import group_plans, load_plan, scan
from rtcheck.errors import InputError
from rtcheck.model import PlanData

SAMPLES = Path(__file__).resolve().parents[1] / "sample_plans"
COURSE1 = SAMPLES / "reirradiation" / "course1-30Gy10"
COURSE2 = SAMPLES / "reirradiation" / "course2-sbrt-27Gy3"
#: 2025-03-03 (a Monday) to 2025-03-14: two weeks of weekdays.
DELIVERED = [dt.date(2025, 3, 3) + dt.timedelta(days=d) for d in (0, 1, 2, 3, 4,
                                                                   7, 8, 9, 10, 11)]


def _course1_case() -> syn.SpineCase:
    (sample,) = [s for s in syn.sample_set() if s.folder == "reirradiation/course1-30Gy10"]
    return sample.case


def _copy_course1(tmp_path: Path) -> Path:
    folder = tmp_path / "course1"
    shutil.copytree(COURSE1, folder)
    return folder


def _record_warnings(data: PlanData, path: Path) -> list[str]:
    return [w for w in data.warnings if str(path) in w]


# --------------------------------------------------------------------------------------
# The sample course
# --------------------------------------------------------------------------------------

def test_sample_course1_dates_are_its_ten_weekdays():
    data = load_plan(COURSE1)
    assert data.plan.label == "C1_30GY10" and data.plan.date == dt.date(2025, 3, 1)
    assert data.treatment_dates == DELIVERED
    assert all(d.weekday() < 5 for d in data.treatment_dates)
    assert data.last_treatment_date == dt.date(2025, 3, 14) != data.plan.date
    assert sorted(Path(p).name for p in data.treatment_records) == [
        f"RT.F{k:02d}.dcm" for k in range(1, 11)]
    assert not any("treatment record" in w for w in data.warnings)
    # The dose and structures are unchanged by the records.
    assert data.dose is not None and data.structure_set is not None


def test_plan_without_records_has_no_dates():
    data = load_plan(COURSE2)
    assert data.treatment_dates == [] and data.treatment_records == []
    assert data.last_treatment_date is None
    assert PlanData(None, None, None).last_treatment_date is None  # defaults


def test_records_are_scanned_and_grouped_with_their_plan():
    headers = scan(COURSE1)
    assert sorted(h.modality for h in headers).count("RTRECORD") == 10
    (group,) = group_plans(headers)
    assert len(group.records) == 10 and not group.missing
    assert {r.referenced_plan_uid for r in group.records} == {group.plan.sop_instance_uid}


def test_whole_reirradiation_folder_still_asks_which_plan():
    with pytest.raises(InputError, match="2 plans found"):
        load_plan(SAMPLES / "reirradiation")
    c1 = load_plan(SAMPLES / "reirradiation", plan="C1_30GY10")
    c2 = load_plan(SAMPLES / "reirradiation", plan="C2_SBRT_27GY3")
    assert c1.last_treatment_date == dt.date(2025, 3, 14)
    assert c2.treatment_dates == []  # course 1's records belong to course 1 only
    assert not any("treatment record" in w for w in c2.warnings)


def test_dvh_command_still_works_on_course1():
    from rtcheck.cli import main

    if "dvh" not in main.commands:
        pytest.skip("the dvh command is not registered")
    result = CliRunner().invoke(main, ["dvh", str(COURSE1)])
    assert result.exit_code == 0, result.output
    assert "C1_30GY10" in result.output and "SpinalCord" in result.output


# --------------------------------------------------------------------------------------
# Records of other plans
# --------------------------------------------------------------------------------------

def test_record_of_a_plan_not_found_is_not_counted_and_is_named(tmp_path):
    folder = _copy_course1(tmp_path)
    other = syn.spine_case("conventional", seed="another plan", patient_id="RTCHECK-SAMPLE-04")
    stray = syn.write(syn.treatment_record_dataset(other.rtplan(), 1, "20250430"),
                      folder / "RT.other.dcm")
    data = load_plan(folder)
    assert data.treatment_dates == DELIVERED  # not 2025-04-30
    assert str(stray) not in data.treatment_records
    (note,) = _record_warnings(data, stray)
    assert "not among the files found" in note and "not counted" in note


def test_record_of_another_plan_in_the_folder_is_that_plans(tmp_path):
    folder = tmp_path / "two-plans"
    shutil.copytree(SAMPLES / "two-plans", folder)
    (b,) = [s.case for s in syn.sample_set() if s.tag == "B"]
    syn.write_plan(folder, b.treatment_records(["20260316"]), "B")
    a_data = load_plan(folder, plan="PLAN_A_20GY5")
    b_data = load_plan(folder, plan="PLAN_B_8GY1")
    assert a_data.treatment_dates == [] and a_data.treatment_records == []
    assert not any("treatment record" in w for w in a_data.warnings)
    assert b_data.treatment_dates == [dt.date(2026, 3, 16)]
    assert b_data.treatment_records == [str(folder / "RT.F01.B.dcm")]


def test_records_join_a_dose_whose_plan_is_missing(tmp_path):
    folder = _copy_course1(tmp_path)
    (folder / "RP.dcm").unlink()
    data = load_plan(folder)
    assert data.plan is None and data.treatment_dates == DELIVERED


def test_duplicate_record_is_counted_once(tmp_path):
    folder = _copy_course1(tmp_path)
    shutil.copy(folder / "RT.F10.dcm", folder / "copy-of-last-record")
    data = load_plan(folder)
    assert data.treatment_dates == DELIVERED and len(data.treatment_records) == 10
    assert any("copy-of-last-record duplicates" in w for w in data.warnings)


# --------------------------------------------------------------------------------------
# Unreadable records and dates
# --------------------------------------------------------------------------------------

def _cuts(data: bytes) -> dict[str, int]:
    plan_ref = data.rindex(b"\x0c\x30\x02\x00")  # the (300C,0002) tag: last top-level element
    return {"inside the beam sequence": len(data) // 2,
            "between two elements": plan_ref,
            "inside the last element's header": len(data) - 5}


@pytest.mark.parametrize("where", ["inside the beam sequence", "between two elements",
                                   "inside the last element's header"])
def test_truncated_record_in_a_folder_is_a_warning_naming_it(tmp_path, where):
    folder = _copy_course1(tmp_path)
    last = folder / "RT.F10.dcm"
    data = last.read_bytes()
    last.write_bytes(data[:_cuts(data)[where]])
    loaded = load_plan(folder)  # no traceback, no error: the plan itself is complete
    assert loaded.treatment_dates == DELIVERED[:9]  # the last fraction's record is lost
    assert str(last) not in loaded.treatment_records
    assert _record_warnings(loaded, last), loaded.warnings


def test_truncated_record_named_is_an_input_error_naming_it(tmp_path):
    folder = _copy_course1(tmp_path)
    last = folder / "RT.F10.dcm"
    last.write_bytes(last.read_bytes()[:1500])
    with pytest.raises(InputError) as err:
        load_plan([folder / "RP.dcm", folder / "RS.dcm", folder / "RD.dcm", last])
    assert err.value.path == str(last) and "truncated" in err.value.message


def test_truncated_record_on_the_command_line(tmp_path):
    from rtcheck.cli import main

    if "dvh" not in main.commands:
        pytest.skip("the dvh command is not registered")
    folder = _copy_course1(tmp_path)
    last = folder / "RT.F10.dcm"
    last.write_bytes(last.read_bytes()[:1500])
    named = CliRunner().invoke(main, ["dvh", *(str(folder / n) for n in
                                               ("RP.dcm", "RS.dcm", "RD.dcm", "RT.F10.dcm"))])
    assert named.exit_code == 2 and "Traceback" not in named.output + named.stderr
    assert named.stderr.startswith("rtcheck: error: ") and str(last) in named.stderr
    in_folder = CliRunner().invoke(main, ["dvh", str(folder)])
    assert in_folder.exit_code == 0, in_folder.output
    assert str(last) in in_folder.output  # listed among the warnings


def _rewrite(path: Path, edit) -> None:
    ds = pydicom.dcmread(path)
    edit(ds)
    ds.save_as(path, enforce_file_format=True)


def _set_control_point_dates(ds, value: str) -> None:
    for beam in ds.TreatmentSessionBeamSequence:
        for cp in beam.ControlPointDeliverySequence:
            cp.TreatmentControlPointDate = value


@pytest.mark.filterwarnings("ignore:Invalid value for VR DA")
def test_unreadable_date_is_a_warning_naming_the_file(tmp_path):
    folder = _copy_course1(tmp_path)
    last = folder / "RT.F10.dcm"

    def edit(ds):
        ds.TreatmentDate = "20251345"  # month 13
        _set_control_point_dates(ds, "2025031")  # 7 digits

    _rewrite(last, edit)
    data = load_plan(folder)
    assert data.treatment_dates == DELIVERED[:9]
    warned = _record_warnings(data, last)
    assert any("'20251345' is not a readable date" in w for w in warned)
    assert any("'2025031' is not a readable date" in w for w in warned)


def test_record_without_any_date_is_a_warning(tmp_path):
    folder = _copy_course1(tmp_path)
    last = folder / "RT.F10.dcm"

    def edit(ds):
        ds.TreatmentDate = ""
        _set_control_point_dates(ds, "")

    _rewrite(last, edit)
    data = load_plan(folder)
    assert data.treatment_dates == DELIVERED[:9] and str(last) in data.treatment_records
    (note,) = _record_warnings(data, last)
    assert "states no treatment date" in note


def test_dates_only_in_the_beam_session_items_are_read(tmp_path):
    """TreatmentDate (Type 2) left empty: the session's date is in TreatmentSessionBeamSequence
    (each delivered control point's TreatmentControlPointDate, Type 1)."""
    case = _course1_case()
    record = syn.treatment_record_dataset(case.rtplan(), 10, "20250317", record_date=False)
    assert record.TreatmentDate == "" and record.TreatmentTime == ""
    assert {cp.TreatmentControlPointDate for b in record.TreatmentSessionBeamSequence
            for cp in b.ControlPointDeliverySequence} == {"20250317"}
    folder = _copy_course1(tmp_path)
    syn.write(record, folder / "RT.F10.dcm")  # fraction 10 delivered a Monday later
    data = load_plan(folder)
    assert data.treatment_dates == [*DELIVERED[:9], dt.date(2025, 3, 17)]
    assert data.last_treatment_date == dt.date(2025, 3, 17)


def test_a_treatment_date_in_the_beam_items_is_read(tmp_path):
    """Some systems write a TreatmentDate in each TreatmentSessionBeamSequence item."""
    folder = _copy_course1(tmp_path)
    last = folder / "RT.F10.dcm"

    def edit(ds):
        ds.TreatmentDate = ""
        for beam in ds.TreatmentSessionBeamSequence:
            del beam.ControlPointDeliverySequence
            beam.TreatmentDate = "20250318"

    _rewrite(last, edit)
    data = load_plan(folder)
    assert data.last_treatment_date == dt.date(2025, 3, 18)
    assert data.treatment_dates == [*DELIVERED[:9], dt.date(2025, 3, 18)]


def test_every_date_of_a_record_counts(tmp_path):
    """A record dated on two days (a session across midnight, or a summary) gives both."""
    folder = _copy_course1(tmp_path)
    _rewrite(folder / "RT.F10.dcm",
             lambda ds: ds.TreatmentSessionBeamSequence[1].ControlPointDeliverySequence[1]
             .__setattr__("TreatmentControlPointDate", "20250315"))
    data = load_plan(folder)
    assert data.treatment_dates == [*DELIVERED, dt.date(2025, 3, 15)]


# --------------------------------------------------------------------------------------
# The synthetic writer
# --------------------------------------------------------------------------------------

def test_record_writer_roundtrip_and_determinism(tmp_path):
    case = _course1_case()
    records = case.treatment_records(syn.weekdays("20250303", 10))
    assert list(records) == [f"RT.F{k:02d}" for k in range(1, 11)]
    ds = pydicom.dcmread(syn.write(records["RT.F10"], tmp_path / "a.dcm"))
    plan = case.rtplan()
    assert ds.file_meta.MediaStorageSOPClassUID == syn.RT_BEAMS_TREATMENT_RECORD_STORAGE
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.481.4" and ds.Modality == "RTRECORD"
    assert ds.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID == plan.SOPInstanceUID
    assert (ds.PatientID, ds.StudyInstanceUID) == (plan.PatientID, plan.StudyInstanceUID)
    assert ds.TreatmentDate == "20250314" and int(ds.InstanceNumber) == 10
    beams = ds.TreatmentSessionBeamSequence
    assert [int(b.ReferencedBeamNumber) for b in beams] == [1, 2]
    assert {int(b.CurrentFractionNumber) for b in beams} == {10}
    meterset = [float(r.BeamMeterset) for r in plan.FractionGroupSequence[0].ReferencedBeamSequence]
    assert [float(b.DeliveredPrimaryMeterset) for b in beams] == meterset
    again = case.treatment_records(syn.weekdays("20250303", 10))["RT.F10"]
    assert syn.write(again, tmp_path / "b.dcm").read_bytes() == (tmp_path / "a.dcm").read_bytes()


def test_weekdays_and_writer_arguments():
    assert syn.weekdays("2025-03-01", 3) == ("20250303", "20250304", "20250305")  # Sat start
    assert syn.weekdays(dt.date(2025, 3, 14), 2) == ("20250314", "20250317")
    plan = _course1_case().rtplan()
    with pytest.raises(ValueError, match="outside the 10 fractions"):
        syn.treatment_record_dataset(plan, 11, "20250317")
    with pytest.raises(ValueError):
        syn.treatment_record_dataset(plan, 1, "20250230")  # not a calendar date
    with pytest.raises(ValueError, match="fraction group 2"):
        syn.treatment_record_dataset(plan, 1, "20250303", fraction_group=2)
