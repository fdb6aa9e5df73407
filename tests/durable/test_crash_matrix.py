"""Crash matrix: the CLI is SIGKILLed at every step boundary and inside every step, then resumed.

Each case runs ``supportdesk ask --run-id crash-run`` (double-charge query, customer C-1001: FAQ ->
triage -> ticket) in its own process through ``crash_driver.py`` with one kill point armed, checks
it died of SIGKILL, finishes the run, and then requires:

* exactly one ticket, keyed by the run id, in the local ticket store (``supportdesk tickets``);
* a final state equal to an uninterrupted run's with the same scripted model on the same kind of
  database, ``created_at`` aside (``_crash_support.RUN_SPECIFIC_FIELDS``): ids, route, category,
  priority, customer, title, summary, ticket id and the LLM call/token counters all match;
* no completed LLM call repeated: a call counts as completed once its answer is journaled; the
  only call that may run again is one killed before that (``llm_before``: never answered;
  ``llm_after``: answered, but the process died before journaling it);
* a readable audit trail (``supportdesk show``) with exactly one successful ``step_end`` and one
  checkpoint per step, one ticket outcome, one LLM record per call and the run finished ``completed``.

Repetitions finish the run three ways: rep 0 ``resume``; rep 1 the same ``ask --run-id`` again;
rep 2 ``resume`` with the same kill point armed again (it dies again if it gets there) and then
``resume``. Every case runs on SQLite and on PostgreSQL (skipped visibly without a server).
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from _crash_support import RUN_ID, STEPS, Driver, Result, ask_argv, call_order, calls_log_counts, driver, projection

POINTS: list[tuple[str, int]] = [
    *[(f"{where}:{step}", 1) for step in STEPS for where in ("step_start", "checkpoint_write", "step_end")],
    *[(point, n) for point in ("llm_before", "llm_after", "llm_recorded") for n in (1, 2)],
    ("ticket_before", 1),
    ("ticket_after", 1),
    ("finish_write", 1),
]
REPS = (0, 1, 2)

_BASELINES: dict[str, dict[str, Any]] = {}


def _fresh_pg_schema(server_url: str) -> str:
    import uuid
    from urllib.parse import quote

    import psycopg

    schema = f"crash_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in server_url else "?"
    return f"{server_url}{sep}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture
def baseline(request: pytest.FixtureRequest, db_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An uninterrupted run of the same query and run id on the same kind of database (once per kind)."""
    kind = "postgresql" if db_url.startswith("postgres") else "sqlite"
    if kind not in _BASELINES:
        d = driver()
        base = tmp_path_factory.mktemp(f"baseline-{kind}")
        url = _fresh_pg_schema(request.getfixturevalue("postgres_server_url")) if kind == "postgresql" else (
            f"sqlite:///{base / 'durable.db'}"
        )
        env = d.env_for(d.new_home(base), url)
        log = base / "calls.log"
        result = d.run(ask_argv(), env=env, calls_log=log)
        assert result.returncode == 0, result.stderr[-3000:]
        tickets = d.run(["tickets", "--json"], env=env).json()
        _BASELINES[kind] = {"state": result.json(), "calls": call_order(log), "tickets": tickets}
    return _BASELINES[kind]


def test_uninterrupted_run_is_the_reference(baseline: dict[str, Any]) -> None:
    """An uninterrupted run files one ticket after two model calls: the state every crash case must reproduce."""
    state = baseline["state"]
    assert (state["status"], state["category"], state["priority"], state["customer_id"]) == (
        "ticket_created", "billing", "high", "C-1001"
    )
    assert state["id"] == RUN_ID and state["ticket_id"] == "LOCAL-1" and state["llm_calls"] == 2
    assert len(baseline["calls"]) == len(set(baseline["calls"])) == 2
    assert [t["idempotency_key"] for t in baseline["tickets"]] == [RUN_ID]


def _segment(log: Path, before: int) -> list[str]:
    lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    return lines[before:]


def _log_len(log: Path) -> int:
    return len(log.read_text(encoding="utf-8").splitlines()) if log.exists() else 0


@pytest.mark.parametrize("rep", REPS, ids=lambda r: f"rep{r}")
@pytest.mark.parametrize(("point", "nth"), POINTS, ids=[f"{p}#{n}" for p, n in POINTS])
def test_sigkill_then_resume_gives_one_ticket_and_the_uninterrupted_state(
    db_url: str, tmp_path: Path, baseline: dict[str, Any], point: str, nth: int, rep: int
) -> None:
    """SIGKILL at this point, then finishing the run, yields one ticket, the uninterrupted state and no repeated completed LLM call."""
    d = driver()
    env = d.env_for(d.new_home(tmp_path), db_url)
    log = tmp_path / "calls.log"
    unjournaled: Counter[str] = Counter()  # calls answered but killed before their answer was journaled

    def run(argv: list[str], kill: bool) -> Result:
        before = _log_len(log)
        result = d.run(argv, env=env, kill_at=point if kill else None, kill_nth=nth, calls_log=log)
        if result.returncode == -9 and point == "llm_after":
            ended = [line.split(" ", 1)[1] for line in _segment(log, before) if line.startswith("end ")]
            unjournaled[ended[-1]] += 1
        return result

    killed = run(ask_argv(), kill=True)
    assert killed.returncode == -9, f"not killed at {point}#{nth}: rc={killed.returncode}\n{killed.stderr[-3000:]}"
    if rep == 1:
        final = run(ask_argv(), kill=False)
    else:
        if rep == 2:
            again = run(["resume", RUN_ID, "--json"], kill=True)
            assert again.returncode in (0, -9), again.stderr[-3000:]
        final = run(["resume", RUN_ID, "--json"], kill=False)
    assert final.returncode == 0, final.stderr[-3000:]

    expected = projection(baseline["state"])
    assert projection(final.json()) == expected

    tickets = d.run(["tickets", "--json"], env=env).json()
    assert [(t["idempotency_key"], t["ticket_id"]) for t in tickets] == [(RUN_ID, expected["ticket_id"])]

    started, ended = calls_log_counts(log)
    assert ended - unjournaled == Counter(baseline["calls"]), (point, nth, ended, unjournaled)
    assert set(started) == set(baseline["calls"])

    shown = d.run(["show", RUN_ID, "--json"], env=env)
    assert shown.returncode == 0, shown.stderr[-2000:]
    record = shown.json()
    assert record["status"] == "completed" and record["reason"] is None
    assert projection(record["state"]) == expected
    audit = record["audit"]
    assert [e["seq"] for e in audit] == list(range(1, len(audit) + 1))
    ok_steps = Counter(e["step"] for e in audit if e["kind"] == "step_end" and e["data"].get("ok"))
    assert ok_steps == Counter(STEPS)
    assert Counter(e["step"] for e in audit if e["kind"] == "checkpoint") == Counter(STEPS)
    llm_records = [(e["step"], e["data"]["call_key"]) for e in audit if e["kind"] == "llm_call"]
    assert sorted(llm_records) == [("triage", "llm:0"), ("triage", "llm:1")]
    assert [e["kind"] for e in audit].count("side_effect_outcome") == 1
    finished = [e["data"]["status"] for e in audit if e["kind"] == "run_finished"]
    assert finished == ["completed"]


def test_fresh_interpreters_kill_and_resume(tmp_path: Path, baseline: dict[str, Any], db_url: str) -> None:
    """The driver as a plain command (a fresh interpreter per run, no fork server): SIGKILL inside the triage checkpoint, then resume, gives the uninterrupted state and one ticket."""
    if not db_url.startswith("sqlite"):
        pytest.skip("fresh-interpreter check runs on SQLite only (the matrix covers PostgreSQL; ~20 s a run)")
    fresh = Driver(fresh=True)
    try:
        home = tmp_path / "home"
        shutil.copytree(driver().warm_cache(), home / "cache")
        env = fresh.env_for(home, db_url)
        log = tmp_path / "calls.log"
        killed = fresh.run(ask_argv(), env=env, kill_at="checkpoint_write:triage", calls_log=log)
        assert killed.returncode == -9, killed.stderr[-3000:]
        final = fresh.run(["resume", RUN_ID, "--json"], env=env, calls_log=log)
        assert final.returncode == 0, final.stderr[-3000:]
        assert projection(final.json()) == projection(baseline["state"])
        assert [t["idempotency_key"] for t in driver().run(["tickets", "--json"], env=env).json()] == [RUN_ID]
        assert calls_log_counts(log)[1] == Counter(baseline["calls"])  # both calls journaled before the kill
    finally:
        fresh.close()
