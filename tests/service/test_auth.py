"""Keys, scopes, tenants and the rate limit of the HTTP API."""

from __future__ import annotations

import pytest

from tests.service.conftest import PASSWORD, service_settings

ROUTES = [
    ("post", "/v1/runs", "runs:write", {"query": PASSWORD}),
    ("get", "/v1/runs", "runs:read", None),
    ("get", "/v1/runs/some-run", "runs:read", None),
    ("get", "/v1/runs/some-run/events", "runs:read", None),
    ("post", "/v1/runs/some-run/resume", "runs:write", None),
    ("get", "/v1/tickets", "runs:read", None),
    ("get", "/v1/approvals", "approvals:write", None),
    ("post", "/v1/approvals/some-run", "approvals:write", {"decision": "approve"}),
]


@pytest.mark.parametrize(("method", "path", "scope", "body"), ROUTES)
def test_missing_key_is_401_with_a_bearer_challenge(api, method, path, scope, body):
    """Every /v1 route answers 401 problem+json with WWW-Authenticate when no key is sent."""
    response = api.client.request(method, path, json=body)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "missing API key" in response.json()["detail"]


@pytest.mark.parametrize("token", ["nonsense", "sd_0123456789abcdef_wrongsecret", "sd_short_x", "Basic abc"])
def test_invalid_key_is_401(api, token):
    """Malformed, unknown or wrong-secret keys are 401, never 5xx."""
    response = api.client.get("/v1/runs", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["detail"] == "invalid or revoked API key"


def test_a_revoked_key_stops_working_at_once(api):
    """After revoke the same token is 401."""
    key, token = api.keys.create("acme", "runs:read")
    headers = {"Authorization": f"Bearer {token}"}
    assert api.client.get("/v1/runs", headers=headers).status_code == 200
    api.keys.revoke(key.key_id)
    assert api.client.get("/v1/runs", headers=headers).status_code == 401


@pytest.mark.parametrize(("method", "path", "scope", "body"), ROUTES)
def test_missing_scope_is_403(api, method, path, scope, body):
    """A key without the route's scope gets 403 naming the scope."""
    others = ",".join(s for s in ("runs:write", "runs:read", "approvals:write") if s != scope)
    response = api.client.request(method, path, json=body, headers=api.key(scopes=others))
    assert response.status_code == 403
    assert scope in response.json()["detail"]


@pytest.mark.parametrize(("method", "path", "scope", "body"), ROUTES)
def test_right_scope_passes_auth(api, method, path, scope, body):
    """With only the needed scope the route answers something other than 401/403 (404 for unknown runs)."""
    response = api.client.request(method, path, json=body, headers=api.key(scopes=scope))
    assert response.status_code not in (401, 403), response.text
    assert response.status_code < 500


def test_rate_limit_answers_429_with_retry_after(tmp_path):
    """Past the burst a key gets 429 with Retry-After; another key is unaffected."""
    from fastapi.testclient import TestClient

    from supportdesk.service.app import create_app
    from supportdesk.service.keys import KeyStore
    from tests.service.conftest import RecordingEngine

    settings = service_settings(tmp_path / "home", rate_limit_burst=3, rate_limit_per_minute=6)
    keys = KeyStore.from_settings(settings)
    first = {"Authorization": f"Bearer {keys.create('acme', 'runs:read')[1]}"}
    second = {"Authorization": f"Bearer {keys.create('acme', 'runs:read')[1]}"}
    with TestClient(create_app(settings, engine=RecordingEngine())) as client:
        codes = [client.get("/v1/runs", headers=first).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = client.get("/v1/runs", headers=first)
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= 10
        assert client.get("/v1/runs", headers=second).status_code == 200


def test_tokens_are_stored_only_as_hashes(api):
    """The secret part of a token appears nowhere in the database file."""
    _, token = api.keys.create("acme")
    secret = token.split("_", 2)[2]
    raw = api.settings.resolved_database_url.removeprefix("sqlite:///")
    blob = b"".join(open(p, "rb").read() for p in (raw, raw + "-wal") if __import__("os").path.exists(p))
    assert secret.encode() not in blob
    assert api.keys.verify(token).tenant == "acme"
