"""``rtcheck check``: a plan against the bone-metastasis rules (and any other protocol).

Exit codes: 0 every rule evaluated and no FAIL; 1 a FAIL; 2 bad input; 3 no FAIL but a rule
that applies could not be evaluated (or nothing applied).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import click

from rtcheck.checker import DEFAULT_PROTOCOLS, CheckResult, Finding, check
from rtcheck.cli_dvh import fail, load_from_cli
from rtcheck.errors import InputError, RTCheckError
from rtcheck.protocols import SITES
from rtcheck.roles import parse_map_options

CSV_COLUMNS = ("rule", "protocol", "structure", "role", "metric", "value", "limit", "operator",
               "unit", "alpha_beta", "model", "status", "reason", "source")


def parse_alpha_beta_options(items: tuple[str, ...]) -> dict[str, float]:
    """``("spinal_cord=3",)`` -> ``{"spinal_cord": 3.0}``."""
    out: dict[str, float] = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not key.strip():
            raise InputError(f"--alpha-beta {item!r}: expected ROLE=VALUE or RULE_ID=VALUE (Gy)")
    return out


@click.command("check")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=str))
@click.option("--plan", "plan", metavar="LABEL_OR_UID", help="Which plan, when PATH holds several.")
@click.option("--structures", type=click.Path(exists=True, dir_okay=False),
              help="RTSTRUCT file (with --dose).")
@click.option("--dose", type=click.Path(exists=True, dir_okay=False), help="RTDOSE file.")
@click.option("--protocol", "protocols", multiple=True, metavar="ID_OR_FILE",
              help=f"Protocol to check against, repeatable [default: {', '.join(DEFAULT_PROTOCOLS)}]; "
                   "'tg101' for the AAPM TG-101 limits; or your own TOML file.")
@click.option("--indication", metavar="ID",
              help="Tableau 5 row: pain, pain-fracture-risk, post-operative, cord-compression, "
                   "reirradiation, oligometastatic.")
@click.option("--site", type=click.Choice(SITES), help="Lesion site (SBRT prescription ranges).")
@click.option("--technique", type=click.Choice(["sbrt", "conventional"]),
              help="Course technique [default: from the indication; SBRT when only --site is given].")
@click.option("--vertebral-level", metavar="LEVEL", help="Lesion level, e.g. T4 or T3-T5 (oesophagus warning).")
@click.option("--prior", "prior_paths", multiple=True, type=click.Path(exists=True),
              help="Prior course as DICOM (folder or files), repeatable.")
@click.option("--prior-summary", "prior_summaries", multiple=True, metavar="TEXT",
              help='Prior course when only its dose is known, repeatable: '
                   '"30Gy/10 cord_dmax=31Gy date=2025-03-01".')
@click.option("--interval-months", type=float, help="Months since the previous course (instead of dates).")
@click.option("--date", "course_date", metavar="YYYY-MM-DD", help="Date of this course [default: RTPlanDate].")
@click.option("--alpha-beta", "alpha_beta", multiple=True, metavar="ROLE=VALUE",
              help="Override a rule's alpha/beta (Gy) by role or rule id, repeatable.")
@click.option("--map", "maps", multiple=True, metavar="ROLE=NAME",
              help="Use this structure for this role, repeatable (e.g. spinal_cord=MOELLE_PRV).")
@click.option("--roles", "roles_file", type=click.Path(exists=True, dir_okay=False),
              help="Extra structure-role synonyms (TOML, same schema as constraints/structure-roles.toml).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "html"]),
              default="table", show_default=True,
              help="html: one self-contained file with the DVH plot, for the QA record "
                   "(use with --output).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the report to FILE.")
@click.option("--deidentify", is_flag=True,
              help="Remove patient names, IDs, birth dates and DICOM UIDs from the output.")
def check_command(paths, plan, structures, dose, protocols, indication, site, technique,
                  vertebral_level, prior_paths, prior_summaries, interval_months, course_date,
                  alpha_beta, maps, roles_file, fmt, output, deidentify):
    """Check the plan in PATH against the protocols' rules.

    \b
    Exit codes: 0 all evaluated, no FAIL; 1 a FAIL; 2 bad input;
                3 no FAIL but something that applies was NOT_EVALUATED.
    \b
    Examples:
      rtcheck check PLAN/ --indication pain
      rtcheck check PLAN/ --indication reirradiation --site spine \\
          --prior-summary "30Gy/10 cord_dmax=31Gy date=2025-03-01"
      rtcheck check PLAN/ --protocol bone-metastases-2026 --protocol tg101 --map spinal_cord=PRV_MOELLE
      rtcheck check PLAN/ --indication pain --format html --output report.html --deidentify
    """
    data = load_from_cli(paths, plan, structures, dose)
    try:
        priors = list(prior_summaries) + [_load_prior(p) for p in prior_paths]
        result = check(data, protocols=list(protocols) or None, indication=indication, site=site,
                       technique=technique, vertebral_level=vertebral_level,
                       priors=priors or None, interval_months=interval_months, date=course_date,
                       alpha_beta=parse_alpha_beta_options(alpha_beta),
                       explicit_roles=parse_map_options(maps), roles=roles_file)
    except RTCheckError as exc:
        fail(str(exc))
    text = render_output(result, fmt, data, [p for p in priors if not isinstance(p, str)],
                         list(protocols), deidentify)
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"{result.verdict}: report written to {output}", err=True)
    else:
        click.echo(text, nl=False)
    sys.exit(result.exit_code)


def render_output(result: CheckResult, fmt: str, data, prior_plans: list, protocols: list[str],
                  deidentify: bool) -> str:
    """The report in ``fmt``; with ``deidentify``, without names, IDs and UIDs (any format)."""
    from rtcheck import report  # no matplotlib unless html

    if fmt == "html":
        extra = [f for prior in prior_plans for f in report.plan_input_files(prior)]
        return report.render_check_report(
            result.to_dict(), data, dvhs=result.dvhs or None, protocols=protocols or None,
            extra_inputs=extra,
            deidentify=deidentify, extra_terms=report.plan_identity_terms(*prior_plans))
    text = {"json": render_json, "csv": render_csv, "table": render_table}[fmt](result)
    if deidentify:
        text = report.deidentify_output(text, fmt, result.to_dict(),
                                        report.plan_identity_terms(data, *prior_plans))
    return text


def _load_prior(path: str):
    from rtcheck.dicom import load_plan

    return load_plan(path)


# ------------------------------------------------------------------------ renderers


def render_json(result: CheckResult) -> str:
    return json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n"


def render_csv(result: CheckResult) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for f in result.findings:
        row = f.as_dict()
        writer.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])
    return out.getvalue()


def _value(f: Finding) -> str:
    if f.value is None:
        return "-"
    unit = "" if f.unit in (None, "ratio") else f" {f.unit}"
    return f"{f.value:.3f}" if f.unit == "ratio" else f"{f.value:.2f}{unit}"


def _limit(f: Finding) -> str:
    if f.limit is None:
        return "-"
    if isinstance(f.limit, str):
        return f.limit
    if f.details.get("requirement"):
        return str(f.details["requirement"])
    unit = "" if f.unit in (None, "ratio") else f" {f.unit}"
    return f"{f.operator} {f.limit:g}{unit}"


def render_table(result: CheckResult) -> str:
    """Plan line, roles, one row per finding, reasons, skipped rules, warnings, verdict."""
    out = io.StringIO()
    p = result.plan
    out.write(f"Plan {p.get('label') or '?'} ({p.get('uid') or 'no RTPLAN'}): "
              f"{_opt(p.get('prescription_gy'), ' Gy')} in {p.get('fractions') or '?'} fraction(s), "
              f"date {p.get('date') or '?'}, dose {p.get('dose_units') or 'none'}\n")
    out.write(f"Protocols: {', '.join(result.protocols)}\n")
    facts = {k: v for k, v in result.facts.items()
             if v not in (None, [], {}) and k not in ("priors", "technique_how")}
    if facts:
        out.write("Facts: " + ", ".join(f"{k}={v}" for k, v in facts.items()) + "\n")
    for prior in result.facts.get("priors", []):
        out.write(f"Prior course: {prior['label']}"
                  + "".join(f"; {n}" for n in prior["notes"]) + "\n")
    if result.roles:
        out.write("Roles:\n")
        for role, m in result.roles.items():
            out.write(f"  {role:<16} {m.status:<9} {m.how}\n")
    rows = [("STATUS", "RULE", "STRUCTURE (ROLE)", "METRIC", "VALUE", "LIMIT", "a/b")]
    for f in result.findings:
        where = f"{f.structure or '-'} ({f.role})" if f.role else (f.structure or "-")
        ab = f"{f.alpha_beta:g}" if f.alpha_beta is not None else "none"
        limit = _limit(f)
        rows.append((f.status, f.rule, where, f.metric or "-", _value(f),
                     limit if len(limit) <= 40 else limit[:37] + "...", ab))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out.write("\n")
    for r in rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n")
    if result.findings:
        out.write("\nReasons:\n")
        for f in result.findings:
            out.write(f"  [{f.status}] {f.rule}"
                      + (f" / {f.structure}" if f.structure else "") + f": {f.reason}\n")
            out.write(f"      source: {f.source}\n")
    _write_skipped(out, result.skipped)
    if result.warnings:
        out.write("\nWarnings:\n" + "".join(f"  - {w}\n" for w in result.warnings))
    counts = result.counts()
    out.write(f"\nVerdict: {result.verdict} ("
              + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + ")\n")
    return out.getvalue()


def _write_skipped(out: io.StringIO, skipped: list[dict]) -> None:
    """Rules outside this plan's scope; the rows of other indications/sites on one line."""
    quiet = [s["rule"] for s in skipped if s["reason"].split(" (")[0].endswith("not requested")]
    loud = [s for s in skipped if s["rule"] not in quiet]
    if loud:
        out.write("\nNot applicable to this plan:\n")
        out.write("".join(f"  {s['rule']}: {s['reason']}\n" for s in loud))
    if quiet:
        out.write(f"\nNot requested (other indications or sites): {', '.join(quiet)}\n")


def _opt(value, unit: str) -> str:
    return "?" if value is None else f"{value:g}{unit}"
