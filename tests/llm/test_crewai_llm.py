"""CrewChatLLM: a supportdesk ChatModel behind CrewAI's BaseLLM interface."""

from __future__ import annotations

import pytest
from crewai import Agent, Crew, Process, Task
from pydantic import BaseModel

from supportdesk.errors import LLMError, OutputValidationError
from supportdesk.llm import ScriptedModel
from supportdesk.llm.crewai_llm import CrewChatLLM, SlotPlan, strip_format_instructions, to_chat_messages
from supportdesk.llm._types import ChatMessage
from supportdesk.models import TicketDraft

DRAFT = {"title": "Refund duplicate charge", "summary": "Charged twice in November."}


class Slot(BaseModel):
    """Just the title."""

    title: str


def _crew(llm: CrewChatLLM, **task_kwargs) -> Crew:
    agent = Agent(role="Writer", goal="Write tickets", backstory="You write tickets.", llm=llm, max_retry_limit=0)
    task = Task(description="Draft a ticket for: {query}", expected_output="A ticket", agent=agent, name="draft",
                **task_kwargs)
    return Crew(agents=[agent], tasks=[task], process=Process.sequential)


def test_plain_call_returns_text_and_counts_usage():
    """A call without a response model returns the model's text and records one request's tokens."""
    llm = CrewChatLLM.wrap(ScriptedModel(["hello there"]))
    assert llm.call("say hi") == "hello there"
    assert llm.usage.calls == 1 and llm.usage.prompt_tokens == 2
    assert llm.get_token_usage_summary().successful_requests == 1


def test_response_model_call_returns_validated_instance():
    """With response_model the answer comes back as a validated model instance (schema sent along)."""
    model = ScriptedModel([DRAFT])
    value = CrewChatLLM.wrap(model).call([{"role": "user", "content": "draft"}], response_model=TicketDraft)
    assert value == TicketDraft(**DRAFT)
    assert model.calls[0].json_schema["title"] == "TicketDraft"


def test_capabilities():
    """No native function calling; stop words supported; 85% of the context window usable."""
    llm = CrewChatLLM.wrap(ScriptedModel([]), context_window=4000)
    assert llm.supports_function_calling() is False
    assert llm.supports_stop_words() is True
    assert llm.get_context_window_size() == 3400


def test_construct_from_chat_model_only():
    """CrewChatLLM(chat_model=m) takes its model name from the chat model."""
    llm = CrewChatLLM(chat_model=ScriptedModel([], name="tiny"))
    assert llm.model == "tiny"


def test_wrap_rejects_non_chat_model():
    """Wrapping something that is not a ChatModel is an LLMError."""
    with pytest.raises(LLMError):
        CrewChatLLM.wrap(object())  # type: ignore[arg-type]


def test_task_output_pydantic_through_crew():
    """In a crew, a tool-less task with output_pydantic gets the validated model as TaskOutput.pydantic."""
    llm = CrewChatLLM.wrap(ScriptedModel([DRAFT]))
    out = _crew(llm, output_pydantic=TicketDraft).kickoff(inputs={"query": "charged twice"})
    assert out.tasks_output[0].pydantic == TicketDraft(**DRAFT)
    assert llm.usage.calls == 1


def test_plain_task_through_crew_gets_final_answer():
    """A task without a response model finishes with the model's text (Final Answer: added for the parser)."""
    llm = CrewChatLLM.wrap(ScriptedModel(["Action: nothing\nAction Input: {}\nJust text."]))
    out = _crew(llm).kickoff(inputs={"query": "x"})
    assert "Just text." in out.raw


def test_validation_retry_in_crew_then_failure():
    """Invalid answers are fed back with the error; after the retries OutputValidationError escapes kickoff."""
    model = ScriptedModel(['{"title": 5}', "nope", "nope again"])
    llm = CrewChatLLM.wrap(model, output_retries=2)
    with pytest.raises(OutputValidationError):
        _crew(llm, output_pydantic=TicketDraft).kickoff(inputs={"query": "x"})
    assert len(model.calls) == 3 and llm.usage.calls == 3  # failed attempts are counted too
    feedback = model.calls[1].messages[-1].content  # Mirascope's ParseError.retry_message()
    assert "failed schema validation" in feedback and "title" in feedback


def test_slot_plan_fills_slot_and_completes_in_code():
    """A SlotPlan has the model fill a smaller model and code complete the task's response model."""
    model = ScriptedModel([{"title": "From the slot"}])
    plan = SlotPlan(fill=Slot, complete=lambda s: TicketDraft(title=s.title, summary="Written by code."))
    llm = CrewChatLLM.wrap(model, slot_plans={"draft": plan})
    out = _crew(llm, output_pydantic=TicketDraft).kickoff(inputs={"query": "x"})
    assert out.tasks_output[0].pydantic == TicketDraft(title="From the slot", summary="Written by code.")
    assert model.calls[0].json_schema["title"] == "Slot"


def test_crewai_format_block_is_stripped():
    """CrewAI's duplicate OpenAPI-schema block is removed from structured prompts."""
    text = ("Current Task: x\nFormat your final answer according to the following OpenAPI schema: {big}\n\n"
            "Do not include the OpenAPI schema in the final output. Ensure the final output does not include any "
            "code block markers like ```json or ```python.\n\nProvide your complete response:")
    out = strip_format_instructions([ChatMessage("user", text)])[0].content
    assert "OpenAPI" not in out and "Provide your complete response:" in out


def test_message_conversion():
    """CrewAI messages (string, dicts, tool role, content blocks) become ChatMessages."""
    msgs = to_chat_messages([
        {"role": "system", "content": "s"},
        {"role": "tool", "content": "observation"},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {}}]},
    ])
    assert [(m.role, m.content) for m in msgs] == [("system", "s"), ("user", "observation"), ("user", "a")]
    assert to_chat_messages("hi") == [ChatMessage("user", "hi")]
