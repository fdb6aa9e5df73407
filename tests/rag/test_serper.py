"""SerperWebSearch over httpx.MockTransport: parsing, retries (shared _retry helpers) and typed errors."""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import SecretStr

from supportdesk.errors import WebSearchError
from supportdesk.rag import SerperWebSearch


def test_parses_recorded_response_into_untrusted_ranked_documents(serper_ok):
    """Organic results become documents with url, title, rank and the untrusted flag; the request
    carries the key header and the query with num=top_k."""
    out = serper_ok.search(top_k=5).run(query="nimbus notes weather widget")
    assert out["links"] == [
        "https://help.nimbusnotes.example/articles/weather-widget",
        "https://community.nimbusnotes.example/t/embeds-and-widgets/4182",
        "https://weather.example.com/fr/paris",
    ]
    first = out["documents"][0]
    assert first.meta == {"url": out["links"][0], "title": "Add a weather widget to a note - Nimbus Notes Help Center",
                          "untrusted": True, "rank": 1}
    assert "Type /weather" in first.content
    (request,) = serper_ok.requests
    assert request.headers["X-API-KEY"] == "test-key"
    assert json.loads(request.content) == {"q": "nimbus notes weather widget", "num": 5}


def test_top_k_truncates_results(serper_ok):
    """No more than top_k documents come back."""
    assert len(serper_ok.search(top_k=2).run(query="q")["documents"]) == 2


def test_429_with_retry_after_then_200_sleeps_the_retry_after_value(serper_body, serper_stub):
    """A 429 with Retry-After: 3 is retried after sleeping exactly 3 seconds, then succeeds."""
    stub = serper_stub([httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(200, json=serper_body)])
    sleeps: list[float] = []
    out = stub.search(sleeps=sleeps).run(query="q")
    assert sleeps == [3.0]
    assert len(stub.requests) == 2 and len(out["documents"]) == 3


def test_5xx_then_success_is_retried(serper_body, serper_stub):
    """A 503 is retried once with a backoff sleep, and the second answer is used."""
    stub = serper_stub([httpx.Response(503), httpx.Response(200, json=serper_body)])
    sleeps: list[float] = []
    out = stub.search(sleeps=sleeps).run(query="q")
    assert len(sleeps) == 1 and 0.0 <= sleeps[0] <= 0.5
    assert out["links"][0].startswith("https://help.nimbusnotes.example")


def test_persistent_5xx_raises_after_all_attempts(serper_stub):
    """Server errors on every attempt end in WebSearchError naming the status, after max_retries + 1 tries."""
    stub = serper_stub([httpx.Response(500)])
    with pytest.raises(WebSearchError, match=r"3 attempts \(HTTP 500\)"):
        stub.search(max_retries=2).run(query="q")
    assert len(stub.requests) == 3


def test_401_raises_web_search_error_naming_the_status_without_retry(serper_stub):
    """A rejected key is not retried and the error names HTTP 401."""
    stub = serper_stub([httpx.Response(401, json={"message": "Unauthorized."})])
    with pytest.raises(WebSearchError, match="HTTP 401"):
        stub.search().run(query="q")
    assert len(stub.requests) == 1


def test_malformed_json_raises_web_search_error(serper_stub):
    """A 200 whose body is not JSON (or not an object) is a WebSearchError, not a crash."""
    with pytest.raises(WebSearchError, match="malformed JSON"):
        serper_stub([httpx.Response(200, text="<html>oops</html>")]).search().run(query="q")
    with pytest.raises(WebSearchError, match="malformed JSON"):
        serper_stub([httpx.Response(200, json=[1, 2])]).search().run(query="q")
    with pytest.raises(WebSearchError, match="'organic' is not a list"):
        serper_stub([httpx.Response(200, json={"organic": "x"})]).search().run(query="q")


def test_timeouts_exhausted_raise_web_search_error(serper_stub):
    """Timeouts on every attempt are retried, then end in WebSearchError mentioning the timeout."""
    stub = serper_stub([httpx.ReadTimeout("slow")])
    sleeps: list[float] = []
    with pytest.raises(WebSearchError, match="timed out"):
        stub.search(sleeps=sleeps, max_retries=2, timeout_s=1.5).run(query="q")
    assert len(stub.requests) == 3 and len(sleeps) == 2


def test_no_key_returns_nothing_and_sends_nothing(monkeypatch):
    """Without a key (or with a blank one) the component is disabled and never sends a request."""
    sent: list[httpx.Request] = []
    monkeypatch.setattr(httpx.Client, "send", lambda self, request, **kw: sent.append(request))
    for key in (None, SecretStr("  ")):
        search = SerperWebSearch(api_key=key)
        assert not search.enabled
        assert search.run(query="q") == {"documents": [], "links": []}
    assert sent == []
