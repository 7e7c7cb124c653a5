"""The HTTP side: a starlette application with the JSON API, the reports and a list page.

====================================  =====================================================
route                                 what it answers
====================================  =====================================================
``GET /``                             the list page (HTML, server-side, autoescaped)
``GET /api/plans``                    the plans, newest first (JSON list)
``GET /api/plans/{plan}``             one plan: the ``rtcheck check`` JSON of its latest
                                      check, plus ``status``, ``missing``, ``history``
``POST /api/plans/{plan}/check``      set facts (JSON object) and check again (202)
``POST /plans/{plan}/check``          the same from the page's form (urlencoded; 303 to ``/``)
``GET /plans/{plan}/report``          the HTML report of the plan's latest check
``GET /api/events``                   what the node refused or noticed, newest first
====================================  =====================================================

``{plan}`` is the plan's SOPInstanceUID or its pseudonym (``plan-<12 hex digits>``, the
``id`` the API gives with ``--deidentify``). With a token (``--token``, ``RTCHECK_TOKEN``),
every request must carry it: ``Authorization: Bearer TOKEN``, or ``?token=TOKEN`` once (a
browser then keeps it in an HttpOnly cookie).
"""

from __future__ import annotations

import datetime as _dt
import hmac
import json
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rtcheck.serve.facts import POSTED_KEYS, FactsError, merged, posted_facts, validate
from rtcheck.serve.index import CheckRow, EventRow, PlanRow
from rtcheck.serve.node import Node, result_of

TEMPLATES = Path(__file__).parent / "templates"
TOKEN_COOKIE = "rtcheck_token"
#: How many events the page and the API show.
EVENTS_SHOWN = 50


def _when(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return _dt.datetime.fromtimestamp(seconds, _dt.timezone.utc).isoformat(timespec="seconds")


class Views:
    """The documents the API and the page show, de-identified when the node is."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.deidentify = node.config.deidentify

    def _deid(self, plans: list[PlanRow]) -> Any:
        from rtcheck.report import Deidentifier

        terms = [t for p in plans for t in (p.patient_id, p.patient_name) if t]
        return Deidentifier(terms)

    def _clean(self, doc: Any, plans: list[PlanRow]) -> Any:
        return self._deid(plans).doc(doc) if self.deidentify else doc

    def plan_id(self, plan: PlanRow) -> str:
        return plan.key if self.deidentify else plan.uid

    def plan_item(self, plan: PlanRow) -> dict[str, Any]:
        """One row of ``GET /api/plans``."""
        item = {
            "id": self.plan_id(plan), "plan_uid": plan.uid,
            "patient": {"id": plan.patient_id, "name": plan.patient_name},
            "plan_label": plan.label, "date": plan.plan_date, "fractions": plan.fractions,
            "dose_gy": plan.dose_gy, "verdict": plan.verdict, "status": plan.status,
            "missing": plan.missing, "message": plan.message, "calling_ae": plan.calling_ae,
            "received_at": _when(plan.received_at), "checked_at": _when(plan.checked_at),
            "notes": plan.notes,
            "report": f"/plans/{self.plan_id(plan)}/report" if plan.checked_at else None,
        }
        return self._clean(item, [plan])

    def plans(self) -> list[dict[str, Any]]:
        return [self.plan_item(p) for p in self.node.index.plans()]

    def _history(self, check: CheckRow) -> dict[str, Any]:
        return {"check": check.id, "trigger": check.trigger, "status": check.status,
                "verdict": check.verdict, "error": check.error, "facts": check.facts,
                "missing": check.missing, "requested_at": _when(check.requested_at),
                "finished_at": _when(check.finished_at), "seconds": check.seconds,
                "report": check.report_path is not None}

    def plan_detail(self, plan: PlanRow) -> dict[str, Any]:
        """``GET /api/plans/{plan}``: the latest result, status, facts and history."""
        checks = self.node.index.checks(plan.uid)
        latest = next((c for c in checks if c.result is not None), None)
        doc = result_of(latest.result) if latest is not None else None
        if doc is None:  # not checked yet: the plan's identity, no verdict
            doc = self._clean({"plan": {"label": plan.label, "uid": plan.uid,
                                        "patient_id": plan.patient_id,
                                        "fractions": plan.fractions,
                                        "prescription_gy": plan.dose_gy,
                                        "date": plan.plan_date}, "verdict": None}, [plan])
        node_part = {
            "id": self.plan_id(plan), "status": plan.status, "missing": plan.missing,
            "message": plan.message, "calling_ae": plan.calling_ae,
            "received_at": _when(plan.received_at), "checked_at": _when(plan.checked_at),
            "facts_given": self.node.facts_for(plan), "notes": plan.notes,
            "history": [self._history(c) for c in checks],
            "report": f"/plans/{self.plan_id(plan)}/report" if latest else None,
        }
        # the check's own JSON was de-identified by the worker; the rest is done here
        return {**doc, **self._clean(node_part, [plan])}

    def events(self) -> list[dict[str, Any]]:
        rows: list[EventRow] = self.node.index.events(EVENTS_SHOWN)
        docs = [{"at": _when(e.at), "level": e.level, "calling_ae": e.calling_ae,
                 "uid": e.uid, "message": e.message} for e in rows]
        return self._clean(docs, self.node.index.plans()) if self.deidentify else docs


def _json(doc: Any, status: int = 200) -> Response:
    return JSONResponse(doc, status_code=status)


def _error(status: int, message: str) -> Response:
    return _json({"error": message}, status)


class TokenGate:
    """Every request carries the token (header, cookie, or ``?token=`` once), else 401."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    def _given(self, scope: Scope) -> tuple[str | None, bool]:
        request = Request(scope)
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return header[7:].strip(), False
        query = request.query_params.get("token")
        if query:
            return query, True
        return request.cookies.get(TOKEN_COOKIE), False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given, from_query = self._given(scope)
        if given is None or not hmac.compare_digest(given.encode(), self.token):
            await _error(401, "this node needs its access token (Authorization: Bearer "
                         "TOKEN)")(scope, receive, send)
            return
        if not from_query:
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                cookie = (f"{TOKEN_COOKIE}={given}; HttpOnly; SameSite=Strict; Path=/")
                message["headers"] = [*message.get("headers", []),
                                      (b"set-cookie", cookie.encode())]
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def create_app(node: Node) -> ASGIApp:
    """The ASGI application of a node."""
    import jinja2

    views = Views(node)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                             autoescape=jinja2.select_autoescape(default=True))

    def plan_or_404(request: Request) -> PlanRow | Response:
        plan = node.index.plan(request.path_params["plan"])
        return plan if plan is not None else _error(404, "no such plan in this node")

    def list_plans(request: Request) -> Response:
        return _json(views.plans())

    def get_plan(request: Request) -> Response:
        plan = plan_or_404(request)
        return plan if isinstance(plan, Response) else _json(views.plan_detail(plan))

    def recheck(plan: PlanRow, body: Any) -> str | None:
        """Store the posted facts and queue a check; why the facts were refused, or None."""
        try:
            given = posted_facts(body, lambda t: (p.uid if (p := node.index.plan(t)) else None))
            validate(merged(node.facts_for(plan), given), node.config.protocols)
        except FactsError as exc:
            return str(exc)
        node.index.set_facts(plan.uid, {**(plan.facts or {}), **given})  # "" removes a fact
        node.request_check(plan.uid, "requested")
        return None

    async def post_check(request: Request) -> Response:
        plan = plan_or_404(request)
        if isinstance(plan, Response):
            return plan
        # JSON only: a cross-site page cannot send it without a CORS preflight, which this
        # application never grants (a text/plain "simple request" is refused here)
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return _error(415, "send the facts as JSON (Content-Type: application/json)")
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError as exc:
            return _error(400, f"the body is not JSON ({exc})")
        refused = recheck(plan, body)
        if refused is not None:
            return _error(400, refused)
        latest = node.index.checks(plan.uid)[0]
        return _json({"id": views.plan_id(plan), "check": latest.id, "status": "checking"}, 202)

    async def post_form(request: Request) -> Response:
        """The page's facts form (urlencoded): same facts as the JSON API; an empty field
        removes the fact; back to the list page."""
        plan = plan_or_404(request)
        if isinstance(plan, Response):
            return plan
        origin = request.headers.get("origin")
        if origin and origin != f"{request.url.scheme}://{request.url.netloc}":
            return _error(403, "a form from another site cannot re-check plans")
        fields = parse_qs((await request.body()).decode("utf-8", "replace"),
                          keep_blank_values=True)
        body = {k: (v[-1].strip() or None) for k, v in fields.items() if k in POSTED_KEYS}
        refused = recheck(plan, body)
        if refused is not None:
            return HTMLResponse(f"<!DOCTYPE html><title>Facts refused</title><p>"
                                f"{escape(refused)}</p><p><a href=\"/\">Back to the "
                                "list</a></p>", status_code=400)
        return RedirectResponse("/", status_code=303)

    def report(request: Request) -> Response:
        plan = plan_or_404(request)
        if isinstance(plan, Response):
            return plan
        done = next((c for c in node.index.checks(plan.uid) if c.report_path), None)
        if done is None or done.report_path is None:
            return _error(404, "no report yet: the plan has not been checked")
        return FileResponse(node.store.absolute(done.report_path), media_type="text/html")

    def events(request: Request) -> Response:
        return _json(views.events())

    def page(request: Request) -> Response:
        from rtcheck import __version__
        from rtcheck.report import stylesheet
        from rtcheck.serve.page import page_extras

        plans = views.plans()
        for p in plans:
            patient = p.get("patient") or {}
            p["patient_label"] = (" ".join(v for v in (patient.get("name"), patient.get("id"))
                                           if v) or "—") if not views.deidentify else "[removed]"
            p["received"] = p.get("received_at")
        html = env.get_template("plans.html").render(
            plans=plans, events=views.events(), node=node.config, version=__version__,
            stylesheet=stylesheet(), **page_extras(views, node, plans))
        return HTMLResponse(html)

    app = Starlette(routes=[
        Route("/", page), Route("/api/plans", list_plans),
        Route("/api/plans/{plan}", get_plan),
        Route("/api/plans/{plan}/check", post_check, methods=["POST"]),
        Route("/plans/{plan}/check", post_form, methods=["POST"]),
        Route("/plans/{plan}/report", report), Route("/api/events", events),
    ])
    if node.config.token:
        return TokenGate(app, node.config.token)
    return app
