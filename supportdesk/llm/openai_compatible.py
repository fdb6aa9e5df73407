"""Any server that speaks OpenAI's chat-completions protocol: OpenAI, Ollama, Gemini's OpenAI endpoint,
vLLM, llama.cpp's server, LM Studio... through the official ``openai`` SDK.

The SDK's own retries are off (``max_retries=0``): every transient failure goes through the one
policy of :mod:`supportdesk._retry`, like Serper and Jira. Models that reject ``max_tokens`` (OpenAI's
reasoning models) get ``max_completion_tokens``: always for ``provider="openai"``, and for any other
server after it answered 400 naming the parameter (remembered per model)::

    from supportdesk.llm.openai_compatible import OpenAICompatibleModel

    model = OpenAICompatibleModel("gpt-4o-mini", base_url="https://api.openai.com/v1", api_key="sk-...")
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import openai

from supportdesk._retry import RetryPolicy
from supportdesk.errors import LLMProviderError
from supportdesk.llm._sdk_errors import error_text, sdk_errors
from supportdesk.llm._types import ChatMessage, Completion

__all__ = ["OpenAICompatibleModel"]

logger = logging.getLogger(__name__)


class OpenAICompatibleModel:
    """Chat completions through ``openai.OpenAI``; JSON-schema requests use ``response_format: json_schema``.

    :param model: the provider's model name.
    :param base_url: the API root that ``/chat/completions`` is appended to.
    :param api_key: sent as a Bearer token when given.
    :param max_retries: retries of transient failures (the shared policy).
    :param transport: an httpx transport for the SDK's client (tests pass ``httpx.MockTransport``).
    :param sleep: the sleep between retries (tests record it).
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 2,
        provider: str = "openai-compatible",
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.model = model
        self.name = f"{provider}/{model}"
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self._policy = RetryPolicy(attempts=max_retries + 1, sleep=sleep)
        self._token_param = "max_completion_tokens" if provider == "openai" else "max_tokens"
        http_client = httpx.Client(timeout=timeout_s, transport=transport) if transport is not None else None
        self._client = openai.OpenAI(
            api_key=api_key or "not-needed",
            base_url=self.base_url,
            timeout=timeout_s,
            max_retries=0,
            http_client=http_client,
        )

    def complete(
        self,
        messages: list[ChatMessage],
        *,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int = 512,
        temperature: float = 0.0,
    ) -> Completion:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "temperature": temperature,
        }
        if json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": str(json_schema.get("title", "response")), "schema": json_schema},
            }
        started = time.perf_counter()
        response = self._send(body, max_tokens)
        latency = time.perf_counter() - started
        try:
            text = response.choices[0].message.content or ""
        except (AttributeError, IndexError, TypeError) as exc:
            raise LLMProviderError(f"{self.name} returned a malformed body: {str(response)[:200]!r}") from exc
        usage = getattr(response, "usage", None)
        return Completion(
            text=text,
            model=self.name,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            latency_s=latency,
            raw=response.model_dump() if hasattr(response, "model_dump") else {},
            cached_prompt_tokens=int(getattr(getattr(usage, "prompt_tokens_details", None), "cached_tokens", 0) or 0),
        )

    def _send(self, body: dict[str, Any], max_tokens: int) -> Any:
        with sdk_errors(openai, self.name, attempts=self.max_retries + 1):
            try:
                return self._create(body, max_tokens)
            except openai.BadRequestError as exc:
                if self._token_param == "max_tokens" and "max_completion_tokens" in error_text(exc):
                    logger.info("%s rejects max_tokens; sending max_completion_tokens from now on", self.name)
                    self._token_param = "max_completion_tokens"
                    return self._create(body, max_tokens)
                raise

    def _create(self, body: dict[str, Any], max_tokens: int) -> Any:
        request = {**body, self._token_param: max_tokens}
        response = self._policy.call(lambda: self._client.chat.completions.create(**request))
        if not hasattr(response, "choices") or not response.choices:
            raise LLMProviderError(f"{self.name} returned a malformed body: {str(response)[:200]!r}")
        return response

    def close(self) -> None:
        self._client.close()
