"""SupportFlow: the deterministic path of one customer query.

Code owns the route; each step reads the state, calls one injected collaborator, writes the state
and, for the router, returns a route label::

    intake ─► answer_from_faq ─┬─ "answered"  ─► close_answered          (status faq_answered)
                               └─ "escalated" ─► triage ─► file_ticket   (status ticket_created)

Usage::

    from supportdesk.flows import SupportFlow, build_services
    from supportdesk.settings import Settings

    flow = SupportFlow(services=build_services(Settings()))
    flow.kickoff(inputs={"original_query": "How do I reset my password?"})
    flow.state.status            # TicketStatus.FAQ_ANSWERED
"""

from __future__ import annotations

from typing import Any

from crewai.flow.flow import Flow, listen, router, start
from pydantic import Field

from supportdesk.flows.run_context import durable_step
from supportdesk.flows.services import SupportServices
from supportdesk.models import CustomerTicketState, TicketDraft, TicketStatus

__all__ = ["ANSWERED", "ESCALATED", "SupportFlow"]

ANSWERED = "answered"
ESCALATED = "escalated"


class SupportFlow(Flow[CustomerTicketState]):
    """FAQ first; the triage crew and a ticket only for escalated queries."""

    services: Any = Field(default=None, exclude=True, description="A SupportServices; built from settings if None.")
    run: Any = Field(default=None, exclude=True, description="A RunContext making the run durable; None runs in memory.")

    def model_post_init(self, context: Any) -> None:
        super().model_post_init(context)
        if self.services is None:
            from supportdesk.flows.services import build_services
            from supportdesk.settings import load_settings

            self.services = build_services(load_settings())

    @property
    def _services(self) -> SupportServices:
        return self.services

    def _account(self, calls: int, prompt_tokens: int, completion_tokens: int) -> None:
        self.state.llm_calls += calls
        self.state.prompt_tokens += prompt_tokens
        self.state.completion_tokens += completion_tokens

    @start()
    @durable_step
    def intake(self) -> None:
        """Record that the run began (the query was validated before kickoff)."""
        self._services.progress("intake", f"run {self.state.id}")
        self.state.route_trace.append("intake")

    @router(intake, emit=[ANSWERED, ESCALATED])
    @durable_step
    def answer_from_faq(self) -> str:
        """Ask the FAQ stage; its route decides whether the crew runs."""
        self._services.progress("answer_from_faq", "retrieving FAQ entries")
        result = self._services.faq.run(self.state.original_query)
        self._account(len(result.completions), result.prompt_tokens, result.completion_tokens)
        self.state.answer_confidence = result.confidence
        self.state.faq_id = result.faq_id
        self.state.sources = list(result.sources)
        if result.route == ANSWERED:
            self.state.faq_response = result.answer
        self.state.route_trace.append(result.route)
        self._services.progress("answer_from_faq", f"{result.route} ({result.reason})")
        return ANSWERED if result.route == ANSWERED else ESCALATED

    @listen(ANSWERED)
    @durable_step
    def close_answered(self) -> None:
        """An FAQ or web answer went out: the run is done."""
        self.state.status = TicketStatus.FAQ_ANSWERED
        self.state.final_summary = f"Answered from {', '.join(self.state.sources) or 'the FAQ'}."
        self._services.progress("close_answered", "answered")

    @listen(ESCALATED)
    @durable_step
    def triage(self) -> None:
        """Run the triage crew: category, priority, customer record, ticket draft."""
        self.state.status = TicketStatus.ESCALATED
        self._services.progress("triage", "classifying, looking the customer up, drafting the ticket")
        result = self._services.triage.triage(self.state.original_query, self.state.customer_hint)
        self._account(result.usage.llm_calls, result.usage.prompt_tokens, result.usage.completion_tokens)
        self.state.category = result.classification.category
        self.state.priority = result.classification.priority
        self.state.classification_rationale = result.classification.rationale
        if result.customer.found and result.customer.customer is not None:
            self.state.customer_id = result.customer.customer.customer_id
        self.state.customer_summary = result.customer.summary
        self.state.ticket_title = result.ticket.title
        self.state.final_summary = result.ticket.summary
        self._services.progress("triage", f"{self.state.category}/{self.state.priority}")

    @listen(triage)
    @durable_step
    def file_ticket(self) -> None:
        """File exactly one ticket, keyed by the run id."""
        draft = TicketDraft(title=self.state.ticket_title or "Support request", summary=self.state.final_summary or "")
        fields = {"category": self.state.category, "priority": self.state.priority, "customer_id": self.state.customer_id}
        if self.run is not None:
            receipt = self.run.create_ticket(self._services.tickets, draft, **fields)
        else:
            receipt = self._services.tickets.create(draft, idempotency_key=self.state.id, **fields)
        self.state.ticket_id = receipt.ticket_id
        self.state.ticket_url = receipt.url
        self.state.status = TicketStatus.TICKET_CREATED
        self._services.progress("file_ticket", f"ticket {receipt.ticket_id}")
