"""retry_transient: backoff on timeouts, 429 and 5xx; Retry-After honoured; other errors not retried."""

from __future__ import annotations

import httpx
import pytest
from _durable_helpers import StatusError

from supportdesk.durable import retry_transient


def _flaky(*failures: BaseException):
    """A function that raises the given errors in turn, then returns 'ok'; counts its calls."""
    queue = list(failures)
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if queue:
            raise queue.pop(0)
        return "ok"

    return fn, calls


def test_retries_timeouts_and_5xx_with_backoff() -> None:
    """A timeout and a 503 are retried with exponentially growing delays, then the result returns."""
    fn, calls = _flaky(httpx.ReadTimeout("t"), StatusError(503))
    sleeps: list[float] = []
    assert retry_transient(fn, attempts=3, base_delay=1, jitter=0, sleep=sleeps.append) == "ok"
    assert len(calls) == 3 and sleeps == [1, 2]


def test_honours_retry_after_on_429() -> None:
    """A 429 with Retry-After: 7 waits at least 7 seconds (header read from an httpx response)."""
    request = httpx.Request("POST", "https://api.example.com")
    response = httpx.Response(429, headers={"Retry-After": "7"}, request=request)
    fn, _ = _flaky(httpx.HTTPStatusError("429", request=request, response=response))
    sleeps: list[float] = []
    assert retry_transient(fn, base_delay=0.5, max_delay=30, sleep=sleeps.append) == "ok"
    assert sleeps == [7.0]


def test_retry_after_beyond_max_delay_gives_up() -> None:
    """A server asking for longer than max_delay gets the error at once instead of an early retry."""
    fn, calls = _flaky(StatusError(429, retry_after=120))
    with pytest.raises(StatusError):
        retry_transient(fn, max_delay=30, sleep=lambda s: None)
    assert len(calls) == 1


def test_non_transient_errors_are_not_retried() -> None:
    """A 400 or a plain ValueError propagates after one attempt."""
    for error in (StatusError(400), ValueError("bad")):
        fn, calls = _flaky(error)
        with pytest.raises(type(error)):
            retry_transient(fn, sleep=lambda s: None)
        assert len(calls) == 1


def test_last_failure_propagates_after_all_attempts() -> None:
    """When every attempt fails transiently the last error is raised after `attempts` calls."""
    fn, calls = _flaky(*(StatusError(502) for _ in range(5)))
    with pytest.raises(StatusError):
        retry_transient(fn, attempts=4, base_delay=0.1, sleep=lambda s: None)
    assert len(calls) == 4


def test_jitter_only_shortens_delays() -> None:
    """With full jitter and rng=1 the delay drops to zero; delays never exceed the capped backoff."""
    fn, _ = _flaky(StatusError(500), StatusError(500))
    sleeps: list[float] = []
    retry_transient(fn, base_delay=4, max_delay=5, jitter=1.0, rng=lambda: 1.0, sleep=sleeps.append)
    assert sleeps == [0.0, 0.0]
