"""The near-maximum that decides an SBRT verdict: cord and thecal sac in a steep fall-off.

On the bundled spine SBRT sample (sample_plans/spine-sbrt-27Gy3, 27 Gy/3, cord 4 mm behind the
PTV), prints Dmax, D0.03cc and the volume of the cord, thecal sac and oesophagus from rtcheck
and dicompyler-core (default settings) beside the truth that sample_plans/README.md gives
(dense 0.1 mm sampling of the interpolated grid, computed by the sample generator).

    python benchmarks/sbrt_cord.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO as ROOT  # noqa: E402
from common import fmt, print_table, rtcheck_job
from dicompyler_env import run_jobs, try_env  # noqa: E402

PLAN = ROOT / "sample_plans" / "spine-sbrt-27Gy3"
# Truth from sample_plans/README.md ("interpolated grid" column): Dmax, D0.03cc (Gy).
TRUTH = {"SpinalCord": (17.11, 16.37), "ThecalSac": (24.05, None), "Esophagus": (14.38, None)}


def main() -> int:
    from rtcheck.dicom import read_structure_set

    rs, rd = str(PLAN / "RS.dcm"), str(PLAN / "RD.dcm")
    rois = {s.name: s.number for s in read_structure_set(rs).structures}
    env = try_env()
    dcm = run_jobs(env, [{"id": n, "kind": "dvh", "rtss": rs, "roi": rois[n], "rtdose": rd}
                         for n in TRUTH]) if env else {}
    rows = []
    for name, (dmax, d003) in TRUTH.items():
        ours = rtcheck_job(rs, rois[name], rd)
        theirs = dcm.get(name, {})
        rows.append([name, fmt(dmax, 2), fmt(ours.get("dmax"), 2), fmt(theirs.get("dmax"), 2),
                     fmt(d003, 2), fmt(ours.get("D0.03cc"), 2), fmt(theirs.get("D0.03cc"), 2),
                     fmt(ours.get("volume_cc"), 2), fmt(theirs.get("volume_cc"), 2)])
    print(f"{PLAN.relative_to(ROOT)}: 27 Gy/3, cord 4 mm behind the PTV (Gy, cc)")
    print_table(["structure", "Dmax truth", "rtcheck", "dicompyler", "D0.03cc truth", "rtcheck",
                 "dicompyler", "vol rtcheck", "vol dicompyler"], rows, right=set(range(1, 9)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
