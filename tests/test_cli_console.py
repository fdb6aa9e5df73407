"""CLI rendering (supportdesk/_console.py): Rich tables with headers and coloured status on a terminal,
plain lines when piped, a live step display on stderr."""

from __future__ import annotations

import io

from rich.console import Console

from supportdesk._console import Output, StepDisplay
from supportdesk.models import CustomerTicketState, TicketStatus


def _terminal(out: Output) -> io.StringIO:
    buf = io.StringIO()
    out.console = Console(file=buf, force_terminal=True, color_system="standard", width=120)
    out.file = buf
    return buf


def _state() -> CustomerTicketState:
    return CustomerTicketState(id="r-1", status=TicketStatus.FAQ_ANSWERED, faq_response="Use Forgot password.",
                               sources=["reset-password"])


def test_piped_state_is_plain_label_lines():
    """Not a terminal: `Label:    value` lines, no escape codes."""
    buf = io.StringIO()
    Output(buf).state(_state())
    text = buf.getvalue()
    assert "Status:    faq_answered\n" in text and "Sources:   reset-password\n" in text and "\x1b[" not in text


def test_terminal_table_has_headers_and_coloured_status():
    """On a terminal: a table whose header row names the columns, the status cell coloured."""
    out = Output()
    buf = _terminal(out)
    out.table(["Run id", "Status"], [["r-1", "completed"], ["r-2", "failed"]], status_columns=[1], plain=["x"])
    text = buf.getvalue()
    assert "Run id" in text and "Status" in text and "r-2" in text
    assert "\x1b[32mcompleted" in text and "\x1b[1;31mfailed" in text  # green, bold red


def test_piped_table_uses_the_plain_lines_and_empty_message():
    """When piped the caller's plain lines are printed (no header); no rows prints the empty message."""
    buf = io.StringIO()
    Output(buf).table(["A"], [["1"]], plain=["one line"])
    Output(buf).table(["A"], [], empty="no runs")
    assert buf.getvalue() == "one line\nno runs\n"


def test_step_display_plain_when_stderr_is_piped():
    """Steps on a non-terminal stderr are `» step: message` lines."""
    buf = io.StringIO()
    with StepDisplay(buf) as steps:
        steps.update("intake", "run r-1")
        steps.update("answer_from_faq", "answered")
    assert buf.getvalue() == "» intake: run r-1\n» answer_from_faq: answered\n"


def test_step_display_live_on_a_terminal():
    """On a terminal each finished step is printed ticked while a spinner shows the current one."""
    buf = io.StringIO()
    display = StepDisplay(buf)
    display.console = Console(file=buf, force_terminal=True, width=100)
    with display as steps:
        steps.update("intake", "run r-1")
    assert "✓" in buf.getvalue() and "intake" in buf.getvalue()


def test_case_progress_prints_tenths_when_piped():
    """Piped, the eval progress prints at each tenth of the cases and at the last one, not every case."""
    from supportdesk._console import CaseProgress

    buf = io.StringIO()
    with CaseProgress("eval rag", buf) as progress:
        for i in range(1, 101):
            progress(i, 100, None)
    lines = buf.getvalue().splitlines()
    assert len(lines) == 11 and lines[0] == "eval rag: [1/100]" and lines[-1] == "eval rag: [100/100]"


def test_case_progress_draws_a_bar_on_a_terminal():
    """On a terminal the eval progress is a Rich bar showing done/total."""
    from supportdesk._console import CaseProgress

    buf = io.StringIO()
    progress = CaseProgress("eval flow", buf)
    progress.console = Console(file=buf, force_terminal=True, width=100)
    with progress:
        progress(3, 3, None)
    assert "3/3" in buf.getvalue() and "eval flow" in buf.getvalue()
