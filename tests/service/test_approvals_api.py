"""GET/POST /v1/approvals on the in-process engine: park, approve with edits, reject, conflicts, tenants."""

from __future__ import annotations

from tests.service.conftest import DOUBLE_CHARGE, PASSWORD


def _park(api, headers, key):
    """Start an escalating run and wait until it waits for approval."""
    response = api.client.post("/v1/runs", json={"query": DOUBLE_CHARGE, "customer_id": "C-1001"},
                               headers={**headers, "Idempotency-Key": key})
    assert response.status_code == 202, response.text
    body = api.wait_final(headers, key, statuses=("awaiting_approval",))
    assert body["status"] == "awaiting_approval", body
    return body


def test_approve_with_edits_files_one_ticket_with_the_edits(approval_live):
    """A parked run is listed, approved with a new title and priority, and files exactly one ticket."""
    api = approval_live
    headers = api.key()
    parked = _park(api, headers, "appr-1")
    assert parked["state"]["ticket_id"] is None
    queue = api.client.get("/v1/approvals", headers=headers).json()["items"]
    assert [i["run_id"] for i in queue] == ["appr-1"] and queue[0]["rules"] == ["shadow"]
    decision = {"decision": "approve", "edits": {"title": "Refund the second November charge", "priority": "medium"},
                "note": "checked the invoices"}
    response = api.client.post("/v1/approvals/appr-1", params={"wait": 60}, json=decision, headers=headers)
    assert response.status_code == 200, response.text
    state = response.json()["state"]
    assert state["status"] == "ticket_created" and state["priority"] == "medium"
    tickets = api.client.get("/v1/tickets", headers=headers).json()["items"]
    assert [(t["run_id"], t["title"], t["priority"]) for t in tickets] == [("appr-1", "Refund the second November charge", "medium")]
    assert api.client.get("/v1/approvals", headers=headers).json()["items"] == []
    again = api.client.post("/v1/approvals/appr-1", json={"decision": "reject", "note": "changed my mind"}, headers=headers)
    assert again.status_code == 409  # decided (and applied) already
    from supportdesk._runner import open_journal

    trail = open_journal(api.settings).audit(f"{_tenant(api, headers)}.appr-1")
    decided = [e for e in trail if e.kind == "approval_decision"]
    assert len(decided) == 1 and decided[0].data["actor"].startswith("tenant:")


def _tenant(api, headers):
    return api.keys.verify(headers["Authorization"].split()[1]).tenant


def test_reject_ends_the_run_rejected_without_a_ticket(approval_live):
    """Reject needs a note; then the run is rejected with it and no ticket exists."""
    api = approval_live
    headers = api.key()
    _park(api, headers, "appr-2")
    no_note = api.client.post("/v1/approvals/appr-2", json={"decision": "reject"}, headers=headers)
    assert no_note.status_code == 422 and "note" in no_note.json()["detail"]
    edits = api.client.post("/v1/approvals/appr-2", json={"decision": "reject", "note": "x", "edits": {"priority": "low"}},
                            headers=headers)
    assert edits.status_code == 422
    response = api.client.post("/v1/approvals/appr-2", params={"wait": 60}, json={"decision": "reject", "note": "duplicate"},
                               headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["state"]["status"] == "rejected"
    assert api.client.get("/v1/tickets", headers=headers).json()["items"] == []


def test_decisions_on_runs_that_do_not_wait_or_belong_elsewhere(approval_live):
    """An answered run is 409, another tenant's waiting run is 404 and absent from its queue, bad bodies 422."""
    api = approval_live
    owner = api.key()
    _park(api, owner, "appr-3")
    other = api.key()
    assert api.client.get("/v1/approvals", headers=other).json()["items"] == []
    stolen = api.client.post("/v1/approvals/appr-3", json={"decision": "approve"}, headers=other)
    assert stolen.status_code == 404
    api.client.post("/v1/runs", params={"wait": 60}, json={"query": PASSWORD}, headers={**other, "Idempotency-Key": "faq"})
    answered = api.client.post("/v1/approvals/faq", json={"decision": "approve"}, headers=other)
    assert answered.status_code == 409 and "does not wait" in answered.json()["detail"]
    for body in ({"decision": "maybe"}, {"decision": "approve", "edits": {"priority": "urgent"}},
                 {"decision": "approve", "edits": {"owner": "me"}}):
        assert api.client.post("/v1/approvals/appr-3", json=body, headers=owner).status_code == 422
    assert [i["run_id"] for i in api.client.get("/v1/approvals", headers=owner).json()["items"]] == ["appr-3"]
