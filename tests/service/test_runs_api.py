"""POST/GET /v1/runs on a recording engine: idempotency, bad bodies, tenant isolation, listing."""

from __future__ import annotations

import pytest

from tests.service.conftest import DOUBLE_CHARGE, PASSWORD


def test_post_returns_202_with_location_and_hands_the_run_to_the_engine(api):
    """A new run: 202, Location, status queued; the engine gets the tenant-prefixed id once."""
    headers = api.key("acme")
    response = api.client.post("/v1/runs", json={"query": PASSWORD, "metadata": {"ticket": 7}},
                               headers={**headers, "Idempotency-Key": "order-1"})
    assert response.status_code == 202
    assert response.headers["location"] == "/v1/runs/order-1"
    body = response.json()
    assert (body["id"], body["status"], body["final"], body["metadata"]) == ("order-1", "queued", False, {"ticket": 7})
    assert api.engine.submitted == [("acme.order-1", PASSWORD, None, {"ticket": 7, "tenant": "acme"})]


def test_same_key_same_body_is_the_same_run(api):
    """A replay (metadata key order ignored) returns the same run and does not start a second one."""
    headers = {**api.key("acme"), "Idempotency-Key": "same"}
    first = api.client.post("/v1/runs", json={"query": PASSWORD, "metadata": {"a": 1, "b": 2}}, headers=headers)
    second = api.client.post("/v1/runs", json={"metadata": {"b": 2, "a": 1}, "query": PASSWORD}, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json()["created_at"] == second.json()["created_at"]
    assert [s[0] for s in api.engine.submitted].count("acme.same") == 2  # re-kicked, never re-created
    assert len(api.client.get("/v1/runs", headers=headers).json()["items"]) == 1


@pytest.mark.parametrize("other", [{"query": "Where is my invoice?"}, {"query": PASSWORD, "customer_id": "C-1001"},
                                   {"query": PASSWORD, "metadata": {"x": 1}}])
def test_same_key_other_body_is_409(api, other):
    """Reusing a key with another query, customer or metadata is 409 and shows nothing of the stored run."""
    headers = {**api.key("acme"), "Idempotency-Key": "k"}
    assert api.client.post("/v1/runs", json={"query": PASSWORD}, headers=headers).status_code == 202
    response = api.client.post("/v1/runs", json=other, headers=headers)
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    assert PASSWORD not in response.text


def test_a_run_started_from_the_cli_with_the_same_id_and_another_query_is_409(api):
    """The journal's payload check covers runs created outside the API under the tenant's id."""
    from supportdesk._runner import open_journal

    open_journal(api.settings).start_run("acme.cli-1", "Some other question entirely", None)
    response = api.client.post("/v1/runs", json={"query": PASSWORD}, headers={**api.key("acme"), "Idempotency-Key": "cli-1"})
    assert response.status_code == 409


def test_without_a_key_one_is_generated(api):
    """No Idempotency-Key: a fresh id comes back in Location."""
    response = api.client.post("/v1/runs", json={"query": PASSWORD}, headers=api.key())
    assert response.status_code == 202
    run_id = response.json()["id"]
    assert response.headers["location"] == f"/v1/runs/{run_id}" and len(run_id) == 32


@pytest.mark.parametrize("key", ["../etc/passwd", "has space", "-leading", "x" * 200, "ünï".encode()])
def test_invalid_idempotency_key_is_400(api, key):
    """Keys outside [A-Za-z0-9._-]{1,128} (tenant prefix included) are 400 naming the header."""
    headers = {**api.key(), "Idempotency-Key": key}
    response = api.client.post("/v1/runs", json={"query": PASSWORD}, headers=headers)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Idempotency-Key")
    assert api.engine.submitted == []


@pytest.mark.parametrize(
    ("content", "content_type", "status", "words"),
    [
        (b"", "application/json", 400, "empty"),
        (b"{not json", "application/json", 400, "not valid JSON"),
        (b"\xff\xfe\x00\x01binary", "application/json", 400, ""),
        (b"[1, 2]", "application/json", 422, "JSON object"),
        (b'"just a string"', "application/json", 422, "JSON object"),
        (b'{"query": "hi", "extra": 1}', "application/json", 422, "extra"),
        (b'{"query": ""}', "application/json", 422, "query"),
        (b'{"query": "   "}', "application/json", 422, "empty"),
        (b'{"query": "a\\u0000b"}', "application/json", 422, "binary"),
        (b'{"query": 12}', "application/json", 422, "query"),
        (b'{"query": "hi", "metadata": {"tenant": "other"}}', "application/json", 422, "reserved"),
        (b'{"query": "hi", "customer_id": "\\u200b"}', "application/json", 422, "customer_id"),
        (b"query=hi", "application/x-www-form-urlencoded", 422, ""),
    ],
)
def test_bad_bodies_are_4xx_with_a_clear_message(api, content, content_type, status, words):
    """Empty, malformed, binary or invalid bodies are 400/422 problem+json; nothing is admitted."""
    response = api.client.post("/v1/runs", content=content, headers={**api.key(), "Content-Type": content_type})
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert words in response.json()["detail"]
    assert api.engine.submitted == []


def test_an_oversized_body_is_413(api):
    """A body over SUPPORTDESK_MAX_BODY_BYTES is refused before parsing."""
    big = b'{"query": "' + b"a" * (api.settings.max_body_bytes + 10) + b'"}'
    response = api.client.post("/v1/runs", content=big, headers={**api.key(), "Content-Type": "application/json"})
    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]


def test_an_overlong_query_is_422(api):
    """A query over SUPPORTDESK_MAX_QUERY_CHARS (inside the body limit) is 422 naming the limit."""
    response = api.client.post("/v1/runs", json={"query": "a" * (api.settings.max_query_chars + 1)}, headers=api.key())
    assert response.status_code == 422
    assert "limit" in response.json()["detail"]


def test_unknown_customer_is_422_and_nothing_is_admitted(api):
    """The backend vouches for customer_id; one not in the directory is refused before any write."""
    headers = {**api.key("acme"), "Idempotency-Key": "who"}
    response = api.client.post("/v1/runs", json={"query": DOUBLE_CHARGE, "customer_id": "C-9999"}, headers=headers)
    assert response.status_code == 422
    assert "C-9999" in response.json()["detail"]
    assert api.client.get("/v1/runs/who", headers=headers).status_code == 404
    known = api.client.post("/v1/runs", json={"query": DOUBLE_CHARGE, "customer_id": "C-1001"}, headers=headers)
    assert known.status_code == 202 and known.json()["customer_id"] == "C-1001"


def test_the_same_key_in_two_tenants_is_two_runs(api):
    """Tenants share no idempotency keys: each gets its own run with its own query."""
    acme, globex = {**api.key("acme"), "Idempotency-Key": "k1"}, {**api.key("globex"), "Idempotency-Key": "k1"}
    assert api.client.post("/v1/runs", json={"query": PASSWORD}, headers=acme).status_code == 202
    assert api.client.post("/v1/runs", json={"query": DOUBLE_CHARGE}, headers=globex).status_code == 202
    assert [s[0] for s in api.engine.submitted] == ["acme.k1", "globex.k1"]


def test_another_tenants_run_is_404_everywhere(api):
    """Run, events, resume and approval decision of another tenant's run answer 404 like a missing run."""
    owner = {**api.key("acme"), "Idempotency-Key": "secret-run"}
    assert api.client.post("/v1/runs", json={"query": PASSWORD}, headers=owner).status_code == 202
    intruder = api.key("globex")
    for method, path, body in [("get", "/v1/runs/secret-run", None), ("get", "/v1/runs/secret-run/events", None),
                               ("post", "/v1/runs/secret-run/resume", None),
                               ("post", "/v1/approvals/secret-run", {"decision": "reject", "note": "no"})]:
        response = api.client.request(method, path, json=body, headers=intruder)
        assert response.status_code == 404, (path, response.text)
        assert PASSWORD not in response.text
    assert api.client.get("/v1/runs", headers=intruder).json()["items"] == []
    assert api.client.get("/v1/runs/secret-run", headers=owner).status_code == 200


def test_listing_pages_with_a_cursor_and_filters_by_status(api):
    """GET /v1/runs: newest first, limit + next_cursor pages through all, status filters."""
    headers = api.key("acme")
    for i in range(5):
        api.client.post("/v1/runs", json={"query": f"{PASSWORD} ({i})"}, headers={**headers, "Idempotency-Key": f"r{i}"})
    seen, cursor = [], None
    while True:
        page = api.client.get("/v1/runs", params={"limit": 2, **({"cursor": cursor} if cursor else {})}, headers=headers).json()
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [f"r{i}" for i in reversed(range(5))]
    assert len(api.client.get("/v1/runs", params={"status": "queued"}, headers=headers).json()["items"]) == 5
    assert api.client.get("/v1/runs", params={"status": "completed"}, headers=headers).json()["items"] == []
    assert api.client.get("/v1/runs", params={"cursor": "garbage!"}, headers=headers).status_code == 422


def test_resume_of_an_admitted_run_goes_to_the_engine_and_an_unknown_one_is_404(api):
    """POST /resume: a run the journal never saw is resubmitted; an unknown id is 404."""
    headers = {**api.key("acme"), "Idempotency-Key": "again"}
    api.client.post("/v1/runs", json={"query": PASSWORD}, headers=headers)
    assert api.client.post("/v1/runs/again/resume", headers=headers).status_code == 202
    assert [s[0] for s in api.engine.submitted] == ["acme.again", "acme.again"]
    assert api.client.post("/v1/runs/nope/resume", headers=headers).status_code == 404


def test_accepted_runs_that_never_started_are_handed_over_again_at_start_up(tmp_path):
    """A 202 survives a restart: the next app start submits runs the journal never saw."""
    from fastapi.testclient import TestClient

    from supportdesk.service.app import create_app
    from supportdesk.service.keys import KeyStore
    from tests.service.conftest import RecordingEngine, service_settings

    settings = service_settings(tmp_path / "home")
    headers = {"Authorization": f"Bearer {KeyStore.from_settings(settings).create('acme')[1]}", "Idempotency-Key": "x"}
    with TestClient(create_app(settings, engine=RecordingEngine())) as client:
        assert client.post("/v1/runs", json={"query": PASSWORD}, headers=headers).status_code == 202
    after = RecordingEngine()
    with TestClient(create_app(settings, engine=after)):
        pass
    assert [s[:2] for s in after.submitted] == [("acme.x", PASSWORD)]


def test_health_ready_and_openapi(api):
    """/healthz and /readyz answer without a key; readyz is 503 when the engine is not ready; /openapi.json lists /v1."""
    assert api.client.get("/healthz").json() == {"status": "ok"}
    assert api.client.get("/readyz").json()["status"] == "ready"
    api.engine.is_ready = False
    not_ready = api.client.get("/readyz")
    assert not_ready.status_code == 503 and "engine" in not_ready.json()["detail"]
    paths = api.client.get("/openapi.json").json()["paths"]
    assert {"/v1/runs", "/v1/runs/{run_id}", "/v1/runs/{run_id}/events", "/v1/approvals/{run_id}"} <= set(paths)
    assert all(not p.startswith("/console") for p in paths)
