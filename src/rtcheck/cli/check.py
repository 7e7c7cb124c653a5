"""``rtcheck check``: a plan against the bone-metastasis rules (and any other protocol).

The renderers (table, CSV, JSON) read the typed result (:mod:`rtcheck.checker.findings`): the verdict
level, each finding's code, the fact that was missing, the structure that decided and the one
it stood in for, the skipped rules by their code. None of them parses a ``reason`` sentence.

Verdict levels and exit codes (:data:`rtcheck.checker.findings.EXIT_CODES`): PASS 0, FAIL 1, bad
input 2, NOT_EVALUATED 3, REVIEW 5 (4 is ``rtcheck batch``'s ERROR).
"""

from __future__ import annotations

import csv
import io
import sys
from typing import Any

import click

from rtcheck.checker import DEFAULT_PROTOCOLS, CheckResult, Finding, Skip, check
from rtcheck.checker.findings import SKIP_HEADINGS
from rtcheck.cli.common import (
    DOSE_FILES_HELP,
    CommandError,
    OneLineCommand,
    PathOrStudyURL,
    RoleValueType,
    VertebralLevelType,
    check_output,
    dose_summation_option,
    download_dir_option,
    load_from_cli,
    local_paths,
    write_output,
)
from rtcheck.cli.eqd2 import registration_option
from rtcheck.errors import RTCheckError
from rtcheck.rules.protocols import SITES
from rtcheck.rules.roles import parse_map_options

CSV_COLUMNS = ("rule", "protocol", "structure", "role", "stands_for", "metric", "value",
               "limit", "operator", "unit", "alpha_beta", "model", "status", "code", "missing",
               "reason", "source")
#: One line per verdict level, for the table's last line.
VERDICT_MEANING = {
    "PASS": "every applicable rule evaluated and within its limit",
    "REVIEW": "no FAIL and every applicable rule evaluated, but WARN finding(s) need "
              "clinical judgement",
    "NOT_EVALUATED": "no FAIL, but something that applies was not evaluated (or nothing "
                     "applied)",
    "FAIL": "a rule is beyond its limit",
}
#: Headings of the skipped rules, by Skip.code, in the order printed.


@click.command("check", cls=OneLineCommand)
@click.argument("paths", nargs=-1, type=PathOrStudyURL(exists=True, path_type=str))
@click.option("--plan", "plan", metavar="LABEL_OR_UID", help="Which plan, when PATH holds several.")
@download_dir_option()
@click.option("--structures", type=click.Path(exists=True, dir_okay=False),
              help="RTSTRUCT file (with --dose).")
@click.option("--dose", "dose", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help=DOSE_FILES_HELP)
@dose_summation_option(expose_value=False)
@click.option("--protocol", "protocols", multiple=True, metavar="ID_OR_FILE",
              help=f"Protocol to check against, repeatable [default: {', '.join(DEFAULT_PROTOCOLS)}]; "
                   "'tg101' for the AAPM TG-101 limits; or your own TOML file.")
@click.option("--indication", metavar="ID",
              help="Tableau 5 row: pain, pain-fracture-risk, post-operative, cord-compression, "
                   "reirradiation, oligometastatic.")
@click.option("--site", type=click.Choice(SITES), help="Lesion site (SBRT prescription ranges).")
@click.option("--technique", type=click.Choice(["sbrt", "conventional"]),
              help="Course technique [default: the indication's scheme the plan matches, "
                   "else rtcheck's criterion on the dose per fraction; unknown otherwise, and "
                   "the rules of both techniques apply].")
@click.option("--vertebral-level", type=VertebralLevelType(), metavar="LEVEL", help="Lesion level, e.g. T4 or T3-T5 (oesophagus warning).")
@click.option("--prior", "prior_paths", multiple=True, type=PathOrStudyURL(exists=True),
              help="Prior course as DICOM (folder, files or a DICOMweb study URL), repeatable.")
@click.option("--prior-summary", "prior_summaries", multiple=True, metavar="TEXT",
              help='Prior course when only its doses are known, repeatable: the scheme, then '
                   'cord_dmax= / sac_dmax= / cauda_dmax= (point maxima, Gy), end= (last '
                   'fraction), date= (plan date: the end is then estimated), technique=, e.g. '
                   '"30Gy/10 cord_dmax=31Gy sac_dmax=31.5Gy end=2025-03-14".')
@click.option("--interval-months", type=float,
              help="Months since the previous course's last fraction (instead of dates).")
@click.option("--date", "course_date", metavar="YYYY-MM-DD", help="Date of this course [default: RTPlanDate].")
@click.option("--alpha-beta", "alpha_beta", multiple=True, metavar="ROLE=VALUE",
              type=RoleValueType("ROLE=VALUE or RULE_ID=VALUE (Gy)", number=True),
              help="Override a rule's alpha/beta (Gy) by role or rule id, repeatable.")
@registration_option("the voxel-wise cumulative dose of the re-irradiation findings")
@click.option("--uncertainty-mm", type=float, metavar="MM",
              help="Set-up uncertainty of the voxel-wise envelope: the largest cumulative dose "
                   "within MM of the structure [default: 2 mm].")
@click.option("--map", "maps", multiple=True, metavar="ROLE=NAME",
              type=RoleValueType("ROLE=STRUCTURE_NAME, e.g. spinal_cord=MOELLE"),
              help="Use this structure for this role, repeatable (e.g. spinal_cord=MOELLE_PRV).")
@click.option("--roles", "roles_file", type=click.Path(exists=True, dir_okay=False),
              help="Extra structure-role synonyms (TOML, same schema as constraints/structure-roles.toml).")
@click.option("--case", "case_path", type=click.Path(exists=True, dir_okay=False),
              metavar="CASE.toml|CASE.json",
              help="Facts DICOM does not hold (Karnofsky, SINS, Mirels, Bilsky, dates, "
                   "systemic treatments...) for the case checks; its indication, site and "
                   "vertebral_levels stand for the options not given. Schema: README, "
                   "'Case files'.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "html"]),
              default="table", show_default=True,
              help="html: one self-contained file with the DVH plot, for the QA record "
                   "(use with --output).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the report to FILE.")
@click.option("--deidentify", is_flag=True,
              help="No patient name, ID, birth date, DICOM UID or input path in any output "
                   "(report, messages on standard error): files are named by their kind "
                   "(RTPLAN file), other paths by a pseudonym (see the README).")
def check_command(paths, plan, structures, dose, protocols, indication, site, technique,
                  vertebral_level, prior_paths, prior_summaries, interval_months, course_date,
                  alpha_beta, registrations, uncertainty_mm, maps, roles_file, case_path, fmt, output, deidentify):
    """Check the plan in PATH against the protocols' rules.

    Each rule that applies gives a finding: PASS, WARN (a band the source leaves to clinical
    judgement), FAIL, or NOT_EVALUATED (it applies but could not be evaluated: structure
    missing, dose grid too small, a fact DICOM does not hold not given...). The plan's
    verdict is the highest level any finding reaches:

    \b
    verdict         meaning                                            exit code
    PASS            every applicable rule evaluated and within limits  0
    REVIEW          no FAIL, all evaluated, but a WARN finding         5
                    needs clinical judgement
    NOT_EVALUATED   no FAIL, but a rule that applies was not           3
                    evaluated, or no rule applied at all
    FAIL            a rule is beyond its limit                         1
    (bad input or usage: exit code 2, one line on stderr, no report)

    Levels rise from PASS to FAIL (FAIL > NOT_EVALUATED > REVIEW > PASS): a plan is
    never PASS on a rule it could not evaluate. --format json gives the verdict, the
    exit code and every finding's typed fields (code, missing fact, structure that
    decided and what it stood in for).

    \b
    Examples:
      rtcheck check PLAN/ --indication pain
      rtcheck check PLAN/ --indication reirradiation --site spine \\
          --prior-summary "30Gy/10 cord_dmax=31Gy sac_dmax=31.5Gy end=2025-03-14"
      rtcheck check PLAN/ --protocol bone-metastases-2026 --protocol tg101 --map spinal_cord=PRV_MOELLE
      rtcheck check PLAN/ --indication pain --format html --output report.html --deidentify
      rtcheck check http://pacs:8042/dicom-web/studies/STUDY_UID --indication pain
    """
    check_output(output)  # exit 2 before any work when OUTPUT cannot be written
    case = _load_case(case_path)  # a bad case file is exit 2 before the plan is read
    paths = local_paths(paths, deidentify=deidentify)  # DICOMweb study URLs -> folders
    prior_paths = local_paths(prior_paths, deidentify=deidentify)
    roots = [*paths, *([structures] if structures else []), *dose, *prior_paths]
    with _deidentified_warnings(deidentify, roots) as seen:
        data = load_from_cli(paths, plan, structures, dose, deidentify=deidentify,
                             contours="when_used")  # the ROIs the rules use
        seen.plans.append(data)
        try:
            priors = list(prior_summaries)
            for p in prior_paths:
                priors.append(_load_prior(p))
                seen.plans.append(priors[-1])
            result = check(data, protocols=list(protocols) or None, indication=indication,
                           site=site, technique=technique, vertebral_level=vertebral_level,
                           priors=priors or None, interval_months=interval_months,
                           date=course_date, alpha_beta=dict(alpha_beta),
                           registrations=registrations, uncertainty_mm=uncertainty_mm,
                           explicit_roles=parse_map_options(f"{k}={v}" for k, v in maps), roles=roles_file,
                           case=case)
        except RTCheckError as exc:
            raise CommandError(seen.message(str(exc))) from exc
    prior_plans = [p for p in priors if not isinstance(p, str)]
    deid = seen.deidentifier() if deidentify else None
    text = render_output(result, fmt, data, prior_plans, list(protocols), deidentify,
                         deidentifier=deid)
    if output:
        write_output(output, text)
        click.echo(f"{result.verdict} (exit code {result.exit_code}): report written to "
                   f"{deid.text(output) if deid else output}", err=True)
    else:
        click.echo(text, nl=False)
    sys.exit(result.exit_code)


class _Seen:
    """What a de-identified run has loaded so far, to de-identify its messages."""

    def __init__(self, deidentify: bool, roots: list[str]) -> None:
        self.deidentify = deidentify
        self.roots = roots
        self.plans: list = []
        self._deid: Any = None  # a report.Deidentifier, made on first use

    def deidentifier(self):
        from rtcheck.report import check_deidentifier

        if self._deid is None:
            data, *priors = self.plans or [None]
            self._deid = check_deidentifier(data, priors, self.roots)
        return self._deid

    def message(self, text: str) -> str:
        """An error or warning message: de-identified (also with the identity of every
        DICOM file under the inputs, which the message may name) when asked, else as is."""
        if not self.deidentify:
            return text
        from rtcheck.report import deidentified_message

        return deidentified_message(text, self.roots, self.deidentifier())


class _deidentified_warnings:
    """With --deidentify, Python warnings raised while loading and checking (pydicom's,
    numpy's: they may quote a UID or a name) are printed de-identified, one line each."""

    def __init__(self, deidentify: bool, roots: list[str]) -> None:
        self.seen = _Seen(deidentify, roots)
        self._catch: Any = None  # warnings.catch_warnings while de-identifying

    def __enter__(self) -> _Seen:
        if self.seen.deidentify:
            import warnings

            self._catch = warnings.catch_warnings(record=True)
            self._caught = self._catch.__enter__()
            warnings.simplefilter("default")
        return self.seen

    def __exit__(self, *exc) -> None:
        if self._catch is None:
            return
        self._catch.__exit__(*exc)
        for w in dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in self._caught):
            click.echo(f"rtcheck: warning: {self.seen.message(w)}", err=True)


def render_output(result: CheckResult, fmt: str, data, prior_plans: list, protocols: list[str],
                  deidentify: bool, deidentifier=None) -> str:
    """The report in ``fmt``; with ``deidentify``, without names, IDs, birth dates, UIDs nor
    paths (any format: the rule of :mod:`rtcheck.report`). ``deidentifier`` (a
    :class:`rtcheck.report.Deidentifier`) also knows the input folders; by default one is
    built from the plans."""
    from rtcheck import report  # no matplotlib unless html

    deid = None
    if deidentify:
        deid = deidentifier or report.check_deidentifier(data, prior_plans)
    if fmt == "html":
        extra = [f for prior in prior_plans for f in report.plan_input_files(prior)]
        return report.render_check_report(
            result.to_dict(), data, dvhs=result.dvhs or None, protocols=protocols or None,
            extra_inputs=extra, deidentify=deidentify, deidentifier=deid)
    if deid is not None:
        if fmt == "json":
            return report.json_text(deid.doc(result.to_dict()))
        result = deid.obj(result)
    text = {"json": render_json, "csv": render_csv, "table": render_table}[fmt](result)
    return deid.text(text) if deid is not None else text


def _load_case(path: str | None):
    if path is None:
        return None
    from rtcheck.case import load_case

    try:
        return load_case(path)
    except RTCheckError as exc:
        raise CommandError(str(exc)) from exc


def _load_prior(path: str):
    from rtcheck.dicom import load_plan

    return load_plan(path, contours="when_used")


# ------------------------------------------------------------------------ renderers


def render_json(result: CheckResult) -> str:
    from rtcheck.report import json_text

    return json_text(result.to_dict())


def render_csv(result: CheckResult) -> str:
    """One row per finding (:data:`CSV_COLUMNS`); no cell a spreadsheet would run as a
    formula (:func:`rtcheck.report.csv_safe`)."""
    from rtcheck.report import csv_row

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for f in result.findings:
        row = f.as_dict()
        writer.writerow(csv_row(row[c] for c in CSV_COLUMNS))
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


def _where(f: Finding) -> str:
    """``ThecalSac (thecal_sac)``, with ``(stands for thecal_sac)`` for a stand-in."""
    where = f"{f.structure or '-'} ({f.role})" if f.role else (f.structure or "-")
    if f.stands_for:
        where += f" (stands for {f.stands_for})"
    return where


def technique_line(facts: dict) -> str | None:
    """``Technique: sbrt (criterion): SBRT by rtcheck's criterion (...)``."""
    if not facts or "technique" not in facts:
        return None
    value = facts.get("technique") or "unknown"
    how = facts.get("technique_how") or "unknown"
    text = facts.get("technique_text")
    return f"Technique: {value} ({how})" + (f": {text}" if text else "")


def render_table(result: CheckResult) -> str:
    """Plan line, technique, roles, one row per finding, reasons, skipped rules by code,
    notes by code, verdict. Every text from the inputs (structure names, labels, reasons
    quoting them) has its control characters shown as escapes
    (:func:`rtcheck.report.terminal_safe`): no terminal escape sequence, no forged line."""
    from rtcheck.report import map_strings, terminal_safe

    result = map_strings(result, terminal_safe)
    out = io.StringIO()
    p = result.plan
    out.write(f"Plan {p.get('label') or '?'} ({p.get('uid') or 'no RTPLAN'}): "
              f"{_opt(p.get('prescription_gy'), ' Gy')} in {p.get('fractions') or '?'} fraction(s), "
              f"date {p.get('date') or '?'}, dose {p.get('dose_units') or 'none'}\n")
    out.write(f"Protocols: {', '.join(result.protocols)}\n")
    technique = technique_line(result.facts)
    if technique:
        out.write(technique + "\n")
    facts = {k: v for k, v in result.facts.items() if v not in (None, [], {})
             and k not in ("priors", "technique", "technique_how", "technique_text", "case",
                           "measurements")}
    if facts:
        out.write("Facts: " + ", ".join(f"{k}={v}" for k, v in facts.items()) + "\n")
    if result.facts.get("case"):
        out.write("Case facts: " + ", ".join(f"{k}={v}" for k, v in result.facts["case"].items()
                                             if k != "sins" and k != "mirels") + "\n")
    for line in measurement_lines(result.facts.get("measurements")):
        out.write(line + "\n")
    for prior in result.facts.get("priors", []):
        out.write(f"Prior course: {prior['label']}"
                  + "".join(f"; {n}" for n in prior["notes"]) + "\n")
    if result.roles:
        out.write("Roles:\n")
        for role, m in result.roles.items():
            out.write(f"  {role:<16} {m.status:<9} {m.how}\n")
    rows = [("STATUS", "RULE", "STRUCTURE (ROLE)", "METRIC", "VALUE", "LIMIT", "a/b")]
    for f in result.findings:
        ab = f"{f.alpha_beta:g}" if f.alpha_beta is not None else "none"
        limit = _limit(f)
        rows.append((f.status, f.rule, _where(f), f.metric or "-", _value(f),
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
            if f.code != "evaluated" or f.missing:
                out.write(f"      code: {f.code}"
                          + (f"; missing: {f.missing}" if f.missing else "") + "\n")
            out.write(f"      source: {f.source}\n")
            if f.details.get("remaining_dose"):
                from rtcheck.cli.budget import remaining_dose_text

                out.write(f"      {remaining_dose_text(f.details['remaining_dose'])}\n")
            if f.details.get("voxel_code"):
                from rtcheck.checker.evaluators.reirradiation import voxelwise_text

                out.write(f"      {voxelwise_text(f.details)}\n")
    _write_skipped(out, result.skipped)
    if result.notes:
        out.write("\nNotes:\n" + "".join(f"  - [{n.code}] {n}\n" for n in result.notes))
    counts = result.counts()
    out.write(f"\nVerdict: {result.verdict} ("
              + (", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no finding")
              + f"): {VERDICT_MEANING.get(result.verdict, '')}; exit code {result.exit_code}\n")
    return out.getvalue()


def measurement_lines(measures: dict | None) -> list[str]:
    """``Measured: tumour-cord distance 9.4 mm (GTV to ThecalSac); ...`` from the typed
    measurements (``facts.measurements``); nothing when none was attempted."""
    if not measures:
        return []
    d, g = measures["tumour_cord_distance_mm"], measures["gtv_diameter_cm"]
    dist = (f"tumour-cord distance {d['value']:.1f} mm ({d['target']} ({d['target_role']}) to "
            f"{d['cord']} ({d['cord_role']}))" if d.get("value") is not None
            else f"tumour-cord distance not measured ({d.get('problem')})")
    diam = (f"largest GTV diameter {g['value']:.2f} cm ({g['structure']})"
            if g.get("value") is not None else f"GTV diameter not measured ({g.get('problem')})")
    return [f"Measured on the contours: {dist}; {diam}"]


def _write_skipped(out: io.StringIO, skipped: list[Skip]) -> None:
    """The rules that did not apply, grouped by their code (Skip.code): those waiting for a
    fact by the fact they need, those of other indications or sites on one line."""
    groups: dict[str, list[Skip]] = {}
    for s in skipped:
        groups.setdefault(s.code, []).append(s)
    for code in [*SKIP_HEADINGS, *sorted(set(groups) - set(SKIP_HEADINGS))]:
        items = groups.get(code)
        if not items:
            continue
        out.write(f"\n{SKIP_HEADINGS.get(code, code)} [{code}]:\n")
        if code == "fact_missing":
            needs: dict[str, list[str]] = {}
            for s in items:
                needs.setdefault(s.needs or "?", []).append(s.rule)
            out.write("".join(f"  needs {need}: {', '.join(rules)}\n"
                              for need, rules in needs.items()))
        elif code in ("not_requested", "no_case_file"):
            out.write(f"  {', '.join(s.rule for s in items)}\n")
        else:
            out.write("".join(f"  {s.rule}: {s.reason}\n" for s in items))


def _opt(value, unit: str) -> str:
    return "?" if value is None else f"{value:g}{unit}"
