"""Stress the first open of a fresh SQLite run journal: N processes, one run id, many rounds.

Each round makes a new, empty database file; N spawned processes wait on a barrier, then all open
the journal at once (creating the schema and switching the file to WAL) and start the same run id.
The one that takes the lease executes a step and finishes the run; the others wait for its result.
A round is good when no process raised, the journal holds exactly one run, and exactly one
process executed it::

    python benchmarks/stress_sqlite_open.py                 # 20 processes x 50 rounds
    python benchmarks/stress_sqlite_open.py --procs 8 --rounds 10

Prints one line per round and a summary; the last line is JSON. Exit status 1 when any round failed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

RUN_ID = "stress-run"


def _worker(url: str, barrier: Any, results: Any) -> None:
    try:
        from supportdesk.durable import RunJournal

        barrier.wait(timeout=120)
        journal = RunJournal(url, lease_s=600)
        handle = journal.start_run(RUN_ID, "my invoice is wrong", None, wait_s=120, poll_s=0.02)
        if handle.acquired:
            with journal.step(RUN_ID, "work"):
                journal.append_audit(RUN_ID, "executed", {"owner": journal.owner})
                journal.checkpoint(RUN_ID, "work", {"done_by": journal.owner})
            journal.finish(RUN_ID, "completed")
        results.put({"acquired": handle.acquired, "final": handle.acquired or handle.info.is_final})
    except BaseException as exc:  # reported, counted as an error of the round
        results.put({"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()})


def _round(number: int, procs: int, folder: Path) -> dict[str, Any]:
    from supportdesk.durable import RunJournal

    url = f"sqlite:///{folder / f'round-{number}' / 'journal.db'}"
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(procs), ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(url, barrier, results)) for _ in range(procs)]
    started = time.perf_counter()
    for proc in workers:
        proc.start()
    outcomes = [results.get(timeout=300) for _ in workers]
    for proc in workers:
        proc.join(timeout=60)
    errors = [o["error"] for o in outcomes if "error" in o]
    journal = RunJournal(url)
    runs = len(journal.list_runs())
    executed = [e.kind for e in journal.audit(RUN_ID)].count("executed") if runs else 0
    return {
        "round": number,
        "errors": errors,
        "runs": runs,
        "executors": executed,
        "unfinished_waiters": sum(1 for o in outcomes if "error" not in o and not o["final"]),
        "seconds": round(time.perf_counter() - started, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args(argv)
    total_errors = bad_rounds = 0
    with tempfile.TemporaryDirectory(prefix="sd-stress-") as tmp:
        for number in range(1, args.rounds + 1):
            result = _round(number, args.procs, Path(tmp))
            ok = not result["errors"] and result["runs"] == 1 and result["executors"] == 1
            total_errors += len(result["errors"])
            bad_rounds += 0 if ok else 1
            print(
                f"round {number:3d}: errors {len(result['errors'])}, runs {result['runs']}, "
                f"executors {result['executors']}, {result['seconds']} s{'' if ok else '  <-- FAILED'}",
                flush=True,
            )
            for error in result["errors"][:3]:
                print(f"    {error}", flush=True)
    print(f"{args.rounds} rounds x {args.procs} processes: {total_errors} errors, {bad_rounds} bad rounds")
    print(json.dumps({"procs": args.procs, "rounds": args.rounds, "errors": total_errors, "bad_rounds": bad_rounds}))
    return 1 if total_errors or bad_rounds else 0


if __name__ == "__main__":
    sys.exit(main())
