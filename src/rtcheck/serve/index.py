"""The node's index: an SQLite database (stdlib ``sqlite3``, WAL) in the store.

Tables:

- ``objects``: every stored file: SOP instance UID, class, kind, patient, study, the UID it
  references (a dose's or record's plan, a plan's structure set), calling AE, time
  received, path in the store, SHA-256, ``primary`` (0 for a conflicting copy kept aside),
  ``state`` (``stored``, or ``vanished`` when start-up found the file gone).
- ``plans``: one row per RTPLAN: list columns, status (``waiting`` for parts or the settle
  time, ``checking``, ``checked``, ``error``), missing parts, when it is due to be checked,
  the facts posted for it, the latest verdict.
- ``checks``: every check run, kept (history): times, facts used, verdict, the JSON result,
  the report's path, or the error.
- ``events``: what the node refused or noticed (unknown calling AE, refused SOP class,
  undecodable object, second copy, conflicting UID), for the page.

One connection, serialised by a lock: the SCP's association threads, the check queue and
the HTTP application share it. ``synchronous=FULL``: a committed row survives a power loss,
so the C-STORE success that follows the commit is honest.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtcheck.serve.objects import ObjectInfo

SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL, sop_class TEXT, kind TEXT NOT NULL,
    patient_id TEXT, patient_name TEXT, study_uid TEXT, referenced_uid TEXT,
    detail TEXT, calling_ae TEXT, received_at REAL NOT NULL,
    path TEXT NOT NULL UNIQUE, sha256 TEXT, "primary" INTEGER NOT NULL DEFAULT 1,
    state TEXT NOT NULL DEFAULT 'stored');
CREATE INDEX IF NOT EXISTS objects_uid ON objects(uid);
CREATE INDEX IF NOT EXISTS objects_ref ON objects(referenced_uid);
CREATE TABLE IF NOT EXISTS plans (
    uid TEXT PRIMARY KEY, key TEXT NOT NULL, patient_id TEXT, patient_name TEXT,
    study_uid TEXT, label TEXT, plan_date TEXT, fractions INTEGER, dose_gy REAL,
    structure_set_uid TEXT, calling_ae TEXT, received_at REAL NOT NULL,
    last_received REAL NOT NULL, revision INTEGER NOT NULL DEFAULT 0, due_at REAL,
    status TEXT NOT NULL DEFAULT 'waiting', missing TEXT NOT NULL DEFAULT '[]',
    facts TEXT, verdict TEXT, message TEXT, checked_at REAL, notes TEXT NOT NULL DEFAULT '[]');
CREATE TABLE IF NOT EXISTS checks (
    id INTEGER PRIMARY KEY, plan_uid TEXT NOT NULL, revision INTEGER,
    requested_at REAL NOT NULL, started_at REAL, finished_at REAL,
    status TEXT NOT NULL DEFAULT 'running', trigger TEXT, facts TEXT, missing TEXT,
    verdict TEXT, result TEXT, report_path TEXT, error TEXT, seconds REAL);
CREATE INDEX IF NOT EXISTS checks_plan ON checks(plan_uid);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, level TEXT NOT NULL, calling_ae TEXT,
    uid TEXT, message TEXT NOT NULL);
"""

#: Plan statuses.
WAITING, CHECKING, CHECKED, ERROR = "waiting", "checking", "checked", "error"


@dataclass(frozen=True)
class ObjectRow:
    """One stored file, as the index holds it."""

    id: int
    uid: str
    kind: str
    patient_id: str | None
    study_uid: str | None
    referenced_uid: str | None
    detail: dict[str, Any]
    calling_ae: str | None
    received_at: float
    path: str
    primary: bool
    state: str


@dataclass(frozen=True)
class PlanRow:
    """One plan: its list columns, status and latest verdict."""

    uid: str
    key: str
    patient_id: str | None
    patient_name: str | None
    study_uid: str | None
    label: str | None
    plan_date: str | None
    fractions: int | None
    dose_gy: float | None
    structure_set_uid: str | None
    calling_ae: str | None
    received_at: float
    last_received: float
    revision: int
    due_at: float | None
    status: str
    missing: list[str]
    facts: dict[str, str] | None
    verdict: str | None
    message: str | None
    checked_at: float | None
    notes: list[str]


@dataclass(frozen=True)
class CheckRow:
    """One check run of a plan (the history keeps them all)."""

    id: int
    plan_uid: str
    revision: int | None
    requested_at: float
    started_at: float | None
    finished_at: float | None
    status: str
    trigger: str | None
    facts: dict[str, str] | None
    missing: list[str]
    verdict: str | None
    result: str | None
    report_path: str | None
    error: str | None
    seconds: float | None


@dataclass(frozen=True)
class EventRow:
    id: int
    at: float
    level: str
    calling_ae: str | None
    uid: str | None
    message: str


def _loads(text: str | None, default: Any) -> Any:
    return default if text is None else json.loads(text)


def _object(row: sqlite3.Row) -> ObjectRow:
    return ObjectRow(id=row["id"], uid=row["uid"], kind=row["kind"],
                     patient_id=row["patient_id"], study_uid=row["study_uid"],
                     referenced_uid=row["referenced_uid"],
                     detail=_loads(row["detail"], {}), calling_ae=row["calling_ae"],
                     received_at=row["received_at"], path=row["path"],
                     primary=bool(row["primary"]), state=row["state"])


def _plan(row: sqlite3.Row) -> PlanRow:
    values = dict(row)
    values["missing"] = _loads(values["missing"], [])
    values["facts"] = _loads(values["facts"], None)
    values["notes"] = _loads(values["notes"], [])
    return PlanRow(**values)


def _check(row: sqlite3.Row) -> CheckRow:
    values = dict(row)
    values["facts"] = _loads(values["facts"], None)
    values["missing"] = _loads(values["missing"], [])
    return CheckRow(**values)


def object_detail(info: ObjectInfo) -> dict[str, Any]:
    """What completeness needs besides the UIDs: a dose's summation and beams, a plan's
    treatment beams."""
    if info.dose is not None:
        return {"summation": info.dose.summation, "beams": list(info.dose.beams)}
    if info.plan is not None:
        return {"treatment_beams": list(info.plan.treatment_beams)}
    return {}


class Index:
    """The SQLite index of one store (``STORE/.rtcheck/index.sqlite3``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                   timeout=30.0)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``), rolled back on error."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._db.execute(sql, args))

    # ------------------------------------------------------------------ objects

    def add_object(self, db: sqlite3.Connection, info: ObjectInfo, path: str, sha256: str,
                   calling_ae: str | None, at: float, primary: bool) -> int:
        """Insert a stored file (inside :meth:`transaction`); returns its row id. A path
        already indexed (the same object received twice at once, on two associations) is
        left as it is: the file is on disk either way."""
        cur = db.execute(
            'INSERT OR IGNORE INTO objects (uid, sop_class, kind, patient_id, patient_name, study_uid, '
            'referenced_uid, detail, calling_ae, received_at, path, sha256, "primary") '
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (info.uid, info.sop_class, info.kind, info.patient_id, info.patient_name,
             info.study_uid, info.referenced_uid, json.dumps(object_detail(info)), calling_ae,
             at, path, sha256, int(primary)))
        return int(cur.lastrowid or 0)

    def has_path(self, path: str) -> bool:
        return bool(self._query("SELECT 1 FROM objects WHERE path = ?", (path,)))

    def objects(self) -> list[ObjectRow]:
        return [_object(r) for r in self._query("SELECT * FROM objects ORDER BY id")]

    def mark_vanished(self, ids: Iterable[int]) -> None:
        with self.transaction() as db:
            db.executemany("UPDATE objects SET state = 'vanished' WHERE id = ?",
                           [(i,) for i in ids])

    def parts(self, plan_uid: str, structure_set_uid: str | None) -> list[ObjectRow]:
        """The stored, primary objects that belong to a plan: the plan, its doses and
        records, its structure set."""
        rows = self._query(
            "SELECT * FROM objects WHERE state = 'stored' AND \"primary\" = 1 AND "
            "((uid = ? AND kind = 'RTPLAN') OR (referenced_uid = ? AND kind IN "
            "('RTDOSE', 'RTRECORD')) OR (uid = ? AND kind = 'RTSTRUCT')) ORDER BY id",
            (plan_uid, plan_uid, structure_set_uid or ""))
        return [_object(r) for r in rows]

    # ------------------------------------------------------------------ plans

    def upsert_plan(self, db: sqlite3.Connection, info: ObjectInfo, key: str,
                    calling_ae: str | None, at: float) -> None:
        """Create or refresh the plan row of a received RTPLAN (inside a transaction)."""
        p = info.plan
        assert p is not None
        db.execute(
            "INSERT INTO plans (uid, key, patient_id, patient_name, study_uid, label, "
            "plan_date, fractions, dose_gy, structure_set_uid, calling_ae, received_at, "
            "last_received) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(uid) DO UPDATE SET "
            "calling_ae = excluded.calling_ae, received_at = excluded.received_at",
            (info.uid, key, info.patient_id, info.patient_name, info.study_uid, p.label, p.date,
             p.fractions, p.prescription_gy, p.structure_set_uid, calling_ae, at, at))

    def plans_for_object(self, db: sqlite3.Connection, info: ObjectInfo) -> list[str]:
        """The plans an object belongs to: itself, the plan a dose or record names, the plans
        that name a structure set."""
        if info.kind == "RTPLAN":
            return [info.uid]
        if info.kind == "RTSTRUCT":
            return [r[0] for r in db.execute(
                "SELECT uid FROM plans WHERE structure_set_uid = ?", (info.uid,))]
        if info.referenced_uid:
            return [r[0] for r in db.execute("SELECT uid FROM plans WHERE uid = ?",
                                             (info.referenced_uid,))]
        return []

    def touch(self, db: sqlite3.Connection, plan_uid: str, at: float, due_at: float,
              missing: list[str]) -> None:
        """A part of the plan arrived: it waits again, due at ``due_at``."""
        db.execute("UPDATE plans SET last_received = ?, revision = revision + 1, due_at = ?, "
                   "status = CASE WHEN status = 'checking' THEN status ELSE 'waiting' END, "
                   "missing = ? WHERE uid = ?", (at, due_at, json.dumps(missing), plan_uid))

    def set_due(self, plan_uid: str, due_at: float, missing: list[str] | None = None) -> None:
        with self.transaction() as db:
            db.execute("UPDATE plans SET due_at = ?, missing = COALESCE(?, missing), "
                       "status = CASE WHEN status = 'checking' THEN status ELSE 'waiting' END "
                       "WHERE uid = ?",
                       (due_at, None if missing is None else json.dumps(missing), plan_uid))

    def add_note(self, db: sqlite3.Connection, plan_uid: str, note: str) -> None:
        row = db.execute("SELECT notes FROM plans WHERE uid = ?", (plan_uid,)).fetchone()
        if row is not None:
            notes = [*_loads(row[0], []), note][-20:]
            db.execute("UPDATE plans SET notes = ? WHERE uid = ?", (json.dumps(notes), plan_uid))

    def due_plans(self, now: float) -> list[str]:
        return [r[0] for r in self._query(
            "SELECT uid FROM plans WHERE due_at IS NOT NULL AND due_at <= ? AND "
            "status != 'checking' ORDER BY due_at", (now,))]

    def plan(self, uid_or_key: str) -> PlanRow | None:
        rows = self._query("SELECT * FROM plans WHERE uid = ? OR key = ?",
                           (uid_or_key, uid_or_key))
        return _plan(rows[0]) if rows else None

    def plans(self) -> list[PlanRow]:
        """Newest first (the time its RTPLAN last arrived)."""
        return [_plan(r) for r in self._query(
            "SELECT * FROM plans ORDER BY received_at DESC, uid")]

    def set_facts(self, plan_uid: str, facts: dict[str, str]) -> None:
        with self.transaction() as db:
            db.execute("UPDATE plans SET facts = ? WHERE uid = ?", (json.dumps(facts), plan_uid))

    # ------------------------------------------------------------------ checks

    def start_check(self, plan_uid: str, trigger: str, facts: dict[str, str] | None,
                    missing: list[str], at: float) -> int:
        """Record a check that starts now; the plan is ``checking``, no longer due."""
        with self.transaction() as db:
            revision = db.execute("SELECT revision FROM plans WHERE uid = ?",
                                  (plan_uid,)).fetchone()
            cur = db.execute(
                "INSERT INTO checks (plan_uid, revision, requested_at, started_at, trigger, "
                "facts, missing) VALUES (?,?,?,?,?,?,?)",
                (plan_uid, revision[0] if revision else None, at, at, trigger,
                 json.dumps(facts) if facts is not None else None, json.dumps(missing)))
            db.execute("UPDATE plans SET status = 'checking', due_at = NULL WHERE uid = ?",
                       (plan_uid,))
            return int(cur.lastrowid or 0)

    def finish_check(self, check_id: int, *, verdict: str | None, result: str | None,
                     error: str | None, seconds: float, at: float) -> None:
        """Record a check's outcome; the plan is ``checked`` (or ``error``), unless a part
        arrived meanwhile (then it waits to be checked again, its due time already set)."""
        status = "error" if error else "done"
        with self.transaction() as db:
            db.execute("UPDATE checks SET finished_at = ?, status = ?, verdict = ?, result = ?, "
                       "error = ?, seconds = ? WHERE id = ?",
                       (at, status, verdict, result, error, seconds, check_id))
            row = db.execute("SELECT plan_uid, revision FROM checks WHERE id = ?",
                             (check_id,)).fetchone()
            plan_status = ERROR if error else CHECKED
            db.execute("UPDATE plans SET verdict = ?, message = ?, checked_at = ?, status = "
                       "CASE WHEN due_at IS NOT NULL THEN 'waiting' ELSE ? END WHERE uid = ?",
                       (verdict, error, at, plan_status, row["plan_uid"]))

    def set_report(self, check_id: int, path: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE checks SET report_path = ? WHERE id = ?", (path, check_id))

    def checks(self, plan_uid: str) -> list[CheckRow]:
        """The plan's checks, newest first."""
        return [_check(r) for r in self._query(
            "SELECT * FROM checks WHERE plan_uid = ? ORDER BY id DESC", (plan_uid,))]

    def interrupted(self, at: float) -> list[str]:
        """At start-up: checks a killed node left running are marked ``interrupted`` and
        their plans are due again now. Returns those plans."""
        with self.transaction() as db:
            plans = [r[0] for r in db.execute(
                "SELECT uid FROM plans WHERE status = 'checking' OR (status = 'waiting' AND "
                "due_at IS NOT NULL)")]
            db.execute("UPDATE checks SET status = 'interrupted', finished_at = ?, error = "
                       "'the node stopped during this check; it was run again' "
                       "WHERE status = 'running'", (at,))
            db.execute("UPDATE plans SET status = 'waiting', due_at = MIN(COALESCE(due_at, ?), ?) "
                       "WHERE status = 'checking'", (at, at))
        return plans

    # ------------------------------------------------------------------ events

    def add_event(self, level: str, message: str, calling_ae: str | None = None,
                  uid: str | None = None, at: float = 0.0,
                  db: sqlite3.Connection | None = None) -> None:
        """Record what the node refused or noticed (``level``: ``warning`` or ``error``)."""
        args = (at, level, calling_ae, uid, message)
        sql = "INSERT INTO events (at, level, calling_ae, uid, message) VALUES (?,?,?,?,?)"
        if db is not None:
            db.execute(sql, args)
            return
        with self.transaction() as own:
            own.execute(sql, args)

    def events(self, limit: int = 100) -> list[EventRow]:
        return [EventRow(**dict(r)) for r in self._query(
            "SELECT * FROM events ORDER BY id DESC LIMIT ?", (limit,))]
