"""The customer database: customers and their recent invoices, plus the CrewAI tool that reads it.

:class:`CustomerDB` runs on a real SQLite file, created and seeded from ``config/customers.sql`` on
first use (idempotent: the seed only inserts missing rows). Every SQL statement lives in
:data:`_SQL`, and all access goes through :class:`_SQLiteBackend`, so a PostgreSQL backend can be
added behind the same class later (the seed file is portable SQL)::

    from supportdesk.crews.tools.customer_db import CustomerDB, extract_identifiers

    db = CustomerDB("/tmp/customers.db")
    db.get("C-1001").name                                    # 'Maria Gonzalez'
    db.get_by_email("MARIA.GONZALEZ@example.com").customer_id  # 'C-1001'
    extract_identifiers("I'm C-1001, mail me at a@b.co")     # (['a@b.co'], ['C-1001'])
    db.resolve("Hi, Maria Gonzalez here. I was charged twice.").matched_by   # 'name'

:class:`CustomerLookupTool` exposes the same lookups to an agent; an invalid call comes back as an
error message string instead of an exception.
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
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from supportdesk._config import config_path
from supportdesk.crews.tools._agent_tool import AgentSafeTool, one_line
from supportdesk.errors import ConfigError, CustomerNotFoundError, SupportdeskError
from supportdesk.models.responses import CustomerLookup, CustomerRecord, Invoice

__all__ = [
    "CustomerDB",
    "CustomerLookupArgs",
    "CustomerLookupTool",
    "describe_customer",
    "duplicate_charges",
    "extract_identifiers",
]

logger = logging.getLogger(__name__)

EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
CUSTOMER_ID_RE = re.compile(r"\bC-\d{4,8}\b", re.IGNORECASE)
_WORD_RE = re.compile(r"[A-Za-zÀ-ÖØ-öø-ÿ'’-]+")
_MAX_NAME_WORDS = 4
_RECENT_INVOICES = 6

# Every statement the class runs; ``?`` placeholders (a PostgreSQL backend maps them to ``%s``).
_SQL: dict[str, str] = {
    "customer_by_id": (
        "SELECT customer_id, name, email, plan, account_status, signup_date FROM customers WHERE customer_id = ?"
    ),
    "customer_by_email": (
        "SELECT customer_id, name, email, plan, account_status, signup_date FROM customers WHERE lower(email) = ?"
    ),
    "customers_by_names": (
        "SELECT customer_id, name, email, plan, account_status, signup_date FROM customers "
        "WHERE lower(name) IN ({placeholders}) ORDER BY customer_id"
    ),
    "recent_invoices": (
        "SELECT invoice_id, amount_cents, currency, status, issued_on, description FROM invoices "
        "WHERE customer_id = ? ORDER BY issued_on DESC, invoice_id DESC LIMIT ?"
    ),
    "count_customers": "SELECT count(*) FROM customers",
}


def extract_identifiers(query: str) -> tuple[list[str], list[str]]:
    """E-mail addresses and customer ids (``C-1234``) found in ``query``, in order, without duplicates.

    Ids are upper-cased, e-mails lower-cased::

        extract_identifiers("c-1001 / Maria.G@Example.com")   # (['maria.g@example.com'], ['C-1001'])
    """
    emails = list(dict.fromkeys(m.group(0).rstrip(".").lower() for m in EMAIL_RE.finditer(query)))
    masked = EMAIL_RE.sub(" ", query)
    ids = list(dict.fromkeys(m.group(0).upper() for m in CUSTOMER_ID_RE.finditer(masked)))
    return emails, ids


def _name_candidates(text: str) -> list[str]:
    """Every run of 2 to 4 consecutive words of ``text``, lower-cased (possible full names)."""
    words = [w.strip("'’-").lower() for w in _WORD_RE.findall(text)]
    words = [w for w in words if w]
    found: dict[str, None] = {}
    for size in range(2, _MAX_NAME_WORDS + 1):
        for start in range(len(words) - size + 1):
            found[" ".join(words[start : start + size])] = None
    return list(found)


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

    def __init__(self, path: Path, timeout_s: float = 10.0) -> None:
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

    def fetch_all(self, name: str, params: Sequence[Any], **fmt: str) -> list[dict[str, Any]]:
        sql = _SQL[name].format(**fmt) if fmt else _SQL[name]
        try:
            with self.connect() as conn:
                return [dict(row) for row in conn.execute(sql, tuple(params)).fetchall()]
        except sqlite3.Error as exc:
            raise SupportdeskError(f"customer database query {name!r} failed: {exc}") from exc


class CustomerDB:
    """Customers and recent invoices in a SQLite database, seeded from ``config/customers.sql``.

    :param path: the SQLite file (its folder is created); ``":memory:"`` is not supported because
        every operation opens its own connection.
    :param seed_sql: the schema+seed script; default: ``customers.sql`` from ``config_dir`` or the package.
    :param config_dir: a folder that overrides the packaged config files.
    """

    def __init__(self, path: str | Path, *, seed_sql: Path | None = None, config_dir: Path | None = None) -> None:
        self.path = Path(path)
        self._seed_sql = seed_sql or config_path("customers.sql", config_dir)
        self._backend = _SQLiteBackend(self.path)
        self._ready = False
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Any) -> CustomerDB:
        """The customer DB a run uses: SQLite at ``settings.resolved_database_url`` when that is SQLite,
        else (a PostgreSQL run journal) ``supportdesk.db`` under ``settings.home``."""
        url: str = settings.resolved_database_url
        if not url.startswith("sqlite:///"):
            url = f"sqlite:///{Path(settings.home) / 'supportdesk.db'}"
        return cls(Path(url.removeprefix("sqlite:///")), config_dir=settings.config_dir)

    def ensure_ready(self) -> None:
        """Create the tables and insert the seed rows if missing (idempotent, once per instance)."""
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            try:
                script = self._seed_sql.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot read customer seed {self._seed_sql}: {exc.strerror or exc}") from exc
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._backend.run_script(script)
            except sqlite3.Error as exc:
                raise ConfigError(f"customer seed {self._seed_sql} failed: {exc}") from exc
            self._ready = True
            logger.debug("customer database ready at %s", self.path)

    # ------------------------------------------------------------------ lookups

    def get(self, customer_id: str) -> CustomerRecord | None:
        """The customer with this id (case-insensitive ``C-1234``), with recent invoices; None if absent."""
        self.ensure_ready()
        rows = self._backend.fetch_all("customer_by_id", [customer_id.strip().upper()])
        return self._record(rows[0]) if rows else None

    def get_by_email(self, email: str) -> CustomerRecord | None:
        """The customer with this e-mail address (case-insensitive); None if absent."""
        self.ensure_ready()
        rows = self._backend.fetch_all("customer_by_email", [email.strip().lower()])
        return self._record(rows[0]) if rows else None

    def find_by_name(self, text: str) -> list[CustomerRecord]:
        """Customers whose full name occurs in ``text`` (case-insensitive, whole words)."""
        self.ensure_ready()
        candidates = _name_candidates(text)
        matches: dict[str, CustomerRecord] = {}
        for start in range(0, len(candidates), 400):
            chunk = candidates[start : start + 400]
            rows = self._backend.fetch_all(
                "customers_by_names", chunk, placeholders=", ".join("?" for _ in chunk)
            )
            for row in rows:
                matches.setdefault(row["customer_id"], self._record(row))
        return list(matches.values())

    def count(self) -> int:
        """Number of customers in the database."""
        self.ensure_ready()
        return int(next(iter(self._backend.fetch_all("count_customers", [])[0].values())))

    def lookup(
        self, *, customer_id: str | None = None, email: str | None = None, name: str | None = None
    ) -> CustomerLookup:
        """Look one customer up by exactly the key given (id, then e-mail, then name in free text).

        ``summary`` holds the account facts (:func:`describe_customer`); a miss gives ``found=False``.
        """
        if customer_id:
            return _lookup_result(self.get(customer_id), "id", f"No customer with id {customer_id.strip().upper()}.")
        if email:
            return _lookup_result(self.get_by_email(email), "email", f"No customer with e-mail {email.strip()}.")
        if name:
            found = self.find_by_name(name)
            if len(found) > 1:
                names = ", ".join(f"{r.name} ({r.customer_id})" for r in found)
                return CustomerLookup(found=False, matched_by="none", summary=f"Ambiguous name: {names}."[:400])
            return _lookup_result(found[0] if found else None, "name", "No customer with that name.")
        return CustomerLookup(found=False, matched_by="none", summary="No customer id, e-mail or name given.")

    def resolve(self, query: str, hint: str | None = None, *, strict: bool = False) -> CustomerLookup:
        """Find the customer a support query is about: the hint (id or e-mail) first, then ids and
        e-mails in the query, then a customer's full name in the query.

        :param strict: raise :class:`CustomerNotFoundError` when the hint names no customer
            (otherwise the query text is tried next).
        """
        if hint and hint.strip():
            hint_emails, hint_ids = extract_identifiers(hint)
            result = self.lookup(customer_id=hint_ids[0]) if hint_ids else None
            if result is None and hint_emails:
                result = self.lookup(email=hint_emails[0])
            if result is not None and result.found:
                return result
            if strict:
                raise CustomerNotFoundError(f"customer {hint.strip()!r} given with the query is not in the customer database")
            logger.info("customer hint %r matched no customer; trying the query text", hint)
        emails, ids = extract_identifiers(query)
        for customer_id in ids:
            result = self.lookup(customer_id=customer_id)
            if result.found:
                return result
        for email in emails:
            result = self.lookup(email=email)
            if result.found:
                return result
        result = self.lookup(name=query)
        if result.found or result.summary.startswith("Ambiguous"):
            return result
        return CustomerLookup(found=False, matched_by="none", summary="No customer record matched this request.")

    # ------------------------------------------------------------------ internals

    def _record(self, row: dict[str, Any]) -> CustomerRecord:
        invoices = [
            Invoice(**inv) for inv in self._backend.fetch_all("recent_invoices", [row["customer_id"], _RECENT_INVOICES])
        ]
        return CustomerRecord(**row, invoices=invoices)


def _lookup_result(
    record: CustomerRecord | None, matched_by: str, missing: str
) -> CustomerLookup:
    if record is None:
        return CustomerLookup(found=False, matched_by="none", summary=missing[:400])
    return CustomerLookup(
        found=True,
        customer=record,
        matched_by=matched_by,  # type: ignore[arg-type]
        summary=describe_customer(record)[:400],
    )


class CustomerLookupArgs(BaseModel):
    """Arguments of the customer lookup tool: exactly one of id, e-mail or name."""

    model_config = ConfigDict(extra="forbid")

    customer_id: str | None = Field(default=None, description="Customer id such as C-1001.")
    email: str | None = Field(default=None, description="The customer's e-mail address.")
    name: str | None = Field(default=None, max_length=200, description="The customer's full name.")

    @field_validator("customer_id")
    @classmethod
    def _id_shape(cls, value: str | None) -> str | None:
        if value is not None and not CUSTOMER_ID_RE.fullmatch(value.strip()):
            raise ValueError("customer_id must look like C-1001")
        return value.strip().upper() if value else value

    @field_validator("email")
    @classmethod
    def _email_shape(cls, value: str | None) -> str | None:
        if value is not None and not EMAIL_RE.fullmatch(value.strip()):
            raise ValueError("email must be an e-mail address")
        return value.strip() if value else value

    @model_validator(mode="after")
    def _exactly_one(self) -> CustomerLookupArgs:
        given = [k for k in ("customer_id", "email", "name") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of customer_id, email or name")
        return self


class CustomerLookupTool(AgentSafeTool):
    """CrewAI tool over :class:`CustomerDB`. Code calls :meth:`lookup` directly; agents call ``run``.

    ::

        tool = CustomerLookupTool(db=CustomerDB(path))
        tool.run(customer_id="C-1001")      # CustomerLookup JSON
        tool.run(customer_id="42")          # 'Error: ... customer_id must look like C-1001 ...'
    """

    name: str = "customer_lookup"
    description: str = (
        "Look up one customer and their recent invoices by customer_id (like C-1001), email, or full name. "
        "Give exactly one of them."
    )
    args_schema: type[BaseModel] = CustomerLookupArgs
    db: Any = Field(exclude=True, description="The CustomerDB to read.")

    _last: CustomerLookup | None = PrivateAttr(default=None)

    def lookup(self, *, customer_id: str | None = None, email: str | None = None, name: str | None = None) -> CustomerLookup:
        """Validate the arguments and look the customer up; raises ``pydantic.ValidationError`` on bad arguments."""
        args = CustomerLookupArgs(customer_id=customer_id, email=email, name=name)
        result: CustomerLookup = self.db.lookup(customer_id=args.customer_id, email=args.email, name=args.name)
        self._last = result
        return result

    def _run(self, customer_id: str | None = None, email: str | None = None, name: str | None = None, **_: Any) -> str:
        try:
            return self.lookup(customer_id=customer_id, email=email, name=name).model_dump_json()
        except ValidationError as exc:
            return self.invalid(exc)
        except ValueError as exc:
            return f"Error: {one_line(exc)}"
        except SupportdeskError as exc:
            return f"Error: customer lookup failed: {exc}"


