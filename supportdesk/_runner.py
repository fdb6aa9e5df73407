"""Running one query through SupportFlow durably: the engine behind the public entry points.

Every run has an id and a row in the run journal (SQLite by default, PostgreSQL by URL). The state
is checkpointed after each step; starting an id that finished returns the stored result; starting
or resuming an id that crashed continues from its last completed step, replaying recorded LLM calls
and settling the ticket through its intent/outcome record.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from contextlib import nullcontext
from typing import TYPE_CHECKING

from supportdesk._query import validate_query
from supportdesk.errors import InvalidQueryError, NeedsReconcileError, RunBusyError, RunNotFoundError, SupportdeskError
from supportdesk.models import CustomerTicketState, TicketStatus
from supportdesk.settings import Settings

if TYPE_CHECKING:
    from supportdesk.durable import RunJournal
    from supportdesk.flows.services import ProgressCallback, SupportServices
    from supportdesk.llm._types import ChatModel

__all__ = ["arun_query", "open_journal", "quiet_crewai_console", "resume_run", "run_query"]

logger = logging.getLogger(__name__)


def quiet_crewai_console() -> None:
    """CrewAI prints flow panels on stdout; supportdesk reports progress itself (stderr, logging)."""
    from crewai.events.event_listener import event_listener
    from rich.console import Console

    event_listener.formatter.console = Console(quiet=True)


def open_journal(settings: Settings) -> RunJournal:
    """The run journal on the configured database."""
    from supportdesk.durable import RunJournal

    return RunJournal(settings.resolved_database_url)


def _plain(flow_state: CustomerTicketState) -> CustomerTicketState:
    """A plain CustomerTicketState (CrewAI wraps the class in one with its own id field)."""
    return CustomerTicketState.model_validate(flow_state.model_dump())


def _budget_model(inner: ChatModel, journal: RunJournal, run_id: str, settings: Settings) -> ChatModel:
    from supportdesk.durable import Budget, BudgetedChatModel, BudgetLimits, JournaledChatModel

    limits = BudgetLimits(
        max_calls=settings.budget_llm_calls,
        max_tokens=settings.budget_tokens,
        max_seconds=settings.budget_seconds,
        max_cost=settings.budget_cost_usd,
        price_per_1k_tokens=settings.price_per_1k_tokens_usd,
    )
    return BudgetedChatModel(JournaledChatModel(inner, journal, run_id), Budget(limits))


def run_query(
    query: str | bytes,
    *,
    customer: str | None = None,
    run_id: str | None = None,
    settings: Settings | None = None,
    services: SupportServices | None = None,
    chat_model: ChatModel | None = None,
    on_step: ProgressCallback | None = None,
) -> CustomerTicketState:
    """Run (or resume, or look up) one query to its final state.

    Invalid input raises before anything is written. Failures inside the run come back as a state
    with status ``failed`` (or ``needs_reconcile``) and the reason, and are stored with the run.
    """
    settings = settings or Settings()
    text = validate_query(query, max_chars=settings.max_query_chars)
    if customer is not None and not customer.strip():
        raise InvalidQueryError("--customer is empty")
    hint = customer.strip() if customer else None
    journal = open_journal(settings)
    run_id = run_id or uuid.uuid4().hex
    finished = _finished_state(journal, run_id)  # a read: a finished run needs no services built
    if finished is not None:
        return finished
    services = _services(settings, services, chat_model, on_step)  # broken config fails before any write
    handle = journal.start_run(run_id, text, hint, wait_s=settings.run_wait_s)
    if not handle.acquired:
        if handle.info.is_final and handle.state_json:  # it finished while we were getting ready
            return CustomerTicketState.model_validate_json(handle.state_json)
        raise RunBusyError(f"run {run_id} is being executed by another process; try again later")
    if handle.state_json:
        state = CustomerTicketState.model_validate_json(handle.state_json)
    else:
        stored = handle.info
        state = CustomerTicketState(id=run_id, original_query=stored.query or text, customer_hint=stored.customer_hint)
    return _execute(state, journal, set(handle.completed_steps), settings, services)


def _finished_state(journal: RunJournal, run_id: str) -> CustomerTicketState | None:
    """The stored final state of ``run_id`` if that run already finished, else None."""
    try:
        info = journal.get(run_id)
    except RunNotFoundError:
        return None
    state_json = journal.load_state(run_id) if info.is_final else None
    if state_json is None:
        return None
    logger.info("run %s already finished: returning the stored result", run_id)
    return CustomerTicketState.model_validate_json(state_json)


def _services(
    settings: Settings, services: SupportServices | None, chat_model: ChatModel | None, on_step: ProgressCallback | None
) -> SupportServices:
    from supportdesk.flows.services import build_services

    quiet_crewai_console()
    if services is None:
        return build_services(settings, chat_model=chat_model, on_step=on_step)
    if on_step is not None:
        services.on_step = on_step
    return services


def _execute(
    state: CustomerTicketState, journal: RunJournal, completed: set[str], settings: Settings, services: SupportServices
) -> CustomerTicketState:
    from supportdesk.flows.run_context import RunContext, RunScopedModel
    from supportdesk.flows.support_flow import SupportFlow

    run_id = state.id
    if completed:
        services.progress("resume", f"run {run_id}: skipping completed steps {sorted(completed)}")
    run = RunContext(journal, run_id, completed, ticket_wait_s=settings.ticket_reconcile_wait_s)
    flow = SupportFlow(services=services, run=run)
    proxy = services.chat_model
    scope = (
        proxy.bind(_budget_model(proxy.inner, journal, run_id, settings)) if isinstance(proxy, RunScopedModel) else nullcontext()
    )
    try:
        with scope:
            flow.kickoff(inputs=state.model_dump(mode="json"))
    except NeedsReconcileError as exc:  # the journal has already parked the run
        final = _plain(flow.state)
        final.status = TicketStatus.NEEDS_RECONCILE
        final.failure_reason = str(exc)
        return final
    except SupportdeskError as exc:
        final = _plain(flow.state)
        final.status = TicketStatus.FAILED
        final.failure_reason = f"{type(exc).__name__}: {exc}"
        logger.warning("run %s failed: %s", run_id, final.failure_reason)
        journal.record_error(run_id, exc)
        journal.finish(run_id, "failed", reason=final.failure_reason, state=final)
        return final
    except BaseException:
        journal.release(run_id)  # interrupted: let a resume take over at once
        raise
    final = _plain(flow.state)
    journal.finish(run_id, "completed", state=final)
    return final


def resume_run(run_id: str, **kwargs) -> CustomerTicketState:  # noqa: ANN003
    """Continue a run from its last completed step (or return its stored result if it finished).

    :raises RunNotFoundError: no run has this id (a resume never starts a fresh run).
    """
    settings = kwargs.pop("settings", None) or Settings()
    info = open_journal(settings).get(run_id)
    return run_query(info.query, customer=info.customer_hint, run_id=run_id, settings=settings, **kwargs)


async def arun_query(query: str | bytes, **kwargs) -> CustomerTicketState:  # noqa: ANN003
    """Async twin of :func:`run_query`: the blocking run goes to a worker thread."""
    return await asyncio.to_thread(run_query, query, **kwargs)
