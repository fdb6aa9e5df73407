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


def test_openai_gets_max_completion_tokens():
    """For provider openai the token limit travels as max_completion_tokens (its reasoning models reject max_tokens)."""
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.update(json.loads(request.content))
        return httpx.Response(200, json=OK_BODY)

    OpenAICompatibleModel("o4-mini", base_url="http://llm.test/v1", api_key="k", provider="openai",
                          transport=httpx.MockTransport(handler)).complete([ChatMessage("user", "q")], max_tokens=33)
    assert seen["max_completion_tokens"] == 33 and "max_tokens" not in seen


def test_server_rejecting_max_tokens_is_asked_again_with_max_completion_tokens():
    """A 400 naming max_completion_tokens switches the parameter (once, remembered) without counting as a retry."""
    bodies = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        bodies.append(body)
        if "max_tokens" in body:
            return httpx.Response(400, json={"error": {"message": "Unsupported parameter: 'max_tokens' is not supported "
                                                                  "with this model. Use 'max_completion_tokens' instead."}})
        return httpx.Response(200, json=OK_BODY)

    model = _model(handler)
    model.complete([ChatMessage("user", "q")], max_tokens=20)
    model.complete([ChatMessage("user", "q")], max_tokens=20)
    assert [("max_tokens" in b, b.get("max_completion_tokens")) for b in bodies] == [(True, None), (False, 20), (False, 20)]


def test_sdk_retries_are_off_and_the_shared_policy_honours_retry_after():
    """The openai SDK does not retry on its own; our policy waits the Retry-After the server sent."""
    calls, sleeps = [], []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(429, json={"error": {"message": "slow down"}}, headers={"retry-after": "2"})
        return httpx.Response(200, json=OK_BODY)

    model = OpenAICompatibleModel("m", base_url="http://llm.test/v1", transport=httpx.MockTransport(handler),
                                  sleep=sleeps.append, max_retries=2)
    assert model.complete([ChatMessage("user", "q")]).text and len(calls) == 2 and sleeps == [2.0]


@pytest.mark.embedded
def test_embedded_model_is_a_mirascope_provider_on_loopback():
    """register_mirascope_provider points Mirascope's OpenAI-completions provider at the in-process server."""
    from mirascope import llm

    from supportdesk.llm.embedded import EmbeddedModel, register_mirascope_provider

    embedded = EmbeddedModel()
    provider = register_mirascope_provider(embedded)
    assert embedded.base_url.startswith("http://127.0.0.1:")
    response = llm.Model("embedded/gemma-3-270m", max_tokens=8).call("Say hello.")
    assert response.provider_id == provider.id == "embedded" and response.usage.input_tokens > 0
