"""Budgets end to end: a run that exceeds one stops with a typed error, status failed, the reason
stored with the run, no ticket, and at most one call of overshoot.

In-process runs use the real flow (FAQ stage, triage crew, local ticket store) around a scripted
model on the escalation path, which needs two model calls (classification, ticket title); every
limit below lets the first call through and must refuse the second. The seconds limit uses a fake
budget clock that each model call moves ten seconds on (no timing assertions). One case runs the
CLI in a subprocess with ``SUPPORTDESK_BUDGET_LLM_CALLS=1``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _crash_support import CUSTOMER, DOUBLE_CHARGE, RUN_ID, ask_argv, calls_log_counts, driver
from _durable_helpers import FakeClock
from crash_driver import respond

import supportdesk.durable
from supportdesk._runner import open_journal, resume_run, run_query
from supportdesk.crews.tools.ticketing import build_ticket_backend
from supportdesk.durable import Budget
from supportdesk.llm import ScriptedModel
from supportdesk.models import TicketStatus
from supportdesk.settings import Settings

LIMITS: dict[str, dict[str, Any]] = {
    "calls": {"budget_llm_calls": 1},
    "tokens": {"budget_tokens": 50},  # the first call alone uses ~220 prompt tokens
    "cost": {"budget_cost_usd": 0.01, "price_per_1k_tokens_usd": 1.0},  # the first call costs ~$0.22
    "seconds": {"budget_seconds": 5.0},  # the fake clock moves 10 s per call
}


@pytest.fixture
def budget_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Budgets created by runs in this test measure seconds on a fake clock."""
    clock = FakeClock(start=0.0)

    class FakeClockBudget(Budget):
        def __init__(self, limits: Any, **kwargs: Any) -> None:
            super().__init__(limits, clock=clock)

    monkeypatch.setattr(supportdesk.durable, "Budget", FakeClockBudget)
    return clock


@pytest.mark.parametrize("limit", list(LIMITS))
def test_exceeding_a_budget_fails_the_run_with_the_reason_stored_and_no_ticket(
    limit: str, db_url: str, tmp_path: Path, budget_clock: FakeClock
) -> None:
    """Exceeding this limit mid-triage ends the run failed with a BudgetExceededError naming the limit, stored with the run; no ticket, at most one call over."""

    def responder(call: Any) -> Any:
        budget_clock.advance(10.0)
        return respond(call)

    model = ScriptedModel(responder)
    settings = Settings(home=driver().new_home(tmp_path), database_url=db_url, **LIMITS[limit])
    state = run_query(DOUBLE_CHARGE, customer=CUSTOMER, run_id=RUN_ID, settings=settings, chat_model=model)

    assert state.status is TicketStatus.FAILED
    assert state.failure_reason.startswith("BudgetExceededError: budget exceeded: " + limit)
    assert state.ticket_id is None and build_ticket_backend(settings).list_tickets() == []
    assert len(model.calls) == 1  # the first call went through, the second was refused before the model

    journal = open_journal(settings)
    info = journal.get(RUN_ID)
    assert info.status.value == "failed" and info.reason == state.failure_reason
    stored = journal.load_model(RUN_ID, type(state))
    assert stored is not None and stored.status is TicketStatus.FAILED and stored.failure_reason == state.failure_reason
    kinds = [e.kind for e in journal.audit(RUN_ID)]
    assert kinds.count("llm_call") == 1 and "side_effect_intent" not in kinds
    errors = [e.data for e in journal.audit(RUN_ID) if e.kind == "error"]
    assert any(e.get("error") == "BudgetExceededError" for e in errors)

    again = resume_run(RUN_ID, settings=settings, chat_model=model)  # a failed run is final
    assert again.status is TicketStatus.FAILED and again.failure_reason == state.failure_reason
    assert len(model.calls) == 1


def test_budget_counts_replayed_calls_after_a_crash(db_url: str, tmp_path: Path) -> None:
    """A resumed run charges its replayed calls to the budget: with a one-call limit, a run killed after its first recorded call fails on resume without calling the model."""
    d = driver()
    env = d.env_for(d.new_home(tmp_path), db_url, {"SUPPORTDESK_BUDGET_LLM_CALLS": "1"})
    log = tmp_path / "calls.log"
    killed = d.run(ask_argv(), env=env, kill_at="llm_recorded", kill_nth=1, calls_log=log)
    assert killed.returncode == -9, killed.stderr[-2000:]
    resumed = d.run(["resume", RUN_ID, "--json"], env=env, calls_log=log)
    assert resumed.returncode == 1, resumed.stderr[-2000:]
    assert resumed.json()["failure_reason"].startswith("BudgetExceededError: budget exceeded: calls used 1 of 1")
    _, ended = calls_log_counts(log)
    assert sum(ended.values()) == 1  # the replayed call was not made again, the refused one never made


def test_cli_call_budget_fails_the_run_and_show_reports_the_reason(db_url: str, tmp_path: Path) -> None:
    """`ask` with SUPPORTDESK_BUDGET_LLM_CALLS=1 exits 1 naming the limit; `show` has status failed and the reason; no ticket."""
    d = driver()
    env = d.env_for(d.new_home(tmp_path), db_url, {"SUPPORTDESK_BUDGET_LLM_CALLS": "1"})
    log = tmp_path / "calls.log"
    result = d.run(ask_argv(), env=env, calls_log=log)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "budget exceeded: calls used 1 of 1" in result.stderr
    state = result.json()
    assert state["status"] == "failed" and state["ticket_id"] is None
    record = d.run(["show", RUN_ID, "--json"], env=env).json()
    assert record["status"] == "failed" and "budget exceeded: calls" in record["reason"]
    assert record["state"]["status"] == "failed" and record["state"]["failure_reason"] == state["failure_reason"]
    assert d.run(["tickets", "--json"], env=env).json() == []
    started, ended = calls_log_counts(log)
    assert sum(started.values()) == sum(ended.values()) == 1
