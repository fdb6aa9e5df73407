"""SupportFlow: the deterministic path of one customer query.

Code owns the route; each step reads the state, calls one injected collaborator, writes the state
and, for the router, returns a route label::

    intake ─► answer_from_faq ─┬─ "answered"  ─► close_answered                     (status faq_answered)
                               └─ "escalated" ─► triage ─► check_approval ─┐
        ┌─ "no_approval" ─────────────────────────────────────────────────┴─► file_ticket (ticket_created)
        └─ "needs_approval" ─► await_approval ─┬─ "approved" ─► file_ticket
                                               └─ "rejected" ─► close_rejected           (status rejected)

``await_approval`` parks the run (status awaiting_approval, :class:`ApprovalPendingError`) until a
decision is journaled; a resume then continues from it (the earlier steps are not repeated).

Usage::

    from supportdesk.flows import SupportFlow, build_services
    from supportdesk.settings import Settings

    flow = SupportFlow(services=build_services(Settings()))
    flow.kickoff(inputs={"original_query": "How do I reset my password?"})
    flow.state.status            # TicketStatus.FAQ_ANSWERED
"""

from __future__ import annotations

from typing import Any

from crewai.flow.flow import Flow, listen, or_, router, start
from pydantic import Field

from supportdesk import _tracing
from supportdesk.errors import ApprovalPendingError
from supportdesk.flows.run_context import durable_step
from supportdesk.flows.services import SupportServices
from supportdesk.models import CustomerTicketState, TicketDraft, TicketStatus

__all__ = ["ANSWERED", "APPROVED", "ESCALATED", "NEEDS_APPROVAL", "NO_APPROVAL", "REJECTED", "SupportFlow"]

ANSWERED = "answered"
ESCALATED = "escalated"
NO_APPROVAL = "no_approval"
NEEDS_APPROVAL = "needs_approval"
APPROVED = "approved"
REJECTED = "rejected"


class SupportFlow(Flow[CustomerTicketState]):
    """FAQ first; the triage crew and a ticket only for escalated queries."""

    # No CrewAI Memory for this flow: state is the typed ticket and the journal. (CrewAI's Flow would
    # otherwise build a Memory per instance, importing lancedb: ~1x `import crewai` more start-up.)
    _skip_auto_memory: bool = True
    # The state class itself (it has an ``id``): CrewAI otherwise derives a new state class from the
    # generic parameter for every flow instance (~5 ms of pydantic schema building per run).
    initial_state: Any = Field(default=CustomerTicketState, exclude=True)

    services: Any = Field(default=None, exclude=True, description="A SupportServices; built from settings if None.")
    run: Any = Field(default=None, exclude=True, description="A RunContext making the run durable; None runs in memory.")
    caller: Any = Field(
        default=None, exclude=True, description="The verified caller (a CustomerRecord); None: the requester is unverified."
    )

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
    def intake(self, crewai_trigger_payload: dict[str, Any] | None = None) -> None:
        """Record that the run began (the query was validated before kickoff), and what triggered it:
        CrewAI hands the trigger's JSON (``run_with_trigger``) to the start step."""
        keys = ", ".join(sorted(str(k) for k in crewai_trigger_payload or {}))[:200]
        origin = f" (trigger payload: {keys})" if crewai_trigger_payload else ""
        self._services.progress("intake", f"run {self.state.id}{origin}")
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
        """Run the triage crew: category, priority, the verified caller's account facts, ticket draft."""
        self.state.status = TicketStatus.ESCALATED
        self._services.progress("triage", "classifying, stating the caller's account, drafting the ticket")
        result = self._services.triage.triage(self.state.original_query, self.caller)
        self._account(result.usage.llm_calls, result.usage.prompt_tokens, result.usage.completion_tokens)
        self.state.category = result.classification.category
        self.state.priority = result.classification.priority
        self.state.classification_rationale = result.classification.rationale
        self.state.classification_confidence = result.suggestion.confidence
        self.state.customer_id = self.caller.customer_id if self.caller is not None else None  # never from the text
        self.state.customer_summary = result.customer.summary
        self.state.ticket_title = result.ticket.title
        self.state.final_summary = result.ticket.summary
        self._services.progress("triage", f"{self.state.category}/{self.state.priority}")

    @router(triage, emit=[NO_APPROVAL, NEEDS_APPROVAL])
    @durable_step
    def check_approval(self) -> str:
        """Ask the approval rules (config/policies.yaml) whether a person must approve the draft first."""
        wait = self._services.approvals.evaluate(self.state) if self._services.approvals is not None else None
        if wait is None:
            return NO_APPROVAL
        self.state.approval = wait
        self.state.route_trace.append(NEEDS_APPROVAL)
        self._services.progress("check_approval", f"needs approval ({', '.join(wait.rules)})")
        return NEEDS_APPROVAL

    @router(NEEDS_APPROVAL, emit=[APPROVED, REJECTED])
    @durable_step
    def await_approval(self) -> str:
        """Apply the journaled decision (edits included); without one, park the run until there is one."""
        decided = self._services.approvals.decision(self.run, self.state)
        if decided is None:
            self.state.status = TicketStatus.AWAITING_APPROVAL
            self._services.progress("await_approval", f"waiting for a decision until {self.state.approval.deadline}")
            raise ApprovalPendingError(self.state.id)
        self.state.approval = decided
        self.state.ticket_title = decided.edits.get("title", self.state.ticket_title)
        self.state.priority = decided.edits.get("priority", self.state.priority)
        self.state.category = decided.edits.get("category", self.state.category)
        self.state.status = TicketStatus.ESCALATED
        route = APPROVED if decided.decision == "approve" else REJECTED
        self.state.route_trace.append(route)
        self._services.progress("await_approval", f"{route} by {decided.decided_by}")
        return route

    @listen(REJECTED)
    @durable_step
    def close_rejected(self) -> None:
        """A person (or the timeout default) rejected the draft: no ticket is filed."""
        self.state.status = TicketStatus.REJECTED
        self.state.failure_reason = f"rejected by {self.state.approval.decided_by}: {self.state.approval.note or 'no note'}"
        self._services.progress("close_rejected", "rejected, no ticket")

    @listen(or_(NO_APPROVAL, APPROVED))
    @durable_step
    def file_ticket(self) -> None:
        """File exactly one ticket, keyed by the run id."""
        draft = TicketDraft(title=self.state.ticket_title or "Support request", summary=self.state.final_summary or "")
        fields = {"category": self.state.category, "priority": self.state.priority, "customer_id": self.state.customer_id}
        backend = str(getattr(self._services.tickets, "name", "tickets"))
        with _tracing.span("supportdesk.ticket", **{"ticket.backend": backend, "run_id": self.state.id}) as span:
            if self.run is not None:
                receipt = self.run.create_ticket(self._services.tickets, draft, **fields)
            else:
                receipt = self._services.tickets.create(draft, idempotency_key=self.state.id, **fields)
            if span is not None:
                span.set_attribute("ticket.id", str(receipt.ticket_id))
        self.state.ticket_id = receipt.ticket_id
        self.state.ticket_url = receipt.url
        self.state.status = TicketStatus.TICKET_CREATED
        self._services.progress("file_ticket", f"ticket {receipt.ticket_id}")
