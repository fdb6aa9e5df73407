"""The ``supportdesk`` command.

``supportdesk ask "QUERY" [--customer EMAIL_OR_ID] [--run-id ID] [--json]``  run one query
``supportdesk resume ID [--json]``                                         continue a crashed or parked run
``supportdesk runs [--json]`` / ``supportdesk show ID [--json]``           list runs / state and audit trail
``supportdesk tickets [--json]``                                           list filed tickets
``supportdesk eval ...`` / ``supportdesk eval-data ...``                    measure answer quality
``supportdesk serve [--host H] [--port P] [--workers N]``                   the HTTP API and the console
``supportdesk keys create --tenant NAME [--scopes ...]`` / ``list`` / ``revoke ID``  API keys

Exit codes: 0 answered or ticketed; 1 the run failed or is parked (reason printed); 2 bad input or
configuration (one line: an invalid query, run id or setting, an unknown --customer, a run id reused
with another query or customer), with nothing written.
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
    ask.add_argument("--customer", help="the verified customer's id or e-mail: the only account the run may read")
    ask.add_argument("--run-id", help="an idempotency key for this run, [A-Za-z0-9._-] up to 128 (default: generated)")
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
    from supportdesk.eval import calibrate as calibrate_cli

    calibrate_cli.add_calibrate_parser(sub)
    from supportdesk import pipelines_cli

    pipelines_cli.add_pipelines_parser(sub)
    from supportdesk.service import cli as service_cli

    service_cli.add_serve_parser(sub)
    service_cli.add_keys_parser(sub)
    from supportdesk import approvals_cli
    from supportdesk.service.temporal import cli as worker_cli

    approvals_cli.add_approvals_parser(sub), approvals_cli.add_approve_parser(sub), approvals_cli.add_reject_parser(sub)
    worker_cli.add_worker_parser(sub)
    return parser


def _read_query(arg: str) -> str | bytes:
    if arg == "-":
        return sys.stdin.buffer.read()
    # argv bytes that are not UTF-8 arrive as lone surrogates; give validation the raw bytes back.
    return os.fsencode(arg) if any("\udc80" <= c <= "\udcff" for c in arg) else arg


def _render(state: CustomerTicketState, out: TextIO) -> None:
    from supportdesk._console import Output

    Output(out).state(state)


def _steps():  # noqa: ANN202 - a StepDisplay (Rich is imported only by commands that show steps)
    from supportdesk._console import StepDisplay

    return StepDisplay()


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

    with _steps() as steps:
        state = run_query(_read_query(args.query), customer=args.customer, run_id=args.run_id, settings=Settings(),
                          on_step=steps.update)
    return _finish(state, args.json)


def _resume(args: argparse.Namespace) -> int:
    from supportdesk._runner import resume_run

    with _steps() as steps:
        state = resume_run(args.run_id, on_step=steps.update)
    return _finish(state, args.json)


def _runs(args: argparse.Namespace) -> int:
    from supportdesk._runner import open_journal
    from supportdesk.settings import Settings

    runs = open_journal(Settings()).list_runs()
    rows = [{"run_id": r.run_id, "status": r.status.value, "last_step": r.last_step, "updated_at": r.updated_at,
             "attempts": r.attempts, "reason": r.reason} for r in runs]
    if args.json:
        print(json.dumps(rows))
        return EXIT_OK
    from supportdesk._console import Output

    plain = [f"{r['run_id']}  {r['status']:<16}{r['last_step'] or '-':<16}{r['updated_at']}  {r['reason'] or ''}" for r in rows]
    Output().table(["Run id", "Status", "Last step", "Updated", "Attempts", "Reason"],
                   [[r["run_id"], r["status"], r["last_step"] or "-", r["updated_at"], r["attempts"], r["reason"] or ""]
                    for r in rows], title="Runs", status_columns=[1], empty="no runs", plain=plain)
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    from supportdesk._runner import open_journal
    from supportdesk.settings import Settings

    from supportdesk._query import validate_run_id

    journal = open_journal(Settings())
    info = journal.get(validate_run_id(args.run_id))
    state_json = journal.load_state(args.run_id)
    audit = [{"seq": e.seq, "ts": e.ts, "step": e.step, "kind": e.kind, "data": e.data} for e in journal.audit(args.run_id)]
    if args.json:
        print(json.dumps({"run_id": info.run_id, "status": info.status.value, "reason": info.reason,
                          "state": json.loads(state_json) if state_json else None, "audit": audit}))
        return EXIT_OK
    from supportdesk._console import Output

    out = Output()
    head = f"Run {info.run_id}: {info.status.value}" + (f" ({info.reason})" if info.reason else "")
    if not out.rich:
        out.line(head)
    if state_json:
        out.state(CustomerTicketState.model_validate_json(state_json), title=head if out.rich else None)
    elif out.rich:
        out.line(head)
    if not out.rich:
        out.line("Audit trail:")
    plain = [f"  {e['seq']:>3} {e['ts']} {e['step'] or '-':<16} {e['kind']:<20} {json.dumps(e['data'])}" for e in audit]
    out.table(["#", "Time", "Step", "Event", "Data"],
              [[e["seq"], e["ts"], e["step"] or "-", e["kind"], json.dumps(e["data"])] for e in audit],
              title="Audit trail", empty="  (empty)", plain=plain)
    return EXIT_OK


def _tickets(args: argparse.Namespace) -> int:
    from supportdesk.crews.tools.ticketing import build_ticket_backend
    from supportdesk.settings import Settings

    tickets = build_ticket_backend(Settings()).list_tickets()
    rows = [t.model_dump(mode="json") if hasattr(t, "model_dump") else dict(t) for t in tickets]
    if args.json:
        print(json.dumps(rows))
        return EXIT_OK
    from supportdesk._console import Output

    keys = ("ticket_id", "priority", "category", "title", "idempotency_key")
    Output().table(["Ticket", "Priority", "Category", "Title", "Run id"], [[row.get(k, "") for k in keys] for row in rows],
                   title="Tickets", status_columns=[1], empty="no tickets")
    return EXIT_OK


def _log_format() -> str:
    """SUPPORTDESK_LOG_FORMAT through the settings (bad values are reported when the command loads them)."""
    from supportdesk.settings import Settings

    try:
        return Settings().log_format
    except SupportdeskError:
        return "text"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``supportdesk`` console script."""
    args = _parser().parse_args(argv)
    from supportdesk._logs import configure_cli_logging

    configure_cli_logging(verbose=args.verbose, log_format=_log_format())
    from supportdesk.eval import cli as eval_cli

    handlers = {"ask": _ask, "resume": _resume, "runs": _runs, "show": _show, "tickets": _tickets, "eval": eval_cli.run_eval_command, "eval-data": eval_cli.run_eval_data_command}
    from supportdesk import pipelines_cli

    handlers["pipelines"] = pipelines_cli.run_pipelines_command
    from supportdesk.eval import calibrate as calibrate_cli

    handlers["calibrate"] = calibrate_cli.run_calibrate_command
    from supportdesk.service import cli as service_cli

    handlers.update(serve=service_cli.run_serve_command, keys=service_cli.run_keys_command)
    from supportdesk import approvals_cli
    from supportdesk.service.temporal import cli as worker_cli

    handlers.update(approvals=approvals_cli.run_approvals_command, approve=approvals_cli.run_approve_command,
                    reject=approvals_cli.run_reject_command, worker=worker_cli.run_worker_command)
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
