"""Batch throughput and memory: ``rtcheck batch`` over an archive of N synthetic spine SBRT plans.

Usage (from the repository root)::

    python benchmarks/batch.py                 # N = 1000, 1 and 2 workers
    python benchmarks/batch.py --n 5000 --jobs 2
    python benchmarks/batch.py --n 200 --keep /tmp/archive   # keep the archive

Each plan is a realistic spine SBRT export: RTPLAN (27 Gy / 3 fractions, two beams),
RTSTRUCT (BODY, PTV, SpinalCord, Esophagus on 2.5 mm planes) and a 2.5 mm RTDOSE grid
covering the body cross-section (~0.5 M voxels, ~2 MB), in nested patient/course folders.
The dose field is analytic (flat in x and z, falling off along y away from the PTV), so
half of the plans keep the cord near-maximum well below 20.3 Gy and half well above it.

The script runs ``rtcheck batch`` as a subprocess (the command a department would run),
timing it and polling the peak resident memory (VmHWM, Linux /proc) of the batch process
and of its worker processes.
The archive itself is built by copying two template plans with fresh UIDs (fast), not by
re-sampling the dose each time.

This module also provides :func:`write_spine_plan`, used by the batch tests to build small
archives with known verdicts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from rtcheck import synthetic as S

#: Prescription of every synthetic plan (Gy, fractions): a Tableau 5 / section 2.2.2 scheme.
PRESCRIPTION_GY, FRACTIONS = 27.0, 3
#: Cord centre (mm, y) and radius; the PTV is centred on the origin.
CORD_Y, CORD_R = 40.0, 5.0
PTV_R = 15.0


def dose_along_y(y: np.ndarray, flat_to: float, zero_at: float) -> np.ndarray:
    """The prescription up to ``y = flat_to``, then falling linearly to 0 at ``zero_at``."""
    frac = np.clip((zero_at - y) / (zero_at - flat_to), 0.0, 1.0)
    return PRESCRIPTION_GY * frac


#: Dose fall-offs (flat_to, zero_at) in mm: the cord's nearest point (y = 35 mm) receives
#: 27 * (1 - 15/40) = 16.9 Gy in the "pass" plan and 27 * (1 - 5/40) = 23.6 Gy in the
#: "fail" plan, against the 3-fraction cord limit of 20.3 Gy (Sahgal 2013).
FALLOFF = {"pass": (20.0, 60.0), "fail": (30.0, 70.0)}
CORD_NEAR_MAX_GY = {"pass": 27.0 * (1 - 15 / 40), "fail": 27.0 * (1 - 5 / 40)}


def spine_datasets(kind: str = "pass", *, patient_id: str = "SYNTH", label: str = "SPINE27",
                   grid_mm: float = 2.5, half_length_mm: float = 50.0,
                   body: bool = True) -> dict:
    """The RTPLAN, RTSTRUCT and RTDOSE datasets of one spine SBRT plan.

    ``kind`` picks the dose fall-off ("pass" or "fail", see :data:`FALLOFF`). The dose grid
    covers every structure; ``grid_mm`` and ``half_length_mm`` (cord and oesophagus extent
    above and below the PTV) set the sizes: 2.5 mm and 50 mm are realistic, 5 mm and 15 mm
    make a small test plan.
    """
    frame = S.generate_uid()
    zs = S.planes(-half_length_mm, half_length_mm, grid_mm)
    rois = {"PTV": S.cylinder(0.0, 0.0, PTV_R, S.planes(-15.0, 15.0, grid_mm)),
            "SpinalCord": S.cylinder(0.0, CORD_Y, CORD_R, zs, n=32),
            "Esophagus": S.cylinder(0.0, -30.0, 8.0, zs, n=32)}
    types = {"PTV": "PTV"}
    if body:
        rois["BODY"] = S.extrude(S.ellipse(0.0, 0.0, 150.0, 100.0, 128), zs)
        types["BODY"] = "EXTERNAL"
    ss = S.structure_set_dataset(rois, types=types, frame_uid=frame, patient_id=patient_id)
    plan = S.plan_dataset(label, FRACTIONS, PRESCRIPTION_GY, frame_uid=frame,
                          structure_set_uid=ss.SOPInstanceUID, patient_id=patient_id,
                          intent="PALLIATIVE")
    flat_to, zero_at = FALLOFF[kind]
    half_x, half_y = (155.0, 105.0) if body else (25.0, 55.0)
    margin = grid_mm
    dose = S.dose_dataset_from_function(
        lambda x, y, z: dose_along_y(y, flat_to, zero_at) + 0.0 * x + 0.0 * z,
        (-half_x, -half_y, -half_length_mm - margin), (half_x, half_y, half_length_mm + margin),
        (grid_mm, grid_mm, grid_mm), plan_uid=plan.SOPInstanceUID, frame_uid=frame,
        patient_id=patient_id)
    return {"plan": plan, "structures": ss, "dose": dose}


def write_spine_plan(folder: Path, kind: str = "pass", *, patient_id: str = "SYNTH",
                     label: str = "SPINE27", dose: bool = True, structures: bool = True,
                     **sizes) -> dict:
    """Write one plan's files (RP/RS/RD.<label>.dcm) into ``folder``; returns their paths and
    the plan and dose UIDs. ``dose=False`` or ``structures=False`` leaves that file out."""
    ds = spine_datasets(kind, patient_id=patient_id, label=label, **sizes)
    out = {"plan_uid": ds["plan"].SOPInstanceUID, "dose_uid": ds["dose"].SOPInstanceUID,
           "plan": S.write(ds["plan"], folder / f"RP.{label}.dcm")}
    if structures:
        out["structures"] = S.write(ds["structures"], folder / f"RS.{label}.dcm")
    if dose:
        out["dose"] = S.write(ds["dose"], folder / f"RD.{label}.dcm")
    return out


def _retag(t: dict, patient_id: str) -> None:
    """Give a plan's three template datasets a new patient and fresh, consistent UIDs."""
    uid = {k: S.generate_uid() for k in t}
    for k, ds in t.items():
        ds.PatientID = patient_id
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid[k]
    t["plan"].ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID = uid["structures"]
    t["dose"].ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID = uid["plan"]


def build_archive(root: Path, n: int, *, grid_mm: float = 2.5, seed: int = 1) -> dict[str, int]:
    """``n`` plans in ``root/PATxxxxx/courseN/`` (alternating pass and fail templates).

    Returns the number of plans of each kind.
    """
    templates = {k: spine_datasets(k, grid_mm=grid_mm) for k in FALLOFF}
    rng = np.random.default_rng(seed)
    counts = {k: 0 for k in FALLOFF}
    for i in range(n):
        kind = "pass" if i % 2 == 0 else "fail"
        counts[kind] += 1
        patient = f"PAT{i:05d}"
        _retag(templates[kind], patient)
        folder = root / patient / f"course{int(rng.integers(1, 3))}"
        for what, ds in templates[kind].items():
            S.write(ds, folder / f"{what}.dcm")
    return counts


def _high_water_kb(pid: int) -> int:
    """Peak resident memory (VmHWM) of a live process, in kB; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for t in Path(f"/proc/{pid}/task").iterdir()
                for c in (t / "children").read_text().split()]
    except OSError:
        return []


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
        worker_kb = max([worker_kb, *(_high_water_kb(c) for c in _children(proc.pid))])
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
    parser.add_argument("--grid-mm", type=float, default=2.5)
    parser.add_argument("--keep", type=Path, help="build (or reuse) the archive here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rtcheck-batch-bench-"))
    archive = args.keep or work / "archive"
    try:
        if not (archive.exists() and any(archive.iterdir())):
            start = time.perf_counter()
            counts = build_archive(archive, args.n, grid_mm=args.grid_mm)
            size = sum(f.stat().st_size for f in archive.rglob("*.dcm")) / 1e6
            print(f"archive: {args.n} plans ({counts}), {size:.0f} MB, built in "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
        facts = work / "facts.json"
        # Every patient: oligometastatic spine SBRT at L2 (outside C5-T10: no oesophagus rule).
        facts.write_text(json.dumps([{"patient_id": f"PAT{i:05d}", "indication":
                                      "oligometastatic", "site": "spine",
                                      "vertebral_level": "L2"} for i in range(args.n)]))
        print(f"{'jobs':>4} {'plans':>6} {'seconds':>8} {'plans/s':>8} {'batch MB':>9} "
              f"{'worker MB':>9}  verdicts")
        for jobs in args.jobs:
            r = run_batch_command(archive, jobs, work / f"out{jobs}.jsonl", facts)
            print(f"{r['jobs']:>4} {r['plans']:>6} {r['seconds']:>8.1f} {r['plans_per_s']:>8.2f} "
                  f"{r['parent_mb']:>9.0f} {r['worker_mb']:>9.0f}  {r['verdicts']} "
                  f"exit {r['exit']}", flush=True)
            if r["exit"] not in (0, 1):
                print("\n".join(r["stderr_tail"]))
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the archive too, unless --keep put it elsewhere


if __name__ == "__main__":
    main()
