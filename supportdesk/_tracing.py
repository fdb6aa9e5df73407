"""OpenTelemetry tracing of runs: off by default, one setting away.

``SUPPORTDESK_OTEL=true`` turns it on. Spans go to the application's tracer provider when it has set
one (an embedding host keeps its own exporters); otherwise supportdesk installs an SDK provider that
exports with OTLP, configured by the standard variables (``OTEL_EXPORTER_OTLP_ENDPOINT``,
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, ``OTEL_EXPORTER_OTLP_HEADERS``,
``OTEL_EXPORTER_OTLP_PROTOCOL`` = ``http/protobuf`` (default) or ``grpc``, ``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``). Off, nothing here creates a span or touches OpenTelemetry's globals.

Spans (all under ``supportdesk.run``)::

    supportdesk.run                    run_id
      supportdesk.step <name>          step
        haystack.pipeline.run ...      Haystack's own spans (haystack.tracing, bridged here)
        supportdesk.llm                gen_ai.request.model, gen_ai.usage.input_tokens / output_tokens
        crewai.* (crew, task, agent)   CrewAI's own event spans (its TraceSession), re-parented here
          supportdesk.tool <name>      tool.name, tool.caller (agent | code)
        supportdesk.ticket             ticket.backend, ticket.id

Attributes carry ids, names and counts only, never customer text. The current run id and step are
also what JSON logs stamp on every record (:mod:`supportdesk._logs`)::

    from supportdesk import _tracing
    with _tracing.run_scope("run-1", settings), _tracing.step_scope("triage"):
        _tracing.current()          # ('run-1', 'triage')
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

__all__ = ["configure", "crewai_spans", "current", "enabled", "model_span", "run_scope", "span", "step_scope"]

logger = logging.getLogger(__name__)

_RUN: ContextVar[str | None] = ContextVar("supportdesk_run_id", default=None)
_STEP: ContextVar[str | None] = ContextVar("supportdesk_step", default=None)
_lock = threading.Lock()
_enabled = False


def current() -> tuple[str | None, str | None]:
    """The run id and step being executed in this context (None outside a run)."""
    return _RUN.get(), _STEP.get()


def enabled() -> bool:
    """True once :func:`configure` switched tracing on in this process."""
    return _enabled


def configure(settings: Any) -> bool:
    """Switch tracing on when ``settings.otel``; idempotent. Returns whether tracing is on."""
    global _enabled
    if not getattr(settings, "otel", False):
        return _enabled
    with _lock:
        if _enabled:
            return True
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider

        if not isinstance(trace.get_tracer_provider(), TracerProvider):
            trace.set_tracer_provider(_otlp_provider())
        import haystack.tracing

        haystack.tracing.enable_tracing(_HaystackTracer(trace.get_tracer("haystack")))
        _enabled = True
        logger.info("OpenTelemetry tracing on (provider %s)", type(trace.get_tracer_provider()).__name__)
        return True


def _otlp_provider() -> Any:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    if protocol.strip() == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "supportdesk"}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


@contextlib.contextmanager
def span(name: str, **attributes: Any) -> Iterator[Any]:
    """A span named ``name`` under the current one (``None`` and no work when tracing is off)."""
    if not _enabled:
        yield None
        return
    from opentelemetry import trace

    clean = {k: v for k, v in attributes.items() if isinstance(v, (str, bool, int, float))}
    with trace.get_tracer("supportdesk").start_as_current_span(name, attributes=clean) as current_span:
        yield current_span


@contextlib.contextmanager
def run_scope(run_id: str, settings: Any = None) -> Iterator[None]:
    """The context of one run: its id for logs, and the ``supportdesk.run`` span."""
    if settings is not None:
        configure(settings)
    token = _RUN.set(run_id)
    try:
        with span("supportdesk.run", run_id=run_id):
            yield
    finally:
        _RUN.reset(token)


@contextlib.contextmanager
def step_scope(name: str) -> Iterator[None]:
    """The context of one flow step: its name for logs, and a ``supportdesk.step <name>`` span."""
    token = _STEP.set(name)
    try:
        with span(f"supportdesk.step {name}", step=name, run_id=_RUN.get() or ""):
            yield
    finally:
        _STEP.reset(token)


@contextlib.contextmanager
def model_span(model: str) -> Iterator[Any]:
    """A ``supportdesk.llm`` span; call ``record(completion)`` on what it yields to add the tokens."""
    with span("supportdesk.llm", **{"gen_ai.request.model": model}) as current_span:
        yield _UsageRecorder(current_span)


class _UsageRecorder:
    def __init__(self, current_span: Any) -> None:
        self._span = current_span

    def record(self, completion: Any) -> None:
        if self._span is None:
            return
        self._span.set_attributes({
            "gen_ai.response.model": str(getattr(completion, "model", "")),
            "gen_ai.usage.input_tokens": int(getattr(completion, "prompt_tokens", 0)),
            "gen_ai.usage.output_tokens": int(getattr(completion, "completion_tokens", 0)),
        })


@contextlib.contextmanager
def crewai_spans(name: str = "supportdesk") -> Iterator[None]:
    """CrewAI's own spans for the crew run inside the block, nested under the current span.

    CrewAI builds its spans from its event bus in a ``TraceSession`` with a provider of its own; its
    first span is normally a new trace's root. Here the session's root is our current span (so its
    spans join our trace), and when the block ends its finished spans are re-made, with their own
    times, names, kinds, statuses and nesting, through the application's tracer (public OpenTelemetry
    API: its exporters see them like any other span). No CrewAI exporter is attached: nothing goes
    to CrewAI's servers.
    """
    if not _enabled:
        yield
        return
    from crewai.telemetry.tracing.session import TraceSession
    from opentelemetry import trace

    parent = trace.get_current_span()
    collector = _collector()
    session = TraceSession(f"{_RUN.get() or name}", processors=[collector], automation_name=name)
    session.context.root_span = parent
    try:
        with session.activate():
            yield
    finally:
        session.shutdown()
        _replay(collector.finished, trace.get_tracer("supportdesk.crewai"))


#: CrewAI span attributes kept when forwarded: ids, names, kinds, models and numbers. Its other
#: attributes (crew inputs, task descriptions, prompts, outputs) can hold customer text: dropped.
_KEEP = re.compile(r"(^|[._])(id|ids|uuid|name|key|type|kind|model|role|process|system|status|operation\.name)$")


def _collector() -> Any:
    """A span processor keeping CrewAI's finished spans for :func:`_replay`."""
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

    class Collect(SpanProcessor):
        def __init__(self) -> None:
            self.finished: list[ReadableSpan] = []

        def on_end(self, span: ReadableSpan) -> None:
            self.finished.append(span)

    return Collect()


def _replay(finished: list[Any], tracer: Any) -> None:
    """Re-make ``finished`` spans through ``tracer``, parents first, minus text attributes (see ``_KEEP``)."""
    from opentelemetry import trace

    made: dict[int, Any] = {}
    for span in sorted(finished, key=lambda s: s.start_time or 0):
        above = made.get(span.parent.span_id) if span.parent is not None else None
        if above is None and span.parent is not None:  # CrewAI's root: under our span it was started in
            above = trace.NonRecordingSpan(span.parent)
        kept = {k: v for k, v in (span.attributes or {}).items() if not isinstance(v, str) or _KEEP.search(k)}
        context = trace.set_span_in_context(above) if above is not None else None
        made[span.context.span_id] = copy = tracer.start_span(
            span.name, context=context, kind=span.kind, attributes=kept, start_time=span.start_time)
        copy.set_status(span.status)
    for span in sorted(finished, key=lambda s: s.end_time or 0):
        made[span.context.span_id].end(end_time=span.end_time)


_CONTENT = re.compile(r"\.(input|output)(_data)?$")


class _HaystackTracer:
    """Haystack's ``Tracer`` interface over an OpenTelemetry tracer: pipeline and component spans
    become children of the current span. Content tags (prompts, replies) follow Haystack's own
    switch, ``HAYSTACK_CONTENT_TRACING_ENABLED`` (off by default)."""

    def __init__(self, tracer: Any) -> None:
        self._tracer = tracer

    @contextlib.contextmanager
    def trace(self, operation_name: str, tags: dict[str, Any] | None = None, parent_span: Any = None) -> Iterator[Any]:
        from opentelemetry import trace

        context = trace.set_span_in_context(parent_span.raw_span()) if parent_span is not None else None
        with self._tracer.start_as_current_span(operation_name, context=context) as raw:
            wrapped = _HaystackSpan(raw)
            if tags:
                wrapped.set_tags(tags)
            yield wrapped

    def current_span(self) -> Any:
        from opentelemetry import trace

        raw = trace.get_current_span()
        return _HaystackSpan(raw) if raw.get_span_context().is_valid else None


class _HaystackSpan:
    def __init__(self, raw: Any) -> None:
        self._raw = raw

    def set_tag(self, key: str, value: Any) -> None:
        if _CONTENT.search(key):  # Haystack tags pipeline inputs/outputs as plain tags: they hold customer text
            self.set_content_tag(key, value)
            return
        self._set(key, value)

    def _set(self, key: str, value: Any) -> None:
        from haystack.tracing import utils

        self._raw.set_attribute(key, utils.coerce_tag_value(value))

    def set_tags(self, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self.set_tag(key, value)

    def set_content_tag(self, key: str, value: Any) -> None:
        from haystack import tracing

        if tracing.tracer.is_content_tracing_enabled:
            self._set(key, value)

    def raw_span(self) -> Any:
        return self._raw

    def get_correlation_data_for_logs(self) -> dict[str, Any]:
        context = self._raw.get_span_context()
        return {"trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x")}
