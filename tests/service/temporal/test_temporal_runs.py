"""Runs on Temporal and PostgreSQL with real `supportdesk worker` processes: approval (approve, edit,
reject, timeout) across a worker SIGKILL, duplicate submissions, and failover of 50 runs."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from supportdesk.crews.tools.db_tickets import DatabaseTicketStore
from supportdesk.durable import RunJournal
from supportdesk.models import CustomerTicketState
from supportdesk.service.temporal.engine import TemporalEngine
from supportdesk.settings import Settings
from tests.support.policies import model_slots_config

# Paraphrases (not sentences of the shipped examples): one escalates as billing, one the FAQ answers.
BILLED_TWICE = "This month my card was billed twice for one plan, please return one of the two payments."
PASSWORD = "How do I reset my password?"


def _settings(env: dict[str, str], **extra) -> Settings:
    return Settings(
        home=env["SUPPORTDESK_HOME"], database_url=env["SUPPORTDESK_DATABASE_URL"], ticket_store="database",
        temporal_address=env["TEMPORAL_ADDRESS"], temporal_task_queue=env["SUPPORTDESK_TEMPORAL_TASK_QUEUE"],
        engine="temporal", run_wait_s=60, **extra,
    )


def _approval_config(folder: Path, *, timeout_s: float, on_timeout: str) -> Path:
    from supportdesk._config import config_path

    data = yaml.safe_load(config_path("policies.yaml").read_text())
    data["approval"] = {"rules": [{"name": "billing", "categories": ["billing"]}], "timeout_s": timeout_s,
                        "on_timeout": on_timeout}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "policies.yaml").write_text(yaml.safe_dump(data))
    return folder


def _wait_status(journal: RunJournal, run_ids, statuses, timeout_s: float, workers) -> None:
    deadline = time.time() + timeout_s
    pending = set(run_ids)
    while pending and time.time() < deadline:
        for run_id in list(pending):
            try:
                if journal.get(run_id).status.value in statuses:
                    pending.discard(run_id)
            except Exception:  # noqa: BLE001 - not created yet
                pass
        time.sleep(0.3)
    assert not pending, f"runs not {statuses} in {timeout_s}s: {sorted(pending)[:5]}\n{workers.log_tail()}"


def _wait_victim_mid_escalation(journal: RunJournal, pid: int, runs: dict[str, str], *, min_done: int,
                                timeout_s: float) -> list[str]:
    """Poll until ``min_done`` runs are final and the worker ``pid`` holds an escalation's lease (owner
    ``host:pid:tag``); returns those escalations' ids, or [] at the deadline."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        listed = journal.list_runs(limit=200)
        held = [r.run_id for r in listed if r.status.value == "running" and runs.get(r.run_id) is BILLED_TWICE
                and (r.lease_owner or "").split(":")[1:2] == [str(pid)]]
        if held and sum(r.is_final for r in listed) >= min_done:
            return held
        time.sleep(0.05)
    return []


def _state(journal: RunJournal, run_id: str) -> CustomerTicketState:
    return CustomerTicketState.model_validate_json(journal.load_state(run_id))


def _tickets_by_key(db_url: str) -> Counter[str]:
    """Tickets per key in the PostgreSQL ticket table the workers share."""
    return Counter(t["idempotency_key"] for t in DatabaseTicketStore(db_url).list_tickets())


def test_approval_decisions_on_temporal_survive_a_worker_sigkill(make_workers, tmp_path):
    """Three runs park; their worker is SIGKILLed; on a new worker approve (edited) files one ticket,
    reject files none, the unanswered one gets the timeout default from the workflow timer; a duplicate
    submission runs nothing again."""
    cfg = _approval_config(tmp_path / "cfg", timeout_s=20, on_timeout="approve")
    workers, env = make_workers({"SUPPORTDESK_CONFIG_DIR": str(cfg)})
    settings = _settings(env, config_dir=cfg)
    journal = RunJournal(env["SUPPORTDESK_DATABASE_URL"])
    first = workers.start()
    ids = ["acme.approve", "acme.reject", "acme.late"]
    with TemporalEngine(settings) as engine:
        for run_id in ids:
            engine.submit(run_id, BILLED_TWICE, None, {"tenant": "acme"})
        _wait_status(journal, ids, {"awaiting_approval"}, 120, workers)
        workers.sigkill(first)
        workers.start()
        engine.decide("acme.approve", "approve", {"priority": "medium", "title": "Refund one plan charge"},
                      "checked", "tenant:acme key:k_test")
        engine.decide("acme.reject", "reject", None, "already refunded", "tenant:acme key:k_test")
        approved = engine.wait_result("acme.approve", timeout_s=90)
        rejected = engine.wait_result("acme.reject", timeout_s=60)
        late = engine.wait_result("acme.late", timeout_s=90)
        assert approved is not None and approved.status.value == "ticket_created", workers.log_tail()
        assert (approved.priority, approved.ticket_title) == ("medium", "Refund one plan charge")
        assert rejected is not None and rejected.status.value == "rejected" and rejected.ticket_id is None
        assert late is not None and late.status.value == "ticket_created" and late.approval.decided_by == "timeout"
        engine.submit("acme.approve", BILLED_TWICE, None, {"tenant": "acme"})  # a duplicate: nothing runs again
        time.sleep(2)
        assert engine.ready()
    tickets = _tickets_by_key(env["SUPPORTDESK_DATABASE_URL"])
    assert (tickets["acme.approve"], tickets["acme.reject"], tickets["acme.late"]) == (1, 0, 1)
    decision = journal.first_audit("acme.approve", "approval_decision")
    assert decision.data["actor"] == "tenant:acme key:k_test" and decision.data["edits"]["priority"] == "medium"
    assert [e.kind for e in journal.audit("acme.approve")].count("run_finished") == 2  # parked once, completed once


def test_failover_of_50_runs_when_one_of_two_workers_is_sigkilled(make_workers, tmp_path):
    """50 runs submitted at once to two workers, one SIGKILLed while it holds an escalation: every run
    finishes, one ticket per escalated run and none for answered ones, and no completed model call is
    made twice."""
    workers, env = make_workers({"SUPPORTDESK_CONFIG_DIR": str(model_slots_config(tmp_path / "cfg"))})
    settings = _settings(env)
    journal = RunJournal(env["SUPPORTDESK_DATABASE_URL"])
    victim = workers.start()
    workers.start()
    runs = {f"load.{i:02d}": (BILLED_TWICE if i % 2 == 0 else PASSWORD) for i in range(50)}
    with TemporalEngine(settings) as engine, ThreadPoolExecutor(max_workers=25) as pool:
        list(pool.map(lambda item: engine.submit(item[0], item[1], None, {"tenant": "load"}), runs.items()))
        running_at_kill = _wait_victim_mid_escalation(journal, victim.pid, runs, min_done=8, timeout_s=180)
        workers.sigkill(victim)
        _wait_status(journal, list(runs), {"completed", "failed"}, 240, workers)
    tickets = _tickets_by_key(env["SUPPORTDESK_DATABASE_URL"])
    taken_over = 0
    for run_id, query in runs.items():
        state = _state(journal, run_id)
        expected = "ticket_created" if query is BILLED_TWICE else "faq_answered"
        assert state.status.value == expected, (run_id, state.status, state.failure_reason)
        assert tickets[run_id] == (1 if expected == "ticket_created" else 0), run_id
        audit = journal.audit(run_id)
        calls = Counter((e.step, e.data["call_key"]) for e in audit if e.kind == "llm_call")
        assert all(n == 1 for n in calls.values()), (run_id, calls)
        assert len(calls) == state.llm_calls
        taken_over += any(e.kind == "lease_acquired" and e.data.get("resumed") for e in audit)
    assert running_at_kill and taken_over >= 1, (running_at_kill, taken_over)
