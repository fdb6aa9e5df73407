"""Retrying transient failures of idempotent calls: the shared tenacity policy of :mod:`supportdesk._retry`.

    from supportdesk.durable import retry_transient

    results = retry_transient(lambda: search(query), attempts=3, base_delay=0.5, max_delay=8)

Never wrap a non-idempotent call (creating a ticket) in it: a timeout after the request was sent
may have created the ticket. Those go through :func:`~supportdesk.durable.exactly_once_ticket`,
which reconciles by idempotency key instead of re-sending.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from supportdesk._retry import (
    DEFAULT_POLICY,
    TRANSIENT_STATUS,
    RetryPolicy,
    is_transient,
    retry_after_of,
    status_code_of,
)

__all__ = ["TRANSIENT_STATUS", "default_retry_after", "is_transient", "retry_transient", "status_code_of"]

T = TypeVar("T")

#: Seconds the server asked to wait (``exc.retry_after`` or a ``Retry-After`` header, delta or HTTP date).
default_retry_after = retry_after_of


def retry_transient(
    fn: Callable[[], T],
    *,
    attempts: int = DEFAULT_POLICY.attempts,
    base_delay: float = DEFAULT_POLICY.base_delay,
    max_delay: float = DEFAULT_POLICY.max_wait,
    jitter: float = DEFAULT_POLICY.jitter,
    retry_after_from: Callable[[BaseException], float | None] = retry_after_of,
    should_retry: Callable[[BaseException], bool] = is_transient,
    sleep: Callable[[float], None] = DEFAULT_POLICY.sleep,
    rng: Callable[[], float] = DEFAULT_POLICY.rng,
) -> T:
    """Call ``fn`` up to ``attempts`` times under the shared :class:`~supportdesk._retry.RetryPolicy`.

    The n-th retry waits ``min(max_delay, base_delay * 2**n)``, reduced by up to ``jitter`` (a fraction,
    0..1) at random; a Retry-After the server sent is honoured as a minimum. If the server asks for
    longer than ``max_delay`` the error is raised at once rather than retried early. Non-transient
    errors (409 included) and the last failure propagate unchanged.
    """
    policy = RetryPolicy(
        attempts=attempts, base_delay=base_delay, max_wait=max_delay, jitter=jitter,
        should_retry=should_retry, retry_after=retry_after_from, sleep=sleep, rng=rng,
    )
    return policy.call(fn)
