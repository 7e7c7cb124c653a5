#!/usr/bin/env python3
"""Render a plan report and a batch index with the rtcheck CLI, screenshot both with headless
Chromium, and time what the HTML report adds to ``rtcheck check``.

The plan is the re-irradiation sample of ``sample_plans/`` (a 27 Gy/3 spine SBRT course after
a 30 Gy/10 course, both synthetic DICOM with analytic doses), checked with::

    rtcheck check sample_plans/reirradiation/course2-sbrt-27Gy3 --indication reirradiation \\
        --site spine --vertebral-level T6 --prior sample_plans/reirradiation/course1-30Gy10 \\
        --format html --output OUT/sample-report.html

Without ``sample_plans/`` a similar plan is written with :mod:`rtcheck.synthetic` and its prior
course is given as a summary. The batch index comes from ``rtcheck batch`` over the same
folder with ``--report-dir``.

Usage::

    python scripts/screenshot_report.py [--out-dir DIR] [--window-size 1200,1600] [--timing 7]

Needs Debian's ``chromium`` (``apt-get install -y chromium``). Chromium runs with no network
use of its own (no sync, no component updates, no QUIC, a throw-away profile); the pages
refer to nothing outside themselves.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_plans" / "reirradiation"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars"]
#: Prior course of the synthetic fallback plan: 30 Gy/10 with the cord at 31 Gy.
PRIOR_SUMMARY = "30Gy/10 cord_dmax=31Gy date=2025-03-01"


def dose_gy(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """28 Gy in a 15 mm radius, 40 mm long vertebral target; exponential fall-off (20 mm)."""
    radial = np.maximum(np.hypot(x, y) - 15.0, 0.0)
    axial = np.maximum(np.abs(z) - 20.0, 0.0)
    return 28.0 * np.exp(-np.hypot(radial, axial) / 20.0)


def write_fallback_plan(folder: Path) -> Path:
    """A synthetic spine SBRT plan, 27 Gy in 3 fractions, as RTPLAN/RTSTRUCT/RTDOSE files."""
    # the phantom builders are test support (tests/support), not in the installed package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from support import synthetic as syn

    folder.mkdir(parents=True, exist_ok=True)
    who = {"patient_id": "SAMPLE-0001", "patient_name": "Sample^Spine"}
    frame = syn.make_uid("rtcheck-report-sample", "frame")
    zs = syn.planes(-36.0, 36.0, 2.0)
    ss = syn.structure_set_dataset(
        [syn.ROI("PTV_27Gy", syn.cylinder(0, 0, 15, syn.planes(-20.0, 20.0, 2.0)),
                 roi_type="PTV"),
         syn.ROI("SpinalCord", syn.cylinder(0, 25, 5, zs)),
         syn.ROI("Esophagus", syn.cylinder(0, -30, 8, zs))],
        label="SAMPLE", frame_uid=frame, **who)
    plan = syn.plan_dataset("SPINE T6 SBRT", 3, 27.0, structure_set_uid=ss.SOPInstanceUID,
                            frame_uid=frame, date="20260302", **who)
    dose = syn.dose_dataset_from_function(
        dose_gy, (-60.0, -60.0, -40.0), (60.0, 60.0, 40.0), (2.5, 2.5, 2.5),
        plan_uid=plan.SOPInstanceUID, frame_uid=frame, **who)
    for ds, name in ((plan, "RP.dcm"), (ss, "RS.dcm"), (dose, "RD.dcm")):
        syn.write(ds, folder / name)
    return folder


def check_args(out_dir: Path) -> tuple[list[str], Path]:
    """The ``rtcheck check`` arguments of the sample, and the folder to batch over."""
    facts = ["--indication", "reirradiation", "--site", "spine", "--vertebral-level", "T6"]
    if (SAMPLES / "course2-sbrt-27Gy3").is_dir():
        return ([str(SAMPLES / "course2-sbrt-27Gy3"), *facts, "--prior",
                 str(SAMPLES / "course1-30Gy10")], ROOT / "sample_plans")
    plan = write_fallback_plan(out_dir / "sample-plan")
    return [str(plan), *facts, "--prior-summary", PRIOR_SUMMARY], plan.parent


def rtcheck(*args: str) -> subprocess.CompletedProcess:
    """Run the rtcheck CLI; exit codes 0/1/3/4/5 are verdicts, anything else is a failure."""
    cli = shutil.which("rtcheck")
    cmd = [cli] if cli else [sys.executable, "-c", "from rtcheck.cli import main; main()"]
    proc = subprocess.run([*cmd, *args], capture_output=True, text=True)
    if proc.returncode not in (0, 1, 3, 4, 5):
        sys.exit(f"rtcheck {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def screenshot(html: Path, png: Path, window: str) -> None:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        sys.exit("chromium not found: apt-get update && apt-get install -y chromium")
    with tempfile.TemporaryDirectory() as profile:
        cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={png}",
               f"--window-size={window}", html.resolve().as_uri()]
        subprocess.run(cmd, check=True, timeout=180, capture_output=True)
    if not png.exists():
        sys.exit(f"chromium wrote no screenshot for {html}")


def timing(args: list[str], out_dir: Path, runs: int) -> str:
    """Median wall and CPU time of ``rtcheck check`` writing JSON and writing HTML, in fresh
    processes, alternated so that both see the same machine load."""
    times: dict[str, list[tuple[float, float]]] = {"json": [], "html": []}
    for _ in range(runs):
        for fmt in ("json", "html"):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            rtcheck("check", *args, "--format", fmt, "--output", str(out_dir / f"timing.{fmt}"))
            wall = time.perf_counter() - t
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            times[fmt].append((wall, cpu))
    (jw, jc), (hw, hc) = [(statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
                          for v in (times["json"], times["html"])]
    return (f"rtcheck check, median of {runs} fresh processes: --format json {jw:.2f} s wall "
            f"({jc:.2f} s CPU), --format html {hw:.2f} s wall ({hc:.2f} s CPU): the HTML "
            f"report adds {hw - jw:.2f} s wall, {hc - jc:.2f} s CPU")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", default="report-sample", type=Path)
    ap.add_argument("--window-size", default="1200,1600")
    ap.add_argument("--timing", type=int, default=0, metavar="N",
                    help="Also time `rtcheck check` with JSON and with HTML output, N runs each.")
    args = ap.parse_args(argv)
    out = args.out_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)

    plan_args, archive = check_args(out)
    report = out / "sample-report.html"
    proc = rtcheck("check", *plan_args, "--format", "html", "--output", str(report))
    rtcheck("check", *plan_args, "--format", "html", "--deidentify",
            "--output", str(out / "sample-report-deidentified.html"))
    # The batch: the sample plans, one unreadable file (an ERROR row) and facts for two
    # patients (the others have none: NOT_EVALUATED), so the index shows every verdict.
    batch_dir = out / "batch"
    shutil.rmtree(batch_dir, ignore_errors=True)
    shutil.copytree(archive, batch_dir / "archive", ignore=shutil.ignore_patterns("*.md"))
    (batch_dir / "archive" / "broken.dcm").write_bytes(b"DICM" + bytes(200))
    facts = batch_dir / "facts.csv"
    facts.write_text("patient_id,indication,site,vertebral_level\n"
                     "RTCHECK-SAMPLE-01,pain,spine,T6\nRTCHECK-SAMPLE-02,pain,spine,T6\n",
                     encoding="utf-8")
    results = batch_dir / "results.jsonl"
    rtcheck("batch", str(batch_dir / "archive"), "--output", str(results), "--quiet",
            "--indication-from", str(facts), "--report-dir", str(batch_dir / "reports"))
    index = batch_dir / "reports" / "index.html"

    screenshot(report, out / "sample-report.png", args.window_size)
    screenshot(index, out / "index.png", "1200,700")
    print(proc.stderr.strip())
    print(f"report: {report} ({report.stat().st_size / 1024:.0f} KiB); index: {index}")
    print(f"screenshots: {out / 'sample-report.png'}, {out / 'index.png'}")
    if args.timing:
        print(timing(plan_args, out, args.timing))


if __name__ == "__main__":
    main()
