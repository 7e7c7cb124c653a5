"""What a batch tells the person who runs it: progress while it runs, the summary at the end.

:class:`Progress` draws on standard error a bar with counts, rate and ETA on a terminal, one
line per plan otherwise (or nothing). :class:`BatchSummary` keeps only figures (counts by
verdict, the slowest plans, what discovery skipped or could not attach, the earlier records'
verdicts of a resumed output), never the records, so memory stays flat; it renders the end
summary and gives the batch's exit code. With ``--deidentify`` both name plans by their
pseudonyms (:func:`~rtcheck.batch.records.record_label`) and the summary is scrubbed.

Leans on :mod:`rtcheck.batch.records` (verdicts, exit code, labels) and the
:class:`~rtcheck.batch.discovery.Discovery` it summarises.
"""

from __future__ import annotations

import heapq
import io
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import IO, Any

from rtcheck.batch.discovery import Discovery
from rtcheck.batch.records import VERDICTS, batch_exit_code, record_label

#: Number of slowest plans listed in the summary.
SLOWEST_SHOWN = 5


def _duration(seconds: float) -> str:
    """``seconds`` as people read it: 42s, 3m07s, 2h05m."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


class Progress:
    """Progress on a stream: a redrawn bar on a terminal, else one line per plan.

    ``mode`` is "bar", "lines" or "off" ("auto" picks bar or lines from ``isatty``).
    """

    def __init__(self, total: int, stream: IO[str] | None = None, mode: str = "auto") -> None:
        self.stream = stream if stream is not None else sys.stderr
        if mode == "auto":
            mode = "bar" if getattr(self.stream, "isatty", lambda: False)() else "lines"
        self.mode = mode
        self.total = total
        self.done = 0
        self.counts: Counter = Counter()
        self.start = time.monotonic()
        self._last_draw = 0.0

    def update(self, rec: dict) -> None:
        self.done += 1
        self.counts[rec["verdict"]] += 1
        if self.mode == "lines":
            secs = rec.get("seconds")
            secs = secs if isinstance(secs, (int, float)) else None
            tail = f": {rec['error']}" if rec.get("error") else ""
            self.stream.write(f"[{self.done}/{self.total}] {rec['verdict']:<13} "
                              f"{record_label(rec)}"
                              f"{f' ({secs:.1f} s)' if secs else ''}{tail}\n")
            self.stream.flush()
        elif self.mode == "bar":
            now = time.monotonic()
            if now - self._last_draw >= 0.1 or self.done == self.total:
                self._last_draw = now
                self.draw()

    def rate(self) -> float:
        elapsed = time.monotonic() - self.start
        return self.done / elapsed if elapsed > 0 else 0.0

    def bar_text(self, width: int) -> str:
        """The bar line: counts, percentage, rate, ETA, fitted to ``width`` characters."""
        rate = self.rate()
        eta = (self.total - self.done) / rate if rate > 0 else None
        counts = "  ".join(f"{v} {self.counts[v]}" for v in VERDICTS if self.counts[v])
        tail = (f" {self.done}/{self.total} {100 * self.done / max(self.total, 1):3.0f}%"
                f"  {rate:.1f} plans/s  ETA {_duration(eta) if eta is not None else '?'}"
                f"  {counts}")
        room = max(10, min(40, width - len(tail) - 3))
        filled = int(room * self.done / max(self.total, 1))
        return (f"[{'#' * filled}{'.' * (room - filled)}]{tail}")[:width - 1]

    def draw(self) -> None:
        width = shutil.get_terminal_size((100, 20)).columns
        self.stream.write("\r" + self.bar_text(width).ljust(width - 1))
        self.stream.flush()

    def close(self) -> None:
        if self.mode == "bar":
            self.draw()
            self.stream.write("\n")
            self.stream.flush()


@dataclass
class BatchSummary:
    """The end-of-batch figures: counts, slowest plans, what was skipped or unattached."""

    counts: Counter = field(default_factory=Counter)
    earlier: Counter = field(default_factory=Counter)  # records already in a resumed output
    already_done: int = 0
    elapsed: float = 0.0
    slowest: list[tuple[float, str]] = field(default_factory=list)  # heap of (s, label)
    discovery: Discovery | None = None
    unused_facts: list[str] = field(default_factory=list)
    output: str | None = None
    #: With --deidentify, what scrubs the summary (rtcheck.report.Deidentifier).
    deidentifier: Any = None

    @property
    def checked(self) -> int:
        return sum(self.counts.values())

    @property
    def exit_code(self) -> int:
        """4 when a record is ERROR, else the worst verdict's code: FAIL 1, NOT_EVALUATED 3,
        REVIEW 5, PASS 0 (:func:`batch_exit_code`).

        A resumed batch answers for its whole output file, records of the killed run
        included (counted by the same rule), so that the last run's exit code is the batch's.
        """
        return batch_exit_code(self.counts + self.earlier)

    def add(self, rec: dict) -> None:
        self.counts[rec["verdict"]] += 1
        secs = rec.get("seconds")
        item = (float(secs) if isinstance(secs, (int, float)) else 0.0, record_label(rec))
        if len(self.slowest) < SLOWEST_SHOWN:
            heapq.heappush(self.slowest, item)
        else:
            heapq.heappushpop(self.slowest, item)

    def render(self) -> str:
        out = io.StringIO()
        rate = self.checked / self.elapsed if self.elapsed > 0 else 0.0
        plans = f"{self.checked} plan{'' if self.checked == 1 else 's'}"
        out.write(f"rtcheck batch: {plans} checked in {_duration(self.elapsed)} "
                  f"({rate:.2f} plans/s)")
        if self.already_done:
            out.write(f"; {self.already_done} already in {self.output}, skipped")
        out.write("\n  " + "  ".join(f"{v} {self.counts[v]}" for v in VERDICTS) + "\n")
        if self.earlier:
            total = self.counts + self.earlier
            out.write(f"  whole output, {sum(total[v] for v in VERDICTS)} records: "
                      + "  ".join(f"{v} {total[v]}" for v in VERDICTS) + "\n")
        if self.slowest:
            out.write("  slowest: " + "; ".join(f"{label} {secs:.1f} s" for secs, label in
                                                sorted(self.slowest, reverse=True)) + "\n")
        d = self.discovery
        if d is not None:
            skipped = ", ".join(f"{n} {kind}" for kind, n in d.skipped.most_common())
            out.write(f"  {d.files_seen} files: {len(d.groups)} plans, {len(d.bad_files)} "
                      f"unreadable{'; skipped ' + skipped if skipped else ''}\n")
            for item in d.skipped_files[:10]:
                out.write(f"  skipped {item.path}: {item.reason}\n")
            if len(d.skipped_files) > 10:
                out.write(f"  ... and {len(d.skipped_files) - 10} more skipped (SKIPPED "
                          "records of the output)\n")
            for line in d.unattached[:10]:
                out.write(f"  not attached to a plan: {line}\n")
            if len(d.unattached) > 10:
                out.write(f"  ... and {len(d.unattached) - 10} more not attached\n")
        for key in self.unused_facts[:10]:
            out.write(f"  facts row matched no plan: {key}\n")
        out.write(f"  exit code {self.exit_code}\n")
        text = out.getvalue()
        return self.deidentifier.text(text) if self.deidentifier is not None else text
