"""Runs INSIDE benchmarks/.venv-dicompyler: dicompyler-core DVHs for the benchmarks.

Reads a JSON list of jobs on stdin and writes one JSON line per job on stdout. It imports
nothing from rtcheck (rtcheck needs pydicom 3, this venv has pydicom 2).

Job kinds
---------
``{"id", "kind": "dvh", "rtss", "roi", "rtdose", "options": {...}}``
    ``dicompylercore.dvhcalc.get_dvh(rtss, rtdose, roi, **options)`` on the file paths (the
    files are read inside the call, as in dicompyler-core's documented use). Empty options =
    dicompyler-core's defaults. Result: ``volume_cc``, ``dmin``, ``dmax``, ``dmean``, ``D99``,
    ``D95``, ``D5``, ``D1`` (dose to that percent of the volume), ``D0.03cc`` (all doses in
    Gy, from dicompyler-core's own DVH statistics: nearest-bin lookups on 0.01 Gy bins),
    ``name`` (ROI name), ``seconds`` (wall time of the call) and ``notes``.
``{"id", "kind": "timing", "rtss", "rtdose", "rois": [...], "repeats": n, "options": {...}}``
    Wall time of: read both files with pydicom, then ``get_dvh`` for every ROI in ``rois``
    on the datasets read (so each file is read once per repeat, as rtcheck does).
    Result: ``seconds`` (list, one per repeat) and ``volumes_cc`` (ROI number -> volume).

A failing job gives ``{"id", "error": "..."}`` and the worker goes on.
"""

import json
import math
import sys
import time
import traceback

import pydicom
from dicompylercore import dvhcalc

PERCENT_METRICS = ("D99", "D95", "D5", "D1")


def _value(x):
    """A dicompyler DVHValue or number as a JSON-safe float (NaN -> None)."""
    v = float(getattr(x, "value", x))
    return None if math.isnan(v) else v


def dvh_job(job):
    t0 = time.perf_counter()
    dvh = dvhcalc.get_dvh(job["rtss"], job["rtdose"], int(job["roi"]), **job.get("options", {}))
    seconds = time.perf_counter() - t0
    out = {"name": dvh.name, "seconds": seconds, "notes": dvh.notes,
           "volume_cc": _value(dvh.volume), "dmin": _value(dvh.min),
           "dmax": _value(dvh.max), "dmean": _value(dvh.mean)}
    for m in PERCENT_METRICS:
        out[m] = _value(dvh.statistic(m))
    out["D0.03cc"] = _value(dvh.statistic("D0.03cc"))
    return out


def timing_job(job):
    times, volumes = [], {}
    for _ in range(int(job.get("repeats", 1))):
        t0 = time.perf_counter()
        rtss = pydicom.dcmread(job["rtss"], force=True)
        rtdose = pydicom.dcmread(job["rtdose"], force=True)
        for roi in job["rois"]:
            dvh = dvhcalc.get_dvh(rtss, rtdose, int(roi), **job.get("options", {}))
            volumes[str(roi)] = _value(dvh.volume)
        times.append(time.perf_counter() - t0)
    return {"seconds": times, "volumes_cc": volumes}


def main():
    jobs = json.load(sys.stdin)
    for job in jobs:
        try:
            result = timing_job(job) if job.get("kind") == "timing" else dvh_job(job)
        except Exception as exc:  # report and go on: one bad ROI must not stop a benchmark
            last = traceback.extract_tb(exc.__traceback__)[-1]
            result = {"error": f"{type(exc).__name__}: {exc} "
                               f"({last.filename.rsplit('/', 1)[-1]}:{last.lineno})"}
        result["id"] = job["id"]
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
