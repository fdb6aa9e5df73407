"""Hypothesis-generated tool-call arguments against the agent tools: never an exception, never a side effect
from an invalid call, never another account (1,000+ generated calls in all)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supportdesk.crews.tools.customer_db import CustomerDB, CustomerLookupTool, verify_customer
from supportdesk.crews.tools.ticketing import CreateTicketTool, LocalTicketStore
from supportdesk.errors import SupportdeskError, TicketingError
from supportdesk.models import TicketDraft

pytestmark = pytest.mark.filterwarnings("ignore")

OTHER_IDS = ["C-1002", "c-1005", "C-1012 ", "C-9999", "C-1001; DROP TABLE customers", "C-1001' OR '1'='1"]
OTHER_EMAILS = ["j.whitfield@example.org", "SOPHIE.LAURENT@example.fr", "x@evil.example", "maria.gonzalez@example.com.evil"]
texts = st.one_of(st.text(max_size=300), st.sampled_from(OTHER_IDS + OTHER_EMAILS + ["", " ", "\u200b", "{}", "null"]))
values = st.one_of(texts, st.none(), st.integers(), st.floats(allow_nan=True), st.booleans(),
                   st.lists(texts, max_size=3), st.dictionaries(texts, texts, max_size=2))
kwargs_strategy = st.dictionaries(
    st.one_of(st.sampled_from(["customer_id", "email", "name", "title", "summary", "category", "priority",
                               "idempotency_key", "backend", "customer"]), st.text(max_size=20)),
    values, max_size=4)
ticket_kwargs = st.one_of(
    kwargs_strategy,
    st.fixed_dictionaries({"title": st.text(min_size=1, max_size=130), "summary": st.text(min_size=1, max_size=1100)},
                          optional={"customer_id": texts, "category": texts, "priority": texts}),
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    return CustomerDB(tmp_path_factory.mktemp("db") / "customers.db")


@pytest.fixture(scope="module")
def maria(directory):
    return verify_customer(directory, "C-1001")


@FUZZ
@given(kwargs=kwargs_strategy, unverified=st.booleans())
def test_lookup_tool_never_raises_and_never_reads_another_account(maria, kwargs, unverified):
    """Any arguments: a string back (JSON of the caller's own account or 'Error: ...'), never another
    account's facts, and the tool stays bound to its caller."""
    caller = None if unverified else maria
    tool = CustomerLookupTool.for_caller(caller)
    out = tool.run(**kwargs)
    assert isinstance(out, str)
    for other in ("C-1002", "C-1005", "C-1012", "James Whitfield", "Sophie Laurent", "j.whitfield@example.org"):
        assert other.lower() not in out.lower() or other.lower() in json.dumps(kwargs, default=str).lower()
    if not out.startswith("Error:"):
        data = json.loads(out)
        assert (data["customer"] or {}).get("customer_id") in (None if unverified else "C-1001", None)
    assert tool.customer == caller


@FUZZ
@given(stated=texts)
def test_verify_customer_selects_only_the_exact_account(directory, stated):
    """A stated identity selects the account whose id or e-mail it is exactly, or raises a typed error."""
    try:
        record = verify_customer(directory, stated)
    except SupportdeskError:
        return
    assert stated.strip().casefold() in (record.customer_id.casefold(), record.email.casefold())


@FUZZ
@given(kwargs=ticket_kwargs)
def test_ticket_tool_invalid_calls_file_nothing_and_valid_calls_file_one(tmp_path_factory, kwargs):
    """Any arguments: a string back; an invalid call files no ticket; a valid one files exactly one, for
    the bound customer, category and priority whatever the arguments say; a repeat files none."""
    store = LocalTicketStore(tmp_path_factory.mktemp("t") / "tickets.db")
    tool = CreateTicketTool(backend=store, idempotency_key="run-fuzz", category="billing", priority="high",
                            customer_id="C-1001")
    out = tool.run(**kwargs)
    assert isinstance(out, str)
    tickets = store.list_tickets()
    if out.startswith("Error:"):
        assert tickets == []
        return
    assert len(tickets) == 1
    assert (tickets[0]["customer_id"], tickets[0]["category"], tickets[0]["priority"]) == ("C-1001", "billing", "high")
    tool.run(**kwargs)
    assert len(store.list_tickets()) == 1


@FUZZ
@given(key=st.one_of(st.text(max_size=120), st.sampled_from(["", " ", "a" * 101, "../etc", "k\n1", "k;DROP"])))
def test_ticket_store_rejects_bad_keys_before_writing(tmp_path_factory, key):
    """An idempotency key that is not 1-100 safe characters is a TicketingError and writes nothing."""
    store = LocalTicketStore(tmp_path_factory.mktemp("k") / "tickets.db")
    draft = TicketDraft(title="Refund double charge", summary="Charged twice in November.")
    try:
        store.create(draft, idempotency_key=key, category="billing", priority="high", customer_id=None)
    except TicketingError:
        assert store.list_tickets() == []
        return
    assert [t["idempotency_key"] for t in store.list_tickets()] == [key]
