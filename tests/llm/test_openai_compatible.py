"""The OpenAI-compatible client: protocol, retries, errors; and a real llama.cpp server on loopback."""

from __future__ import annotations

import json

import httpx
import pytest

from supportdesk.errors import LLMProviderError, LLMTimeoutError
from supportdesk.llm import ChatMessage
from supportdesk.llm.openai_compatible import OpenAICompatibleModel

OK_BODY = {
    "choices": [{"message": {"role": "assistant", "content": '{"verdict": "no_answer"}'}}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 5},
}


def _model(handler, **kwargs) -> OpenAICompatibleModel:
    return OpenAICompatibleModel(
        "m", base_url="http://llm.test/v1", api_key="k", transport=httpx.MockTransport(handler), sleep=lambda s: None, **kwargs
    )


def test_request_carries_schema_key_and_usage_is_read():
    """The request follows the protocol (bearer key, json_schema response format); usage is parsed."""
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["auth"] = request.headers["authorization"]
        seen["body"] = json.loads(request.content)
        return httpx.Response(200, json=OK_BODY)

    completion = _model(handler).complete([ChatMessage("user", "q")], json_schema={"type": "object", "title": "FAQAnswer"})
    assert seen["auth"] == "Bearer k" and seen["body"]["response_format"]["type"] == "json_schema"
    assert seen["body"]["response_format"]["json_schema"]["name"] == "FAQAnswer"
    assert completion.text == '{"verdict": "no_answer"}' and (completion.prompt_tokens, completion.completion_tokens) == (12, 5)


@pytest.mark.parametrize(
    ("statuses", "outcome"),
    [
        ([429, 200], "ok"),
        ([503, 502, 200], "ok"),
        ([500, 500, 500], "error"),
        ([401], "error"),
    ],
)
def test_transient_statuses_are_retried_others_are_not(statuses, outcome):
    """429 and 5xx are retried up to max_retries; 401 fails at once; exhausted retries raise."""
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        status = statuses[len(calls)]
        calls.append(status)
        return httpx.Response(status, json=OK_BODY if status == 200 else {"error": {"message": "nope"}}, headers={"retry-after": "0"})

    model = _model(handler, max_retries=2)
    if outcome == "ok":
        assert model.complete([ChatMessage("user", "q")]).text
    else:
        with pytest.raises(LLMProviderError, match="HTTP"):
            model.complete([ChatMessage("user", "q")])
    assert calls == statuses


def test_timeouts_become_llm_timeout_error():
    """A provider that never answers in time raises LLMTimeoutError after the retries."""
    attempts = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(LLMTimeoutError, match="timed out after 3 attempts"):
        _model(handler, max_retries=2).complete([ChatMessage("user", "q")])
    assert len(attempts) == 3


def test_garbage_body_is_a_provider_error():
    """A 200 with a body that is not a chat completion is reported, not passed on."""
    model = _model(lambda request: httpx.Response(200, text="<html>proxy error</html>"))
    with pytest.raises(LLMProviderError, match="malformed"):
        model.complete([ChatMessage("user", "q")])


@pytest.mark.embedded
def test_real_llama_cpp_server_speaks_the_protocol():
    """Against llama.cpp's own OpenAI-compatible server on 127.0.0.1, a schema-constrained answer parses."""
    from supportdesk.llm.embedded import EmbeddedModel
    from supportdesk.llm.structured import structured_call
    from supportdesk.models import Classification

    server = EmbeddedModel()._server()
    assert server.listening_address.startswith("http://127.0.0.1:")
    model = OpenAICompatibleModel("gemma-3-270m", base_url=server.listening_address.rstrip("/") + "/v1")
    result = structured_call(
        model,
        [ChatMessage("user", "Customer: I was charged twice this month.")],
        Classification,
        max_tokens=96,
        schema_overrides={"category": {"enum": ["billing", "technical", "general"]}},
    )
    assert result.value.category in ("billing", "technical", "general")
    assert result.completions[0].prompt_tokens > 0
