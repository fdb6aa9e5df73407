"""Retrying transient HTTP failures: exponential backoff with full jitter, honouring Retry-After.

Only for idempotent requests (model calls, searches). Creating a ticket is never retried blindly:
it goes through the reconcile path of :mod:`supportdesk.durable`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import TypeVar

import httpx

__all__ = ["RETRYABLE_STATUS", "backoff_delay", "parse_retry_after", "retry_after_seconds", "send_with_retries"]

T = TypeVar("T")
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


def backoff_delay(attempt: int, *, base: float = 0.5, cap: float = 8.0, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff for the ``attempt``-th retry (0-based)."""
    return (rng or random).uniform(0, min(cap, base * (2**attempt)))


def parse_retry_after(value: object) -> float | None:
    """Seconds a Retry-After value asks to wait (delta seconds or an HTTP date), never negative;
    None when absent or unreadable."""
    if value is None or value == "":
        return None
    try:
        return max(0.0, float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        pass
    try:
        return max(0.0, parsedate_to_datetime(str(value)).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


def retry_after_seconds(response: httpx.Response, cap: float = 30.0) -> float | None:
    """Seconds a response's Retry-After header asks to wait, capped; None if absent or bad."""
    seconds = parse_retry_after(response.headers.get("retry-after"))
    return None if seconds is None else min(cap, seconds)


def send_with_retries(
    send: Callable[[], httpx.Response],
    *,
    max_retries: int,
    sleep: Callable[[float], None] = time.sleep,
    base_delay: float = 0.5,
) -> httpx.Response:
    """Call ``send`` until it returns a non-retryable response or retries run out.

    Transport timeouts and connection errors are retried like 429/5xx; the last one is re-raised.
    The returned response may still be an error status: the caller maps it to its own error.
    """
    for attempt in range(max_retries + 1):
        try:
            response = send()
        except (httpx.TimeoutException, httpx.NetworkError):
            if attempt == max_retries:
                raise
            sleep(backoff_delay(attempt, base=base_delay))
            continue
        if response.status_code not in RETRYABLE_STATUS or attempt == max_retries:
            return response
        wait = retry_after_seconds(response)
        sleep(wait if wait is not None else backoff_delay(attempt, base=base_delay))
    raise AssertionError("unreachable")  # pragma: no cover
