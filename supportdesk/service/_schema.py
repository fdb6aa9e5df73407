"""The service's own tables, in the same database as the run journal (SQLite or PostgreSQL).

``service_keys``  one row per API key: id, tenant, scopes, SHA-256 of the secret (never the secret)
``service_runs``  one row per run admitted over HTTP: tenant, idempotency key, request fingerprint,
                  query, customer and metadata (the journal row holds the run itself; same ``run_id``;
                  the query is kept here so a run accepted but not yet started survives a restart)

Statements use ``?`` placeholders and are valid in both dialects (see ``supportdesk.durable._sql``).
"""

from __future__ import annotations

import threading
import weakref

from supportdesk.durable.db import Database

DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS service_keys (
        key_id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        scopes TEXT NOT NULL,
        secret_sha256 TEXT NOT NULL,
        created_at TEXT NOT NULL,
        revoked_at TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS service_runs (
        run_id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        idem_key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        query TEXT NOT NULL,
        customer_id TEXT,
        metadata_json TEXT NOT NULL,
        created_at TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS service_runs_tenant ON service_runs (tenant, created_at, run_id)",
)

_ready: weakref.WeakSet[Database] = weakref.WeakSet()
_lock = threading.Lock()


def ensure_service_schema(db: Database) -> None:
    """Create the service tables on ``db`` if missing (idempotent; once per Database object)."""
    if db in _ready:
        return
    with _lock:
        if db in _ready:
            return
        with db.transaction() as tx:
            for stmt in DDL:
                tx.execute(stmt)
        _ready.add(db)
