#!/usr/bin/env python3
"""Render a sample plan report and a batch index, time the rendering, and screenshot both
with headless Chromium.

The sample is a synthetic spine SBRT re-irradiation plan (27 Gy in 3 fractions, after a prior
30 Gy/10 course with the cord at 31 Gy), written as DICOM files with :mod:`rtcheck.synthetic`:
a vertebral target, a spinal cord 5 mm behind it and an oesophagus in front, with a dose that
falls off outside the target. It is loaded with :func:`rtcheck.load_plan` and checked with
:func:`rtcheck.checker.check` (when the checker is not installed, a fixed set of findings stands
in for it, and the script says so).

Usage::

    python scripts/screenshot_report.py [--out-dir DIR] [--window-size 1200,1600]

Needs Debian's ``chromium`` (``apt-get install -y chromium``). Chromium runs with no network
use of its own (no sync, no component updates, no QUIC, a throw-away profile); the page itself
refers to nothing outside it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from rtcheck.dvh import compute_dvhs
from rtcheck.model import PlanData

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


PATIENT = {"patient_id": "SAMPLE-0001", "patient_name": "SAMPLE^PATIENT"}
#: Prior conventional course of the sample (re-irradiation): 30 Gy/10 with the cord at 31 Gy.
PRIOR = "30Gy/10 cord_dmax=31Gy date=2025-03-01"


def dose_gy(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """28 Gy in a 15 mm radius, 40 mm long vertebral target; exponential fall-off (20 mm)."""
    r = np.hypot(x, y)
    radial = np.maximum(r - 15.0, 0.0)
    axial = np.maximum(np.abs(z) - 20.0, 0.0)
    return 28.0 * np.exp(-np.hypot(radial, axial) / 20.0)


def write_sample_plan(folder: Path) -> list[Path]:
    """A synthetic spine SBRT plan, 27 Gy in 3 fractions, as RTPLAN/RTSTRUCT/RTDOSE files."""
    from rtcheck import synthetic as syn

    folder.mkdir(parents=True, exist_ok=True)
    frame = syn.make_uid("rtcheck-report-sample", "frame")
    zs = syn.planes(-36.0, 36.0, 2.0)
    ss = syn.structure_set_dataset(
        [syn.ROI("PTV_27Gy", syn.cylinder(0, 0, 15, syn.planes(-20.0, 20.0, 2.0)), roi_type="PTV"),
         syn.ROI("SpinalCord", syn.cylinder(0, 25, 5, zs)),
         syn.ROI("Esophagus", syn.cylinder(0, -30, 8, zs))],
        label="SAMPLE", frame_uid=frame, sop_uid=syn.make_uid("rtcheck-report-sample", "ss"),
        **PATIENT)
    plan = syn.plan_dataset("SPINE T6 SBRT", 3, 27.0, structure_set_uid=ss.SOPInstanceUID,
                            frame_uid=frame, date="20260302",
                            plan_uid=syn.make_uid("rtcheck-report-sample", "plan"), **PATIENT)
    dose = syn.dose_dataset_from_function(
        dose_gy, (-60.0, -60.0, -40.0), (60.0, 60.0, 40.0), (2.5, 2.5, 2.5),
        plan_uid=plan.SOPInstanceUID, frame_uid=frame,
        sop_uid=syn.make_uid("rtcheck-report-sample", "dose"), **PATIENT)
    return [syn.write(ds, folder / name) for ds, name in
            ((plan, "RP.sample.dcm"), (ss, "RS.sample.dcm"), (dose, "RD.sample.dcm"))]


def stand_in_result(data: PlanData, dvhs: dict) -> dict:
    """Findings of the sample as the checker words them (used when it is not installed)."""
    cord, eso = dvhs["SpinalCord"], dvhs["Esophagus"]
    plan = data.plan
    ref = "Référentiel 2026"

    def f(rule, status, structure, role, metric, value, limit, reason, source,
          alpha_beta="none", model=None, unit="Gy", operator="<="):
        return {"rule": rule, "structure": structure, "role": role, "metric": metric,
                "value": value, "limit": limit, "operator": operator, "unit": unit,
                "alpha_beta": alpha_beta, "model": model, "status": status, "reason": reason,
                "source": source}

    return {
        "plan": {"label": plan.label, "uid": plan.uid, "patient_id": plan.patient_id,
                 "patient_name": plan.patient_name, "date": plan.date.isoformat(),
                 "fractions": plan.fractions, "prescription_gy": plan.prescription_gy},
        "verdict": "FAIL",
        "findings": [
            f("fractionation.reirradiation", "PASS", None, None, "prescription", 27.0,
              "SBRT 35 Gy/5, SBRT 27 Gy/3", "27 Gy/3 is a recommended scheme",
              f"{ref}, Tableau 5, row 'Ré-irradiation'", 10.0, "LQ", operator=None),
            f("sbrt-cord-dmax", "FAIL", "SpinalCord", "spinal_cord", "Dmax", round(cord.dmax, 2),
              20.3, f"Dmax {cord.dmax:.2f} Gy > 20.3 Gy (3 fractions)", f"{ref}, section 2.2.4"),
            f("esophagus-c5-t10", "WARN", "Esophagus", "esophagus", "Dmax", round(eso.dmax, 2),
              None, "lesion at T6, between C5 and T10: the oesophagus is at particular risk",
              f"{ref}, section 2.2.4", operator=None),
            f("reirradiation.interval", "NOT_EVALUATED", None, None, "interval", None, 5.0,
              "date of the prior course not given", f"{ref}, section 4", unit="months",
              operator=">="),
        ],
        "warnings": ["stand-in findings: rtcheck.checker is not installed"],
    }


def checker_result(data: PlanData) -> dict | None:
    """The real checker's result, when rtcheck.checker is installed; None otherwise."""
    try:
        from rtcheck.checker import check
    except ImportError:
        return None
    return check(data, indication="reirradiation", site="spine", vertebral_level="T6",
                 priors=PRIOR).to_dict()


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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", default="report-sample", type=Path)
    ap.add_argument("--window-size", default="1200,1600")
    args = ap.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    files = write_sample_plan(args.out_dir / "sample-plan")

    from rtcheck.dicom import load_plan

    t0 = time.perf_counter()
    data = load_plan([str(args.out_dir / "sample-plan")])
    result = checker_result(data)
    source = "rtcheck.checker" if result is not None else "stand-in findings (no checker)"
    reirr = None  # read from the re-irradiation findings by the report
    if result is None:
        result = stand_in_result(data, {d.name: d for d in compute_dvhs(
            data.structure_set.structures, data.dose)})
        reirr = {"structure": "SpinalCord", "alpha_beta": 2.0, "new_eqd2_gy": 50.5,
                 "prior_courses": [{"label": PRIOR, "eqd2_gy": 39.5}]}
    t_check = time.perf_counter() - t0

    # Timed as the CLI pays it: DVHs of the structures used, hashing, and the first render,
    # which imports matplotlib.
    from rtcheck.report import render_batch_index, render_check_report, render_html, report_dvhs

    times = []
    for _ in range(3):
        t = time.perf_counter()
        if reirr is None:
            page = render_check_report(result, data)
        else:
            page = render_html(result, dvhs=report_dvhs(result, data), reirradiation=reirr,
                               inputs=[str(f) for f in files])
        times.append(time.perf_counter() - t)
    report = args.out_dir / "sample-report.html"
    report.write_text(page, encoding="utf-8")
    (args.out_dir / "sample-report-deidentified.html").write_text(
        render_check_report(result, data, deidentify=True), encoding="utf-8")

    records = [
        {"key": "a", "plan_label": "SPINE T6 SBRT", "patient_id": "SAMPLE-0001",
         "verdict": result["verdict"], "findings": result["findings"],
         "seconds": round(t_check, 2)},
        {"key": "b", "plan_label": "FEMUR 8Gy", "patient_id": "SAMPLE-0002", "verdict": "PASS",
         "findings": [], "seconds": 0.9},
        {"key": "c", "plan_label": "SACRUM", "patient_id": "SAMPLE-0003", "verdict": "ERROR",
         "error": "RD.dcm: dose units RELATIVE", "findings": [], "seconds": 0.1},
    ]
    index = args.out_dir / "index.html"
    index.write_text(render_batch_index(records, {"a": report.name}), encoding="utf-8")

    screenshot(report, args.out_dir / "sample-report.png", args.window_size)
    screenshot(index, args.out_dir / "index.png", "1200,500")
    print(f"findings from: {source}")
    print(f"load + check: {t_check:.3f} s")
    print("report (DVHs of the structures used + hashes + HTML and plots): first {:.3f} s "
          "(imports matplotlib), then {:.3f} s, {:.3f} s".format(*times))
    print(f"report: {report} ({report.stat().st_size / 1024:.0f} KiB)")
    print(f"screenshots: {args.out_dir / 'sample-report.png'}, {args.out_dir / 'index.png'}")


if __name__ == "__main__":
    main()
