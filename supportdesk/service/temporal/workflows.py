"""The Temporal workflow of one supportdesk run (its own module: Temporal's sandbox re-imports it).

    run_to_gate ──► status awaiting_approval? ──no──► done
                          │yes
                          ▼
        wait for the "decided" signal, or the approval deadline (a durable timer)
                          ▼
                 file_after_decision ──► still waiting (clock skew, no decision yet)? wait again

Every outcome lives in the run journal; the workflow only sequences activities. A decision is
journaled *before* the signal is sent, so a signal is only a nudge: the activity reads the decision
(or applies the timeout default) from the journal, and a lost or repeated signal changes nothing.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from supportdesk.service.temporal._types import WORKFLOW_NAME, RunRequest, RunSummary

__all__ = ["SupportRunWorkflow", "retry_policy"]

AWAITING = "awaiting_approval"
NEEDS_RECONCILE = "needs_reconcile"
#: Bad input or configuration: retrying the same activity cannot help.
NON_RETRYABLE = [
    "InvalidQueryError", "InvalidRunIdError", "IdempotencyConflictError", "CustomerNotFoundError", "ConfigError",
    "RunNotFoundError",
]
MAX_RECONCILE_ROUNDS = 10


def retry_policy() -> RetryPolicy:
    """Retries for the run activities: quick at first (a dead worker's run moves within seconds), capped."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=10),
        maximum_attempts=20,
        non_retryable_error_types=NON_RETRYABLE,
    )


@workflow.defn(name=WORKFLOW_NAME)
class SupportRunWorkflow:
    """One run: flow to the approval gate, a durable wait for a decision, then the ticket."""

    def __init__(self) -> None:
        self._signals = 0

    @workflow.signal(name="decided")
    def decided(self) -> None:
        """A decision was journaled (or a resume was asked for): re-check the run."""
        self._signals += 1

    @workflow.query(name="signals")
    def signals(self) -> int:
        """How many decided signals arrived (for operators)."""
        return self._signals

    async def _activity(self, name: str, request: RunRequest) -> RunSummary:
        return await workflow.execute_activity(
            name,
            request,
            result_type=RunSummary,
            start_to_close_timeout=timedelta(seconds=request.activity_timeout_s),
            heartbeat_timeout=timedelta(seconds=request.heartbeat_timeout_s),
            retry_policy=retry_policy(),
        )

    async def _wait_for_decision(self, summary: RunSummary, handled: int) -> None:
        timeout = None
        if summary.deadline is not None:
            left = datetime.fromisoformat(summary.deadline).timestamp() - workflow.now().timestamp()
            timeout = timedelta(seconds=max(1.0, left + 0.5))
        try:
            await workflow.wait_condition(lambda: self._signals > handled, timeout=timeout)
        except asyncio.TimeoutError:
            workflow.logger.info("run %s: approval deadline reached", summary.run_id)

    @workflow.run
    async def run(self, request: RunRequest) -> RunSummary:
        summary = await self._activity("run_to_gate", request)
        handled = 0
        rounds = 0
        while summary.status in (AWAITING, NEEDS_RECONCILE) and rounds < MAX_RECONCILE_ROUNDS:
            if summary.status == AWAITING:
                await self._wait_for_decision(summary, handled)
            else:  # the ticket call's outcome is unknown: settle it again a little later
                rounds += 1
                await workflow.sleep(timedelta(seconds=request.reconcile_retry_s))
            handled = self._signals
            summary = await self._activity("file_after_decision", request)
        return summary
