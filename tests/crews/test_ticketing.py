"""Ticket backends: local store idempotency, Jira against a fake server, the create-ticket tool."""

from __future__ import annotations

import json
import threading

import pytest
from support.fake_jira import FakeJira

from supportdesk.crews.tools.ticketing import (
    CreateTicketTool,
    JiraTicketBackend,
    LocalTicketStore,
    TicketBackend,
    build_ticket_backend,
)
from supportdesk.errors import ConfigError, TicketingError
from supportdesk.models import TicketDraft
from supportdesk.settings import Settings

DRAFT = TicketDraft(title="Refund duplicate November charge", summary="Customer was charged twice; refund one payment.")
TICKET = {"category": "billing", "priority": "high", "customer_id": "C-1001"}


def _jira(server: FakeJira, **kwargs) -> JiraTicketBackend:
    user, token = server.credentials
    options = {"timeout_s": 2.0, "reconcile_delay_s": 0.01, **kwargs}
    return JiraTicketBackend(server.url, user, token, project=server.project, **options)


# ------------------------------------------------------------------------------------------ local


def test_local_store_creates_once_per_key(ticket_store):
    """Creating twice with the same key returns the first ticket with created=False."""
    first = ticket_store.create(DRAFT, idempotency_key="run-1", **TICKET)
    second = ticket_store.create(DRAFT, idempotency_key="run-1", **TICKET)
    assert (first.ticket_id, first.created) == ("LOCAL-1", True)
    assert (second.ticket_id, second.created) == ("LOCAL-1", False)
    assert len(ticket_store.list_tickets()) == 1


def test_local_store_ids_increase_without_gaps(ticket_store):
    """Distinct keys get LOCAL-1, LOCAL-2 ... even after a repeated key."""
    ids = [ticket_store.create(DRAFT, idempotency_key=k, **TICKET).ticket_id for k in ("a", "a", "b")]
    assert ids == ["LOCAL-1", "LOCAL-1", "LOCAL-2"]


def test_local_store_concurrent_creates_file_one_ticket(ticket_store):
    """Eight threads creating with one key file exactly one ticket."""
    receipts = []
    threads = [
        threading.Thread(target=lambda: receipts.append(ticket_store.create(DRAFT, idempotency_key="same", **TICKET)))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {r.ticket_id for r in receipts} == {"LOCAL-1"}
    assert sum(r.created for r in receipts) == 1


def test_local_store_find_by_key(ticket_store):
    """find_by_key returns the ticket filed under the key, or None."""
    ticket_store.create(DRAFT, idempotency_key="k1", **TICKET)
    assert ticket_store.find_by_key("k1").ticket_id == "LOCAL-1"
    assert ticket_store.find_by_key("k2") is None


def test_invalid_idempotency_key_is_rejected(ticket_store):
    """A key with spaces or quotes raises TicketingError (it must be safe in labels and JQL)."""
    with pytest.raises(TicketingError):
        ticket_store.create(DRAFT, idempotency_key='bad "key"', **TICKET)


def test_backends_satisfy_protocol(ticket_store, fake_jira):
    """Both backends implement the TicketBackend protocol."""
    assert isinstance(ticket_store, TicketBackend)
    assert isinstance(_jira(fake_jira), TicketBackend)


# ------------------------------------------------------------------------------------------ jira


@pytest.mark.parametrize("deployment", ["Cloud", "Server"])
def test_jira_create_then_same_key_returns_existing(deployment):
    """Jira: the first create files an issue with the key label; the second finds it (both search APIs)."""
    with FakeJira(deployment=deployment) as server:
        backend = _jira(server)
        first = backend.create(DRAFT, idempotency_key="run-1", **TICKET)
        second = backend.create(DRAFT, idempotency_key="run-1", **TICKET)
        assert (first.ticket_id, first.created, first.backend) == ("SUP-1", True, "jira")
        assert (second.ticket_id, second.created) == ("SUP-1", False)
        assert first.url == f"{server.url}/browse/SUP-1"
        assert len(server.issues) == 1
        fields = server.issues[0]["fields"]
        assert {"sd-run-1", "billing", "supportdesk"} <= set(fields["labels"])
        assert fields["priority"] == {"name": "High"} and "C-1001" in fields["description"]
        search_path = "/rest/api/2/search/jql" if deployment == "Cloud" else "/rest/api/2/search"
        assert server.requests_to("GET", search_path) >= 2


def test_jira_find_by_key(fake_jira):
    """find_by_key searches the sd-<key> label and returns None for an unknown key."""
    backend = _jira(fake_jira)
    backend.create(DRAFT, idempotency_key="run-7", **TICKET)
    assert backend.find_by_key("run-7").ticket_id == "SUP-1"
    assert backend.find_by_key("run-8") is None


def test_jira_search_lag_hides_new_issue():
    """With search lag, a just-created issue is invisible to the next searches, then appears."""
    with FakeJira(search_lag=2) as server:
        backend = _jira(server)
        backend.create(DRAFT, idempotency_key="lag", **TICKET)
        assert backend.find_by_key("lag") is None
        assert backend.find_by_key("lag") is None
        assert backend.find_by_key("lag").ticket_id == "SUP-1"


def test_jira_timeout_after_create_reconciles_without_duplicate():
    """A create that times out after Jira stored the issue is found by search (despite lag); no duplicate."""
    with FakeJira(hold_create=True, search_lag=2) as server:
        backend = _jira(server, timeout_s=2.0, reconcile_attempts=5)
        receipt = backend.create(DRAFT, idempotency_key="slow", **TICKET)
        assert (receipt.ticket_id, receipt.created) == ("SUP-1", True)
        again = backend.create(DRAFT, idempotency_key="slow", **TICKET)
        assert (again.ticket_id, again.created) == ("SUP-1", False)
        assert len(server.issues) == 1
        assert server.requests_to("POST", "/rest/api/2/issue") == 1


def test_jira_timeout_unreconciled_raises_one_line_error():
    """If the issue never shows up in search after a timeout, TicketingError says to retry with the same key."""
    with FakeJira(hold_create=True, search_lag=50) as server:
        backend = _jira(server, timeout_s=2.0, reconcile_attempts=2)
        with pytest.raises(TicketingError) as info:
            backend.create(DRAFT, idempotency_key="lost", **TICKET)
        assert "retry with the same key" in str(info.value) and "\n" not in str(info.value)


def test_jira_rejection_is_ticketing_error():
    """A 4xx answer to create becomes a one-line TicketingError and is not retried."""
    with FakeJira(fail_create_status=400) as server:
        with pytest.raises(TicketingError, match="HTTP 400"):
            _jira(server).create(DRAFT, idempotency_key="bad", **TICKET)
        assert server.requests_to("POST", "/rest/api/2/issue") == 1


def test_jira_wrong_credentials_is_ticketing_error(fake_jira):
    """Bad credentials fail with a TicketingError naming the server."""
    backend = JiraTicketBackend(fake_jira.url, "bot@example.com", "wrong", project="SUP", timeout_s=2.0)
    with pytest.raises(TicketingError, match="cannot connect to Jira"):
        backend.find_by_key("x")


def test_jira_unreachable_is_ticketing_error():
    """A Jira URL nobody listens on fails with a TicketingError, not a requests exception."""
    with FakeJira() as server:
        url = server.url
    backend = JiraTicketBackend(url, "u", "t", timeout_s=0.5)
    with pytest.raises(TicketingError):
        backend.create(DRAFT, idempotency_key="k", **TICKET)


# ------------------------------------------------------------------------------------------ factory + tool


def test_build_backend_local_by_default(tmp_path):
    """Without Jira settings the backend is the local store under settings.home."""
    backend = build_ticket_backend(Settings(home=tmp_path))
    assert isinstance(backend, LocalTicketStore) and backend.path == tmp_path / "tickets.db"


def test_build_backend_jira_when_configured(tmp_path, fake_jira):
    """JIRA_URL plus credentials select the Jira backend."""
    user, token = fake_jira.credentials
    settings = Settings(home=tmp_path, JIRA_URL=fake_jira.url, JIRA_USER=user, JIRA_API_TOKEN=token)
    backend = build_ticket_backend(settings)
    assert isinstance(backend, JiraTicketBackend)
    assert backend.create(DRAFT, idempotency_key="f", **TICKET).ticket_id == "SUP-1"


def test_build_backend_jira_without_token_is_config_error(tmp_path):
    """JIRA_URL without credentials is a ConfigError rather than a silent local fallback."""
    with pytest.raises(ConfigError):
        build_ticket_backend(Settings(home=tmp_path, JIRA_URL="https://example.atlassian.net"))


def test_create_ticket_tool_is_idempotent_and_validates(ticket_store):
    """The tool files one ticket per bound key and returns errors as strings for bad arguments."""
    tool = CreateTicketTool(backend=ticket_store, idempotency_key="run-9", category="billing", priority="high")
    assert tool.run(title="x").startswith("Error: invalid arguments for create_ticket")
    first = json.loads(tool.run(title="Refund duplicate charge", summary="Customer was charged twice."))
    second = json.loads(tool.run(title="Refund duplicate charge", summary="Customer was charged twice."))
    assert first["created"] is True and second["created"] is False and first["ticket_id"] == second["ticket_id"]


# ------------------------------------------------------------------------------------------ untrusted ticket text

HOSTILE = TicketDraft(
    title="Re\u200bfund\u202e now\x1b[31m\nplease",
    summary="Charged twice.\x07 {noformat} [click|https://evil.example] *urgent* {html}<b>x</b>{html}\u2060\r\nThanks",
)


def test_local_store_cleans_control_and_zero_width_characters(ticket_store):
    """The local store keeps the text without controls, escape sequences, zero-width or bidi characters;
    the title is one line."""
    ticket_store.create(HOSTILE, idempotency_key="run-x", **TICKET)
    (row,) = ticket_store.list_tickets()
    assert row["title"] == "Refund now[31m please"
    assert row["summary"] == "Charged twice. {noformat} [click|https://evil.example] *urgent* {html}<b>x</b>{html}\nThanks"


def test_jira_summary_sits_in_a_noformat_block_it_cannot_close(fake_jira):
    """Jira gets the untrusted summary inside one {noformat} block (nested macros neutralised), the
    title cleaned to one line, and the trusted lines escaped for wiki markup."""
    _jira(fake_jira).create(HOSTILE, idempotency_key="run-x", category="billing", priority="high",
                            customer_id="C-1001")
    fields = fake_jira.issues[0]["fields"]
    assert fields["summary"] == "Refund now[31m please"
    description = fields["description"]
    assert description.startswith("{noformat}\nCharged twice. (noformat} [click|https://evil.example]")
    assert description.count("{noformat}") == 2 and "{html}" not in description
    assert "\x07" not in description and "\u2060" not in description
    assert "Customer: C-1001" in description


def test_jira_escape_and_html_field_neutralise_markup():
    """jira_escape backslash-escapes wiki markup (ids keep their dash); html_field escapes HTML."""
    from supportdesk.crews.tools.ticketing import html_field, jira_escape

    assert jira_escape("C-1001 *b* [x|http://e] {code} -s-") == r"C-1001 \*b\* \[x\|http://e\] \{code\} \-s\-"
    assert html_field("<script>alert('x')</script> & \u200b") == "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp;"
