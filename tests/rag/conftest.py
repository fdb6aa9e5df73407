"""Fixtures of the RAG tests: one cache folder per session (MiniLM embeddings, head and calibration
are computed once), the real shipped-FAQ pipeline per module, and a Serper stub on httpx.MockTransport."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from supportdesk.llm import ScriptedModel
from supportdesk.rag import FAQPipeline, KnowledgeBase, SerperWebSearch, load_rag_policy

FIXTURES = Path(__file__).parent / "fixtures"
#: The domains of the recorded Serper response (fixtures/serper_response.json).
FIXTURE_DOMAINS = ("nimbusnotes.example", "weather.example.com")


@pytest.fixture(scope="session")
def rag_home(tmp_path_factory) -> Path:
    """A supportdesk home shared by the session, so the RAG caches are computed once."""
    return tmp_path_factory.mktemp("rag-home")


@pytest.fixture(scope="session")
def serper_body() -> dict[str, Any]:
    """The recorded Serper response (tests/rag/fixtures/serper_response.json)."""
    return json.loads((FIXTURES / "serper_response.json").read_text(encoding="utf-8"))


class SerperStub:
    """An httpx.MockTransport handler that answers from a list and records every request."""

    def __init__(self, responses: list[httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]]):
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]
        if isinstance(reply, Exception):
            raise reply
        if callable(reply):
            return reply(request)
        return reply

    def search(self, *, sleeps: list[float] | None = None, **kwargs: Any) -> SerperWebSearch:
        """A SerperWebSearch with a key, the recorded response's domains allowed (unless
        ``allowed_domains=`` says otherwise), this stub as transport and a recording sleep."""
        record = sleeps if sleeps is not None else []
        kwargs.setdefault("allowed_domains", FIXTURE_DOMAINS)
        return SerperWebSearch(api_key=SecretStr("test-key"), transport=httpx.MockTransport(self),
                               sleep=record.append, **kwargs)


@pytest.fixture
def serper_ok(serper_body) -> SerperStub:
    """Serper answering 200 with the recorded response."""
    return SerperStub([httpx.Response(200, json=serper_body)])


@pytest.fixture
def make_pipeline(rag_home) -> Callable[..., FAQPipeline]:
    """Build an FAQPipeline on the shipped FAQ with the session's caches (fast after the first build)."""

    def build(model: ScriptedModel, web_search: SerperWebSearch | None = None, policy: str = "embedded",
              **overrides: Any) -> FAQPipeline:
        return FAQPipeline(KnowledgeBase.from_config(), model, web_search,
                           {**load_rag_policy(policy), **overrides}, cache_dir=rag_home / "cache")

    return build


@pytest.fixture(scope="module")
def shipped_pipeline(rag_home) -> FAQPipeline:
    """The real shipped-FAQ pipeline (embedded policy, no web search, no LLM answers scripted)."""
    return FAQPipeline(KnowledgeBase.from_config(), ScriptedModel([]), None, load_rag_policy("embedded"),
                       cache_dir=rag_home / "cache")


@pytest.fixture
def serper_stub() -> type[SerperStub]:
    """The SerperStub class: ``serper_stub([httpx.Response(...), ...]).search()``."""
    return SerperStub
