"""Shared helpers of the DVH benchmarks: data paths, metrics, tolerance, tables, Nelms rows.

The benchmarks are scripts run from the repository root (``python benchmarks/nelms.py``);
they print figures and are not tests.
"""

from __future__ import annotations

import csv
import fnmatch
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pydicom

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
#: The shared validation data sit beside the project (``../shared/validation``).
VALIDATION = Path(os.environ.get("RTCHECK_VALIDATION_DIR", REPO.parent / "shared" / "validation"))
NELMS_DIR = VALIDATION / "nelms-2015"
BREAST_DIR = VALIDATION / "tps-breast-example"
OUT_DIR = BENCH_DIR / "out"

#: The metrics compared, keyed as the dicompyler worker reports them, with rtcheck's name
#: for each (None: a DVH attribute) and the unit printed.
METRICS: dict[str, tuple[str | None, str]] = {
    "volume_cc": (None, "cc"),
    "dmin": (None, "Gy"),
    "dmax": (None, "Gy"),
    "dmean": (None, "Gy"),
    "D99": ("D99%[Gy]", "Gy"),
    "D95": ("D95%[Gy]", "Gy"),
    "D5": ("D5%[Gy]", "Gy"),
    "D1": ("D1%[Gy]", "Gy"),
    "D0.03cc": ("D0.03cc[Gy]", "Gy"),
}
DOSE_FLOOR_GY = 0.1
RELATIVE_TOLERANCE = 0.01


def tolerance(metric: str, expected: float) -> float:
    """Allowed absolute error: max(1 % of expected, 0.1 Gy) for doses, 1 % for the volume."""
    if METRICS[metric][1] == "cc":
        return RELATIVE_TOLERANCE * abs(expected)
    return max(RELATIVE_TOLERANCE * abs(expected), DOSE_FLOOR_GY)


def within(metric: str, expected: float, value: float | None) -> bool | None:
    """True/False against :func:`tolerance`; None when the tool gave no value."""
    if value is None or math.isnan(value):
        return None
    return abs(value - expected) <= tolerance(metric, expected) + 1e-12


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else math.nan


# --------------------------------------------------------------------------------------
# Printing
# --------------------------------------------------------------------------------------


def fmt(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}f}"


def print_table(headers: list[str], rows: list[list[str]], right: set[int] | None = None) -> None:
    """Plain-text table; columns in ``right`` (default: all but the first) right-aligned."""
    right = set(range(1, len(headers))) if right is None else right
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)]

    def line(cells: list[str]) -> str:
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))


def write_csv(name: str, headers: list[str], rows: list[list]) -> Path:
    OUT_DIR.mkdir(exist_ok=True)
    path = OUT_DIR / name
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(headers)
        w.writerows(rows)
    return path


# --------------------------------------------------------------------------------------
# DICOM facts read with pydicom (independent of rtcheck's readers)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoiInfo:
    number: int
    name: str


def rois_with_volume(rtss_path: Path) -> list[RoiInfo]:
    """ROIs of an RTSTRUCT that have at least one non-POINT contour (they have a DVH)."""
    ds = pydicom.dcmread(rtss_path)
    names = {int(r.ROINumber): str(r.ROIName) for r in ds.StructureSetROISequence}
    out = []
    for item in ds.get("ROIContourSequence", []):
        contours = item.get("ContourSequence", [])
        if any(str(c.get("ContourGeometricType", "")).upper() != "POINT" for c in contours):
            number = int(item.ReferencedROINumber)
            out.append(RoiInfo(number, names.get(number, f"ROI {number}")))
    return out


def find_plan_files(folder: Path) -> tuple[Path, Path]:
    """The RTSTRUCT and the (single, or PLAN-summed) RTDOSE of a plan folder.

    Raises
    ------
    FileNotFoundError
        When the folder does not hold exactly one usable pair.
    """
    found: dict[str, list[tuple[Path, pydicom.Dataset]]] = {}
    for p in sorted(folder.rglob("*")):
        if not p.is_file():
            continue
        try:
            ds = pydicom.dcmread(p, stop_before_pixels=True)
        except Exception:  # not DICOM: ignore
            continue
        found.setdefault(str(ds.get("Modality", "")), []).append((p, ds))
    structs = found.get("RTSTRUCT", [])
    doses = found.get("RTDOSE", [])
    if len(doses) > 1:
        doses = [d for d in doses if str(d[1].get("DoseSummationType", "")).upper() == "PLAN"]
    if len(structs) != 1 or len(doses) != 1:
        raise FileNotFoundError(f"{folder}: need one RTSTRUCT and one PLAN RTDOSE, found "
                                f"{len(structs)} RTSTRUCT and {len(doses)} usable RTDOSE")
    return structs[0][0], doses[0][0]


# --------------------------------------------------------------------------------------
# The rtcheck side
# --------------------------------------------------------------------------------------


def rtcheck_unavailable() -> str | None:
    """Why rtcheck cannot run the benchmarks yet (None when it can)."""
    try:
        from rtcheck.dicom import read_dose, read_structure_set  # noqa: F401
        from rtcheck.dvh import compute_dvh  # noqa: F401
    except ImportError as exc:
        return f"rtcheck DICOM readers or DVH engine not available ({exc})"
    return None


@lru_cache(maxsize=8)
def _rtcheck_dose(path: str):
    from rtcheck.dicom import read_dose
    return read_dose(path)


@lru_cache(maxsize=64)
def _rtcheck_structure_set(path: str):
    from rtcheck.dicom import read_structure_set
    return read_structure_set(path)


def rtcheck_structure_of(structures: list, roi_number: int):
    """The one structure numbered ``roi_number``."""
    found = [s for s in structures if s.number == roi_number]
    if len(found) != 1:
        raise LookupError(f"{len(found)} structures numbered {roi_number}")
    return found[0]


def rtcheck_metrics(dvh) -> dict[str, float]:
    """The benchmark metrics of an rtcheck DVH (same keys as the dicompyler worker)."""
    out = {"volume_cc": dvh.volume_cc, "dmin": dvh.dmin, "dmax": dvh.dmax, "dmean": dvh.dmean}
    for key, (name, _unit) in METRICS.items():
        if name:
            out[key] = dvh.metric(name)
    return out


def rtcheck_job(rtss: str, roi: int, rtdose: str) -> dict:
    """rtcheck's metrics for one ROI, as a result dict like the dicompyler worker's.

    Files are cached per process (a dose grid serves many rows); ``seconds`` times the DVH
    computation alone.
    """
    from rtcheck.dvh import compute_dvh
    try:
        structure = rtcheck_structure_of(_rtcheck_structure_set(rtss).structures, roi)
        dose = _rtcheck_dose(rtdose)
        t0 = time.perf_counter()
        dvh = compute_dvh(structure, dose)
        seconds = time.perf_counter() - t0
    except Exception as exc:  # report, never stop the benchmark
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"name": dvh.name, "seconds": seconds, "warnings": list(dvh.warnings),
            "covered_fraction": dvh.covered_fraction, **rtcheck_metrics(dvh)}


def rtcheck_plan(rtss: str, rtdose: str, roi_numbers: list[int]) -> dict[int, dict]:
    """rtcheck's metrics for several ROIs of one plan, as a user gets them.

    Uses ``compute_dvhs`` on the selected structures (so a structure contoured on a single
    plane gets the structure set's slice spacing). Keyed by ROI number; a failure gives
    ``{"error": ...}`` for every ROI.
    """
    from rtcheck.dicom import read_dose, read_structure_set
    from rtcheck.dvh import compute_dvhs
    try:
        structures = read_structure_set(rtss).structures
        chosen = [rtcheck_structure_of(structures, n) for n in roi_numbers]
        chosen = [s for s in chosen if s.contours]  # compute_dvhs skips the others
        dvhs = compute_dvhs(chosen, read_dose(rtdose))
    except Exception as exc:  # report, never stop the benchmark
        return {n: {"error": f"{type(exc).__name__}: {exc}"} for n in roi_numbers}
    out = {n: {"error": "rtcheck read no closed contour"} for n in roi_numbers}
    for s, d in zip(chosen, dvhs):
        out[s.number] = {"name": d.name, "warnings": list(d.warnings),
                         "covered_fraction": d.covered_fraction, **rtcheck_metrics(d)}
    return out


# --------------------------------------------------------------------------------------
# Nelms 2015 rows
# --------------------------------------------------------------------------------------

_GRADIENT_FILES = {"Z(AP)": "Linear_AntPost_{}mm_Aligned.dcm", "Y(SI)": "Linear_SupInf_{}mm_Aligned.dcm"}
_CSV_COLUMNS = {"volume_cc": "volume_cc", "dmin": "dmin_cgy", "dmax": "dmax_cgy",
                "dmean": "dmean_cgy", "D99": "d99_cgy", "D95": "d95_cgy", "D5": "d5_cgy",
                "D1": "d1_cgy", "D0.03cc": "d0.03cc_cgy"}


@dataclass(frozen=True)
class NelmsRow:
    """One row of expected.csv with its files; ``expected`` in cc and Gy."""

    structure: str
    dose_voxel_mm: str
    gradient: str
    rtss: Path
    rtdose: Path
    expected: dict[str, float]

    @property
    def id(self) -> str:
        return f"{self.structure} {self.dose_voxel_mm}mm {self.gradient}"


def nelms_rows(pattern: str | None = None) -> tuple[list[NelmsRow], list[str]]:
    """Rows of the Nelms table that have a dose grid here, and the reasons rows were skipped.

    ``pattern`` is a shell pattern matched against the row id (``"Sphere_10_0 1mm Z(AP)"``),
    e.g. ``"Cone*"`` or ``"*3mm*"``.
    """
    rows, skipped = [], []
    with (NELMS_DIR / "expected.csv").open(newline="") as f:
        for rec in csv.DictReader(f):
            voxel, grad, name = rec["dose_voxel_mm"], rec["gradient"], rec["structure"]
            if grad not in _GRADIENT_FILES:
                skipped.append(f"{name} {voxel} {grad}: unknown gradient")
                continue
            dose = NELMS_DIR / "dose" / _GRADIENT_FILES[grad].format(voxel)
            if not dose.exists():  # the 0.4x0.2x0.4 grids are not shipped
                skipped.append(f"{name} {voxel} {grad}: no dose grid {dose.name}")
                continue
            rtss = NELMS_DIR / "structures" / (name.replace("__", "_") + ".dcm")
            expected = {k: float(rec[c]) / (1.0 if k == "volume_cc" else 100.0)
                        for k, c in _CSV_COLUMNS.items()}
            row = NelmsRow(name, voxel, grad, rtss, dose, expected)
            if pattern is None or fnmatch.fnmatch(row.id, pattern):
                rows.append(row)
    return rows, skipped


def nelms_roi(row: NelmsRow) -> RoiInfo:
    """The one shape ROI of a Nelms structure file (the file also holds a point, POI_1)."""
    rois = _rois_cached(str(row.rtss))
    if len(rois) != 1:
        raise LookupError(f"{row.rtss.name}: {len(rois)} ROIs with a volume, expected 1")
    return rois[0]


@lru_cache(maxsize=None)
def _rois_cached(path: str) -> tuple[RoiInfo, ...]:
    return tuple(rois_with_volume(Path(path)))


# -- whole-process timing (large_plan.py, startup.py) -------------------------------------

#: Runs a command in a forked child and writes its wall seconds and peak resident memory.
_LAUNCHER = """
import os, sys, time
report, cmd = sys.argv[1], sys.argv[2:]
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - t0
with open(report, "w") as f:
    f.write("%r %r" % (seconds, usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)
"""


def measure(cmd: list[str], *, stdin: str | None = None, env: dict | None = None,
            timeout: float | None = None, workdir: Path) -> dict:
    """Run ``cmd`` to its end: wall seconds and peak resident memory (MB) of that process,
    exit code, and its stdout and stderr (through files, so nothing blocks).

    The command runs under :data:`_LAUNCHER`, in its own process group (killed as a whole
    after ``timeout`` seconds).
    """
    out_path, err_path = workdir / "stdout.txt", workdir / "stderr.txt"
    report = workdir / "usage.txt"
    report.unlink(missing_ok=True)
    launcher = [sys.executable, "-S", "-c", _LAUNCHER, str(report), *cmd]
    timed_out = False
    start = time.perf_counter()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(launcher, stdin=subprocess.PIPE if stdin is not None else
                                subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                start_new_session=True)
        if stdin is not None:
            proc.stdin.write(stdin.encode())
            proc.stdin.close()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, 9)  # the launcher and the command it runs
            proc.wait()
    try:
        seconds, rss = (float(v) for v in report.read_text().split())
    except (OSError, ValueError):  # killed: the launcher's wall time, no memory figure
        seconds, rss = time.perf_counter() - start, math.nan
    mb = rss / (1024 * 1024 if sys.platform == "darwin" else 1024)  # bytes on macOS, else kB
    return {"seconds": seconds, "peak_mb": mb, "exit": proc.returncode,
            "timed_out": timed_out, "stdout": out_path.read_text(errors="replace"),
            "stderr": err_path.read_text(errors="replace")}


READ_FLOOR = """
import json, sys, time
t0 = time.perf_counter()
import pydicom
t1 = time.perf_counter()
rp, rs, rd = (pydicom.dcmread(p) for p in sys.argv[1:4])
n = rd.pixel_array.size
print(json.dumps({"inside": time.perf_counter() - t1, "imports": t1 - t0, "voxels": n}))
"""
