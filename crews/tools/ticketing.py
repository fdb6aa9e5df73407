"""Ticket backends with exactly-once creation, and the CrewAI tool that files a ticket.

Every backend implements :class:`TicketBackend`: ``create`` is keyed by an idempotency key (the
flow uses its run id), so calling it again with the same key returns the existing ticket with
``created=False`` instead of filing a second one.

* :class:`LocalTicketStore`: SQLite, a ``UNIQUE`` idempotency-key column, ids ``LOCAL-1``, ``LOCAL-2`` ...
* :class:`JiraTicketBackend`: the ``jira`` client; the key travels as the label ``sd-<key>``, is
  searched before creating, and is searched again (with a bounded wait for search lag) when the
  create request fails in flight (timeout, dropped connection), so a ticket Jira did create is found
  instead of being filed twice.

Ticket text is untrusted (the customer's words, a model's draft): every backend cleans the title and
summary of control, zero-width and bidi characters first (:func:`clean_field`). Jira renders wiki
markup, so the summary goes into a ``{noformat}`` block that it cannot close and the trusted lines
under it are escaped (:func:`jira_noformat`, :func:`jira_escape`); the title is plain text. Anything
that renders tickets as HTML escapes them (:func:`html_field`, or Jinja autoescape as the console does).

::

    from supportdesk.crews.tools.ticketing import LocalTicketStore
    from supportdesk.models import TicketDraft

    store = LocalTicketStore("/tmp/tickets.db")
    draft = TicketDraft(title="Refund double charge", summary="Charged twice in November.")
    store.create(draft, idempotency_key="run-1", category="billing", priority="high", customer_id="C-1001")
    # TicketReceipt(ticket_id='LOCAL-1', backend='local', idempotency_key='run-1', created=True)
    store.create(draft, idempotency_key="run-1", category="billing", priority="high", customer_id=None).created
    # False
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from supportdesk._pii import clean_text
from supportdesk.crews.tools._agent_tool import AgentSafeTool
from supportdesk.durable.effects import TicketBackend as IdempotentTicketBackend
from supportdesk.errors import ConfigError, TicketingError
from supportdesk.models.responses import TicketDraft, TicketReceipt

__all__ = [
    "CreateTicketArgs",
    "CreateTicketTool",
    "JiraTicketBackend",
    "LocalTicketStore",
    "TicketBackend",
    "build_ticket_backend",
    "clean_field",
    "html_field",
    "jira_escape",
    "jira_noformat",
]

logger = logging.getLogger(__name__)

_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
_LABEL_RE = re.compile(r"[^A-Za-z0-9_.:-]+")

JIRA_PRIORITIES: Mapping[str, str] = {"high": "High", "medium": "Medium", "low": "Low"}


# Markup characters; a dash between letters or digits (C-1001, run-1) cannot start a strike-through.
_JIRA_SPECIAL_RE = re.compile(r"([\\{}\[\]*_?+^~|!#&<>]|(?<![A-Za-z0-9])-|-(?![A-Za-z0-9]))")
_NOFORMAT_RE = re.compile(r"\{(\s*)(noformat|code|quote|panel|html)", re.IGNORECASE)
JIRA_SUMMARY_MAX = 255


def clean_field(text: str, *, single_line: bool = False, max_chars: int | None = None) -> str:
    """``text`` without control, zero-width or bidi characters; ``single_line`` also folds line breaks
    and runs of spaces into one space. Longer than ``max_chars``: cut, with an ellipsis."""
    cleaned = clean_text(str(text), keep_newlines=not single_line)
    if single_line:
        cleaned = " ".join(cleaned.split())
    else:
        lines = [line.rstrip() for line in cleaned.split("\n")]
        cleaned = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    if max_chars is not None and len(cleaned) > max_chars:
        cleaned = cleaned[: max_chars - 1].rstrip() + "…"
    return cleaned


def jira_escape(text: str) -> str:
    """One line of text for Jira wiki markup: every markup character backslash-escaped (a dash inside
    an id such as ``C-1001`` stays as it is)."""
    return _JIRA_SPECIAL_RE.sub(r"\\\1", clean_field(text, single_line=True))


def jira_noformat(text: str) -> str:
    """Untrusted text as a Jira ``{noformat}`` block (shown as typed, no markup, no links), which the
    text cannot close or nest: a ``{noformat``/``{code``/``{html`` ... inside becomes ``(noformat`` ..."""
    body = _NOFORMAT_RE.sub(lambda m: "(" + m.group(1) + m.group(2), clean_field(text))
    return "{noformat}\n" + body + "\n{noformat}"


def html_field(text: str, *, single_line: bool = False) -> str:
    """Cleaned ``text`` escaped for HTML (``&``, ``<``, ``>``, quotes)."""
    import html

    return html.escape(clean_field(text, single_line=single_line), quote=True)


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
        raise TicketingError(
            f"idempotency key {key!r} is invalid: use 1-100 letters, digits, '_', '.', ':' or '-'"
        )
    return key


@runtime_checkable
class TicketBackend(IdempotentTicketBackend, Protocol):
    """Where tickets are filed: the exactly-once contract (``create`` idempotent per key, ``find_by_key``)
    plus a name and a listing for operators."""

    name: str

    def list_tickets(self) -> list[dict[str, Any]]:
        """Tickets this backend filed, newest first, as plain dicts (``ticket_id``, ``title`` ...)."""
        ...


# ---------------------------------------------------------------------------------------- local

_TICKET_SQL: dict[str, str] = {
    "schema": """
        CREATE TABLE IF NOT EXISTS tickets (
            seq             INTEGER PRIMARY KEY,
            idempotency_key TEXT NOT NULL UNIQUE,
            title           TEXT NOT NULL,
            summary         TEXT NOT NULL,
            category        TEXT NOT NULL,
            priority        TEXT NOT NULL,
            customer_id     TEXT,
            created_at      TEXT NOT NULL
        )
    """,
    "insert": (
        "INSERT INTO tickets (idempotency_key, title, summary, category, priority, customer_id, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING"
    ),
    "by_key": "SELECT seq, idempotency_key FROM tickets WHERE idempotency_key = ?",
    "list": (
        "SELECT seq, idempotency_key, title, summary, category, priority, customer_id, created_at "
        "FROM tickets ORDER BY seq DESC"
    ),
}


class LocalTicketStore:
    """Tickets in a SQLite file; the ``UNIQUE`` key column makes creation exactly-once, across processes too.

    :param path: the SQLite file (its folder is created on first use).
    """

    name = "local"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._ready = False
        self._lock = threading.Lock()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if not self._ready:
            with self._lock:
                if not self._ready:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    with self._open() as conn:
                        conn.execute(_TICKET_SQL["schema"])
                    self._ready = True
        with self._open() as conn:
            yield conn

    @contextmanager
    def _open(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = sqlite3.connect(self.path, timeout=10.0)
        except sqlite3.Error as exc:
            raise TicketingError(f"cannot open local ticket store {self.path}: {exc}") from exc
        try:
            yield conn
            conn.commit()
        except sqlite3.Error as exc:
            raise TicketingError(f"local ticket store {self.path} failed: {exc}") from exc
        finally:
            conn.close()

    def _receipt(self, seq: int, key: str, created: bool) -> TicketReceipt:
        return TicketReceipt(ticket_id=f"LOCAL-{seq}", url=None, backend="local", idempotency_key=key, created=created)

    def create(
        self,
        draft: TicketDraft,
        *,
        idempotency_key: str,
        category: str,
        priority: str,
        customer_id: str | None,
    ) -> TicketReceipt:
        """Insert the ticket unless one with this key exists (then return it with ``created=False``)."""
        key = _check_key(idempotency_key)
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        draft = TicketDraft(title=clean_field(draft.title, single_line=True, max_chars=120),
                            summary=clean_field(draft.summary, max_chars=1000))
        with self._connect() as conn:
            row = conn.execute(_TICKET_SQL["by_key"], (key,)).fetchone()
            created = False
            if row is None:  # the UNIQUE column still settles a race between two writers
                cursor = conn.execute(
                    _TICKET_SQL["insert"], (key, draft.title, draft.summary, category, priority, customer_id, now)
                )
                created = cursor.rowcount == 1
                row = conn.execute(_TICKET_SQL["by_key"], (key,)).fetchone()
            seq = row[0]
        receipt = self._receipt(seq, key, created)
        logger.info("local ticket %s %s for key %s", receipt.ticket_id, "created" if created else "exists", key)
        return receipt

    def find_by_key(self, key: str) -> TicketReceipt | None:
        """The ticket filed under ``key``, or None."""
        with self._connect() as conn:
            row = conn.execute(_TICKET_SQL["by_key"], (_check_key(key),)).fetchone()
        return self._receipt(row[0], row[1], created=False) if row else None

    def list_tickets(self) -> list[dict[str, Any]]:
        """All tickets, newest first."""
        with self._connect() as conn:
            conn.row_factory = sqlite3.Row
            rows = conn.execute(_TICKET_SQL["list"]).fetchall()
        return [{"ticket_id": f"LOCAL-{row['seq']}", **{k: row[k] for k in row.keys() if k != "seq"}} for row in rows]


# ---------------------------------------------------------------------------------------- jira


def _jira_error_line(exc: BaseException) -> str:
    """One line for any error the jira client or requests raises."""
    status = getattr(exc, "status_code", None)
    text = getattr(exc, "text", None) or str(exc)
    line = " ".join(str(text).split())[:300]
    return f"HTTP {status}: {line}" if status else f"{type(exc).__name__}: {line}"


class JiraTicketBackend:
    """Tickets as Jira issues, found again by the label ``sd-<idempotency key>``.

    :param server: Jira base URL (``https://yourco.atlassian.net``).
    :param user: account e-mail (Cloud) or user name; ``api_token`` its API token or password.
    :param project: project key the issues go to.
    :param timeout_s: connect/read timeout of every request; no automatic retries (``max_retries=0``).
    :param reconcile_attempts: after a create request failed in flight, how many searches look for
        the issue before giving up (search can lag behind creation).
    :param reconcile_delay_s: pause between those searches.
    :param set_priority: send the ``priority`` field (turn off for projects whose create screen lacks it).
    :param client_factory: builds the ``jira.JIRA`` client (tests and custom auth); default: basic auth.

    ::

        backend = JiraTicketBackend("https://yourco.atlassian.net", "me@yourco.com", token, project="SUP")
        backend.create(draft, idempotency_key=run_id, category="billing", priority="high", customer_id="C-1001")
    """

    name = "jira"

    def __init__(
        self,
        server: str,
        user: str,
        api_token: str,
        *,
        project: str = "SUP",
        issue_type: str = "Task",
        timeout_s: float = 15.0,
        reconcile_attempts: int = 5,
        reconcile_delay_s: float = 1.0,
        set_priority: bool = True,
        priorities: Mapping[str, str] = JIRA_PRIORITIES,
        client_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        self.project = project
        self.issue_type = issue_type
        self.timeout_s = timeout_s
        self.reconcile_attempts = max(1, reconcile_attempts)
        self.reconcile_delay_s = max(0.0, reconcile_delay_s)
        self.set_priority = set_priority
        self.priorities = dict(priorities)
        self._user = user
        self._token = api_token
        self._factory = client_factory
        self._client: Any = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ client

    def _jira(self) -> Any:
        with self._lock:
            if self._client is None:
                try:
                    self._client = self._factory() if self._factory else self._default_client()
                except Exception as exc:  # the jira client raises JIRAError, requests errors, KeyError ...
                    raise TicketingError(f"cannot connect to Jira at {self.server}: {_jira_error_line(exc)}") from exc
            return self._client

    def _default_client(self) -> Any:
        from jira import JIRA

        return JIRA(
            server=self.server,
            basic_auth=(self._user, self._token),
            timeout=self.timeout_s,
            max_retries=0,
            get_server_info=True,
        )

    # ------------------------------------------------------------------ TicketBackend

    @staticmethod
    def label_for(key: str) -> str:
        """The Jira label carrying an idempotency key."""
        return f"sd-{_check_key(key)}"

    def _url(self, issue_key: str) -> str:
        return f"{self.server}/browse/{issue_key}"

    def _search(self, jql: str, max_results: int) -> list[Any]:
        try:
            return list(self._jira().search_issues(jql, maxResults=max_results, fields="summary,labels,created"))
        except TicketingError:
            raise
        except Exception as exc:
            raise TicketingError(f"Jira search failed: {_jira_error_line(exc)}") from exc

    def find_by_key(self, key: str) -> TicketReceipt | None:
        """Search ``labels = "sd-<key>"`` in the project; the oldest match wins if there are several."""
        label = self.label_for(key)
        issues = self._search(f'project = "{self.project}" AND labels = "{label}" ORDER BY created ASC', 5)
        if not issues:
            return None
        if len(issues) > 1:
            logger.warning("%d Jira issues carry label %s: %s", len(issues), label, ", ".join(i.key for i in issues))
        issue = sorted(issues, key=lambda i: int(getattr(i, "id", 0) or 0))[0]
        return TicketReceipt(ticket_id=issue.key, url=self._url(issue.key), backend="jira", idempotency_key=key, created=False)

    def create(
        self,
        draft: TicketDraft,
        *,
        idempotency_key: str,
        category: str,
        priority: str,
        customer_id: str | None,
    ) -> TicketReceipt:
        """Search the key first; create the issue only if absent; after an in-flight failure, search again."""
        key = _check_key(idempotency_key)
        existing = self.find_by_key(key)
        if existing is not None:
            logger.info("Jira issue %s already filed for key %s", existing.ticket_id, key)
            return existing
        fields = self._fields(draft, key, category, priority, customer_id)
        try:
            issue = self._jira().create_issue(fields=fields, prefetch=False)
        except TicketingError:
            raise
        except Exception as exc:
            if not _maybe_created(exc):
                raise TicketingError(f"Jira rejected the ticket: {_jira_error_line(exc)}") from exc
            logger.warning("Jira create for key %s failed in flight (%s); reconciling by search", key, _jira_error_line(exc))
            found = self._reconcile(key)
            if found is None:
                raise TicketingError(
                    f"Jira create failed in flight ({_jira_error_line(exc)}) and no issue labelled "
                    f"{self.label_for(key)} appeared after {self.reconcile_attempts} searches; retry with the same key"
                ) from exc
            return found.model_copy(update={"created": True})
        logger.info("Jira issue %s created for key %s", issue.key, key)
        return TicketReceipt(ticket_id=issue.key, url=self._url(issue.key), backend="jira", idempotency_key=key, created=True)

    def list_tickets(self) -> list[dict[str, Any]]:
        """Issues supportdesk filed in the project (label ``supportdesk``), newest first, up to 100."""
        issues = self._search(f'project = "{self.project}" AND labels = "supportdesk" ORDER BY created DESC', 100)
        rows = []
        for issue in issues:
            fields = getattr(issue, "raw", {}).get("fields", {}) if hasattr(issue, "raw") else {}
            rows.append(
                {
                    "ticket_id": issue.key,
                    "title": fields.get("summary"),
                    "labels": fields.get("labels", []),
                    "url": self._url(issue.key),
                }
            )
        return rows

    # ------------------------------------------------------------------ internals

    def _fields(
        self, draft: TicketDraft, key: str, category: str, priority: str, customer_id: str | None
    ) -> dict[str, Any]:
        description = "\n".join(
            [
                jira_noformat(draft.summary),
                "",
                f"Customer: {jira_escape(customer_id or 'unknown')}",
                f"Category: {jira_escape(category)}",
                f"Priority: {jira_escape(priority)}",
                f"Filed by supportdesk, run {jira_escape(key)}.",
            ]
        )
        labels = ["supportdesk", self.label_for(key), _LABEL_RE.sub("-", category) or "unknown"]
        fields: dict[str, Any] = {
            "project": {"key": self.project},
            "issuetype": {"name": self.issue_type},
            "summary": clean_field(draft.title, single_line=True, max_chars=JIRA_SUMMARY_MAX) or "Support request",
            "description": description,
            "labels": labels,
        }
        if self.set_priority and priority in self.priorities:
            fields["priority"] = {"name": self.priorities[priority]}
        return fields

    def _reconcile(self, key: str) -> TicketReceipt | None:
        for attempt in range(self.reconcile_attempts):
            if attempt:
                time.sleep(self.reconcile_delay_s)
            try:
                found = self.find_by_key(key)
            except TicketingError as exc:
                logger.warning("reconcile search %d for key %s failed: %s", attempt + 1, key, exc)
                continue
            if found is not None:
                logger.info("reconciled key %s to existing Jira issue %s", key, found.ticket_id)
                return found
        return None


def _maybe_created(exc: BaseException) -> bool:
    """True when a failed create request may still have created the issue (no answer, or a 5xx)."""
    import requests

    if isinstance(exc, (requests.Timeout, requests.ConnectionError)):
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and status >= 500


# ---------------------------------------------------------------------------------------- factory


def build_ticket_backend(settings: Any) -> TicketBackend:
    """Jira when ``JIRA_URL``, ``JIRA_USER`` and ``JIRA_API_TOKEN`` are set, else a local store under ``settings.home``.

    :raises ConfigError: ``JIRA_URL`` is set but the credentials are incomplete.
    """
    if settings.jira_url:
        token = settings.jira_api_token.get_secret_value() if settings.jira_api_token else ""
        if not settings.jira_user or not token:
            raise ConfigError("JIRA_URL is set but JIRA_USER or JIRA_API_TOKEN is missing")
        logger.info("tickets go to Jira %s project %s", settings.jira_url, settings.jira_project)
        return JiraTicketBackend(
            settings.jira_url,
            settings.jira_user,
            token,
            project=settings.jira_project,
            timeout_s=settings.jira_timeout_s,
        )
    if getattr(settings, "ticket_store", "local") == "database":  # shared by workers on several machines
        from supportdesk.crews.tools.db_tickets import DatabaseTicketStore

        logger.info("tickets go to the journal's database")
        return DatabaseTicketStore(settings.resolved_database_url)
    path = Path(settings.home) / "tickets.db"
    logger.info("tickets go to the local store %s", path)
    return LocalTicketStore(path)


# ---------------------------------------------------------------------------------------- tool


class CreateTicketArgs(BaseModel):
    """Arguments of the create-ticket tool: the draft the agent wrote."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=3, max_length=120, description="A short ticket title, at most ten words.")
    summary: str = Field(min_length=10, max_length=1000, description="Two or three sentences for the support engineer.")


class CreateTicketTool(AgentSafeTool):
    """CrewAI tool that files one ticket, bound to a backend and a run's idempotency key.

    Calling it twice files one ticket (the second call reports the existing one). Errors come back to
    the agent as ``Error: ...`` strings::

        tool = CreateTicketTool(backend=store, idempotency_key=run_id, category="billing", priority="high")
        tool.run(title="Refund double charge", summary="Charged twice for November; refund one payment.")
    """

    name: str = "create_ticket"
    description: str = "File the support ticket for this request. Give a short title and a two or three sentence summary."
    args_schema: type[BaseModel] = CreateTicketArgs
    backend: Any = Field(exclude=True, description="The TicketBackend to file into.")
    idempotency_key: str
    category: str = "unknown"
    priority: str = "medium"
    customer_id: str | None = None

    def file(self, draft: TicketDraft) -> TicketReceipt:
        """File ``draft`` under this tool's key (raises :class:`TicketingError`)."""
        return self.backend.create(
            draft,
            idempotency_key=self.idempotency_key,
            category=self.category,
            priority=self.priority,
            customer_id=self.customer_id,
        )

    def _run(self, title: str, summary: str, **_: Any) -> str:
        try:
            return self.file(TicketDraft(title=title, summary=summary)).model_dump_json()
        except ValidationError as exc:
            return self.invalid(exc)
        except TicketingError as exc:
            return f"Error: ticket not filed: {exc}"
