"""JSON logs (supportdesk/_logs.py): every record carries the run id and step; embedded, nothing is installed."""

from __future__ import annotations

import io
import json
import logging

from supportdesk import _tracing
from supportdesk._logs import JsonFormatter, RunContextFilter
from supportdesk.cli import main


def _handler(buf: io.StringIO) -> logging.Handler:
    handler = logging.StreamHandler(buf)
    handler.addFilter(RunContextFilter())
    handler.setFormatter(JsonFormatter())
    return handler


def test_json_records_carry_run_id_and_step():
    """Inside a run's step a record has its run id and step; outside, '-'."""
    buf = io.StringIO()
    log = logging.getLogger("supportdesk.test_logs")
    log.addHandler(handler := _handler(buf))
    log.setLevel(logging.INFO)
    try:
        log.info("before")
        with _tracing.run_scope("run-7"), _tracing.step_scope("triage"):
            log.info("inside %s", "the step")
    finally:
        log.removeHandler(handler)
    before, inside = (json.loads(line) for line in buf.getvalue().splitlines())
    assert (before["run_id"], before["step"]) == ("-", "-")
    assert inside["run_id"] == "run-7" and inside["step"] == "triage" and inside["message"] == "inside the step"
    assert set(inside) == {"ts", "level", "logger", "message", "run_id", "step"}


def test_cli_json_logs_have_run_id_and_step(monkeypatch, capsys):
    """`SUPPORTDESK_LOG_FORMAT=json supportdesk -v ask` writes JSON lines with the run id and step on stderr."""
    monkeypatch.setenv("SUPPORTDESK_LOG_FORMAT", "json")
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = []
    try:
        assert main(["-v", "ask", "How can I change my password?", "--run-id", "logs-1", "--json"]) == 0
    finally:
        for handler in root.handlers:
            root.removeHandler(handler)
        root.handlers = saved
    err = capsys.readouterr().err
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    in_run = [r for r in records if r["run_id"] == "logs-1"]
    assert in_run and {r["step"] for r in in_run} >= {"answer_from_faq"}


def test_importing_supportdesk_adds_no_root_handler():
    """Embedded use configures nothing on the host's root logger (checked in a fresh interpreter)."""
    import subprocess
    import sys

    code = "import logging, supportdesk; from supportdesk import _logs; print(len(logging.getLogger().handlers))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "0"
