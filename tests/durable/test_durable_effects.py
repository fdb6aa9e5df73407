"""Exactly one ticket: intent, reconcile by key, unclear outcomes, parking and settling on resume."""

from __future__ import annotations

import pytest
from _durable_helpers import DRAFT, FakeTickets, StatusError

from supportdesk.durable import RunJournal, RunStatus, exactly_once_ticket
from supportdesk.errors import LeaseLostError, NeedsReconcileError


def _ticket(journal: RunJournal, backend: FakeTickets, clock, **kw):
    return exactly_once_ticket(
        journal,
        "r1",
        backend,
        "r1",
        DRAFT,
        category="billing",
        priority="high",
        customer_id="C-1",
        sleep=clock.sleep,
        clock=clock,
        **kw,
    )


def test_creates_once_and_returns_recorded_outcome_afterwards(journal: RunJournal, clock) -> None:
    """The first call creates the ticket; a repeat returns the recorded receipt without touching the backend."""
    journal.start_run("r1", "q")
    backend = FakeTickets()
    receipt = _ticket(journal, backend, clock)
    assert receipt.ticket_id == "T-1" and receipt.created
    again = _ticket(journal, backend, clock)
    assert again == receipt
    assert backend.create_calls == 1 and backend.find_calls == 1
    assert journal.pending_intents("r1") == []
    kinds = [e.kind for e in journal.audit("r1")]
    assert kinds.index("side_effect_intent") < kinds.index("side_effect_outcome")


def test_reconcile_finds_ticket_created_before_crash(journal: RunJournal, clock) -> None:
    """An intent left by a crash after the backend created the ticket is settled by lookup, not a second create."""
    journal.start_run("r1", "q")
    backend = FakeTickets()
    journal.record_intent("r1", "create_ticket", "r1")
    backend.create(DRAFT, idempotency_key="r1", category="billing", priority="high", customer_id=None)
    # crash before the outcome row was written
    assert [i.key for i in journal.pending_intents("r1")] == ["r1"]
    receipt = _ticket(journal, backend, clock)
    assert receipt.ticket_id == "T-1" and not receipt.created
    assert backend.create_calls == 1 and len(backend.tickets) == 1
    assert journal.pending_intents("r1") == []


def test_unclear_outcome_found_by_bounded_search(journal: RunJournal, clock) -> None:
    """A timeout after sending is resolved by polling find_by_key until the ticket shows up."""
    journal.start_run("r1", "q")
    backend = FakeTickets(["timeout_after_send"], hidden_finds=3)
    receipt = _ticket(journal, backend, clock, wait_s=30)
    assert receipt.ticket_id == "T-1"
    assert backend.create_calls == 1 and len(backend.tickets) == 1
    assert len(clock.sleeps) >= 2 and sum(clock.sleeps) <= 30


def test_unclear_outcome_parks_run_then_resume_settles_by_lookup(journal: RunJournal, db_url: str, clock) -> None:
    """Still unknown after the bounded wait: NeedsReconcileError, run parked; a resume finds the ticket."""
    journal.start_run("r1", "q")
    backend = FakeTickets(["timeout_after_send"], hidden_finds=1000)
    with pytest.raises(NeedsReconcileError) as caught:
        _ticket(journal, backend, clock, wait_s=20, first_poll_s=1, max_poll_s=4)
    assert caught.value.key == "r1" and caught.value.effect == "create_ticket"
    assert sum(clock.sleeps) <= 20 + 1e-9
    info = journal.get("r1")
    assert info.status is RunStatus.NEEDS_RECONCILE and "ReadTimeout" in (info.reason or "")
    assert [(i.key, i.status) for i in journal.pending_intents("r1")] == [("r1", "unclear")]

    backend.hidden_finds = 0  # the backend caught up
    backend._hidden.clear()
    later = RunJournal(db_url, owner="B", lease_s=60, clock=clock, sleep=clock.sleep)
    assert later.start_run("r1", "q").resumed
    receipt = exactly_once_ticket(
        later, "r1", backend, "r1", DRAFT, category="billing", priority="high", sleep=clock.sleep, clock=clock
    )
    assert receipt.ticket_id == "T-1" and backend.create_calls == 1
    assert later.pending_intents("r1") == []


def test_lost_request_is_created_on_resume(journal: RunJournal, clock) -> None:
    """If the unclear create never landed, the resume's lookup misses and it creates exactly one ticket."""
    journal.start_run("r1", "q")
    backend = FakeTickets(["lost"])
    with pytest.raises(NeedsReconcileError):
        _ticket(journal, backend, clock, wait_s=5)
    assert journal.start_run("r1", "q").resumed
    receipt = _ticket(journal, backend, clock)
    assert receipt.created and backend.create_calls == 2 and len(backend.tickets) == 1


def test_definite_rejection_is_not_parked(journal: RunJournal, clock) -> None:
    """A 4xx answer means nothing was created: the intent is marked rejected and the error propagates."""
    journal.start_run("r1", "q")
    backend = FakeTickets([StatusError(400)])
    with pytest.raises(StatusError):
        _ticket(journal, backend, clock)
    assert journal.get("r1").status is RunStatus.RUNNING
    assert journal.pending_intents("r1") == []
    assert journal.effect("r1", "create_ticket", "r1").status == "rejected"  # type: ignore[union-attr]
    assert _ticket(journal, backend, clock).ticket_id == "T-1"


def test_executor_without_lease_sends_nothing(db_url: str, clock) -> None:
    """A process that lost the lease is stopped at the intent and never calls the backend."""
    a = RunJournal(db_url, owner="A", lease_s=60, clock=clock)
    a.start_run("r1", "q")
    clock.advance(61)
    RunJournal(db_url, owner="B", lease_s=60, clock=clock).start_run("r1", "q")
    backend = FakeTickets()
    with pytest.raises(LeaseLostError):
        exactly_once_ticket(a, "r1", backend, "r1", DRAFT, category="billing", priority="high")
    assert backend.create_calls == 0 and backend.find_calls == 0


def test_rejection_is_recognised_through_the_cause_chain() -> None:
    """A TicketingError raised from a 400 is a definite rejection; one raised from a timeout or 503 is not."""
    import httpx

    from supportdesk.durable import is_definite_rejection
    from supportdesk.errors import TicketingError

    def wrapped(cause: BaseException) -> TicketingError:
        try:
            raise TicketingError("backend failed") from cause
        except TicketingError as exc:
            return exc

    assert is_definite_rejection(wrapped(StatusError(400)))
    assert not is_definite_rejection(wrapped(StatusError(503)))
    assert not is_definite_rejection(wrapped(httpx.ReadTimeout("t")))
    assert not is_definite_rejection(TicketingError("connection reset"))
