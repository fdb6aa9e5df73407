"""Redaction of personal data and secrets: e-mail addresses, IBANs, phone numbers, card numbers, API keys.

The patterns live in :mod:`supportdesk._pii` (one module for personal data: card masking at intake,
redaction, search-query scrubbing); this module keeps the durable layer's names::

    from supportdesk.durable import redact, RedactingFilter

    redact("mail jane@example.com or call +1 (555) 123-4567, card 4111 1111 1111 1111")
    # 'mail [email] or call [phone], card [card]'

    handler.addFilter(RedactingFilter())   # supportdesk's own loggers are covered already

Card numbers are 13 to 19 digits (spaces or dashes allowed) that pass the Luhn check; phone numbers
are 7 to 15 digits that either start with ``+``/``00`` or are written with separators, or are a
bare run of 10 to 15 digits; ISO dates and decimal numbers are left alone. Redaction errs towards
removing: an order number written like a phone number is redacted too. Secrets: ``Bearer`` tokens,
``sk-...``-style keys and ``api_key=...``/``"token": "..."`` assignments.
"""

from __future__ import annotations

from supportdesk._pii import RedactingFilter, iban_valid, luhn_valid, redact, redact_data

__all__ = ["RedactingFilter", "iban_valid", "luhn_valid", "redact", "redact_data"]
