"""Human approval before the ticket: rules, approve (with edits), reject, timeout, and decisions that
survive the deciding process being SIGKILLed (in-process engine, SQLite)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
import yaml

from supportdesk import approvals
from supportdesk._approval import ApprovalGate, ApprovalPolicy, ApprovalRule, load_approval_policy
from supportdesk._runner import open_journal, resume_run, run_query
from supportdesk.errors import ApprovalError, ConfigError
from supportdesk.flows.services import build_services
from supportdesk.llm import ScriptedModel
from supportdesk.models import CustomerTicketState, TicketStatus
from supportdesk.settings import Settings

DURABLE = Path(__file__).resolve().parent / "durable"
sys.path.insert(0, str(DURABLE))
from crash_driver import respond  # noqa: E402  (answers by JSON schema: billing/high, a title)

# A paraphrase of a duplicate-charge complaint (not a sentence of the shipped examples).
BILLED_TWICE = "My card got billed two times for the same monthly plan, please give one of the payments back."
BILLING_RULE = ApprovalRule(name="refunds-and-disputes", categories=["billing"])


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """Real services (RAG, crew, local ticket store) around a schema-answering scripted model, built once."""
    home = tmp_path_factory.mktemp("approvals-home")
    services = build_services(Settings(home=home), chat_model=ScriptedModel(respond))
    return home, services


@pytest.fixture
def env(shared, tmp_path):
    """(settings with a fresh journal, services) and a setter for the approval policy under test."""
    home, services = shared
    settings = Settings(home=home, database_url=f"sqlite:///{tmp_path / 'journal.db'}")

    def policy(**kwargs):
        services.approvals = ApprovalGate(ApprovalPolicy(**kwargs))

    policy(rules=[BILLING_RULE])
    yield settings, services, policy
    services.approvals = ApprovalGate(ApprovalPolicy())


def _tickets(services, run_id):
    return [t for t in services.tickets.list_tickets() if _field(t, "idempotency_key") == run_id]


def _field(ticket, name):
    return ticket.get(name) if isinstance(ticket, dict) else getattr(ticket, name)


def _park(settings, services, run_id):
    state = run_query(BILLED_TWICE, run_id=run_id, settings=settings, services=services)
    assert state.status is TicketStatus.AWAITING_APPROVAL, state.failure_reason
    return state


def _kinds(settings, run_id):
    return [e.kind for e in open_journal(settings).audit(run_id)]


# --- rules ------------------------------------------------------------------------------------------


def test_packaged_policy_has_no_rules_so_tickets_file_at_once(env):
    """The shipped policies.yaml approves nothing by hand: an escalation files its ticket as before."""
    settings, services, _ = env
    assert load_approval_policy().rules == []
    services.approvals = ApprovalGate.from_config(None)
    state = run_query(BILLED_TWICE, run_id="no-rule", settings=settings, services=services)
    assert state.status is TicketStatus.TICKET_CREATED and state.approval is None
    assert len(_tickets(services, "no-rule")) == 1


def test_rules_match_on_what_code_decided():
    """Category, priority, confidence and all-drafts rules match only their drafts; an empty rule is refused."""
    state = CustomerTicketState(category="billing", priority="high", classification_confidence=0.8)
    assert ApprovalRule(name="b", categories=["billing"]).matches(state)
    assert not ApprovalRule(name="t", categories=["technical"]).matches(state)
    assert ApprovalRule(name="h", priorities=["high"], categories=["billing"]).matches(state)
    assert not ApprovalRule(name="l", priorities=["low"], categories=["billing"]).matches(state)
    assert not ApprovalRule(name="c", confidence_below=0.5).matches(state)
    assert ApprovalRule(name="c", confidence_below=0.9).matches(state)
    assert ApprovalRule(name="shadow", all=True).matches(CustomerTicketState())
    with pytest.raises(ValueError, match="names no condition"):
        ApprovalRule(name="empty")


def test_malformed_approval_section_is_a_one_line_config_error(tmp_path):
    """A bad approval section in an override policies.yaml fails with ConfigError naming the key."""
    data = yaml.safe_load(Path(_packaged_policies()).read_text())
    data["approval"] = {"rules": [{"name": "x", "categories": ["billing"], "colour": "red"}]}
    (tmp_path / "policies.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="approval.rules.0.colour"):
        load_approval_policy(tmp_path)


def _packaged_policies() -> str:
    from supportdesk._config import config_path

    return str(config_path("policies.yaml"))


# --- approve, edit, reject --------------------------------------------------------------------------


def test_matching_draft_parks_awaiting_approval_with_its_draft(env):
    """A billing draft parks: state and journal say awaiting_approval, no ticket, the queue shows the draft."""
    settings, services, _ = env
    state = _park(settings, services, "park-1")
    assert state.approval.rules == ["refunds-and-disputes"] and state.approval.deadline
    assert state.ticket_title and state.final_summary and (state.category, state.priority) == ("billing", "high")
    assert not state.is_terminal and _tickets(services, "park-1") == []
    assert open_journal(settings).get("park-1").status.value == "awaiting_approval"
    (request,) = approvals.list_approvals(settings, services=services)
    assert (request.run_id, request.title, request.category) == ("park-1", state.ticket_title, "billing")
    assert "approval_requested" in _kinds(settings, "park-1")
    again = run_query(BILLED_TWICE, run_id="park-1", settings=settings, services=services)
    assert again.status is TicketStatus.AWAITING_APPROVAL and _tickets(services, "park-1") == []


def test_approve_files_exactly_one_ticket_and_audits_the_decision(env):
    """Approve files one ticket keyed by the run id; the audit names the CLI user; a second approve is refused."""
    settings, services, _ = env
    _park(settings, services, "ok-1")
    state = approvals.approve("ok-1", note="refund confirmed", settings=settings, services=services)
    assert state.status is TicketStatus.TICKET_CREATED and state.is_terminal
    assert state.approval.decision == "approve" and state.approval.decided_by.startswith("cli:")
    assert len(_tickets(services, "ok-1")) == 1
    decision = open_journal(settings).first_audit("ok-1", "approval_decision")
    assert decision.data["actor"].startswith("cli:") and decision.data["note"] == "refund confirmed" and decision.ts
    with pytest.raises(ApprovalError, match="does not wait"):
        approvals.approve("ok-1", settings=settings, services=services)
    assert len(_tickets(services, "ok-1")) == 1
    assert resume_run("ok-1", settings=settings, services=services).ticket_id == state.ticket_id


def test_approve_with_edits_files_the_edited_ticket(env):
    """Title, priority and category edits reach the filed ticket and the audit trail."""
    settings, services, _ = env
    _park(settings, services, "edit-1")
    edits = {"title": "Refund the second March charge", "priority": "medium", "category": "general"}
    state = approvals.approve("edit-1", edits=edits, actor="tenant:acme key:k_1", settings=settings, services=services)
    assert (state.ticket_title, state.priority, state.category) == tuple(edits.values())
    (ticket,) = _tickets(services, "edit-1")
    assert (_field(ticket, "title"), _field(ticket, "priority"), _field(ticket, "category")) == tuple(edits.values())
    decision = open_journal(settings).first_audit("edit-1", "approval_decision")
    assert decision.data["edits"] == edits and decision.data["actor"] == "tenant:acme key:k_1"


def test_invalid_edit_is_refused_before_anything_is_journaled(env):
    """An unknown category or an empty title raises ApprovalError; the run still waits, undecided."""
    settings, services, _ = env
    _park(settings, services, "bad-edit")
    with pytest.raises(ApprovalError, match="unknown category"):
        approvals.approve("bad-edit", edits={"category": "refunds"}, settings=settings, services=services)
    with pytest.raises(ApprovalError, match="title"):
        approvals.approve("bad-edit", edits={"title": ""}, settings=settings, services=services)
    assert open_journal(settings).first_audit("bad-edit", "approval_decision") is None
    assert [r.run_id for r in approvals.list_approvals(settings, services=services)] == ["bad-edit"]


def test_reject_ends_rejected_with_the_note_and_no_ticket(env):
    """Reject needs a note, ends the run rejected with it, files nothing, and cannot be followed by an approve."""
    settings, services, _ = env
    _park(settings, services, "no-1")
    with pytest.raises(ApprovalError, match="note"):
        approvals.reject("no-1", note="  ", settings=settings, services=services)
    state = approvals.reject("no-1", note="duplicate of an open ticket", settings=settings, services=services)
    assert state.status is TicketStatus.REJECTED and state.is_terminal and "duplicate of an open ticket" in state.failure_reason
    assert _tickets(services, "no-1") == [] and state.ticket_id is None
    assert open_journal(settings).get("no-1").is_final
    with pytest.raises(ApprovalError):
        approvals.approve("no-1", settings=settings, services=services)
    assert _tickets(services, "no-1") == []


def test_first_decision_wins_between_two_deciders(env):
    """A reject after a journaled approve (not yet applied) is refused; applying files the approved ticket."""
    settings, services, _ = env
    _park(settings, services, "race-1")
    approvals.record_decision("race-1", "approve", actor="tenant:a key:k1", settings=settings)
    with pytest.raises(ApprovalError, match="already decided: approve"):
        approvals.record_decision("race-1", "reject", note="no", actor="tenant:a key:k2", settings=settings)
    (moved,) = approvals.sweep(settings, services=services)
    assert moved.status is TicketStatus.TICKET_CREATED and len(_tickets(services, "race-1")) == 1


# --- timeout ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("default", ["approve", "reject"])
def test_no_decision_in_time_applies_the_default_on_the_next_look(env, default):
    """Past the deadline, listing the queue journals the default (decided by timeout) and applies it."""
    settings, services, policy = env
    policy(rules=[BILLING_RULE], timeout_s=0.3, on_timeout=default)
    run_id = f"late-{default}"
    _park(settings, services, run_id)
    time.sleep(0.5)
    assert approvals.list_approvals(settings, services=services) == []
    state = CustomerTicketState.model_validate_json(open_journal(settings).load_state(run_id))
    expected = TicketStatus.TICKET_CREATED if default == "approve" else TicketStatus.REJECTED
    assert state.status is expected and state.approval.decided_by == "timeout"
    assert len(_tickets(services, run_id)) == (1 if default == "approve" else 0)


def test_a_resume_after_the_deadline_applies_the_default_too(env):
    """Resuming a timed-out wait applies the default in the flow itself (no sweep needed)."""
    settings, services, policy = env
    policy(rules=[BILLING_RULE], timeout_s=0.3, on_timeout="reject")
    _park(settings, services, "late-resume")
    time.sleep(0.5)
    state = resume_run("late-resume", settings=settings, services=services)
    assert state.status is TicketStatus.REJECTED and state.approval.decided_by == "timeout"


# --- processes die --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_driver():
    from _crash_support import driver

    return driver()


def _approval_config(folder: Path) -> Path:
    data = yaml.safe_load(Path(_packaged_policies()).read_text())
    data["approval"] = {"rules": [BILLING_RULE.model_dump(exclude_none=True)], "timeout_s": 3600, "on_timeout": "reject"}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "policies.yaml").write_text(yaml.safe_dump(data))
    return folder


@pytest.mark.parametrize("kill_at", ["step_start:await_approval", "ticket_after"])
def test_sigkill_of_the_approving_process_loses_nothing(cli_driver, tmp_path, kill_at):
    """CLI run parks; `approve` is SIGKILLed after journaling (before applying / after the ticket call);
    `approvals` from a new process applies it: exactly one ticket, with the approver's edit."""
    home = cli_driver.new_home(tmp_path)
    env = cli_driver.env_for(home, None, {"SUPPORTDESK_CONFIG_DIR": str(_approval_config(tmp_path / "cfg"))})
    parked = cli_driver.run(["ask", BILLED_TWICE, "--run-id", "kill-1", "--json"], env=env)
    assert parked.json()["status"] == "awaiting_approval", parked.stderr[-2000:]
    killed = cli_driver.run(["approve", "kill-1", "--priority", "medium", "--json"], env=env, kill_at=kill_at)
    assert killed.returncode == -9, killed.stderr[-2000:]
    queue = cli_driver.run(["approvals", "--json"], env=env)
    assert queue.returncode == 0 and json.loads(queue.stdout) == [], queue.stderr[-2000:]
    shown = cli_driver.run(["show", "kill-1", "--json"], env=env).json()
    assert shown["state"]["status"] == "ticket_created" and shown["state"]["priority"] == "medium", queue.stderr[-3000:]
    tickets = [t for t in cli_driver.run(["tickets", "--json"], env=env).json() if t["idempotency_key"] == "kill-1"]
    assert len(tickets) == 1 and tickets[0]["priority"] == "medium"
    assert [e["kind"] for e in shown["audit"]].count("approval_decision") == 1


def test_cli_reject_needs_a_note_and_unknown_runs_exit_2(cli_driver, tmp_path):
    """`reject` without --note is a usage error; approving an unknown run exits 2 with one line."""
    home = cli_driver.new_home(tmp_path)
    env = cli_driver.env_for(home, None)
    assert cli_driver.run(["reject", "nope"], env=env).returncode == 2
    result = cli_driver.run(["approve", "nope"], env=env)
    assert result.returncode == 2 and "no run with id 'nope'" in result.stderr
