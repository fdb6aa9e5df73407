"""The triage crew's tools come from agents.yaml: hosted agents call them (step limit, errors fed back);
under the embedded policy code calls them and agents get none."""

from __future__ import annotations

import json

from supportdesk.crews.tools.customer_db import CustomerLookupTool, verify_customer
from supportdesk.crews.triage.triage_crew import TriageCrew
from supportdesk.llm import ScriptedModel
from supportdesk.llm.crewai_llm import agent_step_model
from supportdesk.models.responses import CustomerLookup

REQUEST = "Two payments left my card for the same month of my plan; please give one back."
CLASSIFY = {"category": "billing", "priority": "high", "rationale": "Two payments for one month."}
SUMMARY = {"summary": "Pro plan; two paid charges in November."}
DRAFT = {"title": "Refund a duplicated monthly payment", "summary": "The caller paid twice for November. Refund one."}
CALL = {"tool": "customer_lookup", "arguments": {}}


def _observations(call) -> list[str]:
    return [m.content for m in call.messages if m.role == "assistant" and "Observation:" in m.content]


def test_yaml_tools_become_the_hosted_agents_tools(customer_db, example_classifier):
    """agents.yaml `tools: [customer_lookup]` gives the analyst the caller-scoped CrewAI tool; others get none."""
    crew = TriageCrew(ScriptedModel([]), policy="hosted", classifier=example_classifier)
    assert crew.agents_config["customer_analyst"]["tools"][0].name == "customer_lookup"
    built = crew._bind_tools(crew.crew())
    tools = {a.role: [t.name for t in a.tools] for a in built.agents}
    assert tools["Customer account analyst"] == ["customer_lookup"]
    assert tools["Support triage classifier"] == [] and tools["Support ticket writer"] == []
    assert all(isinstance(t, CustomerLookupTool) for a in built.agents for t in a.tools)


def test_embedded_policy_agents_get_no_tools_code_calls_them(customer_db, example_classifier):
    """Under the embedded policy no agent holds a tool; the lookup (and, for this short message, all else) runs in code."""
    crew = TriageCrew(ScriptedModel([]), policy="embedded", classifier=example_classifier)
    result = crew.triage(REQUEST, verify_customer(customer_db, "C-1001"))
    assert all(not a.tools for a in crew.crew().agents)
    assert result.customer.customer.customer_id == "C-1001" and result.usage.llm_calls == 0


def test_hosted_agent_calls_the_lookup_tool_and_reads_its_result(customer_db, example_classifier):
    """The hosted analyst calls customer_lookup; the verified caller's facts come back as the observation,
    and the stored account is code's, with the model's summary."""
    model = ScriptedModel([CLASSIFY, CALL, {"answer": SUMMARY}, DRAFT])
    caller = verify_customer(customer_db, "maria.gonzalez@example.com")
    result = TriageCrew(model, policy="hosted", classifier=example_classifier).triage(REQUEST, caller)
    step_schema = model.calls[1].json_schema
    assert step_schema["properties"]["tool"]["anyOf"][0]["const"] == "customer_lookup"
    observed = _observations(model.calls[2])
    assert len(observed) == 1
    payload = json.loads(observed[0].split("Observation:", 1)[1].strip())
    assert CustomerLookup.model_validate(payload).customer.customer_id == "C-1001"
    assert result.customer.customer.customer_id == "C-1001" and result.customer.summary == SUMMARY["summary"]
    assert result.usage.llm_calls == 4


def test_invalid_tool_arguments_are_fed_back_to_the_agent(customer_db, example_classifier):
    """A lookup of another account is refused and the refusal is the next observation; the agent then answers."""
    other = {"tool": "customer_lookup", "arguments": {"email": "someone.else@example.com"}}
    model = ScriptedModel([CLASSIFY, other, {"answer": SUMMARY}, DRAFT])
    caller = verify_customer(customer_db, "C-1001")
    result = TriageCrew(model, policy="hosted", classifier=example_classifier).triage(REQUEST, caller)
    observed = _observations(model.calls[2])
    assert "Error: customer_lookup reads only the verified caller's account" in observed[0]
    assert "someone.else" not in result.customer.model_dump_json()
    assert result.customer.customer.customer_id == "C-1001"


def test_step_limit_takes_the_tool_away(customer_db, example_classifier):
    """After max_tool_steps tool results the step schema offers no tool: the agent must answer."""
    model = ScriptedModel([CLASSIFY, CALL, CALL, {"answer": SUMMARY}, DRAFT])
    crew = TriageCrew(model, policy="hosted", classifier=example_classifier)
    assert crew.policy.max_tool_steps == 2
    crew.triage(REQUEST, verify_customer(customer_db, "C-1001"))
    assert "tool" in model.calls[2].json_schema["properties"]
    assert list(model.calls[3].json_schema["properties"]) == ["answer"]
    assert len(_observations(model.calls[3])) == 2


def test_agent_step_model_needs_exactly_one_of_tool_and_answer():
    """A step with both a tool and an answer, or neither, does not validate."""
    from pydantic import BaseModel, ValidationError

    class Answer(BaseModel):
        text: str

    step = agent_step_model(Answer, ["lookup"])
    assert step.model_validate({"tool": "lookup"}).tool == "lookup"
    assert step.model_validate({"answer": {"text": "x"}}).answer.text == "x"
    for bad in ({}, {"tool": "lookup", "answer": {"text": "x"}}, {"tool": "other"}):
        try:
            step.model_validate(bad)
        except ValidationError:
            continue
        raise AssertionError(f"{bad} validated")
