"""Fixtures for the HTTP service: an app on a recording engine (API contract tests, no runs executed)
and an app on the real in-process engine with scripted models (runs execute end to end)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the service extra is not installed: pip install -e '.[test]'")

from fastapi.testclient import TestClient  # noqa: E402

from supportdesk.llm import ScriptedModel  # noqa: E402
from supportdesk.service.app import create_app  # noqa: E402
from supportdesk.service.engine import InProcessEngine  # noqa: E402
from supportdesk.service.keys import KeyStore  # noqa: E402
from supportdesk.settings import Settings  # noqa: E402

DOUBLE_CHARGE = "I got billed two times for my plan in November; please give one of the payments back."
PASSWORD = "How do I reset my password?"


def scripted_reply(call: Any) -> dict[str, Any]:
    """One JSON object that satisfies every structured call the flow makes (classification, title)."""
    return {"category": "billing", "priority": "high", "rationale": "A duplicate charge.",
            "title": "Refund a duplicate charge", "answer": "See the FAQ.", "grounded": False}


class RecordingEngine:
    """An Engine that records what the API hands it and executes nothing (API contract tests)."""

    def __init__(self) -> None:
        self.submitted: list[tuple[str, str, str | None, dict[str, Any]]] = []
        self.resumed: list[str] = []
        self.decisions: list[tuple[str, str, Any, Any, str]] = []
        self.is_ready = True

    def submit(self, run_id: str, query: str, customer: str | None, metadata: Mapping[str, Any]) -> None:
        self.submitted.append((run_id, query, customer, dict(metadata)))

    def resume(self, run_id: str) -> None:
        self.resumed.append(run_id)

    def decide(self, run_id: str, decision: str, edits: Any, note: Any, actor: str) -> None:
        self.decisions.append((run_id, decision, edits, note, actor))

    def ready(self) -> bool:
        return self.is_ready

    def queue_depth(self) -> int:
        return len(self.submitted)

    def close(self) -> None:
        pass


def service_settings(home: Path, **overrides: Any) -> Settings:
    """Settings for service tests: a private home, a generous rate limit unless a test asks otherwise."""
    values: dict[str, Any] = {"home": home, "rate_limit_burst": 10_000, "rate_limit_per_minute": 60_000}
    values.update(overrides)
    return Settings(**values)


class Api:
    """A TestClient plus helpers to make keys."""

    def __init__(self, client: TestClient, settings: Settings, engine: Any) -> None:
        self.client = client
        self.settings = settings
        self.engine = engine
        self.keys = KeyStore.from_settings(settings)

    def key(self, tenant: str | None = None, scopes: str = "runs:write,runs:read,approvals:write") -> dict[str, str]:
        """Authorization headers of a new key (a fresh tenant unless one is named)."""
        _, token = self.keys.create(tenant or f"t{uuid.uuid4().hex[:10]}", scopes)
        return {"Authorization": f"Bearer {token}"}

    def wait_final(self, headers: dict[str, str], run_id: str, timeout: float = 120.0, statuses: tuple[str, ...] = ()) -> dict:
        """Poll GET /v1/runs/{id} until the run is final (or in one of ``statuses``)."""
        deadline = time.monotonic() + timeout
        while True:
            body = self.client.get(f"/v1/runs/{run_id}", headers=headers).json()
            if body.get("final") or body.get("status") in statuses:
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} not final after {timeout}s: {body}")
            time.sleep(0.1)


@pytest.fixture
def api(tmp_path) -> Iterator[Api]:
    """The app on a RecordingEngine: requests are admitted, nothing executes."""
    settings = service_settings(tmp_path / "home")
    engine = RecordingEngine()
    with TestClient(create_app(settings, engine=engine)) as client:
        yield Api(client, settings, engine)


@pytest.fixture(scope="session")
def live_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("service-live") / "home"


@pytest.fixture(scope="session")
def live_services(live_home):
    """Real services (RAG, triage, local ticket store) around a scripted model, built once for the session."""
    from supportdesk.flows.services import build_services

    return build_services(service_settings(live_home), chat_model=ScriptedModel(scripted_reply))




@pytest.fixture(scope="session")
def live(live_home, live_services) -> Iterator[Api]:
    """The app on the real in-process engine (2 workers) over SQLite; tests use their own tenants."""
    settings = service_settings(live_home)
    engine = InProcessEngine(settings, workers=2, services=live_services)
    with TestClient(create_app(settings, engine=engine)) as client:
        yield Api(client, settings, engine)
    engine.close()


class LiveServer:
    """A real uvicorn server on a loopback port, in a thread."""

    def __init__(self, app: Any) -> None:
        import socket

        import uvicorn

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, name="uvicorn-test", daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="session")
def live_server(live) -> Iterator[tuple[LiveServer, Api]]:
    """The live app's engine and database behind a real HTTP server on 127.0.0.1."""
    app = create_app(live.settings, engine=live.engine, recover=False)
    with LiveServer(app) as server:
        yield server, live


@pytest.fixture(scope="session")
def approval_live(tmp_path_factory) -> Iterator[Api]:
    """The app on the in-process engine with one approval rule matching every draft (a shadow rollout)."""
    from supportdesk._approval import ApprovalGate, ApprovalPolicy, ApprovalRule
    from supportdesk.flows.services import build_services

    home = tmp_path_factory.mktemp("service-approvals") / "home"
    settings = service_settings(home)
    services = build_services(settings, chat_model=ScriptedModel(scripted_reply))
    services.approvals = ApprovalGate(ApprovalPolicy(rules=[ApprovalRule(name="shadow", all=True)]))
    engine = InProcessEngine(settings, workers=2, services=services)
    with TestClient(create_app(settings, engine=engine)) as client:
        yield Api(client, settings, engine)
    engine.close()
