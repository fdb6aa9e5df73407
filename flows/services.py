"""The collaborators a SupportFlow calls, behind small protocols so tests and embedders pass their own.

:func:`build_services` wires the defaults from :class:`~supportdesk.settings.Settings`: the shared
chat model from the LLM factory, the Haystack FAQ pipeline, the triage crew, the ticket backend
(Jira when configured, else the local SQLite store) and the customer directory (the SQLite demo, or
the backend's CRM passed as ``customers=``: any :class:`~supportdesk.crews.tools.customer_db.CustomerDirectory`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from supportdesk.llm._types import ChatModel

if TYPE_CHECKING:
    from supportdesk.crews.tools.customer_db import CustomerDirectory
    from supportdesk.crews.tools.ticketing import TicketBackend
    from supportdesk.models.responses import CustomerRecord
    from supportdesk.settings import Settings

__all__ = ["ApprovalStage", "FAQStage", "SupportServices", "TriageStage", "build_services"]

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[str, str], None]


class FAQStage(Protocol):
    """Answers from the FAQ (and the web fallback) or says the query must escalate."""

    def run(self, query: str) -> Any:  # returns supportdesk.models.RAGResult
        ...


class TriageStage(Protocol):
    """Classifies an escalated query, states the verified caller's account facts and drafts the ticket."""

    def triage(self, query: str, customer: CustomerRecord | None = None) -> Any:  # returns TriageResult
        ...


class ApprovalStage(Protocol):
    """Decides whether a triaged draft waits for a person, and reads the journaled decision
    (:class:`supportdesk._approval.ApprovalGate`)."""

    def evaluate(self, state: Any) -> Any:  # returns ApprovalState | None
        ...

    def decision(self, run: Any, state: Any) -> Any:  # returns ApprovalState | None
        ...


@dataclass
class SupportServices:
    """Everything a run needs besides its state."""

    faq: FAQStage
    triage: TriageStage
    tickets: TicketBackend
    chat_model: ChatModel | None = None
    on_step: ProgressCallback | None = field(default=None, repr=False)
    customers: CustomerDirectory | None = None  # callers are verified against it; None: the SQLite demo
    approvals: ApprovalStage | None = None  # which drafts wait for a person; None: every ticket is filed at once
    settings: Settings | None = field(default=None, repr=False)  # what built them; a run given no settings uses these

    def progress(self, step: str, message: str) -> None:
        logger.info("%s: %s", step, message)
        if self.on_step is not None:
            self.on_step(step, message)


def build_services(
    settings: Settings,
    *,
    chat_model: ChatModel | None = None,
    on_step: ProgressCallback | None = None,
    customers: CustomerDirectory | None = None,
) -> SupportServices:
    """Wire the default collaborators from settings (imports the heavy libraries lazily).

    :param customers: the directory the caller's stated identity is verified against (a backend's
        CRM); default: the SQLite demo :class:`~supportdesk.crews.tools.customer_db.CustomerDB`.
    """
    from supportdesk._offline import apply_vendor_settings

    apply_vendor_settings(settings)  # telemetry switches and CrewAI's storage, before Haystack is imported
    from supportdesk._approval import ApprovalGate
    from supportdesk.crews.tools.customer_db import CustomerDB
    from supportdesk.crews.tools.ticketing import build_ticket_backend
    from supportdesk.crews.triage.triage_crew import TriageCrew
    from supportdesk.llm.factory import LLMFactory
    from supportdesk.rag.pipeline import build_faq_pipeline

    from supportdesk.flows.run_context import RunScopedModel

    factory = LLMFactory(settings, chat_model)
    model = RunScopedModel(factory.chat_model())
    policy = settings.decision_policy or factory.kind
    return SupportServices(
        faq=build_faq_pipeline(settings, model, kind=factory.kind),
        triage=TriageCrew(model, policy=policy, config_dir=settings.config_dir),
        tickets=build_ticket_backend(settings),
        chat_model=model,
        on_step=on_step,
        customers=customers if customers is not None else CustomerDB.from_settings(settings),
        approvals=ApprovalGate.from_config(settings.config_dir),
        settings=settings,
    )
