"""Batch QA over plan archives: discovery, parallel checking, resumable streaming output.

The pipeline of ``rtcheck batch``, one module per room::

    discover(ARCHIVE)  ->  PlanTask per plan  ->  executor  ->  sink (JSONL or CSV)
      headers only          + facts from            local processes      one record per plan,
      (RTPLAN, RTDOSE,        --indication-from     or Dask workers      written and fsync'ed
       RTSTRUCT grouped                             run check_one()      as each plan finishes
       by their UIDs)

Dependencies point down this list; a module leans only on those above it (and imports only
their public names).

========================  ==============================================================
module                    what it holds
========================  ==============================================================
``processes``             worker processes: fork server, one thread each, orphan watch
``discovery``             finding the plans of an archive from headers: :func:`discover`
``records``               the record: verdicts, exit code, :class:`PlanTask`, every ERROR
                          and SKIPPED record, labels and pseudonymous keys
``facts``                 the ``--indication-from`` file, the checker's arguments from a
                          row, the ``facts.<fact>`` findings of a missing fact
``checking``              one plan's check in a worker (:func:`check_one`), the facts rows
                          checked before a run, the protocols loaded once per process
``executors``             :func:`run_local` (own pool, ``--plan-timeout``, crashes) and
                          :func:`run_dask` (``--scheduler``)
``strict_json``           records as strict JSON (no NaN/Infinity), whatever they hold
``output_file``           can the output be written; the lock that keeps it one batch's
``sinks``                 JSONL and CSV output, durable, resumable, atomic rewrites
``progress``              the progress bar or lines, the end summary and the exit code
``run``                   :func:`run_batch`, the orchestration
========================  ==============================================================

*Verdicts* of a record are the checker's (PASS, REVIEW, NOT_EVALUATED, FAIL: see
:mod:`rtcheck.checker.findings`), raised to NOT_EVALUATED when a fact is missing, or ERROR for
a plan that could not be read or checked. The batch's exit code is 4 when any record is
ERROR, else the exit code of the worst verdict over every record of the output (resumed runs
included). *Skipped files* (not regular files, never opened; files whose bytes are not DICOM)
are SKIPPED records and do not change the exit code.

Memory stays flat as the archive grows: the batch process keeps the compact discovery list
(a few UIDs and paths per plan, about a kilobyte), at most ``jobs`` plans in flight, the
counts and the slowest plans; results are never accumulated.

The names below are re-exported for the command line, the report and the tests; a test that
monkeypatches a name must patch the module that uses it (``rtcheck.batch.checking._evaluate``,
``rtcheck.batch.discovery.SCAN_CHUNK``, ``rtcheck.batch.run.discover``).
"""

from __future__ import annotations

from rtcheck.batch.checking import check_one, load_protocols, validate_facts
from rtcheck.batch.discovery import (
    DICOM_EXTENSIONS,
    NOT_DICOM_EXTENSIONS,
    BadFile,
    Discovery,
    PlanRef,
    SkippedFile,
    classify_file,
    classify_files,
    discover,
    not_regular,
)
from rtcheck.batch.executors import (
    DEFAULT_PLAN_TIMEOUT,
    SCHEDULER_CONNECT_TIMEOUT,
    Emit,
    Worker,
    check_scheduler,
    connect_dask,
    parse_scheduler_address,
    run_dask,
    run_local,
)
from rtcheck.batch.facts import (
    CHECK_FACTS,
    FACT_KEYS,
    FactsTable,
    check_arguments,
    facts_not_given,
    load_facts,
)
from rtcheck.batch.output_file import OutputLock, OutputLocked, output_file_problem
from rtcheck.batch.processes import SINGLE_THREAD_ENV, WORKER_PRELOAD, alive
from rtcheck.batch.progress import SLOWEST_SHOWN, BatchSummary, Progress
from rtcheck.batch.records import (
    EXIT_ERROR,
    EXIT_FAIL,
    EXIT_NOT_EVALUATED,
    EXIT_OK,
    EXIT_REVIEW,
    EXIT_USAGE,
    SKIPPED,
    VERDICTS,
    PlanTask,
    bad_file_record,
    base_record,
    batch_exit_code,
    crash_record,
    error_record,
    record_label,
    skipped_record,
    timeout_record,
)
from rtcheck.batch.run import default_jobs, run_batch
from rtcheck.batch.sinks import (
    CSV_COLUMNS,
    CSV_FINDING_FIELDS,
    CsvSink,
    JsonlSink,
    ResumeError,
    Sink,
    open_sink,
)
from rtcheck.batch.strict_json import MAX_RECORD_DEPTH, loads_strict, strict_record

__all__ = [
    "CHECK_FACTS", "CSV_COLUMNS", "CSV_FINDING_FIELDS", "DEFAULT_PLAN_TIMEOUT",
    "DICOM_EXTENSIONS", "EXIT_ERROR", "EXIT_FAIL", "EXIT_NOT_EVALUATED", "EXIT_OK",
    "EXIT_REVIEW", "EXIT_USAGE", "FACT_KEYS", "MAX_RECORD_DEPTH", "NOT_DICOM_EXTENSIONS",
    "SCHEDULER_CONNECT_TIMEOUT", "SINGLE_THREAD_ENV", "SKIPPED", "SLOWEST_SHOWN", "VERDICTS",
    "WORKER_PRELOAD", "BadFile", "BatchSummary", "CsvSink", "Discovery", "Emit", "FactsTable",
    "JsonlSink", "OutputLock", "OutputLocked", "PlanRef", "PlanTask", "Progress", "ResumeError",
    "Sink", "SkippedFile", "Worker", "alive", "bad_file_record", "base_record",
    "batch_exit_code", "check_arguments", "check_one", "check_scheduler", "classify_file",
    "classify_files", "connect_dask", "crash_record", "default_jobs", "discover",
    "error_record", "facts_not_given", "load_facts", "load_protocols", "loads_strict",
    "not_regular", "open_sink", "output_file_problem", "parse_scheduler_address",
    "record_label", "run_batch", "run_dask", "run_local", "skipped_record", "strict_record",
    "timeout_record", "validate_facts",
]
