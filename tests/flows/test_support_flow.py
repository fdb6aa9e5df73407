"""SupportFlow end to end with real RAG, crew and ticket store around a scripted model."""

from __future__ import annotations

import asyncio

import pytest

from supportdesk import ahandle_query, handle_query
from supportdesk.errors import InvalidQueryError
from supportdesk.models import CustomerTicketState, TicketStatus
from tests.flows.conftest import CLASSIFY, DOUBLE_CHARGE, PASSWORD, TITLE


def test_faq_hit_answers_without_llm_or_ticket(make_services, settings):
    """An FAQ question is answered from its entry: status faq_answered, no model call, no ticket."""
    services, model = make_services([])
    state = handle_query(PASSWORD, settings=settings, services=services)
    assert state.status is TicketStatus.FAQ_ANSWERED
    assert state.sources == ["reset-password"] and "Forgot password" in state.faq_response
    assert state.ticket_id is None and model.calls == [] and services.tickets.list_tickets() == []
    assert state.route_trace == ["intake", "answered"]


def test_escalation_files_exactly_one_ticket_keyed_by_run_id(make_services, settings):
    """An account-specific request escalates, is triaged billing/high and files one ticket keyed by the run id."""
    services, model = make_services([CLASSIFY, TITLE])
    state = handle_query(DOUBLE_CHARGE, customer="maria.gonzalez@example.com", run_id="run-42", settings=settings, services=services)
    assert state.status is TicketStatus.TICKET_CREATED and state.id == "run-42"
    assert (state.category, state.priority, state.customer_id) == ("billing", "high", "C-1001")
    assert state.ticket_title == TITLE["title"] and "INV-5003" in state.final_summary
    tickets = services.tickets.list_tickets()
    assert len(tickets) == 1 and services.tickets.find_by_key("run-42").ticket_id == state.ticket_id
    assert state.llm_calls == len(model.calls) == 2 and state.prompt_tokens > 0


def test_same_run_id_twice_yields_one_ticket(make_services, settings):
    """Re-running a run id files no second ticket: the backend finds the existing one."""
    services, _ = make_services([CLASSIFY, TITLE, CLASSIFY, TITLE])
    first = handle_query(DOUBLE_CHARGE, run_id="run-7", settings=settings, services=services)
    second = handle_query(DOUBLE_CHARGE, run_id="run-7", settings=settings, services=services)
    assert first.ticket_id == second.ticket_id and len(services.tickets.list_tickets()) == 1


def test_invalid_model_output_fails_the_run_with_reason_and_no_ticket(make_services, settings):
    """Garbage from the model on every attempt ends in status failed with the reason; no ticket is filed."""
    services, _ = make_services(["garbage"] * 10)
    state = handle_query(DOUBLE_CHARGE, settings=settings, services=services)
    assert state.status is TicketStatus.FAILED and "OutputValidationError" in state.failure_reason
    assert state.ticket_id is None and services.tickets.list_tickets() == []


def test_async_entry_point_returns_the_final_state(make_services, settings):
    """ahandle_query runs the same flow and returns the final state."""
    services, _ = make_services([])
    state = asyncio.run(ahandle_query(PASSWORD, settings=settings, services=services))
    assert state.status is TicketStatus.FAQ_ANSWERED


@pytest.mark.parametrize("query", ["", "   ", "x" * 9000, b"\xff\xfe"])
def test_bad_input_raises_before_anything_runs(make_services, settings, query):
    """Invalid input raises InvalidQueryError without calling any collaborator."""
    services, model = make_services([])
    with pytest.raises(InvalidQueryError):
        handle_query(query, settings=settings, services=services)
    assert model.calls == [] and services.tickets.list_tickets() == []


def test_final_state_survives_a_json_round_trip(make_services, settings):
    """The final state serialises to JSON and back unchanged."""
    services, _ = make_services([CLASSIFY, TITLE])
    state = handle_query(DOUBLE_CHARGE, settings=settings, services=services)
    assert CustomerTicketState.model_validate_json(state.model_dump_json()) == state


def test_full_run_opens_no_socket_outside_loopback(make_services, settings, loopback_only):
    """A default-configured run (no keys) connects to nothing outside loopback, telemetry included."""
    services, _ = make_services([CLASSIFY, TITLE])
    handle_query(PASSWORD, settings=settings, services=services)
    handle_query(DOUBLE_CHARGE, settings=settings, services=services)
    assert all(str(a[0]).startswith("127.") or a[0] == "::1" for a in loopback_only if isinstance(a, tuple))
