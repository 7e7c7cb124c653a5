"""The review page's context: what the list page (``templates/plans.html``) shows beyond
the API's list items, and the choices of its facts form.

For each plan: the facts in force (the ``--facts`` file's row overlaid with what was posted)
in words, the facts its latest check waited for (the rules listed as ``fact_missing``), the
other plans of the same patient (offered as the prior course), and its pseudonymous patient
group (so that the page can offer only the same patient's plans without showing an ID).
For the form: the indications of the node's protocols, the sites, the techniques.

The form posts to the JSON API (``POST /api/plans/{id}/check``), so the page needs no
route of its own; the template's script waits for the new check and reloads the list.
With ``--deidentify`` nothing here holds a patient name or ID: plans are named by their
label, date and pseudonymous id, patients by a group number.
"""

from __future__ import annotations

import datetime as _dt
from collections import Counter
from typing import TYPE_CHECKING, Any

from rtcheck.serve.facts import PRIOR_PLAN

if TYPE_CHECKING:  # pragma: no cover - typing only
    from rtcheck.serve.app import Views
    from rtcheck.serve.index import PlanRow
    from rtcheck.serve.node import Node

#: Verdict levels in the order the summary line lists them (worst first), as the report.
VERDICTS = ("FAIL", "NOT_EVALUATED", "REVIEW", "PASS")
#: Plan statuses in words (the index's values: rtcheck.serve.index).
STATUS_WORDS = {"waiting": "waiting for parts", "checking": "checking", "checked": "checked",
                "error": "error"}
#: Facts-file columns shown, and their names on the page.
FACT_LABELS = {"indication": "indication", "site": "site", "vertebral_level": "level",
               "technique": "technique", "prior_summary": "prior", "interval_months":
               "interval (months)", "date": "date"}


def page_extras(views: Views, node: Node, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Complete the API's list ``items`` (one per plan, newest first, as ``GET /api/plans``
    gives them) for the page, and return the form's choices.

    Each item gains ``facts`` (column -> value in force), ``facts_text`` (one line),
    ``needs`` (facts the latest check waited for), ``group`` (the patient, as ``patient-N``)
    and ``status_text``; the returned context holds ``indications``, ``sites``,
    ``techniques``, ``counts`` (plans by verdict) and ``verdict_order``.
    """
    rows = node.index.plans()
    by_id = {views.plan_id(row): row for row in rows}  # by id: a plan may arrive meanwhile
    groups: dict[str, str] = {}
    labels = {row.uid: _plan_name(row) for row in rows}
    for item in items:
        row = by_id.get(item["id"])
        if row is None:  # removed meanwhile: shown without facts
            item.update({"group": "", "facts": {}, "prior_plan": "", "facts_text": "",
                         "needs": [], "status_text": item.get("status") or "",
                         "name": item.get("plan_label") or ""})
            continue
        facts = node.facts_for(row)
        group = groups.setdefault(row.patient_id or f"unknown-{row.uid}",
                                  f"patient-{len(groups) + 1}")
        prior_uid = facts.get(PRIOR_PLAN)
        shown = {k: v for k, v in facts.items() if k in FACT_LABELS and v}
        if prior_uid:
            shown["prior_summary"] = labels.get(prior_uid, "another plan of the store")
        item.update({
            "group": group,
            "facts": {k: facts.get(k) or "" for k in FACT_LABELS},
            "prior_plan": views.plan_id(p) if prior_uid and (p := node.index.plan(prior_uid))
            else "",
            "facts_text": ", ".join(f"{FACT_LABELS[k]} {v}" for k, v in shown.items()),
            "needs": _needs(node, row),
            "status_text": STATUS_WORDS.get(row.status, row.status),
            "name": labels[row.uid],
            "received": _when(row.received_at),
        })
    counts = Counter(item.get("verdict") or "none" for item in items)
    return {"indications": _indications(node), "sites": _sites(),
            "techniques": ("sbrt", "conventional"), "counts": counts,
            "verdict_order": VERDICTS}


def _when(seconds: float | None) -> str:
    """``2026-03-05 14:02:11 UTC``: a time a person reads (the API gives ISO 8601)."""
    if seconds is None:
        return "—"
    moment = _dt.datetime.fromtimestamp(seconds, _dt.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _plan_name(row: PlanRow) -> str:
    """A plan as the prior-course choice names it: label, date (never a patient's name)."""
    parts = [row.label or "(no label)", row.plan_date or "", f"{row.fractions or '?'} fx"]
    return " · ".join(p for p in parts if p)


def _needs(node: Node, row: PlanRow) -> list[str]:
    """The facts the plan's latest finished check waited for (``fact_missing``)."""
    from rtcheck.serve.node import result_of

    latest = next((c for c in node.index.checks(row.uid) if c.result is not None), None)
    doc = result_of(latest.result) if latest is not None else None
    if not isinstance(doc, dict):
        return []
    needs = {str(s.get("needs")) for s in doc.get("skipped") or []
             if s.get("code") == "fact_missing" and s.get("needs")}
    needs |= {str(f.get("missing")) for f in doc.get("findings") or []
              if f.get("code") == "fact_missing" and f.get("missing")}
    return sorted(needs)


def _indications(node: Node) -> list[str]:
    """The indications of the node's protocols (their fractionation rows), in file order."""
    from rtcheck.batch import load_protocols
    from rtcheck.errors import RTCheckError

    try:
        protocols = load_protocols(node.config.protocols)
    except RTCheckError:  # the node validated them at start; never break the page
        return []
    seen: dict[str, None] = {}
    for protocol in protocols:
        for indication in protocol.indications():
            seen.setdefault(indication, None)
    return list(seen)


def _sites() -> tuple[str, ...]:
    from rtcheck.rules.protocols import SITES

    return tuple(SITES)
