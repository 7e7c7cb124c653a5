"""Everything rtcheck shows: the HTML report of a plan check and the batch index, the
de-identification of any output, and texts made safe for a terminal, a spreadsheet or JSON.

The rooms of this package, each leaning only on those above it:

=====================  ====================================================================
module                 what it holds
=====================  ====================================================================
``formats``            :func:`terminal_safe`, :func:`csv_safe`, :func:`csv_row`,
                       :func:`json_text`
``identity``           the identifiers a plan's documents and DICOM files hold
``deidentification``   :class:`Deidentifier` (the ``--deidentify`` rule) and its builders
``records``            findings in report order, the DVHs the rules used, input and protocol
                       files with their SHA-256 (the QA record)
``plots``              the DVH and re-irradiation figures (matplotlib, imported when drawn)
``html``               the plan report and the batch index, rendered from ``templates/``
                       (jinja2, autoescaping on)
``batch_index``        a batch report folder's file names and ``index.html``
=====================  ====================================================================

This package only renders: running the checks of a batch with one report per plan is
:mod:`rtcheck.batch.html_reports`. Its names are imported from their room on first use
(PEP 562), so importing one room, as ``rtcheck check --format json`` imports ``formats``,
stays light: no matplotlib, no pydicom, no jinja2 until a page or a plot is made (nor numpy:
:mod:`rtcheck.report.plots` is not imported here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtcheck.lazy import attribute_loader

#: Public name -> the room (module of this package) that defines it.
_NAMES = {
    "read_batch_records": "batch_index",
    "report_file_name": "batch_index",
    "write_atomic": "batch_index",
    "write_batch_index": "batch_index",
    "Deidentifier": "deidentification",
    "REMOVED": "deidentification",
    "batch_deidentifier": "deidentification",
    "check_deidentifier": "deidentification",
    "deidentified_key": "deidentification",
    "deidentified_message": "deidentification",
    "deidentified_progress_label": "deidentification",
    "deidentify": "deidentification",
    "is_deidentified_key": "deidentification",
    "map_strings": "deidentification",
    "plan_identity_terms": "deidentification",
    "pseudonym": "deidentification",
    "scrub_record": "deidentification",
    "csv_row": "formats",
    "csv_safe": "formats",
    "json_text": "formats",
    "terminal_safe": "formats",
    "FINDINGS_COLUMNS": "html",
    "render_batch_index": "html",
    "render_check_report": "html",
    "render_html": "html",
    "stylesheet": "html",
    "identifying_terms": "identity",
    "identity_forms": "identity",
    "identity_of_file": "identity",
    "STATUS_ORDER": "records",
    "file_sha256": "records",
    "input_records": "records",
    "plan_input_files": "records",
    "protocol_records": "records",
    "report_dvhs": "records",
    "sort_findings": "records",
    "used_dvhs": "records",
}

if TYPE_CHECKING:
    from rtcheck.report.batch_index import (
        read_batch_records,
        report_file_name,
        write_atomic,
        write_batch_index,
    )
    from rtcheck.report.deidentification import (
        Deidentifier,
        REMOVED,
        batch_deidentifier,
        check_deidentifier,
        deidentified_key,
        deidentified_message,
        deidentified_progress_label,
        deidentify,
        is_deidentified_key,
        map_strings,
        plan_identity_terms,
        pseudonym,
        scrub_record,
    )
    from rtcheck.report.formats import (
        csv_row,
        csv_safe,
        json_text,
        terminal_safe,
    )
    from rtcheck.report.html import (
        FINDINGS_COLUMNS,
        render_batch_index,
        render_check_report,
        render_html,
        stylesheet,
    )
    from rtcheck.report.identity import (
        identifying_terms,
        identity_forms,
        identity_of_file,
    )
    from rtcheck.report.records import (
        STATUS_ORDER,
        file_sha256,
        input_records,
        plan_input_files,
        protocol_records,
        report_dvhs,
        sort_findings,
        used_dvhs,
    )


__getattr__ = attribute_loader(
    __name__, {name: f"{__name__}.{room}" for name, room in _NAMES.items()}, globals())


__all__ = [
    "FINDINGS_COLUMNS", "REMOVED", "STATUS_ORDER", "Deidentifier", "batch_deidentifier",
    "check_deidentifier", "csv_row", "csv_safe", "deidentified_key", "deidentified_message",
    "deidentified_progress_label", "deidentify", "file_sha256", "identifying_terms",
    "identity_forms", "identity_of_file", "input_records", "is_deidentified_key",
    "json_text", "map_strings", "plan_identity_terms", "plan_input_files", "protocol_records",
    "pseudonym", "read_batch_records", "render_batch_index", "render_check_report",
    "render_html", "report_dvhs", "report_file_name", "scrub_record", "sort_findings",
    "stylesheet", "terminal_safe", "used_dvhs", "write_atomic", "write_batch_index",
]
