"""A batch killed with SIGKILL midway, then resumed, holds every plan exactly once.

The command runs as a separate process (as a department would run it), on an archive of 30
synthetic spine SBRT plans (every other one over the cord limit) with one worker, and is killed with SIGKILL once a few records are
on disk. A record cut in half by the kill is emulated too (a kill rarely lands inside a
write). ``--resume`` must cut that fragment off, skip the plans already written and check
the rest; the worker processes must not outlive the killed batch.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.synthetic import build_archive

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")

N_PLANS = 30
COMMAND = [sys.executable, "-c", "from rtcheck.cli import main; main()", "batch"]


def _complete_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _session_processes(sid: int) -> list[int]:
    """Live (non-zombie) processes of a session, from /proc (empty where there is none)."""
    out = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # Fields after the command: state, ppid, pgrp, session...
        if int(stat[3]) == sid and stat[0] != b"Z":
            out.append(int(entry.name))
    return out


def test_sigkill_then_resume_gives_every_plan_exactly_once(tmp_path):
    archive = tmp_path / "archive"
    patients = build_archive(archive, N_PLANS)  # odd indices over the cord limit
    out = tmp_path / "results.jsonl"
    args = [*COMMAND, str(archive), "--jobs", "1", "-o", str(out)]

    proc = subprocess.Popen([*args, "--quiet"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while _complete_lines(out) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the batch finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    written = _complete_lines(out)
    assert 3 <= written < N_PLANS

    # Workers die with the batch (they watch it), not minutes later.
    if Path("/proc").is_dir():
        deadline = time.monotonic() + 10
        while _session_processes(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _session_processes(proc.pid) == []

    # A record cut in half by the kill: half of the last line, no newline.
    lines = out.read_bytes().splitlines(keepends=True)
    with open(out, "ab") as f:
        f.write(lines[-1][: len(lines[-1]) // 2])

    resumed = subprocess.run([*args, "--resume"], capture_output=True, text=True, timeout=300)
    # The exit code answers for the whole output: a third of the plans fail the cord limit.
    assert resumed.returncode == 1, resumed.stderr
    assert f"{written} already in" in resumed.stderr

    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["patient_id"] for r in records) == patients  # every plan, exactly once
    assert len({r["plan_uid"] for r in records}) == N_PLANS
    fails = {r["patient_id"] for r in records if r["verdict"] == "FAIL"}
    assert fails == set(patients[1::2])
    # Without facts nothing else can PASS: the fractionation rules were not evaluated.
    assert all(r["verdict"] == "NOT_EVALUATED" for r in records if r["patient_id"] not in fails)
