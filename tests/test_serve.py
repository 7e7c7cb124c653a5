"""``rtcheck serve``: the node receives the sample plans from a real Storage SCU
(pynetdicom's, and dcmtk's ``storescu``) over loopback, checks them, and its API gives the
verdicts ``rtcheck check`` gives on the same files.

Every test starts its own node (a subprocess, free ports, its own store): nothing leaks from
one test to another.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from support.node import (
    SAMPLE_PLANS,
    RunningNode,
    echo,
    files_of,
    fresh_copies,
    index_rows,
    plan_uid,
    rtcheck_check_json,
    self_signed_certificate,
    send,
    send_storescu,
    storescu,
)

SBRT = SAMPLE_PLANS / "spine-sbrt-27Gy3"
CONVENTIONAL = SAMPLE_PLANS / "spine-30Gy10"
SINGLE = SAMPLE_PLANS / "single-8Gy1"
COURSE1 = SAMPLE_PLANS / "reirradiation" / "course1-30Gy10"
COURSE2 = SAMPLE_PLANS / "reirradiation" / "course2-sbrt-27Gy3"
SBRT_FACTS = ["--indication", "oligometastatic", "--site", "spine", "--vertebral-level", "L1"]


def findings(doc: dict) -> list[tuple]:
    """What must agree between the node and ``rtcheck check``: each finding's rule, status,
    code, deciding structure and value."""
    return [(f["rule"], f["status"], f["code"], f.get("structure"),
             None if f.get("value") is None else round(f["value"], 6))
            for f in doc["findings"]]


def assert_same_check(node_doc: dict, cli_doc: dict) -> None:
    assert node_doc["verdict"] == cli_doc["verdict"]
    assert node_doc["exit_code"] == cli_doc["exit_code"]
    assert findings(node_doc) == findings(cli_doc)
    for fact in ("indication", "site", "technique", "vertebral_level"):
        assert node_doc["facts"].get(fact) == cli_doc["facts"].get(fact)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


def test_echo_and_sample_plans_checked_as_rtcheck_check(store: Path, tmp_path: Path) -> None:
    facts = tmp_path / "facts.csv"
    with open(facts, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["plan_uid", "indication", "site", "vertebral_level"])
        writer.writerow([plan_uid(SBRT), "oligometastatic", "spine", "L1"])
    with RunningNode(store, "--settle", "30", "--facts", str(facts)) as node:
        assert echo(node.dicom_port) == 0
        for folder in (SBRT, SINGLE):
            assert send(files_of(folder), node.dicom_port) == [0, 0, 0]
        sbrt = node.wait_checked(plan_uid(SBRT))
        single = node.wait_checked(plan_uid(SINGLE))
        assert_same_check(sbrt, rtcheck_check_json(str(SBRT), *SBRT_FACTS))
        assert_same_check(single, rtcheck_check_json(str(SINGLE)))
        assert sbrt["verdict"] == "FAIL" and sbrt["status"] == "checked"
        assert sbrt["facts_given"]["indication"] == "oligometastatic"
        assert [h["trigger"] for h in sbrt["history"]] == ["complete"]

        listed = node.plans()  # newest first: the single fraction was sent last
        assert [p["plan_uid"] for p in listed] == [plan_uid(SINGLE), plan_uid(SBRT)]
        first = listed[1]
        assert (first["plan_label"], first["fractions"], first["dose_gy"], first["date"]) == (
            "SBRT_27GY3", 3, 27.0, "2026-03-05")
        assert first["calling_ae"] == "TESTSCU" and first["patient"]["id"] == "RTCHECK-SAMPLE-02"

        report = node.wait_for("the SBRT report", lambda: (
            r := node.request(first["report"])).status == 200 and r)
        assert report.headers["content-type"].startswith("text/html")
        assert b"FAIL" in report.body and b"SBRT_27GY3" in report.body
        page = node.request("/").body.decode()
        assert "SBRT_27GY3" in page and "RTCHECK-SAMPLE-02" in page and 'class="FAIL"' in page


def test_storescu_of_dcmtk(store: Path) -> None:
    exe = storescu()
    assert exe is not None, ("dcmtk's storescu is not installed (Debian package dcmtk; "
                             ".ci/run installs it): the node is not tested with dcmtk")
    with RunningNode(store, "--settle", "30") as node:
        proc = send_storescu(files_of(COURSE1), node.dicom_port)
        assert proc.returncode == 0, proc.stderr
        doc = node.wait_checked(plan_uid(COURSE1))
        assert doc["calling_ae"] == "STORESCU"
        assert_same_check(doc, rtcheck_check_json(str(COURSE1)))
        # the ten RT Beams Treatment Records arrived and belong to the plan
        records = index_rows(store, "SELECT COUNT(*) FROM objects WHERE kind = 'RTRECORD' "
                             "AND referenced_uid = ?", (plan_uid(COURSE1),))
        assert records == [(10,)]


def test_posted_facts_recheck_and_keep_history(store: Path) -> None:
    with RunningNode(store, "--settle", "30") as node:
        assert send(files_of(CONVENTIONAL), node.dicom_port) == [0, 0, 0]
        uid = plan_uid(CONVENTIONAL)
        first = node.wait_checked(uid)
        assert first["verdict"] == "NOT_EVALUATED"  # no indication: never guessed
        assert any(f["code"] == "fact_missing" for f in first["findings"])

        resp = node.request(f"/api/plans/{uid}/check", {"indication": "pain", "site": "spine"})
        assert resp.status == 202, resp.body
        second = node.wait_checked(uid, checks=2)
        assert_same_check(second, rtcheck_check_json(str(CONVENTIONAL), "--indication", "pain",
                                                     "--site", "spine"))
        history = second["history"]
        assert [h["trigger"] for h in history] == ["requested", "complete"]
        assert history[0]["facts"] == {"indication": "pain", "site": "spine"}
        assert history[1]["verdict"] == "NOT_EVALUATED"  # the earlier result is kept

        for body, words in (({"indication": "pian"}, "pian"), ({"colour": "red"}, "colour"),
                            ([1, 2], "JSON object")):
            bad = node.request(f"/api/plans/{uid}/check", body)
            assert bad.status == 400 and words in bad.json()["error"], bad.body
        assert node.request("/api/plans/1.2.3.4/check", {}).status == 404
        assert node.request("/api/plans/1.2.3.4").status == 404

        # cross-site requests cannot re-check: no JSON without its content type (a "simple"
        # text/plain request needs no CORS preflight), no form from another origin
        plain = node.request(f"/api/plans/{uid}/check", raw=b'{"indication": "pain"}',
                             headers={"Content-Type": "text/plain"})
        assert plain.status == 415
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        evil = node.request(f"/plans/{uid}/check", raw=b"indication=pain",
                            headers={**form, "Origin": "http://evil.example"})
        assert evil.status == 403
        bad = node.request(f"/plans/{uid}/check", raw=b"indication=%3Cpian%3E", headers=form)
        assert bad.status == 400 and b"&lt;pian&gt;" in bad.body  # escaped
        # the page's form: an empty field removes the fact; back to the list
        done = node.request(f"/plans/{uid}/check", raw=b"indication=pain&site=&submit=Check",
                            headers=form)
        assert done.status == 200 and b"SPINE_30GY10" in done.body  # after the 303 to /
        third = node.wait_checked(uid, checks=3)
        assert third["history"][0]["facts"] == {"indication": "pain"}


def test_prior_course_from_the_store(store: Path) -> None:
    with RunningNode(store, "--settle", "30") as node:
        statuses = send(files_of(COURSE1, COURSE2), node.dicom_port)
        assert set(statuses) == {0}
        node.wait_checked(plan_uid(COURSE1))
        uid = plan_uid(COURSE2)
        node.wait_checked(uid)
        facts = {"indication": "reirradiation", "site": "spine", "prior": plan_uid(COURSE1)}
        assert node.request(f"/api/plans/{uid}/check", facts).status == 202
        doc = node.wait_checked(uid, checks=2)
        cli = rtcheck_check_json(str(COURSE2), "--prior", str(COURSE1), "--indication",
                                 "reirradiation", "--site", "spine")
        assert doc["verdict"] == cli["verdict"]
        assert findings(doc) == findings(cli)


def test_resent_plan_is_checked_again(store: Path) -> None:
    with RunningNode(store, "--settle", "30") as node:
        assert send(files_of(SBRT), node.dicom_port) == [0, 0, 0]
        uid = plan_uid(SBRT)
        node.wait_checked(uid)
        assert send(files_of(SBRT), node.dicom_port) == [0, 0, 0]  # the whole plan again
        doc = node.wait_checked(uid, checks=2)
        assert len(doc["history"]) == 2
        assert all(h["verdict"] == "FAIL" for h in doc["history"])
        files = [f for f in store.rglob("*.dcm")]
        assert len(files) == 3  # identical copies are not stored twice
        events = node.api("/api/events")
        assert any("identical copy" in e["message"] for e in events)


def test_ion_plan_is_accepted(store: Path) -> None:
    plan, *rest = fresh_copies(SINGLE, "ION")
    plan.SOPClassUID = "1.2.840.10008.5.1.4.1.1.481.8"  # RT Ion Plan Storage
    plan.file_meta.MediaStorageSOPClassUID = plan.SOPClassUID
    with RunningNode(store, "--settle", "30") as node:
        assert send([plan, *rest], node.dicom_port) == [0, 0, 0]
        doc = node.wait_checked(str(plan.SOPInstanceUID))
        assert doc["status"] in ("checked", "error")  # checked, or the reader's one line
        assert [p["plan_label"] for p in node.plans()] == [str(plan.RTPlanLabel)]


def test_token_on_every_request(store: Path) -> None:
    with RunningNode(store, "--token", "s3cret-token") as node:
        for path in ("/", "/api/plans", "/api/events", "/api/plans/1.2.3"):
            assert node.request(path).status == 401
        assert node.request("/api/plans", headers={"Authorization": "Bearer wrong"}).status == 401
        node.token = "s3cret-token"
        assert node.request("/api/plans").status == 200
        node.token = None
        first = node.request("/?token=s3cret-token")
        assert first.status == 200 and "rtcheck_token=" in first.headers.get("set-cookie", "")
        cookie = {"Cookie": "rtcheck_token=s3cret-token"}
        assert node.request("/api/plans", headers=cookie).status == 200


def test_binding_beyond_loopback_needs_a_token(store: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "rtcheck", "serve", "--store", str(store),
                           "--dicom-port", "0", "--http", "0.0.0.0:0"],
                          capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "RTCHECK_TOKEN": ""})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "token" in lines[0] and "Traceback" not in proc.stderr


def test_deidentified_node_shows_no_patient(store: Path) -> None:
    from pydicom import dcmread

    with RunningNode(store, "--settle", "30", "--deidentify") as node:
        assert send(files_of(SBRT), node.dicom_port) == [0, 0, 0]
        listed = node.wait_for("the plan listed", node.plans)
        key = listed[0]["id"]
        assert key.startswith("plan-")
        doc = node.wait_checked(key)
        assert doc["verdict"] == "FAIL"
        report = node.wait_for("the report", lambda: (
            r := node.request(f"/plans/{key}/report")).status == 200 and r)
        ds = dcmread(SBRT / "RP.dcm", stop_before_pixels=True)
        secrets = [str(ds.PatientID), str(ds.PatientName), str(ds.PatientName).replace("^", " "),
                   str(ds.SOPInstanceUID), str(ds.StudyInstanceUID)]
        texts = {"list": node.request("/api/plans").body.decode(),
                 "plan": node.request(f"/api/plans/{key}").body.decode(),
                 "events": node.request("/api/events").body.decode(),
                 "page": node.request("/").body.decode(), "report": report.body.decode()}
        for name, text in texts.items():
            for secret in secrets:
                assert secret not in text, f"{secret!r} in the {name}"


def test_dicom_over_tls(store: Path, tmp_path: Path) -> None:
    import ssl

    cert, key = self_signed_certificate(tmp_path)
    with RunningNode(store, "--settle", "30", "--tls-cert", str(cert), "--tls-key",
                     str(key)) as node:
        client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert))
        assert send(files_of(SINGLE), node.dicom_port, tls=client) == [0, 0, 0]
        assert node.wait_checked(plan_uid(SINGLE))["status"] == "checked"
        with pytest.raises(ConnectionError):  # plain DICOM is not spoken on a TLS port
            send(files_of(SINGLE), node.dicom_port)
