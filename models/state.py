"""The state a SupportFlow run owns from the customer's query to the final answer or ticket."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from supportdesk.models.approval import ApprovalState

__all__ = ["CustomerTicketState", "Priority", "TicketStatus"]

Priority = Literal["low", "medium", "high"]


class TicketStatus(str, Enum):
    """Where a run stands. Terminal: faq_answered, ticket_created, rejected, failed. ``needs_reconcile``: parked
    until a resume settles whether the ticket call went through. ``awaiting_approval``: parked with its ticket
    draft until a person approves or rejects it (or the approval timeout applies its default)."""

    NEW = "new"
    FAQ_ANSWERED = "faq_answered"
    ESCALATED = "escalated"
    TICKET_CREATED = "ticket_created"
    FAILED = "failed"
    NEEDS_RECONCILE = "needs_reconcile"
    AWAITING_APPROVAL = "awaiting_approval"
    REJECTED = "rejected"


def _new_id() -> str:
    return uuid.uuid4().hex


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class CustomerTicketState(BaseModel):
    """Everything a run knows. Only JSON-native field types, so ``model_validate_json(model_dump_json())``
    gives back an equal object (ids and timestamps are strings)."""

    model_config = ConfigDict(validate_assignment=True, use_enum_values=False)

    id: str = Field(default_factory=_new_id, description="Run id; also the idempotency key of the ticket.")
    original_query: str = ""
    customer_id: str | None = Field(default=None, description="Customer id, once known (given or looked up).")
    customer_hint: str | None = Field(default=None, description="E-mail or id the caller gave with the query.")
    status: TicketStatus = TicketStatus.NEW
    category: str = Field(default="unknown", description="One of the categories in config/categories.yaml.")
    priority: Priority = "medium"
    faq_response: str | None = None
    faq_id: str | None = Field(default=None, description="The FAQ entry the answer came from, if any.")
    answer_confidence: float | None = Field(default=None, description="Retrieval score behind the route decision.")
    sources: list[str] = Field(default_factory=list, description="FAQ entry ids or web URLs behind the answer.")
    classification_rationale: str | None = None
    classification_confidence: float | None = Field(
        default=None, description="Similarity of the nearest labelled example behind the category (0..1)."
    )
    approval: ApprovalState | None = Field(default=None, description="Set when approval rules made the run wait.")
    customer_summary: str | None = None
    ticket_title: str | None = None
    final_summary: str | None = Field(default=None, description="The answer's provenance, or the ticket summary.")
    ticket_id: str | None = None
    ticket_url: str | None = None
    failure_reason: str | None = None
    route_trace: list[str] = Field(default_factory=list, description="Route labels taken, in order.")
    step_routes: dict[str, str] = Field(default_factory=dict, description="Route label each router step returned.")
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    created_at: str = Field(default_factory=_now)

    @property
    def is_terminal(self) -> bool:
        """True once the run has its final outcome (answered, ticketed, rejected or failed); a run that waits
        for approval or reconciliation is not terminal: it continues on a decision or a resume."""
        return self.status in (
            TicketStatus.FAQ_ANSWERED, TicketStatus.TICKET_CREATED, TicketStatus.REJECTED, TicketStatus.FAILED
        )
