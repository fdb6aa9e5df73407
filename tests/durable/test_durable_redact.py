"""Redaction of e-mail addresses, phone numbers, card numbers and secrets in audit data and logs."""

from __future__ import annotations

import io
import logging

import pytest

from supportdesk.durable import RedactingFilter, RunJournal, redact
from supportdesk.durable.redact import luhn_valid


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane.doe+billing@example.co.uk today", "write to [email] today"),
        ("call +1 (555) 123-4567 please", "call [phone] please"),
        ("or 0044 20 7946 0958 / 555.123.4567", "or [phone] / [phone]"),
        ("card 4111 1111 1111 1111 and 5500-0000-0000-0004", "card [card] and [card]"),
        ("Authorization: Bearer abcdef0123456789", "Authorization: [secret]"),
        ("key sk-abcdefghijklmnopqrstuvwx", "key [secret]"),
    ],
)
def test_redacts_personal_data(text: str, expected: str) -> None:
    """E-mail addresses, phone numbers, Luhn-valid card numbers and API keys are replaced by placeholders."""
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    ["invoice INV-2024-0001 issued 2024-01-15", "latency 0.123456789 s", "order 123456", "4111 1111 1111 1112"],
)
def test_leaves_dates_ids_and_non_luhn_numbers(text: str) -> None:
    """ISO dates, decimals, short ids and card-shaped numbers failing Luhn are left alone."""
    assert redact(text) == text


def test_luhn() -> None:
    """The Luhn check accepts valid card numbers and rejects a changed digit."""
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")


def test_audit_data_is_redacted(journal: RunJournal) -> None:
    """Strings in audit data are stored redacted, nested ones included."""
    journal.start_run("r1", "q")
    journal.append_audit(
        "r1", "error", {"message": "mail bob@example.com", "nested": ["card 4111111111111111"], "n": 5}
    )
    data = journal.audit("r1")[-1].data
    assert data == {"message": "mail [email]", "nested": ["card [card]"], "n": 5}


def test_logging_filter_redacts_message_args_and_traceback() -> None:
    """RedactingFilter redacts the formatted message and the exception text of a log record."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    log = logging.getLogger("tests.durable.redact")
    log.addHandler(handler)
    log.propagate = False
    try:
        try:
            raise ValueError("bad card 4111 1111 1111 1111")
        except ValueError:
            log.exception("customer %s called from %s", "jane@example.com", "+44 20 7946 0958")
    finally:
        log.removeHandler(handler)
    out = stream.getvalue()
    assert "customer [email] called from [phone]" in out
    assert "bad card [card]" in out
    assert "jane@" not in out and "4111" not in out
