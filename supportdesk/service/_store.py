"""Runs admitted over HTTP: idempotency keys per tenant, request fingerprints, listing with cursors.

The journal (``durable_runs``) owns a run's execution; ``service_runs`` records who asked for it,
with which idempotency key and which request. Admission is one ``INSERT ... ON CONFLICT DO
NOTHING``: of any number of concurrent requests with the same key exactly one creates the row, and
every other one compares its fingerprint with the stored one (same: the same run; different: 409).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from supportdesk.durable import RunJournal
from supportdesk.durable.journal import AuditEntry
from supportdesk.service._schema import ensure_service_schema

__all__ = ["AdmittedRun", "RunStore", "fingerprint"]

_COLUMNS = "run_id, tenant, idem_key, fingerprint, query, customer_id, metadata_json, created_at"


def fingerprint(query: str, customer_id: str | None, metadata: Mapping[str, Any]) -> str:
    """SHA-256 of the request's meaning (normalised query, customer, metadata), key order ignored."""
    text = json.dumps({"q": query, "c": customer_id, "m": metadata}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AdmittedRun:
    """One ``service_runs`` row."""

    run_id: str
    tenant: str
    key: str
    fingerprint: str
    query: str
    customer_id: str | None
    metadata: dict[str, Any]
    created_at: str

    @classmethod
    def _from_row(cls, row: tuple[Any, ...]) -> AdmittedRun:
        return cls(row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6]), row[7])


def encode_cursor(run: AdmittedRun) -> str:
    """An opaque cursor pointing after ``run`` in newest-first order."""
    return base64.urlsafe_b64encode(f"{run.created_at}|{run.run_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str] | None:
    """``(created_at, run_id)`` of a cursor, or None when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    created, sep, run_id = raw.partition("|")
    return (created, run_id) if sep and created and run_id else None


class RunStore:
    """``service_runs`` plus the journal reads the API needs, on the journal's database."""

    def __init__(self, journal: RunJournal) -> None:
        self.journal = journal
        self.db = journal.db
        ensure_service_schema(self.db)

    def admit(
        self,
        run_id: str,
        tenant: str,
        key: str,
        fp: str,
        query: str,
        customer_id: str | None,
        metadata: Mapping[str, Any],
    ) -> tuple[AdmittedRun, bool]:
        """Record the request (if new); returns the stored row and whether this call created it."""
        now = datetime.now(UTC).isoformat(timespec="microseconds")
        meta = json.dumps(dict(metadata), sort_keys=True, ensure_ascii=False)
        with self.db.transaction() as tx:
            created = (
                tx.execute(
                    f"INSERT INTO service_runs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id) DO NOTHING",
                    (run_id, tenant, key, fp, query, customer_id, meta, now),
                )
                == 1
            )
            row = tx.fetchone(f"SELECT {_COLUMNS} FROM service_runs WHERE run_id = ?", (run_id,))
        assert row is not None
        return AdmittedRun._from_row(row), created

    def get(self, run_id: str) -> AdmittedRun | None:
        """The admitted run, or None."""
        with self.db.transaction(write=False) as tx:
            row = tx.fetchone(f"SELECT {_COLUMNS} FROM service_runs WHERE run_id = ?", (run_id,))
        return AdmittedRun._from_row(row) if row else None

    def list(
        self, tenant: str, *, status: str | None = None, limit: int = 50, after: tuple[str, str] | None = None
    ) -> list[AdmittedRun]:
        """A tenant's runs, newest first; ``status`` filters on the journal status ('queued': no journal row yet)."""
        sql = (
            "SELECT s.run_id, s.tenant, s.idem_key, s.fingerprint, s.query, s.customer_id, s.metadata_json, s.created_at "
            "FROM service_runs s LEFT JOIN durable_runs d ON d.run_id = s.run_id WHERE s.tenant = ?"
        )
        params: list[Any] = [tenant]
        if status is not None:
            sql += " AND COALESCE(d.status, 'queued') = ?"
            params.append(status)
        if after is not None:
            sql += " AND (s.created_at < ? OR (s.created_at = ? AND s.run_id < ?))"
            params += [after[0], after[0], after[1]]
        sql += " ORDER BY s.created_at DESC, s.run_id DESC LIMIT ?"
        params.append(limit)
        with self.db.transaction(write=False) as tx:
            rows = tx.fetchall(sql, params)
        return [AdmittedRun._from_row(r) for r in rows]

    def audit_after(self, run_id: str, after_seq: int, limit: int = 500) -> list[AuditEntry]:
        """Audit entries of ``run_id`` with ``seq > after_seq``, in order (empty before the run row exists)."""
        with self.db.transaction(write=False) as tx:
            rows = tx.fetchall(
                "SELECT run_id, seq, ts, step, kind, data_json FROM durable_audit WHERE run_id = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (run_id, after_seq, limit),
            )
        return [AuditEntry(r[0], int(r[1]), r[2], r[3], r[4], json.loads(r[5])) for r in rows]

    def unstarted(self, limit: int = 1000) -> list[AdmittedRun]:
        """Admitted runs the journal has never seen (accepted, then the process stopped before a worker took them)."""
        with self.db.transaction(write=False) as tx:
            rows = tx.fetchall(
                "SELECT s.run_id, s.tenant, s.idem_key, s.fingerprint, s.query, s.customer_id, s.metadata_json, "
                "s.created_at FROM service_runs s LEFT JOIN durable_runs d ON d.run_id = s.run_id "
                "WHERE d.run_id IS NULL ORDER BY s.created_at LIMIT ?",
                (limit,),
            )
        return [AdmittedRun._from_row(r) for r in rows]

    def status_counts(self) -> dict[str, int]:
        """How many journal runs are in each status (all runs of the database, CLI ones too)."""
        with self.db.transaction(write=False) as tx:
            rows = tx.fetchall("SELECT status, COUNT(*) FROM durable_runs GROUP BY status")
        return {str(r[0]): int(r[1]) for r in rows}

    def ping(self) -> None:
        """One trivial read: raises when the database is unreachable."""
        with self.db.transaction(write=False) as tx:
            tx.fetchone("SELECT 1")
