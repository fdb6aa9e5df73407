"""The ``supportdesk`` command.

``supportdesk ask "QUERY" [--customer EMAIL_OR_ID] [--run-id ID] [--json]``  run one query
``supportdesk resume ID [--json]``                                         continue a crashed or parked run
``supportdesk runs [--json]`` / ``supportdesk show ID [--json]``           list runs / state and audit trail
``supportdesk tickets [--json]``                                           list filed tickets
``supportdesk eval ...`` / ``supportdesk eval-data ...``                    measure answer quality

Exit codes: 0 answered or ticketed; 1 the run failed or is parked (reason printed); 2 bad input or
configuration.
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

    resume = sub.add_parser("resume", help="continue a run from its last completed step")
    resume.add_argument("run_id")
    resume.add_argument("--json", action="store_true", help="print the final state as one JSON object")

    runs = sub.add_parser("runs", help="list runs with their status")
    runs.add_argument("--json", action="store_true", help="print the runs as a JSON array")

    show = sub.add_parser("show", help="print a run's state and audit trail")
    show.add_argument("run_id")
    show.add_argument("--json", action="store_true", help="print state and audit trail as one JSON object")

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


def _finish(state: CustomerTicketState, as_json: bool) -> int:
    if as_json:
        print(state.model_dump_json(), flush=True)
    else:
        _render(state, sys.stdout)
    if state.status in (TicketStatus.FAILED, TicketStatus.NEEDS_RECONCILE):
        print(f"supportdesk: run {state.status.value}: {state.failure_reason}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _ask(args: argparse.Namespace) -> int:
    from supportdesk._runner import run_query
    from supportdesk.settings import Settings

    state = run_query(_read_query(args.query), customer=args.customer, run_id=args.run_id, settings=Settings(), on_step=_progress)
    return _finish(state, args.json)


def _resume(args: argparse.Namespace) -> int:
    from supportdesk._runner import resume_run

    return _finish(resume_run(args.run_id, on_step=_progress), args.json)


def _runs(args: argparse.Namespace) -> int:
    from supportdesk._runner import open_journal
    from supportdesk.settings import Settings

    runs = open_journal(Settings()).list_runs()
    rows = [{"run_id": r.run_id, "status": r.status.value, "last_step": r.last_step, "updated_at": r.updated_at,
             "attempts": r.attempts, "reason": r.reason} for r in runs]
    if args.json:
        print(json.dumps(rows))
    elif not rows:
        print("no runs")
    for row in [] if args.json else rows:
        print(f"{row['run_id']}  {row['status']:<16}{row['last_step'] or '-':<16}{row['updated_at']}  {row['reason'] or ''}")
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    from supportdesk._runner import open_journal
    from supportdesk.settings import Settings

    journal = open_journal(Settings())
    info = journal.get(args.run_id)
    state_json = journal.load_state(args.run_id)
    audit = [{"seq": e.seq, "ts": e.ts, "step": e.step, "kind": e.kind, "data": e.data} for e in journal.audit(args.run_id)]
    if args.json:
        print(json.dumps({"run_id": info.run_id, "status": info.status.value, "reason": info.reason,
                          "state": json.loads(state_json) if state_json else None, "audit": audit}))
        return EXIT_OK
    print(f"Run {info.run_id}: {info.status.value}" + (f" ({info.reason})" if info.reason else ""))
    if state_json:
        _render(CustomerTicketState.model_validate_json(state_json), sys.stdout)
    print("Audit trail:")
    for entry in audit:
        print(f"  {entry['seq']:>3} {entry['ts']} {entry['step'] or '-':<16} {entry['kind']:<20} {json.dumps(entry['data'])}")
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

    handlers = {"ask": _ask, "resume": _resume, "runs": _runs, "show": _show, "tickets": _tickets, "eval": eval_cli.run_eval_command, "eval-data": eval_cli.run_eval_data_command}
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
