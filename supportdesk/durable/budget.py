"""Per-run budgets: LLM calls, tokens, wall-clock seconds and cost.

    from supportdesk.durable import Budget, BudgetLimits, BudgetedChatModel

    budget = Budget(BudgetLimits(max_calls=20, max_tokens=50_000, max_seconds=300,
                                 max_cost=0.50, price_per_1k_tokens=0.002))
    model = BudgetedChatModel(inner_model, budget)
    model.complete([ChatMessage("user", "hi")])   # raises BudgetExceededError(limit=...) once spent

:meth:`Budget.check` runs before each call and refuses it once a limit is reached;
:meth:`Budget.charge` adds the call's usage afterwards. A call that starts under the limit may
end over it, so a run overshoots by at most one call's tokens, cost and duration; the call count
never overshoots. Wrap the journaled model (``BudgetedChatModel(JournaledChatModel(...))``) so a
resumed run re-counts its replayed calls and keeps its budget across crashes; the seconds limit
counts from the budget's creation (one execution attempt), not the time a run spent crashed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from supportdesk.errors import BudgetExceededError
from supportdesk.llm._types import ChatMessage, ChatModel, Completion

__all__ = ["Budget", "BudgetLimits", "BudgetUsage", "BudgetedChatModel"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BudgetLimits:
    """The limits of one run; None means unlimited. ``max_cost`` needs ``price_per_1k_tokens``."""

    max_calls: int | None = None
    max_tokens: int | None = None
    max_seconds: float | None = None
    max_cost: float | None = None
    price_per_1k_tokens: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_calls", "max_tokens", "max_seconds", "max_cost", "price_per_1k_tokens"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")


@dataclass(frozen=True)
class BudgetUsage:
    """What a run has spent so far."""

    calls: int
    tokens: int
    seconds: float
    cost: float | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for the audit trail."""
        return {"calls": self.calls, "tokens": self.tokens, "seconds": round(self.seconds, 3), "cost": self.cost}


class Budget:
    """Tracks one run's usage against :class:`BudgetLimits`. Thread-safe.

    :param clock: monotonic seconds (injectable for tests).
    """

    def __init__(self, limits: BudgetLimits, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._started = clock()
        self._calls = 0
        self._tokens = 0
        self._lock = threading.Lock()

    def usage(self) -> BudgetUsage:
        """A snapshot of what has been spent."""
        with self._lock:
            return self._usage()

    def _usage(self) -> BudgetUsage:
        price = self.limits.price_per_1k_tokens
        cost = self._tokens / 1000 * price if price is not None else None
        return BudgetUsage(self._calls, self._tokens, self._clock() - self._started, cost)

    def check(self) -> None:
        """Raise :class:`BudgetExceededError` if another call would start over a limit."""
        with self._lock:
            used = self._usage()
        lim = self.limits
        if lim.max_calls is not None and used.calls >= lim.max_calls:
            self._exceeded("calls", used.calls, lim.max_calls)
        if lim.max_tokens is not None and used.tokens >= lim.max_tokens:
            self._exceeded("tokens", used.tokens, lim.max_tokens)
        if lim.max_seconds is not None and used.seconds >= lim.max_seconds:
            self._exceeded("seconds", used.seconds, lim.max_seconds)
        if lim.max_cost is not None and used.cost is not None and used.cost >= lim.max_cost:
            self._exceeded("cost", used.cost, lim.max_cost)

    @staticmethod
    def _exceeded(limit: str, used: float, maximum: float) -> None:
        logger.info("budget exceeded: %s used %s of %s", limit, used, maximum)
        raise BudgetExceededError(
            f"budget exceeded: {limit} used {used:g} of {maximum:g}", limit=limit, used=used, maximum=maximum
        )

    def charge(self, completion: Completion) -> None:
        """Add one finished call's usage."""
        with self._lock:
            self._calls += 1
            self._tokens += completion.prompt_tokens + completion.completion_tokens

    def charge_failed_call(self) -> None:
        """Count a call that failed (it still cost a request; tokens unknown)."""
        with self._lock:
            self._calls += 1


class BudgetedChatModel:
    """A :class:`~supportdesk.llm.ChatModel` that checks a :class:`Budget` before each call and charges it after.

    A call that raises is counted as one call (no tokens).
    """

    def __init__(self, inner: ChatModel, budget: Budget) -> None:
        self.inner = inner
        self.budget = budget
        self.name: str = inner.name

    def complete(
        self,
        messages: list[ChatMessage],
        *,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int = 512,
        temperature: float = 0.0,
    ) -> Completion:
        self.budget.check()
        try:
            completion: Completion = self.inner.complete(
                messages, json_schema=json_schema, max_tokens=max_tokens, temperature=temperature
            )
        except BudgetExceededError:
            raise
        except Exception:
            self.budget.charge_failed_call()
            raise
        self.budget.charge(completion)
        return completion
