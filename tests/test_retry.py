"""The one retry policy (tenacity): what is transient, 409, Retry-After cap, wrapped causes, HTTP responses."""

from __future__ import annotations

import httpx
import pytest

from supportdesk._retry import RetryPolicy, is_transient, send_with_retries
from supportdesk.errors import LLMProviderError, TicketingError


class _StatusError(Exception):
    def __init__(self, status: int, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status_code = status
        self.retry_after = retry_after


def _flaky(*failures: BaseException):
    """A function raising the given errors in turn, then returning 'ok'; counts its calls."""
    queue = list(failures)
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if queue:
            raise queue.pop(0)
        return "ok"

    return fn, calls


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504, 529])
def test_timeouts_rate_limits_and_5xx_are_transient(status):
    """408, 425, 429 and every 5xx (Anthropic's 529 included) are retried."""
    assert is_transient(_StatusError(status)) and is_transient(httpx.ReadTimeout("slow"))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_client_errors_and_409_are_not_transient(status):
    """A 409 conflict is not transient (a create would clash again or duplicate), nor are other 4xx."""
    fn, calls = _flaky(_StatusError(status))
    with pytest.raises(_StatusError):
        RetryPolicy(sleep=lambda s: None).call(fn)
    assert len(calls) == 1


def test_retry_after_is_honoured_up_to_the_cap_and_beyond_it_gives_up():
    """Retry-After 7 waits 7 s; one over max_wait (30 s) raises at once instead of retrying early."""
    sleeps: list[float] = []
    fn, _ = _flaky(_StatusError(429, retry_after=7))
    assert RetryPolicy(sleep=sleeps.append).call(fn) == "ok" and sleeps == [7]
    fn, calls = _flaky(_StatusError(429, retry_after=120))
    with pytest.raises(_StatusError):
        RetryPolicy(sleep=sleeps.append).call(fn)
    assert len(calls) == 1


def test_wrapped_errors_keep_their_status_through_the_cause_chain():
    """A TicketingError raised from a Jira 503 (or a requests timeout) is transient; one from a 400 is not."""
    def wrapped(cause: BaseException) -> TicketingError:
        try:
            raise cause
        except BaseException as exc:  # noqa: BLE001
            try:
                raise TicketingError("Jira search failed") from exc
            except TicketingError as outer:
                return outer

    assert is_transient(wrapped(_StatusError(503)))
    assert not is_transient(wrapped(_StatusError(400)))
    assert is_transient(LLMProviderError("x", status_code=502))


def test_http_helper_returns_the_last_transient_response_after_the_attempts():
    """send_with_retries retries a 503 response max_retries times, then hands the last response back."""
    statuses = [503, 503, 503]
    sent: list[int] = []

    def send() -> httpx.Response:
        sent.append(1)
        return httpx.Response(statuses[len(sent) - 1], headers={"retry-after": "0"})

    response = send_with_retries(send, max_retries=2, sleep=lambda s: None)
    assert response.status_code == 503 and len(sent) == 3


def test_backoff_doubles_and_full_jitter_only_shortens():
    """Without jitter the waits are base, 2*base; with full jitter they never exceed that."""
    sleeps: list[float] = []
    fn, _ = _flaky(_StatusError(500), _StatusError(500))
    RetryPolicy(base_delay=1, jitter=0, sleep=sleeps.append).call(fn)
    assert sleeps == [1, 2]
    sleeps.clear()
    fn, _ = _flaky(_StatusError(500), _StatusError(500))
    RetryPolicy(base_delay=1, jitter=1, rng=lambda: 0.5, sleep=sleeps.append).call(fn)
    assert sleeps == [0.5, 1.0]
