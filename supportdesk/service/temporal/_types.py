"""Plain data passed between the engine, the workflow and the activities (standard library only, so
the workflow sandbox can import it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["RunRequest", "RunSummary", "WORKFLOW_NAME", "workflow_id"]

WORKFLOW_NAME = "SupportRun"


def workflow_id(run_id: str) -> str:
    """The workflow id of run ``run_id`` (the service's ids are ``f"{tenant}.{key}"``, so two tenants never share one)."""
    return f"supportdesk-run-{run_id}"


@dataclass
class RunRequest:
    """What a workflow needs to execute one run; the timeouts come from the submitting side's settings."""

    run_id: str
    query: str | None = None  # None: resume a run the journal already holds
    customer: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    activity_timeout_s: float = 900.0
    heartbeat_timeout_s: float = 10.0
    reconcile_retry_s: float = 30.0


@dataclass
class RunSummary:
    """What an activity returns to the workflow (the full state stays in the journal)."""

    run_id: str
    status: str
    deadline: str | None = None
    ticket_id: str | None = None
