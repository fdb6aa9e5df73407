"""Human approval before side effects: the approval queue and the decisions on it.

A run whose triaged draft matches an approval rule (``approval:`` in ``config/policies.yaml``) parks
as ``awaiting_approval`` with its draft in the state. A decision is journaled first (the run's audit
trail, first decision wins, with who decided and the edits) and then applied by resuming the run:
approve files the ticket exactly once through the usual path, reject ends the run ``rejected`` with
the note and no ticket. So a decision is never lost, whichever process dies when. A wait past its
deadline gets the configured default on the next look (:func:`list_approvals`, :func:`sweep`, a
resume) or, on Temporal, by the workflow's timer. Usage::

    import supportdesk

    for request in supportdesk.list_approvals():
        print(request.run_id, request.title, request.priority)
    state = supportdesk.approve("run-42", edits={"priority": "high"}, note="refund confirmed")
    state.status                            # TicketStatus.TICKET_CREATED
    supportdesk.reject("run-43", note="duplicate of run-42").status   # TicketStatus.REJECTED

With ``SUPPORTDESK_ENGINE=temporal`` the decision is journaled here and the run's workflow is
signalled; a ``supportdesk worker`` applies it.
"""

from __future__ import annotations

import getpass
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from supportdesk._approval import DECIDED, TIMEOUT_ACTOR, deadline_passed
from supportdesk.errors import ApprovalError, RunNotFoundError
from supportdesk.models import ApprovalEdits, ApprovalRequest, CustomerTicketState, Decision
from supportdesk.settings import Settings

if TYPE_CHECKING:
    from supportdesk.durable import AuditEntry, RunJournal
    from supportdesk.flows.services import SupportServices

__all__ = ["ApprovalRequest", "approve", "list_approvals", "record_decision", "reject", "sweep"]

logger = logging.getLogger(__name__)

AWAITING = "awaiting_approval"


def _journal(settings: Settings) -> RunJournal:
    from supportdesk._runner import open_journal

    return open_journal(settings)


def _actor(actor: str) -> str:
    """``"cli"`` becomes ``cli:<login name>``; any other actor (``tenant:<t> key:<id>``) is kept."""
    if actor == "cli":
        try:
            return f"cli:{getpass.getuser()}"
        except (OSError, KeyError):  # no login name (a container without a passwd entry)
            return "cli:unknown"
    return actor


def _waiting_state(journal: RunJournal, run_id: str) -> CustomerTicketState | None:
    text = journal.load_state(run_id)
    state = CustomerTicketState.model_validate_json(text) if text else None
    return state if state is not None and state.approval is not None else None


def _validate_edits(edits: ApprovalEdits | Mapping[str, Any] | None, settings: Settings) -> dict[str, str]:
    if edits is None:
        return {}
    try:
        parsed = edits if isinstance(edits, ApprovalEdits) else ApprovalEdits.model_validate(dict(edits))
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ApprovalError(f"invalid edit {'.'.join(map(str, first['loc']))}: {first['msg']}") from exc
    changes = parsed.changes()
    if "category" in changes:
        from supportdesk._config import load_yaml

        data = load_yaml("categories.yaml", settings.config_dir)
        allowed = {*data.get("categories", {}), data.get("fallback", "unknown")}
        if changes["category"] not in allowed:
            raise ApprovalError(f"unknown category {changes['category']!r} (one of: {', '.join(sorted(allowed))})")
    return changes


def record_decision(
    run_id: str,
    decision: Decision,
    *,
    edits: ApprovalEdits | Mapping[str, Any] | None = None,
    note: str | None = None,
    actor: str = "cli",
    settings: Settings | None = None,
) -> AuditEntry:
    """Journal a decision on a waiting run without applying it (engines apply it). Returns the entry.

    Repeating the same decision is a no-op; a different decision after the first raises.

    :raises RunNotFoundError: no run has this id.
    :raises ApprovalError: the run does not wait for approval, it was decided otherwise, or an edit is invalid.
    """
    from supportdesk._query import validate_run_id

    settings = settings or Settings()
    run_id = validate_run_id(run_id)
    if decision not in ("approve", "reject"):
        raise ApprovalError(f"decision must be 'approve' or 'reject', not {decision!r}")
    changes = _validate_edits(edits, settings)
    if decision == "reject" and changes:
        raise ApprovalError("a rejection takes no edits")
    if decision == "reject" and not (note or "").strip():
        raise ApprovalError("a rejection needs a note")
    journal = _journal(settings)
    info = journal.get(run_id)
    state = _waiting_state(journal, run_id)
    if info.status.value != AWAITING or state is None:
        raise ApprovalError(f"run {run_id} does not wait for approval (status {info.status.value})")
    data = {"decision": decision, "actor": _actor(actor), "note": (note or "").strip() or None, "edits": changes}
    appended, entry = journal.append_audit_once(run_id, DECIDED, data)
    if not appended and entry.data.get("decision") != decision:
        raise ApprovalError(
            f"run {run_id} was already decided: {entry.data.get('decision')} by {entry.data.get('actor')} at {entry.ts}"
        )
    if appended:
        logger.info("run %s: %s recorded by %s", run_id, decision, data["actor"])
    return entry


def _apply(run_id: str, settings: Settings, services: SupportServices | None) -> CustomerTicketState:
    """Carry out the journaled decision: resume the run here, or signal its Temporal workflow."""
    if getattr(settings, "engine", "inprocess") == "temporal":
        from supportdesk.service.temporal.engine import TemporalEngine

        engine = TemporalEngine(settings)
        try:
            engine.signal_decided(run_id)
            final = engine.wait_result(run_id, timeout_s=settings.run_wait_s)
        finally:
            engine.close()
        if final is not None:
            return final
        text = _journal(settings).load_state(run_id)
        return CustomerTicketState.model_validate_json(text)  # type: ignore[arg-type]
    from supportdesk._runner import resume_run

    return resume_run(run_id, settings=settings, services=services)


def approve(
    run_id: str,
    *,
    edits: ApprovalEdits | Mapping[str, Any] | None = None,
    note: str | None = None,
    actor: str = "cli",
    settings: Settings | None = None,
    services: SupportServices | None = None,
) -> CustomerTicketState:
    """Approve a waiting run's ticket draft (optionally edited: title, priority, category) and file the
    ticket exactly once. Returns the run's state after the decision was applied.

    :raises RunNotFoundError: no run has this id.
    :raises ApprovalError: the run does not wait for approval, was rejected already, or an edit is invalid.
    """
    settings = settings or Settings()
    record_decision(run_id, "approve", edits=edits, note=note, actor=actor, settings=settings)
    return _apply(run_id, settings, services)


def reject(
    run_id: str,
    *,
    note: str,
    actor: str = "cli",
    settings: Settings | None = None,
    services: SupportServices | None = None,
) -> CustomerTicketState:
    """Reject a waiting run's ticket draft: the run ends ``rejected`` with the note, and no ticket is filed.

    :raises RunNotFoundError: no run has this id.
    :raises ApprovalError: the run does not wait for approval, was approved already, or the note is empty.
    """
    settings = settings or Settings()
    record_decision(run_id, "reject", note=note, actor=actor, settings=settings)
    return _apply(run_id, settings, services)


def _due(journal: RunJournal, limit: int, now: float) -> tuple[list[CustomerTicketState], list[str]]:
    """(runs still waiting, ids of waiting runs that have a decision to apply), journaling expired defaults."""
    waiting: list[CustomerTicketState] = []
    due: list[str] = []
    for info in journal.list_runs(status=AWAITING, limit=limit):
        state = _waiting_state(journal, info.run_id)
        if state is None or state.approval is None:
            continue
        decided = journal.first_audit(info.run_id, DECIDED)
        if decided is None and deadline_passed(state.approval, now):
            wait = state.approval
            note = f"no decision by {wait.deadline}: default {wait.on_timeout}"
            _, decided = journal.append_audit_once(
                info.run_id, DECIDED, {"decision": wait.on_timeout, "actor": TIMEOUT_ACTOR, "note": note, "edits": {}}
            )
            logger.info("run %s: approval timed out, default %s recorded", info.run_id, wait.on_timeout)
        if decided is None:
            waiting.append(state)
        else:
            due.append(info.run_id)
    due += _abandoned(journal, limit, now)
    return waiting, due


def _abandoned(journal: RunJournal, limit: int, now: float) -> list[str]:
    """Runs whose decision was being applied when their process died (status running, owner gone)."""
    from supportdesk.durable.journal import _owner_is_dead

    found = []
    for info in journal.list_runs(status="running", limit=limit):
        if not (_owner_is_dead(info.lease_owner) or (info.lease_expires or 0.0) < now):
            continue
        state = _waiting_state(journal, info.run_id)
        if state is not None and journal.first_audit(info.run_id, DECIDED) is not None:
            found.append(info.run_id)
    return found


def sweep(
    settings: Settings | None = None, *, services: SupportServices | None = None, limit: int = 1000
) -> list[CustomerTicketState]:
    """Apply what is due: journal the default decision of every expired wait, then apply every journaled
    decision not applied yet (a process died in between). Returns the states of the runs it moved on."""
    settings = settings or Settings()
    _, due = _due(_journal(settings), limit, time.time())
    moved: list[CustomerTicketState] = []
    for run_id in due:
        try:
            moved.append(_apply(run_id, settings, services))
        except RunNotFoundError:  # pragma: no cover - a run row is never deleted
            continue
        except Exception:  # one stuck run must not hide the others; it stays due for the next sweep
            logger.warning("run %s: could not apply its approval decision", run_id, exc_info=True)
    return moved


def list_approvals(
    settings: Settings | None = None, *, services: SupportServices | None = None, limit: int = 1000
) -> list[ApprovalRequest]:
    """The runs waiting for a decision, oldest first, after applying what is due (:func:`sweep`)."""
    settings = settings or Settings()
    journal = _journal(settings)
    _, due = _due(journal, limit, time.time())
    if due:
        sweep(settings, services=services, limit=limit)
    waiting, _ = _due(journal, limit, time.time())
    requests = [
        ApprovalRequest(
            run_id=s.id,
            title=s.ticket_title or "Support request",
            summary=s.final_summary or "",
            category=s.category,
            priority=s.priority,
            customer_id=s.customer_id,
            rules=s.approval.rules,
            requested_at=s.approval.requested_at,
            deadline=s.approval.deadline,
            on_timeout=s.approval.on_timeout,
        )
        for s in waiting
        if s.approval is not None
    ]
    return sorted(requests, key=lambda r: (r.requested_at, r.run_id))
