"""``rtcheck convert``: BED and EQD2 of a scheme, iso-effective doses, course accumulation."""

from __future__ import annotations

import json

import click

from rtcheck.cli.common import CommandError, OneLineCommand, SchemeType
from rtcheck.radiobiology import (
    Accumulation,
    Conversion,
    RecoveryModel,
    Scheme,
    Sensitivity,
    accumulate_courses,
    isoeffective_dose,
    model_label,
    parse_course,
)
from rtcheck.radiobiology import (
    convert as convert_dose,
)

_MODELS = {"lq": "LQ", "lql": "LQ-L"}
_RECOVERY = {"none": None, "nieder2006": RecoveryModel.nieder_2006}
_NOTE = ("Point doses: dose per fraction = the point's own dose / fractions. EQD2 = total dose "
         "in 2 Gy fractions with the same BED under the same model.")


def _table(headers: list[str], rows: list[list[str]], left: tuple[int, ...] = (0,)) -> list[str]:
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    return ["  ".join(c.ljust(w) if i in left else c.rjust(w)
                      for i, (c, w) in enumerate(zip(r, widths))).rstrip()
            for r in [headers, *rows]]


def _g(x: float) -> str:
    return f"{x:g}"


_CONVERSION_HEADERS = ["quantity", "value (Gy)", "model", "a/b (Gy)", "fractions",
                       "dose/fx (Gy)"]


def _conversion_row(label: str, c: Conversion) -> list[str]:
    return [label, f"{c.value:.2f}", model_label(c.model, c.dt), _g(c.alpha_beta),
            str(c.fractions), f"{c.dose_per_fraction:.3f}"]


def _sensitivity_line(s: Sensitivity) -> str:
    return f"  {s} (spread {s.spread:.2f} Gy)"


# -- the three modes -------------------------------------------------------------------------

def _scheme_report(scheme: Scheme, abs_: list[float], quantities: list[str], model: str,
                   dt: float | None) -> tuple[dict, list[str]]:
    results = [convert_dose(scheme.total_gy, scheme.fractions, ab, q, model, dt)
               for ab in abs_ for q in quantities]
    sens = [Sensitivity(q, tuple(abs_), tuple(r.value for r in results if r.quantity == q),
                        model, dt, str(scheme)) for q in quantities]
    doc = {"mode": "scheme", "scheme": scheme.as_dict(), "model": model, "dt_gy": dt,
           "results": [r.as_dict() for r in results], "sensitivity": [s.as_dict() for s in sens]}
    lines = [f"{scheme} ({scheme.dose_per_fraction:.4g} Gy per fraction)", "",
             *_table(_CONVERSION_HEADERS, [_conversion_row(r.quantity, r) for r in results],
                     left=(0, 2))]
    if len(abs_) > 1:
        lines += ["", "alpha/beta sensitivity:", *map(_sensitivity_line, sens)]
    return doc, [*lines, ""]


def _isoeffective_report(scheme: Scheme, new_fractions: int, abs_: list[float],
                         quantities: list[str], model: str,
                         dt: float | None) -> tuple[dict, list[str]]:
    rows, entries, totals = [], [], []
    for ab in abs_:
        refs = [convert_dose(scheme.total_gy, scheme.fractions, ab, q, model, dt)
                for q in quantities]
        total = isoeffective_dose(refs[0].value, new_fractions, ab, refs[0].quantity, model, dt)
        totals.append(total)
        rows += [_conversion_row(f"{r.quantity} of {scheme}", r) for r in refs]
        rows.append([f"total dose in {new_fractions} fx", f"{total:.2f}", model_label(model, dt),
                     _g(ab), str(new_fractions), f"{total / new_fractions:.3f}"])
        entries.append({"alpha_beta_gy": ab, "reference": [r.as_dict() for r in refs],
                        "isoeffective": {"total_dose_gy": total, "fractions": new_fractions,
                                         "dose_per_fraction_gy": total / new_fractions}})
    sens = Sensitivity(f"iso-effective total dose in {new_fractions} fx", tuple(abs_),
                       tuple(totals), model, dt, str(scheme))
    doc = {"mode": "isoeffective", "scheme": scheme.as_dict(), "fractions": new_fractions,
           "model": model, "dt_gy": dt, "results": entries, "sensitivity": sens.as_dict()}
    lines = [f"Iso-effective dose of {scheme} in {new_fractions} fractions (same BED, hence same "
             "EQD2, at each a/b)", "", *_table(_CONVERSION_HEADERS, rows, left=(0, 2))]
    if len(abs_) > 1:
        lines += ["", "alpha/beta sensitivity:", _sensitivity_line(sens)]
    return doc, [*lines, ""]


def _accumulation_lines(acc: Accumulation) -> list[str]:
    rec = acc.recovery
    headers = ["course", "date", "dose (Gy)", "fractions", "dose/fx (Gy)", "a/b (Gy)", "model",
               "EQD2 (Gy)", "share", "interval"]
    if rec:
        headers += ["months to last", "discount", "EQD2 after recovery (Gy)"]
    rows = []
    for i, c in enumerate(acc.courses, start=1):
        row = [str(i), c.course.date.isoformat() if c.course.date else "-",
               f"{c.course.dose_gy:.2f}", str(c.course.fractions),
               f"{c.course.dose_gy / c.course.fractions:.3f}", _g(acc.alpha_beta),
               model_label(acc.model, acc.dt), f"{c.eqd2:.2f}",
               "-" if c.share != c.share else f"{100 * c.share:.1f} %",
               "-" if c.interval_days is None or c.interval_months is None
               else f"{c.interval_days} d ({c.interval_months:.1f} mo)"]
        if rec and c.discount is not None and c.discounted_eqd2 is not None:
            row += [str(c.months_before_last), f"{100 * c.discount:.0f} %",
                    f"{c.discounted_eqd2:.2f}"]
        rows.append(row)
    total = ["total", "", "", "", "", "", "", f"{acc.total_eqd2:.2f}", "", ""]
    if rec:
        total += ["", "", f"{acc.total_discounted_eqd2:.2f}"]
    rows.append(total)
    head = [f"Courses summed in EQD2 at one point: a/b {_g(acc.alpha_beta)} Gy, model "
            f"{model_label(acc.model, acc.dt)}, recovery: {rec.name if rec else 'none'}"]
    if rec:
        head.append(f"  recovery source: {rec.source}")
    return [*head, *_table(headers, rows, left=(0, 1, 6, 9))]


def _courses_report(course_texts: tuple[str, ...], abs_: list[float], model: str,
                    dt: float | None, recovery: RecoveryModel | None) -> tuple[dict, list[str]]:
    courses = [parse_course(t) for t in course_texts]
    accs = [accumulate_courses(courses, ab, model, dt, recovery) for ab in abs_]
    sens = [Sensitivity("cumulative EQD2", tuple(abs_), tuple(a.total_eqd2 for a in accs),
                        model, dt)]
    if recovery:
        # with a recovery model every accumulation has its discounted total
        sens.append(Sensitivity("cumulative EQD2 after recovery", tuple(abs_),
                                tuple(a.total_discounted_eqd2 or 0.0 for a in accs), model, dt))
    doc = {"mode": "courses", "model": model, "dt_gy": dt,
           "recovery": recovery.as_dict() if recovery else None,
           "accumulations": [a.as_dict() for a in accs],
           "sensitivity": [s.as_dict() for s in sens]}
    lines: list[str] = []
    for acc in accs:
        lines += [*(["", ""] if lines else []), *_accumulation_lines(acc)]
    if len(abs_) > 1:
        lines += ["", "alpha/beta sensitivity:", *map(_sensitivity_line, sens)]
    lines += ["", "Dose = the course's physical dose at the point (e.g. cord Dmax), not the "
              "prescription.", "Interval months = calendar months (whole months plus the share of the next); a "
              "recovery model counts whole calendar months to the last course."]
    return doc, lines


@click.command("convert", cls=OneLineCommand)
@click.argument("scheme", required=False, metavar="[SCHEME]", type=SchemeType())
@click.option("--alpha-beta", "alpha_betas", type=float, multiple=True, metavar="GY",
              help="alpha/beta (Gy). Required. Repeat it for a sensitivity range "
                   "(e.g. --alpha-beta 0.87 --alpha-beta 2 --alpha-beta 3).")
@click.option("--to", "to", type=click.Choice(["eqd2", "bed"]), default=None,
              help="Print only this quantity (default: both).")
@click.option("--fractions", "new_fractions", type=int, metavar="N",
              help="Iso-effective total dose of SCHEME in N fractions (same BED).")
@click.option("--course", "courses", multiple=True, metavar="DOSE_SCHEME[@DATE]",
              help="A course at one point, e.g. 31Gy/10@2025-03-01 (repeat, in date order).")
@click.option("--model", type=click.Choice(sorted(_MODELS)), default="lq", show_default=True,
              help="lq: linear-quadratic; lql: LQ-linear above --dt.")
@click.option("--dt", type=float, metavar="GY",
              help="LQ-L transition dose per fraction (Gy); required with --model lql.")
@click.option("--recovery", type=click.Choice(list(_RECOVERY)), default="none",
              show_default=True,
              help="With --course: discount earlier courses by elapsed time. nieder2006: "
                   "-25 % after >= 6 months, -50 % after >= 12 months (an assumption).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Output format.")
def convert(scheme, alpha_betas, to, new_fractions, courses, model, dt, recovery, fmt):
    """BED and EQD2 of a fractionation scheme, iso-effective doses, and courses summed in EQD2.

    \b
    SCHEME is one of (case-insensitive, "Gy" required):
      30Gy/10   30 Gy/10 fx      TOTAL Gy / N fractions
      30 Gy in 10                TOTAL Gy in N fractions
      10x3Gy    10 x 3 Gy        N fractions x DOSE Gy (number of fractions first)
      3Gy x 10                   DOSE Gy x N fractions

    \b
    Examples:
      rtcheck convert 30Gy/10 --alpha-beta 2
          BED 75 Gy and EQD2 37.5 Gy (LQ, a/b 2 Gy)
      rtcheck convert 8Gy/1 --alpha-beta 10 --to bed
          BED 14.4 Gy only
      rtcheck convert 30Gy/10 --alpha-beta 10 --fractions 5
          the total dose in 5 fractions with the same BED (25.74 Gy)
      rtcheck convert 20.3Gy/3 --alpha-beta 0.87 --alpha-beta 2 --alpha-beta 3
          EQD2 at each a/b and the range (how much the verdict depends on a/b)
      rtcheck convert 24Gy/1 --alpha-beta 3 --model lql --dt 6
          LQ-L: linear above 6 Gy per fraction (there is no default --dt)
      rtcheck convert --course 31Gy/10@2025-03-01 --course 12Gy/3@2026-03-01 --alpha-beta 2
          cumulative point EQD2, each course's share and the interval
      ... --recovery nieder2006
          also discount earlier courses (25 % after 6 months, 50 % after 12), printed

    \b
    A point dose (e.g. the cord maximum) is converted with its own dose per
    fraction (point dose / fractions), never the prescription's: give the dose
    at the point. For --course, DOSE_SCHEME is the course's dose at the point
    in its fractions. There is no default alpha/beta: it belongs to the tissue
    and to the source of the limit (Sahgal cord limits: 2 Gy; referential:
    0.87 Gy for the cord; tumour: 10 Gy).

    Exit codes: 0 ok; 2 bad input or usage (one-line message).
    """
    try:
        doc, lines = _run(scheme, list(alpha_betas), to, new_fractions, courses, model, dt,
                          recovery)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    if fmt == "json":
        click.echo(json.dumps({"command": "convert", **doc}, indent=2))
    else:
        click.echo("\n".join([*lines, _NOTE]))


def _run(scheme: Scheme | None, abs_, to, new_fractions, courses, model, dt, recovery):
    """Check the combination of options, then dispatch to one mode."""
    if not abs_:
        raise ValueError("--alpha-beta is required: the tissue's alpha/beta in Gy (e.g. 2 for "
                         "the Sahgal cord limits, 10 for tumour); there is no default")
    model = _MODELS[model]
    if model == "LQ-L" and dt is None:
        raise ValueError("--model lql needs --dt GY (the transition dose per fraction); "
                         "there is no default")
    if model == "LQ" and dt is not None:
        raise ValueError("--dt is only used with --model lql")
    if courses:
        if scheme is not None:
            raise ValueError(f"give either a SCHEME ({str(scheme)!r}) or --course, not both")
        if new_fractions is not None:
            raise ValueError("--fractions is for a SCHEME, not with --course")
        if to == "bed":
            raise ValueError("--to bed is not available with --course: courses are summed "
                             "in EQD2")
        factory = _RECOVERY[recovery]
        return _courses_report(courses, abs_, model, dt, factory() if factory else None)
    if scheme is None:
        raise ValueError("give a SCHEME (e.g. 30Gy/10) or one or more --course")
    if recovery != "none":
        raise ValueError("--recovery only applies with --course")
    quantities = ["BED", "EQD2"] if to is None else [to.upper()]
    if new_fractions is not None:
        if new_fractions < 1:
            raise ValueError(f"--fractions must be a positive integer, got {new_fractions}")
        return _isoeffective_report(scheme, new_fractions, abs_, quantities, model, dt)
    return _scheme_report(scheme, abs_, quantities, model, dt)
