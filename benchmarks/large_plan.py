"""Time and peak memory of ``rtcheck dvh`` and ``rtcheck check`` on a real-size plan (issue 10).

Usage (from the repository root)::

    python benchmarks/large_plan.py                      # 10 M voxels, 59 ROIs
    python benchmarks/large_plan.py --keep /tmp/large    # write (or reuse) the plan there
    python benchmarks/large_plan.py --scale 0.3 --no-dicompyler   # a quick run

The plan is synthetic and reproducible (same bytes every time): a thoraco-abdominal section
of a patient (HFS), an RTPLAN of 30 Gy in 10 fractions (AP/PA, isocentre in T8), an RTSTRUCT
and a PLAN RTDOSE in Gy on a 2 mm grid of 250 x 200 x 200 voxels (500 x 400 x 400 mm,
10 million voxels, 32-bit pixels, 40 MB). The structure set (5 MB) has 59 ROIs, 56 of them
with closed contours, contoured every 2.5 mm (159 planes):

- large: BODY (256 vertices a plane, its section changes along z), rings made of a contour
  and a hole (Skin_5mm, BODY-PTV, ChestWall), lungs (apart, and both in one ROI: two
  polygons a plane), heart, liver, stomach, spleen, kidneys, aorta, trachea, oesophagus;
- the spine: 17 vertebral bodies (VB_C7 ... VB_L4; C7 and L4, cut by the ends of the scan,
  on one plane each), SpinalCord, SpinalCord_PRV3 and ThecalSac following a gently curved
  canal, PTV (T7-T9) / CTV / GTV;
- small: six lymph nodes (3.5-6 mm radius), four 1.5 mm fiducials, three 1 mm clips over
  three planes, single-plane and few-plane helper ROIs (one with a hole);
- two POINT ROIs and one empty ROI (no contour), as planning systems export them.

The dose is analytic (:class:`rtcheck.synthetic.ConventionalDose`: AP/PA open fields over the
PTV, hotter towards the surfaces, plus a low scatter bath), zero outside the BODY.

Each measurement is a separate subprocess, timed from start to exit (wall: interpreter
start-up, imports and work) with its peak resident memory (``ru_maxrss`` of that process,
read by a bare launcher process that forks it, see ``_LAUNCHER``; Linux/macOS only):

- ``python -c "import rtcheck.cli"``: the start-up floor inside every rtcheck row;
- the read floor: ``pydicom.dcmread`` of the RTPLAN, RTSTRUCT and RTDOSE and the dose's
  ``pixel_array`` (what any tool must do);
- ``rtcheck dvh PLAN --format json`` (every structure);
- ``rtcheck check PLAN --indication pain --site spine --vertebral-level T8``;
- dicompyler-core (in its own virtualenv, ``dicompyler_env.py``): read the RTSTRUCT and the
  RTDOSE, then ``get_dvh`` at its default settings for every ROI with a closed contour.

The "inside s" column is the time the process measured itself (no start-up, no imports), when
it has one. ``--scale F`` multiplies every length of the phantom by F (voxel spacing and
contour spacing stay 2 and 2.5 mm; the small structures keep their size), so the voxel count
goes as F**3: 0.5 gives ~1.25 M voxels. Results also go to ``benchmarks/out/large_plan.csv``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom

sys.path.insert(0, str(Path(__file__).resolve().parent))
# the synthetic phantoms are test support (tests/support), not part of the installed package
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import common  # noqa: E402
import dicompyler_env  # noqa: E402
from common import READ_FLOOR, fmt, measure, print_table  # noqa: E402
from support import synthetic as S  # noqa: E402

#: Dose voxels (x, y, z) at scale 1; the grid step (mm); the contour plane step (mm).
GRID = (250, 200, 200)
DOSE_STEP = 2.0
CONTOUR_STEP = 2.5
PRESCRIPTION_GY = 30.0
FRACTIONS = 10
LABEL = "LARGE_30GY10"
SEED = "rtcheck-benchmark/large-plan"
#: Bump when the phantom changes: a --keep folder written by another version is rebuilt.
GENERATOR_VERSION = 2
CHECK_ARGS = ("--indication", "pain", "--site", "spine", "--vertebral-level", "T8")
VERTEBRAE = ("C7", "T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9", "T10", "T11", "T12",
             "L1", "L2", "L3", "L4", "L5")


# --------------------------------------------------------------------------------------
# The phantom
# --------------------------------------------------------------------------------------


class Phantom:
    """Geometry of the section at ``scale`` (mm, HFS: x patient left, y posterior, z superior).

    The section is centred on (0, 0, 0); the isocentre is the centre of the T8 vertebral body.
    """

    def __init__(self, scale: float = 1.0):
        if not 0 < scale <= 2:
            raise ValueError("--scale must be in (0, 2]")
        self.s = scale
        self.shape = tuple(max(8, round(n * scale)) for n in GRID)  # (nx, ny, nz)
        self.axes = [DOSE_STEP * (np.arange(n) - (n - 1) / 2) for n in self.shape]
        top = self.axes[2][-1] - CONTOUR_STEP / 2 - 0.25  # slabs stay inside the grid
        k = int(np.floor(top / CONTOUR_STEP + 1e-9))
        self.zs = CONTOUR_STEP * np.arange(-k, k + 1)  # contour planes, one on z = 0
        self.vb_y = 62.0 * scale  # vertebral body centre (y) at z = 0
        self.iso = (0.0, self.vb_y, 0.0)
        self.ptv_box = (-35 * scale, self.vb_y - 25 * scale, 35 * scale, self.vb_y + 45 * scale)
        self.ptv_half = 40.0 * scale

    @property
    def voxels(self) -> int:
        return int(np.prod(self.shape))

    # --- shapes ------------------------------------------------------------------------

    def L(self, mm: float) -> float:
        return mm * self.s

    def body_axes(self, z):
        s = self.s
        return (s * (165.0 + 10.0 * np.sin(np.asarray(z) / (120.0 * s))),
                s * (110.0 + 8.0 * np.cos(np.asarray(z) / (90.0 * s))))

    def spine_shift(self, z):
        """Posterior shift (mm) of the vertebral column along z (a gentle kyphosis)."""
        return 6.0 * self.s * np.sin(np.asarray(z) / (160.0 * self.s))

    def within(self, z0: float, z1: float) -> np.ndarray:
        """Contour planes in [z0, z1] (patient mm); at least the one nearest their middle."""
        zs = self.zs[(self.zs >= z0 - 1e-6) & (self.zs <= z1 + 1e-6)]
        if zs.size == 0:
            zs = self.zs[[int(np.argmin(np.abs(self.zs - (z0 + z1) / 2)))]]
        return zs

    def ellipsoid(self, c, semi, n: int = 48) -> list:
        """Ellipsoid centred at ``c`` with semi-axes ``semi`` (both scaled): an ellipse on each
        contour plane that cuts it (at least one plane)."""
        cx, cy, cz = (self.L(v) for v in c)
        a, b, cc = (self.L(v) for v in semi)
        out = []
        for z in self.within(cz - cc, cz + cc):
            f = math.sqrt(max(1.0 - ((z - cz) / cc) ** 2, 0.0)) or 0.3
            out.append((float(z), S.ellipse(cx, cy, a * f, b * f, n)))
        return out

    def tube(self, xy, r: float, z0: float, z1: float, n: int = 32, *,
             follow_spine: bool = False) -> list:
        """Circular tube along z from ``z0`` to ``z1`` (everything scaled); it follows the
        curve of the spine when ``follow_spine``."""
        out = []
        for z in self.within(self.L(z0), self.L(z1)):
            dy = float(self.spine_shift(z)) if follow_spine else 0.0
            out.append((float(z), S.circle(self.L(xy[0]), self.L(xy[1]) + dy, self.L(r), n)))
        return out

    def canal(self, semi) -> list:
        """An ellipse of semi-axes ``semi`` (scaled) around the canal, on every plane."""
        y = self.vb_y + self.L(25.5)
        return [(float(z), S.ellipse(0.0, y + float(self.spine_shift(z)), self.L(semi[0]),
                                     self.L(semi[1]), 32)) for z in self.zs]

    # --- the structure set -------------------------------------------------------------

    def rois(self) -> list[S.ROI]:
        L, zs = self.L, self.zs
        ROI = S.ROI
        body = [(float(z), S.ellipse(0.0, 0.0, *map(float, self.body_axes(z)), 256))
                for z in zs]
        skin = [c for z, poly in body for c in
                ((z, poly), (z, S.ellipse(0.0, 0.0, *(float(a) - min(5.0, 0.2 * float(a))
                                                      for a in self.body_axes(z)), 256)))]
        x0, y0, x1, y1 = self.ptv_box
        ptv_zs = self.within(-self.ptv_half, self.ptv_half)
        ptv = S.extrude(S.rectangle(x0, y0, x1, y1), ptv_zs)
        body_minus_ptv = body + ptv  # a contour inside another is a hole
        chest = [c for z, poly in body if z > L(-60) for c in
                 ((z, poly), (z, S.ellipse(0.0, 0.0, *(float(a) - L(20.0)
                                                       for a in self.body_axes(z)), 128)))]
        lung_c, lung_h = L(62.5), L(135.0)

        def lung(side: int) -> list:
            out = []
            for z in self.within(L(-70), zs[-1]):
                f = max(math.sqrt(max(1 - ((z - lung_c) / lung_h) ** 2, 0.0)), 0.3)
                out.append((float(z), S.ellipse(side * L(85), L(-5), L(55) * f, L(75) * f, 64)))
            return out

        lung_l, lung_r = lung(+1), lung(-1)
        rois = [
            ROI("BODY", body, roi_type="EXTERNAL", color=(0, 255, 0)),
            ROI("Skin_5mm", skin, roi_type="AVOIDANCE"),
            ROI("BODY-PTV", body_minus_ptv, roi_type="CONTROL"),
            ROI("ChestWall", chest),
            ROI("PTV", ptv, roi_type="PTV"),
            ROI("CTV", S.extrude(S.rectangle(L(-28), self.vb_y - L(18), L(28),
                                             self.vb_y + L(38)),
                                 self.within(-L(32), L(32))), roi_type="CTV"),
            ROI("GTV", self.ellipsoid((4, 62, 0), (9, 9, 9), 32), roi_type="GTV"),
            ROI("SpinalCord", self.canal((5.5, 4.5))),
            ROI("SpinalCord_PRV3", self.canal((8.5, 7.5)), roi_type="AVOIDANCE"),
            ROI("ThecalSac", self.canal((8.0, 7.5))),
            ROI("Esophagus", self.tube((-5, 29), 7, -150, 400, follow_spine=True)),
            ROI("Trachea", self.tube((0, -5), 9, 60, 400)),
            ROI("Aorta", self.tube((28, 45), 13, -400, 100)),
            ROI("Lung_L", lung_l),
            ROI("Lung_R", lung_r),
            ROI("Lungs", lung_l + lung_r),
            ROI("Heart", self.ellipsoid((25, -30, -30), (55, 45, 50), 64)),
            ROI("Liver", self.ellipsoid((-65, -5, -140), (80, 70, 60), 64)),
            ROI("Stomach", self.ellipsoid((65, -35, -125), (45, 35, 45))),
            ROI("Spleen", self.ellipsoid((100, 40, -120), (30, 40, 50))),
            ROI("Kidney_L", self.ellipsoid((60, 60, -165), (25, 22, 55))),
            ROI("Kidney_R", self.ellipsoid((-60, 60, -165), (25, 22, 55))),
        ]
        # Vertebral bodies: 26 mm apart, 22 mm high; T8 is centred on z = 0.
        pitch, half = L(26.0), L(11.0)
        t8 = VERTEBRAE.index("T8")
        for k, name in enumerate(VERTEBRAE):
            zc = (k - t8) * -pitch  # C7 is superior (z > 0)
            if abs(zc) > zs[-1] + half:
                continue
            contours = [(float(z), S.ellipse(0.0, self.vb_y + float(self.spine_shift(z)),
                                             L(20), L(15), 48))
                        for z in self.within(zc - half, zc + half)]
            rois.append(ROI(f"VB_{name}", contours, roi_type="ORGAN"))
        # Small structures keep their size in mm whatever the scale.
        nodes = [((-20, -20, 60), 5.0), ((25, -25, 45), 4.0), ((-35, -10, 20), 6.0),
                 ((40, 0, -10), 4.5), ((-15, 20, -45), 5.5), ((10, -45, 90), 3.5)]
        for i, (c, r) in enumerate(nodes, start=1):
            rois.append(ROI(f"LN_{i}", S.sphere(L(c[0]), L(c[1]), L(c[2]), r,
                                                self.within(L(c[2]) - r, L(c[2]) + r), 24)))
        fiducials = [(-10, 38, 18), (12, 38, 22), (-12, 40, -20), (10, 36, -18)]
        for i, c in enumerate(fiducials, start=1):
            zc = L(c[2])
            rois.append(ROI(f"Fid_{i}", S.sphere(L(c[0]), L(c[1]), zc, 1.5,
                                                 self.within(zc - 1.5, zc + 1.5), 12)
                            or [(float(self.within(zc, zc)[0]),
                                 S.circle(L(c[0]), L(c[1]), 1.5, 12))],
                            roi_type="MARKER"))
        for i, c in enumerate([(-40, 30, 70), (45, 20, -60), (0, -60, -90)], start=1):
            z0 = float(self.within(L(c[2]), L(c[2]))[0])
            rois.append(ROI(f"Clip_{i}", S.cylinder(L(c[0]), L(c[1]), 1.0,
                                                    [z0 - CONTOUR_STEP, z0, z0 + CONTOUR_STEP],
                                                    12), roi_type="MARKER"))
        # Helper ROIs of optimisation: one plane (a ring: contour + hole), few planes.
        ring = [(0.0, S.rectangle(x0 - L(10), y0 - L(10), x1 + L(10), y1 + L(2))),
                (0.0, S.rectangle(x0 - L(5), y0 - L(5), x1 + L(5), y1 - L(3)))]
        z40 = float(self.within(L(40), L(40))[0])
        zm10 = float(self.within(L(-10), L(-10))[0])
        rois += [
            ROI("zOpt_ring_z0", ring, roi_type="CONTROL"),
            ROI("zCalc_plane", [(z40, S.circle(L(-30), L(-40), L(20), 48))], roi_type="CONTROL"),
            ROI("zHot_ctrl", S.cylinder(L(15), L(-70), 8.0,
                                        [zm10 - CONTOUR_STEP, zm10, zm10 + CONTOUR_STEP], 24),
                roi_type="CONTROL"),
            ROI("zCold_fix", S.cylinder(L(-20), L(-75), 6.0, [zm10, zm10 + CONTOUR_STEP], 24),
                roi_type="CONTROL"),
            S.point_roi("ISO", self.iso),
            S.point_roi("REF_POINT", (L(0), L(-30), L(0))),
            ROI("Couch", []),  # listed, no contour (an empty ROI)
        ]
        return rois

    # --- the dose ------------------------------------------------------------------------

    def dose(self, x, y, z):
        """Analytic PLAN dose (Gy): AP/PA open fields over the PTV + a scatter bath, zero
        outside the BODY."""
        s = self.s
        field = S.ConventionalDose(PRESCRIPTION_GY, self.iso, quadratic=0.05,
                                   half_width_x=45.0 * s, half_length_z=45.0 * s,
                                   sigma=max(4.0 * s, 1.0))
        dx, dz = x - self.iso[0], z - self.iso[2]
        bath = 0.08 * PRESCRIPTION_GY * np.exp(-(dx * dx + dz * dz) / (2 * (70.0 * s) ** 2))
        ax, ay = self.body_axes(z)
        inside = (x / ax) ** 2 + (y / ay) ** 2 <= 1.0
        return np.where(inside, field(x, y, z) + bath, 0.0)

    def dose_values(self) -> np.ndarray:
        x, y, z = self.axes
        return np.asarray(self.dose(x[None, None, :], y[None, :, None], z[:, None, None]),
                          dtype=float)


def write_plan(folder: Path, phantom: Phantom) -> dict[str, Path]:
    """Write RP.dcm, RS.dcm and RD.dcm of the phantom into ``folder``."""
    def uid(role: str) -> str:
        return S.make_uid(SEED, phantom.s, role)

    common_kw = {"patient_id": "RTCHECK-LARGE", "patient_name": "Synthetic^Large",
                 "study_uid": uid("study"), "date": "20260301"}
    frame = uid("frame")
    rois = phantom.rois()
    rs = S.structure_set_dataset(rois, label="LARGE", frame_uid=frame, sop_uid=uid("RS"),
                                 series_uid=uid("series-RS"), decimals=2, **common_kw)
    ptv_number = next(i for i, r in enumerate(rois, start=1) if r.name == "PTV")
    rp = S.plan_dataset(LABEL, FRACTIONS, PRESCRIPTION_GY, beams=S.default_beams((0.0, 180.0)),
                        intent="PALLIATIVE", structure_set_uid=uid("RS"), frame_uid=frame,
                        target_roi_number=ptv_number, isocenter=phantom.iso,
                        plan_uid=uid("RP"), series_uid=uid("series-RP"), **common_kw)
    x, y, z = phantom.axes
    rd = S.dose_dataset(phantom.dose_values(), (x[0], y[0], z[0]), (DOSE_STEP,) * 3,
                        summation="PLAN", units="GY", plan_uid=uid("RP"), frame_uid=frame,
                        bits=32, sop_uid=uid("RD"), series_uid=uid("series-RD"), **common_kw)
    paths = dict(zip(("RP", "RS", "RD"), S.write_plan(folder, {"RP": rp, "RS": rs, "RD": rd})))
    return paths


def ensure_plan(folder: Path, phantom: Phantom) -> tuple[dict[str, Path], str]:
    """The plan files in ``folder``: reused when a manifest says they are this phantom's,
    written otherwise. Returns the paths and what was done."""
    manifest = folder / "large_plan.json"
    want = {"generator": GENERATOR_VERSION, "scale": phantom.s, "shape": list(phantom.shape)}
    paths = {k: folder / f"{k}.dcm" for k in ("RP", "RS", "RD")}
    try:
        if json.loads(manifest.read_text()) == want and all(p.exists() for p in paths.values()):
            return paths, f"reused {folder}"
    except (OSError, ValueError):
        pass
    t0 = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    for p in (*paths.values(), manifest):
        p.unlink(missing_ok=True)
    paths = write_plan(folder, phantom)
    manifest.write_text(json.dumps(want))
    return paths, f"written to {folder} in {time.perf_counter() - t0:.1f} s"


# --------------------------------------------------------------------------------------
# Measuring a subprocess
# --------------------------------------------------------------------------------------


#: Why not ``os.wait4`` on our own child: Linux starts a child's ``ru_maxrss`` at the high
#: water mark of the memory it was forked (or vforked) from, so a child of this process would
#: report at least this process's peak (hundreds of MB after building the dose grid). This
#: launcher is a bare ``python -S`` (~10 MB): a grandchild inherits only that.
def _tail(text: str, n: int = 6) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keep", type=Path, metavar="DIR",
                   help="write the plan here (reused when it is already there)")
    p.add_argument("--scale", type=float, default=1.0, metavar="FACTOR",
                   help="multiply every length of the phantom (voxels go as FACTOR**3)")
    p.add_argument("--no-dicompyler", action="store_true", help="leave dicompyler-core out")
    p.add_argument("--timeout", type=float, default=3600.0,
                   help="seconds before a measured process is killed (3600)")
    p.add_argument("--csv", type=Path, default=common.OUT_DIR / "large_plan.csv",
                   help="where to write the table (benchmarks/out/large_plan.csv)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    phantom = Phantom(args.scale)
    work = Path(tempfile.mkdtemp(prefix="rtcheck-large-plan-"))
    folder = args.keep or work / "plan"
    failures = 0
    try:
        paths, how = ensure_plan(folder, phantom)
        rois = common.rois_with_volume(paths["RS"])
        n_roi = len(pydicom.dcmread(paths["RS"], stop_before_pixels=True)
                    .StructureSetROISequence)
        nx, ny, nz = phantom.shape
        sizes = ", ".join(f"{k} {p.stat().st_size / 1e6:.1f} MB" for k, p in paths.items())
        print(f"plan {how}")
        print(f"dose grid {nx} x {ny} x {nz} = {phantom.voxels:,} voxels at {DOSE_STEP:g} mm "
              f"({nx * DOSE_STEP:g} x {ny * DOSE_STEP:g} x {nz * DOSE_STEP:g} mm); "
              f"{n_roi} ROIs, {len(rois)} with a closed contour; contours every "
              f"{CONTOUR_STEP:g} mm on {len(phantom.zs)} planes; {sizes}", flush=True)

        py = sys.executable
        cli = [py, "-c", "from rtcheck.cli import main; main()"]
        files = [str(paths[k]) for k in ("RP", "RS", "RD")]
        rows: list[list] = []
        report = None

        def record(tool, what, r, inside=None, note=""):
            rows.append([tool, what, r["seconds"], inside, r["peak_mb"], note])
            print(f"  {tool}: {what}: {r['seconds']:.2f} s, {r['peak_mb']:.0f} MB"
                  f"{', ' + note if note else ''}", flush=True)

        r = measure([py, "-c", "import rtcheck.cli"], workdir=work, timeout=args.timeout)
        record("python", "start-up: import rtcheck.cli", r)

        r = measure([py, "-c", READ_FLOOR, *files], workdir=work, timeout=args.timeout)
        if r["exit"] == 0:
            info = json.loads(r["stdout"].strip().splitlines()[-1])
            record("pydicom", "read floor: dcmread RP+RS+RD, dose pixel_array", r,
                   info["inside"])
        else:
            print(f"read floor failed (exit {r['exit']}):\n{_tail(r['stderr'])}")

        r = measure([*cli, "dvh", str(folder), "--format", "json"], workdir=work,
                    timeout=args.timeout)
        note = f"exit {r['exit']}"
        if r["exit"] == 0:
            report = json.loads(r["stdout"])
            got = report.get("structures", [])
            warned = sum(1 for s in got if s.get("warnings"))
            note += f", {len(got)} structures, {warned} with warnings"
        else:
            failures += 1
            note += " FAILED" + (" (timeout)" if r["timed_out"] else "")
            print(_tail(r["stderr"]))
        record("rtcheck", "dvh PLAN --format json", r, note=note)

        r = measure([*cli, "check", str(folder), *CHECK_ARGS], workdir=work,
                    timeout=args.timeout)
        verdict = next((ln.split(":")[1].split("(")[0].strip() for ln in
                        reversed(r["stdout"].splitlines()) if ln.startswith("Verdict:")), "?")
        note = f"exit {r['exit']}, verdict {verdict}"
        if r["exit"] not in (0, 1, 3, 5):  # 2 = bad input; anything else = a crash
            failures += 1
            note += " FAILED" + (" (timeout)" if r["timed_out"] else "")
            print(_tail(r["stderr"]))
        record("rtcheck", "check PLAN " + " ".join(CHECK_ARGS), r, note=note)

        env = None if args.no_dicompyler else dicompyler_env.try_env()
        if env is not None:
            job = {"id": "timing", "kind": "timing", "rtss": files[1], "rtdose": files[2],
                   "rois": [x.number for x in rois], "repeats": 1, "options": {}}
            r = measure([str(env.python), str(dicompyler_env.WORKER)], stdin=json.dumps([job]),
                        env={**os.environ, "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore"},
                        workdir=work, timeout=args.timeout)
            results = [json.loads(ln) for ln in r["stdout"].splitlines() if ln.startswith("{")]
            res = results[0] if results else {"error": f"worker exited {r['exit']}: "
                                                       f"{_tail(r['stderr'], 1)}"}
            if "error" in res:
                print(f"dicompyler-core failed: {res['error']}")
                record("dicompyler-core", f"read RS+RD, get_dvh x {len(rois)} (FAILED)", r)
            else:
                record("dicompyler-core", f"read RS+RD, get_dvh x {len(rois)}", r,
                       res["seconds"][0])
                _compare_volumes(res.get("volumes_cc", {}), report, rois)

        print(f"\n{phantom.voxels:,} voxels, {n_roi} ROIs ({len(rois)} with a DVH); "
              "seconds: the whole process (start-up + imports + work); inside s: the work "
              "timed by the process itself")
        print_table(["tool", "what", "seconds", "inside s", "peak MB", "note"],
                    [[t, w, fmt(s, 2), fmt(i, 2), f"{m:.0f}", n] for t, w, s, i, m, n in rows],
                    right={2, 3, 4})
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with args.csv.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["tool", "what", "seconds", "inside_s", "peak_mb", "note", "voxels",
                        "rois", "rois_with_dvh"])
            w.writerows([*row, phantom.voxels, n_roi, len(rois)] for row in rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the plan too, unless --keep put it elsewhere
    return 1 if failures else 0


def _compare_volumes(dc_volumes: dict, report: dict | None, rois) -> None:
    """Structure volumes of the two tools, where they differ by more than 5 %."""
    if not report:
        return
    rt = {s.get("roi_number"): s.get("volume_cc") for s in report.get("structures", [])}
    off = []
    for roi in rois:
        a, b = rt.get(roi.number), dc_volumes.get(str(roi.number))
        if a and b and abs(a - b) > 0.05 * max(a, b):
            off.append(f"{roi.name} {a:.2f} vs {b:.2f} cc")
    if off:
        print("  volumes differing by > 5 % (rtcheck vs dicompyler-core): " + "; ".join(off))


if __name__ == "__main__":
    sys.exit(main())
