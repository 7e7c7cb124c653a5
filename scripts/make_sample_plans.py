#!/usr/bin/env python
"""Write the synthetic sample plans under sample_plans/ and their README with the truth.

Usage::

    python scripts/make_sample_plans.py [OUT_DIR]     # default: sample_plans/ of the repo

Deterministic: every UID derives from a fixed seed, so the DICOM files are byte-identical
each time. The README's numbers come from the analytic dose functions themselves (exact
maxima) or from dense sampling of them over the contoured volumes (resolution stated), never
from rtcheck's DVH engine, so rtcheck can be checked against them.
"""

from __future__ import annotations

import calendar
import datetime as dt
import sys
from pathlib import Path

import numpy as np
from scipy.interpolate import RegularGridInterpolator

# the phantom builders are test support (tests/support), not part of the installed package
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support import synthetic as syn  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
XY_STEP, Z_STEP = 0.05, 1.0  # dense-sampling cell (mm) for volume metrics
COARSE_STEP = 0.5  # interior lattice (mm) when only the maximum is wanted
EDGE_STEP = 0.02  # spacing (mm) of the points sampled along contour edges for maxima
ALPHA_BETA_CORD = 2.0


def _day(yyyymmdd: str) -> dt.date:
    return dt.datetime.strptime(yyyymmdd, "%Y%m%d").date()


def _add_months(day: dt.date, n: int) -> dt.date:
    """``day`` moved by ``n`` calendar months (the day clamped to the month's length)."""
    years, month0 = divmod(day.month - 1 + n, 12)
    year, month = day.year + years, month0 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def calendar_months(start: dt.date, end: dt.date) -> float:
    """Whole calendar months from ``start`` to ``end``, plus the elapsed share of the next
    month (2025-03-14 to 2026-03-01: 11 months to 2026-02-14, then 15 of 28 days)."""
    n = 0
    while _add_months(start, n + 1) <= end:
        n += 1
    lo, hi = _add_months(start, n), _add_months(start, n + 1)
    return n + (end - lo).days / (hi - lo).days


def eqd2(total_gy: float, fractions: int, alpha_beta: float = ALPHA_BETA_CORD) -> float:
    """EQD2 of a point receiving ``total_gy`` in ``fractions`` (LQ, d = total / n)."""
    d = total_gy / fractions
    return total_gy * (d + alpha_beta) / (2.0 + alpha_beta)


def _edge_points(roi: syn.ROI) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points every EDGE_STEP mm along every contour edge, at the contour planes."""
    xs, ys, zs = [], [], []
    for z, xy in roi.contours:
        closed = np.vstack([xy, xy[:1]])
        for p, q in zip(closed[:-1], closed[1:]):
            n = max(2, int(np.ceil(np.hypot(*(q - p)) / EDGE_STEP)) + 1)
            t = np.linspace(0.0, 1.0, n)
            xs.append(p[0] + t * (q[0] - p[0]))
            ys.append(p[1] + t * (q[1] - p[1]))
            zs.append(np.full(n, float(z)))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(zs)


def _grid_interpolator(case: syn.SpineCase) -> RegularGridInterpolator:
    """Trilinear interpolation of the dose as sampled on the case's grid."""
    lo, hi = case.grid_bounds()
    x, y, z = syn.grid_axes(lo, hi, (case.dose_step,) * 3)
    values = syn.sample_function(case.dose, x, y, z)
    return RegularGridInterpolator((z, y, x), values)


def structure_truth(case: syn.SpineCase, rois: list[syn.ROI], interp: RegularGridInterpolator,
                    name: str, volumes_cc=(), xy_step=XY_STEP) -> dict:
    """Maximum and D(volume) of one ROI, from the dose function and from the trilinear
    interpolation of the dose grid, at the same sample points.

    Returns ``{"function": {...}, "grid": {...}, "volume_cc": v}`` with keys ``dmax`` and
    ``D<v>cc`` in each.
    """
    roi = syn.roi_by_name(rois, name)
    ex, ey, ez = _edge_points(roi)
    # The maxima of these dose functions over a contoured volume lie on its boundary; a
    # coarse interior lattice guards that assumption.
    step = xy_step if volumes_cc else COARSE_STEP
    x, y, z, cell = syn.roi_samples(roi, case.contour_step, step, Z_STEP)
    out: dict = {"volume_cc": x.size * cell / 1000.0}
    for source, dose in (("function", case.dose),
                         ("grid", lambda x, y, z: interp(np.column_stack([z, y, x])))):
        edge, inner = dose(ex, ey, ez), dose(x, y, z)
        values = {"dmax": float(max(edge.max(), inner.max()))}
        for v in volumes_cc:
            values[f"D{v:g}cc"] = syn.dose_at_volume(inner, cell, v)
        out[source] = values
    return out


def case_truth(case: syn.SpineCase) -> dict:
    """The README numbers of one plan."""
    near_max = (0.03, 0.035, 0.35, 1.2) if case.kind == "sbrt" else (0.03, 0.035)
    common = (case, case.rois(), _grid_interpolator(case))
    truth = {
        "cord_dmax": case.cord_dmax(),
        "cord_point": case.cord_max_point,
        "cord": structure_truth(*common, "SpinalCord", near_max),
        "sac": structure_truth(*common, "ThecalSac"),
        "esophagus": structure_truth(*common, "Esophagus",
                                     (5,) if case.kind == "sbrt" else (), xy_step=0.1),
    }
    truth["cord_eqd2"] = eqd2(truth["cord_dmax"], case.fractions)
    return truth


def _dose_description(case: syn.SpineCase) -> str:
    a = case.anatomy
    if isinstance(case.dose, syn.SBRTDose):
        d = case.dose
        return (f"SBRT fall-off: D = {d.prescription_gy:g} Gy x exp(-s / {d.falloff_mm:.4f} mm) "
                f"at distance s outside the PTV (cord {a.cord_gap:g} mm behind the PTV, so "
                f"cord Dmax = {d.prescription_gy:g} x exp(-{a.cord_gap:g} / {d.falloff_mm:.4f})); "
                f"inside the PTV {d.prescription_gy:g} Gy at its surface rising to "
                f"{d.prescription_gy * (1 + d.hot):g} Gy in its centre.")
    d = case.dose
    v = (a.cord_y + a.cord[1]) / 100.0
    term, at = ((f"{d.linear:.6g} v", f"{d.linear:.6g} x {v:g}") if d.linear else
                (f"{d.quadratic:.6g} v^2", f"{d.quadratic:.6g} x {v:g}^2"))
    return (f"Open fields: D = {d.prescription_gy:g} Gy x F(x) F(z) x (1 + {term}), "
            f"v = (y - y_iso) / 100 mm, F = 1 in the field centre (50 % at x = +-"
            f"{d.half_width_x:g} and z = +-{d.half_length_z:g} mm, Gaussian penumbra sigma "
            f"{d.sigma:g} mm); the cord's posterior edge is at v = {v:g}, so cord Dmax = "
            f"{d.prescription_gy:g} x (1 + {at}).")


def _files(sample: syn.Sample) -> str:
    suffix = f".{sample.tag}" if sample.tag else ""
    return ", ".join(f"`{k}{suffix}.dcm`" for k in ("RP", "RS", "RD"))


def _records_line(sample: syn.Sample) -> list[str]:
    """The README line on a plan's treatment records (none without records)."""
    dates = sample.treatment_dates
    if not dates:
        return []
    suffix = f".{sample.tag}" if sample.tag else ""
    first, last = _day(dates[0]), _day(dates[-1])
    after = (last - _day(sample.case.date)).days
    return [f"- Treatment records: `RT.F01{suffix}.dcm` to `RT.F{len(dates):02d}{suffix}.dcm`, one "
            f"RT Beams Treatment Record per fraction (each references the plan and dates the "
            f"session: TreatmentDate and every beam's TreatmentControlPointDate), {len(dates)} "
            f"fractions on weekdays {first} to {last}: **last fraction {last}**, {after} days "
            "after the plan date."]


def _plan_section(sample: syn.Sample, truth: dict) -> list[str]:
    c, a = sample.case, sample.case.anatomy
    cord, sac, eso = truth["cord"], truth["sac"], truth["esophagus"]
    px, py, pz = truth["cord_point"]
    lo, hi = c.grid_bounds()
    shape = [len(v) for v in syn.grid_axes(lo, hi, (c.dose_step,) * 3)]
    title = sample.folder + (f" (plan {sample.tag})" if sample.tag else "")
    lines = [
        f"### {title}",
        "",
        sample.description,
        "",
        f"- Files: {_files(sample)}. Patient `{c.patient_id}`, RTPlanLabel `{c.label}`, "
        f"RTPlanDate {c.date}, PlanIntent {c.intent}.",
        f"- Prescription: {c.prescription_gy:g} Gy in {c.fractions} fraction(s) "
        f"({c.prescription_gy / c.fractions:g} Gy per fraction; TargetPrescriptionDose "
        f"{c.prescription_gy:g}); {len(c.angles)} beam(s) at gantry "
        f"{', '.join(f'{g:g}' for g in c.angles)} deg with equal BeamDose.",
        f"- Dose grid: {c.dose_step:g} mm, {shape[0]} x {shape[1]} x {shape[2]} (x, y, z) voxels, "
        f"HFS, 16-bit, DoseSummationType PLAN; contours every {c.contour_step:g} mm.",
        f"- {_dose_description(c)}",
        *_records_line(sample),
        "",
        "| quantity | dose function | interpolated grid |",
        "|---|---|---|",
        f"| **SpinalCord Dmax** | **{truth['cord_dmax']:.2f} Gy** (analytic: at ({px:g}, "
        f"{py:g}, {pz:g}) mm, the cord's {'anterior' if c.kind == 'sbrt' else 'posterior'} "
        f"edge) | {cord['grid']['dmax']:.2f} Gy |",
        f"| SpinalCord Dmax EQD2 (a/b 2 Gy, d = Dmax/{c.fractions}) | "
        f"{truth['cord_eqd2']:.2f} Gy | |",
    ]
    for key in [k for k in cord["function"] if k.startswith("D")]:
        lines.append(f"| SpinalCord {key} | {cord['function'][key]:.2f} Gy | "
                     f"{cord['grid'][key]:.2f} Gy |")
    lines += [
        f"| SpinalCord volume (contour planes x {c.contour_step:g} mm slabs) | "
        f"{cord['volume_cc']:.2f} cc | |",
        f"| ThecalSac Dmax | {sac['function']['dmax']:.2f} Gy | {sac['grid']['dmax']:.2f} Gy |",
        f"| Esophagus Dmax | {eso['function']['dmax']:.2f} Gy | {eso['grid']['dmax']:.2f} Gy |",
    ]
    if "D5cc" in eso["function"]:
        lines.append(f"| Esophagus D5cc (0.1 mm lattice) | {eso['function']['D5cc']:.2f} Gy | "
                     f"{eso['grid']['D5cc']:.2f} Gy |")
    if c.kind == "sbrt":
        lines += ["", f"The thecal sac, 1 mm behind the PTV, gets {sac['function']['dmax']:.2f} "
                  "Gy: Sahgal's point-maximum limits were defined on the thecal sac, so a "
                  "centre that applies them to the sac rather than the cord fails this plan."]
    return lines + [""]


def _reirradiation_section(c1: syn.SpineCase, t1: dict, c2: syn.SpineCase, t2: dict,
                           c1_delivered: tuple[str, ...] = ()) -> list[str]:
    e1, e2 = t1["cord_eqd2"], t2["cord_eqd2"]
    total = e1 + e2
    # Course 1's dose at course 2's hottest cord point: the point-wise cumulative EQD2.
    d1_at_p2 = float(c1.dose(*(np.array(v) for v in t2["cord_point"])))
    e1_at_p2 = eqd2(d1_at_p2, c1.fractions)
    from_plan = calendar_months(_day(c1.date), _day(c2.date))

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    if c1_delivered:
        # The rule runs from the prior course's last fraction as delivered (its records).
        last = _day(c1_delivered[-1])
        months = calendar_months(last, _day(c2.date))
        interval = (f"| 4. interval from course 1's last fraction {last} (its treatment "
                    f"records) to course 2's plan date {_day(c2.date)} | "
                    f"{(_day(c2.date) - last).days} days = {months:.2f} calendar months (from "
                    f"course 1's plan date {_day(c1.date)} it would be {from_plan:.2f}) | "
                    f">= 5 months | {verdict(months >= 5)} |")
    else:
        interval = (f"| 4. interval {c1.date} to {c2.date} | {from_plan:g} months | "
                    f">= 5 months | {verdict(from_plan >= 5)} |")

    return [
        "### Re-irradiation: the four rules (DOMAIN section 4, a/b 2 Gy, cord Dmax)",
        "",
        f"Course 1: cord Dmax {t1['cord_dmax']:.2f} Gy in {c1.fractions} fractions, EQD2 = "
        f"{t1['cord_dmax']:.2f} x ({t1['cord_dmax'] / c1.fractions:.3f} + 2) / 4 = {e1:.2f} Gy.",
        f"Course 2: cord Dmax {t2['cord_dmax']:.2f} Gy in {c2.fractions} fractions, EQD2 = "
        f"{t2['cord_dmax']:.2f} x ({t2['cord_dmax'] / c2.fractions:.3f} + 2) / 4 = {e2:.2f} Gy.",
        "",
        "| rule | value | limit | intended verdict |",
        "|---|---|---|---|",
        f"| 1. cumulative cord Dmax EQD2 (sum of the two maxima) | {total:.2f} Gy | < 70 Gy | "
        f"{verdict(total < 70)} |",
        f"| 2. SBRT-course cord Dmax EQD2 | {e2:.2f} Gy | < 25 Gy | {verdict(e2 < 25)} |",
        f"| 3. ratio SBRT / cumulative | {e2 / total:.3f} | <= 0.5 | "
        f"{verdict(e2 / total <= 0.5)} |",
        interval,
        "",
        "Rule 2 fails narrowly: 15 Gy in 3 fractions is just above the ~14.5 Gy/3 that gives "
        "25 Gy EQD2. Summing the two maxima is conservative: they are not at the same point "
        f"(course 1 peaks at the cord's posterior edge, course 2 at its anterior edge). At "
        f"course 2's hottest point {tuple(round(v, 2) for v in t2['cord_point'])} course 1 gave "
        f"{d1_at_p2:.2f} Gy (EQD2 {e1_at_p2:.2f} Gy), a point-wise cumulative EQD2 of "
        f"{e1_at_p2 + e2:.2f} Gy. Both courses share PatientID and FrameOfReferenceUID.",
        "",
    ]


def readme(samples: list[syn.Sample], truths: list[dict]) -> str:
    a = syn.SpineAnatomy()
    lines = [
        "# Sample plans (synthetic)",
        "",
        "Synthetic DICOM-RT plans of a thoracic spine, made by `rtcheck.synthetic` from "
        "analytic dose functions so that every number below is known independently of any DVH "
        "tool. No real patient data: patients are `RTCHECK-SAMPLE-nn`, `Sample^Spine`.",
        "",
        "Regenerate (byte-identical files, this README included):",
        "",
        "```",
        "python scripts/make_sample_plans.py            # writes sample_plans/",
        "```",
        "",
        "## Anatomy (all plans)",
        "",
        f"Coordinates are DICOM patient coordinates (HFS: x to the patient's left, y "
        f"posterior, z superior), in mm. The vertebral body centre (the isocentre) is at "
        f"{a.centre}. Relative to it:",
        "",
        f"- vertebral body: elliptic cylinder, semi-axes {a.vertebral_body} mm, "
        f"+-{a.vertebra_half_height:g} mm in z;",
        f"- SBRT PTV: vertebral body + {a.sbrt_margin:g} mm (semi-axes {a.sbrt_ptv}, "
        f"+-{a.sbrt_ptv_half_length:g} mm in z); conventional PTV: the box x "
        f"{a.conventional_ptv[0]:g}..{a.conventional_ptv[2]:g}, y {a.conventional_ptv[1]:g}.."
        f"{a.conventional_ptv[3]:g}, +-{a.conventional_ptv_half_length:g} mm in z (vertebra, "
        "posterior elements and canal);",
        f"- GTV: sphere of radius {a.gtv[3]:g} mm at {a.gtv[:3]};",
        f"- SpinalCord: elliptic cylinder centred at y = +{a.cord_y:g}, semi-axes {a.cord} mm "
        f"(anterior edge {a.cord_gap:g} mm behind the SBRT PTV), +-{a.organ_half_length:g} mm in "
        "z (longer than any PTV, inside the dose grid);",
        f"- ThecalSac: elliptic cylinder around the cord, semi-axes {a.thecal_sac} mm;",
        f"- Esophagus: circular cylinder of radius {a.esophagus[2]:g} mm at "
        f"({a.esophagus[0]:g}, {a.esophagus[1]:g});",
        f"- BODY (EXTERNAL): ellipse of semi-axes {a.skin} mm centred at y = {a.skin_y:g};",
        "- ISO: a POINT ROI at the isocentre.",
        "",
        "Contours are polygons with their vertices on these curves (64 vertices for the cord, "
        "thecal sac, PTV and BODY, so the cord's anterior and posterior edges on the y axis "
        "are vertices). Contour planes are spaced 2 mm (SBRT) or 3 mm (open fields), each "
        "standing for a slab of that thickness. The dose grid is cropped to 120 x 120 mm "
        "around the spine (as planning systems do): **BODY is wider than the dose grid on "
        "purpose** and a checker must report it as not covered; every other structure lies "
        "inside the grid.",
        "",
        "## What the numbers mean",
        "",
        "- *dose function*: the truth. The cord Dmax is analytic: the exact maximum of the dose "
        "function over the contoured cord (it lies on a contour vertex and along a z-plateau, "
        "so slab and end-cap conventions do not change it). Other values come from dense "
        "sampling: the function evaluated on a lattice filling each contour polygon "
        f"({XY_STEP:g} x {XY_STEP:g} mm cells) across its slab ({Z_STEP:g} mm steps), and for "
        f"maxima also along every contour edge every {EDGE_STEP:g} mm. Halving the lattice "
        "moves the near-maximum doses by less than 0.02 Gy.",
        "- *interpolated grid*: the same samples taken from the trilinear interpolation of "
        "the dose grid (the values at the voxel centres are the dose function's). A DVH tool "
        "only sees the grid: where the dose is convex (the SBRT fall-off) interpolation "
        "overestimates the true dose, so a correct tool lands near this column, not below "
        "the dose-function column.",
        "",
        "## Plans",
        "",
        "| folder | prescription | cord Dmax (analytic) | EQD2 a/b 2 |",
        "|---|---|---|---|",
    ]
    for s, t in zip(samples, truths):
        name = s.folder + (f" ({s.tag})" if s.tag else "")
        lines.append(f"| `{name}` | {s.case.prescription_gy:g} Gy / {s.case.fractions} | "
                     f"{t['cord_dmax']:.2f} Gy | {t['cord_eqd2']:.2f} Gy |")
    lines.append("")
    by_folder = {s.folder: (s, t) for s, t in zip(samples, truths)}
    for s, t in zip(samples, truths):
        lines += _plan_section(s, t)
        if s.folder.startswith("reirradiation/course2"):
            (s1, t1) = by_folder["reirradiation/course1-30Gy10"]
            lines += _reirradiation_section(s1.case, t1, s.case, t, s1.treatment_dates)
    lines += [
        "## Loading notes",
        "",
        "- `two-plans/` holds two complete plans (RP/RS/RD `.A` and `.B`) of the same patient "
        "and frame of reference: a loader must ask which plan to check.",
        "- Each RTPLAN references its RTSTRUCT (ReferencedStructureSetSequence) and each "
        "RTDOSE its RTPLAN (ReferencedRTPlanSequence); all three share the "
        "FrameOfReferenceUID.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else ROOT / "sample_plans"
    samples = syn.make_sample_plans(out)
    truths = [case_truth(s.case) for s in samples]
    (out / "README.md").write_text(readme(samples, truths), encoding="utf-8")
    print(f"wrote {len(samples)} plans and README.md under {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
