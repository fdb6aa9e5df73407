"""The call journal: a resumed run replays recorded completions and tool results instead of calling again."""

from __future__ import annotations

import pytest

from supportdesk.durable import JournaledChatModel, RunJournal, journaled
from supportdesk.errors import LLMTimeoutError
from supportdesk.llm import ScriptedModel
from supportdesk.llm._types import ChatMessage


def _ask(model: JournaledChatModel, text: str) -> str:
    return model.complete([ChatMessage("user", text)]).text


def _resume(db_url: str, clock, run_id: str) -> RunJournal:
    """A new executor (as after a crash) that takes over the run once the old lease expired."""
    clock.advance(3600)
    journal = RunJournal(db_url, owner="B", lease_s=60, clock=clock, sleep=clock.sleep)
    assert journal.start_run(run_id, "q").resumed
    return journal


def test_resume_replays_completions_without_calling_model(journal: RunJournal, db_url: str, clock) -> None:
    """After a crash every recorded completion is replayed in order and the inner model is not called."""
    journal.start_run("r1", "q")
    live = ScriptedModel(["a0", "a1", "b0"])
    model = JournaledChatModel(live, journal, "r1")
    with journal.step("r1", "faq"):
        first = [_ask(model, "q0"), _ask(model, "q1")]
    with journal.step("r1", "classify"):
        first.append(_ask(model, "q2"))
    # crash here: nothing was checkpointed, every step re-runs

    resumed = _resume(db_url, clock, "r1")
    dead = ScriptedModel([])  # raises if called
    replay = JournaledChatModel(dead, resumed, "r1")
    with resumed.step("r1", "faq"):
        again = [_ask(replay, "q0"), _ask(replay, "q1")]
    with resumed.step("r1", "classify"):
        again.append(_ask(replay, "q2"))
    assert again == first == ["a0", "a1", "b0"]
    assert len(live.calls) == 3 and len(dead.calls) == 0
    kinds = [e.kind for e in resumed.audit("r1")]
    assert kinds.count("llm_call") == 3 and kinds.count("llm_replay") == 3


def test_partial_step_replays_done_calls_and_goes_live_for_the_rest(journal: RunJournal, db_url: str, clock) -> None:
    """A step interrupted between two calls replays the first and makes only the second live."""
    journal.start_run("r1", "q")
    with journal.step("r1", "faq"):
        _ask(JournaledChatModel(ScriptedModel(["a0"]), journal, "r1"), "q0")
    resumed = _resume(db_url, clock, "r1")
    inner = ScriptedModel(["a1"])
    model = JournaledChatModel(inner, resumed, "r1")
    with resumed.step("r1", "faq"):
        assert [_ask(model, "q0"), _ask(model, "q1")] == ["a0", "a1"]
    assert len(inner.calls) == 1 and inner.calls[0].messages[0].content == "q1"


def test_failed_call_does_not_use_up_a_sequence_number(journal: RunJournal, db_url: str, clock) -> None:
    """A call that raised and was retried keeps key llm:0, so a resume replays the retry's answer for it."""
    journal.start_run("r1", "q")
    model = JournaledChatModel(ScriptedModel([LLMTimeoutError("slow"), "a0"]), journal, "r1")
    with journal.step("r1", "faq"):
        with pytest.raises(LLMTimeoutError):
            _ask(model, "q0")
        assert _ask(model, "q0") == "a0"
    resumed = _resume(db_url, clock, "r1")
    with resumed.step("r1", "faq"):
        assert _ask(JournaledChatModel(ScriptedModel([]), resumed, "r1"), "q0") == "a0"
    assert any(e.kind == "error" and e.data["error"] == "LLMTimeoutError" for e in resumed.audit("r1"))


def test_changed_prompt_replays_unless_strict(journal: RunJournal) -> None:
    """A recorded call whose request changed is replayed (flagged in the audit) unless strict=True."""
    journal.start_run("r1", "q")
    with journal.step("r1", "faq"):
        _ask(JournaledChatModel(ScriptedModel(["old"]), journal, "r1"), "prompt v1")
    with journal.step("r1", "faq"):
        assert _ask(JournaledChatModel(ScriptedModel([]), journal, "r1"), "prompt v2") == "old"
    assert journal.audit("r1")[-2].data["request_mismatch"] is True
    inner = ScriptedModel(["new"])
    with journal.step("r1", "faq"):
        assert _ask(JournaledChatModel(inner, journal, "r1", strict=True), "prompt v2") == "new"
    assert len(inner.calls) == 1


def test_llm_audit_records_usage_but_no_prompt(journal: RunJournal) -> None:
    """Each live LLM call is audited with model, tokens and latency, never the prompt text."""
    journal.start_run("r1", "q")
    with journal.step("r1", "faq"):
        _ask(JournaledChatModel(ScriptedModel(["fine"], name="m1"), journal, "r1"), "my email is x@example.com")
    entry = next(e for e in journal.audit("r1") if e.kind == "llm_call")
    assert entry.step == "faq"
    assert entry.data["model"] == "m1" and entry.data["prompt_tokens"] == 4 and entry.data["completion_tokens"] == 1
    assert "latency_s" in entry.data and "x@example.com" not in str(entry.data)


def test_journaled_tool_result_runs_once(journal: RunJournal) -> None:
    """journaled() calls the function once per key; later calls return the recorded, decoded result."""
    journal.start_run("r1", "q")
    calls: list[int] = []

    def search() -> list[dict[str, str]]:
        calls.append(1)
        return [{"url": "https://example.com", "snippet": "refunds take 5 days"}]

    with journal.step("r1", "web"):
        first = journaled(journal, "r1", None, "web:refund", search)
        again = journaled(journal, "r1", None, "web:refund", search, decode=lambda rows: [r["url"] for r in rows])
    assert first == [{"url": "https://example.com", "snippet": "refunds take 5 days"}]
    assert again == ["https://example.com"]
    assert len(calls) == 1
