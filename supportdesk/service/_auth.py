"""Who is calling: Bearer keys (or the console's cookie), scopes, and a token-bucket rate limit per key."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from supportdesk.service._problems import ApiProblem
from supportdesk.service.keys import ApiKey, KeyStore

__all__ = ["COOKIE", "Authenticator", "RateLimiter"]

#: The console's cookie carrying the key (HttpOnly, SameSite=Strict).
COOKIE = "sd_key"


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """A token bucket per key: ``burst`` requests at once, refilled at ``per_minute`` a minute.

    ``per_minute=0`` turns it off. Process-local: with several server processes each has its own.
    """

    def __init__(self, per_minute: int, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.burst = max(1, burst)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key_id: str) -> float:
        """Spend one token; returns 0.0 when allowed, else the seconds until the next token."""
        if self.per_minute <= 0:
            return 0.0
        rate = self.per_minute / 60.0
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key_id)
            if bucket is None:
                bucket = self._buckets[key_id] = _Bucket(float(self.burst), now)
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.stamp) * rate)
            bucket.stamp = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / rate


class Authenticator:
    """Resolves the caller's key and enforces scope and rate limit; raises :class:`ApiProblem`."""

    def __init__(self, keys: KeyStore, limiter: RateLimiter) -> None:
        self.keys = keys
        self.limiter = limiter

    @staticmethod
    def token_of(request: Request, *, cookie: bool = False) -> str | None:
        """The Bearer token of the request (or, for the console, its cookie)."""
        header = request.headers.get("authorization")
        if header:
            scheme, _, value = header.partition(" ")
            return value.strip() if scheme.lower() == "bearer" and value.strip() else None
        return request.cookies.get(COOKIE) if cookie else None

    def authenticate(self, request: Request, scope: str, *, cookie: bool = False) -> ApiKey:
        """The key of the request holding ``scope``: 401 missing/invalid, 403 scope, 429 rate limit."""
        token = self.token_of(request, cookie=cookie)
        challenge = {"WWW-Authenticate": 'Bearer realm="supportdesk"'}
        if token is None:
            raise ApiProblem(401, "missing API key: send 'Authorization: Bearer <key>'", headers=challenge)
        key = self.keys.verify(token)
        if key is None:
            raise ApiProblem(401, "invalid or revoked API key", headers=challenge)
        wait = self.limiter.take(key.key_id)
        if wait > 0:
            raise ApiProblem(429, "rate limit exceeded for this API key", headers={"Retry-After": str(max(1, math.ceil(wait)))})
        if not key.allows(scope):
            raise ApiProblem(403, f"this API key lacks the {scope!r} scope")
        return key
