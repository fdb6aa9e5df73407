"""Fixtures for flow tests: real services (RAG, crew, local ticket store) around a scripted model."""

from __future__ import annotations

import socket

import pytest

from supportdesk.flows.services import build_services
from supportdesk.llm import ScriptedModel
from supportdesk.settings import Settings

CLASSIFY = {"category": "billing", "priority": "high", "rationale": "A duplicate charge."}
TITLE = {"title": "Refund duplicate subscription charge"}
DOUBLE_CHARGE = "I was charged twice for my subscription this month and I want one payment refunded."
PASSWORD = "How do I reset my password?"


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(home=tmp_path / "home")


@pytest.fixture
def make_services(settings):
    """Build real services with the given scripted replies (the model is returned for call counting)."""

    def make(replies):
        model = ScriptedModel(replies)
        return build_services(settings, chat_model=model), model

    return make


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
