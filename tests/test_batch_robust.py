"""``rtcheck batch`` against hostile plans and hostile surroundings (issue 10).

One test (or a few) per class of defect, never per example:

* nothing lost: any exception of one plan is that plan's ERROR record; records are strict
  JSON (no NaN/Infinity tokens) whatever the plan's numbers, also after --resume;
* two batches on one output: the second stops (exit 2) naming the first one's PID;
* a plan that hangs: ERROR "timed out", its worker replaced, the batch goes on;
* output folder missing or read-only (batch -o and --report-dir, check and dvh --output):
  exit 2, one line naming the path, before any work;
* --scheduler malformed, refused or silent: exit 2 within a few seconds, one line;
* FIFOs, empty and zero-filled files: never block, listed as skipped with the reason.

Slow or poisoned plans are made by test code only: a worker function of this module
(worker processes import it by name), or, for the command run as a separate process, a
plugin module that the fork server preloads (``rtcheck.batch.WORKER_PRELOAD``) and that
monkeypatches ``rtcheck.batch.checking._evaluate`` (what ``check_one`` calls) in every
worker. The runtime package has no hook for tests.
"""

from __future__ import annotations

import csv
import json
import math
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from support.batch import facts_file, make_plan

from rtcheck import batch as B
from rtcheck.batch import checking
from rtcheck.cli import main
from rtcheck.errors import InputError

SAMPLE = Path(__file__).resolve().parents[1] / "sample_plans" / "spine-sbrt-27Gy3"
HAS_FORKSERVER = "forkserver" in multiprocessing.get_all_start_methods()


def strict_lines(path: Path) -> list[dict]:
    """Every line of a JSONL file, parsed as strict JSON (NaN/Infinity tokens rejected)."""
    def reject(name):
        raise AssertionError(f"non-strict JSON token {name} in {path}")

    return [json.loads(line, parse_constant=reject) for line in path.read_text().splitlines()]


def run(args: list[str], **options) -> subprocess.CompletedProcess:
    """Run a command (the exit code is the test's business), its output as text."""
    return subprocess.run(args, check=False, capture_output=True, text=True, timeout=120,
                          **options)


def one_line_error(text: str) -> str:
    """The single line a bad-input exit prints (asserting there is one, and no traceback)."""
    lines = [x for x in text.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in text, text
    assert lines[0].startswith("rtcheck: error: "), text
    return lines[0]


# --------------------------------------------------------------------------------------
# Worker functions (imported by name in the worker processes)
# --------------------------------------------------------------------------------------


def nonfinite_check(task: B.PlanTask) -> dict:
    """check_one, then numbers that overflowed (BED of 1e200 Gy -> inf) and NaN in the record
    of the plan labelled INF, as Python and NumPy floats."""
    rec = B.check_one(task)
    if task.group.plan_label == "INF":
        rec["findings"].append({"rule": "bed-overflow", "status": "FAIL", "value": 1e200 * 1e200,
                                "limit": float("nan"), "unit": "Gy",
                                "details": {"bed": np.float64("inf"), "eqd2": [np.nan, 1.0],
                                            "neg": -math.inf}})
        rec["seconds"] = float("nan")
    return rec


def exotic_check(task: B.PlanTask) -> dict:
    """check_one with a checker that fails, for real, with the exception the label names."""
    real = checking._evaluate

    def evaluate(t: B.PlanTask) -> dict:
        label = t.group.plan_label
        if label == "OVERFLOW":
            math.exp(1e200)  # OverflowError: math range error
        if label == "RECURSION":
            def down(n: int) -> int:
                return down(n + 1) + 1
            down(0)
        if label == "MEMORY":
            np.empty(2 ** 62, np.uint8)  # MemoryError: cannot allocate 4 EiB
        if label == "SYSEXIT":
            sys.exit(3)
        return real(t)

    checking._evaluate = evaluate
    try:
        return B.check_one(task)
    finally:
        checking._evaluate = real


def garbage_check(task: B.PlanTask):
    """Returns something that is not a record for the plan labelled GARBAGE."""
    if task.group.plan_label == "GARBAGE":
        return ["not", "a", "record"]
    return B.check_one(task)


def hanging_check(task: B.PlanTask) -> dict:
    """Hangs for an hour on the plan labelled HANG (its worker's PID written beside it)."""
    if task.group.plan_label == "HANG":
        Path(task.group.plan_path).with_name("worker.pid").write_text(str(os.getpid()))
        time.sleep(3600)
    return B.check_one(task)


def sleepy_check(task: B.PlanTask) -> dict:
    """Sleeps 3 s on the plan labelled SLOW (a task a Dask thread cannot be stopped in)."""
    if task.group.plan_label == "SLOW":
        time.sleep(3)
    return B.check_one(task)


def echo_worker(task: B.PlanTask) -> dict:
    return {**B.base_record(task.group), "verdict": "PASS", "seconds": 0.0,
            "warnings": [f"pid {os.getpid()}"]}


# The plugin the fork server preloads for the command run as its own process: it patches
# rtcheck.batch.checking._evaluate in every worker (test code only; see the module docstring).
PLUGIN = textwrap.dedent('''
    import math, os, time
    import rtcheck.batch.checking as C

    _real = C._evaluate

    def _evaluate(task):
        label = task.group.plan_label
        if label == "HANG":
            time.sleep(3600)
        if label == "WAIT":  # until the test creates the file "go" beside the plan
            go = os.path.join(os.path.dirname(task.group.plan_path), "go")
            deadline = time.monotonic() + 60
            while not os.path.exists(go) and time.monotonic() < deadline:
                time.sleep(0.05)
        out = _real(task)
        if label == "INF":
            out["findings"].append({"rule": "bed-overflow", "status": "FAIL",
                                    "value": 1e200 * 1e200, "limit": math.nan})
        return out

    C._evaluate = _evaluate
''')
RUN_WITH_PLUGIN = ("import rtcheck.batch as B; B.WORKER_PRELOAD.append('rtcheck_test_plugin'); "
                   "import rtcheck_test_plugin; from rtcheck.cli import main; main()")


def plugin_command(tmp_path: Path) -> tuple[list[str], dict]:
    """``python -c ...`` running the rtcheck CLI with the plugin preloaded, and its env."""
    folder = tmp_path / "plugin"
    folder.mkdir(exist_ok=True)
    (folder / "rtcheck_test_plugin.py").write_text(PLUGIN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(folder), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return [sys.executable, "-c", RUN_WITH_PLUGIN], env


needs_forkserver = pytest.mark.skipif(not HAS_FORKSERVER,
                                      reason="the plugin is preloaded by the fork server")


# --------------------------------------------------------------------------------------
# Nothing lost: exceptions, non-finite numbers, strict JSON, resume
# --------------------------------------------------------------------------------------


def test_any_exception_of_one_plan_is_its_error_record(tmp_path):
    root = tmp_path / "a"
    labels = ["OVERFLOW", "RECURSION", "MEMORY", "SYSEXIT", "GOOD"]
    for i, label in enumerate(labels):
        make_plan(root / f"P{i}", f"P{i}", label)
    out = tmp_path / "r.jsonl"
    summary = B.run_batch(root, output=str(out), jobs=2, worker=exotic_check, progress="off")
    recs = {r["plan_label"]: r for r in strict_lines(out)}
    assert set(recs) == set(labels)
    for label, name in (("OVERFLOW", "OverflowError"), ("RECURSION", "RecursionError"),
                        ("MEMORY", "MemoryError"), ("SYSEXIT", "SystemExit")):
        assert recs[label]["verdict"] == "ERROR", label
        assert name in recs[label]["error"] and recs[label]["files"][0] in recs[label]["error"]
    assert recs["GOOD"]["verdict"] == "NOT_EVALUATED"  # no facts given
    assert summary.exit_code == B.EXIT_ERROR


def test_a_worker_that_returns_garbage_gives_an_error_record(tmp_path):
    root = tmp_path / "a"
    make_plan(root / "A", "A", "GOOD")
    make_plan(root / "B", "B", "GARBAGE")
    out = tmp_path / "r.jsonl"
    B.run_batch(root, output=str(out), jobs=1, worker=garbage_check, progress="off")
    recs = {r["plan_label"]: r for r in strict_lines(out)}
    assert recs["GARBAGE"]["verdict"] == "ERROR"
    assert "the worker returned a list, not a batch record" in recs["GARBAGE"]["error"]
    assert recs["GOOD"]["verdict"] == "NOT_EVALUATED"


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_non_finite_numbers_are_written_null_and_resume_works(tmp_path, fmt):
    root = tmp_path / "a"
    make_plan(root / "A", "A", "INF")
    make_plan(root / "B", "B", "GOOD")
    out = tmp_path / f"r.{fmt}"
    summary = B.run_batch(root, output=str(out), jobs=2, worker=nonfinite_check,
                          progress="off")
    assert summary.checked == 2
    if fmt == "csv":
        rows = list(csv.DictReader(out.open(newline="")))
        row = next(r for r in rows if r["rule"] == "bed-overflow")
        assert row["value"] == row["limit"] == row["seconds"] == ""
        assert "written as null" in row["warnings"]
        cells = {c.strip().lower() for r in rows for k, c in r.items() if k != "plan_label"}
        assert not cells & {"inf", "-inf", "nan", "infinity", "-infinity"}
    else:
        recs = {r["plan_label"]: r for r in strict_lines(out)}
        bad = recs["INF"]
        finding = next(f for f in bad["findings"] if f["rule"] == "bed-overflow")
        assert finding["value"] is None and finding["limit"] is None
        assert finding["details"] == {"bed": None, "eqd2": [None, 1.0], "neg": None}
        assert bad["seconds"] is None
        note = bad["warnings"][-1]
        assert note.startswith("not a finite number or not JSON, written as null")
        assert "findings[" in note and ".value (inf)" in note and ".limit (nan)" in note
        assert recs["GOOD"]["warnings"] == [w for w in recs["GOOD"]["warnings"]
                                            if "written as null" not in w]
    # --resume reads the file back and adds a new plan; nothing is duplicated.
    make_plan(root / "C", "C", "NEW")
    summary = B.run_batch(root, output=str(out), jobs=1, resume=True, worker=nonfinite_check,
                          progress="off")
    assert summary.checked == 1 and summary.already_done == 2
    if fmt == "jsonl":
        assert sorted(r["plan_label"] for r in strict_lines(out)) == ["GOOD", "INF", "NEW"]


def test_resume_makes_earlier_non_strict_records_strict(tmp_path):
    """Records with NaN/Infinity tokens (an older writer) are rewritten strict by --resume,
    their plans still counted as done; the order and the other records are kept."""
    root = tmp_path / "a"
    make_plan(root / "A", "A", "OLD")
    make_plan(root / "B", "B", "NEW")
    old = next(g for g in B.discover(root).groups if g.plan_label == "OLD")
    rec = {**B.base_record(old), "verdict": "FAIL", "seconds": 1.0,
           "findings": [{"rule": "r", "value": float("inf"), "limit": float("nan")}]}
    foreign = {**B.base_record(B.PlanRef("9.9", "X", "X", "/gone/RP.dcm")), "verdict": "PASS"}
    out = tmp_path / "r.jsonl"
    out.write_text(json.dumps(rec) + "\n" + json.dumps(foreign) + "\n" + '{"key": "cut')
    assert "Infinity" in out.read_text() and "NaN" in out.read_text()
    summary = B.run_batch(root, output=str(out), jobs=1, resume=True, progress="off")
    recs = strict_lines(out)
    assert [r["plan_label"] for r in recs] == ["OLD", "X", "NEW"]
    assert recs[0]["findings"][0]["value"] is None and recs[0]["verdict"] == "FAIL"
    assert "written as null" in recs[0]["warnings"][-1]
    assert recs[1] == foreign
    assert summary.checked == 1 and summary.already_done == 1
    assert summary.exit_code == B.EXIT_FAIL  # the earlier FAIL still counts
    assert not list(tmp_path.glob(".r.jsonl.strict-*"))


class _Weird:
    def __str__(self):
        return "weird object"


def test_the_writer_never_raises_on_a_records_content(tmp_path):
    cyclic: dict = {"a": 1}
    cyclic["self"] = cyclic
    deep: list = []
    node = deep
    for _ in range(5000):
        node.append([])
        node = node[0]
    hostile = {
        "numpy": [np.float32(1.5), np.int64(3), np.bool_(True), np.arange(3), np.float64("nan")],
        "set": {3, 1, 2}, "path": Path("/x/y"), "bytes": b"\xff\x00ok", "tuple_key": {(1, 2): 3},
        "surrogate": "caf\udce9", "object": _Weird(), "cyclic": cyclic, "deep": deep,
        "big": 10 ** 400, "huge_float": float("1e308") * 10,
    }
    for cls, name in ((B.JsonlSink, "h.jsonl"), (B.CsvSink, "h.csv")):
        sink = cls(str(tmp_path / name))
        for i, (field_name, value) in enumerate(hostile.items()):
            rec = {**B.base_record(B.PlanRef(f"1.2.{i}", "P", "L", "/a/RP.dcm")),
                   "verdict": "PASS", "plan": {field_name: value}}
            written = sink.write(rec)
            assert written["key"] == f"1.2.{i}|"
        sink.close()
        assert len(sink.done) == len(hostile)
    recs = strict_lines(tmp_path / "h.jsonl")
    plans = {k: v for r in recs for k, v in r["plan"].items()}
    assert plans["numpy"] == [1.5, 3, True, [0, 1, 2], None]
    assert plans["set"] == [1, 2, 3] and plans["path"] == "/x/y"
    assert plans["tuple_key"] == {"[1, 2]": 3} and plans["object"] == "weird object"
    assert plans["cyclic"]["self"] == "<cut>" and plans["huge_float"] is None
    assert plans["big"] == 10 ** 400
    assert "cut" in json.dumps(plans["deep"])
    assert B.JsonlSink(str(tmp_path / "h.jsonl"), resume=True).done == {
        f"1.2.{i}|" for i in range(len(hostile))}


# --------------------------------------------------------------------------------------
# One output file, one batch
# --------------------------------------------------------------------------------------


@needs_forkserver
def test_a_second_batch_on_the_same_output_stops_naming_the_first(tmp_path):
    archive = tmp_path / "archive"
    waiting = make_plan(archive / "A", "A", "WAIT")  # until "go" exists (the plugin)
    make_plan(archive / "B", "B", "GOOD")
    out = tmp_path / "results.jsonl"
    command, env = plugin_command(tmp_path)
    args = [*command, "batch", str(archive), "-o", str(out), "--jobs", "1", "--quiet"]
    first = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    lock = Path(str(out) + ".lock")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
            lock.exists() and lock.read_text().startswith(f"{first.pid} ")):
        time.sleep(0.05)
    try:
        assert first.poll() is None, "the first batch ended before the second could start"
        second = run([*args, "--overwrite"], env=env)
    finally:
        Path(waiting["plan"]).with_name("go").write_text("")
    assert second.returncode == 2
    line = one_line_error(second.stderr)
    assert str(out) in line and f"another rtcheck batch (PID {first.pid}" in line
    # The first batch was not disturbed: both plans, once each; the lock is gone.
    assert first.wait(timeout=120) == 3, first.stderr.read()
    assert sorted(r["plan_label"] for r in strict_lines(out)) == ["GOOD", "WAIT"]
    assert not lock.exists()


def test_output_lock_in_process_and_stale_lock_file(tmp_path):
    out = tmp_path / "r.jsonl"
    lock = B.OutputLock(out).acquire()
    with pytest.raises(B.OutputLocked, match=f"PID {os.getpid()} on "):
        B.open_sink(str(out))
    lock.release()
    # A lock file left by a killed batch holds no lock: it is taken over.
    Path(str(out) + ".lock").write_text("999999 elsewhere\n")
    sink = B.open_sink(str(out))
    sink.close()
    assert not Path(str(out) + ".lock").exists()


# --------------------------------------------------------------------------------------
# --plan-timeout
# --------------------------------------------------------------------------------------


def test_a_hanging_plan_times_out_its_worker_is_replaced(tmp_path):
    root = tmp_path / "a"
    hang = make_plan(root / "H", "H", "HANG")
    for i in range(3):
        make_plan(root / f"P{i}", f"P{i}", f"L{i}")
    out = tmp_path / "r.jsonl"
    start = time.monotonic()
    summary = B.run_batch(root, output=str(out), jobs=2, worker=hanging_check, plan_timeout=2,
                          progress="off")
    assert time.monotonic() - start < 60
    recs = {r["plan_label"]: r for r in strict_lines(out)}
    assert set(recs) == {"HANG", "L0", "L1", "L2"}
    assert recs["HANG"]["verdict"] == "ERROR"
    assert recs["HANG"]["error"] == (f"{hang['plan']}: timed out after 2 s (--plan-timeout); "
                                     "its worker process was stopped")
    assert all(recs[f"L{i}"]["verdict"] == "NOT_EVALUATED" for i in range(3))
    assert summary.exit_code == B.EXIT_ERROR
    pid = int(Path(hang["plan"]).with_name("worker.pid").read_text())
    deadline = time.monotonic() + 10
    while B.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not B.alive(pid), "the hung worker process was not killed"


def test_local_pool_replaces_workers_after_max_tasks():
    groups = [B.PlanRef(f"1.2.{i}", "P", f"L{i}", f"/x/{i}") for i in range(6)]
    got: list[dict] = []
    B.run_local((B.PlanTask(g) for g in groups), lambda task, rec: got.append(rec), jobs=2,
                worker=echo_worker, max_tasks_per_child=1)
    assert sorted(r["key"] for r in got) == sorted(g.key for g in groups)
    assert len({r["warnings"][0] for r in got}) == 6  # one process per plan


@needs_forkserver
def test_cli_plan_timeout_and_non_finite_numbers_through_the_command(tmp_path):
    archive = tmp_path / "archive"
    hang = make_plan(archive / "H", "H", "HANG")
    make_plan(archive / "I", "I", "INF")
    make_plan(archive / "G", "G", "GOOD")
    out = tmp_path / "results.jsonl"
    command, env = plugin_command(tmp_path)
    args = [*command, "batch", str(archive), "-o", str(out), "--jobs", "2"]
    start = time.monotonic()
    first = run([*args, "--plan-timeout", "2"], env=env)
    assert time.monotonic() - start < 90
    assert first.returncode == 4, first.stderr
    recs = {r["plan_label"]: r for r in strict_lines(out)}
    assert recs["HANG"]["error"].startswith(f"{hang['plan']}: timed out after 2 s")
    overflow = next(f for f in recs["INF"]["findings"] if f["rule"] == "bed-overflow")
    assert overflow["value"] is None and recs["INF"]["verdict"] != "ERROR"
    assert recs["GOOD"]["verdict"] == "NOT_EVALUATED"
    assert "timed out after 2 s" in first.stderr
    # --resume reads it all back (strict), has nothing left to do, answers for the file.
    again = run([*args, "--resume"], env=env)
    assert again.returncode == 4, again.stderr
    assert "3 already in" in again.stderr
    assert len(strict_lines(out)) == 3


def test_plan_timeout_option_is_documented_with_its_default():
    r = CliRunner().invoke(main, ["batch", "--help"])
    assert "--plan-timeout SECONDS" in r.output
    assert f"[default: {B.DEFAULT_PLAN_TIMEOUT:g} s]" in r.output
    assert "tls://HOST:PORT" in r.output and "DASK_DISTRIBUTED__COMM__TLS__CA_FILE" in r.output
    assert "comes back to this machine through the" in " ".join(r.output.split())


# --------------------------------------------------------------------------------------
# Output folder missing or read-only: exit 2, one line, before any work
# --------------------------------------------------------------------------------------


def _unprivileged() -> list[str]:
    """A command prefix under which file permissions apply (root ignores them)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: permissions cannot be tested")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


RTCHECK = [sys.executable, "-c", "from rtcheck.cli import main; main()"]


def test_missing_output_folder_is_one_line_before_any_work(tmp_path, monkeypatch):
    root = tmp_path / "a"
    make_plan(root / "A", "A", "GOOD")
    missing = tmp_path / "no" / "such"

    def no_work(*args, **kwargs):
        raise AssertionError("work started before the output was checked")

    monkeypatch.setattr("rtcheck.batch.run.discover", no_work)  # where run_batch finds it
    monkeypatch.setattr("rtcheck.cli.check.load_from_cli", no_work)
    monkeypatch.setattr("rtcheck.cli.dvh.load_from_cli", no_work)
    runner = CliRunner()
    cases = [
        ["batch", str(root), "-o", str(missing / "r.jsonl")],
        ["batch", str(root), "--output", str(missing / "r.csv")],
        ["batch", str(root), "-o", str(tmp_path / "r.jsonl"), "--report-dir",
         str(missing / "reports")],
        ["check", str(SAMPLE), "--output", str(missing / "report.html")],
        ["dvh", str(SAMPLE), "-o", str(missing / "dvh.csv")],
    ]
    for args in cases:
        r = runner.invoke(main, args)
        assert r.exit_code == 2, (args, r.output)
        line = one_line_error(r.output)
        assert args[-1] in line and f"the folder {missing} does not exist" in line, line
    assert not (tmp_path / "r.jsonl").exists()
    assert not list(tmp_path.glob("*.lock"))


def test_read_only_output_folder_is_one_line_before_any_work(tmp_path):
    prefix = _unprivileged()
    root = tmp_path / "a"
    make_plan(root / "A", "A", "GOOD")
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "existing.json").write_text("{}")
    os.chmod(ro / "existing.json", 0o444)
    os.chmod(ro, 0o555)
    try:
        cases = [
            ["batch", str(root), "-o", str(ro / "r.jsonl")],
            ["batch", str(root), "-o", str(tmp_path / "ok.jsonl"), "--report-dir", str(ro)],
            ["check", str(SAMPLE), "--output", str(ro / "report.json")],
            ["check", str(SAMPLE), "--output", str(ro / "existing.json")],
            ["dvh", str(SAMPLE), "--output", str(ro / "dvh.csv")],
        ]
        for args in cases:
            r = run([*prefix, *RTCHECK, *args])
            assert r.returncode == 2, (args, r.stderr)
            line = one_line_error(r.stderr)
            assert str(ro) in line and "read-only" in line, line
        assert sorted(p.name for p in ro.iterdir()) == ["existing.json"]
        assert not (tmp_path / "ok.jsonl").exists()
    finally:
        os.chmod(ro, 0o755)


# --------------------------------------------------------------------------------------
# --scheduler: malformed, refused, silent
# --------------------------------------------------------------------------------------


def test_malformed_or_refused_scheduler_is_exit_2_within_seconds(tmp_path):
    root = tmp_path / "a"
    make_plan(root / "A", "A", "GOOD")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for address, words in (("foo", "expected tcp://HOST:PORT"),
                           ("tcp://127.0.0.1", "expected tcp://HOST:PORT"),
                           ("tcp://127.0.0.1:99999", "expected tcp://HOST:PORT"),
                           ("http://127.0.0.1:8786", "expected tcp://HOST:PORT"),
                           (f"tcp://127.0.0.1:{port}", "cannot connect to the Dask scheduler"),
                           ("tcp://no-such-host.invalid:8786", "unknown host")):
        out = tmp_path / "r.jsonl"
        start = time.monotonic()
        r = CliRunner().invoke(main, ["batch", str(root), "-o", str(out), "--scheduler",
                                      address])
        assert time.monotonic() - start < 10, address
        assert r.exit_code == 2, (address, r.output)
        assert words in one_line_error(r.output), address
        assert not out.exists()  # nothing done


def test_silent_scheduler_is_an_input_error_within_the_connect_timeout(tmp_path):
    """A server that accepts the TCP connection and never answers (Dask's own timeout does
    not bound its handshake): given up at the connect timeout, before any output."""
    pytest.importorskip("distributed")
    root = tmp_path / "a"
    make_plan(root / "A", "A", "GOOD")
    with socket.socket() as server:  # accepts TCP connections (backlog), never answers
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
        start = time.monotonic()
        with pytest.raises(InputError, match="cannot connect to the Dask scheduler: no "
                                               "Dask answer within 1 s"):
            B.run_batch(root, output=str(tmp_path / "r.jsonl"), scheduler=address,
                        connect_timeout=1, progress="off")
        assert time.monotonic() - start < 1 + 6
    assert not (tmp_path / "r.jsonl").exists()


def test_dask_plan_timeout_records_the_plan_and_goes_on(tmp_path):
    distributed = pytest.importorskip("distributed")
    root = tmp_path / "a"
    slow = make_plan(root / "S", "S", "SLOW")
    make_plan(root / "G", "G", "GOOD")
    out = tmp_path / "r.jsonl"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  protocol="tcp://", host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        summary = B.run_batch(root, output=str(out), scheduler=cluster.scheduler_address,
                              worker=sleepy_check, plan_timeout=1, progress="off")
        time.sleep(2.5)  # let the thread that cannot be stopped finish before the cluster
    recs = {r["plan_label"]: r for r in strict_lines(out)}
    assert recs["SLOW"]["verdict"] == "ERROR"
    assert recs["SLOW"]["error"].startswith(f"{slow['plan']}: timed out after 1 s")
    assert recs["GOOD"]["verdict"] == "NOT_EVALUATED"
    assert summary.exit_code == B.EXIT_ERROR


# --------------------------------------------------------------------------------------
# Files that are not plans: never block, listed with the reason
# --------------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)")
def test_fifos_empty_and_zero_filled_files_are_listed_and_never_block(tmp_path):
    archive = tmp_path / "archive"
    make_plan(archive / "P", "P1", "GOOD")
    junk = archive / "P" / "junk"
    junk.mkdir()
    os.mkfifo(junk / "RP.pipe.dcm")  # named like a plan: must never be opened
    os.mkfifo(junk / "pipe")
    (junk / "empty").write_bytes(b"")
    (junk / "zeros").write_bytes(bytes(1_000_000))
    os.symlink(tmp_path / "nowhere", junk / "dangling.dcm")
    facts = facts_file(tmp_path / "facts.csv", ["P1"])
    out = tmp_path / "r.jsonl"
    args = [*RTCHECK, "batch", str(archive), "-o", str(out), "--indication-from", str(facts),
            "--jobs", "1"]
    r = run(args)
    assert r.returncode == 0, r.stderr  # the plan PASSes; skipped files change nothing
    recs = strict_lines(out)
    skipped = {Path(x["files"][0]).name: x for x in recs if x["verdict"] == B.SKIPPED}
    assert set(skipped) == {"RP.pipe.dcm", "pipe", "empty", "zeros", "dangling.dcm"}
    for name in ("RP.pipe.dcm", "pipe"):
        assert skipped[name]["warnings"] == [
            "skipped: not a regular file: a FIFO (named pipe), never opened"]
    assert "symbolic link to nothing" in skipped["dangling.dcm"]["warnings"][0]
    for name in ("empty", "zeros"):
        assert skipped[name]["key"] == "skipped:" + os.path.join("P", "junk", name)
        assert skipped[name]["warnings"][0].startswith("skipped: ")
    for name, rec in skipped.items():
        assert f"skipped {rec['files'][0]}: {rec['warnings'][0][len('skipped: '):]}" in r.stderr
    assert [x["verdict"] for x in recs if x["verdict"] != B.SKIPPED] == ["PASS"]
    # Resumed: nothing written twice, the same exit code.
    again = run([*args, "--resume"])
    assert again.returncode == 0, again.stderr
    assert len(strict_lines(out)) == len(recs)


def test_skipped_records_do_not_change_the_exit_code():
    assert B.batch_exit_code({"PASS": 2, B.SKIPPED: 5}) == B.EXIT_OK
    assert B.batch_exit_code({B.SKIPPED: 5}) == B.EXIT_NOT_EVALUATED  # nothing checked


def test_one_uid_two_contents_is_an_error_record_as_in_check(tmp_path):
    """An RTDOSE copied elsewhere in the archive with its SOPInstanceUID kept but its content
    changed: `rtcheck check` refuses the plan (exit 2); the batch writes its ERROR record,
    naming both files, and never checks it on either dose."""
    import pydicom

    archive = tmp_path / "archive"
    out = make_plan(archive / "a", "P1", "A", "pass")
    twin = archive / "b" / "RD.twin.dcm"
    twin.parent.mkdir(parents=True)
    ds = pydicom.dcmread(out["dose"])
    ds.DoseGridScaling = float(ds.DoseGridScaling) * 0.5
    ds.save_as(twin, enforce_file_format=True)
    summary = B.run_batch(archive, output=str(tmp_path / "o.jsonl"), jobs=1, progress="off")
    records = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    plans = [r for r in records if r["verdict"] != "SKIPPED"]
    assert [r["verdict"] for r in plans] == ["ERROR"], plans
    assert "RD.twin.dcm" in plans[0]["error"] and "RD.A.dcm" in plans[0]["error"]
    assert summary.exit_code == 4
