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
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from supportdesk._pii import mask_cards
from supportdesk._query import validate_customer, validate_query, validate_run_id
from supportdesk.errors import ApprovalPendingError, NeedsReconcileError, RunBusyError, RunNotFoundError, SupportdeskError
from supportdesk.models import CustomerTicketState, TicketStatus
from supportdesk.settings import Settings, load_settings

if TYPE_CHECKING:
    from supportdesk.crews.tools.customer_db import CustomerDirectory
    from supportdesk.durable import RunJournal
    from supportdesk.flows.services import ProgressCallback, SupportServices
    from supportdesk.llm._types import ChatModel
    from supportdesk.models.responses import CustomerRecord

__all__ = ["arun_query", "open_journal", "quiet_crewai", "resume_run", "run_query"]

logger = logging.getLogger(__name__)


@contextmanager
def quiet_crewai() -> Iterator[None]:
    """CrewAI prints flow panels on stdout; supportdesk reports progress itself (stderr, logging).

    CrewAI's own switch (``set_suppress_console_output``, a context variable) silences them for this
    context only: nothing is rendered, and a host application's own crews still print."""
    from crewai.events.utils.console_formatter import set_suppress_console_output

    token = set_suppress_console_output(True)
    try:
        yield
    finally:
        token.var.reset(token)  # type: ignore[attr-defined]


def open_journal(settings: Settings) -> RunJournal:
    """The run journal on the configured database."""
    from supportdesk.durable import RunJournal

    return RunJournal(settings.resolved_database_url, lease_s=settings.run_lease_s)


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
    trigger_payload: dict[str, Any] | None = None,
) -> CustomerTicketState:
    """Run (or resume, or look up) one query to its final state.

    ``trigger_payload``: the JSON that started the run (``run_with_trigger``); it reaches the flow's
    start step as CrewAI's ``crewai_trigger_payload``.

    ``customer`` is the caller's stated identity (an id or e-mail): the only account the run may
    read, verified against the customer directory. Ids, e-mails or names in the query never select
    an account; without ``customer`` the run goes on with the requester unverified. ``run_id`` is an
    idempotency key: the same id with the same query and customer gives the stored result.

    Invalid input raises before anything is written (no run row, no database file):
    :class:`InvalidQueryError`, :class:`InvalidRunIdError`, :class:`ConfigError`,
    :class:`CustomerNotFoundError`, :class:`IdempotencyConflictError` (the id was used with another
    payload; nothing of that run is shown). Failures inside the run come back as a state with status
    ``failed`` (or ``needs_reconcile``) and the reason, and are stored with the run.
    """
    settings = settings or getattr(services, "settings", None) or load_settings()  # services carry what built them
    run_id = validate_run_id(run_id) if run_id is not None else uuid.uuid4().hex
    text = validate_query(query, max_chars=settings.max_query_chars)
    text = mask_cards(text)  # card numbers never go further than this line (supportdesk._pii)
    hint = validate_customer(customer)
    settings.check_home()
    journal = open_journal(settings)
    finished = _finished_state(journal, run_id, text, hint)  # a read: a finished run needs no services built
    if finished is not None:
        return finished
    directory = _directory(settings, services)
    caller = _verify(directory, hint)  # an unknown customer fails here, before anything is written
    services = _services(settings, services, chat_model, on_step, directory)  # broken config fails before any write
    handle = journal.start_run(run_id, text, hint, wait_s=settings.run_wait_s)
    if not handle.acquired:
        if handle.info.is_final and handle.state_json:  # it finished while we were getting ready
            return CustomerTicketState.model_validate_json(handle.state_json)
        raise RunBusyError(f"run {run_id} is being executed by another process; try again later")
    if handle.state_json:
        state = CustomerTicketState.model_validate_json(handle.state_json)
    else:
        stored = handle.info
        state = CustomerTicketState(
            id=run_id,
            original_query=stored.query or text,
            customer_hint=stored.customer_hint,
            customer_id=caller.customer_id if caller is not None else None,
        )
    return _execute(state, journal, set(handle.completed_steps), settings, services, caller, trigger_payload)


def _journal_may_exist(journal: RunJournal) -> bool:
    """False when the journal is a SQLite file that does not exist yet (no run can be stored; reading would create it)."""
    return journal.db.dialect != "sqlite" or journal.db.sqlite_path.exists()


def _finished_state(journal: RunJournal, run_id: str, text: str, hint: str | None) -> CustomerTicketState | None:
    """The stored final state of ``run_id`` if that run already finished with this payload, else None.

    :raises IdempotencyConflictError: the id was used with a different query or customer (finished,
        crashed or in flight alike); nothing of that run is returned.
    """
    if not _journal_may_exist(journal):
        return None
    info = journal.check_payload(run_id, text, hint)
    if info is None:
        return None
    state_json = journal.load_state(run_id) if info.is_final else None
    if state_json is None:
        return None
    logger.info("run %s already finished: returning the stored result", run_id)
    return CustomerTicketState.model_validate_json(state_json)


def _directory(settings: Settings, services: SupportServices | None) -> CustomerDirectory:
    """The customer directory of ``services``, else the SQLite demo from settings."""
    from supportdesk.crews.tools.customer_db import CustomerDB

    found = getattr(services, "customers", None) if services is not None else None
    return found if found is not None else CustomerDB.from_settings(settings)


def _verify(directory: CustomerDirectory, hint: str | None) -> CustomerRecord | None:
    """The caller's verified account (None when no customer was given); :class:`CustomerNotFoundError` if unknown."""
    from supportdesk.crews.tools.customer_db import verify_customer

    return verify_customer(directory, hint) if hint is not None else None


def _services(
    settings: Settings,
    services: SupportServices | None,
    chat_model: ChatModel | None,
    on_step: ProgressCallback | None,
    directory: CustomerDirectory | None = None,
) -> SupportServices:
    from supportdesk.flows.services import build_services

    if services is None:
        return build_services(settings, chat_model=chat_model, on_step=on_step, customers=directory)
    if on_step is not None:
        services.on_step = on_step
    return services


def _execute(
    state: CustomerTicketState,
    journal: RunJournal,
    completed: set[str],
    settings: Settings,
    services: SupportServices,
    caller: CustomerRecord | None = None,
    trigger_payload: dict[str, Any] | None = None,
) -> CustomerTicketState:
    from supportdesk import _tracing
    from supportdesk.flows.run_context import RunContext, RunScopedModel
    from supportdesk.flows.support_flow import SupportFlow

    run_id = state.id
    if completed:
        services.progress("resume", f"run {run_id}: skipping completed steps {sorted(completed)}")
    run = RunContext(journal, run_id, completed, ticket_wait_s=settings.ticket_reconcile_wait_s)
    flow = SupportFlow(services=services, run=run, caller=caller)
    proxy = services.chat_model
    scope = (
        proxy.bind(_budget_model(proxy.inner, journal, run_id, settings)) if isinstance(proxy, RunScopedModel) else nullcontext()
    )
    try:
        with scope, quiet_crewai(), _tracing.run_scope(run_id, settings), _tracing.crewai_spans():  # spans: ours, CrewAI's under them
            trigger = {"crewai_trigger_payload": trigger_payload} if trigger_payload is not None else {}
            flow.kickoff(inputs={**state.model_dump(mode="json"), **trigger})
    except ApprovalPendingError:  # the draft waits for a person: park with the state (lease released)
        final = _plain(flow.state)
        journal.finish(run_id, "awaiting_approval", state=final)
        return final
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

    :raises InvalidRunIdError: ``run_id`` is not a valid run id (checked before anything is opened).
    :raises RunNotFoundError: no run has this id (a resume never starts a fresh run, nor creates a database).
    The run continues with its stored payload and caller, re-verified against the customer directory.
    """
    settings = kwargs.pop("settings", None) or getattr(kwargs.get("services"), "settings", None) or load_settings()
    run_id = validate_run_id(run_id)
    journal = open_journal(settings)
    if not _journal_may_exist(journal):
        raise RunNotFoundError(run_id)
    info = journal.get(run_id)
    return run_query(info.query, customer=info.customer_hint, run_id=run_id, settings=settings, **kwargs)


async def arun_query(query: str | bytes, **kwargs) -> CustomerTicketState:  # noqa: ANN003
    """Async twin of :func:`run_query`: the blocking run goes to a worker thread."""
    return await asyncio.to_thread(run_query, query, **kwargs)
