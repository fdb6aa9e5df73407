"""Human approval of a ticket before it is filed: the wait a run records, the edits an approver may
make, and the request an approval queue shows.

Usage::

    from supportdesk.models import ApprovalEdits, ApprovalState

    wait = ApprovalState(rules=["refunds"], requested_at="2026-01-01T00:00:00+00:00", on_timeout="reject")
    ApprovalEdits(priority="high").changes()     # {"priority": "high"}
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ApprovalEdits", "ApprovalRequest", "ApprovalState", "Decision"]

Decision = Literal["approve", "reject"]


class ApprovalEdits(BaseModel):
    """What an approver may change in the ticket draft; None leaves the field as triage drafted it."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=3, max_length=120, description="A new ticket title.")
    priority: Literal["low", "medium", "high"] | None = None
    category: str | None = Field(
        default=None, min_length=1, max_length=32, description="One of the categories in config/categories.yaml."
    )

    def changes(self) -> dict[str, str]:
        """The fields this edit sets (stripped of the ones left unchanged)."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class ApprovalState(BaseModel):
    """Why a run waits for a person, until when, and (once known) what was decided, by whom."""

    rules: list[str] = Field(description="Names of the approval rules (config/policies.yaml) the draft matched.")
    requested_at: str = Field(description="ISO time the run started to wait.")
    deadline: str | None = Field(default=None, description="ISO time after which on_timeout applies; None: no limit.")
    on_timeout: Decision = "reject"
    decision: Decision | None = None
    decided_by: str | None = Field(default=None, description="Who decided: 'cli:<user>', 'tenant:<t> key:<id>' or 'timeout'.")
    decided_at: str | None = None
    note: str | None = None
    edits: dict[str, str] = Field(default_factory=dict, description="Draft fields the approver changed.")


class ApprovalRequest(BaseModel):
    """One run waiting in the approval queue, with the ticket draft a person approves or rejects."""

    run_id: str
    title: str
    summary: str
    category: str
    priority: Literal["low", "medium", "high"]
    customer_id: str | None = None
    rules: list[str]
    requested_at: str
    deadline: str | None = None
    on_timeout: Decision
