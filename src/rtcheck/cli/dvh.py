"""``rtcheck dvh``: DVH metrics of a plan's structures, as a table, JSON or CSV."""

from __future__ import annotations

import csv
import io
import math

import click

from rtcheck.cli.common import (
    DOSE_FILES_HELP,
    CommandError,
    MetricType,
    OneLineCommand,
    PathOrStudyURL,
    check_output,
    dose_summation_option,
    download_dir_option,
    load_from_cli,
    local_paths,
    write_output,
)
from rtcheck.dvh import DVH, compute_dvhs
from rtcheck.files import atomic_path
from rtcheck.model import PlanData

SUMMARY = ("Dmax", "Dmin", "Dmean", "D0.03cc")


def _clean(value: float | None) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), 6)


def dvh_report(data: PlanData, dvhs: list[DVH], metrics: list[str],
               skipped: list[dict]) -> dict:
    """The JSON document of ``rtcheck dvh`` (schema in the README)."""
    plan = data.plan
    dose = data.dose
    assert dose is not None
    fractions = dose.fractions_applied or (plan.fractions if plan else None)
    return {
        "plan": None if plan is None else {
            "label": plan.label, "uid": plan.uid, "patient_id": plan.patient_id,
            "fractions": plan.fractions, "prescription_gy": _clean(plan.prescription_gy),
            "date": plan.date.isoformat() if plan.date else None,
        },
        "dose": {
            "units": dose.units, "summation": dose.summation,
            "fractions": fractions if plan is not None or dose.fractions_applied else None,
            "grid_mm": [round(s, 4) for s in dose.spacing],
            "files": list(dose.paths),
        },
        "structures": [
            {
                "name": d.name, "roi_number": d.roi_number, "volume_cc": _clean(d.volume_cc),
                "covered_fraction": _clean(d.covered_fraction),
                "metrics": {**{k: _clean(v) for k, v in d.summary().items()},
                            **{m: _clean(d.metric(m)) for m in metrics}},
                "warnings": d.warnings,
            }
            for d in dvhs
        ],
        "skipped": skipped,
        "warnings": list(data.warnings),
    }


def _fmt(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def render_table(report: dict, metrics: list[str]) -> str:
    """The plan line, the dose line, one row per structure, the warnings. Control characters
    of the inputs (structure names...) are shown as escapes
    (:func:`rtcheck.report.terminal_safe`): no terminal escape sequence, no forged line."""
    from rtcheck.report import map_strings, terminal_safe

    report = map_strings(report, terminal_safe)
    out = io.StringIO()
    plan, dose = report["plan"], report["dose"]
    if plan:
        out.write(f"Plan {plan['label']} ({plan['uid']}), {plan['fractions'] or '?'} fractions, "
                  f"prescription {_fmt(plan['prescription_gy'])} Gy, date {plan['date'] or '?'}\n")
    else:
        out.write("No plan: doses as stored in the RTDOSE, number of fractions unknown\n")
    out.write(f"Dose: {dose['units']}, {dose['summation']}, grid {dose['grid_mm']} mm\n\n")
    cols = ["Structure", "Vol [cc]", "Cov [%]", *SUMMARY, *metrics]
    rows = []
    for s in report["structures"]:
        vals = [s["metrics"][k] for k in (*SUMMARY, *metrics)]
        rows.append([s["name"], _fmt(s["volume_cc"]), _fmt(100 * (s["covered_fraction"] or 0), 1),
                     *[_fmt(v) for v in vals]])
    widths = [max(len(str(r[i])) for r in [cols, *rows]) for i in range(len(cols))]
    out.write("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(cols, widths))) + "\n")
    for r in rows:
        out.write("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                            for i, (c, w) in enumerate(zip(r, widths))) + "\n")
    out.write("\nDoses in Gy (metrics in the unit they name). D0.03cc: dose to the hottest 0.03 cc.\n")
    notes = [f"{s['name']}: {w}" for s in report["structures"] for w in s["warnings"]]
    notes += [f"{s['name']}: skipped ({s['reason']})" for s in report["skipped"]]
    notes += report["warnings"]
    if notes:
        out.write("\nWarnings:\n" + "".join(f"  - {n}\n" for n in notes))
    return out.getvalue()


def render_csv(report: dict, metrics: list[str]) -> str:
    """One row per structure; no cell a spreadsheet would run as a formula
    (:func:`rtcheck.report.csv_safe`: a structure named ``=HYPERLINK(...)``)."""
    from rtcheck.report import csv_row

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["structure", "volume_cc", "covered_fraction", *SUMMARY, *metrics, "warnings"])
    for s in report["structures"]:
        writer.writerow(csv_row([s["name"], s["volume_cc"], s["covered_fraction"],
                                 *[s["metrics"][k] for k in (*SUMMARY, *metrics)],
                                 " | ".join(s["warnings"])]))
    return out.getvalue()


@click.command("dvh", cls=OneLineCommand)
@click.argument("paths", nargs=-1, type=PathOrStudyURL(exists=True, path_type=str))
@download_dir_option()
@click.option("--plan", "plan", metavar="LABEL_OR_UID",
              help="Which plan, when PATH holds several.")
@click.option("--structures", type=click.Path(exists=True, dir_okay=False),
              help="RTSTRUCT file (with --dose, no plan needed).")
@click.option("--dose", "dose", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help=DOSE_FILES_HELP + " With --structures, no plan is needed.")
@dose_summation_option()
@click.option("--structure", "names", multiple=True, metavar="NAME",
              help="Only this structure (repeatable; exact ROI name).")
@click.option("--metric", "metrics", multiple=True, metavar="M", type=MetricType(),
              help="Extra metric, repeatable: D95%[Gy], D2cc, V20Gy[cc], V20Gy[%], DC2%[Gy], "
                   "CV20Gy[cc], Mean[Gy]...")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True),
              help="Write to this file instead of standard output.")
@click.option("--plot", "plot", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
              help="Also draw the cumulative DVHs of the structures shown (FILE.png, .svg "
                   "or .pdf).")
@click.option("--deidentify", is_flag=True,
              help="No patient name, ID, birth date, DICOM UID or input path in any output "
                   "(table, JSON, CSV, plot, messages): files are named by their kind.")
def dvh(paths, plan, structures, dose, dose_summation, names, metrics, fmt, output, plot,
        deidentify):
    """DVH metrics of every structure of a plan.

    PATH is a folder (searched recursively), a list of DICOM files, or a DICOMweb study URL
    (http://pacs:8042/dicom-web/studies/STUDY_UID: its RT objects are retrieved first);
    rtcheck pairs the RTDOSE with its RTPLAN and RTSTRUCT by their UIDs. Without a plan, give --structures and
    --dose: doses are then as stored, and the number of fractions is unknown.

    Every structure gets Dmax, Dmin, Dmean and D0.03cc (Gy), its volume (cc) and the fraction
    of it inside the dose grid; below 100 % its metrics carry a warning.

    \b
    Examples:
      rtcheck dvh sample_plans/spine-sbrt-27Gy3
      rtcheck dvh PLAN_DIR --structure SpinalCord --metric D0.035cc --format json
      rtcheck dvh --structures RS.dcm --dose RD.dcm --metric "V20Gy[%]"
      rtcheck dvh PLAN_DIR --structure SpinalCord --structure PTV --plot dvh.png

    Exit codes: 0 ok; 2 bad input (the message names the file and the problem).
    """
    check_output(output)  # exit 2 before any work when OUTPUT cannot be written
    paths = local_paths(paths, deidentify=deidentify)  # DICOMweb study URLs -> folders
    metrics = list(metrics)
    data = load_from_cli(paths, plan, structures, dose, dose_summation, deidentify=deidentify)
    deid = None
    if deidentify:
        from rtcheck.report import check_deidentifier

        deid = check_deidentifier(data, (), [*paths, *([structures] if structures else []), *dose])
    say = deid.text if deid is not None else str
    if data.dose is None or data.structure_set is None:
        raise CommandError("need both a dose (RTDOSE) and a structure set (RTSTRUCT); found "
                           f"{'no dose' if data.dose is None else 'no structure set'}")
    if data.dose.units.upper() != "GY":
        raise CommandError(say(f"{', '.join(data.dose.paths)}: dose units are "
                               f"{data.dose.units}, which cannot give doses in Gy"))
    ss = data.structure_set
    chosen = list(ss.structures)
    if names:
        missing = [n for n in names if n not in ss.names()]
        if missing:
            raise CommandError(say(f"{ss.path}: no structure named "
                                   f"{', '.join(map(repr, missing))}; "
                                   f"structures: {', '.join(map(repr, ss.names()))}"))
        chosen = [s for s in chosen if s.name in names]
    skipped = [{"name": s.name, "reason": "point ROI: no volume" if s.is_point
                else "empty ROI: no contour"} for s in chosen if not s.contours]
    # ROIs on isolated planes take the structure set's plane spacing, even when chosen alone
    dvhs = compute_dvhs(chosen, data.dose,
                        slice_spacing_mm=getattr(data.structure_set, "plane_spacing_mm", None))
    report = dvh_report(data, dvhs, metrics, skipped)
    text = render_dvh_output(report, metrics, fmt, deid)
    if output:
        write_output(output, text)
    else:
        click.echo(text, nl=False)
    if plot:
        if deid is not None:
            from rtcheck.report import map_strings

            dvhs = map_strings(dvhs, deid.text)
            report = deid.obj(report)
        write_plot(plot, dvhs, report)


def render_dvh_output(report: dict, metrics: list[str], fmt: str, deidentifier=None) -> str:
    """``rtcheck dvh``'s output in ``fmt`` (table, json, csv); with a
    :class:`rtcheck.report.Deidentifier`, de-identified by the rule of :mod:`rtcheck.report`
    (JSON: the plan's UID and patient ID dropped; every format: names, IDs, UIDs and input
    paths removed, files named by their kind)."""
    from rtcheck.report import json_text

    deid = deidentifier
    if fmt == "json":
        return json_text(deid.doc(report) if deid is not None else report, ensure_ascii=True)
    if deid is not None:
        report = deid.obj(report)
    text = render_csv(report, metrics) if fmt == "csv" else render_table(report, metrics)
    return deid.text(text) if deid is not None else text


def write_plot(path: str, dvhs: list[DVH], report: dict) -> None:
    """Draw the DVHs to ``path`` (format from its suffix); a bad suffix exits with code 2."""
    from rtcheck.report.plots import (
        save_dvh_plot,  # matplotlib only when a plot is asked for
    )

    plan = report["plan"]
    title = "Cumulative DVH" + (f": plan {plan['label']}" if plan and plan["label"] else "")
    try:
        # never half a plot; the temporary file keeps the suffix, which names the format
        # (matplotlib's default, png, without one)
        with atomic_path(path, default_suffix=".png") as tmp:
            save_dvh_plot(dvhs, tmp, title=title)
    except (ValueError, OSError) as exc:
        raise CommandError(f"{path}: cannot write the plot: {exc}") from exc
