"""Runs executed end to end by the in-process engine behind the API (scripted model, real RAG and triage)."""

from __future__ import annotations

import json

from tests.service.conftest import DOUBLE_CHARGE, PASSWORD


def _events(text: str) -> list[dict]:
    """Parse an SSE body into [{'id', 'event', 'data'}]."""
    events = []
    for block in text.split("\n\n"):
        fields: dict = {}
        for line in block.splitlines():
            name, _, value = line.partition(": ")
            if name in ("id", "event"):
                fields[name] = value
            elif name == "data":
                fields["data"] = json.loads(value)
        if "event" in fields:
            events.append(fields)
    return events


def test_wait_returns_200_with_the_final_state(live):
    """?wait=: the answered run comes back as 200 with its final CustomerTicketState."""
    headers = {**live.key(), "Idempotency-Key": "faq-1"}
    response = live.client.post("/v1/runs", params={"wait": 60}, json={"query": PASSWORD}, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["final"] and body["status"] == "completed" and body["outcome"] == "faq_answered"
    assert body["state"]["faq_response"]
    again = live.client.post("/v1/runs", json={"query": PASSWORD}, headers=headers)
    assert again.status_code == 202 and again.json()["state"] == body["state"]


def test_an_escalated_run_files_one_ticket_visible_only_to_its_tenant(live):
    """A ticket run: ticket_created for the vouched customer; /v1/tickets shows it to its tenant only."""
    headers = {**live.key(), "Idempotency-Key": "bill-1"}
    response = live.client.post("/v1/runs", params={"wait": 60}, json={"query": DOUBLE_CHARGE, "customer_id": "C-1001"},
                                headers=headers)
    assert response.status_code == 200, response.text
    state = response.json()["state"]
    assert (state["status"], state["customer_id"]) == ("ticket_created", "C-1001")
    tickets = live.client.get("/v1/tickets", headers=headers).json()["items"]
    assert [(t["ticket_id"], t["run_id"]) for t in tickets] == [(state["ticket_id"], "bill-1")]
    assert live.client.get("/v1/tickets", headers=live.key()).json()["items"] == []


def test_events_stream_steps_and_the_final_state_and_resume_after_last_event_id(live):
    """SSE: step_start/step_end per step then 'final' with the state; Last-Event-ID replays only later events."""
    headers = {**live.key(), "Idempotency-Key": "sse-1"}
    live.client.post("/v1/runs", json={"query": PASSWORD}, headers=headers)
    with live.client.stream("GET", "/v1/runs/sse-1/events", headers=headers) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = _events(stream.read().decode())
    kinds = [e["event"] for e in events]
    assert kinds[-1] == "final" and events[-1]["data"]["state"]["status"] == "faq_answered"
    assert "step_start" in kinds and "step_end" in kinds
    starts = [e["data"]["step"] for e in events if e["event"] == "step_start"]
    assert starts[0] == "intake"
    ids = [int(e["id"]) for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    middle = ids[len(ids) // 2]
    with live.client.stream("GET", "/v1/runs/sse-1/events", headers={**headers, "Last-Event-ID": str(middle)}) as stream:
        rest = _events(stream.read().decode())
    assert [int(e["id"]) for e in rest] == [i for i in ids if i > middle]
    with live.client.stream("GET", "/v1/runs/sse-1/events", headers={**headers, "Last-Event-ID": str(ids[-1])}) as stream:
        assert _events(stream.read().decode()) == []  # nothing after the final event: the stream ends at once


def test_a_run_started_over_http_shows_in_the_cli(live, monkeypatch, capsys):
    """`supportdesk runs --json` on the same database lists the HTTP run under its tenant-prefixed id."""
    from supportdesk.cli import main

    headers = live.key("clitenant")
    live.client.post("/v1/runs", params={"wait": 60}, json={"query": PASSWORD}, headers={**headers, "Idempotency-Key": "seen"})
    monkeypatch.setenv("SUPPORTDESK_HOME", str(live.settings.home))
    capsys.readouterr()
    assert main(["runs", "--json"]) == 0
    rows = {r["run_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["clitenant.seen"]["status"] == "completed"


def test_metrics_expose_runs_steps_model_use_and_queue(live):
    """/metrics: runs by status, step latency histograms, model calls and tokens, approvals waiting, queue depth."""
    headers = {**live.key(), "Idempotency-Key": "metric-1"}
    live.client.post("/v1/runs", params={"wait": 60}, json={"query": DOUBLE_CHARGE, "customer_id": "C-1002"}, headers=headers)
    text = live.client.get("/metrics").text
    assert 'supportdesk_runs{status="completed"}' in text
    assert 'supportdesk_step_seconds_bucket{le="+Inf",step="intake"}' in text
    calls = next(line for line in text.splitlines() if line.startswith("supportdesk_model_calls_total"))
    assert float(calls.split()[-1]) >= 1
    assert 'supportdesk_model_tokens_total{kind="prompt"}' in text
    assert "supportdesk_approvals_waiting" in text and "supportdesk_queue_depth" in text
    assert 'supportdesk_http_requests_total{method="POST",route="/v1/runs",status="200"}' in text
