"""Typed data of supportdesk: the flow's ticket state and one response model per LLM decision."""

from supportdesk.models.responses import (
    Classification,
    CustomerRecord,
    CustomerLookup,
    FAQAnswer,
    Invoice,
    TicketDraft,
    TicketReceipt,
    WebAnswer,
)
from supportdesk.models.state import CustomerTicketState, Priority, TicketStatus

__all__ = [
    "Classification",
    "CustomerLookup",
    "CustomerRecord",
    "CustomerTicketState",
    "FAQAnswer",
    "Invoice",
    "Priority",
    "TicketDraft",
    "TicketReceipt",
    "TicketStatus",
    "WebAnswer",
]
