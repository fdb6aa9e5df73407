"""Retrying transient failures of idempotent calls: timeouts, 429 (honouring Retry-After), 5xx.

    from supportdesk.durable import retry_transient

    results = retry_transient(lambda: search(query), attempts=3, base_delay=0.5, max_delay=8)

Never wrap a non-idempotent call (creating a ticket) in it: a timeout after the request was sent
may have created the ticket. Those go through :func:`~supportdesk.durable.exactly_once_ticket`,
which reconciles by idempotency key instead of re-sending.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from supportdesk._retry import parse_retry_after

__all__ = ["TRANSIENT_STATUS", "default_retry_after", "is_transient", "retry_transient", "status_code_of"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def status_code_of(exc: BaseException) -> int | None:
    """The HTTP status behind an exception, if it carries one (``status_code`` or ``response.status_code``)."""
    code = getattr(exc, "status_code", None)
    if code is None:
        response = getattr(exc, "response", None)
        code = getattr(response, "status_code", None)
    try:
        return int(code) if code is not None else None
    except (TypeError, ValueError):
        return None


def _network_errors() -> tuple[type[BaseException], ...]:
    kinds: list[type[BaseException]] = [TimeoutError, ConnectionError]
    try:
        import httpx

        kinds += [httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError]
    except ImportError:  # pragma: no cover
        pass
    try:
        import requests

        kinds += [requests.Timeout, requests.ConnectionError]
    except ImportError:  # pragma: no cover
        pass
    return tuple(kinds)


_NETWORK = _network_errors()


def is_transient(exc: BaseException) -> bool:
    """True for timeouts, connection failures, and errors carrying HTTP 408/425/429/5xx."""
    if isinstance(exc, _NETWORK):
        return True
    code = status_code_of(exc)
    return code is not None and (code in TRANSIENT_STATUS or 500 <= code <= 599)


def default_retry_after(exc: BaseException) -> float | None:
    """Seconds the server asked to wait: ``exc.retry_after`` or a ``Retry-After`` header (delta or HTTP date)."""
    value: Any = getattr(exc, "retry_after", None)
    if value is None:
        headers = getattr(getattr(exc, "response", None), "headers", None)
        if headers is not None:
            try:
                value = headers.get("retry-after") or headers.get("Retry-After")
            except Exception:  # noqa: BLE001 - odd header containers
                value = None
    return parse_retry_after(value)


def retry_transient(
    fn: Callable[[], T],
    *,
    attempts: int = 3,
    base_delay: float = 0.5,
    max_delay: float = 30.0,
    jitter: float = 0.5,
    retry_after_from: Callable[[BaseException], float | None] = default_retry_after,
    should_retry: Callable[[BaseException], bool] = is_transient,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
) -> T:
    """Call ``fn`` up to ``attempts`` times, sleeping between transient failures.

    The n-th retry waits ``min(max_delay, base_delay * 2**n)``, reduced by up to ``jitter`` (a fraction,
    0..1) at random; a Retry-After the server sent is honoured as a minimum. If the server asks for
    longer than ``max_delay`` the error is raised at once rather than retried early. Non-transient
    errors and the last failure propagate unchanged.
    """
    if attempts < 1:
        raise ValueError("attempts must be >= 1")
    if not 0 <= jitter <= 1:
        raise ValueError("jitter must be between 0 and 1")
    for attempt in range(attempts):
        try:
            return fn()
        except Exception as exc:
            if attempt == attempts - 1 or not should_retry(exc):
                raise
            delay = min(max_delay, base_delay * (2**attempt)) * (1 - jitter * rng())
            asked = retry_after_from(exc)
            if asked is not None:
                if asked > max_delay:
                    logger.warning("server asked to retry after %.1fs (> max %.1fs); giving up", asked, max_delay)
                    raise
                delay = max(delay, asked)
            logger.info(
                "transient failure (%s), retry %d/%d in %.2fs", type(exc).__name__, attempt + 1, attempts - 1, delay
            )
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
