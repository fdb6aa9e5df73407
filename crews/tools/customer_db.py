"""Who the customer is: the customer directory protocol, its SQLite demo, and the lookup tool.

A run reads exactly one account: the one its caller states (``--customer``, ``customer=`` in the
Python API, ``customer_id`` in the HTTP API), verified against a :class:`CustomerDirectory` before
anything is written. Ids, e-mail addresses and names inside the query text are customer data and
never select an account. A backend plugs its CRM in by implementing the three methods of
:class:`CustomerDirectory` and passing it to ``build_services(settings, customers=...)``;
:class:`CustomerDB` is the demo implementation on a SQLite file seeded from ``config/customers.sql``::

    from supportdesk.crews.tools.customer_db import CustomerDB, CustomerLookupTool, verify_customer

    db = CustomerDB("/tmp/customers.db")
    caller = verify_customer(db, "MARIA.GONZALEZ@example.com")   # CustomerRecord C-1001, recent invoices
    verify_customer(db, "C-9999")                                # CustomerNotFoundError
    tool = CustomerLookupTool.for_caller(caller)                 # reads C-1001 and nothing else
    tool.run()                                                   # CustomerLookup JSON of C-1001
    tool.run(customer_id="C-1002")                               # 'Error: ... only the verified caller ...'

:class:`CustomerLookupTool` is built per run around the verified caller (or None: the requester is
unverified); whatever arguments an agent passes, it returns that account or an error string.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from supportdesk._config import config_path
from supportdesk.crews.tools._agent_tool import AgentSafeTool, one_line
from supportdesk.errors import ConfigError, CustomerNotFoundError, SupportdeskError
from supportdesk.models.responses import CustomerLookup, CustomerRecord, Invoice

__all__ = [
    "UNVERIFIED_SUMMARY",
    "CustomerDB",
    "CustomerDirectory",
    "CustomerLookupArgs",
    "CustomerLookupTool",
    "caller_lookup",
    "describe_customer",
    "duplicate_charges",
    "verify_customer",
]

logger = logging.getLogger(__name__)

EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
CUSTOMER_ID_RE = re.compile(r"\bC-\d{4,8}\b", re.IGNORECASE)
RECENT_INVOICES = 6
UNVERIFIED_SUMMARY = (
    "The requester is unverified: no customer account was given with this request, so no account facts are used."
)

# Every statement the demo runs; ``?`` placeholders (a PostgreSQL backend maps them to ``%s``).
_SQL: dict[str, str] = {
    "customer_by_id": (
        "SELECT customer_id, name, email, plan, account_status, signup_date FROM customers WHERE customer_id = ?"
    ),
    "customer_by_email": (
        "SELECT customer_id, name, email, plan, account_status, signup_date FROM customers WHERE lower(email) = ?"
    ),
    "recent_invoices": (
        "SELECT invoice_id, amount_cents, currency, status, issued_on, description FROM invoices "
        "WHERE customer_id = ? ORDER BY issued_on DESC, invoice_id DESC LIMIT ?"
    ),
    "count_customers": "SELECT count(*) FROM customers",
}


@runtime_checkable
class CustomerDirectory(Protocol):
    """Where a backend's customers live: look an account up by id or e-mail, and its recent invoices.

    Implementations are read-only and must return only the account asked for (``None`` when there is
    none); they are called with the caller's stated identity, never with text from the query::

        class CrmDirectory:
            def get(self, customer_id): ...            # CustomerRecord | None
            def get_by_email(self, email): ...         # CustomerRecord | None (case-insensitive)
            def recent_invoices(self, customer_id, limit=6): ...   # newest first

        services = build_services(settings, customers=CrmDirectory())
    """

    def get(self, customer_id: str) -> CustomerRecord | None:
        """The account with this id, or None."""
        ...

    def get_by_email(self, email: str) -> CustomerRecord | None:
        """The account with this e-mail address (case-insensitive), or None."""
        ...

    def recent_invoices(self, customer_id: str, limit: int = RECENT_INVOICES) -> list[Invoice]:
        """The account's most recent invoices, newest first, at most ``limit``."""
        ...


def verify_customer(directory: CustomerDirectory, stated: str) -> CustomerRecord:
    """The account the caller stated (an e-mail address if it has an ``@``, else an id), with its recent invoices.

    :raises CustomerNotFoundError: no such account (or the directory answered with a different one).
    """
    key = stated.strip()
    by_email = "@" in key
    record = directory.get_by_email(key) if by_email else directory.get(key)
    if record is None:
        raise CustomerNotFoundError(f"customer {key!r} is not in the customer directory")
    if (record.email if by_email else record.customer_id).casefold() != key.casefold():
        raise CustomerNotFoundError(f"customer {key!r}: the customer directory answered with a different account")
    invoices = directory.recent_invoices(record.customer_id, RECENT_INVOICES)
    return record.model_copy(update={"invoices": list(invoices)[:RECENT_INVOICES]})


def caller_lookup(customer: CustomerRecord | None) -> CustomerLookup:
    """What the triage crew knows about the caller: the verified account's facts, or that the requester is unverified."""
    if customer is None:
        return CustomerLookup(found=False, matched_by="none", summary=UNVERIFIED_SUMMARY)
    return CustomerLookup(found=True, customer=customer, matched_by="id", summary=describe_customer(customer)[:400])

def duplicate_charges(invoices: Sequence[Invoice]) -> list[list[Invoice]]:
    """Groups of two or more paid invoices with the same amount in the same month (likely double charges).

    ``duplicate_charges(record.invoices)[0]`` lists the invoices of the first suspicious group.
    """
    groups: dict[tuple[str, int], list[Invoice]] = defaultdict(list)
    for invoice in invoices:
        if invoice.status == "paid" and invoice.amount_cents > 0:
            groups[(invoice.issued_on[:7], invoice.amount_cents)].append(invoice)
    return [sorted(g, key=lambda i: i.invoice_id) for g in groups.values() if len(g) > 1]


def _money(cents: int, currency: str = "USD") -> str:
    symbol = "$" if currency == "USD" else f"{currency} "
    return f"{symbol}{cents / 100:.2f}"


def describe_customer(record: CustomerRecord) -> str:
    """The facts about an account that support staff need, as short plain sentences (no braces).

    Used as the LLM's input for the summary slot and as the summary when no model writes one.
    """
    parts = [
        f"{record.name} ({record.customer_id}, {record.email}) is on the {record.plan} plan, "
        f"account {record.account_status.replace('_', ' ')}, customer since {record.signup_date}."
    ]
    if record.invoices:
        items = "; ".join(
            f"{i.invoice_id} {i.issued_on} {_money(i.amount_cents, i.currency)} {i.status}" for i in record.invoices
        )
        parts.append(f"Recent invoices: {items}.")
    else:
        parts.append("No invoices on file.")
    for group in duplicate_charges(record.invoices):
        ids = " and ".join(i.invoice_id for i in group)
        parts.append(
            f"Possible duplicate charge: {ids} both paid {_money(group[0].amount_cents, group[0].currency)} "
            f"in {group[0].issued_on[:7]}."
        )
    failed = [i for i in record.invoices if i.status == "failed"]
    if failed:
        parts.append(f"Failed payment: {', '.join(i.invoice_id for i in failed)}.")
    return " ".join(parts)


class _SQLiteBackend:
    """Runs the statements of :data:`_SQL` on one SQLite file (a new connection per operation)."""

    def __init__(self, path: Path | str, timeout_s: float = 10.0) -> None:
        self.path = path
        self._timeout_s = timeout_s

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = sqlite3.connect(self.path, timeout=self._timeout_s)
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open customer database {self.path}: {exc}") from exc
        try:
            conn.row_factory = sqlite3.Row
            yield conn
            conn.commit()
        finally:
            conn.close()

    def run_script(self, script: str) -> None:
        with self.connect() as conn:
            conn.executescript(script)

    def fetch_all(self, name: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        try:
            with self.connect() as conn:
                return [dict(row) for row in conn.execute(_SQL[name], tuple(params)).fetchall()]
        except sqlite3.Error as exc:
            raise SupportdeskError(f"customer database query {name!r} failed: {exc}") from exc


class _SeedInMemory(_SQLiteBackend):
    """The seed script in a private in-memory database: what lookups read before the file exists,
    so a lookup (say, of a caller who is not a customer) creates no file."""

    def __init__(self, script: str) -> None:
        super().__init__(":memory:")
        self._conn = sqlite3.connect(":memory:", check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._conn.executescript(script)
        self._lock = threading.Lock()

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._conn


class CustomerDB:
    """The demo :class:`CustomerDirectory`: customers and invoices in SQLite, seeded from ``config/customers.sql``.

    :param path: the SQLite file (its folder is created when the file is first seeded); ``":memory:"``
        is not supported because every operation opens its own connection.
    :param seed_sql: the schema+seed script; default: ``customers.sql`` from ``config_dir`` or the package.
    :param config_dir: a folder that overrides the packaged config files.

    Until the file exists, lookups read the seed from memory and create nothing; the file is seeded
    (idempotently: only missing rows are inserted) by :meth:`ensure_ready` or the first lookup after
    something else created it (the run journal shares the file by default).
    """

    def __init__(self, path: str | Path, *, seed_sql: Path | None = None, config_dir: Path | None = None) -> None:
        self.path = Path(path)
        self._seed_sql = seed_sql or config_path("customers.sql", config_dir)
        self._backend = _SQLiteBackend(self.path)
        self._memory: _SeedInMemory | None = None
        self._ready = False
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Any) -> CustomerDB:
        """The customer DB a run uses: SQLite at ``settings.resolved_database_url`` when that is SQLite,
        else (a PostgreSQL run journal) ``supportdesk.db`` under ``settings.home``."""
        url: str = settings.resolved_database_url
        if not url.startswith("sqlite:///"):
            url = f"sqlite:///{Path(settings.home) / 'supportdesk.db'}"
        return cls(Path(url.removeprefix("sqlite:///").split("?", 1)[0]), config_dir=settings.config_dir)

    def _script(self) -> str:
        try:
            return self._seed_sql.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read customer seed {self._seed_sql}: {exc.strerror or exc}") from exc

    def ensure_ready(self) -> None:
        """Create the file, the tables and the seed rows if missing (idempotent, once per instance)."""
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            script = self._script()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._backend.run_script(script)
            except sqlite3.Error as exc:
                raise ConfigError(f"customer seed {self._seed_sql} failed: {exc}") from exc
            self._ready = True
            self._memory = None
            logger.debug("customer database ready at %s", self.path)

    def _reader(self) -> _SQLiteBackend:
        """The file once it exists (seeded on first use), else the seed in memory (nothing created)."""
        if self._ready or self.path.exists():
            self.ensure_ready()
            return self._backend
        with self._lock:
            if self._memory is None:
                try:
                    self._memory = _SeedInMemory(self._script())
                except sqlite3.Error as exc:
                    raise ConfigError(f"customer seed {self._seed_sql} failed: {exc}") from exc
            return self._memory

    # ------------------------------------------------------------------ CustomerDirectory

    def get(self, customer_id: str) -> CustomerRecord | None:
        """The customer with this id (case-insensitive ``C-1234``), with recent invoices; None if absent."""
        rows = self._reader().fetch_all("customer_by_id", [customer_id.strip().upper()])
        return self._record(rows[0]) if rows else None

    def get_by_email(self, email: str) -> CustomerRecord | None:
        """The customer with this e-mail address (case-insensitive), with recent invoices; None if absent."""
        rows = self._reader().fetch_all("customer_by_email", [email.strip().lower()])
        return self._record(rows[0]) if rows else None

    def recent_invoices(self, customer_id: str, limit: int = RECENT_INVOICES) -> list[Invoice]:
        """The customer's latest invoices, newest first (empty for an unknown id)."""
        rows = self._reader().fetch_all("recent_invoices", [customer_id.strip().upper(), int(limit)])
        return [Invoice(**row) for row in rows]

    def count(self) -> int:
        """Number of customers in the database."""
        return int(next(iter(self._reader().fetch_all("count_customers", [])[0].values())))

    def _record(self, row: dict[str, Any]) -> CustomerRecord:
        return CustomerRecord(**row, invoices=self.recent_invoices(row["customer_id"]))


class CustomerLookupArgs(BaseModel):
    """Arguments of the lookup tool: none are needed. An id or e-mail, if given, must be the caller's own."""

    model_config = ConfigDict(extra="forbid")

    customer_id: str | None = Field(default=None, max_length=254, description="Optional: the caller's own customer id.")
    email: str | None = Field(default=None, max_length=254, description="Optional: the caller's own e-mail address.")


class CustomerLookupTool(AgentSafeTool):
    """CrewAI tool over one verified account: the run's caller (None: the requester is unverified).

    Built per run with :meth:`for_caller`; it holds the caller's record and no directory, so no
    argument can make it read another account. Code calls :meth:`lookup`; agents call ``run``::

        tool = CustomerLookupTool.for_caller(verify_customer(db, "C-1001"))
        tool.run()                            # CustomerLookup JSON of C-1001
        tool.run(email="someone@else.com")    # 'Error: customer_lookup reads only the verified caller ...'
    """

    name: str = "customer_lookup"
    description: str = (
        "The account and recent invoices of the customer this request comes from, as verified by the "
        "support system. Takes no arguments; it cannot read any other account."
    )
    args_schema: type[BaseModel] = CustomerLookupArgs
    customer: CustomerRecord | None = Field(default=None, exclude=True, description="The verified caller, or None.")

    @classmethod
    def for_caller(cls, customer: CustomerRecord | None) -> CustomerLookupTool:
        """The tool for one run, bound to its verified caller (or None)."""
        return cls(customer=customer)

    def lookup(self, *, customer_id: str | None = None, email: str | None = None) -> CustomerLookup:
        """The caller's account facts (or that the requester is unverified).

        :raises ValueError: an id or e-mail that is not the caller's (the other account is not read).
        :raises pydantic.ValidationError: arguments that do not validate.
        """
        args = CustomerLookupArgs(customer_id=customer_id, email=email)
        caller = self.customer
        asked = [(args.customer_id, caller.customer_id if caller else None), (args.email, caller.email if caller else None)]
        if any(given is not None and (own is None or given.strip().casefold() != own.casefold()) for given, own in asked):
            raise ValueError(
                f"{self.name} reads only the verified caller's account"
                + ("" if caller else "; this requester is unverified")
                + ": other accounts are not available"
            )
        return caller_lookup(caller)

    def _run(self, *args: Any, **kwargs: Any) -> str:
        if args:
            return f"Error: {self.name} takes no positional arguments"
        try:
            return self.lookup(**kwargs).model_dump_json()
        except ValidationError as exc:
            return self.invalid(exc)
        except (ValueError, TypeError) as exc:
            return f"Error: {one_line(exc)}"
        except SupportdeskError as exc:
            return f"Error: customer lookup failed: {exc}"
