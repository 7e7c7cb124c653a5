"""The ``index.html`` of a batch report folder: the reports' file names, the index rows read
back from the batch output (JSONL or CSV), and the index written from them.

Running the checks that produce the reports is not done here (:mod:`rtcheck.batch.html_reports`):
this package only renders.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from rtcheck.files import write_text_atomic
from rtcheck.report.deidentification import deidentified_key, scrub_record
from rtcheck.report.html import render_batch_index


def report_file_name(key: str) -> str:
    """File name of a plan's report in a batch report folder: the plan's de-identified key
    (:func:`deidentified_key`), so the same for the key and for its pseudonym (the index of a
    de-identified output finds its reports), stable across resumed runs, naming no patient.
    The pseudonym is salted with ``RTCHECK_DEIDENTIFY_SALT``: set it alike on Dask workers."""
    return f"{deidentified_key(key)}.html"


def write_atomic(path: Path, text: str) -> None:
    """Write a file whole or not at all (a killed batch leaves no half report)."""
    write_text_atomic(path, text)



_INDEX_FIELDS = ("key", "plan_label", "patient_id", "plan_uid", "verdict", "error", "seconds")


def read_batch_records(path: str | os.PathLike) -> list[dict]:
    """The index rows of a batch output file (JSONL, or CSV with one row per finding):
    identity, verdict, error, seconds and each finding's rule and status; one row per plan
    (the last record of a key wins). Damaged lines are skipped."""
    import csv as _csv

    rows: dict[str, dict] = {}
    with open(path, encoding="utf-8", newline="") as fh:
        first = fh.readline()
        fh.seek(0)
        if first.startswith("key,"):
            for row in _csv.DictReader(fh):
                key = row.get("key")
                if not key:
                    continue
                rec = rows.get(key) if row.get("row") != "1" else None
                if rec is None:
                    rec = {k: row.get(k) or None for k in _INDEX_FIELDS}
                    rec["findings"] = []
                    rows[key] = rec
                if row.get("rule"):
                    rec["findings"].append({"rule": row["rule"], "status": row.get("status")})
        else:
            for line in fh:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict) and rec.get("key"):
                    slim = {k: rec.get(k) for k in _INDEX_FIELDS}
                    slim["findings"] = [{"rule": f.get("rule"), "status": f.get("status")}
                                        for f in rec.get("findings") or []]
                    rows[rec["key"]] = slim
    for rec in rows.values():
        try:
            rec["seconds"] = None if rec["seconds"] is None else float(rec["seconds"])
        except (TypeError, ValueError):
            rec["seconds"] = None
    return list(rows.values())


def write_batch_index(report_dir: str | os.PathLike, output: str | os.PathLike, *,
                      deidentify: bool = False, archive: str | os.PathLike | None = None
                      ) -> Path:
    """Write ``report_dir/index.html`` from the batch output file ``output`` (every plan of
    it, also those of earlier resumed runs and ERROR records), linking the reports found in
    ``report_dir``. Returns the index path.

    With ``deidentify``, each row is :func:`scrub_record`'s (the de-identification rule: no
    name, ID, UID; paths under ``archive`` by their pseudonyms); rows already de-identified
    (a de-identified output) are kept as they are, and find their reports all the same
    (:func:`report_file_name` of a key and of its pseudonym are one)."""
    folder = Path(report_dir)
    # SKIPPED records are files that are not plans (listed in the batch output and summary)
    records = [r for r in read_batch_records(output) if r.get("verdict") != "SKIPPED"]
    if deidentify:
        records = [scrub_record(r, archive=archive, read_files=False) for r in records]
    links = {r["key"]: report_file_name(r["key"]) for r in records
             if (folder / report_file_name(r["key"])).exists()}
    index = folder / "index.html"
    title = "rtcheck batch summary" + (" (de-identified)" if deidentify else "")
    write_atomic(index, render_batch_index(records, links, title=title))
    return index

