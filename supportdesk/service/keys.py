"""API keys: one per backend, bound to a tenant and a set of scopes; only a hash is stored.

    from supportdesk.service.keys import KeyStore

    store = KeyStore("sqlite:///var/supportdesk.db")          # the run journal's database
    key, token = store.create("acme", scopes=["runs:write", "runs:read"])
    token                                                      # 'sd_3f9a..._...' shown once, never stored
    store.verify(token).tenant                                 # 'acme'
    store.revoke(key.key_id)
    store.verify(token)                                        # None

A token is ``sd_<key id>_<secret>``: the id finds the row, the secret is compared (constant time)
with the stored SHA-256. Secrets are 256 random bits, so a plain hash is enough (no password
stretching needed) and verification costs one indexed read.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from supportdesk.durable.db import Database
from supportdesk.errors import ApiKeyError
from supportdesk.service._schema import ensure_service_schema
from supportdesk.settings import Settings

__all__ = ["SCOPES", "ApiKey", "KeyStore", "validate_tenant"]

#: Every scope a key may hold.
SCOPES: tuple[str, ...] = ("runs:write", "runs:read", "approvals:write")
_TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
_KEY_ID_RE = re.compile(r"^[0-9a-f]{16}$")


def validate_tenant(name: str) -> str:
    """The tenant name, or :class:`ApiKeyError`: 1-40 letters, digits, '_' or '-' (no dots: run ids are tenant.key)."""
    if not isinstance(name, str) or not _TENANT_RE.match(name):
        raise ApiKeyError(f"tenant {name!r} is invalid: use 1-40 letters, digits, '_' or '-', starting with a letter or digit")
    return name


def _parse_scopes(scopes: Iterable[str] | str) -> tuple[str, ...]:
    items = [s.strip() for s in (scopes.split(",") if isinstance(scopes, str) else scopes) if s.strip()]
    unknown = sorted(set(items) - set(SCOPES))
    if unknown:
        raise ApiKeyError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    if not items:
        raise ApiKeyError(f"a key needs at least one scope; known: {', '.join(SCOPES)}")
    return tuple(s for s in SCOPES if s in items)


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    """One key's row (without its secret)."""

    key_id: str
    tenant: str
    scopes: tuple[str, ...]
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        """False once revoked."""
        return self.revoked_at is None

    def allows(self, scope: str) -> bool:
        """True when the key holds ``scope``."""
        return scope in self.scopes


class KeyStore:
    """API keys in the ``service_keys`` table of a :class:`~supportdesk.durable.db.Database`."""

    def __init__(self, db: Database | str) -> None:
        self.db = db if isinstance(db, Database) else Database(db)
        ensure_service_schema(self.db)

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyStore:
        """The store on the configured database (the run journal's)."""
        return cls(settings.resolved_database_url)

    def create(self, tenant: str, scopes: Iterable[str] | str = SCOPES) -> tuple[ApiKey, str]:
        """Create a key; returns its row and the token (shown once: only its hash is stored)."""
        tenant = validate_tenant(tenant)
        wanted = _parse_scopes(scopes)
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO service_keys (key_id, tenant, scopes, secret_sha256, created_at) VALUES (?, ?, ?, ?, ?)",
                (key_id, tenant, ",".join(wanted), _sha256(secret), now),
            )
        return ApiKey(key_id, tenant, wanted, now), f"sd_{key_id}_{secret}"

    def list(self, tenant: str | None = None) -> list[ApiKey]:
        """Every key (revoked ones too), oldest first, optionally of one tenant."""
        sql = "SELECT key_id, tenant, scopes, created_at, revoked_at FROM service_keys"
        params: tuple[str, ...] = ()
        if tenant is not None:
            sql += " WHERE tenant = ?"
            params = (tenant,)
        with self.db.transaction(write=False) as tx:
            rows = tx.fetchall(sql + " ORDER BY created_at, key_id", params)
        return [_from_row(r) for r in rows]

    def get(self, key_id: str) -> ApiKey:
        """One key's row; :class:`ApiKeyError` if there is none."""
        with self.db.transaction(write=False) as tx:
            row = tx.fetchone(
                "SELECT key_id, tenant, scopes, created_at, revoked_at FROM service_keys WHERE key_id = ?", (key_id,)
            )
        if row is None:
            raise ApiKeyError(f"no API key with id {key_id!r}")
        return _from_row(row)

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key (idempotent); it stops working at the next request."""
        if not _KEY_ID_RE.match(key_id or ""):
            raise ApiKeyError(f"{key_id!r} is not a key id (16 hex digits, as `supportdesk keys list` shows)")
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        with self.db.transaction() as tx:
            tx.execute("UPDATE service_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL", (now, key_id))
        return self.get(key_id)

    def verify(self, token: str | None) -> ApiKey | None:
        """The active key ``token`` belongs to, or None (malformed, unknown, wrong secret or revoked)."""
        if not token or not token.startswith("sd_") or len(token) > 200:
            return None
        _, key_id, secret = (token.split("_", 2) + ["", ""])[:3]
        if not _KEY_ID_RE.match(key_id) or not secret:
            return None
        with self.db.transaction(write=False) as tx:
            row = tx.fetchone(
                "SELECT key_id, tenant, scopes, created_at, revoked_at, secret_sha256 FROM service_keys WHERE key_id = ?",
                (key_id,),
            )
        if row is None or not hmac.compare_digest(str(row[5]), _sha256(secret)):
            return None
        key = _from_row(row[:5])
        return key if key.active else None


def _from_row(row: tuple[object, ...]) -> ApiKey:
    scopes = tuple(s for s in str(row[2]).split(",") if s)
    return ApiKey(str(row[0]), str(row[1]), scopes, str(row[3]), row[4] if row[4] is None else str(row[4]))
