"""Replay of completed calls: a resumed run never re-requests an LLM completion or a web search
that finished before the crash.

    from supportdesk.durable import JournaledChatModel, journaled

    model = JournaledChatModel(inner_model, journal, run_id)
    with journal.step(run_id, "classify"):
        model.complete(messages)        # live the first time; replayed from the journal on resume
        results = journaled(journal, run_id, None, f"web:{query}", lambda: search(query),
                            decode=lambda data: [WebResult(**r) for r in data])

LLM calls are keyed by (step name, number of the completed call within the step): the first
completion inside ``journal.step(run_id, "classify")`` is ``llm:0``, the next ``llm:1``. A call
that raises does not use up a number, so a retried call keeps its key. The request (model,
messages, schema, max_tokens, temperature) is hashed; if a replayed record's hash differs (the
prompt changed between crash and resume) the recorded answer is still replayed, with a warning and
``request_mismatch: true`` in the audit, unless ``strict=True`` (then the call goes live). Keys
assume the calls of one step run in a deterministic order (sequential code).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from supportdesk.durable.journal import RunJournal
from supportdesk.llm._types import ChatMessage, ChatModel, Completion

__all__ = ["JournaledChatModel", "completion_from_json", "completion_to_json", "journaled", "request_hash"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


def request_hash(model: str, messages: list[ChatMessage], **params: Any) -> str:
    """A stable SHA-256 of a chat request (never stored in clear: prompts may hold personal data)."""
    body = {"model": model, "messages": [[m.role, m.content] for m in messages], **params}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def completion_to_json(completion: Completion) -> str:
    """JSON text of a completion (``raw`` is not kept)."""
    return json.dumps(
        {
            "text": completion.text,
            "model": completion.model,
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "latency_s": completion.latency_s,
        }
    )


def completion_from_json(text: str) -> Completion:
    """Rebuild a journaled completion."""
    data = json.loads(text)
    return Completion(
        text=data["text"],
        model=data["model"],
        prompt_tokens=int(data.get("prompt_tokens", 0)),
        completion_tokens=int(data.get("completion_tokens", 0)),
        latency_s=float(data.get("latency_s", 0.0)),
        raw={"replayed": True},
    )


class JournaledChatModel:
    """A :class:`~supportdesk.llm.ChatModel` that journals completions and replays them on resume.

    :param inner: the real model.
    :param journal: where calls are recorded.
    :param run_id: the run the calls belong to; the step comes from :meth:`RunJournal.step`.
    :param strict: go live instead of replaying when the recorded request hash differs.
    """

    def __init__(self, inner: ChatModel, journal: RunJournal, run_id: str, *, strict: bool = False) -> None:
        self.inner = inner
        self.journal = journal
        self.run_id = run_id
        self.strict = strict
        self.name: str = inner.name

    def complete(
        self,
        messages: list[ChatMessage],
        *,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int = 512,
        temperature: float = 0.0,
    ) -> Completion:
        scope = self.journal.current_step(self.run_id)
        digest = request_hash(
            self.name, messages, json_schema=json_schema, max_tokens=max_tokens, temperature=temperature
        )
        with scope.lock:
            key = f"llm:{scope.calls}"
            record = self.journal.replayed(self.run_id, scope.name, key)
            mismatch = record is not None and record.request_hash != digest
            if record is not None and not (mismatch and self.strict):
                scope.calls += 1
        if record is not None and not (mismatch and self.strict):
            if mismatch:
                logger.warning(
                    "run %s step %s %s: request changed since it was recorded; replaying", self.run_id, scope.name, key
                )
            completion = completion_from_json(record.response_json)
            self.journal.append_audit(
                self.run_id,
                "llm_replay",
                {"call_key": key, "model": completion.model, "request_hash": digest, "request_mismatch": mismatch},
                step=scope.name,
            )
            return completion

        started = time.perf_counter()
        try:
            completion = self.inner.complete(
                messages, json_schema=json_schema, max_tokens=max_tokens, temperature=temperature
            )
        except Exception as exc:
            self.journal.append_audit(
                self.run_id,
                "error",
                {"during": "llm_call", "model": self.name, "error": type(exc).__name__, "message": str(exc)[:500]},
                step=scope.name,
            )
            raise
        latency = completion.latency_s or (time.perf_counter() - started)
        with scope.lock:
            key = f"llm:{scope.calls}"
            scope.calls += 1
            self.journal.record_call(
                self.run_id,
                scope.name,
                key,
                digest,
                completion_to_json(completion),
                audit={
                    "call_key": key,
                    "model": completion.model,
                    "prompt_tokens": completion.prompt_tokens,
                    "completion_tokens": completion.completion_tokens,
                    "latency_s": round(latency, 4),
                    "request_hash": digest,
                    "structured": json_schema is not None,
                },
            )
        return completion


def _default_encode(value: Any) -> str:
    def fallback(obj: Any) -> Any:
        if isinstance(obj, BaseModel):
            return obj.model_dump(mode="json")
        raise TypeError(f"cannot journal a {type(obj).__name__}; pass encode=")

    return json.dumps(value, default=fallback)


def journaled(
    journal: RunJournal,
    run_id: str,
    step: str | None,
    key: str,
    fn: Callable[[], T],
    *,
    encode: Callable[[T], str] = _default_encode,
    decode: Callable[[Any], T] = lambda data: data,
) -> T:
    """Run ``fn`` once per (run, step, key): later calls (a resume) return the recorded result.

    ``step`` None means the current step. The result is stored as ``encode(result)`` (default: JSON,
    pydantic models dumped); a replay returns ``decode(json.loads(stored))``, so ``decode`` must
    rebuild what ``fn`` returns (e.g. ``lambda rows: [WebResult(**r) for r in rows]``). Exceptions are
    not journaled: a failed call runs again on resume.
    """
    step_name = step or journal.current_step(run_id).name
    call_key = f"tool:{key}"
    record = journal.replayed(run_id, step_name, call_key)
    if record is not None:
        journal.append_audit(run_id, "tool_replay", {"call_key": call_key}, step=step_name)
        return decode(json.loads(record.response_json))
    started = time.perf_counter()
    try:
        value = fn()
    except Exception as exc:
        journal.append_audit(
            run_id,
            "error",
            {"during": "tool_call", "call_key": call_key, "error": type(exc).__name__, "message": str(exc)[:500]},
            step=step_name,
        )
        raise
    text = encode(value)
    journal.record_call(
        run_id,
        step_name,
        call_key,
        hashlib.sha256(call_key.encode("utf-8")).hexdigest(),
        text,
        audit={"call_key": call_key, "latency_s": round(time.perf_counter() - started, 4), "bytes": len(text)},
        audit_kind="tool_call",
    )
    return value
