"""Customer directory: the SQLite demo, verifying the caller, and the lookup tool scoped to that caller."""

from __future__ import annotations

import json

import pytest

from supportdesk.crews.tools.customer_db import (
    UNVERIFIED_SUMMARY,
    CustomerDB,
    CustomerDirectory,
    CustomerLookupTool,
    caller_lookup,
    duplicate_charges,
    verify_customer,
)
from supportdesk.errors import CustomerNotFoundError
from supportdesk.models.responses import CustomerRecord, Invoice


def test_seed_is_idempotent(customer_db, tmp_path):
    """Opening the same database file twice seeds the 30 demo customers exactly once."""
    customer_db.ensure_ready()
    assert customer_db.count() == 30
    again = CustomerDB(tmp_path / "customers.db")
    again.ensure_ready()
    assert again.count() == 30


def test_lookups_before_the_file_exists_create_nothing(tmp_path):
    """Until something creates the file, lookups read the seed in memory: a miss or a hit writes no file or folder."""
    db = CustomerDB(tmp_path / "home" / "supportdesk.db")
    assert db.get("C-9999") is None and db.get_by_email("nobody@example.com") is None
    assert db.get("C-1001").name == "Maria Gonzalez"
    assert not (tmp_path / "home").exists()


def test_lookup_by_id_is_case_insensitive(customer_db):
    """A customer id finds the record with its recent invoices, whatever its case."""
    record = customer_db.get("c-1001")
    assert record is not None and record.name == "Maria Gonzalez"
    assert 2 <= len(record.invoices) <= 6


def test_lookup_by_email(customer_db):
    """An e-mail address finds the customer case-insensitively."""
    assert customer_db.get_by_email("J.Whitfield@EXAMPLE.org").customer_id == "C-1002"


def test_recent_invoices_are_newest_first_and_limited(customer_db):
    """recent_invoices gives at most ``limit`` invoices, newest first; an unknown id gives none."""
    invoices = customer_db.recent_invoices("C-1001", limit=2)
    assert len(invoices) == 2 and invoices[0].issued_on >= invoices[1].issued_on
    assert customer_db.recent_invoices("C-9999") == []


def test_sqlite_demo_implements_the_directory_protocol(customer_db):
    """CustomerDB is a CustomerDirectory (the protocol a backend's CRM implements)."""
    assert isinstance(customer_db, CustomerDirectory)


def test_verify_customer_by_id_or_email(customer_db):
    """The caller's stated id or e-mail gives that account with its recent invoices."""
    by_email = verify_customer(customer_db, " MARIA.GONZALEZ@example.com ")
    by_id = verify_customer(customer_db, "c-1001")
    assert by_email.customer_id == by_id.customer_id == "C-1001" and by_email.invoices


@pytest.mark.parametrize("stated", ["C-9999", "nobody@example.com", "Maria Gonzalez", "I am C-1001"])
def test_verify_unknown_customer_raises(customer_db, stated):
    """An unknown id or e-mail, a name, or text that merely contains an id is not a customer: CustomerNotFoundError."""
    with pytest.raises(CustomerNotFoundError, match="not in the customer directory"):
        verify_customer(customer_db, stated)


class _CRM:
    """A backend's own directory (no SQLite): two accounts in a dict."""

    def __init__(self, wrong: bool = False) -> None:
        self.wrong = wrong
        self.records = {
            "A-1": CustomerRecord(customer_id="A-1", name="Ann Example", email="ann@crm.test", plan="pro",
                                  account_status="active", signup_date="2024-01-01"),
            "A-2": CustomerRecord(customer_id="A-2", name="Bob Example", email="bob@crm.test", plan="free",
                                  account_status="trial", signup_date="2025-01-01"),
        }

    def get(self, customer_id):
        return self.records["A-2" if self.wrong else "A-1"] if customer_id == "A-1" else self.records.get(customer_id)

    def get_by_email(self, email):
        return next((r for r in self.records.values() if r.email == email.lower()), None)

    def recent_invoices(self, customer_id, limit=6):
        return [Invoice(invoice_id="I-1", amount_cents=100, currency="USD", status="paid", issued_on="2026-11-01",
                        description="Pro")] if customer_id == "A-1" else []


def test_a_backend_directory_plugs_in():
    """Any object with get / get_by_email / recent_invoices is a directory; its invoices are attached."""
    crm = _CRM()
    assert isinstance(crm, CustomerDirectory)
    record = verify_customer(crm, "ANN@crm.test")
    assert record.customer_id == "A-1" and [i.invoice_id for i in record.invoices] == ["I-1"]


def test_a_directory_answering_with_another_account_is_refused():
    """A directory that returns a different account than the one asked for is not trusted: CustomerNotFoundError."""
    with pytest.raises(CustomerNotFoundError, match="different account"):
        verify_customer(_CRM(wrong=True), "A-1")


def test_duplicate_charge_is_in_the_seed(customer_db):
    """Maria Gonzalez (C-1001) has two paid November 2026 charges of the same amount."""
    groups = duplicate_charges(customer_db.get("C-1001").invoices)
    assert len(groups) == 1 and {i.issued_on[:7] for i in groups[0]} == {"2026-11"}
    assert "duplicate charge" in caller_lookup(customer_db.get("C-1001")).summary


def test_no_caller_means_unverified():
    """Without a verified caller the lookup states that the requester is unverified, with no account."""
    lookup = caller_lookup(None)
    assert lookup.found is False and lookup.customer is None and lookup.summary == UNVERIFIED_SUMMARY


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"customer_id": "C-1002"}, "only the verified caller"),
        ({"email": "j.whitfield@example.org"}, "only the verified caller"),
        ({"customer_id": "C-1001", "email": "j.whitfield@example.org"}, "only the verified caller"),
        ({"customer_id": "C-9999"}, "only the verified caller"),
        ({"phone": "123"}, "Extra inputs"),
        ({"name": "Joseph Whitfield"}, "Extra inputs"),
        ({"customer_id": "x" * 300}, "at most 254"),
    ],
)
def test_tool_cannot_be_pointed_at_another_account(customer_db, kwargs, needle):
    """Whatever the arguments, the tool bound to C-1001 answers an 'Error: ...' string and never another account."""
    out = CustomerLookupTool.for_caller(customer_db.get("C-1001")).run(**kwargs)
    assert isinstance(out, str) and out.startswith("Error:") and needle in out
    assert "Whitfield" not in out and "C-1002" not in out and "Maria" not in out


def test_tool_returns_the_callers_account(customer_db):
    """With no arguments, or the caller's own id or e-mail, the tool returns the caller's CustomerLookup JSON."""
    tool = CustomerLookupTool.for_caller(customer_db.get("C-1026"))
    for kwargs in ({}, {"customer_id": "c-1026"}, {"email": "BEN.HART@example.com"}):
        out = json.loads(tool.run(**kwargs))
        assert out["found"] is True and out["customer"]["customer_id"] == "C-1026"


def test_unbound_tool_reads_no_account(customer_db):
    """A tool for an unverified requester answers 'unverified', and refuses any id or e-mail."""
    tool = CustomerLookupTool.for_caller(None)
    assert json.loads(tool.run())["summary"] == UNVERIFIED_SUMMARY
    out = tool.run(customer_id="C-1001")
    assert out.startswith("Error:") and "unverified" in out and "Maria" not in out
    assert tool.run("C-1001").startswith("Error:")
