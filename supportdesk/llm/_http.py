"""The one HTTP exchange every hosted chat model shares: retries, timeouts and error mapping."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from supportdesk._retry import send_with_retries
from supportdesk.errors import LLMProviderError, LLMTimeoutError

__all__ = ["post_json"]


def post_json(
    client: httpx.Client,
    url: str,
    body: dict[str, Any],
    *,
    name: str,
    max_retries: int,
    sleep: Callable[[float], None],
) -> tuple[dict[str, Any], float]:
    """POST ``body``, retrying transient failures; return (decoded JSON body, latency in seconds).

    :raises LLMTimeoutError: every attempt timed out.
    :raises LLMProviderError: unreachable, an error status (with ``status_code``), or a non-JSON body.
    """
    started = time.perf_counter()
    try:
        response = send_with_retries(lambda: client.post(url, json=body), max_retries=max_retries, sleep=sleep)
    except httpx.TimeoutException as exc:
        raise LLMTimeoutError(f"{name} timed out after {max_retries + 1} attempts") from exc
    except httpx.HTTPError as exc:
        raise LLMProviderError(f"{name} unreachable: {type(exc).__name__}: {exc}") from exc
    latency = time.perf_counter() - started
    if response.status_code >= 400:
        raise LLMProviderError(
            f"{name} answered HTTP {response.status_code}: {_error_text(response)}", status_code=response.status_code
        )
    try:
        payload = response.json()
    except ValueError as exc:
        raise LLMProviderError(f"{name} returned a malformed body: {response.text[:200]!r}") from exc
    if not isinstance(payload, dict):
        raise LLMProviderError(f"{name} returned a malformed body: {response.text[:200]!r}")
    return payload, latency


def _error_text(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
        if isinstance(error, dict):
            return str(error.get("message", error))[:200]
        if error:
            return str(error)[:200]
    except (ValueError, AttributeError):
        pass
    return json.dumps(response.text[:200])
