"""The operator console at ``/console``: server-rendered HTML (Jinja2 templates, no build step).

Runs with status and outcome filters, one run's state and audit trail, and the approvals queue
with approve / edit / reject. The operator logs in with an API key; it lives in an HttpOnly,
SameSite=Strict cookie, and every form carries a CSRF token derived from the key. The console goes
through the same tenant checks as the API: a key sees only its tenant's runs.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from supportdesk.errors import SupportdeskError
from supportdesk.models import CustomerTicketState, TicketStatus
from supportdesk.service._auth import COOKIE, Authenticator
from supportdesk.service._problems import ApiProblem
from supportdesk.service.keys import ApiKey

if TYPE_CHECKING:
    from supportdesk.service.app import ServiceContext

__all__ = ["mount_console"]

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_STATUSES = ("queued", "pending", "running", "completed", "failed", "needs_reconcile", "awaiting_approval", "rejected")
_HIDDEN_FIELDS = {"id", "original_query"}


def _csrf(token: str) -> str:
    return hmac.new(token.encode("utf-8"), b"supportdesk-console-csrf", hashlib.sha256).hexdigest()[:32]


def mount_console(app: FastAPI, ctx: ServiceContext) -> None:
    """Add the ``/console`` routes to ``app`` (excluded from the OpenAPI schema)."""

    def render(name: str, code: int = 200, **values: Any) -> HTMLResponse:
        values.setdefault("tenant", None)
        values.setdefault("waiting", None)
        values.setdefault("notice", None)
        values.setdefault("error", None)
        return HTMLResponse(_TEMPLATES.get_template(name).render(**values), status_code=code)

    async def operator(request: Request, scope: str = "runs:read") -> tuple[ApiKey, str] | Response:
        token = Authenticator.token_of(request, cookie=True)
        try:
            key = await asyncio.to_thread(ctx.auth.authenticate, request, scope, cookie=True)
        except ApiProblem as exc:
            if exc.status == 401:
                return RedirectResponse("/console/login", status_code=303)
            return render("login.html", code=exc.status, error=exc.detail)
        return key, token or ""

    def common(key: ApiKey, token: str, page: str) -> dict[str, Any]:
        waiting = len(ctx.approvals_for(key)) if key.allows("approvals:write") else None
        return {"tenant": key.tenant, "csrf": _csrf(token), "page": page, "waiting": waiting}

    @app.get("/console/login", include_in_schema=False)
    async def login_form() -> HTMLResponse:
        return render("login.html")

    @app.post("/console/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        token = (form.get("key") or [""])[0].strip()
        key = await asyncio.to_thread(ctx.keys.verify, token)
        if key is None:
            return render("login.html", code=401, error="That key is not valid (unknown, malformed or revoked).")
        if not key.allows("runs:read"):
            return render("login.html", code=403, error="That key lacks the 'runs:read' scope the console needs.")
        response = RedirectResponse("/console", status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
        return response

    @app.post("/console/logout", include_in_schema=False)
    async def logout() -> Response:
        response = RedirectResponse("/console/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.get("/console", include_in_schema=False)
    async def runs_page(request: Request, status: str = "", outcome: str = "", cursor: str = "") -> Response:
        who = await operator(request)
        if isinstance(who, Response):
            return who
        key, token = who
        from supportdesk.service._store import decode_cursor, encode_cursor

        def load() -> dict[str, Any]:
            after = decode_cursor(cursor) if cursor else None
            rows = ctx.store.list(key.tenant, status=status or None, limit=51, after=after)
            items = [ctx.resource(r) for r in rows[:50]]
            if outcome:
                items = [r for r in items if r.outcome == outcome]
            return {
                "runs": items,
                "next_cursor": encode_cursor(rows[49]) if len(rows) > 50 else None,
                **common(key, token, "runs"),
            }

        values = await asyncio.to_thread(load)
        return render(
            "runs.html", statuses=_STATUSES, outcomes=[s.value for s in TicketStatus], status=status, outcome=outcome, **values
        )

    @app.get("/console/runs/{run_id}", include_in_schema=False)
    async def run_page(request: Request, run_id: str) -> Response:
        who = await operator(request)
        if isinstance(who, Response):
            return who
        key, token = who

        def load() -> dict[str, Any]:
            record = ctx.owned(key, run_id)
            run = ctx.resource(record)
            try:
                audit = ctx.store.journal.audit(record.run_id)
            except SupportdeskError:
                audit = []
            fields = []
            if run.state is not None:
                fields = [(k, v) for k, v in run.state.model_dump(mode="json").items() if k not in _HIDDEN_FIELDS and v not in (None, [], {})]
                fields.insert(0, ("query", run.state.original_query))
            waiting = any(i["run_id"] == run.id for i in ctx.approvals_for(key)) if key.allows("approvals:write") else False
            return {"run": run, "audit": audit, "fields": fields, "run_waiting": waiting, **common(key, token, "runs")}

        try:
            values = await asyncio.to_thread(load)
        except ApiProblem as exc:
            return render("runs.html", code=exc.status, error=exc.detail, runs=[], statuses=_STATUSES,
                          outcomes=[], status="", outcome="", **common(key, token, "runs"))
        return render("run.html", **values)

    def approvals_values(key: ApiKey, token: str) -> dict[str, Any]:
        items = []
        for item in ctx.approvals_for(key):
            state = ctx.store.journal.load_model(f"{key.tenant}.{item['run_id']}", CustomerTicketState)
            extra = [(k, v) for k, v in item.items() if k not in ("run_id", "state") and isinstance(v, str | int | float) and v != ""]
            items.append({"run_id": item["run_id"], "state": state, "extra": extra[:8]})
        return {"items": items, **common(key, token, "approvals")}

    @app.get("/console/approvals", include_in_schema=False)
    async def approvals_page(request: Request, done: str = "") -> Response:
        who = await operator(request, "approvals:write")
        if isinstance(who, Response):
            return who
        key, token = who
        values = await asyncio.to_thread(approvals_values, key, token)
        return render("approvals.html", notice=done or None, **values)

    @app.post("/console/approvals/{run_id}", include_in_schema=False)
    async def decide(request: Request, run_id: str) -> Response:
        who = await operator(request, "approvals:write")
        if isinstance(who, Response):
            return who
        key, token = who
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        if not hmac.compare_digest(form.get("csrf", ""), _csrf(token)):
            return render("login.html", code=403, error="The form expired; log in again.")

        def apply() -> str:
            from supportdesk.service import _schemas as schemas
            from supportdesk.service.app import _decide

            record = ctx.owned(key, run_id)
            state = ctx.store.journal.load_model(record.run_id, CustomerTicketState)
            decision = form.get("decision", "")
            edits: dict[str, Any] = {}
            if decision == "approve" and state is not None:
                for name, current in (("title", state.ticket_title), ("priority", state.priority), ("category", state.category)):
                    value = form.get(name, "").strip()
                    if value and value != (current or ""):
                        edits[name] = value
            body = schemas.ApprovalDecision.model_validate(
                {"decision": decision, "edits": edits or None, "note": form.get("note", "").strip() or None}
            )
            _decide(ctx, key, run_id, body)
            return f"{'Approved' if decision == 'approve' else 'Rejected'} {run_id}" + (
                f" with edits to {', '.join(sorted(edits))}" if edits else ""
            )

        try:
            notice = await asyncio.to_thread(apply)
        except (ApiProblem, SupportdeskError, ValueError) as exc:
            message = exc.detail if isinstance(exc, ApiProblem) else str(exc).splitlines()[0]
            values = await asyncio.to_thread(approvals_values, key, token)
            return render("approvals.html", code=409 if isinstance(exc, ApiProblem) else 422, error=message, **values)
        return RedirectResponse(f"/console/approvals?done={quote(notice)}", status_code=303)
