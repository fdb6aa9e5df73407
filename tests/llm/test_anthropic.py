"""The Anthropic client against a recorded Messages API response."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from supportdesk.errors import LLMProviderError
from supportdesk.llm import ChatMessage
from supportdesk.llm.anthropic import AnthropicModel
from supportdesk.llm.structured import structured_call
from supportdesk.models import Classification

RECORDED = json.loads((Path(__file__).parent / "recorded" / "anthropic_tool_use.json").read_text())


def test_structured_output_uses_a_forced_tool_and_parses():
    """A schema request becomes a forced tool; the recorded tool_use input validates as Classification."""
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["headers"] = request.headers
        seen["body"] = json.loads(request.content)
        return httpx.Response(200, json=RECORDED)

    model = AnthropicModel("claude-haiku-4-5", api_key="sk-ant", transport=httpx.MockTransport(handler))
    result = structured_call(model, [ChatMessage("system", "Triage."), ChatMessage("user", "charged twice")], Classification)
    assert result.value.category == "billing" and result.completions[0].prompt_tokens == 412
    assert seen["headers"]["x-api-key"] == "sk-ant" and seen["body"]["tool_choice"] == {"type": "tool", "name": "respond"}
    assert seen["body"]["system"].startswith("Triage.") and all(m["role"] != "system" for m in seen["body"]["messages"])


def test_overloaded_provider_is_retried_then_reported():
    """529-style overload (5xx) is retried, then surfaces as LLMProviderError with the status."""
    model = AnthropicModel(
        "claude", api_key="k", max_retries=1, sleep=lambda s: None,
        transport=httpx.MockTransport(lambda r: httpx.Response(503, json={"type": "error"})),
    )
    with pytest.raises(LLMProviderError) as info:
        model.complete([ChatMessage("user", "q")])
    assert info.value.status_code == 503
