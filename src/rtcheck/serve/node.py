"""The node: receiving objects, knowing when a plan is complete, checking it, and starting
again after a crash with nothing lost.

An object is acknowledged (C-STORE success) only once it is in the store (synced) and in the
index (committed). A plan is due to be checked when its parts are there (its RTPLAN, a dose
-- every treatment beam's for BEAM doses -- and the structure set it references), as soon as
the association that brought the last part ends (or :data:`COMPLETE_QUIET` seconds after it
arrived), or, with parts missing, after ``settle`` seconds without anything new for it: it
is then checked with what arrived, the missing parts named and their rules NOT_EVALUATED (as
``rtcheck check`` does on an incomplete folder). Any new part makes the plan due again; an
RTPLAN sent again is checked again. Every check is kept in the index's history.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtcheck.serve import ServeError
from rtcheck.serve.checks import CheckJob, CheckOutcome, CheckQueue
from rtcheck.serve.facts import PRIOR_PLAN, merged
from rtcheck.serve.index import Index, ObjectRow, PlanRow
from rtcheck.serve.objects import (
    STATUS_OUT_OF_RESOURCES,
    STATUS_SUCCESS,
    BadObject,
    ObjectInfo,
    check_content,
    describe_dataset,
)
from rtcheck.serve.store import STATE_DIR, Store

log = logging.getLogger("rtcheck.serve")

#: A complete plan is checked this long after its last part if its association has not
#: ended by then (a sender may keep one association open for a whole day's exports).
COMPLETE_QUIET = 2.0
#: How often the node looks for plans that are due.
POLL_SECONDS = 0.1
_BEAM_SUMMATIONS = ("BEAM", "BEAM_SESSION")


@dataclass(frozen=True)
class NodeConfig:
    """What ``rtcheck serve`` was given (see its ``--help``)."""

    store: Path
    ae_title: str = "RTCHECK"
    dicom_host: str = "0.0.0.0"
    dicom_port: int = 11112
    allow: tuple[str, ...] = ()
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    token: str | None = None
    protocols: tuple[str, ...] = ()
    facts_file: str | None = None
    settle: float = 60.0
    deidentify: bool = False
    tls_cert: str | None = None
    tls_key: str | None = None
    check_timeout: float | None = 600.0


def missing_parts(plan: PlanRow | None, parts: list[ObjectRow]) -> list[str]:
    """What a complete plan would have and this one lacks: ``RTPLAN``, ``RTSTRUCT``,
    ``RTDOSE``, or ``RTDOSE of beam(s) 3, 4`` when BEAM doses do not cover every treatment
    beam."""
    kinds = {p.kind for p in parts}
    missing = [] if "RTPLAN" in kinds else ["RTPLAN"]
    if "RTSTRUCT" not in kinds:
        missing.append("RTSTRUCT")
    doses = [p for p in parts if p.kind == "RTDOSE"]
    if not doses:
        missing.append("RTDOSE")
    elif all(d.detail.get("summation") in _BEAM_SUMMATIONS for d in doses):
        plan_part = next((p for p in parts if p.kind == "RTPLAN"), None)
        needed = set(plan_part.detail.get("treatment_beams", [])) if plan_part else set()
        have = {b for d in doses for b in d.detail.get("beams", [])}
        if needed - have:
            missing.append("RTDOSE of beam(s) " + ", ".join(map(str, sorted(needed - have))))
    return missing


@dataclass
class _Associations:
    """Plans each open association has touched, to check complete ones when it ends."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    touched: dict[int, set[str]] = field(default_factory=dict)

    def add(self, assoc: int, plans: list[str]) -> None:
        with self.lock:
            self.touched.setdefault(assoc, set()).update(plans)

    def pop(self, assoc: int) -> set[str]:
        with self.lock:
            return self.touched.pop(assoc, set())


class Node:
    """Store, index, check queue and the due-plan poller of one ``rtcheck serve``."""

    def __init__(self, config: NodeConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.store = Store(config.store)
        try:
            self.store.prepare()
        except OSError as exc:
            raise ServeError(f"{config.store}: the store cannot be written "
                             f"({exc.strerror or exc})") from exc
        self.index = Index(self.store.state / "index.sqlite3")
        self.facts_table: Any = self._load_facts()
        self.queue = CheckQueue(self._on_checked, self._on_report, config.check_timeout)
        self._associations = _Associations()
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="rtcheck-serve-due",
                                        daemon=True)

    # ------------------------------------------------------------------ life cycle

    def _load_facts(self) -> Any:
        if not self.config.facts_file:
            return None
        from rtcheck.batch import load_facts, validate_facts
        from rtcheck.errors import RTCheckError

        try:
            table = load_facts(self.config.facts_file)
            validate_facts(table, self.config.protocols)
        except RTCheckError as exc:
            raise ServeError(str(exc)) from exc
        return table

    def start(self) -> dict[str, int]:
        """Reconcile the index with the store, start the check queue and the poller.
        Returns what reconciliation did (for the start-up line)."""
        summary = self.reconcile()
        self.queue.start()
        self._poller.start()
        return summary

    def stop(self) -> None:
        self._stop.set()
        if self._poller.is_alive():
            self._poller.join(5)
        self.queue.stop()
        self.index.close()

    def reconcile(self) -> dict[str, int]:
        """Make the index agree with the store after any stop, a kill -9 included.

        Temporary files (objects never acknowledged) are removed; indexed files that are gone
        are marked ``vanished`` (their plans are checked again without them); files of the
        store that the index lacks (written, then killed before the commit: never
        acknowledged, but whole) are indexed; checks that were running are run again.
        """
        now = self.clock()
        removed = self.store.remove_temporaries()
        rows = self.index.objects()
        known = {r.path for r in rows}
        gone = [r for r in rows if r.state == "stored"
                and not self.store.absolute(r.path).is_file()]
        if gone:
            self.index.mark_vanished(r.id for r in gone)
            for r in gone:
                self.index.add_event("warning", f"{r.kind} {r.uid}: its file {r.path} is no "
                                     "longer in the store (marked vanished)", r.calling_ae,
                                     r.uid, now)
        added = 0
        for path in self.store.files():
            if self.store.relative(path) not in known:
                added += self._index_found(path, now)
        touched = {p for r in gone for p in self._plans_of_row(r)}
        for uid in touched:
            self.refresh(uid, now)
        rerun = self.index.interrupted(now)
        return {"temporary": removed, "vanished": len(gone), "indexed": added,
                "rerun": len(set(rerun) | touched)}

    def _plans_of_row(self, row: ObjectRow) -> list[str]:
        if row.kind == "RTPLAN":
            return [row.uid]
        if row.kind == "RTSTRUCT":
            return [p.uid for p in self.index.plans() if p.structure_set_uid == row.uid]
        return [row.referenced_uid] if row.referenced_uid else []

    def _index_found(self, path: Path, now: float) -> int:
        """Index a file found in the store but not in the index; 1 if indexed."""
        from pydicom import dcmread

        rel = self.store.relative(path)
        try:
            ds = dcmread(path)
            info = describe_dataset(ds, str(ds.get("SOPClassUID", "")))
        except Exception as exc:  # a file a person put there: reported, left in place
            self.index.add_event("warning", f"{rel}: found in the store at start-up but not "
                                 f"indexed: {exc}", at=now)
            return 0
        from rtcheck.report import file_sha256

        primary = ".conflict-" not in path.name
        self._record(info, rel, file_sha256(path), None, now, primary, "found at start-up")
        return 1

    # ------------------------------------------------------------------ receiving

    def receive(self, ds: Any, sop_class: str, data: bytes, calling_ae: str | None,
                assoc: int = 0) -> int:
        """Store and index one received object; returns the C-STORE status.

        Never raises: a refused object is an event naming it and the problem, and a
        failure status the sender sees (it keeps the object and may retry).
        """
        now = self.clock()
        try:
            info = describe_dataset(ds, sop_class)
            check_content(ds, info)
        except BadObject as exc:
            self.refused(f"{exc} (C-STORE status 0x{exc.status:04X})", calling_ae,
                         str(ds.get("SOPInstanceUID", "") or "") or None)
            return exc.status
        try:
            stored = self.store.write(data, info.uid, info.patient_id, info.study_uid)
            rel = self.store.relative(stored.path)
            plans = self._received(info, stored.outcome, rel, stored.sha256, calling_ae, now)
        except Exception as exc:  # disk full, database locked: the sender retries
            self.say(f"cannot store {info.describe()}: {type(exc).__name__}: {exc}")
            self.refused(f"{info.describe()}: cannot be stored ({exc}); C-STORE status "
                         f"0x{STATUS_OUT_OF_RESOURCES:04X}", calling_ae, info.uid)
            return STATUS_OUT_OF_RESOURCES
        self._associations.add(assoc, plans)
        return STATUS_SUCCESS

    def refused(self, message: str, calling_ae: str | None, uid: str | None = None,
                level: str = "error") -> None:
        """Record something the node refused (for the page and the API)."""
        self.say(f"{message} (from {calling_ae})")
        try:
            self.index.add_event(level, message, calling_ae, uid, self.clock())
        except Exception:  # the event is a courtesy: never let it break the association
            log.exception("cannot record the event")

    def say(self, message: str) -> None:
        """A line on standard error for the operator; with ``--deidentify`` without its
        details (they may name a patient: the page shows them de-identified)."""
        if self.config.deidentify:
            log.warning("an object was refused or a problem noticed: see the page's list")
        else:
            log.warning("%s", message)

    def _received(self, info: ObjectInfo, outcome: str, rel: str, sha256: str,
                  calling_ae: str | None, now: float) -> list[str]:
        """Index a stored object; returns the plans it touched."""
        if outcome == "duplicate" and self.index.has_path(rel):
            note = (f"{info.describe()}: a second, identical copy received; not stored again"
                    + ("; the plan is checked again" if info.kind == "RTPLAN" else ""))
            self.index.add_event("warning", note, calling_ae, info.uid, now)
            if info.kind == "RTPLAN":
                self.refresh(info.uid, now)
                return [info.uid]
            return []
        primary = ".conflict-" not in Path(rel).name  # a conflict copy stays one
        return self._record(info, rel, sha256, calling_ae, now, primary, None)

    def _record(self, info: ObjectInfo, rel: str, sha256: str, calling_ae: str | None,
                now: float, primary: bool, how: str | None) -> list[str]:
        """Insert an object and refresh the plans it belongs to, in one transaction."""
        from rtcheck.report import deidentified_key

        with self.index.transaction() as db:
            self.index.add_object(db, info, rel, sha256, calling_ae, now, primary)
            if how:
                self.index.add_event("warning", f"{info.describe()}: {rel} {how}", calling_ae,
                                     info.uid, now, db=db)
            if not primary:
                note = (f"{info.describe()}: a different object with this UID was already "
                        f"stored; the new one is kept aside as {rel} and not used")
                self.index.add_event("warning", note, calling_ae, info.uid, now, db=db)
            elif info.kind == "RTPLAN":
                self.index.upsert_plan(db, info, deidentified_key(info.uid), calling_ae, now)
            plans = self.index.plans_for_object(db, info)
            for uid in plans:
                if not primary:
                    self.index.add_note(db, uid, note)
                    continue
                self._touch(db, uid, now)
        return plans if primary else []

    def _touch(self, db: Any, plan_uid: str, now: float) -> None:
        plan = self.index.plan(plan_uid)
        parts = self.index.parts(plan_uid, plan.structure_set_uid if plan else None)
        missing = missing_parts(plan, parts)
        wait = COMPLETE_QUIET if not missing else self.config.settle
        self.index.touch(db, plan_uid, now, now + wait, missing)

    def refresh(self, plan_uid: str, now: float) -> None:
        """Make a plan due again (its parts changed, or it was sent again)."""
        with self.index.transaction() as db:
            self._touch(db, plan_uid, now)

    def association_ended(self, assoc: int) -> None:
        """The sender is done: its complete plans are checked now."""
        now = self.clock()
        for uid in self._associations.pop(assoc):
            plan = self.index.plan(uid)
            if plan is not None and plan.due_at is not None and not plan.missing:
                self.index.set_due(uid, now)

    # ------------------------------------------------------------------ checking

    def facts_for(self, plan: PlanRow) -> dict[str, str]:
        """The facts file's row for the plan (by plan UID, else patient ID), overlaid with
        the posted facts."""
        row = (self.facts_table.lookup(plan.uid, plan.patient_id)
               if self.facts_table is not None else None)
        return merged(row, plan.facts)

    def files_of(self, plan: PlanRow) -> tuple[list[str], list[str]]:
        """The plan's files in the store, and what it lacks."""
        parts = self.index.parts(plan.uid, plan.structure_set_uid)
        files = [str(self.store.absolute(p.path)) for p in parts]
        return files, missing_parts(plan, parts)

    def request_check(self, plan_uid: str, trigger: str) -> int | None:
        """Queue a check of the plan with its current parts and facts; returns the check id
        (None when the plan is unknown)."""
        plan = self.index.plan(plan_uid)
        if plan is None:
            return None
        files, missing = self.files_of(plan)
        facts = self.facts_for(plan)
        priors: list[tuple[str, ...]] = []
        prior_uid = facts.get(PRIOR_PLAN)
        if prior_uid:
            prior = self.index.plan(prior_uid)
            if prior is not None:
                priors.append(tuple(self.files_of(prior)[0]))
        check_id = self.index.start_check(plan.uid, trigger, facts, missing, self.clock())
        report = self.store.state / "reports" / f"check-{check_id}.html"
        self.queue.submit(CheckJob(check_id, plan.uid, tuple(files), facts, tuple(priors),
                                   self.config.protocols, self.config.deidentify, str(report)))
        return check_id

    def _poll(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                for uid in self.index.due_plans(self.clock()):
                    plan = self.index.plan(uid)
                    trigger = "settled" if plan is not None and plan.missing else "complete"
                    self.request_check(uid, trigger)
            except Exception:  # a poller that dies would check nothing again: keep it
                log.exception("looking for due plans failed")

    def _on_checked(self, job: CheckJob, outcome: CheckOutcome) -> None:
        try:
            self.index.finish_check(job.check_id, verdict=outcome.verdict,
                                    result=outcome.result, error=outcome.error,
                                    seconds=round(outcome.seconds, 3), at=self.clock())
        except Exception:
            log.exception("cannot record check %s", job.check_id)

    def _on_report(self, job: CheckJob, error: str | None) -> None:
        try:
            if error is None:
                self.index.set_report(job.check_id, self.store.relative(Path(job.report_path)))
            else:
                self.index.add_event("error", error, uid=job.plan_uid, at=self.clock())
        except Exception:
            log.exception("cannot record the report of check %s", job.check_id)


def result_of(text: str | None) -> dict[str, Any] | None:
    """A stored check result (JSON text) as a document."""
    return None if text is None else json.loads(text)


__all__ = ["COMPLETE_QUIET", "Node", "NodeConfig", "STATE_DIR", "missing_parts", "result_of"]
