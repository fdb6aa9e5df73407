"""The approval gate a SupportFlow calls between triage and filing the ticket.

Rules are data (the ``approval:`` section of ``config/policies.yaml``); a rule matches a triaged
draft when every condition it names holds (category in ``categories``, priority in ``priorities``,
classification confidence below ``confidence_below``; ``all: true`` matches every draft). No rule:
no draft waits. Rules read only what code decided (category, priority, the classifier's
similarity), never the customer's words, so customer text cannot talk a ticket past a person.

Decisions are journaled: ``approval_decision`` is the first such entry in the run's audit trail
(:meth:`~supportdesk.durable.RunJournal.append_audit_once`), written by ``supportdesk approve`` /
``reject``, the HTTP API, or the gate itself when the deadline passed (``decided_by: timeout``). The
flow applies the journaled decision, so a decision survives every process restarting, and two
deciders cannot both win.

Usage::

    gate = ApprovalGate.from_config(None)              # packaged policies.yaml
    wait = gate.evaluate(state)                        # None: file the ticket at once
    decided = gate.decision(run_context, state)        # None: keep waiting
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from supportdesk._config import load_yaml
from supportdesk.errors import ConfigError
from supportdesk.models.approval import ApprovalState

if TYPE_CHECKING:
    from supportdesk.durable import AuditEntry, RunJournal
    from supportdesk.models import CustomerTicketState

__all__ = ["DECIDED", "REQUESTED", "ApprovalGate", "ApprovalPolicy", "ApprovalRule", "load_approval_policy"]

logger = logging.getLogger(__name__)

#: Audit-trail kinds of the approval wait.
REQUESTED = "approval_requested"
DECIDED = "approval_decision"
TIMEOUT_ACTOR = "timeout"


class ApprovalRule(BaseModel):
    """One rule: a draft matches when every condition given holds."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    categories: list[str] | None = Field(default=None, description="Draft category is one of these.")
    priorities: list[Literal["low", "medium", "high"]] | None = Field(default=None, description="Priority is one of these.")
    confidence_below: float | None = Field(default=None, gt=0, le=1, description="Classifier similarity below this.")
    all: bool = Field(default=False, description="Every draft (a shadow rollout).")

    @model_validator(mode="after")
    def _has_condition(self) -> ApprovalRule:
        if not self.all and self.categories is None and self.priorities is None and self.confidence_below is None:
            raise ValueError(f"approval rule {self.name!r} names no condition (use all: true to match every draft)")
        return self

    def matches(self, state: CustomerTicketState) -> bool:
        """True when the triaged draft in ``state`` meets every condition of the rule."""
        if self.all:
            return True
        if self.categories is not None and state.category not in self.categories:
            return False
        if self.priorities is not None and state.priority not in self.priorities:
            return False
        if self.confidence_below is not None:
            confidence = state.classification_confidence
            if confidence is not None and confidence >= self.confidence_below:
                return False
        return True


class ApprovalPolicy(BaseModel):
    """The ``approval:`` section of policies.yaml."""

    model_config = ConfigDict(extra="forbid")

    rules: list[ApprovalRule] = Field(default_factory=list)
    timeout_s: float | None = Field(default=86_400.0, gt=0, description="Wait at most this long; None: forever.")
    on_timeout: Literal["approve", "reject"] = "reject"


def load_approval_policy(config_dir: Path | None = None) -> ApprovalPolicy:
    """Read the ``approval:`` section (absent: no rules). A malformed section is a one-line ConfigError."""
    data = load_yaml("policies.yaml", config_dir)
    section = data.get("approval") if isinstance(data, dict) else None
    if section is None:
        return ApprovalPolicy()
    try:
        return ApprovalPolicy.model_validate(section)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"policies.yaml approval{'.' + where if where else ''}: {first['msg']}") from exc


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat(timespec="milliseconds")


def deadline_passed(wait: ApprovalState, now: float) -> bool:
    """True when ``wait`` has a deadline and ``now`` (epoch seconds) is at or past it."""
    return wait.deadline is not None and now >= datetime.fromisoformat(wait.deadline).timestamp()


def decided_state(wait: ApprovalState, entry: AuditEntry) -> ApprovalState:
    """``wait`` with the journaled decision ``entry`` filled in."""
    data = entry.data
    return wait.model_copy(
        update={
            "decision": data["decision"],
            "decided_by": data.get("actor"),
            "decided_at": entry.ts,
            "note": data.get("note"),
            "edits": dict(data.get("edits") or {}),
        }
    )


class ApprovalGate:
    """Evaluates the approval rules on a triaged draft and reads the journaled decision.

    :param policy: the rules, timeout and default decision.
    :param clock: epoch seconds (deadlines); injectable for tests.
    """

    def __init__(self, policy: ApprovalPolicy | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self.policy = policy or ApprovalPolicy()
        self._clock = clock

    @classmethod
    def from_config(cls, config_dir: Path | None = None, **kwargs: Any) -> ApprovalGate:
        """The gate over ``policies.yaml`` (``config_dir`` overrides the packaged file)."""
        return cls(load_approval_policy(config_dir), **kwargs)

    def evaluate(self, state: CustomerTicketState) -> ApprovalState | None:
        """The wait ``state``'s draft needs (matched rules, deadline, default), or None to file at once."""
        matched = [rule.name for rule in self.policy.rules if rule.matches(state)]
        if not matched:
            return None
        now = self._clock()
        deadline = _iso(now + self.policy.timeout_s) if self.policy.timeout_s is not None else None
        return ApprovalState(rules=matched, requested_at=_iso(now), deadline=deadline, on_timeout=self.policy.on_timeout)

    def decision(self, run: Any, state: CustomerTicketState) -> ApprovalState | None:
        """The wait with its journaled decision, or None while nobody decided and the deadline has not passed.

        Past the deadline the configured default is journaled first (``decided_by: timeout``; a person's
        decision journaled earlier still wins). ``run`` is the flow's RunContext (None: in memory, no decision).
        """
        wait = state.approval
        if wait is None:
            raise ValueError("decision() needs a state that waits for approval")
        if run is None:
            return None
        journal: RunJournal = run.journal
        entry = journal.first_audit(run.run_id, DECIDED)
        if entry is None and deadline_passed(wait, self._clock()):
            note = f"no decision by {wait.deadline}: default {wait.on_timeout}"
            _, entry = journal.append_audit_once(
                run.run_id, DECIDED, {"decision": wait.on_timeout, "actor": TIMEOUT_ACTOR, "note": note, "edits": {}}
            )
            logger.info("run %s: approval timed out, default %s applied", run.run_id, wait.on_timeout)
        if entry is None:
            journal.append_audit_once(
                run.run_id, REQUESTED, {"rules": wait.rules, "deadline": wait.deadline, "on_timeout": wait.on_timeout}
            )
            return None
        return decided_state(wait, entry)

