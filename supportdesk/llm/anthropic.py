"""Anthropic's Messages API over httpx. Structured output uses a forced tool whose input schema is
the response schema, so the answer arrives as JSON arguments::

    from supportdesk.llm.anthropic import AnthropicModel

    model = AnthropicModel("claude-haiku-4-5", api_key="sk-ant-...")
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from supportdesk.errors import LLMProviderError
from supportdesk.llm._http import post_json
from supportdesk.llm._types import ChatMessage, Completion

__all__ = ["AnthropicModel"]

API_VERSION = "2023-06-01"
TOOL_NAME = "respond"


class AnthropicModel:
    """Claude models through ``POST /v1/messages``.

    :param transport: an httpx transport (tests replay recorded responses with ``httpx.MockTransport``).
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
        self.url = f"{base_url.rstrip('/')}/v1/messages"
        self.max_retries = max_retries
        self._sleep = sleep
        headers = {"x-api-key": api_key, "anthropic-version": API_VERSION}
        self._client = httpx.Client(timeout=timeout_s, headers=headers, transport=transport)

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
        payload, latency = post_json(
            self._client, self.url, body, name=self.name, max_retries=self.max_retries, sleep=self._sleep
        )
        try:
            text = _text_of(payload["content"])
        except (KeyError, TypeError) as exc:
            raise LLMProviderError(f"{self.name} returned a malformed body: {str(payload)[:200]!r}") from exc
        usage = payload.get("usage") or {}
        return Completion(
            text=text,
            model=self.name,
            prompt_tokens=int(usage.get("input_tokens") or 0),
            completion_tokens=int(usage.get("output_tokens") or 0),
            latency_s=latency,
            raw=payload,
        )


def _text_of(blocks: list[dict[str, Any]]) -> str:
    for block in blocks:
        if block.get("type") == "tool_use":
            return json.dumps(block["input"])
    return "".join(block.get("text", "") for block in blocks if block.get("type") == "text")
