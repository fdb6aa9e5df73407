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
    carries the key header and the query, restricted to the allowed domains, with num=top_k."""
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
    assert json.loads(request.content) == {
        "q": "nimbus notes weather widget site:nimbusnotes.example OR site:weather.example.com", "num": 5}


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
        assert search.run(query="q") == {"documents": [], "links": [], "query": ""}
    assert sent == []


# -- the trust boundary: allowed domains and personal data ---------------------------------------

def _organic(*links: str) -> dict:
    return {"organic": [{"title": f"t{i}", "link": link, "snippet": "Export notes as Markdown from the menu."}
                        for i, link in enumerate(links)]}


def test_no_allowed_domain_disables_the_search_with_a_reason(monkeypatch, caplog):
    """A key but no allowed domain: disabled, the reason names SUPPORTDESK_WEB_ALLOWED_DOMAINS, nothing is sent."""
    sent: list[httpx.Request] = []
    monkeypatch.setattr(httpx.Client, "send", lambda self, request, **kw: sent.append(request))
    search = SerperWebSearch(api_key=SecretStr("k"))
    assert not search.enabled and "SUPPORTDESK_WEB_ALLOWED_DOMAINS" in search.disabled_reason
    with caplog.at_level("WARNING", logger="supportdesk.rag.serper"):
        assert search.run(query="export markdown")["documents"] == []
    assert sent == [] and "SUPPORTDESK_WEB_ALLOWED_DOMAINS" in caplog.text


def test_results_outside_the_allowed_domains_are_dropped_whatever_the_provider_returns(serper_stub):
    """Only http(s) links on an allowed domain or its subdomain survive: look-alikes, user-info tricks,
    backslashes, other schemes, ports and IP hosts are dropped."""
    good = ["https://help.nimbusnotes.example/a", "http://kb.help.nimbusnotes.example/b",
            "https://HELP.NIMBUSNOTES.EXAMPLE./c"]
    bad = ["https://help.nimbusnotes.example.evil.io/x", "https://evilnimbusnotes.example/x",
           "https://help.nimbusnotes.example@evil.io/x", "https://evil.io\\@help.nimbusnotes.example/x",
           "javascript:alert(1)//help.nimbusnotes.example", "ftp://help.nimbusnotes.example/x",
           "https://help.nimbusnotes.example:8443/x", "https://127.0.0.1/help.nimbusnotes.example",
           "https://hеlp.nimbusnotes.example/x", "data:text/html,help.nimbusnotes.example",
           "https://help.nimbusnotes.example%2eevil.io/x", "//help.nimbusnotes.example/x"]
    stub = serper_stub([httpx.Response(200, json=_organic(*bad[:6], *good, *bad[6:]))])
    out = stub.search(allowed_domains="help.nimbusnotes.example", top_k=10).run(query="export")
    assert out["links"] == good
    assert [d.meta["rank"] for d in out["documents"]] == [1, 2, 3]


def test_query_carries_site_terms_and_no_personal_data(serper_stub):
    """The query sent has the site: terms of every allowed domain and none of the customer's e-mail,
    phone, card, IBAN or customer/invoice ids; the output says what was sent."""
    stub = serper_stub([httpx.Response(200, json=_organic("https://docs.example.org/a"))])
    search = stub.search(allowed_domains=["help.nimbusnotes.example", "docs.example.org"])
    query = ("I'm C-1001, maria.gonzalez@example.com, +34 612 345 678, card 4111 1111 1111 1111, "
             "IBAN DE89 3704 0044 0532 0130 00, invoice INV-5003: how do I export notes to Markdown?")
    out = search.run(query=query)
    sent = json.loads(stub.requests[0].content)["q"]
    assert sent == out["query"]
    assert sent.endswith("site:help.nimbusnotes.example OR site:docs.example.org")
    assert "export notes to Markdown" in sent
    for secret in ("C-1001", "maria", "612", "4111", "1111", "DE89", "3704", "INV-5003", "5003"):
        assert secret not in sent


def test_query_of_only_personal_data_is_not_sent(serper_stub):
    """A query that is nothing but personal data sends no request at all."""
    stub = serper_stub([httpx.Response(200, json=_organic("https://docs.example.org/a"))])
    out = stub.search(allowed_domains="docs.example.org").run(query="jane@example.com +44 20 7946 0958 C-1001")
    assert out == {"documents": [], "links": [], "query": ""} and stub.requests == []


def test_result_text_is_cleaned_of_invisible_characters(serper_stub):
    """Zero-width, bidi-override and control characters in titles and snippets are removed."""
    body = {"organic": [{"title": "Ex\u200bport\u202e", "link": "https://docs.example.org/a",
                         "snippet": "Use\x07 File\u2060 > Export\ufeff."}]}
    out = serper_stub([httpx.Response(200, json=body)]).search(allowed_domains="docs.example.org").run(query="q")
    assert out["documents"][0].content == "Export\nUse File > Export."


@pytest.mark.parametrize("entry", ["com", "https://docs.example.org", "docs.example.org/path", "1.2.3.4", "a..b"])
def test_invalid_allowed_domain_is_a_config_error(entry):
    """An allow-list entry that is not a host name of two labels or more is refused at construction."""
    from supportdesk.errors import ConfigError

    with pytest.raises(ConfigError, match="allowed_domains"):
        SerperWebSearch(api_key=SecretStr("k"), allowed_domains=entry)
