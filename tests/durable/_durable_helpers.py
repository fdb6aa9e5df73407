"""Test doubles for the durable tests: a hand-moved clock, a fake ticket backend, spawn-safe workers."""

from __future__ import annotations

import signal
import sys
import time
import traceback
from typing import Any

import httpx
from supportdesk.models.responses import TicketDraft, TicketReceipt

from supportdesk.durable import RunJournal
from supportdesk.errors import TicketingError


class FakeClock:
    """A clock tests move by hand; ``sleep`` advances it instead of waiting."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


class StatusError(Exception):
    """An HTTP error carrying a status code, like the backends' errors."""

    def __init__(self, status_code: int, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code
        if retry_after is not None:
            self.retry_after = retry_after


class FakeTickets:
    """An in-memory ticket backend.

    ``create_script``: per create call, None (works), ``"timeout_after_send"`` (stores the ticket,
    then raises a read timeout), ``"lost"`` (raises TicketingError, stores nothing) or an exception.
    ``hidden_finds``: how many find_by_key calls miss a ticket created with an unclear outcome.
    """

    def __init__(self, create_script: list[Any] | None = None, *, hidden_finds: int = 0) -> None:
        self.create_script = list(create_script or [])
        self.hidden_finds = hidden_finds
        self.tickets: dict[str, TicketReceipt] = {}
        self.create_calls = 0
        self.find_calls = 0
        self._hidden: set[str] = set()

    def _store(self, key: str) -> TicketReceipt:
        receipt = TicketReceipt(
            ticket_id=f"T-{len(self.tickets) + 1}", backend="local", idempotency_key=key, created=True
        )
        self.tickets[key] = receipt
        return receipt

    def create(
        self, draft: TicketDraft, *, idempotency_key: str, category: str, priority: str, customer_id: str | None
    ) -> TicketReceipt:
        self.create_calls += 1
        action = self.create_script.pop(0) if self.create_script else None
        if action is None:
            return self._store(idempotency_key)
        if action == "timeout_after_send":
            self._store(idempotency_key)
            if self.hidden_finds:
                self._hidden.add(idempotency_key)
            raise httpx.ReadTimeout("read timed out")
        if action == "lost":
            raise TicketingError("connection reset by peer")
        raise action

    def find_by_key(self, key: str) -> TicketReceipt | None:
        self.find_calls += 1
        if key in self._hidden:
            self.hidden_finds -= 1
            if self.hidden_finds <= 0:
                self._hidden.discard(key)
            return None
        found = self.tickets.get(key)
        return found.model_copy(update={"created": False}) if found is not None else None


DRAFT = TicketDraft(title="Refund not received", summary="Customer paid twice and wants a refund.")


def contend_for_run(url: str, run_id: str, barrier: Any, results: Any) -> None:
    """Spawned worker: start the same run as everyone else; the one that gets the lease executes it."""
    try:
        _contend(url, run_id, barrier, results)
    except BaseException:
        results.put({"error": traceback.format_exc()})
        raise


def _contend(url: str, run_id: str, barrier: Any, results: Any) -> None:
    journal = RunJournal(url, lease_s=600)
    barrier.wait(timeout=300)
    handle = journal.start_run(run_id, "my invoice is wrong", None, wait_s=300, poll_s=0.05)
    if handle.acquired:
        with journal.step(run_id, "work"):
            journal.append_audit(run_id, "executed", {"owner": journal.owner})
            journal.checkpoint(run_id, "work", {"done_by": journal.owner})
        journal.finish(run_id, "completed")
        results.put({"acquired": True, "owner": journal.owner, "state": journal.load_state(run_id)})
    else:
        results.put(
            {"acquired": False, "final": handle.info.is_final, "owner": journal.owner, "state": handle.state_json}
        )


def write_audit_forever(url: str, run_id: str) -> None:
    """Subprocess body: append audit entries and checkpoints until killed; report each on stdout."""
    journal = RunJournal(url, owner="writer", lease_s=3600)
    journal.start_run(run_id, "q")
    n = 0
    while True:
        n += 1
        journal.append_audit(run_id, "tick", {"n": n})
        journal.checkpoint(run_id, f"s{n}", {"n": n})
        sys.stdout.write(f"{n}\n")
        sys.stdout.flush()


if __name__ == "__main__":  # python _durable_helpers.py URL RUN_ID
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    write_audit_forever(sys.argv[1], sys.argv[2])
    time.sleep(0)
