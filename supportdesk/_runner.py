"""Running one query through SupportFlow: the engine behind the public sync and async entry points."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from supportdesk._query import validate_query
from supportdesk.errors import InvalidQueryError, SupportdeskError
from supportdesk.models import CustomerTicketState, TicketStatus
from supportdesk.settings import Settings

if TYPE_CHECKING:
    from supportdesk.flows.services import ProgressCallback, SupportServices
    from supportdesk.llm._types import ChatModel

__all__ = ["arun_query", "prepare_flow", "run_query"]

logger = logging.getLogger(__name__)


def quiet_crewai_console() -> None:
    """CrewAI prints flow panels on stdout; supportdesk reports progress itself (stderr, logging)."""
    from crewai.events.event_listener import event_listener
    from rich.console import Console

    event_listener.formatter.console = Console(quiet=True)


def prepare_flow(
    query: str | bytes,
    *,
    customer: str | None = None,
    run_id: str | None = None,
    settings: Settings | None = None,
    services: SupportServices | None = None,
    chat_model: ChatModel | None = None,
    on_step: ProgressCallback | None = None,
):  # noqa: ANN201 - returns (SupportFlow, inputs)
    """Validate the input and build the flow with its collaborators; raises before anything is written."""
    settings = settings or Settings()
    text = validate_query(query, max_chars=settings.max_query_chars)
    if customer is not None and not customer.strip():
        raise InvalidQueryError("--customer is empty")
    from supportdesk.flows.services import build_services
    from supportdesk.flows.support_flow import SupportFlow

    quiet_crewai_console()
    if services is None:
        services = build_services(settings, chat_model=chat_model, on_step=on_step)
    elif on_step is not None:
        services.on_step = on_step
    inputs: dict[str, object] = {"original_query": text, "customer_hint": customer.strip() if customer else None}
    if run_id:
        inputs["id"] = run_id
    return SupportFlow(services=services), inputs


def _final(flow_state: CustomerTicketState, exc: Exception | None = None) -> CustomerTicketState:
    """A plain CustomerTicketState (CrewAI wraps the class), marked failed when ``exc`` is given."""
    state = CustomerTicketState.model_validate(flow_state.model_dump())
    if exc is not None:
        state.status = TicketStatus.FAILED
        state.failure_reason = f"{type(exc).__name__}: {exc}"
        logger.warning("run %s failed: %s", state.id, state.failure_reason)
    return state


def run_query(query: str | bytes, **kwargs) -> CustomerTicketState:  # noqa: ANN003
    """Run one query to its final state. Invalid input raises; failures inside the run return a
    state with status ``failed`` and the reason."""
    flow, inputs = prepare_flow(query, **kwargs)
    try:
        flow.kickoff(inputs=inputs)
    except SupportdeskError as exc:
        return _final(flow.state, exc)
    return _final(flow.state)


async def arun_query(query: str | bytes, **kwargs) -> CustomerTicketState:  # noqa: ANN003
    """Async twin of :func:`run_query`."""
    flow, inputs = prepare_flow(query, **kwargs)
    try:
        await flow.kickoff_async(inputs=inputs)
    except SupportdeskError as exc:
        return _final(flow.state, exc)
    return _final(flow.state)
