"""``supportdesk approvals`` / ``approve`` / ``reject``: the approval queue from a terminal.

``supportdesk approvals [--json]``                                   runs waiting for a decision
``supportdesk approve RUN_ID [--title T] [--priority P] [--category C] [--note N] [--json]``
``supportdesk reject RUN_ID --note N [--json]``

The decision is journaled with the login name (``cli:<user>``) before it is applied. Exit codes: 0
decided and applied (or listed); 1 the applied run failed or still waits; 2 bad input (unknown run,
a run that does not wait, an invalid edit) with one line naming the problem.
"""

from __future__ import annotations

import argparse
import json

__all__ = [
    "add_approvals_parser",
    "add_approve_parser",
    "add_reject_parser",
    "run_approvals_command",
    "run_approve_command",
    "run_reject_command",
]


def add_approvals_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``supportdesk approvals``."""
    parser = sub.add_parser("approvals", help="list runs whose ticket waits for a person's approval")
    parser.add_argument("--json", action="store_true", help="print the queue as a JSON array")


def add_approve_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``supportdesk approve``."""
    parser = sub.add_parser("approve", help="approve a waiting ticket draft (optionally edited) and file it")
    parser.add_argument("run_id")
    parser.add_argument("--title", help="replace the drafted ticket title")
    parser.add_argument("--priority", choices=["low", "medium", "high"], help="replace the priority")
    parser.add_argument("--category", help="replace the category (one of config/categories.yaml)")
    parser.add_argument("--note", help="a note for the audit trail")
    parser.add_argument("--json", action="store_true", help="print the resulting state as one JSON object")


def add_reject_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``supportdesk reject``."""
    parser = sub.add_parser("reject", help="reject a waiting ticket draft: no ticket is filed")
    parser.add_argument("run_id")
    parser.add_argument("--note", required=True, help="why (kept with the run and in the audit trail)")
    parser.add_argument("--json", action="store_true", help="print the resulting state as one JSON object")


def run_approvals_command(args: argparse.Namespace) -> int:
    """List the queue (applying due timeouts first)."""
    from supportdesk.approvals import list_approvals

    requests = list_approvals()
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in requests]))
        return 0
    if not requests:
        print("no runs wait for approval")
    for r in requests:
        print(f"{r.run_id}  {r.category}/{r.priority}  until {r.deadline or 'no limit'} (then {r.on_timeout})  "
              f"[{', '.join(r.rules)}]  {r.title}")
    return 0


def _finish(state, as_json: bool) -> int:  # noqa: ANN001
    from supportdesk.cli import _finish as finish_state

    code = finish_state(state, as_json)
    return code if state.status.value != "awaiting_approval" else 1


def run_approve_command(args: argparse.Namespace) -> int:
    """Journal an approval (with edits) and apply it."""
    from supportdesk.approvals import approve

    edits = {k: v for k, v in {"title": args.title, "priority": args.priority, "category": args.category}.items() if v}
    state = approve(args.run_id, edits=edits or None, note=args.note, actor="cli")
    return _finish(state, args.json)


def run_reject_command(args: argparse.Namespace) -> int:
    """Journal a rejection and apply it."""
    from supportdesk.approvals import reject

    state = reject(args.run_id, note=args.note, actor="cli")
    return _finish(state, args.json)
