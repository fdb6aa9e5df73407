"""The shipped scripted model: ordered replies, a responder function, recorded calls."""

from __future__ import annotations

import pytest

from supportdesk.errors import LLMError, LLMTimeoutError
from supportdesk.llm import ChatMessage, ScriptedModel


def test_replies_in_order_and_records_calls():
    """Replies come in order (dicts as JSON) and every request is recorded."""
    model = ScriptedModel(["one", {"two": 2}])
    assert model.complete([ChatMessage("user", "a")]).text == "one"
    assert model.complete([ChatMessage("user", "b")], json_schema={"type": "object"}).text == '{"two": 2}'
    assert [c.messages[0].content for c in model.calls] == ["a", "b"]
    assert model.calls[1].json_schema == {"type": "object"}


def test_exhausted_script_raises_llm_error():
    """Asking more than was scripted is a clear LLMError, not an IndexError."""
    model = ScriptedModel([])
    with pytest.raises(LLMError, match="no scripted response"):
        model.complete([ChatMessage("user", "a")])


def test_responder_function_and_scripted_exceptions():
    """A responder sees the request; an exception it returns is raised to the caller."""
    model = ScriptedModel(lambda call: LLMTimeoutError("slow") if "slow" in call.messages[-1].content else "ok")
    assert model.complete([ChatMessage("user", "fast")]).text == "ok"
    with pytest.raises(LLMTimeoutError):
        model.complete([ChatMessage("user", "slow")])
