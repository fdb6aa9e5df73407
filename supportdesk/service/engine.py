"""Where the service's runs execute: the :class:`Engine` protocol and the embedded default.

The HTTP layer admits a run (validates it, records the idempotency key, checks the customer) and
then hands it to an engine. Engines only execute: every result lands in the run journal, so the API
reads status, state and events from the database, whichever engine (and whichever process) ran it.

    from supportdesk.service.engine import InProcessEngine, build_engine
    from supportdesk.settings import Settings

    engine = InProcessEngine(Settings(), workers=4)      # bounded pool, services built once
    engine.submit("acme.order-42", "I was charged twice", "C-1001", {"tenant": "acme"})
    engine.queue_depth()                                 # runs waiting for a worker
    engine.close()                                       # finish what runs, drop what waits

``SUPPORTDESK_ENGINE=temporal`` makes :func:`build_engine` return
``supportdesk.service.temporal.engine.TemporalEngine(settings)`` instead (``pip install
'supportdesk[temporal]'``): same protocol, runs executed by ``supportdesk worker`` processes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from supportdesk.errors import ConfigError, SupportdeskError
from supportdesk.settings import Settings

if TYPE_CHECKING:
    from supportdesk.flows.services import SupportServices
    from supportdesk.models import CustomerTicketState

__all__ = ["Decision", "Engine", "InProcessEngine", "build_engine"]

logger = logging.getLogger(__name__)

Decision = Literal["approve", "reject"]
#: Called after a run (or a decision) finished executing in this process, with the final state.
DoneCallback = Callable[[str, "CustomerTicketState"], None]


@runtime_checkable
class Engine(Protocol):
    """Executes admitted runs. Every method returns at once; results go to the run journal.

    ``run_id`` is the service's internal id (``f"{tenant}.{idempotency_key}"``), already validated.
    ``customer`` is the account the caller's key vouched for (or None); ``metadata`` is the
    caller's metadata plus ``tenant`` (JSON-native values). Submitting an id twice must never
    execute it twice (the journal's lease and idempotent start make a duplicate a no-op).
    """

    def submit(self, run_id: str, query: str, customer: str | None, metadata: Mapping[str, Any]) -> None:
        """Start executing a new run (or pick up an existing unfinished one with that id)."""
        ...

    def resume(self, run_id: str) -> None:
        """Continue a crashed or parked run from its last completed step."""
        ...

    def decide(
        self,
        run_id: str,
        decision: Decision,
        edits: Mapping[str, Any] | None,
        note: str | None,
        actor: str,
    ) -> None:
        """Apply a human decision to a run that waits for approval (``actor`` goes to the audit trail).

        May raise :class:`~supportdesk.errors.ApprovalError` at once when it can tell the run does not wait.
        """
        ...

    def ready(self) -> bool:
        """True when the engine can take work (pool open / Temporal server reachable)."""
        ...

    def queue_depth(self) -> int:
        """Runs accepted but not yet picked up by a worker (best effort)."""
        ...

    def close(self) -> None:
        """Stop taking work and release resources."""
        ...


class InProcessEngine:
    """A bounded worker pool in this process, over the configured journal (SQLite by default).

    :param settings: the settings every run uses (database, model, budgets).
    :param workers: how many runs execute at once (threads); further runs queue.
    :param services: prebuilt services shared by every run (tests pass scripted ones); default:
        built once from ``settings`` on first use, so the model loads once per process.
    :param on_done: called with ``(run_id, final_state)`` after each execution in this process
        (the service uses it for metrics); its errors are logged, never raised.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        workers: int = 2,
        services: SupportServices | None = None,
        on_done: DoneCallback | None = None,
    ) -> None:
        if workers < 1:
            raise ConfigError(f"workers must be at least 1, not {workers}")
        self.settings = settings or Settings()
        self.workers = workers
        self._services = services
        self._services_lock = threading.Lock()
        self._on_done = on_done
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="supportdesk-run")
        self._lock = threading.Lock()
        self._inflight: dict[str, Future[Any]] = {}
        self._queued = 0
        self._closed = False

    def __repr__(self) -> str:
        return f"InProcessEngine(workers={self.workers}, queued={self.queue_depth()})"

    # --- the protocol ---------------------------------------------------------------------

    def submit(self, run_id: str, query: str, customer: str | None, metadata: Mapping[str, Any]) -> None:
        """Queue ``run_id``; a no-op while the same id is already queued or executing here."""
        from supportdesk._runner import run_query

        self._schedule(
            run_id,
            lambda: run_query(query, customer=customer, run_id=run_id, settings=self.settings, services=self.services()),
        )

    def resume(self, run_id: str) -> None:
        """Queue a resume of ``run_id`` (raises :class:`RunNotFoundError` at once for an unknown id)."""
        from supportdesk._runner import open_journal, resume_run

        open_journal(self.settings).get(run_id)
        self._schedule(run_id, lambda: resume_run(run_id, settings=self.settings, services=self.services()))

    def decide(
        self,
        run_id: str,
        decision: Decision,
        edits: Mapping[str, Any] | None,
        note: str | None,
        actor: str,
    ) -> None:
        """Apply the decision on the pool (approve files the ticket through the exactly-once path)."""
        from supportdesk import approvals

        if decision == "approve":
            job: Callable[[], Any] = lambda: approvals.approve(  # noqa: E731
                run_id, edits=dict(edits) if edits else None, note=note, actor=actor,
                settings=self.settings, services=self.services(),
            )
        elif decision == "reject":
            job = lambda: approvals.reject(run_id, note=note, actor=actor, settings=self.settings)  # noqa: E731
        else:
            raise ValueError(f"decision must be 'approve' or 'reject', not {decision!r}")
        self._schedule(run_id, job, replace=True)

    def ready(self) -> bool:
        """True while the pool is open and the shared services (the model) are built."""
        return not self._closed and self._services is not None

    def warm(self) -> None:
        """Build the shared services in the background now, so the first run does not wait for the model."""
        if self._services is None:
            threading.Thread(target=self._warm, name="supportdesk-warm", daemon=True).start()

    def _warm(self) -> None:
        try:
            self.services()
        except Exception:
            logger.warning("building the services failed; the first run will report why", exc_info=True)

    def queue_depth(self) -> int:
        """Runs accepted but not yet started by a worker."""
        with self._lock:
            return self._queued

    def close(self) -> None:
        """Let executing runs finish; runs still queued are dropped (their journal rows stay resumable)."""
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)

    # --- helpers --------------------------------------------------------------------------

    def services(self) -> SupportServices:
        """The services every run shares, built once on first use."""
        if self._services is None:
            with self._services_lock:
                if self._services is None:
                    from supportdesk.flows.services import build_services

                    self._services = build_services(self.settings)
        return self._services

    def running(self, run_id: str) -> bool:
        """True while ``run_id`` is queued or executing in this engine."""
        with self._lock:
            future = self._inflight.get(run_id)
            return future is not None and not future.done()

    def wait(self, run_id: str, timeout: float | None = None) -> bool:
        """Block until this engine's work on ``run_id`` is done; False on timeout (nothing in flight: True)."""
        with self._lock:
            future = self._inflight.get(run_id)
        if future is None:
            return True
        try:
            future.result(timeout=timeout)
        except TimeoutError:
            return False
        except Exception:  # noqa: BLE001 - the job logged it; the journal has the outcome
            return True
        return True

    def _schedule(self, run_id: str, job: Callable[[], CustomerTicketState], *, replace: bool = False) -> None:
        with self._lock:
            if self._closed:
                raise SupportdeskError("the engine is shutting down; try again later")
            current = self._inflight.get(run_id)
            if current is not None and not current.done() and not replace:
                logger.debug("run %s already queued or executing here", run_id)
                return
            self._queued += 1
            future = self._pool.submit(self._execute, run_id, job)
            self._inflight[run_id] = future
            future.add_done_callback(lambda f, rid=run_id: self._forget(rid, f))

    def _forget(self, run_id: str, future: Future[Any]) -> None:
        with self._lock:
            if self._inflight.get(run_id) is future:
                del self._inflight[run_id]
            if future.cancelled():
                self._queued -= 1

    def _execute(self, run_id: str, job: Callable[[], CustomerTicketState]) -> CustomerTicketState | None:
        with self._lock:
            self._queued -= 1
        try:
            state = job()
        except SupportdeskError as exc:
            logger.warning("run %s: %s: %s", run_id, type(exc).__name__, exc)
            return None
        except Exception:
            logger.exception("run %s: unexpected error in the worker", run_id)
            return None
        if self._on_done is not None:
            try:
                self._on_done(run_id, state)
            except Exception:
                logger.warning("run %s: on_done callback failed", run_id, exc_info=True)
        return state


def build_engine(settings: Settings, *, workers: int = 2, **kwargs: Any) -> Engine:
    """The engine ``settings.engine`` names: ``inprocess`` (default) or ``temporal``."""
    name = (getattr(settings, "engine", None) or "inprocess").strip().lower()
    if name in ("inprocess", "in-process", "embedded"):
        return InProcessEngine(settings, workers=workers, **kwargs)
    if name == "temporal":
        try:
            from supportdesk.service.temporal.engine import TemporalEngine
        except ImportError as exc:
            raise ConfigError(
                "SUPPORTDESK_ENGINE=temporal needs the Temporal extra: pip install 'supportdesk[temporal]'"
            ) from exc
        return TemporalEngine(settings)  # type: ignore[no-any-return]
    raise ConfigError(f"SUPPORTDESK_ENGINE={name!r}: must be 'inprocess' or 'temporal'")
