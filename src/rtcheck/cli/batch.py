"""``rtcheck batch``: QA of every plan in an archive, resumable, parallel, optionally on Dask."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from rtcheck.batch import (
    DEFAULT_PLAN_TIMEOUT,
    SCHEDULER_CONNECT_TIMEOUT,
    default_jobs,
    load_facts,
    output_file_problem,
    parse_scheduler_address,
    run_batch,
)
from rtcheck.cli.common import (
    CommandError,
    OneLineCommand,
    PathOrStudyURL,
    download_dir_option,
    local_paths,
)
from rtcheck.errors import RTCheckError

#: Exit code after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


def _check_outputs(output: str | None, report_dir: str | None) -> None:
    """Exit 2 with one line naming the path when OUTPUT or --report-dir cannot be written,
    before any work. The report folder is created when its parent exists."""
    if output:
        problem = output_file_problem(output, folder_writable=True)
        if problem:
            raise CommandError(f"{output}: {problem}")
    if report_dir:
        folder = Path(report_dir)
        parent = folder.parent if str(folder.parent) else Path(".")
        if folder.exists() and not folder.is_dir():
            raise CommandError(f"{report_dir}: --report-dir is not a folder")
        if not folder.exists():
            if not parent.is_dir():
                raise CommandError(f"{report_dir}: the folder {parent} does not exist")
            try:
                folder.mkdir()
            except OSError as exc:
                raise CommandError(f"{report_dir}: cannot create the report folder "
                                   f"({exc.strerror or exc})") from exc
        if not os.access(folder, os.W_OK | os.X_OK):
            raise CommandError(f"{report_dir}: the report folder is read-only")


def _report_options(report_dir, deidentify: bool, protocols, table, archive) -> dict:
    """run_batch options for --report-dir: the report-writing worker. run_batch validates
    protocols and facts up front only for its default worker, so it is done here."""
    if not report_dir:
        return {}
    from rtcheck.batch import load_protocols, validate_facts
    from rtcheck.batch.html_reports import batch_worker

    load_protocols(protocols)
    if table is not None:
        validate_facts(table, protocols)
    return {"worker": batch_worker(report_dir, deidentify, archive=archive)}


@click.command("batch", cls=OneLineCommand)
@click.argument("archive", type=PathOrStudyURL(exists=True, file_okay=False, path_type=str))
@download_dir_option()
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
              help="Run on this Dask distributed scheduler (needs rtcheck[dask]); "
                   "tls://HOST:PORT for an encrypted connection (see above). Exit 2 if it "
                   f"does not answer within {SCHEDULER_CONNECT_TIMEOUT:g} s.")
@click.option("--plan-timeout", type=click.FloatRange(min=0), default=DEFAULT_PLAN_TIMEOUT,
              metavar="SECONDS",
              help="A plan still running after SECONDS is stopped (its worker process killed "
                   "and replaced) and recorded as ERROR \"timed out\"; the batch goes on. "
                   f"0: no limit. [default: {DEFAULT_PLAN_TIMEOUT:g} s]")
@click.option("--quiet", "-q", is_flag=True, help="No progress display (the summary remains).")
@click.option("--report-dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Also write one self-contained HTML report per plan into DIR, and "
                   "DIR/index.html: every plan of OUTPUT, sortable by verdict (needs --output). "
                   "DIR is created if missing (its parent must exist).")
@click.option("--deidentify", is_flag=True,
              help="Every output without patient names, IDs, birth dates, UIDs, or paths that "
                   "hold them: the JSONL/CSV records (keys become pseudonyms), progress and "
                   "summary on stderr, the HTML reports and index.html.")
def batch(archive, protocols, facts, jobs, output, fmt, resume, overwrite, scheduler,
          plan_timeout, quiet, report_dir, deidentify):
    """Check every plan under ARCHIVE and stream one result per plan.

    ARCHIVE is searched recursively: nested patient and course folders, files with or
    without extension, CT/MR slices mixed in, duplicate copies. It may also be a DICOMweb
    study URL (http://pacs:8042/dicom-web/studies/STUDY_UID): its RT objects are retrieved
    first (--download-dir keeps them). Headers alone group each
    RTPLAN with its RTDOSE(s) and RTSTRUCT by UID; a plan without dose or structures is
    still checked (what needs them is NOT_EVALUATED) and its record says what is missing.
    A file that claims to be DICOM but cannot be read is an ERROR record of its own.

    Indication, site and prior course cannot be read from DICOM: give them with
    --indication-from, or the rules that need them are NOT_EVALUATED, never guessed.

    Each record is written and synced to disk as its plan finishes, so a killed run keeps
    everything it wrote; --resume continues it. OUTPUT is locked while the batch runs
    (OUTPUT.lock holds the PID): a second batch writing the same file exits 2. Records are
    strict JSON (a number that is not finite is written null, with a warning). Files that
    are not read (FIFOs and other non-regular files, files that are not DICOM) are listed
    with the reason in the summary and as SKIPPED records (no effect on the exit code).
    Progress (bar on a terminal, else one line per plan) and the end summary go to standard
    error.

    Dask (--scheduler): the workers read the archive themselves, and every record
    (patient IDs, findings) comes back to this machine through the scheduler. tcp:// is
    not encrypted: outside a trusted network, use tls://HOST:PORT with Dask's TLS
    settings (those of a distributed.Security object), in
    ~/.config/dask/distributed.yaml or in environment variables; the scheduler and the
    workers need their own certificates and should require encryption too:

    \b
      DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION=true
      DASK_DISTRIBUTED__COMM__TLS__CA_FILE=ca.pem
      DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT=client.pem
      DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY=client-key.pem

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
    4          a plan or file is ERROR (whatever the others are; a timed-out plan too)
    1          else a plan is FAIL
    3          else a plan is NOT_EVALUATED (or no plan was found)
    5          else a plan is REVIEW (WARN findings for clinical judgement)
    0          every plan is PASS
    2          bad usage or input, nothing checked: OUTPUT or DIR not writable, OUTPUT
               locked by another batch, scheduler malformed or unreachable...
    130        interrupted
    """
    if resume and overwrite:
        raise CommandError("--resume and --overwrite contradict each other")
    if resume and not output:
        raise CommandError("--resume needs --output FILE")
    if report_dir and not output:
        raise CommandError("--report-dir needs --output FILE (index.html lists the plans of "
                           "OUTPUT)")
    _check_outputs(output, report_dir)
    archive = local_paths((archive,), deidentify=deidentify)[0]  # a DICOMweb study URL -> folder
    if scheduler:
        try:
            parse_scheduler_address(scheduler)
        except RTCheckError as exc:
            raise CommandError(str(exc)) from exc
    if scheduler and jobs:
        click.echo("rtcheck: note: --jobs is ignored with --scheduler (the cluster decides)",
                   err=True)
    try:
        table = load_facts(facts) if facts else None
        options = _report_options(report_dir, deidentify, protocols, table, archive)
        summary = run_batch(archive, output=output, fmt=fmt, protocols=protocols, facts=table,
                            jobs=jobs, resume=resume, overwrite=overwrite, scheduler=scheduler,
                            progress="off" if quiet else "auto", plan_timeout=plan_timeout or None,
                            deidentify=deidentify, **options)
        if report_dir:
            from rtcheck.report import write_batch_index

            try:
                index = write_batch_index(report_dir, output, deidentify=deidentify,
                                          archive=archive)
            except OSError as exc:
                raise CommandError(f"{report_dir}: cannot write index.html "
                                   f"({exc.strerror or exc})") from exc
            click.echo(f"rtcheck: reports in {report_dir}, summary {index}", err=True)
    except RTCheckError as exc:
        if deidentify:
            from rtcheck.report import batch_deidentifier

            raise CommandError(
                batch_deidentifier(archive, read_files=False).text(str(exc))) from exc
        raise CommandError(str(exc)) from exc
    except KeyboardInterrupt:
        click.echo("\nrtcheck: interrupted; every record written so far is kept"
                   + (f": continue with --resume -o {output}" if output else ""), err=True)
        sys.exit(EXIT_INTERRUPTED)
    click.echo(summary.render(), err=True, nl=False)
    sys.exit(summary.exit_code)
