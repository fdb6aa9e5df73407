"""Web search through Serper (google.serper.dev) with our own httpx client: the FAQ stage's fallback.

::

    from pydantic import SecretStr
    from supportdesk.rag.serper import SerperWebSearch

    search = SerperWebSearch(api_key=SecretStr("..."), top_k=5)
    out = search.run(query="nimbus notes export markdown")
    out["links"]                       # ['https://...', ...]
    out["documents"][0].meta           # {'url': ..., 'title': ..., 'untrusted': True, 'rank': 1}

Without an API key the component returns no results and logs why once: it never opens a socket.
Results are untrusted third-party text; prompts must say so (see config/prompts_rag.yaml).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
from haystack import Document, component
from pydantic import SecretStr

from supportdesk._retry import RETRYABLE_STATUS, send_with_retries
from supportdesk.errors import WebSearchError

__all__ = ["SerperWebSearch"]

logger = logging.getLogger(__name__)

DEFAULT_URL = "https://google.serper.dev/search"
#: Why the component is off when it has no key (logged once, and put in the escalation reason).
DISABLED_REASON = "no Serper API key (set SERPER_API_KEY)"


@component
class SerperWebSearch:
    """Search the web with Serper's JSON API.

    :param api_key: the Serper key; ``None`` disables the component (empty results, no request).
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
    def enabled(self) -> bool:
        """True when a non-empty API key is configured."""
        return self.api_key is not None and bool(self.api_key.get_secret_value().strip())

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout_s, transport=self._transport)
        return self._client

    @component.output_types(documents=list[Document], links=list[str])
    def run(self, query: str) -> dict[str, Any]:
        """Search ``query``. Raises :class:`WebSearchError` when the provider fails for good."""
        if not self.enabled:
            if not self._warned_disabled:
                logger.warning("web search disabled: %s", DISABLED_REASON)
                self._warned_disabled = True
            return {"documents": [], "links": []}
        body = self._request(query)
        return self._parse(body)

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
        for item in organic:
            if not isinstance(item, dict) or not item.get("link"):
                continue
            url = str(item["link"])
            title = str(item.get("title") or "")
            snippet = str(item.get("snippet") or "")
            documents.append(
                Document(
                    content=f"{title}\n{snippet}".strip(),
                    meta={"url": url, "title": title, "untrusted": True, "rank": len(documents) + 1},
                )
            )
            links.append(url)
            if len(documents) >= self.top_k:
                break
        return {"documents": documents, "links": links}
