"""A per-provider model-call rate limit for one worker process (``worker_model_calls_per_s``).

A token bucket per provider, shared by every run the worker executes; a call waits for a token
(never fails for it). Replayed calls never reach the model, so they cost no token.

    limiter = RateLimiter(calls_per_s=5)
    model = limiter.wrap(inner_model)          # a ChatModel that takes a token before each call
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from supportdesk.llm._types import ChatMessage, ChatModel, Completion
    from supportdesk.settings import Settings

__all__ = ["RateLimiter", "limiter_for", "provider_of"]


def provider_of(llm: str) -> str:
    """The provider part of a ``SUPPORTDESK_LLM`` value: ``openai/gpt-4o`` -> ``openai``."""
    return llm.split("/", 1)[0].strip().lower()


class RateLimiter:
    """A token bucket: ``calls_per_s`` sustained, bursts up to ``burst`` calls."""

    def __init__(
        self,
        calls_per_s: float,
        *,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if calls_per_s <= 0:
            raise ValueError("calls_per_s must be positive")
        self.rate = calls_per_s
        self.capacity = float(burst if burst is not None else max(1, int(calls_per_s)))
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, waiting as long as needed; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return waited
                pause = (1.0 - self._tokens) / self.rate
            self._sleep(pause)
            waited += pause

    def wrap(self, model: ChatModel) -> ChatModel:
        """``model`` behind this limiter."""
        return _Limited(model, self)


class _Limited:
    def __init__(self, inner: ChatModel, limiter: RateLimiter) -> None:
        self.inner = inner
        self.name = inner.name
        self.limiter = limiter

    def complete(self, messages: list[ChatMessage], **kwargs: Any) -> Completion:
        self.limiter.acquire()
        return self.inner.complete(messages, **kwargs)


def limiter_for(settings: Settings) -> RateLimiter | None:
    """The limiter for the provider ``settings.llm`` names, or None when no limit is set for it."""
    rate = settings.worker_model_calls_per_s.get(provider_of(settings.llm))
    return RateLimiter(rate) if rate else None
