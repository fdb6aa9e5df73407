"""Checking a customer query before anything runs: clear errors, nothing written."""

from __future__ import annotations

import re
import unicodedata

from supportdesk.errors import InvalidQueryError, InvalidRunIdError

__all__ = ["validate_customer", "validate_query", "validate_run_id"]

_ALLOWED_CONTROLS = {"\n", "\t", "\r"}
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# Characters that render as nothing although Unicode does not class them as format (Cf) or space:
# Hangul fillers, the Braille blank, the Mongolian vowel separator, combining grapheme joiner.
_BLANK_LOOKING = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e\u034f")


def _invisible(char: str) -> bool:
    """True for a character that shows nothing on its own: whitespace, format (zero-width, bidi)
    and control characters, and the few fillers in ``_BLANK_LOOKING``."""
    return char.isspace() or unicodedata.category(char) in ("Cf", "Cc", "Zs", "Zl", "Zp") or char in _BLANK_LOOKING


def validate_run_id(run_id: str) -> str:
    """Return ``run_id`` if it is a valid run id, else raise :class:`InvalidRunIdError` saying why.

    A run id is an idempotency key: 1 to 128 characters from ``[A-Za-z0-9._-]``, starting with a
    letter or digit (so it is safe in a URL, a file name and a log line)::

        validate_run_id("order-1234.retry_2")   # 'order-1234.retry_2'
        validate_run_id("../etc/passwd")        # InvalidRunIdError
    """
    if not isinstance(run_id, str) or not run_id:
        raise InvalidRunIdError("run id is empty")
    if len(run_id) > 128:
        raise InvalidRunIdError(f"run id is {len(run_id)} characters long; the limit is 128")
    if not RUN_ID_PATTERN.fullmatch(run_id):
        bad = next((c for c in run_id if not (c.isascii() and (c.isalnum() or c in "._-"))), None)
        why = f"character U+{ord(bad):04X} is not allowed" if bad is not None else "it must start with a letter or digit"
        raise InvalidRunIdError(f"invalid run id: {why} (use 1-128 of A-Z a-z 0-9 . _ -)")
    return run_id


def validate_customer(customer: str | None) -> str | None:
    """The caller's stated customer (an id or e-mail) stripped, None when not given.

    :raises InvalidQueryError: given but empty, invisible, over 254 characters, or with control characters.
    """
    if customer is None:
        return None
    if not isinstance(customer, str) or all(_invisible(c) for c in customer):
        raise InvalidQueryError("--customer is empty")
    value = unicodedata.normalize("NFC", customer).strip()
    if len(value) > 254 or any(unicodedata.category(c) in ("Cc", "Cf") for c in value):
        raise InvalidQueryError("--customer must be a customer id or e-mail address (at most 254 visible characters)")
    return value


def validate_query(raw: str | bytes, *, max_chars: int) -> str:
    """Return the query as clean NFC text, or raise :class:`InvalidQueryError` saying why.

    Rejects invalid UTF-8 (bytes, or text carrying undecodable surrogates from argv), binary data
    (NUL or other control characters), queries with nothing visible (whitespace, zero-width or
    other format characters only) and queries over ``max_chars``.
    Hostile *text* (prompt injection, SQL, markup) is accepted as data: it is never executed, and
    prompts quote it as customer text.
    """
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidQueryError(f"query is not valid UTF-8 (bad byte at offset {exc.start})") from exc
    else:
        text = raw
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidQueryError(f"query is not valid UTF-8 (bad byte at character {exc.start})") from exc
    bad = next((c for c in text if unicodedata.category(c) == "Cc" and c not in _ALLOWED_CONTROLS), None)
    if bad is not None:
        raise InvalidQueryError(f"query contains binary data (control character U+{ord(bad):04X})")
    text = unicodedata.normalize("NFC", text).strip()
    if not text:
        raise InvalidQueryError("query is empty")
    if all(_invisible(c) for c in text):
        first = next(c for c in text if not c.isspace())
        raise InvalidQueryError(f"query is empty: it has only invisible characters (such as U+{ord(first):04X})")
    if len(text) > max_chars:
        raise InvalidQueryError(f"query is {len(text)} characters long; the limit is {max_chars} (SUPPORTDESK_MAX_QUERY_CHARS)")
    return text
