"""Ten CLI processes submitting the same run id at the same instant: one run, one executor, one ticket.

The processes are forked by ``crash_driver.py --serve`` and held at a gate until all ten exist,
then released together (``SUPPORTDESK_CRASH_FRESH=1``: ten fresh interpreters released by a file).
``SUPPORTDESK_RUN_WAIT_S`` is raised from 30 s to 180 s so the nine waiters outlast the winner on
a loaded two-core machine; the test pins the outcome, not the timing.
"""

from __future__ import annotations

from pathlib import Path

from _crash_support import RUN_ID, ask_argv, calls_log_counts, driver

WAIT = {"SUPPORTDESK_RUN_WAIT_S": "180"}


def _check_one_run_one_ticket(env: dict[str, str], outputs: list[str]) -> dict:
    d = driver()
    runs = d.run(["runs", "--json"], env=env).json()
    assert [(r["run_id"], r["status"]) for r in runs] == [(RUN_ID, "completed")]
    tickets = d.run(["tickets", "--json"], env=env).json()
    assert [t["idempotency_key"] for t in tickets] == [RUN_ID]
    assert len(set(outputs)) == 1, "the ten processes printed different final states"
    record = d.run(["show", RUN_ID, "--json"], env=env).json()
    kinds = [e["kind"] for e in record["audit"]]
    assert kinds.count("run_created") == 1 and kinds.count("run_finished") == 1
    assert kinds.count("side_effect_outcome") == 1
    return record


def test_ten_processes_same_run_id_one_run_one_ticket(db_url: str, tmp_path: Path) -> None:
    """Ten `ask --run-id R` processes released together all exit 0 with the same final state; one run, one executor, one ticket."""
    d = driver()
    env = d.env_for(d.new_home(tmp_path), db_url, WAIT)
    log = tmp_path / "calls.log"
    results = d.run_together([ask_argv()] * 10, env=env, calls_log=log)
    assert [r.returncode for r in results] == [0] * 10, [r.stderr[-1500:] for r in results if r.returncode]
    states = [r.json() for r in results]
    assert {(s["status"], s["ticket_id"]) for s in states} == {("ticket_created", "LOCAL-1")}
    record = _check_one_run_one_ticket(env, [r.stdout for r in results])
    assert [e["kind"] for e in record["audit"]].count("lease_acquired") == 1
    started, ended = calls_log_counts(log)
    assert sum(ended.values()) == sum(started.values()) == 2  # only the one executor called the model


def test_ten_resumes_of_a_crashed_run_continue_it_once(db_url: str, tmp_path: Path) -> None:
    """After a SIGKILL mid-triage, ten `resume R` processes released together finish it once: one ticket, no completed call repeated."""
    d = driver()
    env = d.env_for(d.new_home(tmp_path), db_url, WAIT)
    log = tmp_path / "calls.log"
    killed = d.run(ask_argv(), env=env, kill_at="llm_recorded", kill_nth=1, calls_log=log)
    assert killed.returncode == -9, killed.stderr[-2000:]
    results = d.run_together([["resume", RUN_ID, "--json"]] * 10, env=env, calls_log=log)
    assert [r.returncode for r in results] == [0] * 10, [r.stderr[-1500:] for r in results if r.returncode]
    record = _check_one_run_one_ticket(env, [r.stdout for r in results])
    assert [e["kind"] for e in record["audit"]].count("lease_acquired") == 2  # the killed run, one resumer
    _, ended = calls_log_counts(log)
    assert sorted(ended.values()) == [1, 1]
