"""rtcheck and dicompyler-core against the planning system's own DVHs (breast export).

The breast RTDOSE carries the planning system's cumulative DVHs (DVHSequence, 9 ROIs), read
with :func:`rtcheck.dicom.tps_dvh.read_tps_dvhs`. From each curve:

- volume: the curve's first value (cc);
- Dmean: the integral of the cumulative curve over dose divided by the volume;
- Dmax: the last point of the curve with a volume above 1e-6 cc (its tail holds rounding noise
  such as 7e-8 cc); Dmin: the first point where the curve falls below its total volume.
  The curve has 0.01 Gy bins, its volumes read at the bin centres: Dmax and Dmin are good to
  about one bin (0.01 Gy).

The DVHSequence's summary attributes (DVHMinimumDose, DVHMaximumDose, DVHMeanDose) are NOT
compared: in this export they are in percent of the 14 Gy prescription while the curve is in
Gy. They are printed once, converted, to show that the curve reading above reproduces them.

Usage (from the repository root)::

    python benchmarks/tps_agreement.py [--no-dicompyler] [--dose RTDOSE --rtss RTSTRUCT]

Writes ``benchmarks/out/tps_agreement.csv``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import dicompyler_env  # noqa: E402
import pydicom  # noqa: E402
from common import fmt, print_table  # noqa: E402

from rtcheck.dicom.tps_dvh import read_tps_dvhs  # noqa: E402

COMPARED = (("volume_cc", "volume", "cc"), ("dmean", "Dmean", "Gy"), ("dmax", "Dmax", "Gy"),
            ("dmin", "Dmin", "Gy"))


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dose", type=Path, default=common.BREAST_DIR / "rtdose.dcm",
                   help="RTDOSE with a DVHSequence (default: the breast export)")
    p.add_argument("--rtss", type=Path, default=common.BREAST_DIR / "rtss.dcm")
    p.add_argument("--no-dicompyler", action="store_true")
    return p.parse_args(argv)


def tps_metrics(dose_path: Path) -> dict[int, dict[str, float]]:
    """Volume, Dmean, Dmax, Dmin of every DVH in the RTDOSE (cc and Gy)."""
    out = {}
    for roi, dvh in read_tps_dvhs(dose_path).items():
        if dvh.volume_units != "CM3":
            print(f"ROI {roi}: TPS volumes in {dvh.volume_units}, volume not compared")
        out[roi] = {"volume_cc": dvh.volume if dvh.volume_units == "CM3" else math.nan,
                    "dmean": dvh.mean_gy(), "dmax": dvh.max_gy(), "dmin": dvh.min_gy()}
    return out


def print_stored_summary(dose_path: Path, plan_path: Path) -> None:
    """The TPS's own summary attributes next to the curve-derived values."""
    if not plan_path.exists():
        return
    plan = pydicom.dcmread(plan_path, stop_before_pixels=True)
    rx = [float(r.TargetPrescriptionDose) for r in plan.get("DoseReferenceSequence", [])
          if "TargetPrescriptionDose" in r]
    if not rx:
        return
    scale = max(rx) / 100.0
    print(f"TPS summary attributes read as percent of {max(rx):g} Gy, next to the curve:")
    rows = []
    for roi, dvh in read_tps_dvhs(dose_path).items():
        s = dvh.stored_summary
        rows.append([str(roi)] + [f"{fmt(s.get(k, math.nan) * scale)} / {fmt(v)}"
                                  for k, v in (("DVHMeanDose", dvh.mean_gy()),
                                               ("DVHMaximumDose", dvh.max_gy()),
                                               ("DVHMinimumDose", dvh.min_gy()))])
    print_table(["ROI", "mean stored / curve", "max stored / curve", "min stored / curve"], rows)
    print()


def _diff(value: float | None, ref: float) -> tuple[str, str, str]:
    if value is None or math.isnan(value) or math.isnan(ref):
        return "-", "-", "-"
    d = value - ref
    return fmt(value), f"{d:+.3f}", (f"{100 * d / ref:+.1f}" if ref else "-")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    tps = tps_metrics(args.dose)
    if not tps:
        print(f"{args.dose}: no DVHSequence")
        return 1
    names = {r.number: r.name for r in common.rois_with_volume(args.rtss)}
    rois = sorted(tps)
    print(f"{args.dose.name}: planning-system DVHs for {len(rois)} ROIs\n")
    print_stored_summary(args.dose, args.dose.parent / "rtplan.dcm")

    tools: dict[str, dict[int, dict]] = {}
    reason = common.rtcheck_unavailable()
    if reason:
        print(f"rtcheck left out: {reason}")
    else:
        tools["rtcheck"] = common.rtcheck_plan(str(args.rtss), str(args.dose), rois)
    if not args.no_dicompyler:
        env = dicompyler_env.try_env()
        if env:
            jobs = [{"id": str(n), "kind": "dvh", "rtss": str(args.rtss), "roi": n,
                     "rtdose": str(args.dose), "options": {}} for n in rois]
            res = dicompyler_env.run_jobs(env, jobs)
            tools["dicompyler"] = {int(k): v for k, v in res.items()}
    for tool, results in tools.items():
        for n in rois:
            if "error" in results.get(n, {"error": "no result"}):
                print(f"{tool}: ROI {n}: {results.get(n, {}).get('error', 'no result')}")
            for w in results.get(n, {}).get("warnings", []):
                print(f"{tool}: ROI {n} {names.get(n, '')}: {w}")

    csv_rows = []
    for key, label, unit in COMPARED:
        print(f"\n{label} ({unit}): tool - TPS")
        headers = ["ROI", "name", "TPS"]
        for tool in tools:
            headers += [tool, "diff", "diff%"]
        table = []
        for n in rois:
            ref = tps[n][key]
            cells = [str(n), names.get(n, "?"), fmt(ref)]
            for tool, results in tools.items():
                value = results.get(n, {}).get(key)
                cells += list(_diff(value, ref))
                csv_rows.append([n, names.get(n, ""), label, unit, ref, tool, value,
                                 None if value is None else value - ref])
            table.append(cells)
        print_table(headers, table, right=set(range(2, len(headers))))
    out = common.write_csv("tps_agreement.csv", ["roi", "name", "metric", "unit", "tps",
                                                 "tool", "value", "diff"], csv_rows)
    print(f"\nwritten {out.relative_to(common.REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
