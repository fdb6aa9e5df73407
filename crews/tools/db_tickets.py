"""Tickets in the run journal's database (SQLite or PostgreSQL): the local store for several workers.

``SUPPORTDESK_TICKET_STORE=database`` files tickets into ``supportdesk_tickets`` next to the journal
(``SUPPORTDESK_DATABASE_URL``), so Temporal workers on different machines share one store. The
``UNIQUE`` key column makes creation exactly-once across processes, as in the SQLite-file store.

    store = DatabaseTicketStore("postgresql://localhost/supportdesk")
    receipt = store.create(TicketDraft(title="Refund", summary="Charged twice."), idempotency_key="run-1",
                           category="billing", priority="high", customer_id=None)
    store.find_by_key("run-1").ticket_id        # "DB-1"
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from typing import Any

from supportdesk.crews.tools.ticketing import _check_key, clean_field
from supportdesk.durable.db import Database
from supportdesk.models.responses import TicketDraft, TicketReceipt

__all__ = ["DatabaseTicketStore"]

logger = logging.getLogger(__name__)

_COLUMNS = "seq, idempotency_key, title, summary, category, priority, customer_id, created_at"
_SCHEMA = """CREATE TABLE IF NOT EXISTS supportdesk_tickets (
    seq {seq},
    idempotency_key TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    summary TEXT NOT NULL,
    category TEXT NOT NULL,
    priority TEXT NOT NULL,
    customer_id TEXT,
    created_at TEXT NOT NULL
)"""
_INSERT = (
    "INSERT INTO supportdesk_tickets (idempotency_key, title, summary, category, priority, customer_id, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING"
)
_BY_KEY = "SELECT seq, idempotency_key FROM supportdesk_tickets WHERE idempotency_key = ?"
_LIST = f"SELECT {_COLUMNS} FROM supportdesk_tickets ORDER BY seq DESC"


class DatabaseTicketStore:
    """Tickets in a table of the given database.

    :param db: a :class:`~supportdesk.durable.db.Database` or its URL (``sqlite:///...``, ``postgresql://...``).
    """

    name = "database"

    def __init__(self, db: Database | str) -> None:
        self.db = db if isinstance(db, Database) else Database(db)
        self._ready = False
        self._lock = threading.Lock()

    def _ensure(self) -> None:
        if self._ready:
            return
        with self._lock:
            if not self._ready:
                seq = "BIGSERIAL PRIMARY KEY" if self.db.dialect == "postgresql" else "INTEGER PRIMARY KEY"
                with self.db.transaction() as tx:
                    if self.db.dialect == "postgresql":
                        tx.execute("SELECT pg_advisory_xact_lock(7305019942)")  # concurrent first use
                    tx.execute(_SCHEMA.format(seq=seq))
                self._ready = True

    @staticmethod
    def _receipt(seq: int, key: str, created: bool) -> TicketReceipt:
        return TicketReceipt(ticket_id=f"DB-{seq}", url=None, backend="database", idempotency_key=key, created=created)

    def create(
        self, draft: TicketDraft, *, idempotency_key: str, category: str, priority: str, customer_id: str | None
    ) -> TicketReceipt:
        """Insert the ticket unless one with this key exists (then return it with ``created=False``)."""
        key = _check_key(idempotency_key)
        self._ensure()
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        title = clean_field(draft.title, single_line=True, max_chars=120)
        summary = clean_field(draft.summary, max_chars=1000)
        with self.db.transaction() as tx:
            created = tx.execute(_INSERT, (key, title, summary, category, priority, customer_id, now)) == 1
            row = tx.fetchone(_BY_KEY, (key,))
        assert row is not None
        receipt = self._receipt(int(row[0]), key, created)
        logger.info("ticket %s %s for key %s", receipt.ticket_id, "created" if created else "exists", key)
        return receipt

    def find_by_key(self, key: str) -> TicketReceipt | None:
        """The ticket filed under ``key``, or None."""
        self._ensure()
        with self.db.transaction(write=False) as tx:
            row = tx.fetchone(_BY_KEY, (_check_key(key),))
        return self._receipt(int(row[0]), row[1], created=False) if row else None

    def list_tickets(self) -> list[dict[str, Any]]:
        """All tickets, newest first."""
        self._ensure()
        with self.db.transaction(write=False) as tx:
            rows = tx.fetchall(_LIST)
        names = _COLUMNS.split(", ")
        return [{"ticket_id": f"DB-{row[0]}", **dict(zip(names[1:], row[1:], strict=True))} for row in rows]
