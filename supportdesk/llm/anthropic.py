"""Anthropic's Messages API through the official ``anthropic`` SDK. Structured output uses a forced
tool whose input schema is the response schema, so the answer arrives as JSON arguments::

    from supportdesk.llm.anthropic import AnthropicModel

    model = AnthropicModel("claude-haiku-4-5", api_key="sk-ant-...")

The SDK's own retries are off (``max_retries=0``): transient failures (timeouts, 429, 5xx and 529
"overloaded", Retry-After honoured) go through the one policy of :mod:`supportdesk._retry`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import anthropic
import httpx

from supportdesk._retry import RetryPolicy
from supportdesk.errors import LLMProviderError
from supportdesk.llm._sdk_errors import sdk_errors
from supportdesk.llm._types import ChatMessage, Completion

__all__ = ["AnthropicModel"]

TOOL_NAME = "respond"


class AnthropicModel:
    """Claude models through ``anthropic.Anthropic().messages.create``.

    :param transport: an httpx transport for the SDK's client (tests replay recorded responses with
        ``httpx.MockTransport``).
    :param sleep: the sleep between retries (tests record it).
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str,
        base_url: str = "https://api.anthropic.com",
        timeout_s: float = 60.0,
        max_retries: int = 2,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.model = model
        self.name = f"anthropic/{model}"
        self.max_retries = max_retries
        self._policy = RetryPolicy(attempts=max_retries + 1, sleep=sleep)
        http_client = httpx.Client(timeout=timeout_s, transport=transport) if transport is not None else None
        self._client = anthropic.Anthropic(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0, http_client=http_client
        )

    def complete(
        self,
        messages: list[ChatMessage],
        *,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int = 512,
        temperature: float = 0.0,
    ) -> Completion:
        system = "\n\n".join(m.content for m in messages if m.role == "system")
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "messages": [{"role": m.role, "content": m.content} for m in messages if m.role != "system"],
        }
        if system:
            body["system"] = system
        if json_schema is not None:
            body["tools"] = [{"name": TOOL_NAME, "description": "Give the answer.", "input_schema": json_schema}]
            body["tool_choice"] = {"type": "tool", "name": TOOL_NAME}
        started = time.perf_counter()
        with sdk_errors(anthropic, self.name, attempts=self.max_retries + 1):
            message = self._policy.call(lambda: self._client.messages.create(**body))
        latency = time.perf_counter() - started
        try:
            text = _text_of(message.content)
        except (AttributeError, TypeError) as exc:
            raise LLMProviderError(f"{self.name} returned a malformed body: {str(message)[:200]!r}") from exc
        usage = getattr(message, "usage", None)
        return Completion(
            text=text,
            model=self.name,
            prompt_tokens=int(getattr(usage, "input_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "output_tokens", 0) or 0),
            latency_s=latency,
            raw=message.model_dump() if hasattr(message, "model_dump") else {},
            cached_prompt_tokens=int(getattr(usage, "cache_read_input_tokens", 0) or 0),
        )

    def close(self) -> None:
        self._client.close()


def _text_of(blocks: list[Any]) -> str:
    for block in blocks:
        if block.type == "tool_use":
            return json.dumps(block.input)
    return "".join(block.text for block in blocks if block.type == "text")
