"""``supportdesk worker``: execute Temporal workflows of supportdesk runs (``SUPPORTDESK_ENGINE=temporal``)."""

from __future__ import annotations

import argparse

__all__ = ["add_worker_parser", "run_worker_command"]


def add_worker_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``supportdesk worker`` (imports nothing of Temporal until it runs)."""
    parser = sub.add_parser("worker", help="run a Temporal worker that executes supportdesk runs")
    parser.add_argument("--max-concurrent-runs", type=int, help="override SUPPORTDESK_WORKER_MAX_CONCURRENT_RUNS")


def run_worker_command(args: argparse.Namespace) -> int:
    """Run the worker until SIGINT/SIGTERM."""
    from supportdesk.service.temporal.worker import run_worker
    from supportdesk.settings import Settings

    overrides = {}
    if args.max_concurrent_runs is not None:
        overrides["worker_max_concurrent_runs"] = args.max_concurrent_runs
    run_worker(Settings(**overrides))
    return 0
