"""Durability around a SupportFlow run: the journal, the per-run model, and the step decorator.

A run's state is checkpointed after every step; on resume, completed steps are skipped (their
effects are in the restored state and their route labels in ``state.step_routes``), LLM calls are
replayed from the journal, and the ticket goes through the exactly-once intent/outcome path.
"""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from supportdesk.llm._types import ChatMessage, ChatModel, Completion

if TYPE_CHECKING:
    from supportdesk.durable import RunJournal
    from supportdesk.models import CustomerTicketState, TicketDraft, TicketReceipt

__all__ = ["RunContext", "RunScopedModel", "durable_step"]

F = TypeVar("F", bound=Callable[..., Any])
_RUN_MODEL: contextvars.ContextVar[ChatModel | None] = contextvars.ContextVar("supportdesk_run_model", default=None)


class RunScopedModel:
    """A ChatModel that routes each call through the current run's journaled, budgeted wrapper.

    Services are built once around this proxy; :meth:`bind` installs a run's wrapper for the
    duration of that run (visible to worker threads too). Outside a run it calls ``inner`` directly.
    """

    def __init__(self, inner: ChatModel) -> None:
        self.inner = inner
        self.name = inner.name
        self._bound: ChatModel | None = None
        self._lock = threading.Lock()

    @contextmanager
    def bind(self, run_model: ChatModel) -> Iterator[None]:
        token = _RUN_MODEL.set(run_model)
        with self._lock:
            self._bound = run_model
        try:
            yield
        finally:
            _RUN_MODEL.reset(token)
            with self._lock:
                self._bound = None

    def complete(self, messages: list[ChatMessage], **kwargs: Any) -> Completion:
        model = _RUN_MODEL.get() or self._bound or self.inner
        return model.complete(messages, **kwargs)


@dataclass
class RunContext:
    """One run's durable collaborators: the journal, its id, and the steps already completed."""

    journal: RunJournal
    run_id: str
    completed: set[str] = field(default_factory=set)
    ticket_wait_s: float = 30.0

    def checkpoint(self, step: str, state: CustomerTicketState) -> None:
        self.journal.checkpoint(self.run_id, step, state)
        self.completed.add(step)

    def create_ticket(self, backend: Any, draft: TicketDraft, **fields: Any) -> TicketReceipt:
        from supportdesk.durable import exactly_once_ticket

        return exactly_once_ticket(self.journal, self.run_id, backend, self.run_id, draft, wait_s=self.ticket_wait_s, **fields)


def durable_step(method: F) -> F:
    """Make a flow step resumable: skipped when already checkpointed (a router returns its recorded
    label), otherwise run inside a journal step and checkpointed after it."""
    name = method.__name__

    @functools.wraps(method)
    def wrapper(self: Any) -> Any:
        run: RunContext | None = getattr(self, "run", None)
        if run is not None and name in run.completed:
            self._services.progress(name, "already done (resumed)")
            return self.state.step_routes.get(name)
        with run.journal.step(run.run_id, name) if run is not None else nullcontext():
            label = method(self)
            if label is not None:
                self.state.step_routes[name] = label
            if run is not None:
                run.checkpoint(name, self.state)
        return label

    return wrapper  # type: ignore[return-value]
