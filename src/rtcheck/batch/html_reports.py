"""A batch with one HTML report per plan: the worker that checks a plan, then writes its report.

The report package (:mod:`rtcheck.report`) only renders and never imports batch; running a
plan's check is the batch's (:func:`rtcheck.batch.check_one`). This module, in the batch room
above the report, joins the two: ``rtcheck batch --report-dir`` gives :func:`batch_worker` to
:func:`rtcheck.batch.run_batch`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rtcheck.report import (
    check_deidentifier,
    identifying_terms,
    render_check_report,
    report_file_name,
    write_atomic,
)


def batch_report_worker(task: Any, *, report_dir: str, deidentify: bool = False,
                        archive: str | None = None) -> dict:
    """:func:`rtcheck.batch.check_one`, then the plan's HTML report in ``report_dir``.

    The record is check_one's, unchanged, except for a warning when the report could not be
    written (the check itself stands). ERROR records get no report. The plan is loaded a
    second time for the report's DVHs (check_one does not hand its plan data out). With
    ``deidentify``, the report follows the de-identification rule: the plan's files by kind,
    any other path under ``archive`` by its pseudonym. (The record itself is de-identified
    by the batch, where it is written: :func:`rtcheck.report.scrub_record`.)
    """
    from rtcheck.batch import check_one

    rec = check_one(task)
    if rec.get("verdict") in (None, "ERROR"):
        return rec
    try:
        _write_report(task, rec, Path(report_dir), deidentify, archive)
    except Exception as exc:  # a report that fails must not turn a checked plan into ERROR
        rec["warnings"] = list(rec.get("warnings") or []) + [
            f"HTML report not written: {type(exc).__name__}: {exc}"]
    return rec


def _write_report(task: Any, rec: dict, report_dir: Path, deidentify: bool,
                  archive: str | None) -> None:
    """Load the task's plan again and write its report under its key's file name."""
    from rtcheck.dicom import load_plan

    data = load_plan(task.group.files, plan=task.group.plan_uid)
    result = {k: rec.get(k) for k in ("plan", "verdict", "findings", "notes", "warnings",
                                      "facts")}
    deid = None
    if deidentify:
        deid = check_deidentifier(data, (), [archive] if archive else [])
        deid.add_terms(identifying_terms(rec))
    page = render_check_report(result, data, protocols=list(task.protocols) or None,
                               deidentify=deidentify, deidentifier=deid)
    write_atomic(report_dir / report_file_name(rec["key"]), page)


def batch_worker(report_dir: str | os.PathLike, deidentify: bool = False,
                 archive: str | os.PathLike | None = None) -> Callable[[Any], dict]:
    """The ``worker`` to give :func:`rtcheck.batch.run_batch` for one report per plan
    (picklable: worker processes and Dask workers import it). With ``deidentify``, give the
    ``archive``: paths under it become pseudonyms in the reports."""
    return functools.partial(batch_report_worker, report_dir=str(Path(report_dir).resolve()),
                             deidentify=deidentify,
                             archive=None if archive is None else str(archive))
