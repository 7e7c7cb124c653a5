"""Speed of rtcheck and dicompyler-core on whole plans, in the same run.

For each plan, both tools do the same work, timed the same way: read the RTSTRUCT and the
RTDOSE, then compute the DVH of every structure that has a closed contour (point and empty
ROIs are left out of both). rtcheck runs in this process (``read_structure_set``,
``read_dose``, ``compute_dvhs``); dicompyler-core runs in its virtualenv's subprocess and
times its own loop (``pydicom.dcmread`` of both files once, then ``get_dvh`` at its default
settings for each ROI on the datasets read). Imports and interpreter start-up are outside the
timings of both. Each figure is the median of ``--repeats`` runs.

Plans: the breast export, and one bundled sample plan (the first folder of ``sample_plans/``
holding one RTSTRUCT and one PLAN RTDOSE), or the folders given with ``--plan``.

Usage (from the repository root)::

    python benchmarks/speed.py [--repeats 3] [--plan DIR ...] [--no-dicompyler]

The project's goal: rtcheck at least 20x faster than dicompyler-core, while more accurate.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import dicompyler_env  # noqa: E402
from common import fmt, print_table  # noqa: E402

GOAL = 20.0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--plan", type=Path, action="append",
                   help="plan folder (RTSTRUCT + RTDOSE); repeatable; default: the breast "
                        "export and the first sample plan")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-dicompyler", action="store_true")
    return p.parse_args(argv)


def default_plans() -> list[tuple[str, Path, Path]]:
    """(label, rtss, rtdose) of the breast export and of the first usable sample plan."""
    plans = [("breast (TPS export)", common.BREAST_DIR / "rtss.dcm",
              common.BREAST_DIR / "rtdose.dcm")]
    sample_root = common.REPO / "sample_plans"
    folders = sorted(p for p in sample_root.iterdir() if p.is_dir()) if sample_root.exists() else []
    for folder in folders:
        try:
            rtss, rtdose = common.find_plan_files(folder)
        except FileNotFoundError:
            continue
        plans.append((f"sample_plans/{folder.name}", rtss, rtdose))
        break
    else:
        print(f"no usable plan folder in {sample_root.relative_to(common.REPO)}/: "
              "the sample plan is left out")
    return plans


def time_rtcheck(rtss: Path, rtdose: Path, rois: list[int], repeats: int) -> list[float]:
    """Wall times of: read both files, then every structure's DVH (rtcheck, in process)."""
    from rtcheck.dicom import read_dose, read_structure_set
    from rtcheck.dvh import compute_dvhs
    wanted = set(rois)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        structures = [s for s in read_structure_set(rtss).structures if s.number in wanted]
        compute_dvhs(structures, read_dose(rtdose))
        times.append(time.perf_counter() - t0)
    return times


def time_dicompyler(env, rtss: Path, rtdose: Path, rois: list[int], repeats: int
                    ) -> list[float] | str:
    """dicompyler-core's own timings of the same loop, or the reason it failed."""
    job = {"id": "timing", "kind": "timing", "rtss": str(rtss), "rtdose": str(rtdose),
           "rois": rois, "repeats": repeats, "options": {}}
    res = dicompyler_env.run_jobs(env, [job])["timing"]
    return res.get("error") or res["seconds"]


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    plans = ([(str(p), *common.find_plan_files(p)) for p in args.plan] if args.plan
             else default_plans())
    reason = common.rtcheck_unavailable()
    if reason:
        print(f"rtcheck left out: {reason}")
    env = None if args.no_dicompyler else dicompyler_env.try_env()

    rows = []
    for label, rtss, rtdose in plans:
        rois = [r.number for r in common.rois_with_volume(rtss)]
        rt = None if reason else common.median(time_rtcheck(rtss, rtdose, rois, args.repeats))
        dc = time_dicompyler(env, rtss, rtdose, rois, args.repeats) if env else None
        if isinstance(dc, str):
            print(f"dicompyler-core failed on {label}: {dc}")
            dc = None
        elif dc is not None:
            dc = common.median(dc)
        ratio = dc / rt if rt and dc else None
        verdict = "-" if ratio is None else ("goal met" if ratio >= GOAL else "below goal")
        rows.append([label, str(len(rois)), fmt(rt, 2), fmt(dc, 2),
                     "-" if ratio is None else f"{ratio:.1f}x", verdict])
    print(f"\nmedian of {args.repeats} runs; read both files + DVH of every structure")
    print_table(["plan", "structures", "rtcheck s", "dicompyler s", "dicompyler/rtcheck",
                 f"goal >= {GOAL:g}x"], rows, right={1, 2, 3, 4})
    return 0


if __name__ == "__main__":
    sys.exit(main())
