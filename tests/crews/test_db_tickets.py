"""The database ticket store (SUPPORTDESK_TICKET_STORE=database): exactly one ticket per key, across threads."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from supportdesk.crews.tools.db_tickets import DatabaseTicketStore
from supportdesk.crews.tools.ticketing import build_ticket_backend
from supportdesk.models import TicketDraft
from supportdesk.settings import Settings


def _create(store, key="run-1"):
    draft = TicketDraft(title="Refund one charge", summary="Billed twice.")
    return store.create(draft, idempotency_key=key, category="billing", priority="high", customer_id="C-1001")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """A SQLite file, or the CI PostgreSQL server (skipped without SUPPORTDESK_TEST_POSTGRES_URL)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tickets.db'}"
    url = os.environ.get("SUPPORTDESK_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("PostgreSQL ticket-store test skipped: SUPPORTDESK_TEST_POSTGRES_URL unset")
    import uuid
    from urllib.parse import quote

    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{url}{'&' if '?' in url else '?'}options={quote(f'-csearch_path={schema}')}"


def test_same_key_from_many_threads_files_one_ticket(db_url):
    """Twenty concurrent creates with one key give one ticket; exactly one receipt says created."""
    store = DatabaseTicketStore(db_url)
    with ThreadPoolExecutor(max_workers=8) as pool:
        receipts = list(pool.map(lambda _: _create(DatabaseTicketStore(db_url)), range(20)))
    assert len({r.ticket_id for r in receipts}) == 1 and sum(r.created for r in receipts) == 1
    (ticket,) = store.list_tickets()
    assert (ticket["idempotency_key"], ticket["priority"], ticket["customer_id"]) == ("run-1", "high", "C-1001")
    assert store.find_by_key("run-1").ticket_id == receipts[0].ticket_id and store.find_by_key("other") is None


def test_setting_selects_the_database_store(tmp_path):
    """ticket_store=database builds the store on the journal's database; the default stays the SQLite file."""
    url = f"sqlite:///{tmp_path / 'j.db'}"
    assert isinstance(build_ticket_backend(Settings(home=tmp_path, database_url=url, ticket_store="database")),
                      DatabaseTicketStore)
    assert build_ticket_backend(Settings(home=tmp_path)).name == "local"
