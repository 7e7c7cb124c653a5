"""Whole-process timings of rtcheck's commands beside the floors they cannot go below (issue 11).

Each row is a separate process, timed from start to exit by a bare launcher (wall seconds,
median of ``--repeat`` rounds, 5 by default, a round running every process once; see
``common.measure``):

- ``python -c pass``: the interpreter's own start-up, in every row;
- the read floor of a plan: a process that only imports pydicom (and numpy, which decoding
  the dose needs), reads the RTPLAN, RTSTRUCT and RTDOSE and decodes the dose's pixel data;
- ``rtcheck --help`` and ``rtcheck convert 30Gy/10 --alpha-beta 2`` (goal: < 0.15 s);
- ``rtcheck dvh PLAN`` (goal: within 2x the read floor) and ``rtcheck check PLAN`` (goal:
  within 1.5x) on the breast export (``../shared/validation/tps-breast-example``) and on the
  SBRT sample plan (``sample_plans/spine-sbrt-27Gy3``).

Python must be allowed to cache bytecode, as in any installed package: with
``PYTHONDONTWRITEBYTECODE`` set (some sandboxes set it) every run compiles rtcheck's ~100 modules
again (~0.25 s) while numpy and pydicom use their installed caches; the script says so.
Timings on a loaded machine move by tens of percent: run it on a quiet one, and read the ratios
(each row against its floor, measured in the same run) rather than the absolute seconds.
Usage: ``python benchmarks/startup.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BREAST_DIR, READ_FLOOR, REPO, fmt, measure, median, print_table  # noqa: E402

SAMPLE = REPO / "sample_plans" / "spine-sbrt-27Gy3"
#: The facts `rtcheck check` needs on each plan (what a dosimetrist would give).
CHECK_FACTS = {
    "breast": ["--indication", "pain", "--site", "extraspinal"],
    "sample": ["--indication", "pain", "--site", "spine", "--vertebral-level", "T8"],
}


def plan_files(folder: Path) -> list[str]:
    """RTPLAN, RTSTRUCT, RTDOSE of a folder, by modality (read floor order)."""
    import pydicom

    by_modality: dict[str, str] = {}
    for path in sorted(folder.glob("*.dcm")):
        modality = str(pydicom.dcmread(path, stop_before_pixels=True).get("Modality", ""))
        by_modality.setdefault(modality, str(path))
    return [by_modality[m] for m in ("RTPLAN", "RTSTRUCT", "RTDOSE")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per row (median; 5)")
    args = parser.parse_args(argv)
    if sys.flags.dont_write_bytecode:
        print("note: PYTHONDONTWRITEBYTECODE is set: rtcheck's modules are compiled on every "
              "run (~0.25 s); unset it for the figures an installed rtcheck gives")
    py = sys.executable
    rtcheck = [py, "-m", "rtcheck"]
    # (label, command, label of the floor it is compared with, goal)
    plan: list[tuple[str, list[str], str | None, str]] = [
        ("python -c pass", [py, "-c", "pass"], None, ""),
        ("rtcheck --help", [*rtcheck, "--help"], "python -c pass", "< 0.15 s"),
        ("rtcheck convert 30Gy/10 --alpha-beta 2",
         [*rtcheck, "convert", "30Gy/10", "--alpha-beta", "2"], "python -c pass", "< 0.15 s"),
    ]
    for name, folder in (("breast", BREAST_DIR), ("sample", SAMPLE)):
        if not folder.is_dir():
            print(f"  {name}: {folder} is missing, skipped")
            continue
        floor = f"{name}: read floor (pydicom: read RP+RS+RD, decode dose)"
        plan += [
            (floor, [py, "-c", READ_FLOOR, *plan_files(folder)], None, ""),
            (f"{name}: rtcheck dvh", [*rtcheck, "dvh", str(folder), "--format", "json"],
             floor, "<= 2x floor"),
            (f"{name}: rtcheck check", [*rtcheck, "check", str(folder), *CHECK_FACTS[name],
                                        "--format", "json"], floor, "<= 1.5x floor"),
        ]
    # Rounds, each running every process once: a machine slowing down for a while (a VM's
    # neighbours) then weighs on a row and its floor alike, and the ratios stay readable.
    seconds: dict[str, list[float]] = {label: [] for label, *_ in plan}
    exits: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for round_no in range(args.repeat):
            for label, cmd, _, _ in plan:
                run = measure(cmd, workdir=Path(tmp), timeout=600)
                seconds[label].append(run["seconds"])
                exits[label] = run["exit"]
            print(f"  round {round_no + 1}/{args.repeat} done", flush=True)
    rows: list[list[str]] = []
    for label, _, floor_label, goal in plan:
        value = median(seconds[label])
        ratio = f"{value / median(seconds[floor_label]):.2f}x" if floor_label else ""
        rows.append([label, fmt(value, 3), ratio, goal, str(exits[label])])
    print()
    print_table(["process", "median s", "vs floor", "goal", "exit"], rows, right={1, 2})
    print("\n'vs floor': against `python -c pass` for --help/convert, against the read floor "
          "for dvh/check (rtcheck check exits 1/3/5 by verdict, not an error). Each row is the "
          f"median of {args.repeat} rounds; a round runs every process once.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
