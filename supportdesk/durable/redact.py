"""Redaction of personal data and secrets: e-mail addresses, phone numbers, card numbers, API keys.

    from supportdesk.durable import redact, RedactingFilter

    redact("mail jane@example.com or call +1 (555) 123-4567, card 4111 1111 1111 1111")
    # 'mail [email] or call [phone], card [card]'

    logging.getLogger("supportdesk").addFilter(RedactingFilter())   # or handler.addFilter(...)

Card numbers are 13 to 19 digits (spaces or dashes allowed) that pass the Luhn check; phone numbers
are 7 to 15 digits that either start with ``+``/``00`` or are written with separators, or are a
bare run of 10 to 15 digits; ISO dates and decimal numbers are left alone. Redaction errs towards
removing: an order number written like a phone number is redacted too. Secrets: ``Bearer`` tokens,
``sk-...``-style keys and ``api_key=...``/``"token": "..."`` assignments.
"""

from __future__ import annotations

import logging
import re
from typing import Any

__all__ = ["RedactingFilter", "luhn_valid", "redact", "redact_data"]

EMAIL_RE = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
CARD_RE = re.compile(r"(?<![\d.])\d(?:[ -]?\d){12,18}(?![\d])")
PHONE_RE = re.compile(r"(?<![\w.+/-])(?:\+|\b00|\()?\d[\d\s().-]{5,20}\d(?![\w]|[.-]\d)")
_ISO_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DECIMAL_RE = re.compile(r"\d+\.\d+")
SECRET_RES = (
    re.compile(r"(?i)\bBearer\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}"),
    re.compile(
        r"(?i)(\"?\b(?:api[_-]?key|apikey|access[_-]?token|token|secret|password|passwd|authorization)\"?\s*[:=]\s*)"
        r"(\"[^\"]*\"|'[^']*'|[^\s,;&}]+)"
    ),
)


def luhn_valid(digits: str) -> bool:
    """True if the digit string passes the Luhn checksum (card numbers do)."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "[card]" if 13 <= len(digits) <= 19 and luhn_valid(digits) else match.group(0)


def _phone(match: re.Match[str]) -> str:
    text = match.group(0)
    core = text.strip()
    digits = re.sub(r"\D", "", core)
    if not 7 <= len(digits) <= 15:
        return text
    if _ISO_DATE_RE.match(core.lstrip("(")) or _DECIMAL_RE.fullmatch(core):
        return text
    international = core.startswith(("+", "00"))
    separated = bool(re.search(r"\d[\s().-]+\d", core))
    if international or (separated and len(digits) >= 7) or len(digits) >= 10:
        return "[phone]"
    return text


def redact(text: str) -> str:
    """Replace e-mail addresses, card numbers, phone numbers and secrets in ``text`` with placeholders."""
    if not text:
        return text
    text = EMAIL_RE.sub("[email]", text)
    for pattern in SECRET_RES[:2]:
        text = pattern.sub("[secret]", text)
    text = SECRET_RES[2].sub(lambda m: m.group(1) + "[secret]", text)
    text = CARD_RE.sub(_card, text)
    return PHONE_RE.sub(_phone, text)


def redact_data(value: Any) -> Any:
    """Redact every string inside a JSON-like value (dicts, lists, tuples); numbers and keys stay."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(v) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's message (and exception text) in place.

    Attach it to handlers (it then covers every logger) or to a logger::

        handler = logging.StreamHandler()
        handler.addFilter(RedactingFilter())
    """

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string: keep the record, redact the template
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
