"""Shared fixtures: every test runs offline, with supportdesk's home in a temporary folder."""

from __future__ import annotations

import os
import socket

import pytest

import supportdesk  # noqa: F401  (applies the telemetry-off defaults before crewai/haystack load)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Each test gets its own SUPPORTDESK_HOME and no provider keys from the developer's shell."""
    monkeypatch.setenv("SUPPORTDESK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CREWAI_STORAGE_DIR", str(tmp_path / "crewai"))
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "SERPER_API_KEY",
                 "JIRA_URL", "JIRA_USER", "JIRA_EMAIL", "JIRA_API_TOKEN", "SUPPORTDESK_LLM", "SUPPORTDESK_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture
def loopback_only(monkeypatch):
    """Fail any socket connection outside 127.0.0.0/8 and ::1; record every address tried."""
    tried: list[object] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def allowed(address) -> bool:
        if isinstance(address, tuple):
            host = str(address[0])
            return host.startswith("127.") or host in ("::1", "localhost")
        return True  # AF_UNIX

    def guard(real):
        def connect(sock, address):
            tried.append(address)
            if not allowed(address):
                raise AssertionError(f"network access outside loopback: {address!r}")
            return real(sock, address)

        return connect

    monkeypatch.setattr(socket.socket, "connect", guard(real_connect))
    monkeypatch.setattr(socket.socket, "connect_ex", guard(real_connect_ex))
    return tried


def pytest_report_header(config):
    return f"supportdesk home isolated per test; postgres url: {os.environ.get('SUPPORTDESK_TEST_POSTGRES_URL', 'none')}"
