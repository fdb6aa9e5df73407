"""Any server that speaks OpenAI's chat-completions protocol: OpenAI, Ollama, Gemini's OpenAI endpoint,
vLLM, llama.cpp's server, LM Studio...

Our own small httpx client, so the same retries, timeouts and errors apply to every provider::

    from supportdesk.llm.openai_compatible import OpenAICompatibleModel

    model = OpenAICompatibleModel("gpt-4o-mini", base_url="https://api.openai.com/v1", api_key="sk-...")
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from supportdesk.errors import LLMProviderError
from supportdesk.llm._http import post_json
from supportdesk.llm._types import ChatMessage, Completion

__all__ = ["OpenAICompatibleModel"]


class OpenAICompatibleModel:
    """Chat completions over HTTP; JSON-schema requests use ``response_format: json_schema``.

    :param model: the provider's model name.
    :param base_url: the API root that ``/chat/completions`` is appended to.
    :param api_key: sent as a Bearer token when given.
    :param transport: an httpx transport (tests pass ``httpx.MockTransport``).
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
        self._sleep = sleep
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout_s, headers=headers, transport=transport)

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
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        if json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": str(json_schema.get("title", "response")), "schema": json_schema},
            }
        payload, latency = post_json(
            self._client, f"{self.base_url}/chat/completions", body,
            name=self.name, max_retries=self.max_retries, sleep=self._sleep,
        )
        try:
            text = payload["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise LLMProviderError(f"{self.name} returned a malformed body: {str(payload)[:200]!r}") from exc
        usage = payload.get("usage") or {}
        return Completion(
            text=text,
            model=self.name,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            latency_s=latency,
            raw=payload,
        )

    def close(self) -> None:
        self._client.close()

