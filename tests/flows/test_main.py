"""The crewai project entry points: kickoff runs the flow, run_with_trigger hands CrewAI's
crewai_trigger_payload to the flow's start step."""

from __future__ import annotations

import json
import sys

import pytest

from supportdesk.flows import main as flow_main
from supportdesk.models import CustomerTicketState, TicketStatus


def _exit_code(func) -> int:
    with pytest.raises(SystemExit) as caught:
        func()
    return caught.value.code


def test_run_with_trigger_passes_the_payload_to_the_start_step(monkeypatch, capsys):
    """The payload's query and run id start the run; intake receives the payload (its keys are in the progress)."""
    payload = {"query": "How can I change my password?", "run_id": "trig-1", "source": "webhook"}
    monkeypatch.setattr(sys, "argv", ["run_with_trigger", json.dumps(payload)])
    assert _exit_code(flow_main.run_with_trigger) == 0
    out, err = capsys.readouterr()
    state = CustomerTicketState.model_validate_json(out)
    assert state.id == "trig-1" and state.status is TicketStatus.FAQ_ANSWERED
    assert "intake: run trig-1 (trigger payload: query, run_id, source)" in err


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", '{"no_query": 1}', '{"query": 5}'])
def test_run_with_trigger_rejects_a_bad_payload(monkeypatch, raw):
    """A payload that is not a JSON object with a string query stops with a message, running nothing."""
    monkeypatch.setattr(sys, "argv", ["run_with_trigger", raw])
    code = _exit_code(flow_main.run_with_trigger)
    assert isinstance(code, str) and code.startswith("invalid trigger payload")


def test_kickoff_runs_the_flow_for_the_given_query(monkeypatch, capsys):
    """`kickoff QUERY` runs the flow once and prints its final state (plain text when piped)."""
    monkeypatch.setattr(sys, "argv", ["kickoff", "How", "can", "I", "change", "my", "password?"])
    assert _exit_code(flow_main.kickoff) == 0
    out, err = capsys.readouterr()
    assert "Status:    faq_answered" in out and "» intake: run" in err and "trigger payload" not in err
