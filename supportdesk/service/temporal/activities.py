"""The activities of :class:`~supportdesk.service.temporal.workflows.SupportRunWorkflow`.

Both run the ordinary durable runner (:func:`supportdesk._runner.run_query`) in a worker thread
and heartbeat while it runs. The journal makes them safe to retry anywhere: completed steps are
skipped, recorded model calls are replayed, the ticket goes through the exactly-once intent/outcome
path, and the run's lease fences a straggler. A dead worker stops heartbeating; Temporal retries
the activity on another worker after ``heartbeat_timeout_s`` and the journal lease
(``worker_lease_s``) lets that worker take the run over.

    acts = RunActivities(settings)               # services built lazily, one set per concurrent run
    worker = Worker(client, task_queue=..., workflows=[SupportRunWorkflow], activities=acts.all())
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from temporalio import activity

from supportdesk.service.temporal._types import RunRequest, RunSummary

if TYPE_CHECKING:
    from supportdesk.flows.services import SupportServices
    from supportdesk.llm._types import ChatModel
    from supportdesk.models import CustomerTicketState
    from supportdesk.settings import Settings

__all__ = ["RunActivities"]

logger = logging.getLogger(__name__)


def _summary(state: CustomerTicketState) -> RunSummary:
    deadline = state.approval.deadline if state.approval is not None else None
    return RunSummary(run_id=state.id, status=state.status.value, deadline=deadline, ticket_id=state.ticket_id)


class RunActivities:
    """The run activities over one worker's settings.

    :param settings: the worker's settings (``run_lease_s`` is replaced by ``worker_lease_s``).
    :param chat_model: builds the model of one services set (tests: a ScriptedModel); default: from settings,
        rate-limited per ``worker_model_calls_per_s``.
    """

    def __init__(self, settings: Settings, *, chat_model: Callable[[], ChatModel] | None = None) -> None:
        self.settings = settings.model_copy(update={"run_lease_s": settings.worker_lease_s})
        self._chat_model = chat_model
        self._pool: queue.LifoQueue[SupportServices] = queue.LifoQueue()
        self._built = 0
        self._lock = threading.Lock()
        self._limiter = None

    def all(self) -> list[Callable[..., Any]]:
        """The activity callables to register on a Worker."""
        return [self.run_to_gate, self.file_after_decision]

    # --- services: one set per concurrent run (a set's model proxy is bound to one run at a time) --

    def _model(self) -> ChatModel | None:
        from supportdesk.service.temporal._ratelimit import limiter_for

        if self._limiter is None:
            self._limiter = limiter_for(self.settings)
        if self._chat_model is None and self._limiter is None:
            return None
        if self._chat_model is not None:
            model = self._chat_model()
        else:
            from supportdesk.llm.factory import LLMFactory

            model = LLMFactory(self.settings).chat_model()
        return self._limiter.wrap(model) if self._limiter is not None else model

    def _take(self) -> SupportServices:
        try:
            return self._pool.get_nowait()
        except queue.Empty:
            pass
        from supportdesk.flows.services import build_services

        with self._lock:  # building loads models: one at a time
            self._built += 1
            logger.info("worker: building services set %d", self._built)
            return build_services(self.settings, chat_model=self._model())

    def _execute(self, request: RunRequest) -> RunSummary:
        from supportdesk._runner import resume_run, run_query

        services = self._take()
        try:
            if request.query is None:
                state = resume_run(request.run_id, settings=self.settings, services=services)
            else:
                state = run_query(
                    request.query, customer=request.customer, run_id=request.run_id,
                    settings=self.settings, services=services,
                )
        finally:
            self._pool.put(services)
        return _summary(state)

    async def _heartbeating(self, request: RunRequest) -> RunSummary:
        work = asyncio.ensure_future(asyncio.to_thread(self._execute, request))
        beat = max(0.5, request.heartbeat_timeout_s / 4)
        while True:
            done, _ = await asyncio.wait({work}, timeout=beat)
            if done:
                return work.result()
            activity.heartbeat()

    # --- the activities -------------------------------------------------------------------

    @activity.defn(name="run_to_gate")
    async def run_to_gate(self, request: RunRequest) -> RunSummary:
        """Run the flow: to its end, or to the approval gate (status awaiting_approval)."""
        return await self._heartbeating(request)

    @activity.defn(name="file_after_decision")
    async def file_after_decision(self, request: RunRequest) -> RunSummary:
        """Resume the run: apply the journaled decision (or the timeout default) and file the ticket exactly once."""
        resume = RunRequest(
            run_id=request.run_id, activity_timeout_s=request.activity_timeout_s,
            heartbeat_timeout_s=request.heartbeat_timeout_s,
        )
        return await self._heartbeating(resume)
