"""Customer database: seeding, lookups by id / e-mail / name, identifier extraction, the lookup tool."""

from __future__ import annotations

import json

import pytest

from supportdesk.crews.tools.customer_db import (
    CustomerDB,
    CustomerLookupTool,
    duplicate_charges,
    extract_identifiers,
)
from supportdesk.errors import CustomerNotFoundError


def test_seed_is_idempotent(customer_db, tmp_path):
    """Opening the same database file twice seeds the 30 demo customers exactly once."""
    assert customer_db.count() == 30
    again = CustomerDB(tmp_path / "customers.db")
    again.ensure_ready()
    assert again.count() == 30


def test_lookup_by_id_is_case_insensitive(customer_db):
    """A customer id finds the record with its recent invoices, whatever its case."""
    record = customer_db.get("c-1001")
    assert record is not None and record.name == "Maria Gonzalez"
    assert 2 <= len(record.invoices) <= 6


def test_lookup_by_email(customer_db):
    """An e-mail address finds the customer case-insensitively."""
    assert customer_db.get_by_email("J.Whitfield@EXAMPLE.org").customer_id == "C-1002"


def test_lookup_by_name_in_free_text(customer_db):
    """A customer's full name anywhere in a message finds them."""
    found = customer_db.find_by_name("hello, this is hannah kim writing about my bill")
    assert [r.customer_id for r in found] == ["C-1011"]


def test_unknown_id_is_not_found(customer_db):
    """An id that is not in the database gives found=False, not an exception."""
    result = customer_db.lookup(customer_id="C-9999")
    assert result.found is False and result.matched_by == "none"


def test_duplicate_charge_is_in_the_seed(customer_db):
    """Maria Gonzalez (C-1001) has two paid November 2026 charges of the same amount."""
    groups = duplicate_charges(customer_db.get("C-1001").invoices)
    assert len(groups) == 1 and {i.issued_on[:7] for i in groups[0]} == {"2026-11"}
    assert "duplicate charge" in customer_db.lookup(customer_id="C-1001").summary


def test_extract_identifiers():
    """E-mails and customer ids are extracted in order, normalised and de-duplicated."""
    emails, ids = extract_identifiers("I'm c-1001 (also C-1001), write to Maria.G@Example.com.")
    assert emails == ["maria.g@example.com"] and ids == ["C-1001"]


def test_resolve_prefers_hint_then_query(customer_db):
    """resolve() uses the hint first, then ids/e-mails in the query, then a name."""
    assert customer_db.resolve("I am C-1002", "C-1003").customer.customer_id == "C-1003"
    assert customer_db.resolve("I am C-1002").matched_by == "id"
    assert customer_db.resolve("mail: aisha.bello@example.net").matched_by == "email"
    assert customer_db.resolve("Lena Vogel here").matched_by == "name"
    assert customer_db.resolve("nobody special").found is False


def test_strict_hint_raises_when_unknown(customer_db):
    """A strict resolve with an unknown hint raises CustomerNotFoundError."""
    with pytest.raises(CustomerNotFoundError):
        customer_db.resolve("hi", "C-9999", strict=True)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"customer_id": "42"}, "customer_id must look like C-1001"),
        ({"customer_id": "C-1001", "email": "x@example.com"}, "exactly one"),
        ({}, "exactly one"),
        ({"email": "not-an-email"}, "email must be an e-mail address"),
        ({"phone": "123"}, "Extra inputs"),
    ],
)
def test_tool_invalid_arguments_return_error_string(customer_db, kwargs, needle):
    """An invalid tool call returns an 'Error: ...' string to the agent instead of raising."""
    out = CustomerLookupTool(db=customer_db).run(**kwargs)
    assert isinstance(out, str) and out.startswith("Error:") and needle in out


def test_tool_valid_call_returns_customer_lookup_json(customer_db):
    """A valid tool call returns the CustomerLookup as JSON."""
    out = json.loads(CustomerLookupTool(db=customer_db).run(email="ben.hart@example.com"))
    assert out["found"] is True and out["customer"]["customer_id"] == "C-1026" and out["matched_by"] == "email"
