"""Response models: every LLM or tool output becomes one of these before it travels on.

Field descriptions are written for the model that fills them; string fields are bounded
(``max_length`` and, where the embedded model fills them, a character-class ``pattern``) so that
JSON-schema constrained decoding keeps a small model's output short and parseable.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from supportdesk.models.state import Priority

__all__ = [
    "Classification",
    "CustomerLookup",
    "CustomerRecord",
    "FAQAnswer",
    "Invoice",
    "TicketDraft",
    "TicketReceipt",
    "TicketTitle",
    "WebAnswer",
]

# Printable text without braces, backslashes or control characters: keeps constrained decoding sane.
TEXT_PATTERN = r"^[A-Za-z0-9 .,;:!?'()/@&%$#+=*_-]*$"


class FAQAnswer(BaseModel):
    """Answer a customer question only from the numbered FAQ entries given."""

    verdict: Literal["answer", "no_answer"] = Field(
        description="'answer' if one of the FAQ entries answers the question, otherwise 'no_answer'."
    )
    entry_id: str | None = Field(
        default=None, max_length=64, description="Id of the FAQ entry that answers the question; null for no_answer."
    )
    answer: str = Field(
        default="", max_length=1200, description="The answer for the customer, using only the FAQ entry's facts."
    )


class WebAnswer(BaseModel):
    """Answer a customer question only from the numbered web results given (untrusted text)."""

    verdict: Literal["answer", "no_answer"] = Field(
        description="'answer' if a web result clearly answers the question, otherwise 'no_answer'."
    )
    result_number: int | None = Field(
        default=None, ge=1, le=10, description="Number of the web result that answers the question."
    )
    answer: str = Field(default="", max_length=1200, description="The answer, using only that result's facts.")


class Classification(BaseModel):
    """Triage of a customer message that the FAQ could not answer."""

    category: str = Field(max_length=32, description="Exactly one of the allowed categories.")
    priority: Priority = Field(
        description="high: money lost, service down, security or legal risk; medium: something broken or blocked; "
        "low: questions, requests, feedback."
    )
    rationale: str = Field(default="", max_length=200, description="One short sentence: why this category.")


class Invoice(BaseModel):
    """One invoice of a customer, as the customer database holds it."""

    invoice_id: str
    amount_cents: int
    currency: str = "USD"
    status: Literal["paid", "open", "refunded", "failed"]
    issued_on: str = Field(description="ISO date, YYYY-MM-DD.")
    description: str = ""


class CustomerRecord(BaseModel):
    """A customer as the customer database holds it."""

    customer_id: str
    name: str
    email: str
    plan: str
    account_status: Literal["active", "past_due", "cancelled", "trial"]
    signup_date: str
    invoices: list[Invoice] = Field(default_factory=list)


class CustomerLookup(BaseModel):
    """Result of looking the customer up: what support staff need before they reply."""

    found: bool
    customer: CustomerRecord | None = None
    matched_by: Literal["id", "email", "name", "none"] = "none"
    summary: str = Field(
        default="", max_length=400, description="Two short sentences on the account that matter for this request."
    )


class TicketDraft(BaseModel):
    """What the ticketing agent proposes to file."""

    title: str = Field(max_length=120, description="A short ticket title, at most ten words.")
    summary: str = Field(max_length=1000, description="Two or three sentences for the support engineer.")


class TicketTitle(BaseModel):
    """Only the title of a ticket (the slot a small model fills)."""

    title: str = Field(max_length=80, description="The customer's problem in at most eight words.")

    @classmethod
    def formatting_instructions(cls) -> None:
        """Mirascope's hook: no schema text appended to the prompt. The title prompt
        (config/prompts_triage.yaml) asks for JSON and shows it in worked examples, and the schema
        reaches the model as constrained decoding: about 90 prompt tokens fewer per title."""
        return None


class TicketReceipt(BaseModel):
    """Proof a ticket exists: returned by every ticket backend."""

    ticket_id: str
    url: str | None = None
    backend: Literal["jira", "local", "database"]
    idempotency_key: str
    created: bool = Field(description="False when an existing ticket with the same key was found instead.")
