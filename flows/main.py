"""Entry points the crewai CLI runs in a flow project: ``crewai run`` (kickoff), ``crewai flow plot``
(plot) and triggers (run_with_trigger)."""

from __future__ import annotations

import json
import sys
from typing import Any

__all__ = ["kickoff", "plot", "run_with_trigger"]

DEMO_QUERIES = (
    "How do I reset my password?",
    "I was charged twice for my subscription this month and I want one payment refunded.",
)


def kickoff() -> None:
    """``crewai run``: kick the SupportFlow off (durably, through the run journal) for the demo queries,
    or for the one given as arguments, and print each final state."""
    queries = [" ".join(sys.argv[1:])] if len(sys.argv) > 1 else list(DEMO_QUERIES)
    sys.exit(max(_kickoff(query) for query in queries))


def _kickoff(query: str, trigger_payload: dict[str, Any] | None = None, *, as_json: bool = False) -> int:
    from supportdesk._console import Output, StepDisplay
    from supportdesk._runner import run_query
    from supportdesk.errors import SupportdeskError
    from supportdesk.models import TicketStatus

    payload = trigger_payload or {}
    try:
        with StepDisplay() as steps:
            state = run_query(query, customer=payload.get("customer"), run_id=payload.get("run_id"),
                              on_step=steps.update, trigger_payload=trigger_payload)
    except SupportdeskError as exc:
        print(f"supportdesk: error: {exc}", file=sys.stderr)
        return 2
    if as_json:
        print(state.model_dump_json(), flush=True)
    else:
        Output().state(state)
    return 1 if state.status in (TicketStatus.FAILED, TicketStatus.NEEDS_RECONCILE) else 0


def plot() -> None:
    """``crewai flow plot``: write the flow diagram to ./supportdesk_flow/ (no model is loaded)."""
    import shutil
    from pathlib import Path

    from supportdesk._runner import quiet_crewai
    from supportdesk.flows.services import SupportServices
    from supportdesk.flows.support_flow import SupportFlow

    placeholder = SupportServices(faq=None, triage=None, tickets=None)  # type: ignore[arg-type]
    with quiet_crewai():
        rendered = Path(SupportFlow(services=placeholder).plot("supportdesk_flow.html", show=False))
    target = Path.cwd() / "supportdesk_flow"
    shutil.copytree(rendered.parent, target, dirs_exist_ok=True)  # CrewAI renders into a temp folder
    print(f"flow diagram written to {target / rendered.name}")


def run_with_trigger() -> None:
    """Run from a trigger payload: ``run_with_trigger '{"query": "...", "customer": "...", "run_id": "..."}'``.

    As in CrewAI's flow template, the payload goes to the flow's kickoff as ``crewai_trigger_payload``
    (the start step receives it); ``query``, ``customer`` and ``run_id`` start the run. Prints the final
    state as one JSON object.
    """
    if len(sys.argv) < 2:
        raise SystemExit("usage: run_with_trigger '<json payload with a \"query\">'")
    try:
        payload = json.loads(sys.argv[1])
        query = payload["query"]
        if not isinstance(payload, dict) or not isinstance(query, str):
            raise TypeError("the payload must be a JSON object whose query is a string")
    except (ValueError, KeyError, TypeError) as exc:
        raise SystemExit(f"invalid trigger payload: {exc}") from exc
    sys.exit(_kickoff(query, payload, as_json=True))
