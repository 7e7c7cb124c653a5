"""``rtcheck batch``: QA of every plan in an archive, resumable, parallel, optionally on Dask."""

from __future__ import annotations

import sys

import click

from rtcheck.batch import EXIT_USAGE, default_jobs, load_facts, run_batch
from rtcheck.errors import RTCheckError

#: Exit code after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


def _fail(message: str) -> None:
    click.echo(f"rtcheck: error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def _report_options(report_dir, deidentify: bool, protocols, table) -> dict:
    """run_batch options for --report-dir: the report-writing worker. run_batch validates
    protocols and facts up front only for its default worker, so it is done here."""
    if not report_dir:
        return {}
    from pathlib import Path

    from rtcheck.batch import load_protocols, validate_facts
    from rtcheck.report import batch_worker

    load_protocols(protocols)
    if table is not None:
        validate_facts(table, protocols)
    try:
        Path(report_dir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _fail(f"{report_dir}: cannot create the report folder: {exc.strerror or exc}")
    return {"worker": batch_worker(report_dir, deidentify)}


@click.command("batch")
@click.argument("archive", type=click.Path(exists=True, file_okay=False, path_type=str))
@click.option("--protocol", "protocols", multiple=True, metavar="ID_OR_FILE",
              help="Protocol to check against (repeatable; default: the checker's default).")
@click.option("--indication-from", "facts", type=click.Path(exists=True, dir_okay=False),
              help="CSV or JSON of per-plan facts keyed by plan_uid or patient_id: indication, "
                   "site, prior_summary...")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help=f"Local worker processes [default: all cores, here {default_jobs()}].")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="results.jsonl (one record per plan) or results.csv (one row per finding); "
                   "default: JSONL on standard output.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default=None,
              help="Output format when the file name does not say it.")
@click.option("--resume", is_flag=True,
              help="Continue OUTPUT: skip the plans already in it, never write one twice.")
@click.option("--overwrite", is_flag=True, help="Replace an existing OUTPUT.")
@click.option("--scheduler", metavar="tcp://HOST:PORT", default=None,
              help="Run on this Dask distributed scheduler (needs rtcheck[dask]).")
@click.option("--quiet", "-q", is_flag=True, help="No progress display (the summary remains).")
@click.option("--report-dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Also write one self-contained HTML report per plan into DIR, and "
                   "DIR/index.html: every plan of OUTPUT, sortable by verdict (needs --output).")
@click.option("--deidentify", is_flag=True,
              help="With --report-dir: the HTML reports and index.html without patient names, "
                   "IDs and UIDs (the JSONL/CSV records keep them).")
def batch(archive, protocols, facts, jobs, output, fmt, resume, overwrite, scheduler, quiet,
          report_dir, deidentify):
    """Check every plan under ARCHIVE and stream one result per plan.

    ARCHIVE is searched recursively: nested patient and course folders, files with or
    without extension, CT/MR slices mixed in, duplicate copies. Headers alone group each
    RTPLAN with its RTDOSE(s) and RTSTRUCT by UID; a plan without dose or structures is
    still checked (what needs them is NOT_EVALUATED) and its record says what is missing.
    A file that claims to be DICOM but cannot be read is an ERROR record of its own.

    Indication, site and prior course cannot be read from DICOM: give them with
    --indication-from, or the rules that need them are NOT_EVALUATED, never guessed.

    Each record is written and synced to disk as its plan finishes, so a killed run keeps
    everything it wrote; --resume continues it. Progress (bar on a terminal, else one line
    per plan) and the end summary go to standard error.

    \b
    Examples:
      rtcheck batch /archive -o results.jsonl
      rtcheck batch /archive -o results.csv --indication-from facts.csv --jobs 2
      rtcheck batch /archive -o results.jsonl --resume
      rtcheck batch /archive -o results.jsonl --scheduler tcp://10.0.0.5:8786

    Each record's verdict is the checker's (PASS, REVIEW, NOT_EVALUATED, FAIL: see
    rtcheck check --help), except that a PASS or REVIEW becomes NOT_EVALUATED when a fact
    some rules need was not given; ERROR is a plan or file that could not be read or
    checked. The exit code answers for every record of OUTPUT
    (earlier runs included with --resume): 4 if any is ERROR, else the worst verdict's:

    \b
    exit code  when
    4          a plan or file is ERROR (whatever the others are)
    1          else a plan is FAIL
    3          else a plan is NOT_EVALUATED (or no plan was found)
    5          else a plan is REVIEW (WARN findings for clinical judgement)
    0          every plan is PASS
    2          bad usage or input (nothing checked); 130 interrupted
    """
    if resume and overwrite:
        _fail("--resume and --overwrite contradict each other")
    if resume and not output:
        _fail("--resume needs --output FILE")
    if report_dir and not output:
        _fail("--report-dir needs --output FILE (index.html lists the plans of OUTPUT)")
    if deidentify and not report_dir:
        _fail("--deidentify applies to the HTML reports: give --report-dir DIR")
    if scheduler and jobs:
        click.echo("rtcheck: note: --jobs is ignored with --scheduler (the cluster decides)",
                   err=True)
    try:
        table = load_facts(facts) if facts else None
        options = _report_options(report_dir, deidentify, protocols, table)
        summary = run_batch(archive, output=output, fmt=fmt, protocols=protocols, facts=table,
                            jobs=jobs, resume=resume, overwrite=overwrite, scheduler=scheduler,
                            progress="off" if quiet else "auto", **options)
        if report_dir:
            from rtcheck.report import write_batch_index

            index = write_batch_index(report_dir, output, deidentify=deidentify)
            click.echo(f"rtcheck: reports in {report_dir}, summary {index}", err=True)
    except RTCheckError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        click.echo("\nrtcheck: interrupted; every record written so far is kept"
                   + (f": continue with --resume -o {output}" if output else ""), err=True)
        sys.exit(EXIT_INTERRUPTED)
    click.echo(summary.render(), err=True, nl=False)
    sys.exit(summary.exit_code)
