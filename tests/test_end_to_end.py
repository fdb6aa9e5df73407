"""The whole flow on the real embedded model (Gemma 3 270M via llama.cpp): FAQ hit, web fallback, ticket."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from supportdesk import handle_query
from supportdesk.flows.services import build_services
from supportdesk.models import TicketStatus
from supportdesk.rag.pipeline import build_faq_pipeline
from supportdesk.rag.serper import SerperWebSearch
from supportdesk.settings import Settings

pytestmark = pytest.mark.embedded

SERPER = json.loads((Path(__file__).parent / "rag" / "fixtures" / "serper_response.json").read_text())


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    """Default services (embedded model, local stores) with Serper answering from a recorded response."""
    settings = Settings(home=tmp_path_factory.mktemp("home"))
    services = build_services(settings)
    requests: list[httpx.Request] = []

    def serper(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json=SERPER)

    web = SerperWebSearch(SecretStr("test-key"), allowed_domains="nimbusnotes.example",
                          transport=httpx.MockTransport(serper))
    services.faq = build_faq_pipeline(settings, services.chat_model, kind="embedded", web_search=web)
    services.serper_requests = requests
    return settings, services


def test_faq_question_is_answered_from_the_faq(services, loopback_only):
    """'How do I reset my password?' is answered from the reset-password entry, offline."""
    settings, svc = services
    state = handle_query("How do I reset my password?", settings=settings, services=svc)
    assert state.status is TicketStatus.FAQ_ANSWERED and state.sources == ["reset-password"]


def test_web_fallback_answers_with_the_result_url(services, loopback_only):
    """A question outside the FAQ goes to the (recorded) web search, restricted to the allowed domain, and is
    answered with our sentence and the closest result's URL (never the result's text)."""
    settings, svc = services
    state = handle_query("How do I add a weather widget to a note?", settings=settings, services=svc)
    assert svc.serper_requests, "the web fallback was not tried"
    assert state.status is TicketStatus.FAQ_ANSWERED, state.failure_reason
    assert state.sources == ["https://help.nimbusnotes.example/articles/weather-widget"]
    assert "/weather" in state.faq_response and state.llm_calls == 0  # code picked the closest result


def test_double_charge_files_one_billing_ticket(services, loopback_only):
    """The double-charge refund request escalates and files one high-priority billing ticket for C-1001."""
    settings, svc = services
    query = "I was charged twice for my subscription this month and I want one payment refunded."
    state = handle_query(query, customer="maria.gonzalez@example.com", settings=settings, services=svc)
    assert state.status is TicketStatus.TICKET_CREATED, state.failure_reason
    assert (state.category, state.priority, state.customer_id) == ("billing", "high", "C-1001")
    assert state.ticket_title and "INV-5003" in state.final_summary
    assert state.llm_calls == 1 and state.completion_tokens > 0  # the real model wrote the title (code the rationale)
    assert svc.tickets.find_by_key(state.id).ticket_id == state.ticket_id
