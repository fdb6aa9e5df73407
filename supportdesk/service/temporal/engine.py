"""TemporalEngine: the service's :class:`~supportdesk.service.engine.Engine` on a Temporal cluster.

One workflow per run, id ``supportdesk-run-<run_id>`` (the service's run ids are
``f"{tenant}.{key}"``, so the id carries the tenant). Submissions use the conflict policy
``USE_EXISTING`` (a duplicate while the run is open attaches to it) and the reuse policy
``ALLOW_DUPLICATE_FAILED_ONLY`` (a run whose workflow completed is never started again; one whose
workflow failed or was terminated may be). Even a second workflow could not execute a run twice:
the journal returns a finished run's result and fences a running one with its lease.

    engine = TemporalEngine(Settings(engine="temporal"))
    engine.submit("acme.order-42", "I was charged twice", "C-1001", {"tenant": "acme"})
    engine.decide("acme.order-42", "approve", {"priority": "high"}, None, "tenant:acme key:k1")
    engine.wait_result("acme.order-42", timeout_s=30)       # the final CustomerTicketState, or None
    engine.close()

The methods are synchronous (the protocol's); the async client lives on a private event loop thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from supportdesk.errors import SupportdeskError
from supportdesk.service.temporal._types import WORKFLOW_NAME, RunRequest, RunSummary, workflow_id
from supportdesk.settings import Settings

if TYPE_CHECKING:
    from supportdesk.models import CustomerTicketState

__all__ = ["TemporalEngine"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class TemporalEngine:
    """Runs as Temporal workflows, executed by ``supportdesk worker`` processes.

    :param settings: ``temporal_address``, ``temporal_namespace``, ``temporal_task_queue``; the
        activity timeouts sent with each run come from the budgets and worker settings.
    :param rpc_timeout_s: longest wait for one call to the Temporal server.
    """

    def __init__(self, settings: Settings | None = None, *, rpc_timeout_s: float = 15.0) -> None:
        self.settings = settings or Settings()
        self.rpc_timeout_s = rpc_timeout_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="supportdesk-temporal", daemon=True)
        self._thread.start()
        self._client: Client | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"TemporalEngine({self.settings.temporal_address!r}, queue={self.settings.temporal_task_queue!r})"

    def __enter__(self) -> TemporalEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing -------------------------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        if self._closed:
            coro.close()
            raise SupportdeskError("the engine is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout=timeout if timeout is not None else self.rpc_timeout_s)

    async def _connected(self) -> Client:
        if self._client is None:
            try:
                self._client = await Client.connect(
                    self.settings.temporal_address, namespace=self.settings.temporal_namespace
                )
            except RuntimeError as exc:  # the core SDK's connection errors
                raise SupportdeskError(f"cannot reach Temporal at {self.settings.temporal_address}: {exc}") from exc
        return self._client

    def _request(self, run_id: str, query: str | None, customer: str | None, metadata: Mapping[str, Any]) -> RunRequest:
        s = self.settings
        return RunRequest(
            run_id=run_id, query=query, customer=customer, metadata=dict(metadata),
            activity_timeout_s=(s.budget_seconds or 600.0) + 300.0,
            heartbeat_timeout_s=s.worker_heartbeat_timeout_s,
            reconcile_retry_s=max(5.0, s.ticket_reconcile_wait_s),
        )

    async def _start(self, request: RunRequest, reuse: WorkflowIDReusePolicy) -> bool:
        client = await self._connected()
        try:
            await client.start_workflow(
                WORKFLOW_NAME,
                request,
                id=workflow_id(request.run_id),
                task_queue=self.settings.temporal_task_queue,
                id_reuse_policy=reuse,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            )
        except WorkflowAlreadyStartedError:
            logger.info("run %s: its workflow already ran; not started again", request.run_id)
            return False
        return True

    def _handle(self, client: Client, run_id: str) -> WorkflowHandle[Any, Any]:
        return client.get_workflow_handle(workflow_id(run_id), result_type=RunSummary)

    # --- the Engine protocol --------------------------------------------------------------

    def submit(self, run_id: str, query: str, customer: str | None, metadata: Mapping[str, Any]) -> None:
        """Start the run's workflow; a duplicate submission attaches to (or finds) the existing one."""
        request = self._request(run_id, query, customer, metadata)
        self._call(self._start(request, WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY))

    def resume(self, run_id: str) -> None:
        """Nudge an open workflow to re-check the run, or start a resume workflow for a closed one.

        :raises RunNotFoundError: no run has this id.
        """
        from supportdesk._runner import open_journal

        info = open_journal(self.settings).get(run_id)
        if info.is_final:
            return
        self._call(self._resume(run_id))

    async def _resume(self, run_id: str) -> None:
        if await self._signal(run_id):
            return
        # the workflow is closed (or never existed) but the run is not final: start one that resumes it
        await self._start(self._request(run_id, None, None, {}), WorkflowIDReusePolicy.ALLOW_DUPLICATE)

    async def _signal(self, run_id: str) -> bool:
        client = await self._connected()
        try:
            await self._handle(client, run_id).signal("decided")
        except RPCError as exc:  # not found, or already closed
            logger.info("run %s: no open workflow to signal (%s)", run_id, exc.status.name)
            return False
        return True

    def decide(
        self, run_id: str, decision: str, edits: Mapping[str, Any] | None, note: str | None, actor: str
    ) -> None:
        """Journal the decision (raises ApprovalError at once if the run does not wait), then signal the workflow."""
        from supportdesk.approvals import record_decision

        record_decision(run_id, decision, edits=edits, note=note, actor=actor, settings=self.settings)  # type: ignore[arg-type]
        self.signal_decided(run_id)

    def signal_decided(self, run_id: str) -> None:
        """Tell the run's workflow a decision is journaled (starts a resume workflow if none is open)."""
        self._call(self._resume(run_id))

    def wait_result(self, run_id: str, *, timeout_s: float) -> CustomerTicketState | None:
        """The run's final state once its workflow completes within ``timeout_s``, else None."""
        from supportdesk._runner import open_journal
        from supportdesk.models import CustomerTicketState

        async def result() -> RunSummary | None:
            client = await self._connected()
            try:
                return await asyncio.wait_for(self._handle(client, run_id).result(), timeout_s)
            except (asyncio.TimeoutError, RPCError):
                return None

        try:
            summary = self._call(result(), timeout=timeout_s + self.rpc_timeout_s)
        except Exception as exc:  # the workflow failed: the journal still tells where the run stands
            logger.warning("run %s: workflow did not complete: %s", run_id, exc)
            summary = None
        if summary is None:
            return None
        text = open_journal(self.settings).load_state(run_id)
        return CustomerTicketState.model_validate_json(text) if text else None

    def ready(self) -> bool:
        """True when the Temporal frontend answers its health check."""

        async def check() -> bool:
            client = await self._connected()
            return bool(await client.service_client.check_health(timeout=timedelta(seconds=3)))

        try:
            return self._call(check(), timeout=5)
        except Exception:  # noqa: BLE001 - readiness is a yes/no
            return False

    def queue_depth(self) -> int:
        """Open workflows on this task queue (best effort; 0 when the server cannot count)."""

        async def count() -> int:
            client = await self._connected()
            q = self.settings.temporal_task_queue
            found = await client.count_workflows(
                f'WorkflowType = "{WORKFLOW_NAME}" AND ExecutionStatus = "Running" AND TaskQueue = "{q}"'
            )
            return int(found.count)

        try:
            return self._call(count())
        except Exception:  # noqa: BLE001
            return 0

    def close(self) -> None:
        """Stop the private event loop (the workers keep executing every submitted run)."""
        if self._closed:
            return
        self._closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

