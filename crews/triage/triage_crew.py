"""The triage crew: classifier -> customer-DB analyst -> ticketing agent, run sequentially.

Prose (roles, goals, backstories, task descriptions, expected outputs) lives in this crew's own
``config/agents.yaml`` and ``config/tasks.yaml`` (the ``crewai create`` layout: a crew owns its
folder); this module does the wiring. Code decides what
code can, per decision policy (``config/policies.yaml``, section ``triage``):

* **embedded** (the offline 270M model): category and priority come from the nearest labelled
  examples plus keyword rules (:class:`~supportdesk.crews.classifier.ExampleClassifier`), the
  rationale states that evidence, and the model titles the ticket only when the message's first
  sentence is not a title as it stands (``rationale_written_by: code``, ``title_written_by: auto``):
  a short escalation makes no model call;
* **hosted**: the model chooses the category (from the allowed list) and the priority, with the
  code's suggestion given as a hint, within code's bounds (``_finalise_classification``): a category
  code vetted, a priority within one level of code's and never under a keyword rule's floor, and
  code's decisions and summaries whenever the message carries directive markers (injected
  instructions, see ``config/injection_markers.yaml``);
* in both, the customer lookup runs in code: a lookup tool bound to the run's verified caller
  (given to :meth:`TriageCrew.triage`; None when the requester is unverified) states that account's
  facts, and ids, e-mails or names in the query never select an account. The model writes only
  the account summary; the model fills the
  ticket's title and summary. Every task output is validated into its response model, with a
  bounded retry that feeds the validation error back; a final failure raises
  :class:`~supportdesk.errors.OutputValidationError`.

The crew never files the ticket: the flow does, in code, keyed by its run id::

    from supportdesk.crews.triage.triage_crew import TriageCrew
    from supportdesk.crews.tools.customer_db import CustomerDB, verify_customer

    crew = TriageCrew(chat_model, policy="embedded")
    caller = verify_customer(CustomerDB(home / "customers.db"), "maria.gonzalez@example.com")
    result = crew.triage("I was charged twice this month, please refund one payment.", caller)
    result.classification.category, result.classification.priority   # ('billing', 'high')
    result.customer.customer.customer_id, result.ticket.title          # ('C-1001', '...')
    result.usage.llm_calls                                              # 0: short message, code titles it
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from crewai import Agent, Crew, Process, Task
from crewai.project import CrewBase, agent, crew, task, tool
from crewai.tools import BaseTool
from pydantic import BaseModel, Field

from supportdesk import _tracing
from supportdesk._config import load_yaml
from supportdesk._guardrails import (
    PromptLeakGuard,
    bounded_priority,
    injection_markers,
    mentions_other_account,
    request_text,
    vetted_categories,
)
from supportdesk.crews.classifier import ExampleClassifier, TriageSuggestion
from supportdesk.crews._crewai_stores import UnstoredCrew
from supportdesk.crews.prompts import TriagePrompts, customer_text, fallback_title, grounded_title, title_fits
from supportdesk.crews.tools.customer_db import CustomerLookupTool
from supportdesk.errors import ConfigError, InvalidQueryError, OutputValidationError
from supportdesk.llm._types import ChatModel
from supportdesk.llm.crewai_llm import CrewChatLLM, SlotPlan
from supportdesk.llm.structured import prepare_in_background
from supportdesk.models.responses import (
    TEXT_PATTERN,
    Classification,
    CustomerLookup,
    CustomerRecord,
    TicketDraft,
    TicketTitle,
)

__all__ = ["CustomerSummary", "TriageCrew", "TriagePolicy", "TriageResult", "TriageUsage"]

logger = logging.getLogger(__name__)

Decider = Literal["code", "llm"]


@dataclass(frozen=True)
class _CodeWrites:
    """Which triage slots code fills (see ``TriageCrew._code_writes``)."""

    classification: bool
    summaries: bool
    title: bool

    @property
    def everything(self) -> bool:
        """Code fills every slot: the model is not asked (unless agents call tools)."""
        return self.classification and self.summaries and self.title


@dataclass(frozen=True)
class TriagePolicy:
    """The ``triage`` section of one decision policy in ``config/policies.yaml``."""

    name: str = "embedded"
    category_decided_by: Decider = "code"
    priority_decided_by: Decider = "code"
    knn_k: int = 5
    min_similarity: float = 0.25
    apply_priority_rules: bool = True
    output_retries: int = 2
    max_tokens: Mapping[str, int] = field(default_factory=dict)
    max_chars: Mapping[str, int] = field(default_factory=dict)
    summaries_written_by: Decider = "code"
    # Where summaries are code's: who writes the classification's rationale ("code": the evidence
    # code decided on) and the ticket title ("code": the message's first sentence; "llm": the model;
    # "auto": the model only when that sentence is no title as it stands, see prompts.title_fits).
    rationale_written_by: Decider = "llm"
    title_written_by: Literal["code", "llm", "auto"] = "llm"
    agents_call_tools: bool = False  # hosted: agents call their YAML tools (max_tool_steps each); else code does
    max_tool_steps: int = 2
    classify_note: str = "Write one short sentence on why the message belongs in {category}."

    @classmethod
    def from_mapping(cls, name: str, data: Mapping[str, Any]) -> TriagePolicy:
        """Build from a ``triage`` mapping; unknown keys are a :class:`ConfigError`."""
        known = set(cls.__dataclass_fields__) - {"name"}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"policy {name!r} triage: unknown keys {sorted(unknown)}")
        values = dict(data)
        for key in ("category_decided_by", "priority_decided_by", "summaries_written_by", "rationale_written_by"):
            if values.get(key, "code") not in ("code", "llm"):
                raise ConfigError(f"policy {name!r} triage: {key} must be 'code' or 'llm'")
        if values.get("title_written_by", "llm") not in ("code", "llm", "auto"):
            raise ConfigError(f"policy {name!r} triage: title_written_by must be 'code', 'llm' or 'auto'")
        values["classify_note"] = " ".join(str(values.get("classify_note", cls.classify_note)).split())
        if not isinstance(values.get("agents_call_tools", False), bool):
            raise ConfigError(f"policy {name!r} triage: agents_call_tools must be true or false")
        if not isinstance(values.get("max_tool_steps", 2), int) or not 0 <= values.get("max_tool_steps", 2) <= 10:
            raise ConfigError(f"policy {name!r} triage: max_tool_steps must be an integer from 0 to 10")
        return cls(name=name, **values)

    @classmethod
    def load(cls, name: str, config_dir: Path | None = None) -> TriagePolicy:
        """Read policy ``name`` (``embedded`` or ``hosted``) from ``policies.yaml``."""
        data = load_yaml("policies.yaml", config_dir)
        section = (data.get(name) or {}).get("triage") if isinstance(data, dict) else None
        if not isinstance(section, dict):
            raise ConfigError(f"policies.yaml has no '{name}.triage' section")
        return cls.from_mapping(name, section)

    def length_overrides(self, **fields: str) -> dict[str, dict[str, Any]]:
        """``maxLength`` schema overrides for the slots named in ``max_chars`` (field=slot name)."""
        return {f: {"maxLength": int(self.max_chars[slot])} for f, slot in fields.items() if slot in self.max_chars}

    def tokens(self, task_name: str, default: int = 256) -> int:
        """Completion budget of one task."""
        return int(self.max_tokens.get(task_name, default))


class CustomerSummary(BaseModel):
    """Summarise for support staff what in this customer's account matters for the request."""

    summary: str = Field(
        max_length=300,
        pattern=TEXT_PATTERN,
        description="At most two short sentences, using only the account facts given.",
    )


class TriageUsage(BaseModel):
    """LLM requests and tokens one triage run spent (validation retries included)."""

    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class TriageResult(BaseModel):
    """What the triage crew concluded; the flow files the ticket from ``ticket``."""

    classification: Classification
    customer: CustomerLookup
    ticket: TicketDraft
    suggestion: TriageSuggestion = Field(description="The code's category/priority suggestion and its evidence.")
    policy: str
    usage: TriageUsage = Field(default_factory=TriageUsage)


_CREW_CONFIG = Path(__file__).resolve().parent / "config"


def _crew_config(name: str, override_dir: Path | None = None) -> str:
    """This crew's YAML prose: ``override_dir/name`` if present, else the crew's own ``config/name``."""
    if override_dir is not None and (Path(override_dir) / name).is_file():
        return str(Path(override_dir) / name)
    return str(_CREW_CONFIG / name)


@CrewBase
class TriageCrew:
    """Sequential triage crew. One instance can run many triages (one at a time; use one per thread).

    :param chat_model: the model behind every agent (wrapped in :class:`CrewChatLLM`).
    :param policy: ``"embedded"``/``"hosted"`` (read from ``policies.yaml``), a :class:`TriagePolicy`,
        or a ``triage`` mapping (named ``custom``).
    :param classifier: the code classifier; default: built from the config files (MiniLM on first use).
    :param config_dir: a folder overriding the packaged config files (YAML prose included).
    """

    # CrewBase joins these to the folder of this file; absolute paths pass through unchanged, so
    # they work from a source checkout, an editable install and an installed wheel alike.
    agents_config = _crew_config("agents.yaml")
    tasks_config = _crew_config("tasks.yaml")

    def __init__(
        self,
        chat_model: ChatModel,
        *,
        policy: str | TriagePolicy | Mapping[str, Any] = "embedded",
        classifier: ExampleClassifier | None = None,
        config_dir: Path | None = None,
    ) -> None:
        if config_dir is not None:
            # read by CrewBase right after __init__ returns
            self.original_agents_config_path = _crew_config("agents.yaml", config_dir)
            self.original_tasks_config_path = _crew_config("tasks.yaml", config_dir)
        if isinstance(policy, str):
            policy = TriagePolicy.load(policy, config_dir)
        elif not isinstance(policy, TriagePolicy):
            policy = TriagePolicy.from_mapping("custom", policy)
        self.policy: TriagePolicy = policy
        self.example_classifier = classifier or ExampleClassifier.from_config(
            config_dir, policy={"knn_k": policy.knn_k, "min_similarity": policy.min_similarity}
        )
        self.categories = self.example_classifier.categories
        self.prompts = TriagePrompts.from_config(config_dir)
        self.config_dir = config_dir
        self.lookup_tool = CustomerLookupTool.for_caller(None)  # rebound to each triage's caller
        self.llm = CrewChatLLM.wrap(chat_model, output_retries=policy.output_retries)
        self._run_lock = threading.Lock()

    # ------------------------------------------------------------------ agents (prose in agents.yaml)

    def _agent(self, name: str) -> Agent:
        return Agent(
            config=self.agents_config[name],  # type: ignore[index]
            llm=self.llm,
            tools=self._agent_tools(name),
            allow_delegation=False,
            max_retry_limit=0,  # validation retries happen inside the LLM adapter, bounded
            max_iter=self.policy.max_tool_steps + 1,  # tool steps, then the answer (the adapter enforces it)
            verbose=False,
        )

    # ------------------------------------------------------------------ tools (named in agents.yaml ``tools:``)

    @tool
    def customer_lookup(self) -> BaseTool:
        """The run's caller-scoped lookup tool (CrewBase maps the YAML name to this; rebound per triage)."""
        return self.lookup_tool

    def _agent_tools(self, name: str) -> list[BaseTool]:
        """The tools agents.yaml lists for ``name`` when agents call tools (hosted); none when code calls them."""
        if not self.policy.agents_call_tools:
            return []
        return [self._current_tools().get(t.name, t) for t in self.agents_config[name].get("tools") or []]  # type: ignore[index]

    def _current_tools(self) -> dict[str, BaseTool]:
        return {self.lookup_tool.name: self.lookup_tool}

    def _bind_tools(self, crew_: Crew) -> Crew:
        """Give the (memoised) agents and tasks this triage's tool objects (the caller-scoped lookup)."""
        current = self._current_tools()
        for member in [*crew_.agents, *crew_.tasks]:
            if member.tools:
                member.tools = [current.get(t.name, t) for t in member.tools]
        return crew_

    @agent
    def classifier(self) -> Agent:
        return self._agent("classifier")

    @agent
    def customer_analyst(self) -> Agent:
        return self._agent("customer_analyst")

    @agent
    def ticketing_agent(self) -> Agent:
        return self._agent("ticketing_agent")

    # ------------------------------------------------------------------ tasks (prose in tasks.yaml)

    @task
    def classify(self) -> Task:
        return Task(config=self.tasks_config["classify"], agent=self.classifier(),  # type: ignore[index]
                    output_pydantic=Classification)

    @task
    def lookup_customer(self) -> Task:
        return Task(config=self.tasks_config["lookup_customer"], agent=self.customer_analyst(),  # type: ignore[index]
                    output_pydantic=CustomerLookup)

    @task
    def draft_ticket(self) -> Task:
        return Task(config=self.tasks_config["draft_ticket"], agent=self.ticketing_agent(),  # type: ignore[index]
                    output_pydantic=TicketDraft)

    @crew
    def crew(self) -> Crew:
        return UnstoredCrew(  # a Crew that writes no kickoff outputs to CrewAI's storage (crews/_crewai_stores.py)
            agents=self.agents,  # type: ignore[attr-defined]  (filled by @CrewBase)
            tasks=self.tasks,  # type: ignore[attr-defined]
            process=Process.sequential,
            memory=False,
            verbose=False,
        )

    # ------------------------------------------------------------------ entry point

    def triage(self, query: str, customer: CustomerRecord | None = None) -> TriageResult:
        """Classify ``query``, state the caller's account facts and draft the ticket.

        :param customer: the run's verified caller (see ``verify_customer``); None: the requester is
            unverified and no account's facts are used. The query text never selects an account.
        :raises InvalidQueryError: empty query.
        :raises OutputValidationError: a task's output never validated (retries included).
        :raises LLMError: the model failed otherwise.
        """
        if not isinstance(query, str) or not query.strip():
            raise InvalidQueryError("the query to triage is empty")
        if customer is not None and not isinstance(customer, CustomerRecord):
            raise TypeError("customer must be a verified CustomerRecord or None")
        text = " ".join(query.split())
        # Text that addresses the assistant (directive markers): nothing the model writes from it is
        # kept; code's decisions and code's summaries stand (supportdesk._guardrails).
        code = self._code_writes(text, bool(injection_markers(text, self.config_dir)))
        if self.policy.agents_call_tools or not code.everything:  # the model will be asked: load it
            prepare_in_background(self.llm.chat_model)  # while code classifies (a cold process: seconds)
        suggestion = self.example_classifier.suggest(request_text(query, self.config_dir))  # no directive sentences
        tool = CustomerLookupTool.for_caller(customer)
        with _tracing.span(f"supportdesk.tool {tool.name}", **{"tool.name": tool.name, "tool.caller": "code"}):
            lookup = tool.lookup()
        logger.info("triage suggestion %s/%s (%.2f, rules %s); caller %s", suggestion.category,
                    suggestion.priority, suggestion.confidence, suggestion.rules,
                    "verified" if lookup.found else "unverified")
        inputs = {
            "query": text,
            "customer_message": customer_text(text),  # sits in a delimited block (tasks.yaml)
            "categories": self.categories.bullet_list(),
            "classify_note": self.policy.classify_note.format(
                category=suggestion.category, priority=suggestion.priority, confidence=f"{suggestion.confidence:.2f}"
            ),
            "customer_facts": (f"not given here: call the {tool.name} tool (no arguments) for the caller's account"
                               if self.policy.agents_call_tools else lookup.summary or "none"),
        }
        with self._run_lock:
            self.lookup_tool = tool
            self.llm.slot_plans = self._slot_plans(suggestion, lookup, text, code)
            before = self.llm.usage.calls
            output = self._bind_tools(self.crew()).kickoff(inputs=inputs)
            spent = self.llm.usage.completions[before:]
        results = {t.name: t.pydantic for t in output.tasks_output}
        classification = self._finalise_classification(results.get("classify"), suggestion, text)
        customer = results.get("lookup_customer")
        ticket = results.get("draft_ticket")
        if not isinstance(customer, CustomerLookup) or not isinstance(ticket, TicketDraft):
            raise OutputValidationError("the triage crew finished without a customer summary or ticket draft", attempts=1)
        return TriageResult(
            classification=classification,
            customer=customer,
            ticket=ticket,
            suggestion=suggestion,
            policy=self.policy.name,
            usage=TriageUsage(
                llm_calls=len(spent),
                prompt_tokens=sum(c.prompt_tokens for c in spent),
                completion_tokens=sum(c.completion_tokens for c in spent),
            ),
        )

    # ------------------------------------------------------------------ internals

    def _slot_plans(self, suggestion: TriageSuggestion, lookup: CustomerLookup, query: str,
                    code: _CodeWrites) -> dict[str, SlotPlan]:
        policy = self.policy
        overrides: dict[str, dict[str, Any]] = {}
        if policy.category_decided_by == "code":
            overrides["category"] = {"enum": [suggestion.category]}
        else:
            overrides["category"] = {"enum": self.categories.names}
        if policy.priority_decided_by == "code":
            overrides["priority"] = {"enum": [suggestion.priority]}
        overrides.update(policy.length_overrides(rationale="rationale"))
        plans = {
            "classify": SlotPlan(
                schema_overrides=overrides,
                complete=lambda c: self._finalise_classification(c, suggestion, query),
                max_tokens=policy.tokens("classify"),
            ),
            "lookup_customer": SlotPlan(
                fill=CustomerSummary,
                schema_overrides=policy.length_overrides(summary="customer_summary"),
                complete=lambda s: lookup.model_copy(update={"summary": self._vetted_text(s.summary, lookup.summary, lookup)}),
                max_tokens=policy.tokens("lookup_customer"),
            ),
            "draft_ticket": SlotPlan(
                schema_overrides=policy.length_overrides(title="title", summary="ticket_summary"),
                complete=lambda d: TicketDraft(
                    title=self._vetted_title(d.title, query, lookup),
                    summary=self._vetted_text(d.summary, self.prompts.ticket_summary(query, suggestion, lookup), lookup),
                ),
                max_tokens=policy.tokens("draft_ticket"),
            ),
        }
        if code.classification:
            # Code decided both fields: its evidence is the true rationale, no model is asked for one.
            # (Where the model decides, a directed message still reaches it and code bounds the answer.)
            plans["classify"] = SlotPlan(decided=lambda: self._finalise_classification(Classification(
                category=suggestion.category, priority=suggestion.priority, rationale=self._code_rationale(suggestion),
            ), suggestion, query))
        if code.summaries:
            # The facts are already in code's hands: state them instead of asking a small model to.
            plans["lookup_customer"] = SlotPlan(decided=lambda: lookup)
            summary = self.prompts.ticket_summary(query, suggestion, lookup)
            if code.title:  # the first sentence of the customer's request is the title (never an injected one)
                plans["draft_ticket"] = SlotPlan(decided=lambda: TicketDraft(title=self._code_title(query), summary=summary))
            else:
                plans["draft_ticket"] = SlotPlan(
                    fill=TicketTitle,
                    messages=lambda _chat: self.prompts.title_messages(query),
                    complete=lambda t: TicketDraft(
                        title=self._vetted_title(grounded_title(t.title, query), query, lookup),
                        summary=summary,
                    ),
                    max_tokens=policy.tokens("draft_ticket"),
                )
        return plans

    def _code_writes(self, query: str, directed: bool) -> _CodeWrites:
        """Which slots code fills for ``query`` under this policy (the model fills the others)."""
        policy = self.policy
        code_decides = policy.category_decided_by == "code" and policy.priority_decided_by == "code"
        summaries = policy.summaries_written_by == "code" or directed
        title = summaries and (directed or policy.title_written_by == "code"
                               or (policy.title_written_by == "auto" and title_fits(query)))
        return _CodeWrites(code_decides and (directed or policy.rationale_written_by == "code"), summaries, title)

    @staticmethod
    def _code_rationale(suggestion: TriageSuggestion) -> str:
        """The evidence code decided on, as one sentence (what a rationale by code says)."""
        rules = f", rules {', '.join(suggestion.rules)}" if suggestion.rules else ""
        return (f"Nearest labelled examples ({suggestion.confidence:.2f}{rules}) suggest "
                f"{suggestion.category}.")[:200]

    def _finalise_classification(self, value: Any, suggestion: TriageSuggestion, query: str = "") -> Classification:
        """Apply what code decides on top of the model's classification (idempotent).

        Where the model decides (``hosted``), its choice is bounded by code (supportdesk._guardrails):
        a category outside code's vetted set (code's own plus those with a real share of the nearest
        examples' vote) gives way to code's; the priority stays within one level of code's and never
        under a keyword rule's floor; and when ``query`` carries directive markers, code's category,
        priority and rationale stand whatever the model said.
        """
        if not isinstance(value, Classification):
            raise OutputValidationError("the classify task finished without a Classification", attempts=1)
        directed = injection_markers(query, getattr(self, "config_dir", None))
        update: dict[str, Any] = {}
        if self.policy.category_decided_by == "code" or directed:
            update["category"] = suggestion.category
        elif value.category not in vetted_categories(suggestion, self.categories.names):
            update["category"] = suggestion.category
        if self.policy.priority_decided_by == "code" or directed:
            update["priority"] = suggestion.priority
        elif self.policy.apply_priority_rules:
            update["priority"] = bounded_priority(value.priority, suggestion)
        else:
            update["priority"] = bounded_priority(value.priority, suggestion, floor=False)
        if directed or self._leaks(value.rationale):  # model text, or code's own (idempotent)
            update["rationale"] = self._code_rationale(suggestion)
        changed = {k: v for k, v in update.items() if getattr(value, k) != v}
        if changed and self.policy.category_decided_by != "code":
            logger.info("triage guardrail kept code's %s (markers %s)", sorted(changed), directed or "-")
        return value.model_copy(update=changed) if changed else value

    # ------------------------------------------------------------------ guardrails on model-written text

    def _leaks(self, text: str) -> bool:
        """True when ``text`` reproduces this crew's prompt prose (roles, backstories, task text)."""
        guard = getattr(self, "_leak_guard", None)
        if guard is None:
            prose: list[str] = [self.policy.classify_note, self.prompts.title_system, self.prompts.summary_template]
            for section in (self.agents_config, self.tasks_config):  # type: ignore[attr-defined]
                for spec in (section or {}).values():
                    if isinstance(spec, Mapping):
                        prose += [str(v) for v in spec.values() if isinstance(v, str)]
            guard = self._leak_guard = PromptLeakGuard.from_prose(prose)
        return guard.leaks(text)

    def _code_title(self, query: str) -> str:
        """The title code writes: the first sentence of the request without the sentences that address
        the assistant (``request_text``); when even that one carries directive markers, the configured
        neutral title. Injected text never becomes a ticket's title."""
        title = fallback_title(request_text(query, self.config_dir))
        return self.prompts.flagged_title if injection_markers(title, self.config_dir) else title

    def _vetted_title(self, title: str, query: str, lookup: CustomerLookup) -> str:
        """The model's title unless it carries directive markers, leaks the prompts or names another
        account; else code's title."""
        if injection_markers(title, self.config_dir):
            logger.info("triage guardrail replaced a model title carrying directive markers")
            return self._code_title(query)
        return self._vetted_text(title, self._code_title(query), lookup)

    def _vetted_text(self, text: str, fallback: str, lookup: CustomerLookup) -> str:
        """The model's ``text`` unless it leaks the prompts or names an account other than the caller's."""
        record = lookup.customer
        own = [record.customer_id, record.email] if record is not None else []
        if self._leaks(text) or mentions_other_account(text, own):
            logger.info("triage guardrail replaced model text (prompt leak or another account)")
            return fallback
        return text
