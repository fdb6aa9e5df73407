"""The per-provider model-call rate limit of a worker (SUPPORTDESK_WORKER_MODEL_CALLS_PER_S)."""

from __future__ import annotations

from supportdesk.llm import ChatMessage, ScriptedModel
from supportdesk.service.temporal._ratelimit import RateLimiter, limiter_for, provider_of
from supportdesk.settings import Settings


class FakeClock:
    """A clock that advances only when the limiter sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_limiter_spaces_calls_at_the_configured_rate():
    """At 2 calls/s with a burst of 2, six calls take two seconds of (fake) waiting and reach the model."""
    clock = FakeClock()
    limiter = RateLimiter(2.0, burst=2, clock=clock, sleep=clock.sleep)
    model = limiter.wrap(ScriptedModel(["ok"] * 6))
    for _ in range(6):
        model.complete([ChatMessage(role="user", content="hi")])
    assert abs(clock.now - 2.0) < 1e-6 and len(model.inner.calls) == 6


def test_limit_applies_to_the_configured_provider_only():
    """A limit set for openai applies to openai/<model> and not to the embedded model."""
    limits = {"openai": 5.0}
    assert provider_of("openai/gpt-4o-mini") == "openai"
    assert limiter_for(Settings(llm="openai/gpt-4o-mini", worker_model_calls_per_s=limits)).rate == 5.0
    assert limiter_for(Settings(llm="embedded", worker_model_calls_per_s=limits)) is None
