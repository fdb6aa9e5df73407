"""Adapters from supportdesk's stages to the runner's predict functions.

Each stage's output is turned into a :class:`~supportdesk.eval.metrics.Prediction`:

* RAG: ``supportdesk.rag.pipeline.FAQPipeline(...).run(query) -> RAGResult`` with ``route``
  ("answered" | "escalated"), ``faq_id``, ``top_candidates`` [(id, score)], ``completions``.
* triage: anything with ``category`` and ``priority`` (attributes or keys), e.g. a
  :class:`~supportdesk.models.Classification`, optionally with ``completions``.
* full flow: a :class:`~supportdesk.models.CustomerTicketState`.

Stage modules are imported only when a builder needs them, so this module imports without them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from supportdesk.eval.formats import Case
from supportdesk.eval.metrics import Prediction

if TYPE_CHECKING:
    from supportdesk.models.state import CustomerTicketState

__all__ = [
    "flow_predictor",
    "load_rag_predictor",
    "prediction_from_rag",
    "prediction_from_state",
    "prediction_from_triage",
    "rag_predictor",
    "triage_predictor",
]

logger = logging.getLogger(__name__)

RAG_ROUTES = {"answered": "answer", "answer": "answer", "escalated": "escalate", "escalate": "escalate"}
TOP_K = 5


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _usage(obj: Any) -> dict[str, int]:
    """llm_calls and token counts from ``completions`` (a list of Completion) or from explicit fields."""
    completions = list(_get(obj, "completions", None) or [])
    if completions:
        return {
            "llm_calls": len(completions),
            "prompt_tokens": sum(int(_get(c, "prompt_tokens", 0) or 0) for c in completions),
            "completion_tokens": sum(int(_get(c, "completion_tokens", 0) or 0) for c in completions),
        }
    return {name: int(_get(obj, name, 0) or 0) for name in ("llm_calls", "prompt_tokens", "completion_tokens")}


def _candidate(item: Any) -> tuple[str, float | None]:
    """(id, score) from a tuple/list, a mapping or an object with ``id``/``faq_id`` and ``score``."""
    if isinstance(item, (tuple, list)):
        return str(item[0]), (float(item[1]) if len(item) > 1 and item[1] is not None else None)
    ident = _get(item, "faq_id", None) or _get(item, "id", None)
    score = _get(item, "score", None)
    return str(ident), (float(score) if score is not None else None)


def prediction_from_rag(result: Any) -> Prediction:
    """Map a ``RAGResult`` onto a prediction: route, answered entry, the first five candidate ids."""
    raw_route = str(_get(result, "route", "") or "")
    route = RAG_ROUTES.get(raw_route)
    candidates = [_candidate(item) for item in (_get(result, "top_candidates", None) or [])]
    top: list[str] = []
    for ident, _score in candidates:
        if ident not in top:
            top.append(ident)
    prediction = Prediction(
        predicted_route=route,  # type: ignore[arg-type]
        predicted_faq_id=_get(result, "faq_id", None),
        top_faq_ids=top[:TOP_K],
        detail={"scores": [[ident, score] for ident, score in candidates[:TOP_K]]},
        **_usage(result),
    )
    if route is None:
        prediction.error, prediction.error_message = "UnknownRoute", f"RAG route {raw_route!r}"
    return prediction


def prediction_from_triage(result: Any) -> Prediction:
    """Map a triage result (category, priority) onto a prediction."""
    category = _get(result, "category", None)
    priority = _get(result, "priority", None)
    rationale = _get(result, "rationale", None)
    return Prediction(
        predicted_category=str(category) if category is not None else None,
        predicted_priority=str(priority) if priority is not None else None,
        detail={"rationale": rationale} if rationale else {},
        **_usage(result),
    )


def prediction_from_state(state: CustomerTicketState) -> Prediction:
    """Map a finished flow run onto a prediction.

    faq_answered -> route ``answer`` with ``faq_id`` (category and priority left unset: the flow does
    not classify what it answers); escalated or ticket_created -> ``escalate`` with the classified
    category and priority; failed or unfinished -> no route, error ``flow_failed``/``not_terminal``.
    ``sources`` that are not URLs are taken as the ranked FAQ ids.
    """
    from supportdesk.models.state import TicketStatus

    status = TicketStatus(state.status)
    faq_sources = [s for s in state.sources if "://" not in s][:TOP_K]
    base: dict[str, Any] = {
        "llm_calls": state.llm_calls,
        "prompt_tokens": state.prompt_tokens,
        "completion_tokens": state.completion_tokens,
        "detail": {"status": status.value, "route_trace": list(state.route_trace), "ticket_id": state.ticket_id},
    }
    if status is TicketStatus.FAQ_ANSWERED:
        top = faq_sources or ([state.faq_id] if state.faq_id else [])
        return Prediction(predicted_route="answer", predicted_faq_id=state.faq_id, top_faq_ids=top, **base)
    if status in (TicketStatus.ESCALATED, TicketStatus.TICKET_CREATED):
        return Prediction(predicted_route="escalate", predicted_category=state.category,
                          predicted_priority=state.priority, top_faq_ids=faq_sources, **base)
    reason = "flow_failed" if status is TicketStatus.FAILED else "not_terminal"
    return Prediction(error=reason, error_message=state.failure_reason or status.value, **base)


def rag_predictor(pipeline: Any) -> Callable[[Case], Prediction]:
    """A predict function over anything with ``run(query) -> RAGResult`` (e.g. an ``FAQPipeline``)."""
    return lambda case: prediction_from_rag(pipeline.run(case.query))


def load_rag_predictor(**pipeline_kwargs: Any) -> Callable[[Case], Prediction]:
    """Build ``supportdesk.rag.pipeline.FAQPipeline(**pipeline_kwargs)`` and wrap it (imported lazily)."""
    from supportdesk.rag.pipeline import FAQPipeline  # type: ignore[import-not-found]

    return rag_predictor(FAQPipeline(**pipeline_kwargs))


def triage_predictor(classify: Callable[[str], Any]) -> Callable[[Case], Prediction]:
    """A predict function over a triage callable ``query -> result with category and priority``."""
    return lambda case: prediction_from_triage(classify(case.query))


def flow_predictor(run: Callable[[str], CustomerTicketState]) -> Callable[[Case], Prediction]:
    """A predict function over a callable that runs the whole flow on a query and returns its state."""
    return lambda case: prediction_from_state(run(case.query))
