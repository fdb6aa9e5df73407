"""The one retry policy for every transient failure (model calls, Serper, Jira look-ups), on tenacity.

What is transient: timeouts and connection failures (httpx, requests, the openai and anthropic
SDKs, the builtin ``TimeoutError``/``ConnectionError``) and errors or responses carrying HTTP 408,
425, 429 or any 5xx (Anthropic's 529 "overloaded" included). Everything else fails at once.

**409 is not transient.** A conflict says the request clashes with the server's state (for a create:
the thing exists, or another writer got there first); sending it again cannot succeed and, for a
create, could duplicate. Ticket creation is never retried blindly anyway: it goes through the
reconcile path of :mod:`supportdesk.durable` (look up by idempotency key, then create once).

**Retry-After** (delta seconds or an HTTP date, on the error's response or as ``exc.retry_after``) is
honoured as the minimum wait. When a server asks for longer than ``max_wait`` (30 s by default) the
error is raised at once: retrying earlier than asked would be refused again, and waiting minutes
inside a run would stall it; the caller (a resume, the durable reconcile) decides what comes next.

Backoff between attempts: ``min(max_wait, base_delay * 2**n) * (1 - jitter * random())`` for the
n-th retry (full jitter by default)::

    from supportdesk._retry import RetryPolicy

    policy = RetryPolicy(attempts=3, base_delay=0.5)
    body = policy.call(lambda: client.get(url).raise_for_status().json())
    response = send_with_retries(lambda: client.post(url, json=payload), max_retries=2)

Only for idempotent requests (model calls, searches, look-ups).
"""

from __future__ import annotations

import logging
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import tenacity

__all__ = [
    "DEFAULT_POLICY",
    "MAX_RETRY_AFTER_S",
    "RETRYABLE_STATUS",
    "TRANSIENT_STATUS",
    "RetryPolicy",
    "is_transient",
    "parse_retry_after",
    "retry_after_of",
    "retry_after_seconds",
    "send_with_retries",
    "status_code_of",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: HTTP statuses retried (plus every other 5xx). 409 is deliberately absent (see the module docstring).
TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
RETRYABLE_STATUS = TRANSIENT_STATUS  # the name callers of the HTTP helper know
#: The longest Retry-After honoured by default; a longer one gives up at once.
MAX_RETRY_AFTER_S = 30.0


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


def retry_after_seconds(response: Any, cap: float = MAX_RETRY_AFTER_S) -> float | None:
    """Seconds a response's Retry-After header asks to wait, capped; None if absent or bad."""
    seconds = parse_retry_after(_header(response, "retry-after"))
    return None if seconds is None else min(cap, seconds)


def _header(response: Any, name: str) -> Any:
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        return headers.get(name) or headers.get(name.title())
    except Exception:  # noqa: BLE001 - odd header containers
        return None


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from (a wrapped Jira or SDK error keeps its status)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 5:
        chain.append(current)
        current = current.__cause__
    return chain


def status_code_of(exc: BaseException) -> int | None:
    """The HTTP status behind an exception (``status_code`` or ``response.status_code``), looking
    through ``raise ... from`` causes; None when it carries none."""
    for error in _causes(exc):
        code = getattr(error, "status_code", None)
        if code is None:
            code = getattr(getattr(error, "response", None), "status_code", None)
        try:
            if code is not None:
                return int(code)
        except (TypeError, ValueError):
            continue
    return None


def retry_after_of(exc: BaseException) -> float | None:
    """Seconds the server asked to wait: ``exc.retry_after`` or the Retry-After header of its response."""
    for error in _causes(exc):
        value: Any = getattr(error, "retry_after", None)
        if value is None:
            value = _header(getattr(error, "response", None), "retry-after")
        seconds = parse_retry_after(value)
        if seconds is not None:
            return seconds
    return None


def _network_errors() -> tuple[type[BaseException], ...]:
    """Timeout/connection error classes of the HTTP stacks in use (only those already imported)."""
    kinds: list[type[BaseException]] = [TimeoutError, ConnectionError]
    modules = sys.modules
    if "httpx" in modules:
        httpx = modules["httpx"]
        kinds += [httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError]
    if "requests" in modules:
        requests = modules["requests"]
        kinds += [requests.Timeout, requests.ConnectionError]
    for sdk in ("openai", "anthropic"):
        if sdk in modules:
            kinds.append(modules[sdk].APIConnectionError)  # APITimeoutError is a subclass
    return tuple(kinds)


def is_transient(exc: BaseException) -> bool:
    """True for timeouts, connection failures, and errors carrying HTTP 408/425/429/5xx (not 409)."""
    network = _network_errors()
    if any(isinstance(error, network) for error in _causes(exc)):
        return True
    code = status_code_of(exc)
    return code is not None and (code in TRANSIENT_STATUS or 500 <= code <= 599)


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures are retried. Frozen: share one, derive variants with ``dataclasses.replace``.

    :param attempts: calls in all (1 = no retry).
    :param base_delay: backoff of the first retry, doubled each time.
    :param max_wait: cap of one backoff, and the longest Retry-After honoured (longer: give up).
    :param jitter: fraction (0..1) of each backoff removed at random; 1.0 is full jitter.
    :param should_retry: which errors are transient (default :func:`is_transient`).
    :param retry_after: reads the wait a server asked for (default :func:`retry_after_of`).
    :param sleep: the sleep function (tests record it); ``rng`` the random source for jitter.
    """

    attempts: int = 3
    base_delay: float = 0.5
    max_wait: float = MAX_RETRY_AFTER_S
    jitter: float = 1.0
    should_retry: Callable[[BaseException], bool] = is_transient
    retry_after: Callable[[BaseException], float | None] = retry_after_of
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    rng: Callable[[], float] = field(default=random.random, repr=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")
        if self.base_delay < 0 or self.max_wait < 0:
            raise ValueError("delays must be >= 0")

    # ------------------------------------------------------------------ tenacity hooks

    def _asked(self, state: tenacity.RetryCallState) -> float | None:
        exc = state.outcome.exception() if state.outcome is not None else None
        return self.retry_after(exc) if exc is not None else None

    def _stop(self, state: tenacity.RetryCallState) -> bool:
        if state.attempt_number >= self.attempts:
            return True
        asked = self._asked(state)
        if asked is not None and asked > self.max_wait:
            logger.warning("server asked to retry after %.1fs (> %.1fs); giving up", asked, self.max_wait)
            return True
        return False

    def _wait(self, state: tenacity.RetryCallState) -> float:
        retry_number = state.attempt_number - 1
        delay = min(self.max_wait, self.base_delay * (2**retry_number)) * (1 - self.jitter * self.rng())
        asked = self._asked(state)
        return max(delay, asked) if asked is not None else delay

    def _log(self, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        logger.info(
            "transient failure (%s), retry %d/%d in %.2fs",
            type(exc).__name__, state.attempt_number, self.attempts - 1, wait,
        )

    def retrying(self) -> tenacity.Retrying:
        """A tenacity ``Retrying`` implementing this policy (the last error is re-raised unchanged)."""
        return tenacity.Retrying(
            stop=self._stop,
            wait=self._wait,
            retry=tenacity.retry_if_exception(self.should_retry),
            sleep=self.sleep,
            before_sleep=self._log,
            reraise=True,
        )

    def call(self, fn: Callable[[], T]) -> T:
        """Call ``fn`` under this policy; non-transient errors and the last failure propagate unchanged."""
        return self.retrying()(fn)


DEFAULT_POLICY = RetryPolicy()


class _TransientResponse(Exception):
    """An HTTP response with a transient status, raised so the policy retries it."""

    def __init__(self, response: Any) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.status_code = response.status_code


def send_with_retries(
    send: Callable[[], Any],
    *,
    max_retries: int,
    sleep: Callable[[float], None] = time.sleep,
    base_delay: float = 0.5,
    policy: RetryPolicy | None = None,
) -> Any:
    """Call ``send`` (returning an ``httpx.Response``) under the shared policy.

    Transport timeouts and connection errors are retried like 408/429/5xx responses; the last
    exception is re-raised. The returned response may still be an error status (a non-transient
    one, or the last transient one): the caller maps it to its own error.
    """
    base = policy or DEFAULT_POLICY
    active = RetryPolicy(
        attempts=max_retries + 1, base_delay=base_delay, max_wait=base.max_wait, jitter=base.jitter,
        should_retry=base.should_retry, retry_after=base.retry_after, sleep=sleep, rng=base.rng,
    )

    def attempt() -> Any:
        response = send()
        if response.status_code in TRANSIENT_STATUS or 500 <= response.status_code <= 599:
            raise _TransientResponse(response)
        return response

    try:
        return active.call(attempt)
    except _TransientResponse as exc:
        return exc.response
