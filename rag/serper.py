"""Web search through Serper (google.serper.dev) with our own httpx client: the FAQ stage's fallback.

::

    from pydantic import SecretStr
    from supportdesk.rag.serper import SerperWebSearch

    search = SerperWebSearch(api_key=SecretStr("..."), allowed_domains="help.nimbusnotes.example", top_k=5)
    out = search.run(query="I'm C-1001 (ana@example.com): nimbus notes export markdown")
    out["query"]                       # 'I'm (): nimbus notes export markdown site:help.nimbusnotes.example'
    out["links"]                       # ['https://help.nimbusnotes.example/...', ...]
    out["documents"][0].meta           # {'url': ..., 'title': ..., 'untrusted': True, 'rank': 1}

The trust boundary of the web fallback:

* **only the operator's domains**: the query carries ``site:`` terms for ``allowed_domains`` and every
  result whose link is not an http(s) URL on one of them (or a subdomain) is dropped, whatever the
  provider returns (:func:`supportdesk._domains.url_allowed`: look-alikes such as
  ``example.com.evil.io``, user-info tricks and other schemes are refused);
* **nothing personal leaves**: e-mail addresses, phone numbers, card numbers, IBANs, customer and
  invoice ids and long digit runs are removed from the query first
  (:func:`supportdesk._pii.scrub_search_query`); a query with nothing left is not sent;
* without an API key or without allowed domains the component returns no results and logs why
  once: it never opens a socket.

Results are untrusted third-party text (control and zero-width characters removed); prompts must
say so (see config/prompts_rag.yaml) and nothing of them reaches a customer verbatim (see
:mod:`supportdesk.rag.pipeline`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from haystack import Document, component
from pydantic import SecretStr

from supportdesk._domains import parse_domains, url_allowed
from supportdesk._pii import clean_text, scrub_search_query
from supportdesk._retry import RETRYABLE_STATUS, send_with_retries
from supportdesk.errors import ConfigError, WebSearchError

__all__ = ["SerperWebSearch"]

logger = logging.getLogger(__name__)

DEFAULT_URL = "https://google.serper.dev/search"
#: Why the component is off when it has no key (logged once, and put in the escalation reason).
DISABLED_REASON = "no Serper API key (set SERPER_API_KEY)"
#: Why the component is off when the operator allowed no domain.
NO_DOMAINS_REASON = "no web domains allowed (set SUPPORTDESK_WEB_ALLOWED_DOMAINS)"


@component
class SerperWebSearch:
    """Search the web with Serper's JSON API.

    :param api_key: the Serper key; ``None`` disables the component (empty results, no request).
    :param allowed_domains: the domains results may come from (a comma-separated string or a list;
        subdomains included); none disables the component. Invalid entries raise :class:`ConfigError`.
    :param url: the search endpoint.
    :param timeout_s: per-request timeout.
    :param max_retries: retries after 429, 5xx and transport timeouts/errors
        (:func:`supportdesk._retry.send_with_retries`: full-jitter backoff, Retry-After honoured, capped at 30 s).
    :param top_k: results asked for (``num``) and returned.
    :param backoff_s: base of the exponential backoff.
    :param client: an ``httpx.Client`` to use (tests inject one with ``httpx.MockTransport``).
    :param transport: an httpx transport for the client the component builds itself.
    :param sleep: the sleep function (tests inject a recorder).
    """

    def __init__(
        self,
        api_key: SecretStr | None = None,
        *,
        allowed_domains: str | Sequence[str] | None = None,
        url: str = DEFAULT_URL,
        timeout_s: float = 10.0,
        max_retries: int = 2,
        top_k: int = 5,
        backoff_s: float = 0.5,
        client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api_key = api_key
        try:
            self.allowed_domains = parse_domains(allowed_domains)
        except ValueError as exc:
            raise ConfigError(f"SerperWebSearch allowed_domains: {exc}") from exc
        self.url = url
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.top_k = top_k
        self.backoff_s = backoff_s
        self._client = client
        self._transport = transport
        self._sleep = sleep
        self._warned_disabled = False

    @property
    def disabled_reason(self) -> str | None:
        """Why the component sends nothing (no key, no allowed domain), or None when it is enabled."""
        if self.api_key is None or not self.api_key.get_secret_value().strip():
            return DISABLED_REASON
        if not self.allowed_domains:
            return NO_DOMAINS_REASON
        return None

    @property
    def enabled(self) -> bool:
        """True when an API key and at least one allowed domain are configured."""
        return self.disabled_reason is None

    def search_query(self, query: str) -> str:
        """What is sent for ``query``: the query without personal data, plus the ``site:`` terms
        (``""`` when nothing is left to search)."""
        scrubbed = scrub_search_query(query)
        if not scrubbed:
            return ""
        return " ".join([scrubbed, " OR ".join(f"site:{d}" for d in self.allowed_domains)])

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout_s, transport=self._transport)
        return self._client

    @component.output_types(documents=list[Document], links=list[str], query=str)
    def run(self, query: str) -> dict[str, Any]:
        """Search ``query`` (scrubbed, restricted to the allowed domains); ``query`` in the output is
        what was sent (``""``: nothing). Raises :class:`WebSearchError` when the provider fails for good."""
        reason = self.disabled_reason
        if reason is not None:
            if not self._warned_disabled:
                logger.warning("web search disabled: %s", reason)
                self._warned_disabled = True
            return {"documents": [], "links": [], "query": ""}
        sent = self.search_query(query)
        if not sent:
            logger.info("web search skipped: nothing left to search once personal data was removed")
            return {"documents": [], "links": [], "query": ""}
        body = self._request(sent)
        return {**self._parse(body), "query": sent}

    def _request(self, query: str) -> dict[str, Any]:
        assert self.api_key is not None
        headers = {"X-API-KEY": self.api_key.get_secret_value(), "Content-Type": "application/json"}
        payload = {"q": query, "num": self.top_k}
        attempts = self.max_retries + 1

        def send() -> httpx.Response:
            return self._http().post(self.url, json=payload, headers=headers, timeout=self.timeout_s)

        try:
            response = send_with_retries(send, max_retries=self.max_retries, sleep=self._sleep,
                                         base_delay=self.backoff_s)
        except httpx.TimeoutException as exc:
            raise WebSearchError(
                f"Serper failed after {attempts} attempts: timed out after {self.timeout_s:g}s") from exc
        except httpx.HTTPError as exc:  # connection refused, protocol errors ...
            raise WebSearchError(f"Serper failed: transport error {type(exc).__name__}") from exc
        status = response.status_code
        if status in (401, 403):
            raise WebSearchError(f"Serper rejected the API key (HTTP {status}): check SERPER_API_KEY")
        if status in RETRYABLE_STATUS:
            raise WebSearchError(f"Serper failed after {attempts} attempts (HTTP {status})")
        if status >= 400:
            raise WebSearchError(f"Serper refused the request (HTTP {status}): {response.text[:200]}")
        try:
            body = response.json()
        except (json.JSONDecodeError, ValueError) as exc:
            raise WebSearchError(f"Serper answered with malformed JSON: {response.text[:120]!r}") from exc
        if not isinstance(body, dict):
            raise WebSearchError("Serper answered with malformed JSON: expected an object")
        return body

    def _parse(self, body: dict[str, Any]) -> dict[str, Any]:
        organic = body.get("organic") or []
        if not isinstance(organic, list):
            raise WebSearchError("Serper answered with malformed JSON: 'organic' is not a list")
        documents: list[Document] = []
        links: list[str] = []
        dropped: list[str] = []
        for item in organic:
            if not isinstance(item, dict) or not item.get("link"):
                continue
            url = str(item["link"])
            if not url_allowed(url, self.allowed_domains):
                dropped.append(url[:120])
                continue
            title = " ".join(clean_text(str(item.get("title") or ""), keep_newlines=False).split())
            snippet = " ".join(clean_text(str(item.get("snippet") or ""), keep_newlines=False).split())
            documents.append(
                Document(
                    content=f"{title}\n{snippet}".strip(),
                    meta={"url": url, "title": title, "untrusted": True, "rank": len(documents) + 1},
                )
            )
            links.append(url)
            if len(documents) >= self.top_k:
                break
        if dropped:
            logger.info("web search: dropped %d result(s) outside the allowed domains: %s", len(dropped),
                        ", ".join(dropped[:5]))
        return {"documents": documents, "links": links}
