"""The run journal: run rows with an execution lease, step checkpoints, the call journal for replay,
side-effect intents/outcomes and the append-only audit trail. Every write is one transaction.

    from supportdesk.durable import RunJournal

    journal = RunJournal("sqlite:///var/supportdesk.db")
    handle = journal.start_run(state.id, state.original_query, state.customer_hint, wait_s=30)
    if not handle.acquired:                      # finished already, or another process runs it
        return handle.state_json                 # the stored result (None if still running elsewhere)
    for name, fn in steps:
        if name in handle.completed_steps:
            continue                             # done before a crash: skip, state already loaded
        with journal.step(state.id, name):       # LLM calls inside are journaled under this name
            state = fn(state)
            journal.checkpoint(state.id, name, state)
    journal.finish(state.id, "completed")

Leases: :meth:`RunJournal.start_run` inserts the run row (the database's primary key makes the id
unique) and then takes the lease (``lease_owner``, ``lease_expires``) in one conditional UPDATE
(the same transaction when the row is new), so of any number of processes starting the same id
exactly one executes it; the others wait up to ``wait_s`` for it to finish, or take over once the
lease expires (the owner crashed). Checkpoints, intents, :meth:`~RunJournal.finish` and
:meth:`~RunJournal.park` are fenced: they succeed only while this journal's ``owner`` still holds
the lease, else :class:`~supportdesk.errors.LeaseLostError`.
Checkpoints and step starts renew the lease.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVar

from pydantic import BaseModel

from supportdesk.durable import _sql
from supportdesk.durable.db import Database, Transaction
from supportdesk.durable.redact import redact, redact_data
from supportdesk.errors import IdempotencyConflictError, LeaseLostError, RunNotFoundError

__all__ = [
    "AuditEntry",
    "EffectRecord",
    "RecordedCall",
    "RunHandle",
    "RunInfo",
    "RunJournal",
    "RunStatus",
    "StepScope",
    "payload_fingerprint",
]

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


class RunStatus(str, Enum):
    """Where a durable run stands. ``completed`` and ``failed`` are final; the rest can be resumed.
    ``awaiting_approval``: parked (lease released) until an approval decision is journaled."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    NEEDS_RECONCILE = "needs_reconcile"
    AWAITING_APPROVAL = "awaiting_approval"


FINAL_STATUSES = frozenset({RunStatus.COMPLETED, RunStatus.FAILED})


@dataclass(frozen=True)
class RunInfo:
    """One run row (without its state)."""

    run_id: str
    query: str
    customer_hint: str | None
    status: RunStatus
    reason: str | None
    last_step: str | None
    created_at: str
    updated_at: str
    lease_owner: str | None
    lease_expires: float | None
    attempts: int

    @property
    def is_final(self) -> bool:
        """True for completed or failed runs: nothing more will execute."""
        return self.status in FINAL_STATUSES

    @classmethod
    def _from_row(cls, row: tuple[Any, ...]) -> RunInfo:
        return cls(
            run_id=row[0],
            query=row[1],
            customer_hint=row[2],
            status=RunStatus(row[3]),
            reason=row[4],
            last_step=row[5],
            created_at=row[6],
            updated_at=row[7],
            lease_owner=row[8],
            lease_expires=float(row[9]) if row[9] is not None else None,
            attempts=int(row[10]),
        )


@dataclass(frozen=True)
class RunHandle:
    """What :meth:`RunJournal.start_run` returns.

    ``acquired``: this process holds the lease and must execute (or resume) the run.
    ``created``: the run row was inserted by this call (a fresh run, not a resume).
    ``completed_steps`` / ``state_json``: what earlier attempts checkpointed (empty/None when fresh).
    When not acquired, ``info.is_final`` says whether ``state_json`` is the final result or the run
    is still executing elsewhere.
    """

    run_id: str
    created: bool
    acquired: bool
    info: RunInfo
    completed_steps: tuple[str, ...]
    state_json: str | None

    @property
    def status(self) -> RunStatus:
        """The run's status as of the handle."""
        return self.info.status

    @property
    def resumed(self) -> bool:
        """True when this process took over a run that had started before (crash, park, expiry)."""
        return self.acquired and not self.created


@dataclass(frozen=True)
class RecordedCall:
    """A journaled call result."""

    request_hash: str
    response_json: str
    ts: str


@dataclass(frozen=True)
class EffectRecord:
    """A side effect's row: ``status`` is intent, unclear, rejected or done (then ``outcome_json`` is set)."""

    effect: str
    key: str
    status: str
    attempts: int
    reason: str | None
    outcome_json: str | None
    intent_ts: str
    outcome_ts: str | None


@dataclass(frozen=True)
class AuditEntry:
    """One audit-trail entry (already redacted when written)."""

    run_id: str
    seq: int
    ts: str
    step: str | None
    kind: str
    data: dict[str, Any]


@dataclass
class StepScope:
    """The step a run is executing; numbers the journaled LLM calls inside it (0, 1, 2 ...)."""

    run_id: str
    name: str
    calls: int = 0
    ended: bool = False  # its step_end is journaled (with the step's checkpoint)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


_CURRENT_STEP: ContextVar[StepScope | None] = ContextVar("supportdesk_durable_step", default=None)
DEFAULT_STEP = "run"


def _owner_is_dead(owner: str | None) -> bool:
    """True when ``owner`` (``host:pid:tag``) was a process on this host that no longer exists.

    Lets a resume take over a run whose executor was killed at once, instead of waiting for the
    lease to expire; owners on other hosts still wait for expiry.
    """
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def payload_fingerprint(query: str, customer: str | None) -> str:
    """The SHA-256 of a run's payload: the query text and the caller's stated customer (trimmed, case-folded).

    Stored with the run; a run id reused with a payload of another fingerprint is refused.
    """
    who = customer.strip().casefold() if customer else None
    return hashlib.sha256(json.dumps([query, who], ensure_ascii=False).encode("utf-8")).hexdigest()


def _default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def to_json(state: BaseModel | Mapping[str, Any] | str) -> str:
    """JSON text of a state: a pydantic model, a mapping, or JSON text already."""
    if isinstance(state, BaseModel):
        return state.model_dump_json()
    if isinstance(state, str):
        json.loads(state)  # validate
        return state
    return json.dumps(dict(state))


class RunJournal:
    """Durable runs over a :class:`Database` (see the module docstring for a full example).

    :param db: a :class:`Database` or a database URL.
    :param owner: this executor's identity in leases; default ``host:pid:random``.
    :param lease_s: how long a lease lasts without renewal. Renewed at every checkpoint and side-effect
        intent, and at a step start unless this executor renewed it within the last quarter of
        ``lease_s`` (then nobody else can hold it), so it must exceed the longest step (LLM
        timeouts and retries included).
    :param clock: wall-clock seconds since the epoch (leases and timestamps); injectable.
    :param sleep: used while waiting for another executor; injectable.
    """

    def __init__(
        self,
        db: Database | str,
        *,
        owner: str | None = None,
        lease_s: float = 300.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.db = db if isinstance(db, Database) else Database(db)
        self.owner = owner or _default_owner()
        self.lease_s = lease_s
        self._clock = clock
        self._sleep = sleep
        self._active: dict[str, StepScope] = {}
        self._active_lock = threading.Lock()
        self._renewed: dict[str, float] = {}  # run id -> when this executor last renewed its lease

    def __repr__(self) -> str:
        return f"RunJournal({self.db!r}, owner={self.owner!r})"

    def _iso(self) -> str:
        return datetime.fromtimestamp(self._clock(), tz=UTC).isoformat(timespec="milliseconds")

    # --- runs -----------------------------------------------------------------------------

    def start_run(
        self,
        run_id: str,
        query: str,
        customer_hint: str | None = None,
        *,
        wait_s: float = 0.0,
        poll_s: float = 0.2,
    ) -> RunHandle:
        """Create the run if it is new (idempotent) and try to take its execution lease.

        Returns at once when the lease is taken or the run is final; otherwise retries every
        ``poll_s`` for up to ``wait_s`` seconds (the owner may finish, or its lease may expire), then
        returns a handle with ``acquired=False``. ``query``/``customer_hint`` are stored for a new run;
        for an existing one they must be the payload it was created with.

        :raises IdempotencyConflictError: the run exists with a different payload (nothing is changed).
        """
        if not run_id:
            raise ValueError("run_id must not be empty")
        now_iso = self._iso()
        fingerprint = payload_fingerprint(query, customer_hint)
        with self.db.transaction() as tx:
            created = tx.execute(_sql.RUN_INSERT, (run_id, query, customer_hint, now_iso, now_iso)) == 1
            if created:
                tx.execute(_sql.PAYLOAD_INSERT, (run_id, fingerprint))
                self._audit(
                    tx, run_id, "run_created", {"query_chars": len(query), "has_hint": customer_hint is not None}
                )
                # A new run has no owner, checkpoints or state: its lease is taken in the same transaction.
                acquired, info, before = self._acquire_in(tx, run_id, created=True, now=self._clock(),
                                                          dead_owner=self.owner)
            else:
                self._check_payload(tx, run_id, fingerprint)
        if created:
            logger.info("run %s created", run_id)
            if acquired:
                logger.info("run %s: lease taken by %s (was %s)", run_id, self.owner, before.status.value)
                return RunHandle(run_id, True, True, info, (), None)
        deadline = self._clock() + max(0.0, wait_s)
        while True:
            acquired, info = self._try_acquire(run_id, created)
            if acquired or info.is_final or self._clock() >= deadline:
                break
            self._sleep(max(0.0, min(poll_s, deadline - self._clock())))
        if not acquired:
            logger.info("run %s not acquired (status %s, owner %s)", run_id, info.status.value, info.lease_owner)
        with self.db.transaction(write=False) as tx:
            steps = tuple(r[0] for r in tx.fetchall(_sql.CHECKPOINT_STEPS, (run_id,)))
            row = tx.fetchone(_sql.RUN_STATE, (run_id,))
        return RunHandle(run_id, created, acquired, info, steps, row[0] if row else None)

    def _try_acquire(self, run_id: str, created: bool) -> tuple[bool, RunInfo]:
        now = self._clock()
        with self.db.transaction(write=False) as tx:  # cheap look first: waiters take no write lock
            seen = self._get(tx, run_id)
        dead_owner = seen.lease_owner if _owner_is_dead(seen.lease_owner) else self.owner
        held_elsewhere = (
            seen.lease_owner not in (None, self.owner, dead_owner) and (seen.lease_expires or 0.0) >= now
        )
        if seen.is_final or held_elsewhere:
            return False, seen
        with self.db.transaction() as tx:
            acquired, info, before = self._acquire_in(tx, run_id, created=created, now=now, dead_owner=dead_owner)
        if acquired:
            logger.info("run %s: lease taken by %s (was %s)", run_id, self.owner, before.status.value)
        return acquired, info

    def _acquire_in(self, tx: Transaction, run_id: str, *, created: bool, now: float,
                    dead_owner: str | None) -> tuple[bool, RunInfo, RunInfo]:
        """Inside write transaction ``tx``: the conditional lease UPDATE and its audit record.
        Returns (acquired, the run after, the run before)."""
        before = self._get(tx, run_id)
        acquired = (
            tx.execute(_sql.RUN_ACQUIRE,
                       (self.owner, now + self.lease_s, self._iso(), run_id, now, self.owner, dead_owner)) == 1
        )
        if not acquired:
            return False, before, before
        self._audit(
            tx,
            run_id,
            "lease_acquired",
            {"owner": self.owner, "previous_status": before.status.value, "previous_owner": before.lease_owner,
             "resumed": not created},
        )
        return True, self._get(tx, run_id), before

    def heartbeat(self, run_id: str, *, audit: tuple[str, str] | None = None) -> None:
        """Renew this executor's lease; raise :class:`LeaseLostError` if another executor took it.

        ``audit``: (kind, step) of an audit entry to append in the same transaction."""
        now = self._clock()
        with self.db.transaction() as tx:
            if tx.execute(_sql.RUN_RENEW, (now + self.lease_s, run_id, self.owner)) != 1:
                self._raise_fenced(tx, run_id)
            if audit is not None:
                self._audit(tx, run_id, audit[0], {}, step=audit[1])
        self._renewed[run_id] = now

    def checkpoint(self, run_id: str, step: str, state: BaseModel | Mapping[str, Any] | str) -> int:
        """Store the state after ``step`` completed (one transaction; renews the lease). Returns its sequence number."""
        state_json = to_json(state)
        now = self._clock()
        scope = _CURRENT_STEP.get()
        ends_step = scope is not None and scope.run_id == run_id and scope.name == step and not scope.ended
        with self.db.transaction() as tx:
            row = tx.fetchone(
                _sql.CHECKPOINT_BUMP,
                (state_json, step, self._iso(), now + self.lease_s, run_id, self.owner),
            )
            if row is None:
                self._raise_fenced(tx, run_id)
            seq = int(row[0])  # type: ignore[index]
            # The history keeps the step and a digest only: a resume reads the latest state from the run
            # row, so earlier copies of the customer's text are not kept at rest.
            digest = "sha256:" + hashlib.sha256(state_json.encode("utf-8")).hexdigest()
            tx.execute(_sql.CHECKPOINT_INSERT, (run_id, seq, step, digest, self._iso()))
            self._audit(tx, run_id, "checkpoint", {"seq": seq, "bytes": len(state_json)}, step=step)
            if ends_step:  # the step's own checkpoint is its last act: its step_end goes in this transaction
                self._audit(tx, run_id, "step_end", {"ok": True, "llm_calls": scope.calls}, step=step)
        if ends_step:
            scope.ended = True
        self._renewed[run_id] = now
        logger.debug("run %s: checkpoint %d after %s", run_id, seq, step)
        return seq

    def completed_steps(self, run_id: str) -> list[str]:
        """Names of the checkpointed steps, in order."""
        with self.db.transaction(write=False) as tx:
            self._get(tx, run_id)
            return [r[0] for r in tx.fetchall(_sql.CHECKPOINT_STEPS, (run_id,))]

    def load_state(self, run_id: str) -> str | None:
        """The latest checkpointed state as JSON text (None before the first checkpoint)."""
        with self.db.transaction(write=False) as tx:
            row = tx.fetchone(_sql.RUN_STATE, (run_id,))
        if row is None:
            raise RunNotFoundError(run_id)
        return row[0]  # type: ignore[no-any-return]

    def load_model(self, run_id: str, model: type[M]) -> M | None:
        """The latest state validated into ``model`` (e.g. ``CustomerTicketState``), or None."""
        text = self.load_state(run_id)
        return model.model_validate_json(text) if text is not None else None

    def finish(
        self,
        run_id: str,
        status: RunStatus | str,
        *,
        reason: str | None = None,
        state: BaseModel | Mapping[str, Any] | str | None = None,
        force: bool = False,
    ) -> None:
        """End this execution: ``completed``, ``failed`` or ``needs_reconcile``; releases the lease.

        ``state`` optionally stores a final state. Fenced to the lease holder unless ``force``
        (an operator closing a parked or abandoned run).
        """
        status = RunStatus(status)
        if status in (RunStatus.PENDING, RunStatus.RUNNING):
            raise ValueError(f"finish() needs a final or parked status, not {status.value!r}")
        self._renewed.pop(run_id, None)  # the lease ends here
        safe_reason = redact(reason) if reason else None
        with self.db.transaction() as tx:
            if (
                state is not None
                and tx.execute(_sql.RUN_SET_STATE, (to_json(state), run_id, self.owner)) != 1
                and not force
            ):
                self._raise_fenced(tx, run_id)
            if force:
                changed = tx.execute(_sql.RUN_FINISH_FORCE, (status.value, safe_reason, self._iso(), run_id))
            else:
                changed = tx.execute(_sql.RUN_FINISH, (status.value, safe_reason, self._iso(), run_id, self.owner))
            if changed != 1:
                self._raise_fenced(tx, run_id)
            self._audit(tx, run_id, "run_finished", {"status": status.value, "reason": safe_reason, "forced": force})
        logger.info("run %s finished: %s%s", run_id, status.value, f" ({safe_reason})" if safe_reason else "")

    def park(self, run_id: str, reason: str) -> None:
        """Set ``needs_reconcile`` with a reason and release the lease; a later :meth:`start_run` resumes it."""
        self.finish(run_id, RunStatus.NEEDS_RECONCILE, reason=reason)

    def release(self, run_id: str) -> None:
        """Give up the lease without changing the status (another executor may resume at once)."""
        self._renewed.pop(run_id, None)
        with self.db.transaction() as tx:
            tx.execute(_sql.RUN_RELEASE, (self._iso(), run_id, self.owner))

    def check_payload(self, run_id: str, query: str, customer_hint: str | None) -> RunInfo | None:
        """The run's row if ``run_id`` exists with this payload, None if no run has this id (a read).

        :raises IdempotencyConflictError: the run was created with a different query or customer.
        """
        with self.db.transaction(write=False) as tx:
            if tx.fetchone(_sql.RUN_GET, (run_id,)) is None:
                return None
            self._check_payload(tx, run_id, payload_fingerprint(query, customer_hint))
            return self._get(tx, run_id)

    def _check_payload(self, tx: Transaction, run_id: str, fingerprint: str) -> None:
        row = tx.fetchone(_sql.PAYLOAD_GET, (run_id,))
        if row is not None:
            stored = str(row[0])
        else:  # a run created before payloads were fingerprinted: derive it from the stored payload
            info = self._get(tx, run_id)
            stored = payload_fingerprint(info.query, info.customer_hint)
        if stored != fingerprint:
            logger.warning("run %s: reused with a different payload; refused", run_id)
            raise IdempotencyConflictError(run_id)

    def get(self, run_id: str) -> RunInfo:
        """The run's row; :class:`RunNotFoundError` for an unknown id."""
        with self.db.transaction(write=False) as tx:
            return self._get(tx, run_id)

    def list_runs(self, *, status: RunStatus | str | None = None, limit: int = 100) -> list[RunInfo]:
        """Runs, newest first, optionally only those with ``status``."""
        with self.db.transaction(write=False) as tx:
            if status is None:
                rows = tx.fetchall(_sql.RUN_LIST, (limit,))
            else:
                rows = tx.fetchall(_sql.RUN_LIST_BY_STATUS, (RunStatus(status).value, limit))
        return [RunInfo._from_row(r) for r in rows]

    def list_resumable(self, *, limit: int = 100) -> list[RunInfo]:
        """Runs to resume: pending, parked (needs_reconcile), or running with an expired lease (crashed)."""
        with self.db.transaction(write=False) as tx:
            rows = tx.fetchall(_sql.RUN_LIST_RESUMABLE, (self._clock(), limit))
        return [RunInfo._from_row(r) for r in rows]

    @staticmethod
    def _get(tx: Transaction, run_id: str) -> RunInfo:
        row = tx.fetchone(_sql.RUN_GET, (run_id,))
        if row is None:
            raise RunNotFoundError(run_id)
        return RunInfo._from_row(row)

    def _raise_fenced(self, tx: Transaction, run_id: str) -> None:
        self._get(tx, run_id)  # RunNotFoundError first
        raise LeaseLostError(run_id, self.owner)

    # --- steps ----------------------------------------------------------------------------

    @contextmanager
    def step(self, run_id: str, name: str) -> Iterator[StepScope]:
        """Mark the step being executed: renews the lease, audits step_start/step_end, and names
        the journaled calls made inside (also from other threads, via :meth:`current_step`)."""
        if self._clock() - self._renewed.get(run_id, float("-inf")) < self.lease_s / 4:
            self.append_audit(run_id, "step_start", {}, step=name)  # renewed (and fenced) moments ago
        else:
            self.heartbeat(run_id, audit=("step_start", name))  # one transaction
        scope = StepScope(run_id, name)
        token = _CURRENT_STEP.set(scope)
        with self._active_lock:
            previous = self._active.get(run_id)
            self._active[run_id] = scope
        try:
            yield scope
        except BaseException as exc:
            self._audit_quietly(run_id, "step_end", {"ok": False, "error": type(exc).__name__}, step=name)
            raise
        else:
            if not scope.ended:  # else written with the step's checkpoint
                self.append_audit(run_id, "step_end", {"ok": True, "llm_calls": scope.calls}, step=name)
        finally:
            _CURRENT_STEP.reset(token)
            with self._active_lock:
                if previous is None:
                    self._active.pop(run_id, None)
                else:
                    self._active[run_id] = previous

    def current_step(self, run_id: str) -> StepScope:
        """The step ``run_id`` is in (context first, then this journal's active step, else ``'run'``)."""
        scope = _CURRENT_STEP.get()
        if scope is not None and scope.run_id == run_id:
            return scope
        with self._active_lock:
            scope = self._active.get(run_id)
            if scope is None:
                scope = self._active[run_id] = StepScope(run_id, DEFAULT_STEP)
            return scope

    # --- call journal ---------------------------------------------------------------------

    def record_call(
        self,
        run_id: str,
        step: str,
        call_key: str,
        request_hash: str,
        response_json: str,
        *,
        audit: Mapping[str, Any] | None = None,
        audit_kind: str = "llm_call",
    ) -> bool:
        """Journal a completed call (first record wins) with its audit entry, in one transaction.

        Returns False if a record for this key existed already.
        """
        with self.db.transaction() as tx:
            inserted = (
                tx.execute(_sql.CALL_INSERT, (run_id, step, call_key, request_hash, response_json, self._iso())) == 1
            )
            if audit is not None:
                self._audit(tx, run_id, audit_kind, dict(audit), step=step)
        return inserted

    def replayed(self, run_id: str, step: str, call_key: str) -> RecordedCall | None:
        """The recorded result of a call, or None if it never completed."""
        with self.db.transaction(write=False) as tx:
            row = tx.fetchone(_sql.CALL_GET, (run_id, step, call_key))
        return RecordedCall(row[0], row[1], row[2]) if row else None

    # --- side effects ---------------------------------------------------------------------

    def record_intent(
        self, run_id: str, effect: str, key: str, *, data: Mapping[str, Any] | None = None
    ) -> EffectRecord:
        """Write (or re-arm) the intent to perform ``effect`` with idempotency ``key``; fenced to the lease holder."""
        with self.db.transaction() as tx:
            if tx.execute(_sql.RUN_RENEW, (self._clock() + self.lease_s, run_id, self.owner)) != 1:
                self._raise_fenced(tx, run_id)
            tx.execute(_sql.EFFECT_INTENT, (run_id, effect, key, self._iso()))
            record = self._effect(tx, run_id, effect, key)
            assert record is not None
            self._audit(
                tx,
                run_id,
                "side_effect_intent",
                {"effect": effect, "key": key, "attempt": record.attempts, **(data or {})},
            )
        return record

    def record_outcome(self, run_id: str, effect: str, key: str, outcome_json: str) -> str:
        """Record the effect's outcome; the first outcome wins. Returns the stored outcome JSON.

        Not fenced: an outcome is a fact about the world and is kept whoever learns it.
        """
        json.loads(outcome_json)
        now = self._iso()
        with self.db.transaction() as tx:
            changed = tx.execute(_sql.EFFECT_OUTCOME, (run_id, effect, key, outcome_json, now, now))
            record = self._effect(tx, run_id, effect, key)
            assert record is not None and record.outcome_json is not None
            if changed:
                self._audit(
                    tx,
                    run_id,
                    "side_effect_outcome",
                    {"effect": effect, "key": key, "outcome": json.loads(outcome_json)},
                )
        return record.outcome_json

    def mark_effect(self, run_id: str, effect: str, key: str, status: str, reason: str | None = None) -> None:
        """Set an unsettled effect to ``unclear`` (outcome unknown) or ``rejected`` (definitely not done)."""
        if status not in ("unclear", "rejected", "intent"):
            raise ValueError(f"mark_effect status must be unclear, rejected or intent, not {status!r}")
        safe = redact(reason) if reason else None
        with self.db.transaction() as tx:
            tx.execute(_sql.EFFECT_MARK, (status, safe, run_id, effect, key))
            self._audit(tx, run_id, "side_effect_" + status, {"effect": effect, "key": key, "reason": safe})

    def effect(self, run_id: str, effect: str, key: str) -> EffectRecord | None:
        """The effect's row, or None if no intent was ever written."""
        with self.db.transaction(write=False) as tx:
            return self._effect(tx, run_id, effect, key)

    def pending_intents(self, run_id: str) -> list[EffectRecord]:
        """Effects whose outcome is not recorded (status intent or unclear): what a resume must settle."""
        with self.db.transaction(write=False) as tx:
            self._get(tx, run_id)
            return [_effect_from_row(r) for r in tx.fetchall(_sql.EFFECT_PENDING, (run_id,))]

    @staticmethod
    def _effect(tx: Transaction, run_id: str, effect: str, key: str) -> EffectRecord | None:
        row = tx.fetchone(_sql.EFFECT_GET, (run_id, effect, key))
        return _effect_from_row(row) if row else None

    # --- audit ----------------------------------------------------------------------------

    def append_audit(
        self, run_id: str, kind: str, data: Mapping[str, Any] | None = None, *, step: str | None = None
    ) -> int:
        """Append one entry (redacted) to the run's audit trail; returns its sequence number.

        ``step`` defaults to the current step. Kinds used here: run_created, lease_acquired,
        step_start, step_end, checkpoint, llm_call, llm_replay, tool_call, tool_replay,
        side_effect_intent, side_effect_unclear, side_effect_rejected, side_effect_outcome,
        error, run_finished; approval_requested and approval_decision (:meth:`append_audit_once`).
        """
        with self.db.transaction() as tx:
            return self._audit(tx, run_id, kind, dict(data or {}), step=step)

    def append_audit_once(
        self, run_id: str, kind: str, data: Mapping[str, Any] | None = None, *, step: str | None = None
    ) -> tuple[bool, AuditEntry]:
        """Append ``kind`` unless the trail has an entry of that kind already: the first one wins, also
        between processes (one transaction holding the run row's lock). Returns (appended, the winning entry).
        Approval decisions use it, so a decision is journaled exactly once before it is applied."""
        with self.db.transaction() as tx:
            if tx.execute(_sql.RUN_LOCK, (run_id,)) != 1:
                raise RunNotFoundError(run_id)
            row = tx.fetchone(_sql.AUDIT_FIRST_OF_KIND, (run_id, kind))
            appended = row is None
            if appended:
                self._audit(tx, run_id, kind, dict(data or {}), step=step)
                row = tx.fetchone(_sql.AUDIT_FIRST_OF_KIND, (run_id, kind))
        assert row is not None
        return appended, AuditEntry(row[0], int(row[1]), row[2], row[3], row[4], json.loads(row[5]))

    def first_audit(self, run_id: str, kind: str) -> AuditEntry | None:
        """The run's first audit entry of ``kind``, or None."""
        with self.db.transaction(write=False) as tx:
            row = tx.fetchone(_sql.AUDIT_FIRST_OF_KIND, (run_id, kind))
        return AuditEntry(row[0], int(row[1]), row[2], row[3], row[4], json.loads(row[5])) if row else None

    def record_error(self, run_id: str, exc: BaseException, *, step: str | None = None) -> int:
        """Audit an exception (type and redacted message)."""
        return self.append_audit(run_id, "error", {"error": type(exc).__name__, "message": str(exc)[:500]}, step=step)

    def audit(self, run_id: str) -> list[AuditEntry]:
        """The run's audit trail in order; :class:`RunNotFoundError` for an unknown id."""
        with self.db.transaction(write=False) as tx:
            self._get(tx, run_id)
            rows = tx.fetchall(_sql.AUDIT_LIST, (run_id,))
        return [AuditEntry(r[0], int(r[1]), r[2], r[3], r[4], json.loads(r[5])) for r in rows]

    def _audit(self, tx: Transaction, run_id: str, kind: str, data: dict[str, Any], *, step: str | None = None) -> int:
        row = tx.fetchone(_sql.AUDIT_BUMP, (run_id,))
        if row is None:
            raise RunNotFoundError(run_id)
        seq = int(row[0])
        if step is None:
            current = _CURRENT_STEP.get()
            step = current.name if current is not None and current.run_id == run_id else None
        payload = json.dumps(redact_data(data), default=str, ensure_ascii=False)
        tx.execute(_sql.AUDIT_INSERT, (run_id, seq, self._iso(), step, kind, payload))
        return seq

    def _audit_quietly(self, run_id: str, kind: str, data: dict[str, Any], *, step: str | None = None) -> None:
        try:
            self.append_audit(run_id, kind, data, step=step)
        except Exception:
            logger.warning("run %s: could not write %s audit entry", run_id, kind, exc_info=True)


def _effect_from_row(row: tuple[Any, ...]) -> EffectRecord:
    return EffectRecord(
        effect=row[0],
        key=row[1],
        status=row[2],
        attempts=int(row[3]),
        reason=row[4],
        outcome_json=row[5],
        intent_ts=row[6],
        outcome_ts=row[7],
    )
