"""OpenTelemetry tracing (supportdesk/_tracing.py), with an in-memory exporter: off by default; on, a span
per run, step, model call (tokens), tool call and ticket, with Haystack's and CrewAI's spans nested under ours."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from supportdesk import _tracing, handle_query
from supportdesk.flows.services import build_services
from supportdesk.llm import ScriptedModel
from supportdesk.llm.scripted import ScriptedCall
from supportdesk.models import TicketStatus
from supportdesk.settings import Settings

# A first sentence too long for a title: the embedded policy asks the model for one (a model span).
BILLED_TWICE = "My card shows the same monthly fee two times on this month's statement; I'd like the extra one returned."

_EXPORTER = InMemorySpanExporter()


def _answer(call: ScriptedCall) -> dict:
    props = (call.json_schema or {}).get("properties", {})
    if "title" in props:
        return {"title": "Refund a repeated monthly fee"}
    return {"category": props["category"].get("enum", ["billing"])[0],
            "priority": props.get("priority", {}).get("enum", ["high"])[0], "rationale": "A repeated charge."}


@pytest.fixture(scope="module")
def exporter():
    """The host's SDK provider with an in-memory exporter (set once per process, as a host would)."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    yield _EXPORTER
    _EXPORTER.clear()  # later tests run with tracing off again
    _tracing._enabled = False
    import haystack.tracing

    haystack.tracing.disable_tracing()


def test_tracing_is_off_by_default():
    """Without SUPPORTDESK_OTEL no span is made: span() yields None."""
    assert Settings().otel is False
    if not _tracing.enabled():
        with _tracing.span("x") as span:
            assert span is None


def test_a_run_traces_steps_model_calls_tools_ticket_and_library_spans(exporter, tmp_path, monkeypatch):
    """One escalated run: spans for run, each step, model calls with tokens, the lookup tool, the ticket,
    Haystack's pipeline and CrewAI's crew spans, all in the run's trace and under its span."""
    monkeypatch.setenv("SUPPORTDESK_OTEL", "true")
    settings = Settings(home=tmp_path / "home")
    assert settings.otel
    exporter.clear()
    services = build_services(settings, chat_model=ScriptedModel(_answer))
    state = handle_query(BILLED_TWICE, customer="C-1001", run_id="traced-1", settings=settings, services=services)
    assert state.status is TicketStatus.TICKET_CREATED
    trace.get_tracer_provider().force_flush()
    spans = exporter.get_finished_spans()
    by_name: dict[str, list] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    run = by_name["supportdesk.run"][0]
    assert run.attributes["run_id"] == "traced-1"
    ids = {s.context.span_id: s for s in spans}

    def under(span, ancestor) -> bool:
        while span.parent is not None:
            if span.parent.span_id == ancestor.context.span_id:
                return True
            span = ids.get(span.parent.span_id)
            if span is None:
                return False
        return False

    assert all(s.context.trace_id == run.context.trace_id for s in spans if s.name.startswith("supportdesk."))
    steps = {s.attributes["step"]: s for s in spans if s.name.startswith("supportdesk.step ")}
    assert {"intake", "answer_from_faq", "triage", "file_ticket"} <= set(steps)
    assert all(under(s, run) for s in steps.values())
    llm = by_name["supportdesk.llm"]
    assert llm and all(s.attributes["gen_ai.usage.input_tokens"] > 0 for s in llm)
    assert all(under(s, steps["triage"]) for s in llm)
    tool = by_name["supportdesk.tool customer_lookup"][0]
    assert tool.attributes["tool.caller"] == "code" and under(tool, steps["triage"])
    ticket = by_name["supportdesk.ticket"][0]
    assert ticket.attributes["ticket.id"] == state.ticket_id and under(ticket, steps["file_ticket"])
    haystack = [s for s in spans if s.name.startswith("haystack.")]
    assert haystack and all(under(s, steps["answer_from_faq"]) for s in haystack)
    crewai = [s for s in spans if "crewai.execution_uuid" in (s.attributes or {})]
    assert {"execute crew", "execute task", "execute agent"} <= {s.name for s in crewai}
    assert all(under(s, run) for s in crewai)
    leaked = [(s.name, k) for s in spans for k, v in (s.attributes or {}).items() if "monthly fee" in str(v)]
    assert not leaked
