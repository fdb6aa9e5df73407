"""How the CLI shows things: Rich tables and colours on a terminal, the same facts as plain text when piped.

``--json`` output never comes through here. Rich decides what a terminal is (``isatty``, ``NO_COLOR``,
``FORCE_COLOR``, ``TERM=dumb``); piped output is the plain text scripts and tests read::

    from supportdesk._console import Output, StepDisplay

    out = Output()                                   # stdout
    out.state(state)                                 # a key/value table, coloured status
    out.table(["Run id", "Status"], [["r1", "completed"]], status_column=1)
    with StepDisplay() as steps:                     # stderr: a live spinner line on a terminal
        run_query("...", on_step=steps.update)       # '» step: message' lines when piped
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from types import TracebackType
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from supportdesk.models import CustomerTicketState, TicketStatus

__all__ = ["STATUS_STYLES", "CaseProgress", "Output", "StepDisplay", "state_rows"]

#: Colour of each status (run statuses and ticket states alike).
STATUS_STYLES = {
    "faq_answered": "bold green",
    "ticket_created": "bold cyan",
    "completed": "green",
    "escalated": "yellow",
    "awaiting_approval": "bold yellow",
    "running": "blue",
    "new": "blue",
    "rejected": "magenta",
    "needs_reconcile": "bold red",
    "failed": "bold red",
    "high": "red",
    "medium": "yellow",
    "low": "green",
}


def state_rows(state: CustomerTicketState) -> list[tuple[str, str]]:
    """The facts shown for a run's final state, as (label, value); empty values left out."""
    rows: list[tuple[str, str | None]] = [("Status", state.status.value), ("Run id", state.id)]
    if state.status is TicketStatus.FAQ_ANSWERED:
        rows += [("Answer", state.faq_response), ("Sources", ", ".join(state.sources))]
    elif state.status is TicketStatus.TICKET_CREATED:
        rows += [
            ("Ticket", f"{state.ticket_id}" + (f"  {state.ticket_url}" if state.ticket_url else "")),
            ("Category", state.category),
            ("Priority", state.priority),
            ("Customer", state.customer_id or "unverified"),
            ("Title", state.ticket_title),
            ("Summary", state.final_summary),
        ]
    elif state.status is TicketStatus.AWAITING_APPROVAL and state.approval is not None:
        rows += [
            ("Waiting", f"for approval ({', '.join(state.approval.rules)}) until {state.approval.deadline or 'decided'}"
                        f", then {state.approval.on_timeout}"),
            ("Category", state.category),
            ("Priority", state.priority),
            ("Title", state.ticket_title),
            ("Summary", state.final_summary),
        ]
    else:
        rows += [("Reason", state.failure_reason)]
    rows.append(("LLM calls", f"{state.llm_calls} ({state.prompt_tokens} prompt + {state.completion_tokens} completion tokens)"))
    return [(label, str(value)) for label, value in rows if value]


def _styled(value: Any) -> Text:
    text = "" if value is None else str(value)
    return Text(text, style=STATUS_STYLES.get(text, ""))


class Output:
    """The CLI's result stream (stdout by default)."""

    def __init__(self, file: TextIO | None = None) -> None:
        self.file = file if file is not None else sys.stdout
        self.console = Console(file=self.file, soft_wrap=False, highlight=False)

    @property
    def rich(self) -> bool:
        """True on a terminal: tables and colours."""
        return self.console.is_terminal

    def line(self, text: str) -> None:
        print(text, file=self.file)

    def state(self, state: CustomerTicketState, title: str | None = None) -> None:
        """A run's state: a two-column table on a terminal, ``Label:    value`` lines when piped."""
        rows = state_rows(state)
        if not self.rich:
            for label, value in rows:
                print(f"{label + ':':<11}{value}", file=self.file)
            return
        table = Table(show_header=False, box=None, title=title, title_justify="left", pad_edge=False)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for label, value in rows:
            table.add_row(label, _styled(value) if label in ("Status", "Priority") else Text(value))
        self.console.print(table)

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str | None = None,
              status_columns: Sequence[int] = (), empty: str = "none", plain: Sequence[str] | None = None) -> None:
        """Rows under headers: a Rich table on a terminal; when piped, the ``plain`` lines (default: one
        line a row, columns joined by two spaces, no header) so scripts can cut fields."""
        if not rows:
            self.line(empty)
            return
        if not self.rich:
            lines = plain if plain is not None else ["  ".join("" if v is None else str(v) for v in r) for r in rows]
            for text in lines:
                print(text.rstrip(), file=self.file)
            return
        table = Table(title=title, title_justify="left", header_style="bold")
        for header in headers:
            table.add_column(header, overflow="fold")
        for row in rows:
            table.add_row(*[_styled(v) if i in status_columns else Text("" if v is None else str(v))
                            for i, v in enumerate(row)])
        self.console.print(table)


class StepDisplay:
    """Progress of a run on stderr: a live spinner with the current step on a terminal (finished
    steps printed above it, ticked); ``» step: message`` lines when stderr is not a terminal."""

    def __init__(self, file: TextIO | None = None) -> None:
        self.console = Console(file=file if file is not None else sys.stderr, highlight=False)
        self._status: Any = None

    def __enter__(self) -> StepDisplay:
        if self.console.is_terminal:
            self._status = self.console.status("starting", spinner="dots")
            self._status.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def update(self, step: str, message: str) -> None:
        """The ``on_step`` callback of a run."""
        if self._status is None:
            print(f"» {step}: {message}", file=self.console.file, flush=True)
            return
        self.console.print(Text.assemble(("✓ ", "green"), (step, "bold"), f": {message}"))
        self._status.update(Text.assemble((step, "bold cyan"), f": {message}"))


class CaseProgress:
    """A progress bar on stderr for an evaluation: ``progress(i, n, result)`` is run_eval's hook.

    On a terminal a Rich bar (done/total, elapsed, remaining); piped, one line at every tenth of the
    cases (and the last), so a long run stays readable in a log.
    """

    def __init__(self, label: str, file: TextIO | None = None) -> None:
        self.label = label
        self.console = Console(file=file if file is not None else sys.stderr, highlight=False)
        self._bar: Any = None
        self._task: Any = None
        self._last_tenth = -1

    def __enter__(self) -> CaseProgress:
        if self.console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=False)
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> CaseProgress:
        return self.__enter__()

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __call__(self, index: int, total: int, result: Any = None) -> None:
        if self._bar is not None:
            if self._task is None:
                self._task = self._bar.add_task(self.label, total=total)
            self._bar.update(self._task, completed=index)
            return
        tenth = index * 10 // max(total, 1)
        if tenth != self._last_tenth or index == total:
            self._last_tenth = tenth
            latency = getattr(result, "latency_s", None)
            extra = f"  last case {latency:.2f}s" if isinstance(latency, (int, float)) else ""
            print(f"{self.label}: [{index}/{total}]{extra}", file=self.console.file, flush=True)
