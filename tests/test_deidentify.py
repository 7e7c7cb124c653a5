"""--deidentify means every output: no patient name, ID, birth date, DICOM UID, or path
component holding one, in anything rtcheck writes (standard output, files, standard error,
HTML, JSON, CSV, error messages).

Known identifiers are planted in every DICOM field that can carry them (patient name, ID,
other IDs, birth date, accession number, study ID, physician names, every UID, the plan
label and name, the structure set label, ROI names) and in the file and folder names (a
patient folder named after the patient, files named by their UIDs); each command is run
through the CLI with --deidentify, and every output is searched for every planted term, in
every form it may take (a DICOM person name's components in both orders, a birth date in
DICOM and ISO form), case-insensitively. The same plan without --deidentify shows them
(the test plants what it thinks it plants).
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from support import synthetic as syn

from rtcheck.cli import main

NAME = "ZYXWAB^QUUXLEY^MORTIMER"
NAME_PARTS = ("ZYXWAB", "QUUXLEY", "MORTIMER")
PATIENT_ID = "PID7734219"
OTHER_ID = "OTH5518823"
OTHER_SEQ_ID = "SEQ6650172"
BIRTH_DATE = "19470312"
ACCESSION = "ACC9912345"
STUDY_ID = "STU88231"
PHYSICIAN = "DRWHOMSLEY^PENELOPE"
# UIDs: long ones of the usual shape, and short ones that only the read values can find
STUDY_UID = "1.2.826.0.1.3680043.8.498.41001"
SERIES_UIDS = ("1.2.826.0.1.3680043.8.498.41002", "2.999.71", "1.2.826.0.1.3680043.8.498.41004")
FRAME_UID = "1.2.826.0.1.3680043.8.498.41005"
PLAN_UID = "1.2.826.0.1.3680043.8.498.41006"
SS_UID = "2.999.72"
DOSE_UID = "1.2.826.0.1.3680043.8.498.41008"
PRIOR_UIDS = {"plan": "1.2.826.0.1.3680043.8.498.52006", "ss": "1.2.826.0.1.3680043.8.498.52007",
              "dose": "1.2.826.0.1.3680043.8.498.52008", "frame": "2.999.73",
              "study": "1.2.826.0.1.3680043.8.498.52001"}
OTHER_PLAN_UID = "1.2.826.0.1.3680043.8.498.63006"

#: Every planted term, in the forms an output could show it.
SECRETS = (
    *NAME_PARTS, "ZYXWAB^QUUXLEY", "QUUXLEY ZYXWAB", PATIENT_ID, OTHER_ID, OTHER_SEQ_ID,
    BIRTH_DATE, "1947-03-12", ACCESSION, STUDY_ID, "DRWHOMSLEY", "PENELOPE", STUDY_UID,
    *SERIES_UIDS, FRAME_UID, PLAN_UID, SS_UID, DOSE_UID, *PRIOR_UIDS.values(), OTHER_PLAN_UID,
)


def plant(ds, *, label_note: str = "") -> None:
    """Every identifying attribute of ``ds`` set to a known value."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds.PatientName = NAME
    ds.PatientID = PATIENT_ID
    ds.PatientBirthDate = BIRTH_DATE
    ds.OtherPatientIDs = OTHER_ID
    item = Dataset()
    item.PatientID = OTHER_SEQ_ID
    item.TypeOfPatientID = "TEXT"
    ds.OtherPatientIDsSequence = Sequence([item])
    ds.AccessionNumber = ACCESSION
    ds.StudyID = STUDY_ID
    ds.ReferringPhysicianName = PHYSICIAN
    ds.OperatorsName = PHYSICIAN


def write_case(folder: Path, *, uids: dict, label: str, prescription: float = 27.0,
               fractions: int = 3, cord_gy: float = 28.0, with_plan: bool = True,
               with_structures: bool = True) -> dict[str, Path]:
    """A spine SBRT plan whose every identifier is planted, its files named by UID."""
    zs = syn.planes(-20.0, 20.0, 2.0)
    rois = [syn.ROI("PTV", syn.cylinder(0, 0, 10, zs), roi_type="PTV"),
            syn.ROI("SpinalCord", syn.cylinder(0, 20, 5, syn.planes(-30.0, 30.0, 2.0))),
            # ROI names carrying the patient's ID and name, and a hostile escape sequence
            syn.ROI(f"PTV_{PATIENT_ID}", syn.cylinder(0, 0, 8, zs)),
            syn.ROI("zyxwab lesion", syn.cylinder(0, 0, 6, zs))]
    ss = syn.structure_set_dataset(rois, frame_uid=uids["frame"], label=f"SS {PATIENT_ID}",
                                   study_uid=uids["study"], series_uid=uids["ss_series"],
                                   sop_uid=uids["ss"])
    plan = syn.plan_dataset(label, fractions, prescription, structure_set_uid=uids["ss"],
                            frame_uid=uids["frame"], plan_uid=uids["plan"],
                            study_uid=uids["study"], series_uid=uids["plan_series"],
                            name=f"{label} for {PATIENT_ID} QUUXLEY")
    dose = syn.dose_dataset_from_function(
        lambda x, y, z: cord_gy * np.exp(-np.maximum(np.hypot(x, y) - 10.0, 0.0) / 10.0),
        (-30.0, -30.0, -34.0), (30.0, 30.0, 34.0), (2.0, 2.0, 2.0),
        plan_uid=uids["plan"], frame_uid=uids["frame"], study_uid=uids["study"],
        series_uid=uids["dose_series"], sop_uid=uids["dose"])
    for ds in (plan, ss, dose):
        plant(ds)
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    if with_plan:
        files["plan"] = syn.write(plan, folder / f"RP.{uids['plan']}.dcm")
    if with_structures:
        files["ss"] = syn.write(ss, folder / f"RS_{uids['ss']}.dcm")
    files["dose"] = syn.write(dose, folder / f"RD-{PATIENT_ID}-{uids['dose']}.dcm")
    return files


MAIN_UIDS = {"plan": PLAN_UID, "ss": SS_UID, "dose": DOSE_UID, "frame": FRAME_UID,
             "study": STUDY_UID, "plan_series": SERIES_UIDS[0], "ss_series": SERIES_UIDS[1],
             "dose_series": SERIES_UIDS[2]}


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> dict[str, Path]:
    """A patient folder named after the patient (ID and name), holding this course and,
    in a sub-folder named by the study UID, a prior course; a plan without RTPLAN; a folder
    of two plans; a damaged file named after the patient."""
    root = tmp_path_factory.mktemp("deid")
    patient = root / f"{PATIENT_ID}_ZYXWAB_QUUXLEY"
    course = patient / f"course-{STUDY_UID}"
    files = write_case(course, uids=MAIN_UIDS, label=f"T6 {PATIENT_ID}")
    (course / f"notes_{PATIENT_ID}.dcm").write_bytes(b"DICM but damaged " + PATIENT_ID.encode())
    prior = patient / f"prior-{PRIOR_UIDS['study']}"
    write_case(prior, uids={**PRIOR_UIDS, "plan_series": "1.2.826.0.1.3680043.8.498.52002",
                            "ss_series": "1.2.826.0.1.3680043.8.498.52003",
                            "dose_series": "1.2.826.0.1.3680043.8.498.52004"},
               label="PRIOR T6", prescription=30.0, fractions=10, cord_gy=30.0)
    no_plan = patient / f"noplan-{BIRTH_DATE}"
    loose = write_case(no_plan, uids=MAIN_UIDS, label="X", with_plan=False)
    several = patient / "several"
    write_case(several, uids=MAIN_UIDS, label=f"A {PATIENT_ID}")
    other = {**MAIN_UIDS, "plan": OTHER_PLAN_UID}
    write_case(several / "b", uids=other, label=f"B {PATIENT_ID}")
    return {"course": course, "prior": prior, "no_plan_ss": loose["ss"],
            "no_plan_dose": loose["dose"], "several": several, "plan_file": files["plan"],
            "root": root}


def leaks(text: str, extra: tuple[str, ...] = ()) -> list[str]:
    """The planted terms found in ``text`` (case-insensitive)."""
    low = text.lower()
    return [s for s in (*SECRETS, *extra) if s.lower() in low]


def run(args: list[str], tmp_path: Path) -> tuple[int, str, str]:
    """Run rtcheck with ``args``; standard output and error separately."""
    try:
        runner = CliRunner(mix_stderr=False)
    except TypeError:  # click 8.2: stderr is always separate
        runner = CliRunner()
    res = runner.invoke(main, args, catch_exceptions=False)
    return res.exit_code, res.stdout, res.stderr


def run_and_collect(args: list[str], tmp_path: Path, output: Path | None = None
                    ) -> tuple[int, str]:
    code, out, err = run(args, tmp_path)
    text = out + "\n" + err
    if output is not None and output.exists():
        text += "\n" + output.read_text(encoding="utf-8", errors="replace")
    return code, text


def path_terms(archive: dict[str, Path]) -> tuple[str, ...]:
    """The folder names that hold identifiers, as an output could show them."""
    root = str(archive["root"])
    return (root, f"{PATIENT_ID}_ZYXWAB_QUUXLEY", f"course-{STUDY_UID}",
            f"prior-{PRIOR_UIDS['study']}", f"noplan-{BIRTH_DATE}", f"notes_{PATIENT_ID}")


CHECK_ARGS = ["--indication", "reirradiation", "--site", "spine", "--vertebral-level", "T6"]


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "html"])
@pytest.mark.parametrize("to_file", [False, True])
def test_check_with_prior_leaks_nothing(archive, tmp_path, fmt, to_file):
    out = tmp_path / f"report.{fmt}"
    args = ["check", str(archive["course"]), "--prior", str(archive["prior"]), *CHECK_ARGS,
            "--format", fmt] + (["--output", str(out)] if to_file else [])
    code, plain = run_and_collect(args, tmp_path, out if to_file else None)
    assert code in (0, 1, 3, 5), plain
    # the identifiers are there without --deidentify (the plants took)
    assert PATIENT_ID in plain and "QUUXLEY" in plain.upper()
    if fmt in ("json", "html"):
        assert PLAN_UID in plain
    if to_file:
        out.unlink()
    code2, text = run_and_collect(args + ["--deidentify"], tmp_path, out if to_file else None)
    assert code2 == code, text
    assert leaks(text, path_terms(archive)) == []
    # the report is still a report: verdict, rules, the files named by their kind
    assert re.search(r"\b(PASS|FAIL|REVIEW|NOT_EVALUATED)\b", text)
    assert "SpinalCord" in text
    if fmt in ("json", "html"):
        assert "RTPLAN file" in text and "prior 1 RTPLAN file" in text
    if fmt == "json":
        doc = json.loads(out.read_text() if to_file
                         else run(args + ["--deidentify"], tmp_path)[1])
        assert "uid" not in doc["plan"] and "patient_id" not in doc["plan"]
        assert doc["plan"]["paths"] and all(p.endswith("file") or re.search(r"file \d$", p)
                                            for p in doc["plan"]["paths"])
        prior = doc["facts"]["priors"][0]
        assert prior["label"] == "prior 1 RTPLAN file"
    if fmt == "csv":
        body = out.read_text() if to_file else None
        if body is not None:
            rows = list(csv.reader(io.StringIO(body)))
            assert rows[0][0] == "rule" and len(rows) > 1


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_dvh_leaks_nothing(archive, tmp_path, fmt):
    plot = tmp_path / "dvh.svg"
    args = ["dvh", str(archive["course"]), "--format", fmt, "--plot", str(plot),
            "--metric", "D95%[Gy]"]
    code, plain = run_and_collect(args, tmp_path)
    assert code == 0, plain
    assert PATIENT_ID in plain
    code, text = run_and_collect(args + ["--deidentify"], tmp_path)
    assert code == 0, text
    text += plot.read_text(encoding="utf-8")
    assert leaks(text, path_terms(archive)) == []
    assert "SpinalCord" in text
    if fmt == "json":
        _, stdout, _ = run(args + ["--deidentify"], tmp_path)
        doc = json.loads(stdout)
        assert doc["dose"]["files"] == ["RTDOSE file"]
        assert "uid" not in doc["plan"] and "patient_id" not in doc["plan"]


@pytest.mark.parametrize("command", ["check", "dvh"])
@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_plan_without_rtplan_leaks_nothing(archive, tmp_path, command, fmt):
    """--structures and --dose from the patient's folder: the report names no folder."""
    args = [command, "--structures", str(archive["no_plan_ss"]), "--dose",
            str(archive["no_plan_dose"]), "--format", fmt]
    if command == "check":
        args += ["--indication", "pain"]
    code, plain = run_and_collect(args, tmp_path)
    assert code in (0, 1, 3, 5), plain
    code2, text = run_and_collect(args + ["--deidentify"], tmp_path)
    assert code2 == code, text
    assert leaks(text, path_terms(archive)) == []


def test_several_plans_message_leaks_nothing(archive, tmp_path):
    args = ["check", str(archive["several"]), "--indication", "pain"]
    code, plain = run_and_collect(args, tmp_path)
    assert code == 2 and "plans found" in plain and OTHER_PLAN_UID in plain
    code, text = run_and_collect(args + ["--deidentify"], tmp_path)
    assert code == 2 and "plans found" in text, text
    assert leaks(text, path_terms(archive)) == []
    # the user can still choose: the labels, without the identifiers, are listed
    assert "label 'A [removed]'" in text and "label 'B [removed]'" in text
    # an unknown --plan echoed back (a UID) is removed too
    code, text = run_and_collect(args + ["--plan", OTHER_PLAN_UID + "9", "--deidentify"],
                                 tmp_path)
    assert code == 2 and leaks(text, path_terms(archive)) == []


def test_dvh_errors_leak_nothing(archive, tmp_path):
    args = ["dvh", str(archive["course"]), "--structure", "NoSuchROI", "--deidentify"]
    code, text = run_and_collect(args, tmp_path)
    assert code == 2 and "no structure named 'NoSuchROI'" in text, text
    assert leaks(text, path_terms(archive)) == []


def test_prior_of_the_same_folder_level_errors_leak_nothing(archive, tmp_path):
    """A prior that is the plan being checked: the error names the plan's file."""
    args = ["check", str(archive["course"]), "--prior", str(archive["course"]), *CHECK_ARGS]
    code, plain = run_and_collect(args, tmp_path)
    assert code == 2, plain
    code, text = run_and_collect(args + ["--deidentify"], tmp_path)
    assert code == 2 and leaks(text, path_terms(archive)) == [], text


# --------------------------------------------------------------------------------------
# The de-identifier itself
# --------------------------------------------------------------------------------------


def test_identity_of_a_file_reads_every_identifying_attribute(archive):
    from rtcheck.report import identity_of_file

    terms = {t.lower() for t in identity_of_file(archive["plan_file"])}
    for secret in (PATIENT_ID, OTHER_ID, OTHER_SEQ_ID, BIRTH_DATE, "1947-03-12", ACCESSION,
                   STUDY_ID, *NAME_PARTS, "QUUXLEY ZYXWAB", "ZYXWAB QUUXLEY", "DRWHOMSLEY",
                   PLAN_UID, STUDY_UID, SS_UID, FRAME_UID, SERIES_UIDS[0]):
        assert secret.lower() in terms, secret
    # the standard's own UIDs (SOP class, transfer syntax) are not identifying
    assert not any(t.startswith("1.2.840.10008.") for t in terms)


def test_scrubbing_rules():
    from rtcheck.report import REMOVED, Deidentifier

    d = Deidentifier(["DOE^JOHN", "PID123X", "19470312", "2.99.5", "1001"],
                     files={"/data/PID123X/RP.dcm": "RTPLAN file"}, roots=["/data/PID123X"])
    assert d.text("/data/PID123X/RP.dcm: unreadable") == "RTPLAN file: unreadable"
    assert d.text("(/data/PID123X/sub/x.dcm)").startswith("(file-")
    assert d.text("in /data/PID123X") == "in input folder"
    assert d.text("Doe John, JOHN DOE, doe^john") == f"{REMOVED}, {REMOVED}, {REMOVED}"
    assert d.text("PTV_pid123x") == f"PTV_{REMOVED}"  # inside a structure name
    assert d.text("born 1947-03-12 (19470312)") == f"born {REMOVED} ({REMOVED})"
    # a UID by its shape, also inside a file name; a known short UID as a term
    assert d.text("UID 1.2.826.0.1.3680043.8.498.777 in RD.1.2.826.0.1.3680043.8.498.7.dcm"
                  ) == f"UID {REMOVED} in RD.{REMOVED}.dcm"
    assert d.text("ref 2.99.5, not 2.99.51") == f"ref {REMOVED}, not 2.99.51"
    # a path component holding an identifier goes as a whole, others stay
    assert d.text("/other/pid123x_scans/f.dcm") == f"/other/{REMOVED}/f.dcm"
    assert d.text("/other/clean/f.dcm") == "/other/clean/f.dcm"
    # numbers are not cut: an ID of digits inside a longer number or a decimal stays
    assert d.text("10012 Gy, 0.1001, 1001.5 and ID 1001") == f"10012 Gy, 0.1001, 1001.5 and ID {REMOVED}"
    # doses, schemes and versions are kept
    assert d.text("27 Gy in 3 fractions, 30Gy/10, rtcheck 0.4.1") == (
        "27 Gy in 3 fractions, 30Gy/10, rtcheck 0.4.1")


def test_pseudonyms_are_stable_and_salted(monkeypatch):
    from rtcheck.report import deidentified_key, is_deidentified_key, pseudonym

    a = pseudonym("/archive/PID1/RD.dcm")
    assert a == pseudonym("/archive/PID1/RD.dcm") and re.fullmatch(r"file-[0-9a-f]{12}", a)
    assert a != pseudonym("/archive/PID2/RD.dcm")
    monkeypatch.setenv("RTCHECK_DEIDENTIFY_SALT", "s3cret")
    assert pseudonym("/archive/PID1/RD.dcm") != a
    key = f"{PLAN_UID}|{DOSE_UID}"
    k = deidentified_key(key)
    assert k.startswith("plan-") and is_deidentified_key(k) and deidentified_key(k) == k
    assert deidentified_key("file:PID1/x.dcm").startswith("file-")


def test_scrub_record_for_batch(archive):
    from rtcheck.report import deidentified_progress_label, scrub_record

    course = archive["course"]
    files = [str(course / f"RP.{PLAN_UID}.dcm"),
             str(course / f"RD-{PATIENT_ID}-{DOSE_UID}.dcm"),
             str(course / f"RS_{SS_UID}.dcm")]
    rec = {"key": f"{PLAN_UID}|{DOSE_UID}", "plan_uid": PLAN_UID, "patient_id": PATIENT_ID,
           "plan_label": f"T6 {PATIENT_ID}", "files": files, "missing": [],
           "facts": {"patient_id": PATIENT_ID, "indication": "pain"},
           "plan": {"label": f"T6 {PATIENT_ID}", "uid": PLAN_UID, "patient_id": PATIENT_ID,
                    "paths": files},
           "verdict": "FAIL", "error": None,
           "findings": [{"rule": "r", "structure": f"PTV_{PATIENT_ID}", "status": "FAIL",
                         "reason": "ZYXWAB's cord"}],
           "notes": [], "warnings": [f"{files[1]} duplicates {course}/copy.dcm",
                                     f"RTSTRUCT {SS_UID} not found"],
           "seconds": 1.0}
    out = scrub_record(rec, archive=archive["root"])
    text = json.dumps(out)
    assert leaks(text, path_terms(archive)) == [], text
    assert out["key"].startswith("plan-") and out["files"] == [
        "RTPLAN file", "RTDOSE file", "RTSTRUCT file"]
    assert out["plan_label"] == "T6 [removed]" and out["verdict"] == "FAIL"
    assert "plan_uid" not in out and "patient_id" not in out
    assert out["facts"] == {"indication": "pain"}
    label = deidentified_progress_label(out)
    assert label.startswith(out["key"]) and leaks(label) == []
    # an ERROR record of a damaged file in the patient's folder
    bad = str(course / f"notes_{PATIENT_ID}.dcm")
    err = scrub_record({"key": "file:" + bad, "files": [bad], "verdict": "ERROR",
                        "error": f"{bad}: unreadable"}, archive=archive["root"])
    assert leaks(json.dumps(err), path_terms(archive)) == []
    assert err["key"].startswith("file-") and err["files"][0].startswith("file-")
    assert err["error"] == f"{err['files'][0]}: unreadable"


def test_batch_deidentifier_for_messages(archive):
    from types import SimpleNamespace

    from rtcheck.report import batch_deidentifier

    group = SimpleNamespace(patient_id=PATIENT_ID, plan_uid=PLAN_UID, dose_uids=(DOSE_UID,))
    facts = SimpleNamespace(by_plan={PLAN_UID: {}}, by_patient={OTHER_ID: {}}, by_id={})
    deid = batch_deidentifier(archive["root"], discovery=SimpleNamespace(groups=[group]),
                              facts=facts)
    summary = (f"  skipped {archive['course']}/x.dcm: not DICOM\n"
               f"  not attached to a plan: RTDOSE, UID {DOSE_UID} ({archive['course']}/RD.dcm)\n"
               f"  facts row matched no plan: {OTHER_ID}\n"
               f"  slowest: {PATIENT_ID} / T6 1.0 s\n")
    assert leaks(deid.text(summary), path_terms(archive)) == []


# --------------------------------------------------------------------------------------
# Terminal escapes and spreadsheet formulas
# --------------------------------------------------------------------------------------

HOSTILE = {"\x1b[2J": "\\x1b[2J", "\x1b]0;owned\x07": "\\x1b]0;owned\\x07",
           "\x9b31m": "\\x9b31m", "a\rb": "a\\rb", "x\ny": "x\\ny", "\u202eevil": "\\u202eevil",
           "\x00\x08\x7f": "\\x00\\x08\\x7f",
           "C1\udc9b31m": "C1\\x9b31m"}  # an undecodable byte 0x9b (CSI) from argv


def test_terminal_safe():
    from rtcheck.report import terminal_safe

    for raw, shown in HOSTILE.items():
        assert terminal_safe(raw) == shown
    assert terminal_safe("Moelle épinière ± 2") == "Moelle épinière ± 2"


def test_csv_safe():
    from rtcheck.report import csv_row, csv_safe

    assert csv_safe("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    for cell in ("+1+2", "-2+3", "@SUM(A1)", "\t=1", "\r=1"):
        assert csv_safe(cell) == "'" + cell
    for cell in ("-1.5", "+2", "1e-3", "SpinalCord", "", 12.5, None, -3):
        assert csv_safe(cell) == cell
    assert csv_row(["=1", None, 2.0]) == ["'=1", "", 2.0]


@pytest.fixture(scope="module")
def hostile_plan(tmp_path_factory) -> Path:
    """A plan whose ROI names carry terminal escapes and spreadsheet formulas."""
    folder = tmp_path_factory.mktemp("hostile")
    zs = syn.planes(-20.0, 20.0, 2.0)
    names = ["PTV", "SpinalCord", "\x1b[2J\x1b[HCLEAR", "\x1b]0;owned\x07TITLE", "C1\x9b31mRED",
             "=HYPERLINK(\"http://evil\",\"x\")", "+SUM(1)", "-2+3", "@cmd", "Line\nVerdict: PASS"]
    rois = [syn.ROI(n, syn.cylinder(0, 0 if i == 0 else 20, 10 if i == 0 else 4,
                                    syn.planes(-30.0, 30.0, 2.0) if i else zs))
            for i, n in enumerate(names)]
    frame = syn.make_uid("hostile", "frame")
    ss = syn.structure_set_dataset(rois, frame_uid=frame)
    plan = syn.plan_dataset("HOSTILE", 3, 27.0, structure_set_uid=ss.SOPInstanceUID,
                            frame_uid=frame)
    dose = syn.dose_dataset_from_function(
        lambda x, y, z: 28.0 * np.exp(-np.maximum(np.hypot(x, y) - 10.0, 0.0) / 10.0),
        (-30.0, -30.0, -34.0), (30.0, 30.0, 34.0), (2.0, 2.0, 2.0),
        plan_uid=plan.SOPInstanceUID, frame_uid=frame)
    for ds, name in ((plan, "RP.dcm"), (ss, "RS.dcm"), (dose, "RD.dcm")):
        syn.write(ds, folder / name)
    return folder


CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e]")


@pytest.mark.parametrize("command", ["check", "dvh"])
@pytest.mark.parametrize("deid", [False, True])
def test_no_terminal_escape_reaches_the_table(hostile_plan, tmp_path, command, deid):
    args = [command, str(hostile_plan)] + (["--indication", "pain", "--map",
                                            "spinal_cord=\x1b[2J\x1b[HCLEAR"]
                                           if command == "check" else []) + (
        ["--deidentify"] if deid else [])
    code, out, err = run(args, tmp_path)
    assert code in (0, 1, 3, 5), out + err
    assert not CONTROL.search(out), repr(CONTROL.search(out))
    assert not CONTROL.search(err)
    assert "\\x1b[2J\\x1b[HCLEAR" in out  # shown, escaped
    if command == "dvh":  # every ROI is a row: each shows its escapes
        assert "\\x1b]0;owned\\x07TITLE" in out and "C1\\x9b31mRED" in out
        assert "Line\\nVerdict: PASS" in out
    # a line break in a name cannot forge a line of the report
    assert sum(line.startswith("Verdict:") for line in out.splitlines()) == (
        command == "check")


@pytest.mark.parametrize("command", ["check", "dvh"])
def test_no_formula_in_any_csv(hostile_plan, tmp_path, command):
    out_file = tmp_path / "out.csv"
    args = [command, str(hostile_plan), "--format", "csv", "-o", str(out_file)]
    if command == "check":  # the cord rules read a structure named as a formula
        args += ["--indication", "pain", "--map", 'spinal_cord==HYPERLINK("http://evil","x")']
    code, out, err = run(args, tmp_path)
    assert code in (0, 1, 3, 5), out + err
    rows = list(csv.reader(io.StringIO(out_file.read_text(encoding="utf-8"))))
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), row
            assert not cell.startswith("-") or re.fullmatch(r"-[\d.eE+-]+", cell), row
            assert not CONTROL.search(cell.replace("\n", "")), row
    cells = [cell for row in rows for cell in row]
    assert "'=HYPERLINK(\"http://evil\",\"x\")" in cells
    if command == "dvh":
        names = [r[0] for r in rows[1:]]
        assert "'+SUM(1)" in names and "'-2+3" in names and "'@cmd" in names


def test_check_csv_cells_are_neutralised():
    """render_csv of a result whose texts begin with formula characters."""
    from rtcheck.checker.findings import CheckResult, Finding
    from rtcheck.cli.check import render_csv

    f = Finding(rule="r", protocol="p", kind="k", status="FAIL", reason="=cmd|' /C calc'!A0",
                source="@src", structure="+PTV", limit="-1+1", value=-2.5)
    text = render_csv(CheckResult(verdict="FAIL", findings=[f]))
    row = next(r for r in csv.DictReader(io.StringIO(text)))
    assert row["reason"].startswith("'=") and row["source"] == "'@src"
    assert row["structure"] == "'+PTV" and row["limit"] == "'-1+1" and row["value"] == "-2.5"


# --------------------------------------------------------------------------------------
# Batch: what rtcheck.batch must call (scrub_record, batch_deidentifier,
# deidentified_progress_label), and the HTML reports and index of a batch
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def batch_run(archive, tmp_path_factory):
    """Every plan of the patient's folder checked as a batch does, each record
    de-identified as the batch must write it; the summary and progress lines too."""
    from rtcheck import batch as B
    from rtcheck.batch.html_reports import batch_worker
    from rtcheck.report import (
        batch_deidentifier,
        deidentified_progress_label,
        scrub_record,
    )

    root = archive["root"]
    reports = tmp_path_factory.mktemp("reports")
    found = B.discover(root)
    worker = batch_worker(reports, True, archive=root)
    records = [worker(B.PlanTask(g)) for g in found.groups]
    records += [B.bad_file_record(b) for b in found.bad_files]
    records += [B.skipped_record(s) for s in found.skipped_files]
    scrubbed = [scrub_record(r, archive=root) for r in records]
    progress = io.StringIO()
    summary = B.BatchSummary(output="results.jsonl")
    summary.discovery = found
    for i, rec in enumerate(scrubbed, start=1):
        summary.add({**rec, "plan_label": deidentified_progress_label(rec)})
        progress.write(f"[{i}/{len(scrubbed)}] {rec['verdict']:<13} "
                       f"{deidentified_progress_label(rec)}: {rec.get('error') or ''}\n")
    stderr = batch_deidentifier(root, discovery=found).text(progress.getvalue()
                                                            + summary.render())
    return {"records": records, "scrubbed": scrubbed, "stderr": stderr, "reports": reports,
            "found": found}


def test_batch_records_and_messages_leak_nothing(archive, batch_run):
    plain = json.dumps(batch_run["records"])
    assert PATIENT_ID in plain and PLAN_UID in plain  # the plants took
    jsonl = "".join(json.dumps(r) + "\n" for r in batch_run["scrubbed"])
    assert leaks(jsonl, path_terms(archive)) == [], leaks(jsonl, path_terms(archive))
    assert leaks(batch_run["stderr"], path_terms(archive)) == [], batch_run["stderr"]
    # still a batch output: one record per plan with its verdict and findings
    verdicts = [r["verdict"] for r in batch_run["scrubbed"]]
    assert "ERROR" in verdicts and any(v in ("FAIL", "PASS", "NOT_EVALUATED", "REVIEW")
                                       for v in verdicts)
    plans = [r for r in batch_run["scrubbed"] if r["verdict"] != "ERROR"
             and r["key"].startswith("plan-")]
    assert plans and all(r["findings"] and r["files"][0] == "RTPLAN file" for r in plans)
    # the keys are stable: --resume finds the plans again
    from rtcheck.report import deidentified_key
    assert {deidentified_key(r["key"]) for r in batch_run["records"]} == {
        r["key"] for r in batch_run["scrubbed"]}


def test_batch_reports_and_index_leak_nothing(archive, batch_run, tmp_path):
    from rtcheck.report import report_file_name, write_batch_index

    reports = batch_run["reports"]
    pages = sorted(reports.glob("*.html"))
    assert pages
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert leaks(text, path_terms(archive)) == [], page
        assert "RTPLAN file" in text
    # the index, from an output written de-identified and from one that was not
    for name, records in (("scrubbed", batch_run["scrubbed"]),
                          ("plain", batch_run["records"])):
        out = tmp_path / f"{name}.jsonl"
        out.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        index = write_batch_index(reports, out, deidentify=True, archive=archive["root"])
        text = index.read_text(encoding="utf-8")
        assert leaks(text, path_terms(archive)) == [], name
        links = re.findall(r'href="([^"]+)"', text)
        assert links and all((reports / link).exists() for link in links)
        assert set(links) <= {report_file_name(r["key"]) for r in batch_run["scrubbed"]}


def test_batch_csv_cells_with_the_helper():
    """What the batch CSV must do with each cell (after rtcheck.batch._cell): csv_safe."""
    from rtcheck.report import csv_safe

    for cell in ('=HYPERLINK("x")', "@cmd", "+1+cmd", "-1+1", "\t=1"):
        assert csv_safe(cell) == "'" + cell
    for cell in ("SpinalCord", "-1.5", "2026-03-01", ""):
        assert csv_safe(cell) == cell


def test_real_stderr_of_a_subprocess_leaks_nothing(archive, tmp_path):
    """Outside the test runner (which captures Python warnings itself): a plan whose UID
    value is invalid and carries the patient ID (pydicom warns quoting the value)."""
    import shutil
    import subprocess
    import sys

    import pydicom
    from pydicom.dataelem import DataElement

    folder = tmp_path / f"{PATIENT_ID}-copy"
    shutil.copytree(archive["course"], folder)
    plan_file = next(folder.glob("RP.*"))
    with pytest.warns(UserWarning, match="Invalid value for VR UI"):  # what rtcheck meets
        ds = pydicom.dcmread(plan_file)
        ds.add(DataElement(0x0020000E, "UI", f"{SERIES_UIDS[0]}.{PATIENT_ID}"))
        ds.save_as(plan_file, enforce_file_format=True)
    for args in (["check", str(folder), "--indication", "pain", "--deidentify"],
                 ["check", str(folder), "--indication", "pain", "--format", "html",
                  "--deidentify", "-o", str(tmp_path / "r.html")],
                 ["dvh", str(folder), "--deidentify"],
                 ["check", str(archive["several"]), "--deidentify"]):
        res = subprocess.run([sys.executable, "-m", "rtcheck", *args], capture_output=True,
                             text=True, timeout=300)
        assert res.returncode in (0, 1, 2, 3, 5), res.stderr
        text = res.stdout + res.stderr
        if (tmp_path / "r.html").exists():
            text += (tmp_path / "r.html").read_text(encoding="utf-8")
        assert leaks(text, (*path_terms(archive), str(folder))) == [], text[-2000:]


def test_batch_command_with_deidentify_leaks_nothing(archive, tmp_path):
    """``rtcheck batch --deidentify`` end to end, in a real process: the JSONL records, the
    report folder, index.html, progress and summary on stderr hold no planted identifier, no
    identifying path; --resume of the same output keeps the pseudonymous keys."""
    import subprocess
    import sys

    out, reports = tmp_path / "out.jsonl", tmp_path / "reports"
    cmd = [sys.executable, "-m", "rtcheck", "batch", str(archive["root"]), "-o", str(out),
           "--report-dir", str(reports), "--deidentify", "--jobs", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode in (0, 1, 3, 4, 5), proc.stderr
    texts = {"stdout": proc.stdout, "stderr": proc.stderr, "jsonl": out.read_text()}
    texts.update({p.name: p.read_text(errors="replace") for p in reports.iterdir()})
    texts.update({f"name {p.name}": p.name for p in reports.iterdir()})
    for name, text in texts.items():
        assert leaks(text, path_terms(archive)) == [], (name, leaks(text, path_terms(archive)))
    keys = [json.loads(line)["key"] for line in out.read_text().splitlines()]
    from rtcheck.report import is_deidentified_key
    assert keys and all(is_deidentified_key(k) for k in keys), keys
    again = subprocess.run(cmd[:-2] + ["--resume", "--jobs", "1"], capture_output=True,
                           text=True, timeout=600)
    assert again.returncode == proc.returncode, again.stderr
    assert [json.loads(line)["key"] for line in out.read_text().splitlines()] == keys
    assert leaks(again.stderr, path_terms(archive)) == []
    # a resume without --deidentify of a de-identified output is refused (exit 2)
    mixed = subprocess.run([sys.executable, "-m", "rtcheck", "batch", str(archive["root"]), "-o",
                            str(out), "--resume", "--jobs", "1"], capture_output=True, text=True,
                           timeout=600)
    assert mixed.returncode == 2 and "resume it the same way" in mixed.stderr
