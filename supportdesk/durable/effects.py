"""Exactly one ticket per run: intent, reconcile by idempotency key, create, record the outcome.

    from supportdesk.durable import exactly_once_ticket

    receipt = exactly_once_ticket(journal, run_id, backend, key=state.id, draft=draft,
                                  category=state.category, priority=state.priority,
                                  customer_id=state.customer_id)

The sequence, each write one transaction:

1. an outcome is recorded for (run, ``create_ticket``, key): return it, call nothing;
2. write the intent (fenced: only the lease holder gets past this);
3. ``backend.find_by_key(key)`` (read-only, retried on transient errors): a ticket with this key
   exists (an earlier attempt created it and crashed): record it as the outcome and return it;
4. ``backend.create(draft, idempotency_key=key, ...)`` once, never retried blindly;
5. success: record the outcome. A definite rejection (HTTP 4xx other than 408/409/425/429, or an
   exception with ``request_sent = False``) marks the intent ``rejected`` and re-raises: nothing was
   created. Anything else (timeout after sending, 5xx, connection reset, ``TicketingError``) is an
   *unclear* outcome: poll ``find_by_key`` with backoff for up to ``wait_s``; found: record it;
   still unknown: park the run as ``needs_reconcile`` with the reason and raise
   :class:`~supportdesk.errors.NeedsReconcileError`. A later resume runs this again from step 1
   and settles it: step 3 finds the ticket, or, if the backend still has none, creates it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from supportdesk.durable.journal import RunJournal
from supportdesk.durable.redact import redact
from supportdesk.durable.retry import retry_transient, status_code_of
from supportdesk.errors import NeedsReconcileError
from supportdesk.models.responses import TicketDraft, TicketReceipt

__all__ = ["TICKET_EFFECT", "TicketBackend", "exactly_once_ticket", "is_definite_rejection", "reconcile_tickets"]

logger = logging.getLogger(__name__)

TICKET_EFFECT = "create_ticket"
_NOT_DEFINITE = frozenset({408, 409, 425, 429})


@runtime_checkable
class TicketBackend(Protocol):
    """What :func:`exactly_once_ticket` needs from a ticket backend (Jira, local)."""

    def create(
        self,
        draft: TicketDraft,
        *,
        idempotency_key: str,
        category: str,
        priority: str,
        customer_id: str | None,
    ) -> TicketReceipt:
        """File a ticket carrying ``idempotency_key`` (searchable by :meth:`find_by_key`), or return the one
        already filed under that key (``created=False``).

        :raises TicketingError: the backend failed; retrying with the same key is safe.
        """
        ...

    def find_by_key(self, key: str) -> TicketReceipt | None:
        """The ticket carrying ``key``, or None."""
        ...


def is_definite_rejection(exc: BaseException) -> bool:
    """True when the backend certainly did not create anything: a 4xx answer (not 408/409/425/429),
    or an exception that says ``request_sent = False``. The ``__cause__`` chain is searched, so a
    ``TicketingError`` raised ``from`` the client's HTTP error is judged by that error's status."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if getattr(current, "request_sent", None) is False:
            return True
        code = status_code_of(current)
        if code is not None:
            return 400 <= code <= 499 and code not in _NOT_DEFINITE
        current = current.__cause__
    return False


def exactly_once_ticket(
    journal: RunJournal,
    run_id: str,
    backend: TicketBackend,
    key: str,
    draft: TicketDraft,
    *,
    category: str,
    priority: str,
    customer_id: str | None = None,
    wait_s: float = 30.0,
    first_poll_s: float = 0.5,
    max_poll_s: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> TicketReceipt:
    """Create the run's ticket at most once and return its receipt (see the module docstring).

    :raises NeedsReconcileError: the outcome stayed unknown for ``wait_s``; the run is parked.
    :raises LeaseLostError: another executor owns the run; nothing was sent.
    """
    stored = journal.effect(run_id, TICKET_EFFECT, key)
    if stored is not None and stored.outcome_json is not None:
        logger.info("run %s: ticket for key %s already recorded", run_id, key)
        return TicketReceipt.model_validate_json(stored.outcome_json)
    earlier_attempt = stored is not None and stored.status in ("intent", "unclear")
    journal.record_intent(
        run_id, TICKET_EFFECT, key, data={"category": category, "priority": priority, "reconcile": earlier_attempt}
    )

    try:
        existing = retry_transient(lambda: backend.find_by_key(key), attempts=3, base_delay=first_poll_s, sleep=sleep)
    except Exception as exc:
        reason = f"cannot look up ticket by key {key}: {type(exc).__name__}: {exc}"
        if earlier_attempt:
            _park(journal, run_id, key, reason, exc)
        journal.mark_effect(run_id, TICKET_EFFECT, key, "rejected", reason)
        raise
    if existing is not None:
        logger.info("run %s: found existing ticket %s for key %s", run_id, existing.ticket_id, key)
        return _settle(journal, run_id, key, existing)

    try:
        receipt = backend.create(
            draft, idempotency_key=key, category=category, priority=priority, customer_id=customer_id
        )
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        if is_definite_rejection(exc):
            journal.mark_effect(run_id, TICKET_EFFECT, key, "rejected", reason)
            raise
        logger.warning("run %s: ticket creation outcome unclear (%s); searching by key", run_id, redact(reason))
        journal.mark_effect(run_id, TICKET_EFFECT, key, "unclear", reason)
        found = _await_ticket(backend, key, wait_s, first_poll_s, max_poll_s, sleep, clock)
        if found is None:
            _park(journal, run_id, key, f"ticket creation unclear after {wait_s:g}s: {reason}", exc)
        assert found is not None
        return _settle(journal, run_id, key, found)
    return _settle(journal, run_id, key, receipt)


def _settle(journal: RunJournal, run_id: str, key: str, receipt: TicketReceipt) -> TicketReceipt:
    stored = journal.record_outcome(run_id, TICKET_EFFECT, key, receipt.model_dump_json())
    return TicketReceipt.model_validate_json(stored)


def _park(journal: RunJournal, run_id: str, key: str, reason: str, cause: BaseException) -> None:
    safe = redact(reason)[:500]
    journal.park(run_id, safe)
    raise NeedsReconcileError(f"run {run_id}: {safe}", run_id=run_id, effect=TICKET_EFFECT, key=key) from cause


def _await_ticket(
    backend: TicketBackend,
    key: str,
    wait_s: float,
    first_poll_s: float,
    max_poll_s: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> TicketReceipt | None:
    started = clock()
    delay = first_poll_s
    while True:
        try:
            found = backend.find_by_key(key)
        except Exception as exc:  # noqa: BLE001 - keep polling until the deadline
            logger.info("find_by_key(%s) failed while reconciling: %s", key, type(exc).__name__)
            found = None
        if found is not None:
            return found
        left = wait_s - (clock() - started)
        if left <= 0:
            return None
        sleep(min(delay, left))
        delay = min(max_poll_s, delay * 2)


def reconcile_tickets(journal: RunJournal, run_id: str, backend: TicketBackend) -> dict[str, TicketReceipt | None]:
    """Settle a run's pending ticket intents by looking each key up (for an operator command).

    Records the outcome of every key that now has a ticket; returns key -> receipt (None: still unknown).
    Does not create anything and needs no lease.
    """
    settled: dict[str, TicketReceipt | None] = {}
    for intent in journal.pending_intents(run_id):
        if intent.effect != TICKET_EFFECT:
            continue
        found = backend.find_by_key(intent.key)
        settled[intent.key] = _settle(journal, run_id, intent.key, found) if found is not None else None
    return settled
