"""The ``supportdesk`` command.

``supportdesk ask "QUERY" [--customer EMAIL_OR_ID] [--run-id ID] [--json]``  run one query
``supportdesk tickets [--json]``                                           list filed tickets

Exit codes: 0 answered or ticketed; 1 the run failed (reason printed); 2 bad input or configuration.
Progress goes to stderr; stdout carries only the result (one JSON object with ``--json``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from supportdesk.errors import SupportdeskError
from supportdesk.models import CustomerTicketState, TicketStatus

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="supportdesk", description="First-line customer support, offline by default.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    ask = sub.add_parser("ask", help="answer a customer query or file a ticket")
    ask.add_argument("query", help="the customer's message; '-' reads it from stdin")
    ask.add_argument("--customer", help="customer e-mail or id, if known")
    ask.add_argument("--run-id", help="a stable id for this run (default: generated)")
    ask.add_argument("--json", action="store_true", help="print the final state as one JSON object")

    tickets = sub.add_parser("tickets", help="list tickets in the configured ticket store")
    tickets.add_argument("--json", action="store_true", help="print the tickets as a JSON array")

    from supportdesk.eval import cli as eval_cli

    eval_cli.add_eval_parser(sub)
    eval_cli.add_eval_data_parser(sub)
    return parser


def _read_query(arg: str) -> str | bytes:
    if arg == "-":
        return sys.stdin.buffer.read()
    # argv bytes that are not UTF-8 arrive as lone surrogates; give validation the raw bytes back.
    return os.fsencode(arg) if any("\udc80" <= c <= "\udcff" for c in arg) else arg


def _progress(step: str, message: str) -> None:
    print(f"» {step}: {message}", file=sys.stderr, flush=True)


def _render(state: CustomerTicketState, out: TextIO) -> None:
    rows: list[tuple[str, str | None]] = [("Status", state.status.value), ("Run id", state.id)]
    if state.status is TicketStatus.FAQ_ANSWERED:
        rows += [("Answer", state.faq_response), ("Sources", ", ".join(state.sources))]
    elif state.status is TicketStatus.TICKET_CREATED:
        rows += [
            ("Ticket", f"{state.ticket_id}" + (f"  {state.ticket_url}" if state.ticket_url else "")),
            ("Category", state.category),
            ("Priority", state.priority),
            ("Customer", state.customer_id or "not identified"),
            ("Title", state.ticket_title),
            ("Summary", state.final_summary),
        ]
    else:
        rows += [("Reason", state.failure_reason)]
    rows.append(("LLM calls", f"{state.llm_calls} ({state.prompt_tokens} prompt + {state.completion_tokens} completion tokens)"))
    for label, value in rows:
        if value:
            print(f"{label + ':':<11}{value}", file=out)


def _ask(args: argparse.Namespace) -> int:
    from supportdesk._runner import run_query
    from supportdesk.settings import Settings

    state = run_query(_read_query(args.query), customer=args.customer, run_id=args.run_id, settings=Settings(), on_step=_progress)
    if args.json:
        print(state.model_dump_json(), flush=True)
    else:
        _render(state, sys.stdout)
    if state.status is TicketStatus.FAILED:
        print(f"supportdesk: run failed: {state.failure_reason}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _tickets(args: argparse.Namespace) -> int:
    from supportdesk.crews.tools.ticketing import build_ticket_backend
    from supportdesk.settings import Settings

    tickets = build_ticket_backend(Settings()).list_tickets()
    rows = [t.model_dump(mode="json") if hasattr(t, "model_dump") else dict(t) for t in tickets]
    if args.json:
        print(json.dumps(rows))
    elif not rows:
        print("no tickets")
    else:
        for row in rows:
            print("  ".join(str(row.get(k, "")) for k in ("ticket_id", "priority", "category", "title", "idempotency_key")))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``supportdesk`` console script."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    from supportdesk.eval import cli as eval_cli

    handlers = {"ask": _ask, "tickets": _tickets, "eval": eval_cli.run_eval_command, "eval-data": eval_cli.run_eval_data_command}
    try:
        return handlers[args.command](args)
    except SupportdeskError as exc:
        print(f"supportdesk: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("supportdesk: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
