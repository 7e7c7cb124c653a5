"""Batch throughput and memory: ``rtcheck batch`` over an archive of N synthetic spine SBRT plans.

Usage (from the repository root)::

    python benchmarks/batch.py                 # N = 1000, 1 and 2 workers
    python benchmarks/batch.py --n 5000 --jobs 2
    python benchmarks/batch.py --n 200 --keep /tmp/archive   # keep (or reuse) the archive

Each plan is a realistic spine SBRT export from :func:`rtcheck.synthetic.spine_plan`
(27 Gy / 3 fractions, 7 beams; BODY, PTV, GTV, SpinalCord, Esophagus contoured every 2 mm;
the synthetic ThecalSac is left out, see :func:`rtcheck.synthetic.spine_datasets`; a 2 mm
dose grid of 120 x 120 x 90 mm, ~0.3 MB; ~0.55 MB per plan), in nested patient/course
folders. The anatomy varies between templates; the analytic cord maximum is
17 Gy in half of the plans and 23 Gy in the other half, against the 3-fraction cord limit
of 20.3 Gy (Sahgal 2013), so the expected verdicts are known: N/2 PASS, N/2 FAIL.

The script runs ``rtcheck batch`` as a subprocess (the command a department would run),
timing it and polling the peak resident memory (VmHWM, Linux /proc) of the batch process
and of its worker processes. The archive is built from a few templates copied with fresh
UIDs (fast), not by sampling the dose of every plan.

The archive builders (:func:`rtcheck.synthetic.build_archive`,
:func:`~rtcheck.synthetic.write_spine_plan`, :data:`~rtcheck.synthetic.FACTS`) live in
``tests/support/synthetic.py``, where the batch tests import them too.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The archive builders are test support (tests/support/synthetic.py, shared with the batch
# tests), not part of the installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.synthetic import FACTS, build_archive  # noqa: E402


def _high_water_kb(pid: int) -> int:
    """Peak resident memory (VmHWM) of a live process, in kB; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (workers are the fork server's children)."""
    try:
        children = [int(c) for t in Path(f"/proc/{pid}/task").iterdir()
                    for c in (t / "children").read_text().split()]
    except OSError:
        return []
    return children + [d for c in children for d in _descendants(c)]


def run_batch_command(archive: Path, jobs: int, out: Path, facts: Path) -> dict:
    """Run ``rtcheck batch`` once: wall time, plans/s, and the peak resident memory of the
    batch process and of its largest worker (polled from /proc while it runs)."""
    cmd = [sys.executable, "-c", "from rtcheck.cli import main; main()", "batch", str(archive),
           "--jobs", str(jobs), "-o", str(out), "--overwrite", "--quiet",
           "--indication-from", str(facts)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    parent_kb = worker_kb = 0
    while proc.poll() is None:
        parent_kb = max(parent_kb, _high_water_kb(proc.pid))
        worker_kb = max([worker_kb, *(_high_water_kb(c) for c in _descendants(proc.pid))])
        time.sleep(0.5)
    seconds = time.perf_counter() - start
    stderr = proc.stderr.read() if proc.stderr else ""
    records = [json.loads(line) for line in out.read_text().splitlines()]
    verdicts: dict[str, int] = {}
    for r in records:
        verdicts[r["verdict"]] = verdicts.get(r["verdict"], 0) + 1
    return {"jobs": jobs, "plans": len(records), "seconds": seconds,
            "plans_per_s": len(records) / seconds, "parent_mb": parent_kb / 1024,
            "worker_mb": worker_kb / 1024, "verdicts": verdicts, "exit": proc.returncode,
            "stderr_tail": stderr.strip().splitlines()[-8:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="plans in the archive (1000)")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2],
                        help="worker counts to time (1 2)")
    parser.add_argument("--keep", type=Path, help="build (or reuse) the archive here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rtcheck-batch-bench-"))
    archive = args.keep or work / "archive"
    try:
        if not (archive.exists() and any(archive.iterdir())):
            start = time.perf_counter()
            build_archive(archive, args.n)
            size = sum(f.stat().st_size for f in archive.rglob("*.dcm")) / 1e6
            print(f"archive: {args.n} plans, {size:.0f} MB, built in "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
        facts = work / "facts.json"
        facts.write_text(json.dumps([{"patient_id": f"PAT{i:05d}", **FACTS}
                                     for i in range(args.n)]))
        expected = {"PASS": (args.n + 1) // 2, "FAIL": args.n // 2}
        print(f"expected verdicts: {expected}")
        print(f"{'jobs':>4} {'plans':>6} {'seconds':>8} {'plans/s':>8} {'batch MB':>9} "
              f"{'worker MB':>9}  verdicts")
        for jobs in args.jobs:
            r = run_batch_command(archive, jobs, work / f"out{jobs}.jsonl", facts)
            print(f"{r['jobs']:>4} {r['plans']:>6} {r['seconds']:>8.1f} {r['plans_per_s']:>8.2f} "
                  f"{r['parent_mb']:>9.0f} {r['worker_mb']:>9.0f}  {r['verdicts']} "
                  f"exit {r['exit']}{'' if r['verdicts'] == expected else '  UNEXPECTED'}",
                  flush=True)
            if r["exit"] not in (0, 1):
                print("\n".join(r["stderr_tail"]))
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the archive too, unless --keep put it elsewhere


if __name__ == "__main__":
    main()
