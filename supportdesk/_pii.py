"""Personal data in customer text, in one place: card masking at intake, redaction for logs and
stores, scrubbing of search queries, and cleaning of control and invisible characters.

::

    from supportdesk._pii import clean_text, mask_cards, redact, scrub_search_query

    mask_cards("card 4111 1111 1111 1111, order 1234")   # 'card [card ending 1111], order 1234'
    redact("mail jane@example.com or call +44 20 7946 0958")   # 'mail [email] or call [phone]'
    scrub_search_query("I'm C-1001 (jane@example.com): export to markdown?")   # "I'm (): export to markdown?"
    clean_text("pay\u200bment\x07 failed")               # 'payment failed'
    install_log_redaction()   # every record of the "supportdesk" logger hierarchy is redacted

What each function removes:

* **cards** (:func:`mask_cards`, at intake): runs of 13 to 19 digits, written together or in groups
  separated by single spaces or dashes, that pass the Luhn check. The run is replaced by
  ``[card ending NNNN]``; a run glued to letters (``ORD-4111...``, ``A4111...``) or written after ``+``
  (a phone number) is an identifier, not a card. Within a longer run of groups (``ref 12 4111 1111
  1111 1111``) the Luhn-valid groups are found and masked alone.
* **logs, audit trail, CrewAI's stores** (:func:`redact`): e-mail addresses, IBANs (ISO 13616
  mod-97 check), card numbers, phone numbers (7 to 15 digits that start with ``+``/``00``, are
  written with separators, or are a bare run of 10 to 15 digits; ISO dates and decimals stay) and
  secrets (``Bearer`` tokens, ``sk-``-style keys, ``password=...``-style assignments). It errs towards
  removing: an order number written like a phone number is redacted too.
* **search queries** (:func:`scrub_search_query`): everything :func:`redact` removes, plus masked
  cards, customer and invoice ids (``C-1234``, ``INV-5003``, any ``ABC-123`` shaped id) and runs of
  six or more digits; the placeholders are dropped, not sent.
* **control and invisible characters** (:func:`clean_text`): C0/C1 controls (tab and newline
  optionally kept), Unicode format characters (zero-width spaces and joiners, bidi overrides, BOM,
  soft hyphen, tag characters), variation selectors, line/paragraph separators and lone surrogates.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import Any

__all__ = [
    "CARD_MASK_RE",
    "RedactingFilter",
    "clean_text",
    "iban_valid",
    "install_log_redaction",
    "luhn_valid",
    "mask_cards",
    "redact",
    "redact_data",
    "scrub_search_query",
]

# ------------------------------------------------------------------------------------------- patterns

EMAIL_RE = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
#: A run of digit groups separated by single spaces or dashes (card candidates are found inside it).
_DIGIT_RUN_RE = re.compile(r"(?<![\w.])\d+(?:[ -]\d+)*(?![\w]|[.,]\d)")
_GROUP_RE = re.compile(r"\d+")
#: What :func:`mask_cards` leaves behind.
CARD_MASK_RE = re.compile(r"\[card ending \d{4}\]")
PHONE_RE = re.compile(r"(?<![\w.+/-])(?:\+|\b00|\()?\d[\d\s().-]{5,20}\d(?![\w]|[.-]\d)")
IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?\b")
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
#: Account-shaped identifiers: C-1001 (the demo customer DB), INV-5003, CUS-123456, cus_AbC123...
_ACCOUNT_ID_RES = (
    re.compile(r"\b[A-Za-z]{1,5}[-_#]\d{3,}\b"),
    re.compile(r"\bC\d{4,8}\b"),
    re.compile(r"\b(?:cus|acct|inv|sub|ch|pi|pm)_[A-Za-z0-9]{6,}\b"),
    re.compile(r"#?\b\d{6,}\b"),
)
_EMPTY_BRACKETS_RE = re.compile(r"[(\[{<]\s*[)\]}>]")
_DANGLING_PUNCT_RE = re.compile(r"(?<=\s)[,;:/|-]+(?=\s|$)")
_PLACEHOLDER_RE = re.compile(r"\[(?:email|phone|card|iban|secret)\]|\[card ending \d{4}\]")


# ------------------------------------------------------------------------------------------- checks


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


def iban_valid(text: str) -> bool:
    """True if ``text`` (spaces allowed) passes the ISO 13616 mod-97 check of an IBAN."""
    compact = text.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


# ------------------------------------------------------------------------------------------- cards


def _card_spans(run: str) -> list[tuple[int, int]]:
    """Spans (within ``run``) of the Luhn-valid 13-19 digit group sequences, longest first, left to right."""
    groups = [(m.start(), m.end()) for m in _GROUP_RE.finditer(run)]
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(groups):
        found = None
        for j in range(len(groups) - 1, i - 1, -1):
            digits = "".join(run[a:b] for a, b in groups[i : j + 1])
            if 13 <= len(digits) <= 19 and luhn_valid(digits):
                found = j
                break
        if found is None:
            i += 1
            continue
        spans.append((groups[i][0], groups[found][1]))
        i = found + 1
    return spans


def _is_identifier(text: str, start: int) -> bool:
    """True when the digit run at ``start`` belongs to an id (``ORD-4111...``) or a phone (``+4111...``)."""
    before = text[max(0, start - 2) : start]
    return before.endswith("+") or (len(before) == 2 and before[1] in "-#_/" and before[0].isalnum())


def _replace_cards(text: str, placeholder: Any) -> str:
    out: list[str] = []
    last = 0
    for match in _DIGIT_RUN_RE.finditer(text):
        if _is_identifier(text, match.start()):
            continue
        run = match.group(0)
        for a, b in _card_spans(run):
            digits = re.sub(r"\D", "", run[a:b])
            out += [text[last : match.start() + a], placeholder(digits)]
            last = match.start() + b
    out.append(text[last:])
    return "".join(out)


def mask_cards(text: str) -> str:
    """Replace each card number in ``text`` with ``[card ending NNNN]`` (its last four digits)."""
    if not text or not any(ch.isdigit() for ch in text):
        return text
    return _replace_cards(text, lambda digits: f"[card ending {digits[-4:]}]")


# ------------------------------------------------------------------------------------------- redaction


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


def _iban(match: re.Match[str]) -> str:
    return "[iban]" if iban_valid(match.group(0)) else match.group(0)


def redact(text: str) -> str:
    """Replace e-mail addresses, IBANs, card numbers, phone numbers and secrets with placeholders."""
    if not text:
        return text
    text = EMAIL_RE.sub("[email]", text)
    for pattern in SECRET_RES[:2]:
        text = pattern.sub("[secret]", text)
    text = SECRET_RES[2].sub(lambda m: m.group(1) + "[secret]", text)
    text = IBAN_RE.sub(_iban, text)
    if any(ch.isdigit() for ch in text):
        text = _replace_cards(text, lambda _digits: "[card]")
        text = PHONE_RE.sub(_phone, text)
    return text


def redact_data(value: Any) -> Any:
    """Redact every string inside a JSON-like value (dicts, lists, tuples); numbers and keys stay."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(v) for v in value]
    return value


def scrub_search_query(text: str) -> str:
    """``text`` without anything personal, for a query that leaves the machine (web search).

    Removes what :func:`redact` removes plus masked cards, account-shaped ids (``C-1001``,
    ``INV-5003``, ``cus_...``) and runs of six or more digits; whitespace is collapsed.
    """
    text = redact(mask_cards(clean_text(text, keep_newlines=False)))
    text = _PLACEHOLDER_RE.sub(" ", text)
    for pattern in _ACCOUNT_ID_RES:
        text = pattern.sub(" ", text)
    text = _EMPTY_BRACKETS_RE.sub(" ", text)
    text = _DANGLING_PUNCT_RE.sub(" ", " " + text)
    return " ".join(text.split())


# ------------------------------------------------------------------------------------------- cleaning

#: Format characters that are not Unicode category Cf but hide text all the same.
_INVISIBLE = {"\u115f", "\u1160", "\u3164", "\uffa0", "\u034f", "\u180e"}


def _drop(ch: str, keep_newlines: bool) -> str | None:
    """The replacement of ``ch`` (None: keep it)."""
    if ch in "\n\t":
        return None if keep_newlines else " "
    if ch == "\r":
        return "" if keep_newlines else " "
    cat = unicodedata.category(ch)
    if cat in ("Zl", "Zp"):
        return "\n" if keep_newlines else " "
    if cat in ("Cc", "Cf", "Cs") or ch in _INVISIBLE:
        return ""
    code = ord(ch)
    if 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF:  # variation selectors (text smuggling)
        return ""
    return None


def clean_text(text: str, *, keep_newlines: bool = True) -> str:
    """``text`` without control, zero-width, bidi-override and other invisible characters.

    :param keep_newlines: keep newlines and tabs (``\\r\\n`` becomes ``\\n``); False turns every
        line break and tab into a space (single-line fields such as a ticket title).
    """
    if not text:
        return text
    if text.isascii() and text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isascii() and " " <= ch <= "~":
            out.append(ch)
            continue
        replacement = _drop(ch, keep_newlines)
        out.append(ch if replacement is None else replacement)
    return "".join(out)


# ------------------------------------------------------------------------------------------- logging


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's message (and exception text) in place.

    Attach it to handlers (it then covers every logger) or to a logger::

        handler = logging.StreamHandler()
        handler.addFilter(RedactingFilter())

    supportdesk installs it on its own logger hierarchy with :func:`install_log_redaction`.
    """

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_supportdesk_redacted", False):
            return True
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
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        record._supportdesk_redacted = True
        return True


PACKAGE_LOGGER = "supportdesk"
_FILTER = RedactingFilter()


class _RedactingRecordFactory:
    """Wraps the process's LogRecord factory: records of the ``supportdesk`` hierarchy come out redacted.

    A filter on the ``supportdesk`` logger alone would not do: Python runs a logger's filters only for
    records logged on that very logger, not for those its children propagate. Records of every other
    logger pass through untouched, and the factory that was installed before stays in charge of them.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.inner(*args, **kwargs)
        name = record.name
        if name == PACKAGE_LOGGER or name.startswith(PACKAGE_LOGGER + "."):
            _FILTER.filter(record)
        return record


def install_log_redaction() -> None:
    """Redact every log record of the ``supportdesk`` logger hierarchy (idempotent).

    The redacting filter goes on the ``supportdesk`` logger and the record factory is wrapped so the
    package's child loggers (created lazily, as modules are imported) are covered too. The root logger
    and the host application's handlers and loggers are not touched.
    """
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, _RedactingRecordFactory):
        logging.setLogRecordFactory(_RedactingRecordFactory(factory))
    package = logging.getLogger(PACKAGE_LOGGER)
    if _FILTER not in package.filters:
        package.addFilter(_FILTER)
