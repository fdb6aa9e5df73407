"""Per-run budgets: calls, tokens, seconds and cost, with at most one call of overshoot."""

from __future__ import annotations

import pytest

from supportdesk.durable import Budget, BudgetedChatModel, BudgetLimits, JournaledChatModel, RunJournal
from supportdesk.errors import BudgetExceededError
from supportdesk.llm import ScriptedModel
from supportdesk.llm._types import ChatMessage

TEN_WORDS = " ".join(["w"] * 9)  # ScriptedModel counts words: 9 prompt + 1 completion token = 10 per call


def _spend(model: BudgetedChatModel, max_calls: int = 100) -> int:
    """Call until the budget refuses; return how many calls went through."""
    for n in range(max_calls):
        try:
            model.complete([ChatMessage("user", TEN_WORDS)])
        except BudgetExceededError:
            return n
    raise AssertionError("budget never refused")


def test_call_limit_never_overshoots() -> None:
    """max_calls=3 allows exactly three calls; the fourth raises with limit='calls' before reaching the model."""
    inner = ScriptedModel(lambda call: "x")
    model = BudgetedChatModel(inner, Budget(BudgetLimits(max_calls=3)))
    assert _spend(model) == 3 and len(inner.calls) == 3
    with pytest.raises(BudgetExceededError) as caught:
        model.complete([ChatMessage("user", "hi")])
    assert caught.value.limit == "calls" and len(inner.calls) == 3


def test_token_limit_overshoots_by_at_most_one_call() -> None:
    """max_tokens=25 at 10 tokens a call lets the third call finish (30) and refuses the fourth."""
    budget = Budget(BudgetLimits(max_tokens=25))
    assert _spend(BudgetedChatModel(ScriptedModel(lambda call: "x"), budget)) == 3
    assert budget.usage().tokens == 30


def test_seconds_limit_with_injected_clock(clock) -> None:
    """With 4 s per call and max_seconds=10, the third call starts at 8 s and the fourth is refused at 12 s."""

    def slow(call):
        clock.advance(4)
        return "x"

    budget = Budget(BudgetLimits(max_seconds=10), clock=clock)
    model = BudgetedChatModel(ScriptedModel(slow), budget)
    assert _spend(model) == 3
    with pytest.raises(BudgetExceededError) as caught:
        model.complete([ChatMessage("user", "hi")])
    assert caught.value.limit == "seconds" and caught.value.used == 12


def test_cost_limit_uses_price_per_1k_tokens() -> None:
    """At 10 tokens a call and 1.0 per 1k tokens, max_cost=0.025 allows three calls and reports limit='cost'."""
    budget = Budget(BudgetLimits(max_cost=0.025, price_per_1k_tokens=1.0))
    model = BudgetedChatModel(ScriptedModel(lambda call: "x"), budget)
    assert _spend(model) == 3
    with pytest.raises(BudgetExceededError) as caught:
        model.complete([ChatMessage("user", "hi")])
    assert caught.value.limit == "cost" and caught.value.used == pytest.approx(0.03)


def test_failed_calls_count_against_call_limit() -> None:
    """A call that raised still counts as a call."""
    budget = Budget(BudgetLimits(max_calls=1))
    model = BudgetedChatModel(ScriptedModel([RuntimeError("boom")]), budget)
    with pytest.raises(RuntimeError):
        model.complete([ChatMessage("user", "hi")])
    with pytest.raises(BudgetExceededError):
        model.complete([ChatMessage("user", "hi")])


def test_replayed_calls_count_so_resume_keeps_the_budget(journal: RunJournal) -> None:
    """Budgeted(Journaled(...)): replayed calls are charged again, so a crash does not reset the budget."""
    journal.start_run("r1", "q")
    with journal.step("r1", "s"):
        first = BudgetedChatModel(
            JournaledChatModel(ScriptedModel(lambda c: "x"), journal, "r1"), Budget(BudgetLimits(max_calls=2))
        )
        assert _spend(first) == 2
    inner = ScriptedModel(lambda c: "x")
    with journal.step("r1", "s"):
        resumed = BudgetedChatModel(JournaledChatModel(inner, journal, "r1"), Budget(BudgetLimits(max_calls=2)))
        assert _spend(resumed) == 2
    assert len(inner.calls) == 0
