"""The request and response bodies of the HTTP API (pydantic; they make /openapi.json)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from supportdesk.models import CustomerTicketState
from supportdesk.models.approval import ApprovalEdits

__all__ = [
    "ApprovalDecision",
    "ApprovalEdits",
    "ApprovalItem",
    "ApprovalList",
    "Problem",
    "RunCreate",
    "RunList",
    "RunResource",
    "TicketItem",
    "TicketList",
]

_MAX_META_KEYS = 32
_MAX_META_BYTES = 4096


class RunCreate(BaseModel):
    """``POST /v1/runs``: the customer's message and, if the backend knows it, the customer."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, description="The customer's message (plain text).")
    customer_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Customer id or e-mail the calling backend vouches for; the only account the run may read.",
    )
    metadata: dict[str, Any] = Field(
        default_factory=dict, description=f"Your own JSON values (at most {_MAX_META_KEYS} keys, {_MAX_META_BYTES} bytes)."
    )

    @field_validator("metadata")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        import json

        if len(value) > _MAX_META_KEYS:
            raise ValueError(f"metadata has {len(value)} keys; the limit is {_MAX_META_KEYS}")
        if "tenant" in value:
            raise ValueError("metadata key 'tenant' is reserved (the service sets it from your key)")
        if len(json.dumps(value, ensure_ascii=False).encode("utf-8")) > _MAX_META_BYTES:
            raise ValueError(f"metadata is larger than {_MAX_META_BYTES} bytes")
        return value


class RunResource(BaseModel):
    """One run as the API shows it."""

    id: str = Field(description="The run's idempotency key (the Idempotency-Key you sent, or the generated one).")
    status: str = Field(
        description=(
            "The journal status: queued (accepted, no worker yet), pending, running, completed, failed, "
            "needs_reconcile, or an approval status (awaiting_approval, rejected)."
        )
    )
    outcome: str | None = Field(default=None, description="The state's status (faq_answered, ticket_created ...).")
    final: bool = Field(description="True when nothing more will execute.")
    customer_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    reason: str | None = None
    last_step: str | None = None
    attempts: int = 0
    created_at: str
    updated_at: str | None = None
    state: CustomerTicketState | None = Field(default=None, description="The latest checkpointed state.")
    links: dict[str, str] = Field(default_factory=dict)


class RunList(BaseModel):
    """A page of runs, newest first; pass ``next_cursor`` as ``cursor`` for the next page."""

    items: list[RunResource]
    next_cursor: str | None = None


class ApprovalDecision(BaseModel):
    """``POST /v1/approvals/{run_id}``."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    edits: ApprovalEdits | None = None
    note: str | None = Field(default=None, max_length=2000)


class ApprovalItem(BaseModel):
    """A run waiting for a human decision."""

    model_config = ConfigDict(extra="allow")

    run_id: str = Field(description="The run's idempotency key.")


class ApprovalList(BaseModel):
    """Runs of your tenant that wait for approval."""

    items: list[ApprovalItem]


class TicketItem(BaseModel):
    """A ticket filed by one of your tenant's runs."""

    model_config = ConfigDict(extra="allow")

    ticket_id: str | None = None
    run_id: str | None = None


class TicketList(BaseModel):
    """Tickets filed by your tenant's runs."""

    items: list[TicketItem]


class Problem(BaseModel):
    """An error (RFC 9457 ``application/problem+json``)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None
