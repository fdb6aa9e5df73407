"""Fixtures of the triage-crew tests: a seeded customer DB, a local ticket store, a fake Jira."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # makes tests/support importable

from support.fake_jira import FakeJira  # noqa: E402

from supportdesk.crews.classifier import ExampleClassifier  # noqa: E402
from supportdesk.crews.tools.customer_db import CustomerDB  # noqa: E402
from supportdesk.crews.tools.ticketing import LocalTicketStore  # noqa: E402

DOUBLE_CHARGE = "I was charged twice for my subscription this month and I want one payment refunded."


@pytest.fixture
def customer_db(tmp_path: Path) -> CustomerDB:
    return CustomerDB(tmp_path / "customers.db")


@pytest.fixture
def ticket_store(tmp_path: Path) -> LocalTicketStore:
    return LocalTicketStore(tmp_path / "tickets.db")


@pytest.fixture
def fake_jira() -> Iterator[FakeJira]:
    with FakeJira() as server:
        yield server


@pytest.fixture(scope="session")
def example_classifier() -> ExampleClassifier:
    """The real nearest-example classifier (MiniLM in NumPy), built once per session."""
    return ExampleClassifier.from_config()
