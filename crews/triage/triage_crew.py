"""The triage crew: classifier -> customer-DB analyst -> ticketing agent, run sequentially.

Prose (roles, goals, backstories, task descriptions, expected outputs) lives in this crew's own
``config/agents.yaml`` and ``config/tasks.yaml`` (the ``crewai create`` layout: a crew owns its
folder); this module does the wiring. Code decides what
code can, per decision policy (``config/policies.yaml``, section ``triage``):

* **embedded** (the offline 270M model): category and priority come from the nearest labelled
  examples plus keyword rules (:class:`~supportdesk.crews.classifier.ExampleClassifier`); the JSON
  schema pins both fields to those values so the model only writes the rationale;
* **hosted**: the model chooses the category (from the allowed list) and the priority, with the
  code's suggestion given as a hint; keyword rules still raise the priority to their floor;
* in both, the customer lookup runs in code (the lookup tool called with the identifiers found in
  the hint or the query) and the model writes only the account summary; the model fills the
  ticket's title and summary. Every task output is validated into its response model, with a
  bounded retry that feeds the validation error back; a final failure raises
  :class:`~supportdesk.errors.OutputValidationError`.

The crew never files the ticket: the flow does, in code, keyed by its run id::

    from supportdesk.crews.triage.triage_crew import TriageCrew
    from supportdesk.crews.tools.customer_db import CustomerDB

    crew = TriageCrew(chat_model, CustomerDB(home / "customers.db"), policy="embedded")
    result = crew.triage("I was charged twice this month, please refund one payment.", "maria.gonzalez@example.com")
    result.classification.category, result.classification.priority   # ('billing', 'high')
    result.customer.customer.customer_id, result.ticket.title          # ('C-1001', '...')
    result.usage.llm_calls                                              # 3
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from crewai import Agent, Crew, Process, Task
from crewai.project import CrewBase, agent, crew, task
from pydantic import BaseModel, Field

from supportdesk._config import load_yaml
from supportdesk.crews.classifier import ExampleClassifier, TriageSuggestion, raise_priority
from supportdesk.crews.prompts import TriagePrompts, grounded_title
from supportdesk.crews.tools.customer_db import CustomerDB, CustomerLookupTool
from supportdesk.errors import ConfigError, InvalidQueryError, OutputValidationError
from supportdesk.llm._types import ChatModel
from supportdesk.llm.crewai_llm import CrewChatLLM, SlotPlan
from supportdesk.models.responses import TEXT_PATTERN, Classification, CustomerLookup, TicketDraft, TicketTitle

__all__ = ["CustomerSummary", "TriageCrew", "TriagePolicy", "TriageResult", "TriageUsage"]

logger = logging.getLogger(__name__)

Decider = Literal["code", "llm"]


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
    classify_note: str = "Write one short sentence on why the message belongs in {category}."

    @classmethod
    def from_mapping(cls, name: str, data: Mapping[str, Any]) -> TriagePolicy:
        """Build from a ``triage`` mapping; unknown keys are a :class:`ConfigError`."""
        known = set(cls.__dataclass_fields__) - {"name"}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"policy {name!r} triage: unknown keys {sorted(unknown)}")
        values = dict(data)
        for key in ("category_decided_by", "priority_decided_by", "summaries_written_by"):
            if values.get(key, "code") not in ("code", "llm"):
                raise ConfigError(f"policy {name!r} triage: {key} must be 'code' or 'llm'")
        values["classify_note"] = " ".join(str(values.get("classify_note", cls.classify_note)).split())
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
    :param customer_db: the customer database the lookup reads.
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
        customer_db: CustomerDB,
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
        self.lookup_tool = CustomerLookupTool(db=customer_db)
        self.llm = CrewChatLLM.wrap(chat_model, output_retries=policy.output_retries)
        self._run_lock = threading.Lock()

    # ------------------------------------------------------------------ agents (prose in agents.yaml)

    def _agent(self, name: str) -> Agent:
        return Agent(
            config=self.agents_config[name],  # type: ignore[index]
            llm=self.llm,
            tools=[],
            allow_delegation=False,
            max_retry_limit=0,  # validation retries happen inside the LLM adapter, bounded
            max_iter=3,
            verbose=False,
        )

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
        return Crew(
            agents=self.agents,  # type: ignore[attr-defined]  (filled by @CrewBase)
            tasks=self.tasks,  # type: ignore[attr-defined]
            process=Process.sequential,
            memory=False,
            verbose=False,
        )

    # ------------------------------------------------------------------ entry point

    def triage(self, query: str, customer_hint: str | None = None) -> TriageResult:
        """Classify ``query``, look the customer up and draft the ticket.

        :param customer_hint: the customer's id or e-mail when the caller knows it.
        :raises InvalidQueryError: empty query.
        :raises OutputValidationError: a task's output never validated (retries included).
        :raises LLMError: the model failed otherwise.
        """
        if not isinstance(query, str) or not query.strip():
            raise InvalidQueryError("the query to triage is empty")
        suggestion = self.example_classifier.suggest(query)
        lookup = self.lookup_tool.db.resolve(query, customer_hint)
        logger.info("triage suggestion %s/%s (%.2f, rules %s); customer %s by %s", suggestion.category,
                    suggestion.priority, suggestion.confidence, suggestion.rules,
                    lookup.customer.customer_id if lookup.customer else "-", lookup.matched_by)
        inputs = {
            "query": " ".join(query.split()),
            "categories": self.categories.bullet_list(),
            "classify_note": self.policy.classify_note.format(
                category=suggestion.category, priority=suggestion.priority, confidence=f"{suggestion.confidence:.2f}"
            ),
            "customer_facts": lookup.summary or "none",
        }
        with self._run_lock:
            self.llm.slot_plans = self._slot_plans(suggestion, lookup, inputs["query"])
            before = self.llm.usage.calls
            output = self.crew().kickoff(inputs=inputs)
            spent = self.llm.usage.completions[before:]
        results = {t.name: t.pydantic for t in output.tasks_output}
        classification = self._finalise_classification(results.get("classify"), suggestion)
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

    def _slot_plans(self, suggestion: TriageSuggestion, lookup: CustomerLookup, query: str) -> dict[str, SlotPlan]:
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
                complete=lambda c: self._finalise_classification(c, suggestion),
                max_tokens=policy.tokens("classify"),
            ),
            "lookup_customer": SlotPlan(
                fill=CustomerSummary,
                schema_overrides=policy.length_overrides(summary="customer_summary"),
                complete=lambda s: lookup.model_copy(update={"summary": s.summary}),
                max_tokens=policy.tokens("lookup_customer"),
            ),
            "draft_ticket": SlotPlan(
                schema_overrides=policy.length_overrides(title="title", summary="ticket_summary"),
                max_tokens=policy.tokens("draft_ticket"),
            ),
        }
        if policy.summaries_written_by == "code":
            # The facts are already in code's hands: state them instead of asking a small model to.
            plans["lookup_customer"] = SlotPlan(decided=lambda: lookup)
            plans["draft_ticket"] = SlotPlan(
                fill=TicketTitle,
                messages=lambda _chat: self.prompts.title_messages(query),
                complete=lambda t: TicketDraft(
                    title=grounded_title(t.title, query),
                    summary=self.prompts.ticket_summary(query, suggestion, lookup),
                ),
                max_tokens=policy.tokens("draft_ticket"),
            )
        return plans

    def _finalise_classification(self, value: Any, suggestion: TriageSuggestion) -> Classification:
        """Apply what code decides on top of the model's classification (idempotent)."""
        if not isinstance(value, Classification):
            raise OutputValidationError("the classify task finished without a Classification", attempts=1)
        update: dict[str, Any] = {}
        if self.policy.category_decided_by == "code":
            update["category"] = suggestion.category
        elif value.category not in self.categories.names:
            update["category"] = self.categories.fallback
        if self.policy.priority_decided_by == "code":
            update["priority"] = suggestion.priority
        elif self.policy.apply_priority_rules:
            update["priority"] = raise_priority(value.priority, suggestion.rule_priority)
        return value.model_copy(update=update) if update else value
