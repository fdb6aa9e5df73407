"""The operator's allow-list of web domains: parsing it, and deciding whether a URL is on it.

::

    from supportdesk._domains import parse_domains, url_allowed, find_links

    domains = parse_domains("help.nimbusnotes.example, docs.example.org")
    url_allowed("https://help.nimbusnotes.example/a/1", domains)          # True
    url_allowed("https://kb.help.nimbusnotes.example/a", domains)         # True (a subdomain)
    url_allowed("https://help.nimbusnotes.example.evil.io/", domains)     # False (a lookalike)
    url_allowed("https://help.nimbusnotes.example@evil.io/", domains)     # False (userinfo)
    url_allowed("javascript:alert(1)", domains)                           # False (not http/https)

A domain entry is a host name of at least two labels (``example.com``; ``com`` alone would allow a
whole top-level domain); ``*.``, a leading dot and a trailing dot are accepted and mean the same
(the domain and its subdomains). Internationalised names are compared in their IDNA (``xn--``) form,
so a look-alike written with other scripts never matches an ASCII entry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

__all__ = ["find_links", "host_allowed", "normalise_domain", "parse_domains", "url_allowed"]

_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_ALLOWED_PORTS = {None, 80, 443}
#: Links in free text: URLs with a scheme, ``www.`` hosts and bare host names with a path or a dot-TLD.
_URL_RE = re.compile(
    r"(?i)\b(?:(?:https?|ftps?|file|wss?|javascript|vbscript|data|mailto|tel|sms|blob|intent):[^\s<>\"'`]+"
    r"|www\.[^\s<>\"'`]+)"
)
_BARE_HOST_RE = re.compile(
    r"(?i)(?<![\w@.-])((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{1,62})(?=[/:?#]|\b)(?![\w-])"
)
_EMAIL_DOMAIN_RE = re.compile(r"(?i)[a-z0-9._%+-]+@((?:[a-z0-9-]+\.)+[a-z]{2,})")
#: Common non-link words that look like host names ("e.g", "i.e", version strings are filtered by TLD).
_NOT_TLDS = {"g", "e", "txt", "md", "py", "json", "yaml", "yml", "csv", "pdf", "png", "jpg", "exe", "zip"}


def normalise_domain(entry: str) -> str:
    """One allow-list entry in canonical form (lowercase, IDNA, no ``*.``/dots around).

    :raises ValueError: not a host name of at least two labels (a URL, a path, a port, one label ...).
    """
    raw = entry.strip()
    name = raw.lower()
    if name.startswith("*."):
        name = name[2:]
    name = name.strip(".")
    if not name or any(ch in name for ch in "/:@?#\\ \t*"):
        raise ValueError(f"{raw!r} is not a domain name (write it like help.example.com)")
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(f"{raw!r} is not a valid domain name") from exc
    labels = name.split(".")
    if len(labels) < 2 or not all(_LABEL_RE.match(label) for label in labels):
        raise ValueError(f"{raw!r} is not a domain name of at least two labels (like example.com)")
    if labels[-1].isdigit():
        raise ValueError(f"{raw!r} is an IP address, not a domain name")
    return name


def parse_domains(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """The allow-list from a comma- (or whitespace-) separated string, a JSON list or a list; duplicates dropped.

    :raises ValueError: an entry is not a domain name (:func:`normalise_domain`).
    """
    if value is None:
        return ()
    if isinstance(value, str) and value.strip().startswith("["):
        try:  # a JSON list is accepted too
            value = [str(v) for v in json.loads(value)]
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{value!r} is neither a comma-separated list nor a JSON list of domains") from exc
    items = re.split(r"[,\s]+", value) if isinstance(value, str) else [str(v) for v in value]
    out: list[str] = []
    for item in items:
        if item.strip():
            name = normalise_domain(item)
            if name not in out:
                out.append(name)
    return tuple(out)


def _host(host: str) -> str | None:
    host = host.strip().lower().rstrip(".")
    if not host:
        return None
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return None


def host_allowed(host: str | None, domains: Sequence[str]) -> bool:
    """True when ``host`` is one of ``domains`` or a subdomain of one (exact label match)."""
    if not host or not domains:
        return False
    name = _host(host)
    if name is None or not all(_LABEL_RE.match(label) for label in name.split(".")):
        return False
    return any(name == d or name.endswith("." + d) for d in domains)


def url_allowed(url: str, domains: Sequence[str]) -> bool:
    """True when ``url`` is an http(s) URL on an allowed host.

    Refused: other schemes (``javascript:``, ``data:``, ``ftp:`` ...), user info (``user@host``),
    backslashes, whitespace or control characters anywhere, non-default ports, IP addresses, and
    hosts that are not an allowed domain or its subdomain (``example.com.evil.io`` is not ``example.com``).
    """
    if not isinstance(url, str) or not url or not domains:
        return False
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F or ch == "\\" for ch in url):
        return False
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme.lower() not in ("http", "https") or "@" in parts.netloc or port not in _ALLOWED_PORTS:
        return False
    return host_allowed(parts.hostname, domains)


def find_links(text: str) -> list[str]:
    """Everything in ``text`` that a reader could follow: URLs, ``www.`` hosts, bare host names and the
    domains of e-mail addresses (each as found; hosts without a scheme are returned as ``https://host``)."""
    links: list[str] = []
    for match in _URL_RE.finditer(text):
        link = match.group(0).rstrip(".,;:!?)]}")
        if link.lower().startswith("www."):
            link = "https://" + link
        links.append(link)  # javascript:, data:, mailto: ... count as links too (never allowed)
    stripped = _URL_RE.sub(" ", text)
    for match in _EMAIL_DOMAIN_RE.finditer(stripped):
        links.append("https://" + match.group(1))
    stripped = _EMAIL_DOMAIN_RE.sub(" ", stripped)
    for match in _BARE_HOST_RE.finditer(stripped):
        host = match.group(1)
        if host.rsplit(".", 1)[-1].lower() in _NOT_TLDS:
            continue
        links.append("https://" + host)
    return links
