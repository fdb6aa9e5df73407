"""Durability around a SupportFlow run: the journal, the per-run model, and the step decorator.

A run's state is checkpointed after every step; on resume, completed steps are skipped (their
effects are in the restored state and their route labels in ``state.step_routes``), LLM calls are
replayed from the journal, and the ticket goes through the exactly-once intent/outcome path.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from supportdesk import _tracing
from supportdesk.llm._types import ChatMessage, ChatModel, Completion

if TYPE_CHECKING:
    from supportdesk.durable import RunJournal
    from supportdesk.models import CustomerTicketState, TicketDraft, TicketReceipt

__all__ = ["RunContext", "RunScopedModel", "durable_step"]

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
# The run models bound in the current context, by proxy: each run's binding lives only in its own
# context (and the contexts copied from it), never in a process-wide slot another thread could see.
_RUN_MODELS: contextvars.ContextVar[Mapping[int, ChatModel]] = contextvars.ContextVar(
    "supportdesk_run_models", default=MappingProxyType({})
)


class RunScopedModel:
    """A ChatModel that routes each call through the current run's journaled, budgeted wrapper.

    Services are built once around this proxy and shared by concurrent runs; :meth:`bind` installs a
    run's wrapper in the *current context* for the duration of that run. Threads see the run only
    when they run in a copy of its context: ``asyncio.to_thread``, ``contextvars.copy_context().run``
    (CrewAI 1.x copies the context wherever it starts a worker thread: flow methods, async tasks,
    agent timeouts, guardrails, event handlers).

    Decided behaviour for a call made outside any run's context (a plain ``threading.Thread``, a
    thread-pool worker started without the context, code calling the services directly): it goes
    to ``inner`` unjournaled and unbudgeted, counted in :attr:`unscoped_calls` and logged at
    WARNING (the 1st, 2nd, 4th, 8th ... time) while runs are bound in this process. It never lands in another run's journal or
    budget, whatever runs are active at the time.
    """

    def __init__(self, inner: ChatModel) -> None:
        self.inner = inner
        self.name = inner.name
        self.unscoped_calls = 0
        self._active_runs = 0
        self._lock = threading.Lock()

    @contextmanager
    def bind(self, run_model: ChatModel) -> Iterator[None]:
        """Route this context's calls (and those of contexts copied from it) to ``run_model``."""
        token = _RUN_MODELS.set(MappingProxyType({**_RUN_MODELS.get(), id(self): run_model}))
        with self._lock:
            self._active_runs += 1
        try:
            yield
        finally:
            _RUN_MODELS.reset(token)
            with self._lock:
                self._active_runs -= 1

    def current(self) -> ChatModel | None:
        """The run model bound in the current context, or None outside any run."""
        return _RUN_MODELS.get().get(id(self))

    def complete(self, messages: list[ChatMessage], **kwargs: Any) -> Completion:
        model = self.current()
        if model is None:
            with self._lock:
                self.unscoped_calls += 1
                active, count = self._active_runs, self.unscoped_calls
            if active and (count & (count - 1)) == 0:  # the 1st, 2nd, 4th, 8th ... such call: no log flood
                logger.warning(
                    "model call outside any run's context while %d run(s) are active (%d so far): sent unjournaled "
                    "and unbudgeted (start threads with contextvars.copy_context() to keep them in their run)",
                    active, count,
                )
            model = self.inner
        with _tracing.model_span(getattr(model, "name", "")) as usage:
            completion = model.complete(messages, **kwargs)
            usage.record(completion)
        return completion


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
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:  # kwargs: e.g. CrewAI's crewai_trigger_payload
        run: RunContext | None = getattr(self, "run", None)
        if run is not None and name in run.completed:
            self._services.progress(name, "already done (resumed)")
            return self.state.step_routes.get(name)
        with _tracing.step_scope(name), run.journal.step(run.run_id, name) if run is not None else nullcontext():
            label = method(self, *args, **kwargs)
            if label is not None:
                self.state.step_routes[name] = label
            if run is not None:
                run.checkpoint(name, self.state)
        return label

    return wrapper  # type: ignore[return-value]
