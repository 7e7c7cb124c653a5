"""Output sinks of a batch: JSONL or CSV, append-only, durable, resumable.

A :class:`Sink` is written by the batch process only, one record at a time, flushed and
``fsync``'ed before the next (a run killed at any moment, even by SIGKILL, keeps every
record it wrote), and locked (:class:`~rtcheck.batch.output_file.OutputLock`) from before it
is read or truncated until it is closed. Every record goes through
:func:`~rtcheck.batch.strict_json.strict_record` first, so nothing in a plan's content can
make the writer fail.

Resume state: opened with ``resume``, a sink reads the records already in the file into
:attr:`Sink.done` (keys) and :attr:`Sink.earlier` (verdict counts), cuts a half-written last
record, and refuses a file that is not a batch output (:class:`ResumeError`). A JSONL file
whose earlier records hold ``NaN``/``Infinity`` tokens (an older rtcheck) is rewritten
strict, atomically (a new file renamed over the old one).

* :class:`JsonlSink`: one JSON object per line and per plan.
* :class:`CsvSink`: one row per finding, ``row``/``rows`` numbering a plan's block so that a
  cut block is detected; cells are made safe for spreadsheets by
  :func:`rtcheck.report.csv_safe` (imported lazily).

Leans on :mod:`rtcheck.batch.output_file`, :mod:`rtcheck.batch.strict_json` and
:mod:`rtcheck.batch.records`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from rtcheck.batch.output_file import OutputLock, output_file_problem
from rtcheck.batch.records import unwritable_record
from rtcheck.batch.strict_json import loads_strict, strict_record
from rtcheck.errors import InputError
from rtcheck.files import write_bytes_atomic

#: CSV columns: one row per finding (a plan without findings still has one row).
CSV_FINDING_FIELDS = ("rule", "structure", "role", "stands_for", "metric", "value", "limit",
                      "unit", "alpha_beta", "model", "status", "code", "missing", "reason",
                      "source")
CSV_COLUMNS = ("key", "plan_uid", "patient_id", "plan_label", "verdict", "error", "row", "rows",
               *CSV_FINDING_FIELDS, "seconds", "files", "missing", "warnings")


class ResumeError(InputError):
    """An output file that cannot be resumed safely (foreign content, damaged middle)."""



class Sink:
    """An append-only, line-oriented result file; each record durable once written.

    Subclasses define how a record becomes lines and how existing content is checked. The
    file is locked (:class:`OutputLock`) from before it is read or truncated until
    :meth:`close`.
    """

    fmt = ""

    def __init__(self, path: str | None, *, resume: bool = False, overwrite: bool = False):
        self.path = path
        self.done: set[str] = set()
        self.earlier: Counter = Counter()  # verdicts of the records already in the file
        self._lock: OutputLock | None = None
        if path is None:
            if resume:
                raise InputError("--resume needs --output FILE")
            self._fp: IO[bytes] = sys.stdout.buffer
            self._fsync = False
            self._start()
            return
        problem = output_file_problem(path, folder_writable=True)
        if problem:
            raise InputError(problem, path)
        self._lock = OutputLock(path).acquire()
        try:
            self._open(Path(path), resume, overwrite)
        except BaseException:
            self._lock.release()
            raise

    def _open(self, p: Path, resume: bool, overwrite: bool) -> None:
        try:
            exists = p.exists() and p.stat().st_size > 0
            if exists and not (resume or overwrite):
                raise InputError("exists: add --resume to continue it or --overwrite to "
                                 "replace it", self.path)
            if resume and exists:
                keep = self._scan(p.read_bytes())
                with open(p, "r+b") as fp:  # cut off a record left half-written by a kill
                    fp.truncate(keep)
                    fp.flush()
                    os.fsync(fp.fileno())
                self._fp = open(p, "ab")
            else:
                self._fp = open(p, "wb")
        except OSError as exc:
            raise InputError(f"cannot write the output ({exc.strerror or exc})",
                             self.path) from None
        self._fsync = True
        if self._fp.tell() == 0:
            self._start()

    def _start(self) -> None:
        """Write what a new file begins with (the CSV header)."""

    def _scan(self, data: bytes) -> int:
        """Read existing content into :attr:`done`; return the byte length to keep."""
        raise NotImplementedError

    def lines(self, record: dict) -> bytes:
        raise NotImplementedError

    def _write(self, data: bytes) -> None:
        try:
            self._fp.write(data)
            self._fp.flush()
            if self._fsync:
                os.fsync(self._fp.fileno())
        except OSError as exc:  # disk full, file system gone: the batch cannot go on
            raise InputError(f"cannot write the output ({exc.strerror or exc}); every record "
                             "before this one is kept: continue with --resume",
                             self.path) from None

    def write(self, record: dict) -> dict:
        """Append one plan's record, durably (flush + fsync) before returning; returns the
        record as written (strict JSON data). Never raises on the record's content."""
        try:
            written = strict_record(record)
            data = self.lines(written)
        except Exception as exc:  # cannot happen on JSON data; never lose the plan for it
            written = unwritable_record(record, exc)
            data = self.lines(written)
        self._write(data)
        self.done.add(written["key"])
        return written

    def close(self) -> None:
        try:
            if self._fp is not sys.stdout.buffer:
                self._fp.close()
            else:
                self._fp.flush()
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None


def _complete_lines(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(line number, end offset, line) of every newline-terminated line; a last line without
    its newline (killed mid-write) is not returned."""
    pos = 0
    number = 0
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            return
        number += 1
        yield number, end + 1, data[pos:end]
        pos = end + 1


class JsonlSink(Sink):
    """One JSON object per line and per plan (strict JSON: no NaN or Infinity tokens)."""

    fmt = "jsonl"

    def lines(self, record: dict) -> bytes:
        return (json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")

    def _scan(self, data: bytes) -> int:
        keep = 0
        lines = list(_complete_lines(data))
        loose: dict[int, dict] = {}  # line index -> record read with NaN/Infinity tokens
        for i, (number, end, line) in enumerate(lines):
            try:
                try:
                    record = loads_strict(line)
                except ValueError:
                    record = json.loads(line)  # an earlier rtcheck wrote NaN / Infinity
                    loose[i] = record
                key, verdict = record["key"], record["verdict"]
                if not isinstance(key, str):
                    raise TypeError
            except (ValueError, TypeError, KeyError, RecursionError):
                loose.pop(i, None)
                if i == len(lines) - 1 and end == len(data):
                    # The last line is damaged but complete: also a kill mid-write (rare).
                    break
                raise ResumeError(f"line {number} is not an rtcheck batch record; "
                                  "cannot resume safely", self.path) from None
            self.done.add(key)
            self.earlier[verdict] += 1
            keep = end
        if loose:
            keep = self._rewrite_strict(data, lines, loose, keep)
        return keep

    def _rewrite_strict(self, data: bytes, lines: list, loose: dict[int, dict],
                        keep: int) -> int:
        """Rewrite the file with the records that held NaN/Infinity made strict (null, with
        a warning), atomically (a new file renamed over the old one); returns its length."""
        assert self.path is not None
        parts = []
        start = 0
        for i, (_, end, line) in enumerate(lines):
            if end > keep:
                break
            parts.append(self.lines(strict_record(loose[i])) if i in loose
                         else data[start:end])
            start = end
        content = b"".join(parts)
        try:
            write_bytes_atomic(self.path, content, durable=True)
        except OSError as exc:
            raise InputError(f"cannot rewrite the earlier records as strict JSON "
                             f"({exc.strerror or exc})", self.path) from None
        return len(content)


def _cell(value: Any) -> str:
    """A CSV cell on one physical line (so that resume can work line by line)."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        value = " | ".join(map(str, value))
    return " / ".join(str(value).splitlines())


class CsvSink(Sink):
    """One row per finding; ``row``/``rows`` number a plan's rows so a cut block is detected."""

    fmt = "csv"

    def _start(self) -> None:
        self._write(self._row(CSV_COLUMNS))

    @staticmethod
    def _row(cells: Iterable[Any]) -> bytes:
        from rtcheck.report import csv_safe  # no formula a spreadsheet would run

        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow([csv_safe(_cell(c)) for c in cells])
        return buf.getvalue().encode("utf-8")

    def lines(self, record: dict) -> bytes:
        findings = record.get("findings") or [{}]
        out = []
        for i, f in enumerate(findings, start=1):
            values = {**{k: record.get(k) for k in CSV_COLUMNS}, "row": i,
                      "rows": len(findings), **{k: f.get(k) for k in CSV_FINDING_FIELDS}}
            out.append(self._row(values[c] for c in CSV_COLUMNS))
        return b"".join(out)

    def _scan(self, data: bytes) -> int:
        lines = list(_complete_lines(data))
        if not lines:
            return 0
        header = next(csv.reader([lines[0][2].decode("utf-8")]))
        if tuple(header) != CSV_COLUMNS:
            raise ResumeError("not an rtcheck batch CSV (its header differs); cannot resume",
                              self.path)
        keep = lines[0][1]
        # A plan's block being read: its key, the last row number read, its number of rows.
        block: tuple[str | None, int, int] = (None, 0, 0)
        for number, end, line in lines[1:]:
            cells = next(csv.reader([line.decode("utf-8")]), [])
            row = dict(zip(CSV_COLUMNS, cells))
            try:
                i, n = int(row["row"]), int(row["rows"])
            except (KeyError, ValueError):
                i, n = -1, 0
            block_open = block[1] < block[2]
            consistent = len(cells) == len(CSV_COLUMNS) and 1 <= i <= n and (
                (i == block[1] + 1 and (row["key"], n) == (block[0], block[2])) if block_open
                else i == 1)
            if not consistent:
                if end == len(data):
                    break  # a damaged last line: the block it belongs to is cut
                raise ResumeError(f"line {number} breaks the row numbering; cannot resume "
                                  "safely", self.path)
            block = (row["key"], i, n)
            if i == n:
                self.done.add(row["key"])
                self.earlier[row["verdict"]] += 1
                keep = end
        return keep


def open_sink(path: str | None, fmt: str | None = None, *, resume: bool = False,
              overwrite: bool = False) -> Sink:
    """A JSONL or CSV sink; the format comes from ``fmt`` or the file's extension."""
    if fmt is None:
        suffix = Path(path).suffix.lower() if path else ".jsonl"
        fmt = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv"}.get(suffix)
        if fmt is None:
            raise InputError("unknown output format: name the file .jsonl or .csv, or give "
                             "--format", path)
    cls = {"jsonl": JsonlSink, "csv": CsvSink}[fmt]
    return cls(path, resume=resume, overwrite=overwrite)
