"""Fixtures for flow tests: real services (RAG, crew, local ticket store) around a scripted model."""

from __future__ import annotations

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
