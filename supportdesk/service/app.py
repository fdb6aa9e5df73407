"""The FastAPI app behind ``supportdesk serve``: runs, events, approvals, tickets, health, metrics, console.

    from supportdesk.service.app import create_app
    from supportdesk.service.keys import KeyStore
    from supportdesk.settings import Settings

    settings = Settings()
    _, token = KeyStore.from_settings(settings).create("acme")
    app = create_app(settings, workers=4)                 # uvicorn.run(app, host="127.0.0.1", port=8000)
    # POST /v1/runs  {"query": "..."}  Authorization: Bearer <token>, Idempotency-Key: order-42

Every route under ``/v1`` needs a key (``Authorization: Bearer``); a key sees only its tenant's
runs, tickets, approvals and event streams (others answer 404). The run id the journal and the CLI
see is ``f"{tenant}.{idempotency_key}"``; the API shows the idempotency key alone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from supportdesk._query import validate_customer, validate_query, validate_run_id
from supportdesk.errors import (
    ApprovalError,
    CustomerNotFoundError,
    IdempotencyConflictError,
    InvalidQueryError,
    InvalidRunIdError,
    RunNotFoundError,
)
from supportdesk.models import CustomerTicketState
from supportdesk.service import _schemas as schemas
from supportdesk.service._auth import Authenticator, RateLimiter
from supportdesk.service._events import event_stream
from supportdesk.service._metrics import ServiceMetrics
from supportdesk.service._problems import PROBLEM_JSON, ApiProblem, install_problem_handlers, problem_response
from supportdesk.service._store import AdmittedRun, RunStore, decode_cursor, encode_cursor, fingerprint
from supportdesk.service.engine import Engine, InProcessEngine, build_engine
from supportdesk.service.keys import ApiKey, KeyStore
from supportdesk.settings import Settings

__all__ = ["ServiceContext", "create_app"]

logger = logging.getLogger(__name__)

_PROBLEM = {"model": schemas.Problem, "content": {PROBLEM_JSON: {}}}


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: _PROBLEM for code in codes}


class _BodyLimit:
    """Reads request bodies up front: over ``limit`` bytes answers 413 before the app sees anything."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_big = declared is not None and declared.isdigit() and int(declared) > self.limit
        chunks: list[bytes] = []
        size = 0
        more = not too_big
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                too_big = True
                break
            chunks.append(chunk)
            more = message.get("more_body", False)
        if too_big:
            response = problem_response(413, f"the request body is larger than {self.limit} bytes (SUPPORTDESK_MAX_BODY_BYTES)")
            await response(scope, receive, send)
            return
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


@dataclasses.dataclass
class ServiceContext:
    """What the routes share: settings, stores, engine, auth and metrics (``app.state.ctx``)."""

    settings: Settings
    store: RunStore
    keys: KeyStore
    engine: Engine
    auth: Authenticator
    metrics: ServiceMetrics
    owns_engine: bool

    def internal_id(self, key: ApiKey, external: str) -> str:
        """The journal's run id of a tenant's idempotency key (404 when it cannot be one)."""
        try:
            return validate_run_id(f"{key.tenant}.{external}")
        except InvalidRunIdError as exc:
            raise ApiProblem(404, f"no run {external!r}") from exc

    def external_id(self, key: ApiKey, run_id: str) -> str:
        return run_id.removeprefix(f"{key.tenant}.")

    def owned(self, key: ApiKey, external: str) -> AdmittedRun:
        """The tenant's admitted run, or 404 (another tenant's run is indistinguishable from none)."""
        record = self.store.get(self.internal_id(key, external))
        if record is None or record.tenant != key.tenant:
            raise ApiProblem(404, f"no run {external!r}")
        return record

    def resource(self, record: AdmittedRun) -> schemas.RunResource:
        """The API view of an admitted run (journal status and latest state)."""
        journal = self.store.journal
        external = record.key
        try:
            info = journal.get(record.run_id)
        except RunNotFoundError:
            info = None
        state = journal.load_model(record.run_id, CustomerTicketState) if info is not None else None
        return schemas.RunResource(
            id=external,
            status=info.status.value if info is not None else "queued",
            outcome=state.status.value if state is not None else None,
            final=info.is_final if info is not None else False,
            customer_id=record.customer_id,
            metadata={k: v for k, v in record.metadata.items() if k != "tenant"},
            reason=info.reason if info is not None else None,
            last_step=info.last_step if info is not None else None,
            attempts=info.attempts if info is not None else 0,
            created_at=record.created_at,
            updated_at=info.updated_at if info is not None else None,
            state=state,
            links={"self": f"/v1/runs/{external}", "events": f"/v1/runs/{external}/events"},
        )

    def approvals_for(self, key: ApiKey) -> list[dict[str, Any]]:
        """The tenant's runs waiting for approval, as JSON objects with the external ``run_id``."""
        prefix = f"{key.tenant}."
        services = self.engine.services() if isinstance(self.engine, InProcessEngine) else None
        return [
            {**item, "run_id": item["run_id"].removeprefix(prefix)}
            for item in _list_approvals(self.settings, services)
            if str(item.get("run_id", "")).startswith(prefix)
        ]


def _plain(obj: Any) -> dict[str, Any]:
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")  # type: ignore[no-any-return]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return dict(obj)


def _list_approvals(settings: Settings, services: Any = None) -> list[dict[str, Any]]:
    """The approval queue (which also applies expired waits' defaults, on this engine's services)."""
    from supportdesk import approvals

    return [_plain(item) for item in approvals.list_approvals(settings=settings, services=services)]


def _check_customer(ctx: ServiceContext, customer: str) -> None:
    """Raise :class:`CustomerNotFoundError` unless ``customer`` (id or e-mail) is in the customer directory
    the runs use (the engine's services' directory when it has one, else the configured one)."""
    from supportdesk.crews.tools.customer_db import CustomerDB, verify_customer

    services = getattr(ctx.engine, "_services", None)
    directory = getattr(services, "customers", None) or CustomerDB.from_settings(ctx.settings)
    verify_customer(directory, customer)


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    workers: int | None = None,
    services: Any = None,
    recover: bool = True,
) -> FastAPI:
    """Build the app.

    :param settings: default ``Settings()`` (the environment).
    :param engine: where runs execute; default :func:`~supportdesk.service.engine.build_engine`
        (``SUPPORTDESK_ENGINE``), closed with the app.
    :param workers: in-process engine pool size (default ``settings.service_workers``).
    :param services: prebuilt services for the in-process engine (tests pass scripted ones).
    :param recover: at start-up, hand runs that were accepted but never started (or whose executor
        died) back to the engine.
    """
    settings = settings or Settings()
    from supportdesk._runner import open_journal

    store = RunStore(open_journal(settings))
    keys = KeyStore(store.db)
    owns_engine = engine is None
    holder: dict[str, Engine] = {}
    metrics = ServiceMetrics(
        status_counts=store.status_counts,
        approvals_waiting=lambda: store.status_counts().get("awaiting_approval", 0),
        queue_depth=lambda: holder["engine"].queue_depth() if "engine" in holder else 0,
        audit=store.audit_after,
    )
    if engine is None:
        kwargs: dict[str, Any] = {"workers": workers or settings.service_workers}
        if (settings.engine or "inprocess").lower() in ("inprocess", "in-process", "embedded"):
            kwargs.update(services=services, on_done=metrics.observe_run)
        engine = build_engine(settings, **kwargs)
    elif isinstance(engine, InProcessEngine) and engine._on_done is None:
        engine._on_done = metrics.observe_run
    holder["engine"] = engine
    ctx = ServiceContext(
        settings=settings,
        store=store,
        keys=keys,
        engine=engine,
        auth=Authenticator(keys, RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)),
        metrics=metrics,
        owns_engine=owns_engine,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI):  # noqa: ANN202
        if isinstance(ctx.engine, InProcessEngine):
            ctx.engine.warm()  # /readyz answers 503 until the model is loaded
        if recover:
            await asyncio.to_thread(_recover, ctx)
        yield
        if ctx.owns_engine:
            await asyncio.to_thread(ctx.engine.close)

    app = FastAPI(
        title="supportdesk",
        version="1",
        summary="First-line customer support as a service: answers from the FAQ or files one ticket per run.",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    install_problem_handlers(app)
    app.add_middleware(_BodyLimit, limit=settings.max_body_bytes)

    @app.middleware("http")
    async def _count(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        ctx.metrics.requests.labels(request.method, name, str(response.status_code)).inc()
        ctx.metrics.request_seconds.labels(name).observe(time.perf_counter() - started)
        return response

    def need(scope: str) -> Callable[[Request], Awaitable[ApiKey]]:
        async def dependency(request: Request) -> ApiKey:
            return await asyncio.to_thread(ctx.auth.authenticate, request, scope)

        return dependency

    auth_problems = _problems(401, 403, 429)

    # --- runs -----------------------------------------------------------------------------

    @app.post(
        "/v1/runs",
        status_code=202,
        response_model=schemas.RunResource,
        responses={200: {"model": schemas.RunResource, "description": "Finished within ?wait"},
                   **auth_problems, **_problems(400, 409, 413, 422)},
        tags=["runs"],
    )
    async def create_run(
        body: schemas.RunCreate,
        request: Request,
        response: Response,
        key: ApiKey = Depends(need("runs:write")),
        idempotency_key: str | None = Header(
            default=None,
            alias="Idempotency-Key",
            description="Your id for this run (1-128 of A-Z a-z 0-9 . _ -); the same key with the same body is the same run.",
        ),
        wait: float | None = Query(
            default=None, ge=0, le=settings.max_wait_s, description="Seconds to wait for the final state (200 if it came)."
        ),
    ) -> Any:
        """Start a run (202 + Location), or return the same run again for the same key and body."""
        external = idempotency_key if idempotency_key is not None else uuid.uuid4().hex
        try:
            run_id = validate_run_id(f"{key.tenant}.{validate_run_id(external)}")
        except InvalidRunIdError as exc:
            raise ApiProblem(400, f"Idempotency-Key: {exc}") from exc
        record = await asyncio.to_thread(_admit, ctx, key, run_id, external, body)
        location = f"/v1/runs/{external}"
        response.headers["Location"] = location
        if wait:
            deadline = time.monotonic() + wait
            pause = 0.02
            while time.monotonic() < deadline:
                info = await asyncio.to_thread(_journal_final, ctx, run_id)
                if info:
                    break
                await asyncio.sleep(min(pause, max(0.0, deadline - time.monotonic())))
                pause = min(pause * 1.5, 0.25)
        resource = await asyncio.to_thread(ctx.resource, record)
        if wait and resource.final:
            return JSONResponse(resource.model_dump(mode="json"), status_code=200, headers={"Location": location})
        return resource

    @app.get("/v1/runs", response_model=schemas.RunList, responses=auth_problems, tags=["runs"])
    async def list_runs(
        key: ApiKey = Depends(need("runs:read")),
        status: str | None = Query(default=None, max_length=32, description="Only runs with this status."),
        limit: int = Query(default=50, ge=1, le=200),
        cursor: str | None = Query(default=None, max_length=400, description="next_cursor of the previous page."),
    ) -> schemas.RunList:
        """The tenant's runs, newest first."""
        after = None
        if cursor:
            after = decode_cursor(cursor)
            if after is None:
                raise ApiProblem(422, "cursor is not one this API returned")

        def page() -> schemas.RunList:
            rows = ctx.store.list(key.tenant, status=status, limit=limit + 1, after=after)
            items = [ctx.resource(r) for r in rows[:limit]]
            return schemas.RunList(items=items, next_cursor=encode_cursor(rows[limit - 1]) if len(rows) > limit else None)

        return await asyncio.to_thread(page)

    run_path = Path(description="The run's idempotency key.", max_length=128)

    @app.get("/v1/runs/{run_id}", response_model=schemas.RunResource, responses={**auth_problems, **_problems(404)},
             tags=["runs"])
    async def get_run(run_id: str = run_path, key: ApiKey = Depends(need("runs:read"))) -> schemas.RunResource:
        """One run: status and latest state."""
        return await asyncio.to_thread(lambda: ctx.resource(ctx.owned(key, run_id)))

    @app.post(
        "/v1/runs/{run_id}/resume",
        status_code=202,
        response_model=schemas.RunResource,
        responses={**auth_problems, **_problems(404, 409)},
        tags=["runs"],
    )
    async def resume(run_id: str = run_path, key: ApiKey = Depends(need("runs:write"))) -> schemas.RunResource:
        """Continue a crashed or parked run from its last completed step (a finished run stays as it is)."""

        def go() -> schemas.RunResource:
            record = ctx.owned(key, run_id)
            _kick(ctx, record)
            return ctx.resource(record)

        return await asyncio.to_thread(go)

    @app.get(
        "/v1/runs/{run_id}/events",
        responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"},
                   **auth_problems, **_problems(404)},
        tags=["runs"],
    )
    async def events(
        run_id: str = run_path,
        key: ApiKey = Depends(need("runs:read")),
        last_event_id: str | None = Header(default=None, alias="Last-Event-ID", max_length=20),
    ) -> StreamingResponse:
        """The run's audit trail as Server-Sent Events, from the start or after ``Last-Event-ID``."""
        record = await asyncio.to_thread(ctx.owned, key, run_id)
        after = int(last_event_id) if last_event_id and last_event_id.strip().isdigit() else 0

        def final_state() -> dict[str, Any] | None:
            state = ctx.store.journal.load_model(record.run_id, CustomerTicketState)
            return state.model_dump(mode="json") if state is not None else None

        def is_final() -> bool:
            try:
                return ctx.store.journal.get(record.run_id).is_final
            except RunNotFoundError:
                return False

        stream = event_stream(
            record.key, after, lambda seq: ctx.store.audit_after(record.run_id, seq), final_state, is_final
        )
        return StreamingResponse(
            stream, media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )

    # --- tickets and approvals ------------------------------------------------------------

    @app.get("/v1/tickets", response_model=schemas.TicketList, responses=auth_problems, tags=["tickets"])
    async def tickets(key: ApiKey = Depends(need("runs:read"))) -> schemas.TicketList:
        """Tickets filed by the tenant's runs."""

        def load() -> schemas.TicketList:
            from supportdesk.crews.tools.ticketing import build_ticket_backend

            prefix = f"{key.tenant}."
            items = []
            for row in build_ticket_backend(settings).list_tickets():
                idem = str(row.get("idempotency_key") or "")
                if idem.startswith(prefix):
                    fields = {k: v for k, v in row.items() if k != "idempotency_key"}
                    items.append(schemas.TicketItem(**fields, run_id=idem.removeprefix(prefix)))
            return schemas.TicketList(items=items)

        return await asyncio.to_thread(load)

    @app.get("/v1/approvals", response_model=schemas.ApprovalList, responses=auth_problems, tags=["approvals"])
    async def approvals(key: ApiKey = Depends(need("approvals:write"))) -> schemas.ApprovalList:
        """The tenant's runs waiting for a human decision."""
        items = await asyncio.to_thread(ctx.approvals_for, key)
        return schemas.ApprovalList(items=[schemas.ApprovalItem(**i) for i in items])

    @app.post(
        "/v1/approvals/{run_id}",
        status_code=202,
        response_model=schemas.RunResource,
        responses={200: {"model": schemas.RunResource, "description": "Decided within ?wait"},
                   **auth_problems, **_problems(400, 404, 409, 422)},
        tags=["approvals"],
    )
    async def decide(
        body: schemas.ApprovalDecision,
        run_id: str = run_path,
        key: ApiKey = Depends(need("approvals:write")),
        wait: float | None = Query(default=None, ge=0, le=settings.max_wait_s),
    ) -> Any:
        """Approve (optionally with edits) or reject a run waiting for approval."""
        record = await asyncio.to_thread(_decide, ctx, key, run_id, body)
        if wait:
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and not await asyncio.to_thread(_journal_final, ctx, record.run_id):
                await asyncio.sleep(0.05)
        resource = await asyncio.to_thread(ctx.resource, record)
        if wait and resource.final:
            return JSONResponse(resource.model_dump(mode="json"), status_code=200)
        return resource

    # --- operations -----------------------------------------------------------------------

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], responses={503: _PROBLEM})
    async def readyz() -> Any:
        """The database and the engine are reachable."""
        checks: dict[str, str] = {}
        try:
            await asyncio.to_thread(ctx.store.ping)
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            checks["database"] = f"unavailable: {type(exc).__name__}"
        try:
            checks["engine"] = "ok" if await asyncio.to_thread(ctx.engine.ready) else "unavailable"
        except Exception as exc:  # noqa: BLE001
            checks["engine"] = f"unavailable: {type(exc).__name__}"
        if all(v == "ok" for v in checks.values()):
            return {"status": "ready", "checks": checks}
        return problem_response(503, "not ready: " + ", ".join(f"{k} {v}" for k, v in checks.items() if v != "ok"),
                                extra={"checks": checks})

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    async def metrics_endpoint() -> Response:
        """Prometheus metrics."""
        body = await asyncio.to_thread(ctx.metrics.render)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    from supportdesk.service._console import mount_console

    mount_console(app, ctx)
    return app


# --- the work behind the routes (run in worker threads) -----------------------------------------


def _journal_final(ctx: ServiceContext, run_id: str) -> bool:
    try:
        return ctx.store.journal.get(run_id).is_final
    except RunNotFoundError:
        return False


def _admit(ctx: ServiceContext, key: ApiKey, run_id: str, external: str, body: schemas.RunCreate) -> AdmittedRun:
    """Validate, record the idempotency key, hand a new run to the engine; the same run for a replay."""
    from supportdesk._pii import mask_cards

    text = mask_cards(validate_query(body.query, max_chars=ctx.settings.max_query_chars))  # as the runner stores it
    try:
        customer = validate_customer(body.customer_id)
    except InvalidQueryError as exc:
        raise InvalidQueryError(str(exc).replace("--customer", "customer_id")) from exc
    fp = fingerprint(text, customer, body.metadata)
    existing = ctx.store.get(run_id)
    if existing is not None:
        if existing.fingerprint != fp:
            raise IdempotencyConflictError(external)
        _kick(ctx, existing)
        return existing
    try:  # a run started elsewhere (CLI, Python API) under the same id must have the same payload
        ctx.store.journal.check_payload(run_id, text, customer)
    except IdempotencyConflictError as exc:
        raise IdempotencyConflictError(external) from exc
    if customer is not None:
        try:
            _check_customer(ctx, customer)
        except CustomerNotFoundError as exc:
            raise CustomerNotFoundError(f"customer_id {customer!r} is not a known customer") from exc
    record, created = ctx.store.admit(run_id, key.tenant, external, fp, text, customer, {**body.metadata, "tenant": key.tenant})
    if not created and record.fingerprint != fp:  # a concurrent request with the same key won the insert
        raise IdempotencyConflictError(external)
    if created:
        ctx.metrics.admitted.labels(key.tenant).inc()
    ctx.engine.submit(run_id, text, customer, record.metadata)
    return record


def _kick(ctx: ServiceContext, record: AdmittedRun) -> None:
    """Make sure an unfinished run is executing: submit it when the journal never saw it, else resume."""
    try:
        info = ctx.store.journal.get(record.run_id)
    except RunNotFoundError:
        ctx.engine.submit(record.run_id, record.query, record.customer_id, record.metadata)
        return
    if info.is_final or (info.status.value == "running" and (info.lease_expires or 0) >= time.time()):
        return
    if info.status.value in ("pending", "running", "needs_reconcile"):
        ctx.engine.resume(record.run_id)


def _recover(ctx: ServiceContext) -> None:
    """Start-up: runs accepted but never started, and admitted runs whose executor died, go to the engine."""
    try:
        for record in ctx.store.unstarted():
            logger.info("recovering accepted run %s", record.run_id)
            ctx.engine.submit(record.run_id, record.query, record.customer_id, record.metadata)
        for info in ctx.store.journal.list_resumable(limit=1000):
            if info.status.value in ("pending", "running") and ctx.store.get(info.run_id) is not None:
                logger.info("resuming interrupted run %s", info.run_id)
                ctx.engine.resume(info.run_id)
    except Exception:
        logger.warning("start-up recovery failed; runs stay resumable", exc_info=True)


def _decide(ctx: ServiceContext, key: ApiKey, external: str, body: schemas.ApprovalDecision) -> AdmittedRun:
    """Journal the decision (first decision wins; 409 when the run does not wait), then let the engine apply it."""
    from supportdesk import approvals

    record = ctx.owned(key, external)
    edits = body.edits.changes() if body.edits is not None else None
    if body.decision == "reject" and edits:
        raise ApiProblem(422, "edits only apply to approve")
    if body.decision == "reject" and not (body.note or "").strip():
        raise ApiProblem(422, "a rejection needs a note saying why")
    actor = f"tenant:{key.tenant} key:{key.key_id}"
    try:
        approvals.record_decision(record.run_id, body.decision, edits=edits, note=body.note, actor=actor, settings=ctx.settings)
    except RunNotFoundError as exc:  # admitted but never started: nothing waits
        raise ApiProblem(409, f"run {external!r} is not waiting for approval") from exc
    except ApprovalError as exc:
        raise ApiProblem(409, str(exc).replace(record.run_id, external)) from exc
    ctx.engine.decide(record.run_id, body.decision, edits or None, body.note, actor)
    return record
