"""Fixtures for the durable-execution tests: every test runs on SQLite, and on PostgreSQL when one is available.

PostgreSQL: ``SUPPORTDESK_TEST_POSTGRES_URL`` if set, else a throwaway cluster started once per session
from the local binaries (``supportdesk.durable._pg``); each test gets its own schema. Without either,
the PostgreSQL variants are skipped with a visible reason (``pytest -ra`` lists it).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from _durable_helpers import FakeClock

from supportdesk.durable import RunJournal
from supportdesk.durable._pg import TempPostgres, start_temp_postgres
from tests.support.policies import model_slots_config


@pytest.fixture(scope="module", autouse=True)
def model_slots_policy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The durable tests crash, budget and replay an escalation with two model calls (rationale and
    title): every run here, in process or in a CLI subprocess, reads a policies.yaml in which the
    embedded policy has the model write both (the shipped one has code write them where it can).
    Module scope: the setting ends with each test module of this folder."""
    folder = model_slots_config(tmp_path_factory.mktemp("model-slots-config"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SUPPORTDESK_CONFIG_DIR", str(folder))
        yield folder


_NO_PG_REASON = "PostgreSQL tests skipped: SUPPORTDESK_TEST_POSTGRES_URL unset and no local server could be started"


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str | None]:
    """URL of a PostgreSQL server for the session, or None."""
    url = os.environ.get("SUPPORTDESK_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    server: TempPostgres | None = start_temp_postgres()
    if server is None:
        yield None
        return
    try:
        yield server.url
    finally:
        server.stop()


def _fresh_schema_url(server_url: str) -> str:
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in server_url else "?"
    return f"{server_url}{sep}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A fresh, empty database URL: SQLite in tmp_path, or a new schema on the PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'durable.db'}"
    server = request.getfixturevalue("postgres_server_url")
    if server is None:
        pytest.skip(_NO_PG_REASON)
    return _fresh_schema_url(server)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def journal(db_url: str, clock: FakeClock) -> RunJournal:
    """A journal on the fresh database, with a fake clock and owner 'A'."""
    return RunJournal(db_url, owner="A", lease_s=60, clock=clock, sleep=clock.sleep)
