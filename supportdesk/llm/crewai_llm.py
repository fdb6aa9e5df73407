"""CrewAI adapter: any supportdesk :class:`~supportdesk.llm._types.ChatModel` as a CrewAI LLM.

CrewAI agents talk to their model through ``BaseLLM.call``. :class:`CrewChatLLM` implements it on
top of a ``ChatModel`` with no network client and no litellm:

* a call that carries a response model (the task's ``output_pydantic``; CrewAI passes it as
  ``response_model`` to tool-less agents) goes through
  :func:`~supportdesk.llm.structured.structured_call`: the schema constrains decoding, the answer is
  validated, an invalid answer is fed back with the validation error a bounded number of times, and
  the validated **model instance** is returned. CrewAI's executor turns a returned ``BaseModel``
  straight into the agent's final answer (no ``Final Answer:`` parsing) and the task stores it as
  ``TaskOutput.pydantic``. A final failure raises :class:`~supportdesk.errors.OutputValidationError`.
* a plain call returns text; for a tool-less agent the text is prefixed with ``Final Answer:`` so
  the ReAct parser can never mistake it for a tool action.
* an agent with tools (hosted policy) answers each step with :func:`agent_step_model`: a tool call
  (returned as CrewAI's ReAct ``Action:`` text; CrewAI runs the tool and feeds its result, or its
  ``Error: ...`` for bad arguments, back as the next observation) or the final answer; after
  ``max_iter - 1`` tool results the schema offers no tool, so the step limit holds by construction;
* :class:`SlotPlan` lets code decide part of a task's output: the model fills a narrow slot (a
  smaller response model, or the same one with fields pinned by ``schema_overrides``) and a
  function of the caller completes it into the task's response model.

Every completion is recorded (:attr:`CrewChatLLM.usage`) and reported to CrewAI's token counters::

    from crewai import Agent, Crew, Task
    from supportdesk.llm.crewai_llm import CrewChatLLM
    from supportdesk.llm.scripted import ScriptedModel
    from supportdesk.models import TicketDraft

    llm = CrewChatLLM.wrap(ScriptedModel([{"title": "Refund", "summary": "Charged twice."}]))
    agent = Agent(role="Ticket writer", goal="Write tickets", backstory="...", llm=llm, max_retry_limit=0)
    task = Task(description="Draft a ticket", expected_output="A ticket", agent=agent,
                output_pydantic=TicketDraft)
    Crew(agents=[agent], tasks=[task]).kickoff().pydantic     # TicketDraft(title='Refund', ...)
    llm.usage.calls                                            # 1
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from supportdesk._offline import import_crewai

import_crewai()  # CrewAI without its import-time load_dotenv() (see supportdesk._offline)

from crewai.events.types.llm_events import LLMCallType  # noqa: E402
from crewai.llms.base_llm import BaseLLM, llm_call_context
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, create_model, model_validator

from supportdesk.errors import LLMError
from supportdesk.llm._types import ChatMessage, ChatModel, Completion, Role
from supportdesk.llm.structured import structured_call

if TYPE_CHECKING:
    from crewai.agents.agent_builder.base_agent import BaseAgent
    from crewai.task import Task
    from crewai.tools.base_tool import BaseTool

__all__ = ["CrewChatLLM", "LLMUsage", "SlotPlan", "agent_step_model", "closed_schema", "strip_format_instructions", "to_chat_messages"]

logger = logging.getLogger(__name__)

FINAL_ANSWER = "Final Answer:"


@dataclass(frozen=True)
class SlotPlan:
    """How one task's response model is produced.

    :param fill: the model the LLM fills; ``None`` means the task's own response model.
    :param complete: turns the filled slot into the task's response model (code-decided fields go
        in here); ``None`` means the filled value is the answer.
    :param schema_overrides: per-property JSON-schema fragments for ``fill`` (an ``enum`` of one
        value pins a field to a code-decided value; see :func:`~supportdesk.llm.structured.structured_call`).
    :param messages: rewrites the conversation before it reaches the model (e.g. a compact prompt
        for a small model); ``None`` keeps CrewAI's messages.
    :param max_tokens: completion budget for this slot; ``None`` uses the LLM's default.
    :param decided: code produces the whole response model; the model is not called at all.

    Example: the model writes only the rationale, code fixed the category::

        SlotPlan(schema_overrides={"category": {"enum": ["billing"]}, "priority": {"enum": ["high"]}})
    """

    fill: type[BaseModel] | None = None
    complete: Callable[[Any], BaseModel] | None = None
    schema_overrides: Mapping[str, dict[str, Any]] | None = None
    messages: Callable[[list[ChatMessage]], list[ChatMessage]] | None = None
    max_tokens: int | None = None
    decided: Callable[[], BaseModel] | None = None


@dataclass
class LLMUsage:
    """Calls and tokens spent through one :class:`CrewChatLLM`, one entry per model request."""

    completions: list[Completion] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return len(self.completions)

    @property
    def prompt_tokens(self) -> int:
        return sum(c.prompt_tokens for c in self.completions)

    @property
    def completion_tokens(self) -> int:
        return sum(c.completion_tokens for c in self.completions)


def to_chat_messages(messages: str | list[Any]) -> list[ChatMessage]:
    """Convert CrewAI's messages (a string or OpenAI-style dicts) into :class:`ChatMessage` s.

    ``tool`` messages become user messages; multimodal content keeps only its text parts::

        to_chat_messages([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    """
    if isinstance(messages, str):
        return [ChatMessage("user", messages)]
    converted: list[ChatMessage] = []
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping) or "role" not in message:
            raise LLMError(f"message {index} has no role: {type(message).__name__}")
        role_in = str(message["role"])
        role: Role = role_in if role_in in ("system", "user", "assistant") else "user"  # type: ignore[assignment]
        converted.append(ChatMessage(role, _content_text(message.get("content"))))
    return converted


_FORMAT_BLOCK_RE = re.compile(
    r"Format your final answer according to the following OpenAPI schema:.*?(?:```python\.|\Z)", re.DOTALL
)


def strip_format_instructions(messages: list[ChatMessage]) -> list[ChatMessage]:
    """Remove CrewAI's OpenAPI-schema formatting block from user messages (the schema is sent separately)."""
    return [
        ChatMessage(m.role, _FORMAT_BLOCK_RE.sub("", m.content).strip()) if m.role == "user" else m for m in messages
    ]


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            block["text"]
            for block in content
            if isinstance(block, Mapping) and block.get("type") == "text" and isinstance(block.get("text"), str)
        ]
        return " ".join(parts)
    return str(content)


class CrewChatLLM(BaseLLM):
    """A CrewAI ``BaseLLM`` backed by a supportdesk ``ChatModel`` (no network of its own, no litellm).

    Build it with :meth:`wrap`; give each crew run its own instance (slot plans and usage are per run).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    llm_type: str = "supportdesk"
    provider: str = Field(default="supportdesk")
    chat_model: Any = Field(exclude=True, description="The supportdesk ChatModel answering the calls.")
    output_retries: int = Field(default=2, ge=0, le=5, description="Re-asks after an invalid structured answer.")
    max_output_tokens: int = Field(default=512, ge=1)
    context_window: int = Field(default=4096, ge=256)
    slot_plans: dict[str, SlotPlan] = Field(
        default_factory=dict, exclude=True, description="Per task name: how its response model is filled."
    )

    strip_format_instructions: bool = Field(
        default=True,
        description="Drop CrewAI's 'Format your final answer according to the following OpenAPI schema' block "
        "from structured calls: the schema already travels as constrained decoding plus Mirascope's instructions.",
    )

    _usage: LLMUsage = PrivateAttr(default_factory=LLMUsage)
    _usage_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @model_validator(mode="before")
    @classmethod
    def _name_from_chat_model(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("model") and data.get("chat_model") is not None:
            data = {**data, "model": getattr(data["chat_model"], "name", None) or "supportdesk"}
        return data

    @classmethod
    def wrap(
        cls,
        chat_model: ChatModel,
        *,
        output_retries: int = 2,
        max_output_tokens: int = 512,
        context_window: int = 4096,
        slot_plans: Mapping[str, SlotPlan] | None = None,
    ) -> CrewChatLLM:
        """Wrap ``chat_model`` for CrewAI agents::

        llm = CrewChatLLM.wrap(model, output_retries=2, slot_plans={"classify": SlotPlan(...)})
        """
        if not isinstance(chat_model, ChatModel):
            raise LLMError(f"{type(chat_model).__name__} is not a supportdesk ChatModel")
        return cls(
            model=chat_model.name or "supportdesk",
            chat_model=chat_model,
            output_retries=output_retries,
            max_output_tokens=max_output_tokens,
            context_window=context_window,
            slot_plans=dict(slot_plans or {}),
            temperature=0.0,
        )

    # ------------------------------------------------------------------ CrewAI interface

    def call(
        self,
        messages: str | list[Any],
        tools: list[dict[str, BaseTool]] | None = None,
        callbacks: list[Any] | None = None,
        available_functions: dict[str, Any] | None = None,
        from_task: Task | None = None,
        from_agent: BaseAgent | None = None,
        response_model: type[BaseModel] | None = None,
    ) -> str | BaseModel:
        """Answer CrewAI's request: a validated model instance when a response model applies, else text."""
        with llm_call_context():
            self._emit_call_started_event(
                messages=messages,
                tools=tools,
                callbacks=callbacks,
                available_functions=available_functions,
                from_task=from_task,
                from_agent=from_agent,
            )
            try:
                chat = to_chat_messages(messages)
                plan = self._plan_for(from_task)
                target = response_model or self._task_model(from_task, from_agent, tools)
                agent_tools = list(getattr(from_agent, "tools", None) or [])
                if plan.decided is not None:
                    result: str | BaseModel = plan.decided()
                elif agent_tools and from_task is not None and (plan.fill or _output_model(from_task)):
                    result = self._tool_step(chat, agent_tools, plan, from_task, from_agent)
                elif target is not None or plan.fill is not None:
                    result = self._structured(chat, target, plan, from_task)
                else:
                    result = self._text(chat, plan, from_agent, tools)
            except Exception as exc:
                self._emit_call_failed_event(error=str(exc), from_task=from_task, from_agent=from_agent)
                raise
            self._emit_call_completed_event(
                response=result.model_dump_json() if isinstance(result, BaseModel) else result,
                call_type=LLMCallType.LLM_CALL,
                from_task=from_task,
                from_agent=from_agent,
                messages=messages,
            )
            return result

    def supports_function_calling(self) -> bool:
        """Tool calls go through CrewAI's text ReAct protocol, never native function calling."""
        return False

    def supports_stop_words(self) -> bool:
        """Stop words are applied to the text this adapter returns (not to structured answers)."""
        return True

    def get_input_tokens_count(self, messages: str | list[Any], tools: Any = None, response_model: Any = None) -> int:
        """Estimate prompt tokens (four characters a token), silently: no provider count exists offline."""
        text = messages if isinstance(messages, str) else " ".join(m.content for m in to_chat_messages(messages))
        return (len(text) + 3) // 4

    def get_context_window_size(self) -> int:
        """Usable context: 85 % of the model's window, as CrewAI's own providers report it."""
        return int(self.context_window * 0.85)

    # ------------------------------------------------------------------ usage

    @property
    def usage(self) -> LLMUsage:
        """Calls and tokens spent so far through this instance (one entry per model request)."""
        with self._usage_lock:
            return LLMUsage(list(self._usage.completions))

    def _record(self, completion: Completion) -> None:
        with self._usage_lock:
            self._usage.completions.append(completion)
            self._track_token_usage_internal(
                {
                    "prompt_tokens": completion.prompt_tokens,
                    "completion_tokens": completion.completion_tokens,
                    "total_tokens": completion.prompt_tokens + completion.completion_tokens,
                    "successful_requests": 1,
                }
            )

    # ------------------------------------------------------------------ internals

    def _plan_for(self, task: Task | None) -> SlotPlan:
        name = getattr(task, "name", None)
        if name and name in self.slot_plans:
            return self.slot_plans[name]
        return SlotPlan()

    @staticmethod
    def _task_model(
        task: Task | None, agent: BaseAgent | None, tools: list[dict[str, BaseTool]] | None
    ) -> type[BaseModel] | None:
        """The task's response model when CrewAI did not pass one but the agent cannot use tools anyway."""
        if task is None or tools or (agent is not None and getattr(agent, "tools", None)):
            return None
        model = getattr(task, "response_model", None) or getattr(task, "output_pydantic", None)
        return model if isinstance(model, type) and issubclass(model, BaseModel) else None

    def _structured(
        self,
        chat: list[ChatMessage],
        target: type[BaseModel] | None,
        plan: SlotPlan,
        task: Task | None,
    ) -> BaseModel:
        fill = plan.fill or target
        assert fill is not None  # guarded by the caller
        if self.strip_format_instructions:
            chat = strip_format_instructions(chat)
        if plan.messages is not None:
            chat = plan.messages(chat)
        result = structured_call(
            _Recording(self.chat_model, self._record),
            chat,
            fill,
            retries=self.output_retries,
            max_tokens=plan.max_tokens or self.max_output_tokens,
            schema_overrides=dict(plan.schema_overrides) if plan.schema_overrides else None,
        )
        value = plan.complete(result.value) if plan.complete is not None else result.value
        if target is not None and not isinstance(value, target):
            raise LLMError(
                f"slot plan of task {getattr(task, 'name', '?')!r} produced {type(value).__name__}, "
                f"expected {target.__name__}"
            )
        logger.debug("task %s: %s validated in %d attempt(s)", getattr(task, "name", "?"), fill.__name__, result.attempts)
        return value

    def _tool_step(
        self, chat: list[ChatMessage], tools: list[BaseTool], plan: SlotPlan, task: Task, agent: BaseAgent | None
    ) -> str | BaseModel:
        """One step of a tool-using agent, as a validated :func:`agent_step_model`: a tool call comes back
        as CrewAI's ReAct text (CrewAI runs the tool; an ``Error: ...`` from it is the next observation the
        model reads), the answer as the task's model. After ``max_iter - 1`` tool results the schema
        offers no tool, so the model must answer: the step limit is the schema, not a hope."""
        fill = plan.fill or _output_model(task)
        assert fill is not None  # guarded by the caller
        used = sum(m.content.count("\nObservation:") for m in chat if m.role == "assistant")
        limit = max(int(getattr(agent, "max_iter", 1) or 1) - 1, 0)
        names = [t.name for t in tools] if used < limit else []
        if self.strip_format_instructions:
            chat = strip_format_instructions(chat)
        result = structured_call(
            _Recording(self.chat_model, self._record),
            chat,
            agent_step_model(fill, names),
            retries=self.output_retries,
            max_tokens=plan.max_tokens or self.max_output_tokens,
        )
        step = result.value
        if getattr(step, "tool", None):
            logger.debug("task %s: agent calls %s", getattr(task, "name", "?"), step.tool)
            arguments = json.dumps(step.arguments or {})
            return f"Thought: I will use {step.tool}.\nAction: {step.tool}\nAction Input: {arguments}"
        return plan.complete(step.answer) if plan.complete is not None else step.answer

    def _text(
        self,
        chat: list[ChatMessage],
        plan: SlotPlan,
        agent: BaseAgent | None,
        tools: list[dict[str, BaseTool]] | None,
    ) -> str:
        if plan.messages is not None:
            chat = plan.messages(chat)
        completion = _Recording(self.chat_model, self._record).complete(
            chat, max_tokens=plan.max_tokens or self.max_output_tokens, temperature=self.temperature or 0.0
        )
        text = self._apply_stop_words(completion.text).strip()
        if not text:
            raise LLMError(f"model {self.model!r} returned an empty answer")
        if agent is not None and not tools and not getattr(agent, "tools", None) and FINAL_ANSWER not in text:
            text = f"{FINAL_ANSWER} {text}"
        return text


def _output_model(task: Task | None) -> type[BaseModel] | None:
    model = getattr(task, "response_model", None) or getattr(task, "output_pydantic", None)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def agent_step_model(answer: type[BaseModel], tool_names: list[str]) -> type[BaseModel]:
    """The response model of one tool-using agent step: call one of ``tool_names`` with ``arguments``,
    or give the ``answer``; exactly one. With no tool names left it is the answer only::

        Step = agent_step_model(CustomerSummary, ["customer_lookup"])
        Step.model_validate({"tool": "customer_lookup", "arguments": {}})
    """
    if not tool_names:
        return create_model("AgentAnswer", __doc__="Give your final answer now.",
                            answer=(answer, Field(description="The final answer.")))

    def one_of(step: Any) -> Any:
        if (step.tool is None) == (step.answer is None):
            raise ValueError("give either tool (with arguments) or answer, not both and not neither")
        return step

    return create_model(
        "AgentStep",
        __doc__="Either call one tool to get information you need, or give the final answer.",
        __validators__={"one_of": model_validator(mode="after")(one_of)},
        tool=(Literal[tuple(tool_names)] | None, Field(default=None, description="The tool to call now, or null to answer.")),  # type: ignore[valid-type]
        arguments=(dict[str, Any], Field(default_factory=dict, description="The tool's arguments (may be empty).")),
        answer=(answer | None, Field(default=None, description="The final answer, when no tool is called.")),  # type: ignore[operator]
    )


def closed_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` with ``additionalProperties: false`` on every object that lists properties.

    Constrained decoding (llama.cpp grammars) otherwise lets a small model append invented keys
    until it runs out of tokens, and the JSON never closes.
    """

    def visit(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: visit(v) for k, v in node.items()}
            if out.get("type") == "object" and "properties" in out:
                out.setdefault("additionalProperties", False)
            return out
        if isinstance(node, list):
            return [visit(v) for v in node]
        return node

    return visit(schema)


class _Recording:
    """A ChatModel proxy that reports every completion (failed validations included) to ``sink``."""

    def __init__(self, inner: ChatModel, sink: Callable[[Completion], None]) -> None:
        self._inner = inner
        self.name = inner.name
        self._sink = sink

    def complete(
        self,
        messages: list[ChatMessage],
        *,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int = 512,
        temperature: float = 0.0,
    ) -> Completion:
        if json_schema is not None:
            json_schema = closed_schema(json_schema)
        completion = self._inner.complete(messages, json_schema=json_schema, max_tokens=max_tokens, temperature=temperature)
        self._sink(completion)
        return completion
