"""Structured output: Mirascope's format, constrained schema, validation retries."""

from __future__ import annotations

import pytest

from supportdesk.errors import OutputValidationError
from supportdesk.llm import ChatMessage, ScriptedModel
from supportdesk.llm.structured import response_schema, structured_call
from supportdesk.models import Classification

CATEGORIES = {"category": {"enum": ["billing", "technical", "general"]}}


def test_valid_answer_is_returned_as_model():
    """A valid JSON answer becomes the response model after one call."""
    model = ScriptedModel([{"category": "billing", "priority": "high", "rationale": "double charge"}])
    result = structured_call(model, [ChatMessage("user", "charged twice")], Classification, schema_overrides=CATEGORIES)
    assert result.value == Classification(category="billing", priority="high", rationale="double charge")
    assert result.attempts == 1


def test_schema_is_passed_for_constrained_decoding():
    """The model receives the JSON schema with the enum override merged in, and the instructions."""
    model = ScriptedModel([{"category": "general", "priority": "low"}])
    structured_call(model, [ChatMessage("user", "hi")], Classification, schema_overrides=CATEGORIES)
    schema = model.calls[0].json_schema
    assert schema["properties"]["category"]["enum"] == ["billing", "technical", "general"]
    assert "Respond only with valid JSON" in model.calls[0].messages[0].content


def test_invalid_answer_is_fed_back_and_retried():
    """A value outside the enum is rejected; the retry request carries the validation error."""
    model = ScriptedModel([{"category": "sales", "priority": "high"}, {"category": "billing", "priority": "high"}])
    result = structured_call(model, [ChatMessage("user", "x")], Classification, schema_overrides=CATEGORIES)
    assert result.value.category == "billing" and result.attempts == 2
    feedback = model.calls[1].messages[-1].content
    assert "category" in feedback and "sales" in feedback


def test_garbage_exhausts_retries_with_typed_error():
    """Unparseable output on every attempt raises OutputValidationError with the attempt count."""
    model = ScriptedModel(["not json", "still not", "nope"])
    with pytest.raises(OutputValidationError) as info:
        structured_call(model, [ChatMessage("user", "x")], Classification, retries=2)
    assert info.value.attempts == 3 and len(model.calls) == 3


def test_override_of_unknown_field_is_rejected():
    """Overriding a field the model lacks is a programming error, caught early."""
    with pytest.raises(ValueError, match="no field"):
        response_schema(Classification, {"nope": {"enum": ["a"]}})


def test_calls_go_through_mirascope_and_survive_a_registry_reset():
    """structured_call answers via Mirascope's registered supportdesk/ provider, re-registered if a host reset it."""
    from mirascope import llm
    from mirascope.llm.providers.provider_registry import PROVIDER_REGISTRY

    from supportdesk.llm._mirascope import ChatModelProvider

    llm.reset_provider_registry()
    model = ScriptedModel([{"category": "billing", "priority": "low"}])
    assert structured_call(model, [ChatMessage("user", "x")], Classification).value.category == "billing"
    assert isinstance(PROVIDER_REGISTRY["supportdesk/"], ChatModelProvider)


def test_a_mirascope_call_outside_structured_call_names_the_problem():
    """Calling the supportdesk/ scope with no model bound raises a clear LLMError, not a silent default."""
    from mirascope import llm

    from supportdesk.errors import LLMError
    from supportdesk.llm._mirascope import ensure_registered

    ensure_registered()
    with pytest.raises(LLMError, match="no supportdesk ChatModel is bound"):
        llm.Model("supportdesk/x").call("hi")
