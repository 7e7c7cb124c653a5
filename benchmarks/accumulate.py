"""Voxel-wise EQD2 accumulation of two real-size grids: time and peak memory.

The breast plan's RTDOSE (194 x 129 x 98 voxels, 2.5 x 2.5 x 3 mm, 7 fractions) is the current
course; the prior course is the same grid in another frame of reference, related to the
current one by a rigid registration that translates by (3.7, -5.2, 4.4) mm (so every node is
resampled by trilinear interpolation, nothing falls on a node, and the nodes near three faces
of the grid fall outside the prior's), given 10 fractions. Timed:

- ``accumulate_grid``: the whole grid, alpha/beta 2 Gy in the heart and lung, 10 Gy in the
  tumour bed (in that precedence), 3 Gy elsewhere;
- ``organ_sum``: the heart's voxel-wise cumulative maximum and its 3 mm envelope.

Peak memory is traced (``tracemalloc``: numpy's allocations) during each step and printed
beside the size of one grid (float64); the goal is a few grids at most.

Usage (from the repository root)::

    python benchmarks/accumulate.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

SHIFT_MM = np.array([3.7, -5.2, 4.4])
PRIOR_FRACTIONS = 10
AB_MAP = (("Heart", 2.0), ("Lt Lung", 2.0), ("Tumor Bed", 10.0))


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    return p.parse_args(argv)


def load():
    from rtcheck.dicom import read_dose, read_plan, read_structure_set

    folder = common.BREAST_DIR
    if not folder.exists():
        raise SystemExit(f"breast export not found: {folder}")
    return (read_dose(folder / "rtdose.dcm"), read_structure_set(folder / "rtss.dcm"),
            read_plan(folder / "rtplan.dcm"))


def shifted_prior(dose):
    """The same grid in a frame of its own, and the mapping from the current frame into it
    (a translation by SHIFT_MM)."""
    from rtcheck import accumulation as acc
    from rtcheck.model import DoseGrid

    prior = DoseGrid(x=dose.x, y=dose.y, z=dose.z, values=dose.values,
                     frame_of_reference_uid="1.2.3.4.prior")
    matrix = np.eye(4)
    matrix[:3, 3] = SHIFT_MM
    return prior, acc.Mapping(matrix, f"rigid shift {SHIFT_MM.tolist()} mm")


def measured(fn):
    """(result, seconds, peak traced bytes) of one call."""
    tracemalloc.start()
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, seconds, peak


def main(argv: list[str] | None = None) -> int:
    from rtcheck import accumulation as acc

    args = _parse(argv)
    dose, rtss, plan = load()
    prior_grid, how = shifted_prior(dose)
    this = acc.CourseDose("breast plan", dose, plan.fractions or 1)
    prior = acc.CourseDose("shifted copy", prior_grid, PRIOR_FRACTIONS)
    structures = {s.name: s for s in rtss.structures}
    ab = acc.AlphaBetaMap(3.0, AB_MAP)
    grid_mb = dose.values.size * 8 / 1e6
    print(f"grid {dose.values.shape[::-1]} (x, y, z) = {dose.values.size:,} voxels, "
          f"{grid_mb:.1f} MB as float64; prior shifted by {SHIFT_MM.tolist()} mm")
    rows = []
    steps = {
        "accumulate_grid (whole grid)": lambda: acc.accumulate_grid(
            this, [(prior, how)], ab, structures, rtss.plane_spacing_mm),
        "organ_sum (Heart, 3 mm envelope)": lambda: acc.organ_sum(
            [structures["Heart"]], rtss.plane_spacing_mm, this, [(prior, how)], 2.0,
            uncertainty_mm=3.0),
    }
    for name, fn in steps.items():
        runs = [measured(fn) for _ in range(args.repeats)]
        result = runs[-1][0]
        seconds = common.median([r[1] for r in runs])
        peak = max(r[2] for r in runs) / 1e6
        if isinstance(result, acc.Accumulated):
            what = (f"max {np.nanmax(result.grid.values):.2f} Gy EQD2, "
                    f"{result.uncovered:,} voxels outside the prior grid")
        else:
            what = (f"cumulative max {result.value:.2f} Gy, envelope {result.envelope:.2f} Gy"
                    if result.value is not None else result.reason)
        rows.append([name, f"{seconds:.2f}", f"{peak:.0f}", f"{peak / grid_mb:.1f}", what])
    common.print_table(["step", "seconds (median)", "peak MB", "peak / grid", "result"], rows,
                       right={1, 2, 3})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
