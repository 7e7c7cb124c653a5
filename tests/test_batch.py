"""``rtcheck batch``: discovery, per-plan records, streaming output, resume, errors, crashes.

Archives are small synthetic exports written into tmp_path. The truth each test asserts is
how the archive was built (which plan lacks its dose, which file was cut), never what the
code happened to output before.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from support.batch import crashing_check, facts_file, make_plan, raising_check
from support.synthetic import CORD_DMAX_GY, FACTS

from rtcheck import batch as B
from rtcheck.cli import main
from rtcheck.errors import InputError


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --------------------------------------------------------------------------------------
# The corrupt archive: everything reported, the rest checked
# --------------------------------------------------------------------------------------


@pytest.fixture()
def corrupt_archive(tmp_path: Path) -> tuple[Path, dict]:
    root = tmp_path / "archive"
    made = {
        "pass": make_plan(root / "PAT1" / "course1", "PAT1", "OK", "pass", ct_slices=3),
        "fail": make_plan(root / "PAT2" / "course1" / "export", "PAT2", "HOT", "fail"),
        "nodose": make_plan(root / "PAT3", "PAT3", "NODOSE", dose=False),
        "nostruct": make_plan(root / "PAT4", "PAT4", "NOSTRUCT", structures=False),
        "cutdose": make_plan(root / "PAT5", "PAT5", "CUTDOSE"),
        "cutplan": make_plan(root / "PAT6", "PAT6", "CUTPLAN"),
    }
    # A dose file cut inside its pixel data (header intact): found, then fails to load.
    data = made["cutdose"]["dose"].read_bytes()
    made["cutdose"]["dose"].write_bytes(data[: len(data) - 700])
    # A plan file cut inside its header.
    data = made["cutplan"]["plan"].read_bytes()
    made["cutplan"]["plan"].write_bytes(data[:200])
    rng = np.random.default_rng(5)
    (root / "junk").mkdir()
    (root / "junk" / "random.dcm").write_bytes(rng.bytes(3000))
    (root / "junk" / "noextension").write_bytes(rng.bytes(3000))
    (root / "junk" / "notes.txt").write_text("not DICOM")
    # A duplicate copy of a whole plan folder (same UIDs), CT slices included.
    shutil.copytree(root / "PAT1" / "course1", root / "PAT1" / "course1-copy")
    facts_file(tmp_path / "facts.csv", [f"PAT{i}" for i in range(1, 7)])
    return root, made


def test_discovery_groups_and_reports_every_problem(corrupt_archive):
    root, made = corrupt_archive
    found = B.discover(root)
    by_label = {g.plan_label: g for g in found.groups}
    assert set(by_label) == {"OK", "HOT", "NODOSE", "NOSTRUCT", "CUTDOSE"}
    ok = by_label["OK"]
    assert ok.plan_uid == made["pass"]["plan_uid"]
    assert ok.dose_uids == (made["pass"]["dose_uid"],)
    assert ok.structure_path == str(made["pass"]["structures"])
    assert ok.missing == ()
    assert sum("course1-copy" in n for n in ok.notes) == 3  # plan, dose, structure set
    assert by_label["NODOSE"].missing == ("RTDOSE",)
    assert by_label["NODOSE"].dose_paths == ()
    assert by_label["NOSTRUCT"].missing == ("RTSTRUCT",)
    bad = {Path(b.path).name: b for b in found.bad_files}
    assert set(bad) == {"random.dcm", made["cutplan"]["plan"].name}
    assert bad["random.dcm"].key == "file:" + os.path.join("junk", "random.dcm")
    # The cut plan's dose and structure set have no plan left to belong to.
    unattached = " ".join(found.unattached)
    assert str(made["cutplan"]["dose"]) in unattached
    assert str(made["cutplan"]["structures"]) in unattached
    # CT slices (3 + 3 copies) are skipped; random bytes without extension are not DICOM.
    assert found.skipped["CT"] == 6
    assert found.skipped["not DICOM"] == 2  # noextension, notes.txt
    # The file that was read and found not DICOM is listed with the reason (notes.txt is
    # not opened: its extension says it is not DICOM).
    assert [(Path(f.path).name, f.key) for f in found.skipped_files] == [
        ("noextension", "skipped:" + os.path.join("junk", "noextension"))]


def test_discovery_on_worker_processes_finds_the_same(corrupt_archive, monkeypatch):
    root, _ = corrupt_archive
    # several chunks for this small archive (read where discover() splits the files)
    monkeypatch.setattr("rtcheck.batch.discovery.SCAN_CHUNK", 4)
    serial, parallel = B.discover(root), B.discover(root, jobs=2)
    assert parallel.groups == serial.groups
    assert parallel.bad_files == serial.bad_files
    assert parallel.skipped == serial.skipped
    assert parallel.skipped_files == serial.skipped_files
    assert parallel.unattached == serial.unattached
    assert parallel.files_seen == serial.files_seen == 28


def test_corrupt_archive_all_reported_rest_checked(corrupt_archive, tmp_path):
    root, made = corrupt_archive
    out = tmp_path / "results.jsonl"
    summary = B.run_batch(root, output=str(out), jobs=2, facts=str(tmp_path / "facts.csv"),
                          progress="off")
    records = read_jsonl(out)
    # The random bytes without extension are listed as skipped, with scan()'s reason.
    (skipped,) = [r for r in records if r["verdict"] == B.SKIPPED]
    assert skipped["key"] == "skipped:" + os.path.join("junk", "noextension")
    assert skipped["files"] == [str(root / "junk" / "noextension")]
    assert "not a DICOM file" in skipped["warnings"][0]
    records = [r for r in records if r["verdict"] != B.SKIPPED]
    assert len(records) == 7 and len({r["key"] for r in records}) == 7
    by_label = {r["plan_label"]: r for r in records if r["plan_label"]}
    assert by_label["OK"]["verdict"] == "PASS"
    assert by_label["HOT"]["verdict"] == "FAIL"
    cord = next(f for f in by_label["HOT"]["findings"] if f["rule"] == "sbrt-cord-dmax")
    assert cord["status"] == "FAIL" and cord["code"] == "evaluated"
    assert (cord["structure"], cord["role"], cord["stands_for"]) == (
        "SpinalCord", "spinal_cord", "thecal_sac")
    assert cord["value"] == pytest.approx(CORD_DMAX_GY["fail"], abs=0.2)
    for label, missing, code in (("NODOSE", ["RTDOSE"], "no_dose"),
                                 ("NOSTRUCT", ["RTSTRUCT"], "structure_missing")):
        rec = by_label[label]
        assert rec["missing"] == missing
        assert rec["verdict"] == "NOT_EVALUATED"  # the cord rule cannot be evaluated
        cord = next(f for f in rec["findings"] if f["rule"] == "sbrt-cord-dmax")
        assert (cord["status"], cord["code"]) == ("NOT_EVALUATED", code)
    assert by_label["CUTDOSE"]["verdict"] == "ERROR"
    assert str(made["cutdose"]["dose"]) in by_label["CUTDOSE"]["error"]
    bad_files = [r for r in records if r["plan_uid"] is None]
    assert sorted(Path(r["files"][0]).name for r in bad_files) == sorted(
        ["random.dcm", made["cutplan"]["plan"].name])
    assert all(r["verdict"] == "ERROR" and r["files"][0] in r["error"] for r in bad_files)
    assert summary.counts == {"PASS": 1, "FAIL": 1, "NOT_EVALUATED": 2, "ERROR": 3}
    assert summary.exit_code == B.EXIT_ERROR
    text = summary.render()
    assert str(made["cutplan"]["dose"]) in text  # unattached objects are named
    assert f"skipped {root / 'junk' / 'noextension'}: not a DICOM file" in text


def test_without_facts_the_rules_that_need_them_are_not_evaluated(tmp_path):
    root = tmp_path / "a"
    make_plan(root / "P", "PAT1", "OK", "pass")
    out = tmp_path / "r.jsonl"
    B.run_batch(root, output=str(out), jobs=1, progress="off")
    (rec,) = read_jsonl(out)
    # The cord limit passes, but indication, site and level were never given: no PASS.
    assert rec["verdict"] == "NOT_EVALUATED"
    status = {f["rule"]: f["status"] for f in rec["findings"]}
    assert status["sbrt-cord-dmax"] == "PASS"
    assert status["facts.indication"] == status["facts.site"] == "NOT_EVALUATED"
    rules = [f["rule"] for f in rec["findings"]]
    assert len(rules) == len(set(rules))  # each missing fact reported once
    indication = next(f for f in rec["findings"] if f["rule"] == "facts.indication")
    assert "fractionation.oligometastatic" in indication["reason"]
    # typed like the checker's findings: the code and the fact that was missing
    assert (indication["code"], indication["missing"], indication["kind"]) == (
        "fact_missing", "indication", "facts")
    site = next(f for f in rec["findings"] if f["rule"] == "facts.site")
    assert (site["code"], site["missing"]) == ("fact_missing", "site")
    assert rec["notes"] and all({"code", "message"} <= set(n) for n in rec["notes"])


def test_facts_not_given_reads_typed_skips_only():
    """The skips' typed code and ``needs`` decide, never the words of their reasons."""
    skipped = [
        {"rule": "a", "code": "fact_missing", "needs": "indication", "reason": "whatever"},
        {"rule": "b", "code": "fact_missing", "needs": "site", "reason": ""},
        # a reason naming --indication but not a missing fact: not turned into a finding
        {"rule": "c", "code": "not_requested", "needs": None,
         "reason": "indication pain not requested (--indication oligometastatic)"},
        {"rule": "d", "code": "fact_missing", "needs": "indication", "reason": "x"},
    ]
    got = {f["rule"]: f for f in B.facts_not_given(skipped, {"site": "spine"})}
    assert set(got) == {"facts.indication"}
    assert "a, d not evaluated" in got["facts.indication"]["reason"]
    assert got["facts.indication"]["status"] == "NOT_EVALUATED"
    # a fact the checker already reported is not reported twice
    assert B.facts_not_given(skipped, {}, reported=["indication", "site"]) == []


# --------------------------------------------------------------------------------------
# Workers that raise or crash
# --------------------------------------------------------------------------------------


def test_worker_exception_becomes_error_record_naming_the_file(tmp_path):
    root = tmp_path / "a"
    make_plan(root / "A", "A", "GOOD")
    bad = make_plan(root / "B", "B", "RAISE")
    out = tmp_path / "r.jsonl"
    summary = B.run_batch(root, output=str(out), jobs=1, worker=raising_check, progress="off")
    recs = {r["plan_label"]: r for r in read_jsonl(out)}
    assert recs["GOOD"]["verdict"] == "NOT_EVALUATED"  # no facts given
    assert recs["RAISE"]["verdict"] == "ERROR"
    assert recs["RAISE"]["error"] == f"{bad['plan']}: ValueError: something broke"
    assert summary.exit_code == B.EXIT_ERROR


def test_worker_crash_marks_only_the_crashing_plan(tmp_path):
    root = tmp_path / "a"
    for i in range(4):
        make_plan(root / f"P{i}", f"P{i}", f"L{i}", "fail" if i == 2 else "pass")
    make_plan(root / "P9", "P9", "CRASH")
    out = tmp_path / "r.jsonl"
    facts = facts_file(tmp_path / "f.csv", [f"P{i}" for i in (0, 1, 2, 3, 9)])
    summary = B.run_batch(root, output=str(out), jobs=2, worker=crashing_check, facts=str(facts),
                          progress="off")
    recs = read_jsonl(out)
    assert len(recs) == 5 and len({r["key"] for r in recs}) == 5
    verdicts = {r["plan_label"]: r["verdict"] for r in recs}
    assert verdicts == {"L0": "PASS", "L1": "PASS", "L2": "FAIL", "L3": "PASS",
                        "CRASH": "ERROR"}
    crash = next(r for r in recs if r["plan_label"] == "CRASH")
    assert "worker process died" in crash["error"] and crash["files"][0] in crash["error"]
    assert summary.exit_code == B.EXIT_ERROR


# --------------------------------------------------------------------------------------
# Bounded in-flight work (memory flat as N grows)
# --------------------------------------------------------------------------------------


def echo_worker(task: B.PlanTask) -> dict:
    return {**B.base_record(task.group), "verdict": "PASS", "seconds": 0.0}


def test_tasks_are_pulled_lazily_with_bounded_inflight():
    groups = [B.PlanRef(f"1.2.{i}", "P", f"L{i}", f"/x/{i}") for i in range(40)]
    pulled = 0
    max_ahead = 0
    emitted: list[str] = []

    def source():
        nonlocal pulled, max_ahead
        for g in groups:
            pulled += 1
            max_ahead = max(max_ahead, pulled - len(emitted))
            yield B.PlanTask(g)

    B.run_local(source(), lambda task, rec: emitted.append(rec["key"]), jobs=2,
                worker=echo_worker, inflight=3)
    assert sorted(emitted) == sorted(g.key for g in groups)
    assert max_ahead <= 3


# --------------------------------------------------------------------------------------
# Output sinks and resume
# --------------------------------------------------------------------------------------


def _record(i: int, findings: int = 2, verdict: str = "PASS") -> dict:
    group = B.PlanRef(f"1.2.3.{i}", f"PAT{i}", f"L{i}", f"/a/{i}/RP.dcm", (f"/a/{i}/RD.dcm",),
                      (f"1.2.4.{i}",), f"/a/{i}/RS.dcm")
    rec = B.base_record(group)
    rec.update(verdict=verdict, seconds=0.1, findings=[
        {"rule": f"r{k}", "structure": "SpinalCord", "value": 1.5, "limit": 2.0, "unit": "Gy",
         "reason": "line one\nline two"} for k in range(findings)])
    return rec


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_resume_cuts_a_half_written_record_and_never_duplicates(tmp_path, fmt):
    out = tmp_path / f"r.{fmt}"
    sink = B.open_sink(str(out))
    for i in range(3):
        sink.write(_record(i))
    sink.close()
    whole = out.read_bytes()
    # Killed in the middle of the 4th record.
    fourth = B.open_sink(str(tmp_path / f"x.{fmt}")).lines(_record(3))
    out.write_bytes(whole + fourth[: len(fourth) // 2 + 3])
    sink = B.open_sink(str(out), resume=True)
    assert sink.done == {_record(i)["key"] for i in range(3)}
    assert out.read_bytes() == whole  # the fragment was cut off
    sink.write(_record(3))
    sink.close()
    if fmt == "jsonl":
        keys = [r["key"] for r in read_jsonl(out)]
    else:
        rows = list(csv.DictReader(io.StringIO(out.read_text())))
        assert len(rows) == 8  # 2 findings per plan, one row each
        assert all(r["reason"] == "line one / line two" for r in rows)
        keys = [r["key"] for r in rows if r["row"] == "1"]
    assert keys == [_record(i)["key"] for i in range(4)]


def test_csv_resume_cuts_a_plan_whose_rows_are_incomplete(tmp_path):
    out = tmp_path / "r.csv"
    sink = B.open_sink(str(out))
    sink.write(_record(0, findings=3))
    sink.close()
    whole = out.read_bytes()
    two_of_three = b"".join(B.CsvSink.lines(sink, _record(1, findings=3)).splitlines(True)[:2])
    out.write_bytes(whole + two_of_three)  # killed between two complete rows
    sink = B.open_sink(str(out), resume=True)
    sink.close()
    assert sink.done == {_record(0)["key"]}
    assert out.read_bytes() == whole


def test_plan_without_findings_still_has_a_csv_row(tmp_path):
    out = tmp_path / "r.csv"
    sink = B.open_sink(str(out))
    sink.write(_record(0, findings=0, verdict="ERROR"))
    sink.close()
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 1 and rows[0]["verdict"] == "ERROR" and rows[0]["rule"] == ""


def test_resume_refuses_a_foreign_or_damaged_file(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_text('{"key": "a", "verdict": "PASS"}\nnot json\n{"key": "b", "verdict": "PASS"}\n')
    with pytest.raises(B.ResumeError, match="line 2"):
        B.open_sink(str(out), resume=True)
    other = tmp_path / "r.csv"
    other.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(B.ResumeError, match="header"):
        B.open_sink(str(other), resume=True)


def test_existing_output_needs_resume_or_overwrite(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_text('{"key": "a"}\n')
    with pytest.raises(InputError, match="--resume"):
        B.open_sink(str(out))
    B.open_sink(str(out), overwrite=True).close()
    assert out.read_text() == ""


def test_resume_skips_plans_already_done(tmp_path):
    root = tmp_path / "a"
    for i in range(3):
        make_plan(root / f"P{i}", f"P{i}", f"L{i}")
    out = tmp_path / "r.jsonl"
    B.run_batch(root, output=str(out), jobs=1, progress="off")
    out.write_text("".join(out.read_text().splitlines(True)[:2]))
    summary = B.run_batch(root, output=str(out), jobs=1, progress="off", resume=True)
    assert summary.already_done == 2 and summary.checked == 1
    keys = [r["key"] for r in read_jsonl(out)]
    assert len(keys) == 3 and len(set(keys)) == 3


# --------------------------------------------------------------------------------------
# Facts file
# --------------------------------------------------------------------------------------


def test_facts_csv_plan_uid_wins_over_patient_id(tmp_path):
    f = tmp_path / "facts.csv"
    f.write_text("patient_id,plan_uid,indication,site,prior_summary\n"
                 "PAT1,,pain,spine,\n"
                 ",1.2.3,reirradiation,spine,30Gy/10 date=2025-01-10\n")
    table = B.load_facts(f)
    assert table.lookup("1.2.3", "PAT1") == {"indication": "reirradiation", "site": "spine",
                                             "prior_summary": "30Gy/10 date=2025-01-10",
                                             "matched_by": "plan_uid", "row": "line 3"}
    assert table.lookup("9.9", "PAT1") == {"indication": "pain", "site": "spine",
                                           "matched_by": "patient_id", "row": "line 2"}
    assert table.lookup("9.9", "PAT2") is None
    assert table.unused() == []


def test_facts_json_mapping_and_errors(tmp_path):
    f = tmp_path / "facts.json"
    f.write_text(json.dumps({"PAT7": {"indication": "oligometastatic", "site": "sacrum"}}))
    table = B.load_facts(f)
    assert table.lookup("1.2", "PAT7")["site"] == "sacrum"
    assert table.lookup("PAT7", None)["matched_by"] == "plan_uid"
    dup = tmp_path / "dup.csv"
    dup.write_text("patient_id,indication\nPAT1,pain\nPAT1,fracture\n")
    with pytest.raises(InputError, match="line 3: PAT1 appears twice"):
        B.load_facts(dup)
    nokey = tmp_path / "nokey.csv"
    nokey.write_text("indication\npain\n")
    with pytest.raises(InputError, match="plan_uid or patient_id"):
        B.load_facts(nokey)


def test_facts_reach_the_checker(tmp_path):
    root = tmp_path / "a"
    made = make_plan(root / "P", "PAT1", "L1")
    f = facts_file(tmp_path / "facts.csv", ["PAT1", "PAT404"], indication="pain")
    out = tmp_path / "r.jsonl"
    summary = B.run_batch(root, output=str(out), jobs=1, progress="off", facts=str(f))
    (rec,) = read_jsonl(out)
    assert rec["plan_uid"] == made["plan_uid"]
    assert rec["facts"] == {**FACTS, "indication": "pain", "matched_by": "patient_id",
                            "row": "line 2"}
    # 27 Gy/3 is not a Tableau 5 scheme for uncomplicated pain.
    fractionation = next(f for f in rec["findings"] if f["rule"] == "fractionation.pain")
    assert fractionation["status"] == "FAIL" and rec["verdict"] == "FAIL"
    assert summary.unused_facts == ["patient_id PAT404"]


def test_a_bad_facts_value_is_a_usage_error_before_any_output(tmp_path):
    root = tmp_path / "a"
    make_plan(root / "P", "PAT1", "L1")
    f = facts_file(tmp_path / "facts.csv", ["PAT1"], indication="pian")
    out = tmp_path / "r.jsonl"
    r = CliRunner().invoke(main, ["batch", str(root), "--indication-from", str(f),
                                  "-o", str(out)])
    assert r.exit_code == 2
    assert f"{f}: line 2: unknown indication 'pian'" in r.output
    assert not out.exists()


# --------------------------------------------------------------------------------------
# Progress, summary, exit codes, command line
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("counts, code", [
    ({"PASS": 3}, 0), ({"PASS": 2, "REVIEW": 1}, 5), ({"PASS": 1, "NOT_EVALUATED": 2}, 3),
    ({"REVIEW": 1, "NOT_EVALUATED": 1}, 3), ({"FAIL": 1, "PASS": 1}, 1),
    ({"FAIL": 1, "NOT_EVALUATED": 3, "REVIEW": 1}, 1), ({"ERROR": 1}, 4),
    ({"ERROR": 1, "FAIL": 2}, 4), ({"ERROR": 1, "PASS": 2}, 4),
    ({}, 3),  # nothing checked: never PASS
    ({"PASS": 1, "SOMETHING_NEW": 1}, 3)])  # a verdict rtcheck does not know: not a PASS
def test_exit_codes(counts, code):
    s = B.BatchSummary()
    s.counts.update(counts)
    assert s.exit_code == code


def test_resumed_exit_code_counts_earlier_records_the_same_way():
    s = B.BatchSummary()
    s.earlier.update({"REVIEW": 2})
    s.counts.update({"PASS": 3})
    assert s.exit_code == 5
    s.earlier.update({"NOT_EVALUATED": 1})
    assert s.exit_code == 3
    assert "REVIEW 2" in s.render() and "NOT_EVALUATED 1" in s.render()


def test_batch_exit_code_review_not_evaluated_fail_error(tmp_path):
    """One archive, grown between runs continued with --resume (the exit code answers for
    the whole output): REVIEW + PASS exits 5; a plan without facts (NOT_EVALUATED) 3; a FAIL
    with that NOT_EVALUATED 1; an unreadable file (ERROR) 4."""
    root = tmp_path / "archive"
    out = tmp_path / "results.jsonl"
    facts = tmp_path / "facts.csv"
    # T6 lies within C5-T10: the oesophagus warning is a WARN -> REVIEW; L2: every rule PASS
    facts.write_text("patient_id,indication,site,vertebral_level\n"
                     "REV,oligometastatic,spine,T6\nOK1,oligometastatic,spine,L2\n"
                     "OK2,oligometastatic,spine,L2\nHOT,oligometastatic,spine,L2\n")
    for patient in ("REV", "OK1", "OK2"):
        make_plan(root / patient, patient, f"L{patient}", "pass")
    args = ["batch", str(root), "-o", str(out), "--jobs", "1", "--quiet",
            "--indication-from", str(facts)]

    def run(*extra: str) -> tuple[int, dict[str, str]]:
        r = CliRunner().invoke(main, [*args, *extra])
        return r.exit_code, {rec["patient_id"] or "file": rec["verdict"]
                             for rec in read_jsonl(out)}

    code, verdicts = run()
    assert verdicts == {"REV": "REVIEW", "OK1": "PASS", "OK2": "PASS"}
    assert code == 5
    make_plan(root / "NOFACTS", "NOFACTS", "LNOFACTS", "pass")
    code, verdicts = run("--resume")
    assert verdicts["NOFACTS"] == "NOT_EVALUATED" and code == 3
    make_plan(root / "HOT", "HOT", "LHOT", "fail")
    code, verdicts = run("--resume")
    assert verdicts["HOT"] == "FAIL" and code == 1
    (root / "broken.dcm").write_bytes(b"DICM" + bytes(200))
    code, verdicts = run("--resume")
    assert verdicts["file"] == "ERROR" and code == 4
    assert len(verdicts) == 6


def test_progress_lines_and_bar():
    out = io.StringIO()
    p = B.Progress(2, out, "auto")  # StringIO is not a terminal: one line per plan
    assert p.mode == "lines"
    p.update({"verdict": "FAIL", "patient_id": "PAT1", "plan_label": "L1", "seconds": 1.25})
    p.update({"verdict": "ERROR", "files": ["/a/x.dcm"], "error": "/a/x.dcm: bad"})
    assert out.getvalue().splitlines() == ["[1/2] FAIL          PAT1 / L1 (1.2 s)",
                                           "[2/2] ERROR         /a/x.dcm: /a/x.dcm: bad"]
    bar = B.Progress(10, io.StringIO(), "bar")
    bar.done, bar.counts["PASS"] = 5, 5
    text = bar.bar_text(100)
    assert "5/10" in text and "50%" in text and "PASS 5" in text and "ETA" in text
    assert len(text) < 100


def test_summary_lists_counts_and_slowest():
    s = B.BatchSummary()
    for i, secs in enumerate([0.5, 3.0, 1.0, 7.0, 0.1, 2.0, 4.0]):
        s.add({"verdict": "PASS", "patient_id": f"P{i}", "plan_label": "L", "seconds": secs,
               "files": ["x"]})
    text = s.render()
    assert "7 plans checked" in text
    assert "slowest: P3 / L 7.0 s; P6 / L 4.0 s; P1 / L 3.0 s; P5 / L 2.0 s; P2 / L 1.0 s" in text


def test_cli_usage_errors(tmp_path):
    runner = CliRunner()
    (tmp_path / "a").mkdir()
    r = runner.invoke(main, ["batch", str(tmp_path / "a"), "--resume"])
    assert r.exit_code == 2 and "--resume needs --output" in r.output
    existing = tmp_path / "r.jsonl"
    existing.write_text('{"key": "x"}\n')
    r = runner.invoke(main, ["batch", str(tmp_path / "a"), "-o", str(existing)])
    assert r.exit_code == 2 and "--resume" in r.output
    r = runner.invoke(main, ["batch", str(tmp_path / "a"), "-o", str(tmp_path / "r.txt")])
    assert r.exit_code == 2 and ".jsonl or .csv" in r.output
    r = runner.invoke(main, ["batch", str(tmp_path / "nope")])
    assert r.exit_code == 2


def test_cli_empty_archive(tmp_path):
    (tmp_path / "a").mkdir()
    r = CliRunner().invoke(main, ["batch", str(tmp_path / "a"), "-o", str(tmp_path / "r.jsonl")])
    assert r.exit_code == 3, r.output  # nothing was checked: NOT_EVALUATED, never PASS
    assert "0 plans checked" in r.output
