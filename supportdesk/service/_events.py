"""A run's progress as Server-Sent Events, read from the journal's audit trail.

The audit trail is durable and shared, so a stream works whichever process (or Temporal worker)
executes the run, and survives restarts: each event's ``id`` is the audit entry's sequence number,
and a client reconnecting with ``Last-Event-ID: N`` gets the entries after N. Event names are the
audit kinds (``step_start``, ``step_end``, ``llm_call``, ``approval_requested`` ...), except that the
entry finishing the run becomes ``final`` carrying the final state, after which the stream ends.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from supportdesk.durable.journal import AuditEntry

__all__ = ["event_stream", "format_event"]

_FINAL = ("completed", "failed")


def format_event(event: str, data: Any, *, event_id: int | None = None) -> str:
    """One SSE frame."""
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {event}")
    text = json.dumps(data, ensure_ascii=False, default=str)
    lines.extend(f"data: {line}" for line in text.splitlines() or [""])
    return "\n".join(lines) + "\n\n"


async def event_stream(
    external_id: str,
    after_seq: int,
    read_after: Callable[[int], list[AuditEntry]],
    final_state: Callable[[], dict[str, Any] | None],
    is_final: Callable[[], bool],
    *,
    poll_s: float = 0.25,
    keepalive_s: float = 15.0,
    max_s: float = 3600.0,
) -> AsyncIterator[str]:
    """Yield SSE frames for the audit entries after ``after_seq`` until the run is final (or ``max_s``)."""
    yield "retry: 1000\n\n"
    last = after_seq
    quiet_since = time.monotonic()
    deadline = time.monotonic() + max_s
    while time.monotonic() < deadline:
        entries = await asyncio.to_thread(read_after, last)
        for entry in entries:
            last = entry.seq
            payload: dict[str, Any] = {
                "run_id": external_id, "seq": entry.seq, "ts": entry.ts, "step": entry.step, "kind": entry.kind,
                "data": entry.data,
            }
            if entry.kind == "run_finished" and entry.data.get("status") in _FINAL:
                payload["status"] = entry.data.get("status")
                payload["state"] = await asyncio.to_thread(final_state)
                yield format_event("final", payload, event_id=entry.seq)
                return
            name = "run_parked" if entry.kind == "run_finished" else entry.kind
            yield format_event(name, payload, event_id=entry.seq)
        if entries:
            quiet_since = time.monotonic()
            continue
        if await asyncio.to_thread(is_final) and not await asyncio.to_thread(read_after, last):
            return  # final, and the client saw the final event already (Last-Event-ID)
        if time.monotonic() - quiet_since >= keepalive_s:
            quiet_since = time.monotonic()
            yield ": keepalive\n\n"
        await asyncio.sleep(poll_s)
