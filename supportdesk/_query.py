"""Checking a customer query before anything runs: clear errors, nothing written."""

from __future__ import annotations

import unicodedata

from supportdesk.errors import InvalidQueryError

__all__ = ["validate_query"]

_ALLOWED_CONTROLS = {"\n", "\t", "\r"}


def validate_query(raw: str | bytes, *, max_chars: int) -> str:
    """Return the query as clean NFC text, or raise :class:`InvalidQueryError` saying why.

    Rejects invalid UTF-8 (bytes, or text carrying undecodable surrogates from argv), binary data
    (NUL or other control characters), whitespace-only queries and queries over ``max_chars``.
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
    if len(text) > max_chars:
        raise InvalidQueryError(f"query is {len(text)} characters long; the limit is {max_chars} (SUPPORTDESK_MAX_QUERY_CHARS)")
    return text
