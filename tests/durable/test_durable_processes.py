"""Cross-process guarantees: one executor per run id, and an audit trail that survives SIGKILL."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

from _durable_helpers import contend_for_run

from supportdesk.durable import RunJournal

HERE = Path(__file__).parent


def test_ten_processes_same_run_id_one_run_one_executor(db_url: str) -> None:
    """Ten spawned processes starting the same run id at once create one run row and exactly one executes it."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(10)
    results = ctx.Queue()
    procs = [ctx.Process(target=contend_for_run, args=(db_url, "same-run", barrier, results)) for _ in range(10)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=300) for _ in procs]
    assert [o["error"] for o in outcomes if "error" in o] == []
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    winners = [o for o in outcomes if o["acquired"]]
    assert len(winners) == 1
    assert all(o["final"] for o in outcomes if not o["acquired"])
    assert len({o["state"] for o in outcomes}) == 1  # everyone got the winner's stored result
    journal = RunJournal(db_url)
    assert [r.run_id for r in journal.list_runs()] == ["same-run"]
    kinds = [e.kind for e in journal.audit("same-run")]
    assert kinds.count("run_created") == 1
    assert kinds.count("lease_acquired") == 1
    assert kinds.count("executed") == 1


def test_audit_and_checkpoints_survive_sigkill(db_url: str) -> None:
    """A writer killed with SIGKILL mid-stream leaves a readable, gap-free audit trail with every reported entry."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), *sys.path]))
    writer = subprocess.Popen(
        [sys.executable, str(HERE / "_durable_helpers.py"), db_url, "killed-run"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert writer.stdout is not None
    reported = 0
    for line in writer.stdout:  # wait until it has committed a good number of writes
        reported = int(line)
        if reported >= 50:
            break
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=60)

    journal = RunJournal(db_url)
    entries = journal.audit("killed-run")
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    ticks = [e.data["n"] for e in entries if e.kind == "tick"]
    assert ticks == list(range(1, len(ticks) + 1)) and len(ticks) >= reported
    steps = journal.completed_steps("killed-run")
    assert len(steps) >= reported and journal.load_state("killed-run") == f'{{"n": {len(steps)}}}'
    if journal.db.dialect == "sqlite":
        with journal.db.transaction(write=False) as tx:
            assert tx.fetchone("PRAGMA integrity_check") == ("ok",)
