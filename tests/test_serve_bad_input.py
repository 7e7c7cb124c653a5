"""``rtcheck serve`` on bad input: each case is refused or reported (on the page and in the
API) with one message naming the object and the problem, the node keeps serving, and nothing
it acknowledged is ever lost -- a kill -9 in the middle of a transfer included.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid
from support.node import (
    SAMPLE_PLANS,
    RunningNode,
    echo,
    files_of,
    fresh_copies,
    index_rows,
    plan_uid,
    rtcheck_check_json,
    send,
)

SINGLE = SAMPLE_PLANS / "single-8Gy1"
SBRT = SAMPLE_PLANS / "spine-sbrt-27Gy3"
TWO_PLANS = SAMPLE_PLANS / "two-plans"
STATUS_CANNOT_UNDERSTAND = 0xC000


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


def events(node: RunningNode) -> list[str]:
    return [e["message"] for e in node.api("/api/events")]


def still_serving(node: RunningNode) -> None:
    """The node answers C-ECHO and its page after whatever came before."""
    assert echo(node.dicom_port) == 0
    assert node.request("/").status == 200


def test_non_rt_object_is_refused_at_association(store: Path) -> None:
    ct = dcmread(SINGLE / "RS.dcm")
    ct.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage
    ct.file_meta.MediaStorageSOPClassUID = ct.SOPClassUID
    with RunningNode(store) as node:
        with pytest.raises(ConnectionError):  # its only context refused: no association
            send([ct], node.dicom_port)
        assert send([ct, SINGLE / "RP.dcm"], node.dicom_port) == [-1, 0]
        assert any("CT Image Storage" in m and "TESTSCU" in m for m in events(node))
        assert "CT Image Storage" in node.request("/").body.decode()
        assert not [f for f in store.rglob("*.dcm") if "RS" in f.name]
        still_serving(node)


def test_truncated_object_is_refused(store: Path, tmp_path: Path) -> None:
    data = (SBRT / "RD.dcm").read_bytes()
    truncated = tmp_path / "RD-truncated.dcm"
    truncated.write_bytes(data[: len(data) // 2])
    with RunningNode(store) as node:
        assert send([truncated], node.dicom_port) == [STATUS_CANNOT_UNDERSTAND]
        messages = events(node)
        assert len(messages) == 1 and "RTDOSE" in messages[0] or "decoded" in messages[0]
        assert "0xC000" in messages[0]
        assert list(store.rglob("*.dcm")) == []  # refused: nothing stored, nothing indexed
        assert index_rows(store, "SELECT COUNT(*) FROM objects") == [(0,)]
        still_serving(node)
        assert send(files_of(SBRT), node.dicom_port) == [0, 0, 0]  # the whole dose, later
        assert node.wait_checked(plan_uid(SBRT))["verdict"] == "FAIL"


def test_unknown_calling_ae_is_rejected(store: Path) -> None:
    with RunningNode(store, "--allow", "TESTSCU", "--allow", "ECLIPSE") as node:
        with pytest.raises(ConnectionError):
            send(files_of(SINGLE), node.dicom_port, calling="INTRUDER")
        assert any("INTRUDER" in m and "--allow" in m for m in events(node))
        assert node.plans() == []
        assert send(files_of(SINGLE), node.dicom_port, calling="ECLIPSE") == [0, 0, 0]
        assert node.wait_checked(plan_uid(SINGLE))["calling_ae"] == "ECLIPSE"


def test_dose_that_never_arrives_settles_not_evaluated(store: Path) -> None:
    parts = [f for f in files_of(SINGLE) if not f.name.startswith("RD")]
    with RunningNode(store, "--settle", "5") as node:
        start = time.monotonic()
        assert send(parts, node.dicom_port) == [0, 0]
        uid = plan_uid(SINGLE)
        waiting = node.plan(uid)
        assert waiting["status"] == "waiting" and waiting["missing"] == ["RTDOSE"]
        doc = node.wait_checked(uid)
        assert time.monotonic() - start >= 5  # not before the settle time
        assert doc["verdict"] == "NOT_EVALUATED" and doc["missing"] == ["RTDOSE"]
        assert doc["history"][0]["trigger"] == "settled"
        assert doc["history"][0]["missing"] == ["RTDOSE"]
        cli = rtcheck_check_json(*map(str, parts))
        assert doc["verdict"] == cli["verdict"]
        assert [(f["rule"], f["status"], f["code"]) for f in doc["findings"]] == [
            (f["rule"], f["status"], f["code"]) for f in cli["findings"]]
        # the dose arrives after all: the plan is checked again, complete
        assert send([SINGLE / "RD.dcm"], node.dicom_port) == [0]
        again = node.wait_checked(uid, checks=2)
        assert again["missing"] == [] and again["history"][0]["trigger"] == "complete"


def test_two_plans_of_one_study(store: Path) -> None:
    with RunningNode(store, "--settle", "30") as node:
        assert set(send(files_of(TWO_PLANS), node.dicom_port)) == {0}
        uids = sorted(str(dcmread(f, stop_before_pixels=True).SOPInstanceUID)
                      for f in TWO_PLANS.glob("RP*.dcm"))
        for uid in uids:
            doc = node.wait_checked(uid)
            cli = rtcheck_check_json(str(TWO_PLANS), "--plan", uid)
            assert doc["verdict"] == cli["verdict"] and doc["missing"] == []
            assert [f["rule"] for f in doc["findings"]] == [f["rule"] for f in cli["findings"]]
        assert sorted(p["plan_uid"] for p in node.plans()) == uids
        studies = {f.parent for f in store.rglob("*.dcm")}
        assert len(studies) == 1  # one folder per patient/study


def test_second_copy_and_different_object_with_same_uid(store: Path) -> None:
    changed = dcmread(SINGLE / "RS.dcm")
    changed.StructureSetLabel = "CHANGED"  # same SOPInstanceUID, different object
    with RunningNode(store, "--settle", "30") as node:
        assert send(files_of(SINGLE), node.dicom_port) == [0, 0, 0]
        uid = plan_uid(SINGLE)
        node.wait_checked(uid)
        assert send([SINGLE / "RS.dcm"], node.dicom_port) == [0]  # a second, identical copy
        assert send([changed], node.dicom_port) == [0]             # kept aside, reported
        messages = events(node)
        assert any("identical copy" in m for m in messages)
        assert any("different object with this UID" in m for m in messages)
        names = sorted(f.name for f in store.rglob("*.dcm"))
        assert len(names) == 4 and sum(".conflict-1." in n for n in names) == 1
        doc = node.plan(uid)
        assert any("kept aside" in n for n in doc["notes"])
        kept = [f for f in store.rglob("*.dcm") if f.name == f"{changed.SOPInstanceUID}.dcm"]
        assert dcmread(kept[0]).StructureSetLabel != "CHANGED"  # the first one stays
        page = node.request("/").body.decode()
        assert "kept aside" in page
        still_serving(node)


def test_plan_whose_check_fails_gets_status_error(store: Path) -> None:
    plan, *rest = fresh_copies(SINGLE, "BAD")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns that 3.5 is no IS: the point
        plan.FractionGroupSequence[0].NumberOfFractionsPlanned = "3.5"
    with RunningNode(store, "--settle", "30") as node:
        assert send([plan, *rest], node.dicom_port) == [0, 0, 0]
        doc = node.wait_checked(str(plan.SOPInstanceUID))
        assert doc["status"] == "error" and doc["verdict"] is None
        assert "3.5" in doc["message"] and "Traceback" not in doc["message"]
        assert "\n" not in doc["message"]
        listed = node.plans()[0]
        assert listed["status"] == "error" and listed["message"] == doc["message"]
        still_serving(node)


def test_bad_facts_file_is_one_line(store: Path, tmp_path: Path) -> None:
    facts = tmp_path / "facts.csv"
    facts.write_text("plan_uid,indication\n1.2.3,pian\n")
    proc = subprocess.run([sys.executable, "-m", "rtcheck", "serve", "--store", str(store),
                           "--dicom-port", "0", "--http", "127.0.0.1:0", "--facts", str(facts)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "facts.csv" in lines[0] and "line 2" in lines[0]


def _structure_copies(n: int) -> list:
    """``n`` distinct small objects (the sample structure set under new UIDs)."""
    base = dcmread(SINGLE / "RS.dcm")
    copies = []
    for _ in range(n):
        ds = base.copy()
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta = base.file_meta.copy()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        copies.append(ds)
    return copies


def test_kill_during_transfer_loses_nothing_acknowledged(store: Path) -> None:
    node = RunningNode(store, "--settle", "30").start()
    try:
        assert send(files_of(SBRT), node.dicom_port) == [0, 0, 0]
        node.wait_checked(plan_uid(SBRT))
        acknowledged: list[str] = []
        copies = _structure_copies(400)

        def transfer() -> None:
            from pynetdicom import AE

            ae = AE(ae_title="TESTSCU")
            ae.add_requested_context(str(copies[0].SOPClassUID))
            assoc = ae.associate("127.0.0.1", node.dicom_port, ae_title="RTCHECK")
            try:
                for ds in copies:
                    status = assoc.send_c_store(ds)
                    if "Status" not in status or status.Status != 0:
                        return
                    acknowledged.append(str(ds.SOPInstanceUID))
            except Exception:  # the node died under it: the transfer stops
                return

        sender = threading.Thread(target=transfer)
        sender.start()
        node.wait_for("20 objects acknowledged", lambda: len(acknowledged) >= 20, every=0.005)
        node.kill()
        sender.join(60)
    finally:
        node.stop()
    assert 20 <= len(acknowledged) < len(copies), "the kill did not land mid-transfer"

    with RunningNode(store, "--settle", "30") as again:
        stored = {r[0] for r in index_rows(store, "SELECT uid FROM objects WHERE state = "
                                           "'stored'")}
        lost = set(acknowledged) - stored
        assert not lost, f"{len(lost)} acknowledged object(s) lost"
        for uid in acknowledged:
            assert list(store.rglob(f"{uid}.dcm")), uid
        assert not [p for p in store.rglob("*.tmp")]  # unfinished transfers removed
        assert again.plan(plan_uid(SBRT))["verdict"] == "FAIL"  # the earlier check kept
        # the sender retries what was not acknowledged: accepted, duplicates included
        rest = copies[len(acknowledged) - 1: len(acknowledged) + 5]
        assert send(rest, again.dicom_port) == [0] * len(rest)
        still_serving(again)


def test_restart_reconciles_the_index_with_the_store(store: Path, tmp_path: Path) -> None:
    with RunningNode(store, "--settle", "30") as node:
        assert send(files_of(SBRT), node.dicom_port) == [0, 0, 0]
        assert send(files_of(SINGLE), node.dicom_port) == [0, 0, 0]
        node.wait_checked(plan_uid(SBRT))
        node.wait_checked(plan_uid(SINGLE))
    # while the node is down: a check left running (as a kill -9 would leave it), a file
    # written but never indexed, a file that vanished
    import sqlite3

    db = sqlite3.connect(store / ".rtcheck" / "index.sqlite3")
    with db:
        db.execute("UPDATE plans SET status = 'checking', due_at = NULL WHERE uid = ?",
                   (plan_uid(SBRT),))
        db.execute("INSERT INTO checks (plan_uid, requested_at, started_at, status) "
                   "VALUES (?, 0, 0, 'running')", (plan_uid(SBRT),))
    db.close()
    orphan = _structure_copies(1)[0]
    folder = next(store.rglob(f"{dcmread(SINGLE / 'RS.dcm').SOPInstanceUID}.dcm")).parent
    orphan.save_as(folder / f"{orphan.SOPInstanceUID}.dcm", enforce_file_format=True)
    (folder / ".half-written.123.tmp").write_bytes(b"DICM")
    dose_uid = str(dcmread(SINGLE / "RD.dcm", stop_before_pixels=True).SOPInstanceUID)
    next(store.rglob(f"{dose_uid}.dcm")).unlink()

    with RunningNode(store, "--settle", "1") as node:
        start_line = next(line for line in node.stderr if "start-up" in line)
        assert "1 file(s) indexed, 1 vanished, 1 unfinished transfer(s) removed" in start_line
        sbrt = node.wait_checked(plan_uid(SBRT), checks=2)
        assert [h["status"] for h in sbrt["history"]][:2] == ["done", "interrupted"]
        assert sbrt["verdict"] == "FAIL"
        single = node.wait_for("the plan without its dose checked again", lambda: (
            d := node.plan(plan_uid(SINGLE)))["missing"] == ["RTDOSE"]
            and len(d["history"]) == 2 and d["status"] == "checked" and d)
        assert single["verdict"] == "NOT_EVALUATED"
        assert any("no longer in the store" in m for m in events(node))
        assert index_rows(store, "SELECT state FROM objects WHERE uid = ?",
                          (str(orphan.SOPInstanceUID),)) == [("stored",)]
        assert not list(store.rglob("*.tmp"))
    shutil.rmtree(store)


def test_check_that_outlasts_its_time_is_stopped(store: Path) -> None:
    """The worker process is killed and started again; the plan's status is error, saying
    why; the node goes on receiving."""
    with RunningNode(store, "--settle", "30", "--check-timeout", "0.01") as node:
        assert send(files_of(SINGLE), node.dicom_port) == [0, 0, 0]
        doc = node.wait_checked(plan_uid(SINGLE))
        assert doc["status"] == "error" and "timed out after 0.01 s" in doc["message"]
        assert doc["history"][0]["status"] == "error"
        still_serving(node)
        assert send(files_of(SBRT), node.dicom_port) == [0, 0, 0]
        assert node.wait_checked(plan_uid(SBRT))["status"] == "error"  # same limit, same end
