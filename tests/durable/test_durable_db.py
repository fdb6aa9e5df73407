"""SQLite opening under contention: WAL is set once without lock errors; a held lock is a typed one-line error."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from supportdesk.durable import Database
from supportdesk.errors import StoreBusyError


def test_many_threads_open_a_fresh_file_without_lock_errors(tmp_path: Path) -> None:
    """Sixteen connections opening one new file at once all end in WAL mode with the schema, none raising."""
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    barrier, errors = threading.Barrier(16), []

    def open_it() -> None:
        try:
            barrier.wait(timeout=30)
            db = Database(url)
            with db.transaction(write=False) as tx:
                tx.fetchall("SELECT 1")
            db.close()
        except Exception as exc:  # collected and asserted below
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=open_it) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with sqlite3.connect(tmp_path / "fresh.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_lock_held_past_the_busy_timeout_is_store_busy_error(tmp_path: Path) -> None:
    """A writer blocked longer than busy_timeout gets StoreBusyError with a one-line message, not OperationalError."""
    url = f"sqlite:///{tmp_path / 'held.db'}"
    Database(url).ensure_schema()
    holder = sqlite3.connect(tmp_path / "held.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        blocked = Database(url, busy_timeout_ms=200)
        with pytest.raises(StoreBusyError) as info:
            with blocked.transaction() as tx:
                tx.execute("SELECT 1")
        assert "\n" not in str(info.value) and "locked" in str(info.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
