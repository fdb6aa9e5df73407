"""Durable runs: checkpoints, replay, exactly-one ticket, budgets, retries and an audit trail.

A run (id = ``CustomerTicketState.id``) is a row in a SQLite or PostgreSQL database. Its state is
checkpointed after every step; LLM completions and tool results are journaled so a resumed run
replays them instead of calling again; the ticket is created through an intent/outcome record and a
lookup by idempotency key; every step, call and side effect is written to an append-only, redacted
audit trail. Integration in a flow::

    from supportdesk.durable import (Budget, BudgetLimits, BudgetedChatModel, JournaledChatModel,
                                     RunJournal, exactly_once_ticket)

    journal = RunJournal(settings.resolved_database_url)
    handle = journal.start_run(state.id, state.original_query, state.customer_hint, wait_s=30)
    if not handle.acquired:
        ...                                             # final result in handle.state_json, or busy
    if handle.state_json:
        state = CustomerTicketState.model_validate_json(handle.state_json)
    model = BudgetedChatModel(JournaledChatModel(inner, journal, state.id), Budget(BudgetLimits(max_calls=20)))
    with journal.step(state.id, "classify"):
        ...                                             # model.complete(...) calls
        journal.checkpoint(state.id, "classify", state)
    with journal.step(state.id, "ticket"):
        receipt = exactly_once_ticket(journal, state.id, backend, state.id, draft,
                                      category=state.category, priority=state.priority)
        journal.checkpoint(state.id, "ticket", state)
    journal.finish(state.id, "completed")
"""

from __future__ import annotations

from supportdesk.durable.budget import Budget, BudgetedChatModel, BudgetLimits, BudgetUsage
from supportdesk.durable.db import Database
from supportdesk.durable.effects import (
    TICKET_EFFECT,
    TicketBackend,
    exactly_once_ticket,
    is_definite_rejection,
    reconcile_tickets,
)
from supportdesk.durable.journal import (
    AuditEntry,
    EffectRecord,
    RecordedCall,
    RunHandle,
    RunInfo,
    RunJournal,
    RunStatus,
    StepScope,
)
from supportdesk.durable.redact import RedactingFilter, redact, redact_data
from supportdesk.durable.replay import JournaledChatModel, journaled
from supportdesk.durable.retry import is_transient, retry_transient

__all__ = [
    "TICKET_EFFECT",
    "AuditEntry",
    "Budget",
    "BudgetLimits",
    "BudgetUsage",
    "BudgetedChatModel",
    "Database",
    "EffectRecord",
    "JournaledChatModel",
    "RecordedCall",
    "RedactingFilter",
    "RunHandle",
    "RunInfo",
    "RunJournal",
    "RunStatus",
    "StepScope",
    "TicketBackend",
    "exactly_once_ticket",
    "is_definite_rejection",
    "is_transient",
    "journaled",
    "reconcile_tickets",
    "redact",
    "redact_data",
    "retry_transient",
]
