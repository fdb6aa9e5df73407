"""Every error supportdesk raises on purpose.

Callers catch :class:`SupportdeskError` to handle all of them, or one branch::

    SupportdeskError
    ├── InvalidQueryError          the customer query is empty, too long or not text
    ├── ConfigError                a setting or a file in config/ is missing or malformed
    ├── CustomerNotFoundError      a customer given by id or e-mail is not in the customer DB
    ├── LLMError                   a model could not give a usable answer
    │   ├── LLMTimeoutError        the provider did not answer in time (after retries)
    │   ├── LLMProviderError       the provider answered with an error status
    │   └── OutputValidationError  the answer never validated into its response model
    ├── WebSearchError             the web-search provider failed
    ├── TicketingError             the ticket backend failed
    ├── RunNotFoundError           no durable run has the given run id
    ├── BudgetExceededError        a run hit one of its budget limits (calls, tokens, seconds, cost)
    ├── NeedsReconcileError        a side effect's outcome is unknown; the run parks until settled
    ├── LeaseLostError             another process took over the run's execution lease
    ├── RunBusyError               another process is executing this run id right now
    ├── StoreBusyError             the database stayed locked past its busy timeout
    ├── InvalidRunIdError          a run id has characters or a length it may not have
    ├── IdempotencyConflictError   a run id was reused with a different payload
    ├── ApprovalError              an approval decision cannot be applied (no such wait, already decided)
    ├── ApiKeyError                an API key id is unknown or malformed, or a tenant or scope name is invalid
    └── ApprovalPendingError       the run waits for a person's decision; it parks as awaiting_approval

Each carries a one-line ``str()`` meant for an operator's terminal.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "CustomerNotFoundError",
    "RunBusyError",
    "InvalidQueryError",
    "LLMError",
    "LLMProviderError",
    "LLMTimeoutError",
    "OutputValidationError",
    "SupportdeskError",
    "TicketingError",
    "WebSearchError",
    "RunNotFoundError",
    "BudgetExceededError",
    "NeedsReconcileError",
    "LeaseLostError",
    "StoreBusyError",
    "InvalidRunIdError",
    "IdempotencyConflictError",
    "ApprovalError",
    "ApiKeyError",
    "ApprovalPendingError",
]


class SupportdeskError(Exception):
    """Base class of every error supportdesk raises on purpose."""


class InvalidQueryError(SupportdeskError, ValueError):
    """The customer query cannot be processed (empty, too long, not valid text)."""


class ConfigError(SupportdeskError):
    """A setting or a configuration file is missing or malformed."""


class CustomerNotFoundError(SupportdeskError, LookupError):
    """An explicitly given customer (id or e-mail) is not in the customer database."""


class LLMError(SupportdeskError):
    """A language model could not produce a usable answer."""


class LLMTimeoutError(LLMError, TimeoutError):
    """The provider did not answer within the configured timeout, retries included."""


class LLMProviderError(LLMError):
    """The provider answered with an error (HTTP status, malformed envelope)."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class OutputValidationError(LLMError):
    """The model's output never validated into its response model, retries included."""

    def __init__(self, message: str, *, attempts: int, last_output: str = "") -> None:
        super().__init__(message)
        self.attempts = attempts
        self.last_output = last_output


class WebSearchError(SupportdeskError):
    """The web-search provider failed (network, status, malformed body)."""


class TicketingError(SupportdeskError):
    """The ticket backend failed to create or find a ticket."""


class RunNotFoundError(SupportdeskError, LookupError):
    """No durable run has the given run id."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run with id {run_id!r}")
        self.run_id = run_id


class BudgetExceededError(SupportdeskError):
    """A run hit a budget limit; ``limit`` names it: 'calls', 'tokens', 'seconds' or 'cost'."""

    def __init__(self, message: str, *, limit: str, used: float | None = None, maximum: float | None = None) -> None:
        super().__init__(message)
        self.limit = limit
        self.used = used
        self.maximum = maximum


class NeedsReconcileError(SupportdeskError):
    """A side effect (creating a ticket) may or may not have happened; the run parks until a resume settles it."""

    def __init__(self, message: str, *, run_id: str, effect: str, key: str) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.effect = effect
        self.key = key


class LeaseLostError(SupportdeskError):
    """This process no longer holds the run's execution lease (it expired and another process took over)."""

    def __init__(self, run_id: str, owner: str) -> None:
        super().__init__(f"run {run_id!r}: lease is no longer held by {owner!r}")
        self.run_id = run_id
        self.owner = owner


class RunBusyError(SupportdeskError):
    """Another live process holds this run's execution lease; the caller may retry later."""


class StoreBusyError(SupportdeskError):
    """The run journal (or another local store) stayed locked past its busy timeout."""


class InvalidRunIdError(SupportdeskError, ValueError):
    """A run id is empty, too long, or has characters outside ``[A-Za-z0-9._-]``."""


class IdempotencyConflictError(SupportdeskError):
    """A run id was reused with a different payload (query or customer); nothing of the stored run is shown."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run id {run_id!r} was already used with a different query or customer")
        self.run_id = run_id


class ApprovalError(SupportdeskError):
    """An approval decision cannot be applied: the run does not wait for one, or it was already decided."""


class ApiKeyError(SupportdeskError, LookupError):
    """An API key id is unknown or malformed, or a tenant or scope name is not allowed."""


class ApprovalPendingError(SupportdeskError):
    """The run's ticket draft waits for a person's approval: the run parks as ``awaiting_approval``
    (not a failure; ``supportdesk approve``/``reject`` or the approval timeout continue it)."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id!r} waits for approval")
        self.run_id = run_id
