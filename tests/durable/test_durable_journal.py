"""Runs, checkpoints, leases and the audit trail, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from supportdesk.models.state import CustomerTicketState, TicketStatus

from supportdesk.durable import RunJournal, RunStatus
from supportdesk.errors import IdempotencyConflictError, LeaseLostError, RunNotFoundError


def test_checkpoint_round_trip(journal: RunJournal) -> None:
    """A checkpointed CustomerTicketState loads back equal, and its steps are listed in order."""
    state = CustomerTicketState(original_query="Where is my refund?", customer_hint="C-1001")
    handle = journal.start_run(state.id, state.original_query, state.customer_hint)
    assert handle.created and handle.acquired and handle.state_json is None
    journal.checkpoint(state.id, "intake", state)
    state.status = TicketStatus.ESCALATED
    state.route_trace.append("faq_miss")
    journal.checkpoint(state.id, "route", state)
    assert journal.completed_steps(state.id) == ["intake", "route"]
    assert journal.load_model(state.id, CustomerTicketState) == state
    assert CustomerTicketState.model_validate_json(journal.load_state(state.id) or "") == state


def test_start_run_is_idempotent(journal: RunJournal) -> None:
    """Starting an existing id returns the existing run (same row, checkpoints kept) instead of a new one."""
    journal.start_run("r1", "first query", "a@example.com")
    journal.checkpoint("r1", "intake", {"n": 1})
    again = journal.start_run("r1", "first query", "a@example.com")
    assert not again.created and again.acquired
    assert again.info.query == "first query"
    assert again.completed_steps == ("intake",)
    assert again.state_json is not None and '"n": 1' in again.state_json
    assert [r.run_id for r in journal.list_runs()] == ["r1"]


def test_finished_run_returns_stored_result(journal: RunJournal) -> None:
    """A completed run is not executed again: start_run hands back its final state without the lease."""
    journal.start_run("r1", "q")
    journal.finish("r1", "completed", state={"answer": 42})
    handle = journal.start_run("r1", "q")
    assert not handle.acquired and handle.info.is_final
    assert handle.status is RunStatus.COMPLETED
    assert handle.state_json == '{"answer": 42}'


def test_second_executor_waits_then_takes_over_expired_lease(db_url: str, clock) -> None:
    """While A holds the lease B does not get it; once A's lease expires B resumes and A is fenced out."""
    a = RunJournal(db_url, owner="A", lease_s=60, clock=clock, sleep=clock.sleep)
    b = RunJournal(db_url, owner="B", lease_s=60, clock=clock, sleep=clock.sleep)
    a.start_run("r1", "q")
    a.checkpoint("r1", "intake", {"by": "A"})
    busy = b.start_run("r1", "q", wait_s=10, poll_s=1)
    assert not busy.acquired and not busy.info.is_final and busy.info.lease_owner == "A"
    clock.advance(61)
    taken = b.start_run("r1", "q")
    assert taken.acquired and taken.resumed and taken.completed_steps == ("intake",)
    with pytest.raises(LeaseLostError):
        a.checkpoint("r1", "route", {"by": "A"})
    with pytest.raises(LeaseLostError):
        a.finish("r1", "completed")
    b.checkpoint("r1", "route", {"by": "B"})
    assert b.completed_steps("r1") == ["intake", "route"]
    assert b.get("r1").attempts == 2


def test_waiting_executor_gets_result_when_owner_finishes(db_url: str, clock) -> None:
    """A waiter whose poll sees the owner finish returns the stored result without executing."""
    a = RunJournal(db_url, owner="A", lease_s=60, clock=clock)
    a.start_run("r1", "q")

    def finish_while_waiting(seconds: float) -> None:
        clock.advance(seconds)
        if a.get("r1").status is RunStatus.RUNNING:
            a.finish("r1", "completed", state={"done": True})

    b = RunJournal(db_url, owner="B", lease_s=60, clock=clock, sleep=finish_while_waiting)
    handle = b.start_run("r1", "q", wait_s=30, poll_s=1)
    assert not handle.acquired and handle.info.is_final and handle.state_json == '{"done": true}'


def test_unknown_run_id_raises_typed_error(journal: RunJournal) -> None:
    """Every read or write of an unknown run id raises RunNotFoundError naming the id."""
    for call in (
        lambda: journal.get("nope"),
        lambda: journal.load_state("nope"),
        lambda: journal.completed_steps("nope"),
        lambda: journal.audit("nope"),
        lambda: journal.checkpoint("nope", "s", {}),
        lambda: journal.finish("nope", "failed"),
        lambda: journal.append_audit("nope", "error", {}),
        lambda: journal.pending_intents("nope"),
    ):
        with pytest.raises(RunNotFoundError, match="nope"):
            call()


def test_park_and_resume(journal: RunJournal) -> None:
    """A parked run keeps its reason, is listed as resumable, and a later start_run resumes it."""
    journal.start_run("r1", "q")
    journal.park("r1", "ticket outcome unknown")
    info = journal.get("r1")
    assert info.status is RunStatus.NEEDS_RECONCILE and info.reason == "ticket outcome unknown"
    assert [r.run_id for r in journal.list_resumable()] == ["r1"]
    assert [r.run_id for r in journal.list_runs(status="needs_reconcile")] == ["r1"]
    assert journal.start_run("r1", "q").resumed


def test_audit_trail_in_order_and_append_only(journal: RunJournal) -> None:
    """Audit entries come back in sequence with step names, and the table refuses updates and deletes."""
    journal.start_run("r1", "q")
    with journal.step("r1", "intake"):
        journal.checkpoint("r1", "intake", {})
    journal.finish("r1", "completed")
    entries = journal.audit("r1")
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert [e.kind for e in entries] == [
        "run_created",
        "lease_acquired",
        "step_start",
        "checkpoint",
        "step_end",
        "run_finished",
    ]
    assert entries[2].step == entries[3].step == entries[4].step == "intake"
    for sql in ("UPDATE durable_audit SET kind = 'x'", "DELETE FROM durable_audit"):
        with pytest.raises(Exception, match="append-only"), journal.db.transaction() as tx:
            tx.execute(sql)
    assert len(journal.audit("r1")) == len(entries)


def test_step_boundaries_write_fewer_transactions_and_stay_fenced(db_url: str, clock) -> None:
    """A step right after a checkpoint skips the lease renewal and its end is written with its checkpoint
    (same trail as before); once a quarter of the lease has passed, the step start renews and is fenced."""
    a = RunJournal(db_url, owner="A", lease_s=60, clock=clock, sleep=clock.sleep)
    a.start_run("r1", "q")
    for name in ("intake", "route"):
        with a.step("r1", name):
            a.checkpoint("r1", name, {"step": name})
    kinds = [(e.kind, e.step) for e in a.audit("r1")][2:]
    assert kinds == [("step_start", "intake"), ("checkpoint", "intake"), ("step_end", "intake"),
                     ("step_start", "route"), ("checkpoint", "route"), ("step_end", "route")]
    clock.advance(61)  # A's lease expired; B takes the run over
    assert RunJournal(db_url, owner="B", lease_s=60, clock=clock, sleep=clock.sleep).start_run("r1", "q").acquired
    with pytest.raises(LeaseLostError), a.step("r1", "triage"):  # A renewed too long ago: it asks, and is fenced
        pass


def test_step_failure_is_audited(journal: RunJournal) -> None:
    """An exception inside a step is audited as step_end ok=false and propagates unchanged."""
    journal.start_run("r1", "q")
    with pytest.raises(ZeroDivisionError), journal.step("r1", "boom"):
        1 / 0  # noqa: B018
    last = journal.audit("r1")[-1]
    assert last.kind == "step_end" and last.data == {"ok": False, "error": "ZeroDivisionError"}


@pytest.mark.parametrize(("query", "customer"), [("another query", "a@example.com"), ("first query", None),
                                                 ("first query", "b@example.com"), ("first query ", "a@example.com")])
def test_reused_run_id_with_another_payload_is_refused(journal: RunJournal, query: str, customer: str | None) -> None:
    """Starting an existing id with a different query or customer raises IdempotencyConflictError and changes nothing."""
    journal.start_run("r1", "first query", "a@example.com")
    journal.checkpoint("r1", "intake", {"n": 1})
    before = (journal.get("r1"), journal.audit("r1"))
    with pytest.raises(IdempotencyConflictError, match="'r1'"):
        journal.start_run("r1", query, customer)
    with pytest.raises(IdempotencyConflictError):
        journal.check_payload("r1", query, customer)
    assert (journal.get("r1"), journal.audit("r1")) == before


@pytest.mark.parametrize("status", ["running", "crashed", "completed", "failed"])
def test_payload_conflict_holds_in_every_status(journal: RunJournal, clock, status: str) -> None:
    """In flight, crashed (lease expired), completed or failed: another payload under the id is refused."""
    journal.start_run("r1", "q", "C-1001")
    if status == "crashed":
        clock.advance(120)
    elif status in ("completed", "failed"):
        journal.finish("r1", status)
    with pytest.raises(IdempotencyConflictError):
        RunJournal(journal.db, owner="B", lease_s=60, clock=clock, sleep=clock.sleep).start_run("r1", "q2", "C-1001")
    assert journal.get("r1").lease_owner == (None if status in ("completed", "failed") else "A")


def test_same_payload_matches_case_insensitive_customer(journal: RunJournal) -> None:
    """The customer part of the payload ignores case and surrounding spaces; unknown ids give None."""
    journal.start_run("r1", "q", "C-1001")
    assert journal.check_payload("r1", "q", " c-1001 ").run_id == "r1"
    assert journal.check_payload("nope", "q", None) is None


def test_runs_created_before_fingerprints_are_checked_from_their_stored_payload(journal: RunJournal) -> None:
    """A run row without a stored fingerprint (an older database) is checked against its stored query and customer."""
    journal.start_run("r1", "q", "C-1001")
    with journal.db.transaction() as tx:
        tx.execute("DELETE FROM durable_payloads WHERE run_id = ?", ("r1",))
    assert journal.check_payload("r1", "q", "C-1001") is not None
    with pytest.raises(IdempotencyConflictError):
        journal.start_run("r1", "other", "C-1001")
