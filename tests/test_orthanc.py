"""rtcheck with a real PACS: Debian's Orthanc and its DICOMweb plugin (issue 13).

A private Orthanc (tests/support/orthanc.py: its own configuration, storage and free loopback
ports) receives the sample plans over its REST API. Then:

(a) each study is checked through its DICOMweb URL (``rtcheck check http://.../dicom-web/
    studies/UID``) and the result must be the one ``rtcheck check`` gives on the files: same
    verdict, exit code, findings, notes and warnings, the file names aside (the retrieved
    objects are named by SOP instance UID, which is how both sides are compared). ``dvh``
    and ``batch`` too; a prior course by URL; what the real server answers for an unknown
    study, a study without RT objects and a wrong DICOMweb root.
(b) Orthanc is given ``rtcheck serve`` as a DICOM modality and sends it the studies
    (C-STORE, ``POST /modalities/{id}/store``); the node's API then gives each plan the
    verdict ``rtcheck check`` gives on the files.

Orthanc missing is a FAILURE naming the packages (.ci/run installs them), never a skip.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from click.testing import CliRunner
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from support.orthanc import Orthanc, running_orthanc

from rtcheck.cli import main

CT_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.2")
REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_plans"
#: Sample folder -> the facts it is checked with (each folder is one study).
CASES = {
    "spine-sbrt-27Gy3": ["--indication", "oligometastatic", "--site", "spine",
                         "--vertebral-level", "L1"],
    "spine-30Gy10": ["--indication", "pain", "--site", "spine"],
    "single-8Gy1": ["--indication", "pain"],
    "reirradiation/course1-30Gy10": ["--indication", "pain", "--site", "spine"],
    "two-plans": ["--plan", "PLAN_A_20GY5", "--indication", "pain"],
}


def study_uid(folder: Path) -> str:
    return str(pydicom.dcmread(next(folder.glob("*.dcm")), stop_before_pixels=True)
               .StudyInstanceUID)


@pytest.fixture(scope="module")
def pacs(tmp_path_factory) -> Iterator[Orthanc]:
    """One Orthanc for the module, holding every sample plan (uploaded over REST)."""
    with running_orthanc(tmp_path_factory.mktemp("orthanc")) as server:
        answers = server.upload_folder(SAMPLES)
        assert answers and all(a["Status"] in ("Success", "AlreadyStored") for a in answers)
        yield server


def run_cli(*args: str | Path):
    return CliRunner().invoke(main, [str(a) for a in args])


def sop_names(*folders: Path) -> dict[str, str]:
    """Each DICOM file under the folders -> ``<SOPInstanceUID>``: the name both runs share."""
    names = {}
    for folder in folders:
        for path in folder.rglob("*.dcm"):
            uid = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
            names[str(path)] = f"<{uid}>"
            names[str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)] = \
                f"<{uid}>"
    return names


def normalised(doc, names: dict[str, str]):
    """The document with every file path replaced by its SOP instance UID (longest first,
    so that a folder never replaces part of a file's path)."""
    text = json.dumps(doc, sort_keys=True)
    for path in sorted(names, key=len, reverse=True):
        text = text.replace(json.dumps(path)[1:-1], names[path])
    return json.loads(text)


# ----------------------------------------------------------------- (a) through DICOMweb


@pytest.mark.parametrize("case", list(CASES))
def test_check_through_dicomweb_is_check_on_the_files(pacs, tmp_path, case):
    folder = SAMPLES / case
    url = pacs.study_url(study_uid(folder))
    facts = CASES[case]
    on_files = run_cli("check", folder, "--format", "json", *facts)
    via_url = run_cli("check", url, "--download-dir", tmp_path, "--format", "json", *facts)
    assert on_files.exit_code in (0, 1, 3, 5), on_files.output
    assert via_url.exit_code == on_files.exit_code, (via_url.stderr, on_files.stderr)
    assert "retrieved" in via_url.stderr and url in via_url.stderr
    downloaded = tmp_path / study_uid(folder)
    # only RT objects, each under its SOP instance UID, identical to what was uploaded
    names = sop_names(folder, downloaded)
    assert sorted(p.name for p in downloaded.iterdir()) == sorted(
        f"{u.strip('<>')}.dcm" for p, u in names.items() if p.startswith(str(folder)))
    for original in folder.glob("*.dcm"):
        copy = downloaded / f"{names[str(original)].strip('<>')}.dcm"
        assert pydicom.dcmread(copy) == pydicom.dcmread(original), copy
    a = normalised(json.loads(via_url.stdout), names)
    b = normalised(json.loads(on_files.stdout), names)
    assert a == b


def test_a_prior_course_by_url_as_by_files(pacs):
    course1, course2 = SAMPLES / "reirradiation/course1-30Gy10", \
        SAMPLES / "reirradiation/course2-sbrt-27Gy3"
    facts = ["--indication", "reirradiation", "--site", "spine", "--format", "json"]
    on_files = run_cli("check", course2, "--prior", course1, *facts)
    via_url = run_cli("check", pacs.study_url(study_uid(course2)),
                      "--prior", pacs.study_url(study_uid(course1)), *facts)
    assert via_url.exit_code == on_files.exit_code, via_url.stderr
    a, b = json.loads(via_url.stdout), json.loads(on_files.stdout)
    assert a["verdict"] == b["verdict"]
    # the re-irradiation rules (cumulative dose, interval from the RT records) agree
    rules = {f["rule"]: (f["status"], f["value"]) for f in b["findings"]}
    assert {f["rule"]: (f["status"], f["value"]) for f in a["findings"]} == rules
    assert any("reirr" in r for r in rules), sorted(rules)


def test_dvh_through_dicomweb(pacs):
    folder = SAMPLES / "spine-sbrt-27Gy3"
    on_files = run_cli("dvh", folder, "--format", "json", "--metric", "D0.035cc")
    via_url = run_cli("dvh", pacs.study_url(study_uid(folder)), "--format", "json",
                      "--metric", "D0.035cc")
    assert on_files.exit_code == via_url.exit_code == 0, via_url.stderr
    a, b = json.loads(via_url.stdout), json.loads(on_files.stdout)
    assert a["structures"] == b["structures"] and a["plan"] == b["plan"]
    cord = next(s for s in a["structures"] if s["name"] == "SpinalCord")
    assert cord["metrics"]["Dmax"] == pytest.approx(17.0, abs=0.2)


def test_batch_through_dicomweb(pacs, tmp_path):
    folder = SAMPLES / "two-plans"
    out_url, out_files = tmp_path / "url.jsonl", tmp_path / "files.jsonl"
    via_url = run_cli("batch", pacs.study_url(study_uid(folder)), "-o", out_url, "-q",
                      "--jobs", "1")
    on_files = run_cli("batch", folder, "-o", out_files, "-q", "--jobs", "1")
    assert via_url.exit_code == on_files.exit_code, via_url.stderr

    def verdicts(path: Path) -> dict:
        records = [json.loads(line) for line in path.read_text().splitlines()]
        return {r["plan_uid"]: r["verdict"] for r in records if r.get("plan_uid")}

    assert verdicts(out_url) == verdicts(out_files) and len(verdicts(out_files)) == 2


def test_two_plans_in_one_study_ask_for_plan_as_files_do(pacs):
    folder = SAMPLES / "two-plans"
    result = run_cli("check", pacs.study_url(study_uid(folder)), "--indication", "pain")
    on_files = run_cli("check", folder, "--indication", "pain")
    assert result.exit_code == on_files.exit_code == 2
    assert "Traceback" not in result.stderr
    # the same listing of the plans found, each file named by its SOP instance UID
    names = sop_names(folder)
    listing = [line for line in result.stderr.splitlines() if "RTPLAN, label" in line]
    assert len(listing) == 2
    assert sorted(re.sub(r"\(.*/([0-9.]+)\.dcm\)", r"(<\1>)", line) for line in listing) == \
        sorted(line.replace(f"({p})", f"({u})") for line in on_files.stderr.splitlines()
               if "RTPLAN, label" in line for p, u in names.items() if f"({p})" in line)


def test_unknown_study_on_the_real_server(pacs):
    url = pacs.study_url("1.2.826.0.1.3680043.8.498.999999")
    result = run_cli("check", url)
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"rtcheck: error: {url}: no study with this "
                                     "StudyInstanceUID on the server")


def test_wrong_dicomweb_root_on_the_real_server(pacs):
    uid = study_uid(SAMPLES / "single-8Gy1")
    url = f"{pacs.url}/dicomweb/studies/{uid}"
    result = run_cli("dvh", url)
    assert result.exit_code == 2
    assert re.fullmatch(rf"rtcheck: error: {re.escape(url)}: not found \(HTTP 404\): no "
                        rf"DICOMweb service at {re.escape(pacs.url)}/dicomweb .*",
                        result.stderr.strip()), result.stderr


def ct_slice(path: Path) -> str:
    """A one-slice CT study (no RT object); returns its StudyInstanceUID."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientID, ds.PatientName = "CT", "RTCHECK-CT-ONLY", "Sample^CT"
    ds.Rows = ds.Columns = 4
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit, ds.PixelRepresentation, ds.SamplesPerPixel = 15, 1, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = bytes(32)
    ds.save_as(path, enforce_file_format=True)
    return str(ds.StudyInstanceUID)


def test_a_study_without_rt_objects_on_the_real_server(pacs, tmp_path):
    uid = ct_slice(tmp_path / "ct.dcm")
    pacs.upload(tmp_path / "ct.dcm")
    url = pacs.study_url(uid)
    result = run_cli("check", url)
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"rtcheck: error: {url}: the study holds no RT objects "
                                     "(RTPLAN, RTDOSE, RTSTRUCT, RTRECORD); it has: CT 1")


def test_the_command_line_end_to_end(pacs):
    """One real ``rtcheck`` process (no click test runner): exit code and output."""
    import subprocess
    import sys

    from support.orthanc import environment_without_proxy

    folder = SAMPLES / "spine-sbrt-27Gy3"
    url = pacs.study_url(study_uid(folder))
    proc = subprocess.run([sys.executable, "-m", "rtcheck", "check", url, *CASES[
        "spine-sbrt-27Gy3"]], capture_output=True, text=True, timeout=300,
        env=environment_without_proxy(), check=False)
    assert proc.returncode == 1, proc.stderr  # the README's FAIL: the thecal sac decides
    assert "FAIL" in proc.stdout and "ThecalSac" in proc.stdout


# ------------------------------------------------------- (b) Orthanc sends to the node


def test_orthanc_sends_the_studies_to_rtcheck_serve(pacs, tmp_path):
    """Orthanc, with the node declared as a modality, C-STOREs each study to it; the node
    checks every plan (facts from its --facts file) and its API gives the verdict
    ``rtcheck check`` gives on the files with the same facts."""
    from support.node import RunningNode, rtcheck_check_json
    from support.orthanc import ORTHANC_AET

    cases = {"spine-sbrt-27Gy3": CASES["spine-sbrt-27Gy3"], "spine-30Gy10": [],
             "two-plans": [], "reirradiation/course1-30Gy10": []}
    plans = {}  # plan UID -> (folder, facts options)
    for case, facts in cases.items():
        for rp in sorted((SAMPLES / case).glob("RP*.dcm")):
            plans[str(pydicom.dcmread(rp, stop_before_pixels=True).SOPInstanceUID)] = \
                (SAMPLES / case, facts)
    sbrt_uid = next(u for u, (f, _) in plans.items() if f.name == "spine-sbrt-27Gy3")
    facts_file = tmp_path / "facts.csv"
    facts_file.write_text("plan_uid,indication,site,vertebral_level\n"
                          f"{sbrt_uid},oligometastatic,spine,L1\n")
    with RunningNode(tmp_path / "store", "--allow", ORTHANC_AET, "--facts", str(facts_file),
                     "--settle", "10") as node:
        pacs.add_modality("rtcheck", node.ae_title, "127.0.0.1", node.dicom_port)
        pacs.echo("rtcheck")  # C-ECHO first: the node answers Orthanc
        for case in cases:
            answer = pacs.store("rtcheck", [pacs.orthanc_study_id(study_uid(SAMPLES / case))])
            sent = len(list((SAMPLES / case).glob("*.dcm")))
            assert answer.get("InstancesCount") == sent, answer
            assert answer.get("FailedInstancesCount", 0) == 0, answer
        for uid, (folder, facts) in plans.items():
            detail = node.wait_checked(uid, timeout=180)
            assert detail["calling_ae"] == ORTHANC_AET and detail["status"] == "checked"
            assert detail["missing"] == []
            options = ["--plan", uid] if folder.name == "two-plans" else facts
            expected = rtcheck_check_json(str(folder), *options)
            assert detail["verdict"] == expected["verdict"], (folder, uid)
            assert {f["rule"]: f["status"] for f in detail["findings"]} == \
                {f["rule"]: f["status"] for f in expected["findings"]}, folder
        listed = {p["plan_uid"] for p in node.plans()}
        assert listed == set(plans)
