"""supportdesk: first-line customer support as a deterministic flow.

A CrewAI flow owns a typed ticket state; a Haystack FAQ step answers what the FAQ can answer;
a small triage crew classifies, looks the customer up and files one ticket for the rest.
Offline by default (an embedded Gemma 3 270M), one setting away from hosted models.

The public API::

    import supportdesk

    state = supportdesk.handle_query("How do I reset my password?")
    state.status, state.faq_response

    state = await supportdesk.ahandle_query("I was charged twice", customer="ana@example.com")

Everything not in ``__all__`` is private and may change.
"""

from __future__ import annotations

from supportdesk._offline import apply_offline_defaults
from supportdesk._pii import install_log_redaction

apply_offline_defaults()
install_log_redaction()  # the package's own loggers only: e-mails, phones, cards, IBANs, secrets

from typing import TYPE_CHECKING, Any  # noqa: E402

from supportdesk.errors import (  # noqa: E402
    ApprovalError,
    ApprovalPendingError,
    BudgetExceededError,
    ConfigError,
    CustomerNotFoundError,
    IdempotencyConflictError,
    InvalidQueryError,
    InvalidRunIdError,
    LLMError,
    LLMProviderError,
    LLMTimeoutError,
    NeedsReconcileError,
    OutputValidationError,
    RunBusyError,
    RunNotFoundError,
    SupportdeskError,
    TicketingError,
    WebSearchError,
)
from supportdesk.llm import ChatMessage, ChatModel, Completion, ScriptedModel  # noqa: E402
from supportdesk.models import CustomerTicketState, TicketStatus  # noqa: E402
from supportdesk.settings import Settings, load_settings  # noqa: E402

if TYPE_CHECKING:
    from supportdesk.crews.tools.customer_db import CustomerDirectory
    from supportdesk.flows.services import SupportServices
    from supportdesk.flows.support_flow import SupportFlow

__version__ = "0.1.0"

__all__ = [
    "ApprovalError",
    "ApprovalPendingError",
    "ApprovalRequest",
    "BudgetExceededError",
    "ChatMessage",
    "ChatModel",
    "Completion",
    "ConfigError",
    "CustomerDirectory",
    "CustomerNotFoundError",
    "CustomerTicketState",
    "IdempotencyConflictError",
    "InvalidQueryError",
    "InvalidRunIdError",
    "LLMError",
    "LLMProviderError",
    "LLMTimeoutError",
    "NeedsReconcileError",
    "OutputValidationError",
    "RunBusyError",
    "RunNotFoundError",
    "ScriptedModel",
    "Settings",
    "SupportFlow",
    "SupportServices",
    "SupportdeskError",
    "TicketStatus",
    "TicketingError",
    "WebSearchError",
    "ahandle_query",
    "approve",
    "build_services",
    "handle_query",
    "list_approvals",
    "reject",
    "load_settings",
    "resume_run",
]


def handle_query(
    query: str | bytes,
    *,
    customer: str | None = None,
    run_id: str | None = None,
    settings: Settings | None = None,
    services: SupportServices | None = None,
    chat_model: ChatModel | None = None,
) -> CustomerTicketState:
    """Run one customer query through the flow and return its final state.

    :param customer: the caller's verified customer id or e-mail: the only account the run may read
        (ids, e-mails or names in the query never select one). None: the requester is unverified.
    :param run_id: an idempotency key (``[A-Za-z0-9._-]``, 1-128): the same id with the same query and
        customer returns the stored result; with another payload, :class:`IdempotencyConflictError`.
    :param services: collaborators to use instead of the ones built from ``settings``.
    :param chat_model: a model to use instead of the one ``settings.llm`` names.
    :raises InvalidQueryError: empty, oversized, binary or non-UTF-8 input.
    :raises InvalidRunIdError: a run id with characters or a length it may not have.
    :raises ConfigError: broken settings or config files, or an unwritable home.
    :raises CustomerNotFoundError: ``customer`` is not in the customer directory (nothing written).
    :raises IdempotencyConflictError: ``run_id`` was used with a different query or customer.
    Failures inside the run come back as a state with status ``failed`` and ``failure_reason``.
    """
    from supportdesk._runner import run_query

    return run_query(query, customer=customer, run_id=run_id, settings=settings, services=services, chat_model=chat_model)


async def ahandle_query(
    query: str | bytes,
    *,
    customer: str | None = None,
    run_id: str | None = None,
    settings: Settings | None = None,
    services: SupportServices | None = None,
    chat_model: ChatModel | None = None,
) -> CustomerTicketState:
    """Async twin of :func:`handle_query`."""
    from supportdesk._runner import arun_query

    return await arun_query(query, customer=customer, run_id=run_id, settings=settings, services=services, chat_model=chat_model)


def resume_run(run_id: str, *, settings: Settings | None = None, services: SupportServices | None = None) -> CustomerTicketState:
    """Continue run ``run_id`` from its last completed step, or return its stored result if it finished.

    :raises RunNotFoundError: no run has this id (a resume never starts a fresh run).
    """
    from supportdesk._runner import resume_run as _resume

    return _resume(run_id, settings=settings, services=services)


def __getattr__(name: str) -> Any:
    if name == "CustomerDirectory":
        from supportdesk.crews.tools.customer_db import CustomerDirectory

        return CustomerDirectory
    if name == "SupportFlow":
        from supportdesk.flows.support_flow import SupportFlow

        return SupportFlow
    if name in ("ApprovalRequest", "approve", "list_approvals", "reject"):
        from supportdesk import approvals

        return getattr(approvals, name)
    if name in ("SupportServices", "build_services"):
        from supportdesk.flows import services

        return getattr(services, name)
    raise AttributeError(f"module 'supportdesk' has no attribute {name!r}")
