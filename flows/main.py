"""Entry points the crewai CLI runs in a flow project: ``crewai run`` (kickoff), ``crewai flow plot``
(plot) and triggers (run_with_trigger)."""

from __future__ import annotations

import json
import sys

__all__ = ["kickoff", "plot", "run_with_trigger"]

DEMO_QUERIES = (
    "How do I reset my password?",
    "I was charged twice for my subscription this month and I want one payment refunded.",
)


def kickoff() -> None:
    """``crewai run``: run the demo queries (or the one given as arguments) and print the states."""
    from supportdesk.cli import main

    queries = [" ".join(sys.argv[1:])] if len(sys.argv) > 1 else list(DEMO_QUERIES)
    codes = [main(["ask", query]) for query in queries]
    sys.exit(max(codes))


def plot() -> None:
    """``crewai flow plot``: write the flow diagram to ./supportdesk_flow/ (no model is loaded)."""
    import shutil
    from pathlib import Path

    from supportdesk._runner import quiet_crewai_console
    from supportdesk.flows.services import SupportServices
    from supportdesk.flows.support_flow import SupportFlow

    quiet_crewai_console()
    placeholder = SupportServices(faq=None, triage=None, tickets=None)  # type: ignore[arg-type]
    rendered = Path(SupportFlow(services=placeholder).plot("supportdesk_flow.html", show=False))
    target = Path.cwd() / "supportdesk_flow"
    shutil.copytree(rendered.parent, target, dirs_exist_ok=True)  # CrewAI renders into a temp folder
    print(f"flow diagram written to {target / rendered.name}")


def run_with_trigger() -> None:
    """Run from a trigger payload: ``run_with_trigger '{"query": "...", "customer": "..."}'``."""
    from supportdesk.cli import main

    if len(sys.argv) < 2:
        raise SystemExit("usage: run_with_trigger '<json payload with a \"query\">'")
    try:
        payload = json.loads(sys.argv[1])
        query = payload["query"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SystemExit(f"invalid trigger payload: {exc}") from exc
    argv = ["ask", query, "--json"] + (["--customer", payload["customer"]] if payload.get("customer") else [])
    if payload.get("run_id"):
        argv += ["--run-id", payload["run_id"]]
    sys.exit(main(argv))
