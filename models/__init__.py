"""Typed data of supportdesk: the flow's ticket state and one response model per LLM decision."""

from supportdesk.models.approval import ApprovalEdits, ApprovalRequest, ApprovalState, Decision
from supportdesk.models.faq import FAQEntry, RAGResult, TokenUsage
from supportdesk.models.responses import (
    Classification,
    CustomerRecord,
    CustomerLookup,
    FAQAnswer,
    Invoice,
    TicketDraft,
    TicketReceipt,
    TicketTitle,
    WebAnswer,
)
from supportdesk.models.state import CustomerTicketState, Priority, TicketStatus

__all__ = [
    "ApprovalEdits",
    "ApprovalRequest",
    "ApprovalState",
    "Decision",
    "Classification",
    "CustomerLookup",
    "CustomerRecord",
    "CustomerTicketState",
    "FAQAnswer",
    "FAQEntry",
    "Invoice",
    "Priority",
    "RAGResult",
    "TicketDraft",
    "TicketReceipt",
    "TicketTitle",
    "TicketStatus",
    "TokenUsage",
    "WebAnswer",
]
