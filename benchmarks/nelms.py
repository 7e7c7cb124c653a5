"""rtcheck and dicompyler-core against the Nelms 2015 analytical DVHs, side by side.

Every row of ``nelms-2015/expected.csv`` whose dose grid is shipped (the 0.4x0.2x0.4 mm grids
are not) is computed by both tools; each metric's error is compared with the tolerance
max(1 % of expected, 0.1 Gy) (1 % for the volume). The doses are FRACTION doses with no plan:
they are compared as stored. Expected values are in cGy in the CSV and in Gy here.

Usage (from the repository root)::

    python benchmarks/nelms.py                 # all rows, both tools
    python benchmarks/nelms.py --rows 'Cone*'  # a subset (shell pattern on the row id)
    python benchmarks/nelms.py --no-dicompyler --jobs 2
    python benchmarks/nelms.py --interp        # also dicompyler-core's interpolated mode
    python benchmarks/nelms.py --summary-only

Writes ``benchmarks/out/nelms.csv`` (one line per row x metric x tool).
"""

from __future__ import annotations

import argparse
import math
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import dicompyler_env  # noqa: E402
import pydicom  # noqa: E402
from common import METRICS, NelmsRow, fmt, print_table  # noqa: E402

#: dicompyler-core's interpolated mode: dose resampled in-plane to a quarter of its pixel
#: spacing (it must be spacing / 2^n), two extra structure planes between contour planes,
#: and the calculation limited to the structure's extents (what its documentation pairs
#: with interpolation, and far cheaper).
INTERP_DIVISOR = 4
INTERP_SEGMENTS = 2


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", metavar="PATTERN", help="shell pattern on the row id, "
                   "e.g. 'Sphere*' or '*3mm Y(SI)'")
    p.add_argument("--no-dicompyler", action="store_true", help="rtcheck alone")
    p.add_argument("--interp", action="store_true",
                   help="add dicompyler-core with its interpolation options as a third column")
    p.add_argument("--jobs", type=int, default=1, help="parallel processes per tool (default 1)")
    p.add_argument("--summary-only", action="store_true", help="skip the per-row table")
    return p.parse_args(argv)


# --------------------------------------------------------------------------------------
# Running the tools
# --------------------------------------------------------------------------------------


def run_rtcheck(rows: list[NelmsRow], rois: dict[str, int], jobs: int) -> dict[str, dict]:
    args = [(str(r.rtss), rois[r.id], str(r.rtdose)) for r in rows]
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            results = list(pool.map(common.rtcheck_job, *zip(*args)))
    else:
        results = [common.rtcheck_job(*a) for a in args]
    return {r.id: res for r, res in zip(rows, results)}


def _interp_options(dose: Path) -> dict:
    spacing = float(pydicom.dcmread(dose, stop_before_pixels=True).PixelSpacing[0])
    return {"interpolation_resolution": spacing / INTERP_DIVISOR,
            "interpolation_segments_between_planes": INTERP_SEGMENTS,
            "use_structure_extents": True}


def run_dicompyler(env, rows: list[NelmsRow], rois: dict[str, int], jobs: int,
                   interp: bool) -> dict[str, dict]:
    job_list = [{"id": r.id, "kind": "dvh", "rtss": str(r.rtss), "roi": rois[r.id],
                 "rtdose": str(r.rtdose),
                 "options": _interp_options(r.rtdose) if interp else {}} for r in rows]
    return dicompyler_env.run_jobs(env, job_list, parallel=jobs)


# --------------------------------------------------------------------------------------
# Comparing and reporting
# --------------------------------------------------------------------------------------


def _check(row: NelmsRow, metric: str, result: dict | None) -> tuple[float | None, float | None,
                                                                     float | None, bool | None]:
    """Value, absolute error, % error and pass/fail of one tool on one row x metric."""
    if not result or "error" in result:
        return None, None, None, None
    value = result.get(metric)
    if value is None or math.isnan(value):
        return None, None, None, None
    expected = row.expected[metric]
    err = value - expected
    pct = 100.0 * err / expected if expected else math.nan
    return value, err, pct, common.within(metric, expected, value)


def _ok(flag: bool | None) -> str:
    return {True: "ok", False: "FAIL", None: "n/a"}[flag]


def print_rows(rows: list[NelmsRow], tools: dict[str, dict[str, dict]]) -> None:
    headers = ["row", "metric", "expected"]
    for name in tools:
        headers += [name, "err", "err%", "pass"]
    table = []
    for row in rows:
        for metric in METRICS:
            cells = [row.id, metric, fmt(row.expected[metric])]
            for results in tools.values():
                value, err, pct, flag = _check(row, metric, results.get(row.id))
                cells += [fmt(value), fmt(err), fmt(pct, 1), _ok(flag)]
            table.append(cells)
    print_table(headers, table, right=set(range(2, len(headers))))


def _errors(rows: list[NelmsRow], tools: dict[str, dict[str, dict]]) -> None:
    for name, results in tools.items():
        bad = [(r.id, results[r.id]["error"]) for r in rows if "error" in results.get(r.id, {})]
        for rid, msg in bad[:10]:
            print(f"{name}: {rid}: {msg}")
        if len(bad) > 10:
            print(f"{name}: ... {len(bad) - 10} more failed rows")


def summarise(rows: list[NelmsRow], tools: dict[str, dict[str, dict]]) -> None:
    """Share within tolerance per tool and metric, and each tool's worst case per metric."""
    headers = ["metric"] + [f"{t} within" for t in tools] + [f"{t} worst (row: err Gy, %)"
                                                            for t in tools]
    table, totals = [], {t: [0, 0, 0, 0] for t in tools}  # dose ok, dose n, all ok, all n
    for metric in METRICS:
        cells_pass, cells_worst = [], []
        for name, results in tools.items():
            checks = [(r, *_check(r, metric, results.get(r.id))) for r in rows]
            rated = [c for c in checks if c[4] is not None]
            ok = sum(1 for c in rated if c[4])
            t = totals[name]
            t[2] += ok
            t[3] += len(rows)
            if metric != "volume_cc":
                t[0] += ok
                t[1] += len(rows)
            missing = len(rows) - len(rated)
            cells_pass.append(f"{ok}/{len(rows)} ({100 * ok / len(rows):.0f} %)"
                              + (f", {missing} n/a" if missing else ""))
            worst = max(rated, key=lambda c: abs(c[2]), default=None)
            cells_worst.append("-" if worst is None else
                               f"{worst[0].id}: {worst[2]:+.3f}, {worst[3]:+.1f} %")
        table.append([metric] + cells_pass + cells_worst)
    print_table(headers, table, right=set(range(1, 1 + len(tools))))
    print()
    for name, (dok, dn, aok, an) in totals.items():
        print(f"{name}: {dok}/{dn} dose checks within max(1 %, 0.1 Gy) = {100 * dok / dn:.1f} %;"
              f" with the volume (1 %): {aok}/{an} = {100 * aok / an:.1f} %")
    print("(n/a = the tool gave no value: counted as outside tolerance)")


def write_out(rows: list[NelmsRow], tools: dict[str, dict[str, dict]]) -> Path:
    headers = ["row", "structure", "dose_voxel_mm", "gradient", "metric", "unit", "expected",
               "tool", "value", "error", "error_pct", "tolerance", "within", "seconds", "note"]
    lines = []
    for row in rows:
        for name, results in tools.items():
            res = results.get(row.id, {})
            for metric in METRICS:
                value, err, pct, flag = _check(row, metric, res)
                lines.append([row.id, row.structure, row.dose_voxel_mm, row.gradient, metric,
                              METRICS[metric][1], row.expected[metric], name, value, err, pct,
                              common.tolerance(metric, row.expected[metric]), flag,
                              res.get("seconds"), res.get("error", "")])
    return common.write_csv("nelms.csv", headers, lines)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    rows, skipped = common.nelms_rows(args.rows)
    print(f"Nelms 2015: {len(rows)} rows selected; {len(skipped)} rows of the table skipped "
          "(no dose grid shipped)")
    if not rows:
        return 1
    rois = {r.id: common.nelms_roi(r).number for r in rows}

    tools: dict[str, dict[str, dict]] = {}
    reason = common.rtcheck_unavailable()
    if reason:
        print(f"rtcheck left out: {reason}")
    else:
        tools["rtcheck"] = run_rtcheck(rows, rois, args.jobs)
    if not args.no_dicompyler:
        env = dicompyler_env.try_env()
        if env:
            tools["dicompyler"] = run_dicompyler(env, rows, rois, args.jobs, interp=False)
            if args.interp:
                tools["dicompyler-interp"] = run_dicompyler(env, rows, rois, args.jobs,
                                                            interp=True)
    if not tools:
        print("nothing to compare")
        return 1
    _errors(rows, tools)
    if not args.summary_only:
        print()
        print_rows(rows, tools)
    print()
    summarise(rows, tools)
    for name, results in tools.items():
        secs = [r["seconds"] for r in results.values() if "seconds" in r]
        if secs:
            print(f"{name}: {sum(secs):.1f} s of DVH computation for {len(secs)} rows "
                  f"(median {common.median(secs):.3f} s)")
    print("(rtcheck: DVH only, files cached; dicompyler: get_dvh including file reading. "
          "benchmarks/speed.py compares like with like)")
    print(f"written {write_out(rows, tools).relative_to(common.REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
