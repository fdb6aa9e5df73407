"""The supportdesk command: output contract, exit codes and one-line errors."""

from __future__ import annotations

import io
import json
import sys

import pytest

from supportdesk.cli import main
from supportdesk.models import CustomerTicketState, TicketStatus


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_ask_json_prints_exactly_one_state_object(capsys):
    """`ask --json` prints one CustomerTicketState JSON object on stdout; progress goes to stderr."""
    code, out, err = _run(capsys, "ask", "How do I reset my password?", "--json", "--run-id", "cli-1")
    state = CustomerTicketState.model_validate_json(out)
    assert code == 0 and state.status is TicketStatus.FAQ_ANSWERED and state.id == "cli-1"
    assert out.count("\n") == 1 and "answer_from_faq" in err


def test_readable_output_and_stored_result_on_repeat(capsys):
    """Without --json the state is printed readably; asking again with a finished run id returns the stored result."""
    code, out, _ = _run(capsys, "ask", "How do I reset my password?", "--run-id", "cli-2")
    assert code == 0 and "Status:    faq_answered" in out and "Sources:   reset-password" in out
    code, again, err = _run(capsys, "ask", "How do I reset my password?", "--run-id", "cli-2")
    assert code == 0 and again == out and "answer_from_faq" not in err  # nothing ran the second time


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ask", ""], "query is empty"),
        (["ask", "   "], "query is empty"),
        (["ask", "x" * 8001], "limit is 8000"),
        (["ask", "hi", "--customer", " "], "--customer is empty"),
        (["resume", "no-such-run"], "no run with id"),
        (["show", "no-such-run"], "no run with id"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(capsys, argv, message):
    """Bad input fails with exit code 2 and a one-line error naming the problem; no run is recorded."""
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out == "" and message in err and err.count("\n") == 1
    assert _run(capsys, "runs", "--json")[1].strip() in ("[]", "")


def test_binary_stdin_is_rejected(capsys, monkeypatch):
    """A query read from stdin that is not UTF-8 text is rejected with exit code 2."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\x89PNG\r\n\x1a\n\x00\x00")))
    code, _, err = _run(capsys, "ask", "-")
    assert code == 2 and "not valid UTF-8" in err


def test_broken_yaml_config_fails_before_anything_is_written(capsys, monkeypatch, tmp_path):
    """A broken YAML override names the file and line, exits 2, and records no run and no ticket."""
    (tmp_path / "faq.yaml").write_text("entries:\n  - id: a\n    question: [unclosed\n", encoding="utf-8")
    monkeypatch.setenv("SUPPORTDESK_CONFIG_DIR", str(tmp_path))
    code, out, err = _run(capsys, "ask", "How do I reset my password?")
    assert code == 2 and "broken YAML" in err and "faq.yaml" in err and err.count("\n") == 1
    monkeypatch.delenv("SUPPORTDESK_CONFIG_DIR")
    assert json.loads(_run(capsys, "runs", "--json")[1]) == []
    assert json.loads(_run(capsys, "tickets", "--json")[1]) == []


def test_runs_and_show_list_the_run_and_its_audit_trail(capsys):
    """`runs` lists a finished run; `show --json` returns its state and an audit trail with every step."""
    _run(capsys, "ask", "How do I reset my password?", "--run-id", "cli-3")
    runs = json.loads(_run(capsys, "runs", "--json")[1])
    assert [(r["run_id"], r["status"]) for r in runs] == [("cli-3", "completed")]
    shown = json.loads(_run(capsys, "show", "cli-3", "--json")[1])
    steps = [e["step"] for e in shown["audit"] if e["kind"] == "step_end"]
    assert shown["state"]["status"] == "faq_answered" and steps == ["intake", "answer_from_faq", "close_answered"]


def test_unknown_model_setting_is_a_config_error(capsys, monkeypatch):
    """A malformed SUPPORTDESK_LLM is reported in one line with exit code 2."""
    monkeypatch.setenv("SUPPORTDESK_LLM", "gpt-5")
    code, _, err = _run(capsys, "ask", "hello")
    assert code == 2 and "SUPPORTDESK_LLM" in err
