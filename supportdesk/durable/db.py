"""One database abstraction over SQLite and PostgreSQL: URL in, transactions out.

    from supportdesk.durable import Database

    db = Database("sqlite:///tmp/supportdesk.db")          # or "postgresql://user@127.0.0.1:5432/db"
    with db.transaction() as tx:                             # one atomic unit, committed on exit
        tx.execute("INSERT INTO t (a) VALUES (?)", (1,))     # '?' placeholders in both dialects
        rows = tx.fetchall("SELECT a FROM t")

SQLite connections run in WAL mode with ``synchronous=FULL`` and a ``busy_timeout``; write
transactions start with ``BEGIN IMMEDIATE`` so concurrent writers queue on the busy timeout instead
of failing on a lock upgrade. Why FULL and not NORMAL: in WAL mode NORMAL already survives a
SIGKILL of the process (a committed transaction is in the WAL file, only the OS may still hold it),
but loses the last commits on a power cut or kernel crash. The journal writes a few rows per run
step next to LLM calls that take seconds, so the extra fsync per commit is negligible, and a lost
side-effect outcome row is what could otherwise turn into a second ticket. Override with
``sqlite:///path?synchronous=NORMAL`` if you need the throughput.

PostgreSQL connections (psycopg 3) run in autocommit mode; :meth:`Database.transaction` opens an
explicit transaction (READ COMMITTED: every statement the journal runs is a single-row atomic
``UPDATE ... WHERE`` or ``INSERT ... ON CONFLICT``, which is race-free at that level).

Connections are cached per thread and per process (a forked child opens its own).

Opening a fresh SQLite file from many processes at once: switching the journal mode to WAL needs an
exclusive lock, and SQLite does not run the busy handler for that pragma, so concurrent first
openers used to fail with "database is locked". The switch therefore happens once per file, under
an advisory file lock (``<db>.lock``) and with a retry loop bounded by the busy timeout; WAL is a
property of the file, so every later connection just reads it. Every other lock wait honours
``busy_timeout``; a lock still held after it is a one-line :class:`~supportdesk.errors.StoreBusyError`.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from supportdesk.durable import _sql
from supportdesk.errors import ConfigError, StoreBusyError

__all__ = ["Database", "Dialect", "Transaction"]

logger = logging.getLogger(__name__)

Dialect = Literal["sqlite", "postgresql"]
_SYNC_MODES = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})


class Transaction:
    """The handle a :meth:`Database.transaction` block gets: run statements inside one transaction."""

    def __init__(self, conn: Any, dialect: Dialect) -> None:
        self._conn = conn
        self._dialect = dialect

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self._dialect == "postgresql" else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        cur = self._conn.execute(self._sql(sql), tuple(params))
        count = cur.rowcount
        return int(count) if count is not None and count > 0 else 0

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """Run a query (or ``... RETURNING``) and return its first row, or None."""
        cur = self._conn.execute(self._sql(sql), tuple(params))
        row = cur.fetchone()
        return tuple(row) if row is not None else None

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a query and return all rows."""
        cur = self._conn.execute(self._sql(sql), tuple(params))
        return [tuple(r) for r in cur.fetchall()]


class Database:
    """A SQLite or PostgreSQL database, chosen by URL; creates the durable schema on first use.

    :param url: ``sqlite:///relative/or/absolute/path.db`` (``sqlite:///:memory:`` is refused: the
        journal must outlive the process), or ``postgresql://...`` / ``postgres://...`` (any libpq URL).
    :param busy_timeout_ms: how long a SQLite writer waits for the lock before failing.
    :param connect_timeout_s: PostgreSQL connect timeout.
    """

    def __init__(self, url: str, *, busy_timeout_ms: int = 30_000, connect_timeout_s: float = 10.0) -> None:
        self.url = url
        self.busy_timeout_ms = busy_timeout_ms
        self.connect_timeout_s = connect_timeout_s
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        self._local = threading.local()
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        if scheme == "sqlite":
            self.dialect: Dialect = "sqlite"
            path = url[len("sqlite:///") :].split("?", 1)[0] if url.lower().startswith("sqlite:///") else ""
            if not path or path == ":memory:":
                raise ConfigError(f"database URL {url!r}: need sqlite:///path/to/file.db")
            self.sqlite_path = Path(path)
            options = {k.lower(): v for k, v in parse_qsl(parts.query)}
            sync = options.get("synchronous", "FULL").upper()
            if sync not in _SYNC_MODES:
                raise ConfigError(f"database URL {url!r}: synchronous must be one of {sorted(_SYNC_MODES)}")
            self.sqlite_synchronous = sync
        elif scheme in ("postgresql", "postgres"):
            self.dialect = "postgresql"
            try:
                import psycopg  # noqa: F401
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise ConfigError(
                    "a postgresql:// database URL needs psycopg: pip install 'supportdesk[postgres]'"
                ) from exc
        else:
            raise ConfigError(f"database URL {url!r}: scheme must be sqlite:/// or postgresql://")

    def __repr__(self) -> str:
        return f"Database({self.redacted_url!r})"

    @property
    def redacted_url(self) -> str:
        """The URL with any password replaced by ``***`` (for logs and error messages)."""
        parts = urlsplit(self.url)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
            return parts._replace(netloc=netloc).geturl()
        return self.url

    # --- connections ----------------------------------------------------------------------

    def _connect(self) -> Any:
        if self.dialect == "sqlite":
            self.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.sqlite_path, timeout=self.busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
                self._ensure_wal(conn)
                conn.execute(f"PRAGMA synchronous = {self.sqlite_synchronous}")
                conn.execute("PRAGMA foreign_keys = ON")
            except BaseException:
                conn.close()
                raise
            return conn
        import psycopg

        return psycopg.connect(self.url, autocommit=True, connect_timeout=max(1, int(self.connect_timeout_s)))

    def _ensure_wal(self, conn: sqlite3.Connection) -> None:
        """Put the file in WAL mode once: under a cross-process file lock, retrying SQLITE_BUSY with backoff."""
        if _journal_mode(conn) == "wal":
            return
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        with _file_lock(self.sqlite_path.with_name(self.sqlite_path.name + ".lock"), deadline, self.redacted_url):
            delay = 0.005
            while True:
                try:
                    mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
                except sqlite3.OperationalError as exc:
                    if not _is_busy(exc) or time.monotonic() >= deadline:
                        raise _busy_error(self.redacted_url, exc) from exc
                    time.sleep(delay)
                    delay = min(delay * 2, 0.2)
                    continue
                if mode != "wal":
                    raise ConfigError(f"{self.redacted_url}: SQLite refused WAL mode (got {mode!r})")
                return

    def _connection(self) -> Any:
        pid = os.getpid()
        cached = getattr(self._local, "conn", None)
        if cached is not None and cached[0] == pid:
            return cached[1]
        conn = self._connect()
        self._local.conn = (pid, conn)
        return conn

    def _drop_connection(self) -> None:
        cached = getattr(self._local, "conn", None)
        self._local.conn = None
        if cached is not None and cached[0] == os.getpid():
            try:
                cached[1].close()
            except Exception:
                logger.debug("closing a broken connection failed", exc_info=True)

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        self._drop_connection()

    # --- transactions ---------------------------------------------------------------------

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Transaction]:
        """One atomic transaction: committed when the block ends, rolled back if it raises.

        ``write=False`` opens a read-only snapshot (SQLite: a deferred transaction that takes no lock).
        Transactions do not nest.
        """
        self.ensure_schema()
        with self._raw_transaction(write=write) as tx:
            yield tx

    @contextmanager
    def _raw_transaction(self, *, write: bool) -> Iterator[Transaction]:
        if getattr(self._local, "depth", 0):
            raise RuntimeError("Database.transaction() does not nest")
        conn = self._connection()
        self._local.depth = 1
        try:
            if self.dialect == "sqlite":
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield Transaction(conn, self.dialect)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            else:
                with conn.transaction():
                    yield Transaction(conn, self.dialect)
        except (sqlite3.OperationalError, sqlite3.DatabaseError) as exc:
            logger.warning("SQLite error on %s: %s", self.redacted_url, exc)
            self._drop_connection()
            if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc):
                raise _busy_error(self.redacted_url, exc) from exc
            raise
        except Exception as exc:
            if self.dialect == "postgresql" and _is_pg_connection_error(exc):
                logger.warning("PostgreSQL connection error on %s: %s", self.redacted_url, exc)
                self._drop_connection()
            raise
        finally:
            self._local.depth = 0

    def ensure_schema(self) -> None:
        """Create the durable tables if they are missing (idempotent, safe under concurrency)."""
        if self._schema_ready:
            return
        with self._schema_lock:
            if self._schema_ready:
                return
            with self._raw_transaction(write=True) as tx:
                if self.dialect == "postgresql":
                    tx.execute(_sql.PG_SCHEMA_LOCK)
                for stmt in _sql.DDL:
                    tx.execute(stmt)
                row = tx.fetchone(_sql.SCHEMA_VERSION_GET)
                if row is None:
                    tx.execute(_sql.SCHEMA_VERSION_SET, (_sql.SCHEMA_VERSION,))
                    triggers = _sql.APPEND_ONLY_POSTGRES if self.dialect == "postgresql" else _sql.APPEND_ONLY_SQLITE
                    for stmt in triggers:
                        tx.execute(stmt)
                elif int(row[0]) > _sql.SCHEMA_VERSION:
                    raise ConfigError(
                        f"{self.redacted_url}: durable schema version {row[0]} is newer than this supportdesk "
                        f"({_sql.SCHEMA_VERSION}); upgrade supportdesk"
                    )
            self._schema_ready = True
            logger.debug("durable schema ready on %s", self.redacted_url)


def _journal_mode(conn: sqlite3.Connection) -> str:
    try:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
    except sqlite3.OperationalError as exc:
        if _is_busy(exc):
            return ""  # unknown yet: take the locked path
        raise


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _busy_error(url: str, exc: BaseException) -> StoreBusyError:
    return StoreBusyError(f"{url}: the database stayed locked past its busy timeout ({exc})")


@contextmanager
def _file_lock(path: Path, deadline: float, url: str) -> Iterator[None]:
    """An advisory exclusive lock on ``path`` (POSIX flock), polled until ``deadline``; a no-op elsewhere."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: rely on the retry loop alone
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError as exc:
                if time.monotonic() >= deadline:
                    raise _busy_error(url, exc) from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _is_pg_connection_error(exc: BaseException) -> bool:
    try:
        import psycopg
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
