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
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supportdesk.eval.formats import Case
from supportdesk.eval.metrics import Prediction

if TYPE_CHECKING:
    from supportdesk.models.state import CustomerTicketState

__all__ = [
    "BuiltStage",
    "build_classifier",
    "build_stage",
    "escalate_examples",
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
    confidence = _get(result, "confidence", None)
    if confidence is not None and candidates and candidates[0][1] is not None and candidates[0][1] < confidence - 1e-6:
        confidence = float("-inf")  # the escalation pseudo-entry ranked first: never answerable
    prediction = Prediction(
        predicted_route=route,  # type: ignore[arg-type]
        predicted_faq_id=_get(result, "faq_id", None),
        confidence=None if confidence is None else float(confidence),
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


# ---------------------------------------------------------------------------------------------
# Building a stage from evaluation files (what ``supportdesk eval`` runs)


@dataclass
class BuiltStage:
    """A stage ready to evaluate: its predict function, what it was built with, and its clean-up."""

    predict: Callable[[Case], Prediction]
    settings: dict[str, Any] = field(default_factory=dict)
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for cleanup in reversed(self.cleanups):
            try:
                cleanup()
            except Exception as exc:  # noqa: BLE001 - clean-up must not hide the result
                logger.warning("clean-up failed: %s", exc)
        self.cleanups.clear()


class _CachingEncoder:
    """The MiniLM encoder with the on-disk embedding cache for batches (a dataset's examples)."""

    def __init__(self, cache_dir: Path | None) -> None:
        from supportdesk.rag._minilm import NAME, get_encoder

        self.cache_dir = cache_dir
        self.encoder = get_encoder(NAME)  # the triage classifier's, whatever the FAQ's
        self.model_id = self.encoder.model_id
        self.dimension = self.encoder.dimension

    def encode(self, texts: Any) -> Any:
        from supportdesk.rag.knowledge_base import cached_embeddings

        texts = list(texts)
        if len(texts) < 64 or self.cache_dir is None:
            return self.encoder.encode(texts)
        return cached_embeddings(texts, cache_dir=self.cache_dir, encoder=self.encoder)


def build_classifier(examples: Path | str | None = None, *, policy: str = "embedded",
                     config_dir: Path | None = None, cache_dir: Path | None = None) -> Any:
    """The code classifier the triage stage uses: over labelled examples (``*.examples.jsonl``:
    query, category, optional priority) when given, else the packaged ``triage_examples.yaml``;
    ``knn_*`` settings from the ``triage`` section of ``policy``."""
    from supportdesk.crews.classifier import ExampleClassifier
    from supportdesk.crews.triage.triage_crew import TriagePolicy

    triage_policy = TriagePolicy.load(policy, config_dir)
    knn = {"knn_k": triage_policy.knn_k, "min_similarity": triage_policy.min_similarity}
    if examples is None:
        return ExampleClassifier.from_config(config_dir, policy=knn)
    from supportdesk.eval.formats import EvalDataError, load_examples

    records = [(e.query, e.category, e.priority) for e in load_examples(examples) if e.category]
    if not records:
        raise EvalDataError(f"{examples}: no example has a category")
    return ExampleClassifier.from_records(records, config_dir=config_dir, policy=knn,
                                          encoder=_CachingEncoder(cache_dir))


def escalate_examples(examples: Path | str | None, config_dir: Path | None = None) -> list[str]:
    """The queries of ``examples`` labelled with the fallback category (``unknown``): requests the FAQ
    must not answer, used like ``escalate_examples`` in faq.yaml (an escalation pseudo-entry)."""
    if examples is None:
        return []
    from supportdesk.crews.classifier import load_categories
    from supportdesk.eval.formats import load_examples

    fallback = load_categories(config_dir).fallback
    return [e.query for e in load_examples(examples) if e.category == fallback]


def _load_kb(path: Path | str, escalate: list[str] | None = None) -> Any:
    from supportdesk.eval.formats import load_kb
    from supportdesk.rag.knowledge_base import KnowledgeBase

    entries = load_kb(path)  # validates with line numbers, duplicate ids
    return KnowledgeBase.from_records([e.model_dump() for e in entries], source=str(path),
                                      escalate_examples=escalate or ())


def _rag_pipeline(kb_path: Path | str, settings: Any, model: Any, kind: str,
                  escalate: list[str] | None = None) -> Any:
    """The FAQ stage over ``kb_path`` with the policy of ``kind``; offline: no web search."""
    from supportdesk.rag.pipeline import FAQPipeline, load_rag_policy

    from supportdesk.rag.pipeline import _max_wrong

    policy = load_rag_policy(settings.decision_policy or kind, settings.config_dir)
    return FAQPipeline(_load_kb(kb_path, escalate), model, None, policy, cache_dir=Path(settings.home) / "cache",
                       config_dir=settings.config_dir, max_wrong=_max_wrong(policy, settings),
                       calibration_file=getattr(settings, "resolved_calibration_file", None))


def build_stage(stage: str, *, kb: Path | str | None = None, examples: Path | str | None = None,
                settings: Any = None, classifier_examples: Path | str | None = None) -> BuiltStage:
    """Build ``rag``, ``triage`` or ``flow`` for evaluation, offline.

    * ``rag``: :class:`~supportdesk.rag.pipeline.FAQPipeline` over ``kb`` (no web search), with the
      ``examples`` labelled ``unknown`` as its escalation examples (:func:`escalate_examples`). Under
      the embedded policy code decides, so the model is never loaded;
    * ``triage``: the shipped code classifier the flow uses (:func:`build_classifier` over the packaged
      ``triage_examples.yaml`` and its rules), or a nearest-neighbour over ``classifier_examples`` (a
      dataset's own training rows: a yardstick, not what ships); no LLM call;
    * ``flow``: :func:`supportdesk.handle_query` with services over ``kb`` and the classifier, the
      model of ``settings.llm`` (the embedded one by default), no web search, and tickets, customers and
      run records in a temporary home (caches stay in the real one).
    """
    from supportdesk.settings import load_settings

    settings = settings or load_settings()
    if stage == "triage":
        classifier = build_classifier(classifier_examples, policy=settings.decision_policy or "embedded",
                                      config_dir=settings.config_dir, cache_dir=Path(settings.home) / "cache")
        return BuiltStage(triage_predictor(classifier.suggest),
                          {"classifier": classifier.describe(),
                           "classifier_source": str(classifier_examples) if classifier_examples else "shipped"})

    from supportdesk.llm.factory import LLMFactory

    if kb is None:
        from supportdesk.eval.formats import EvalDataError

        raise EvalDataError(f"--stage {stage} needs --kb KB.jsonl")
    factory = LLMFactory(settings)
    model = factory.chat_model()
    escalate = escalate_examples(examples, settings.config_dir)
    if stage == "rag":
        from supportdesk.rag._minilm import get_encoder

        pipeline = _rag_pipeline(kb, settings, model, factory.kind, escalate)
        front = pipeline.prefilter_encoder
        return BuiltStage(rag_predictor(pipeline), {"threshold": pipeline.threshold,
                                                    "encoder": get_encoder(pipeline.encoder).model_id,
                                                    "prefilter": front and {"encoder": front,
                                                                            "floor": pipeline.prefilter_band[0],
                                                                            "sure": pipeline.prefilter_band[1]},
                                                    "calibration": pipeline.calibration,
                                                    "escalate_examples": len(escalate)})
    if stage != "flow":
        raise ValueError(f"unknown stage {stage!r}")

    from supportdesk import handle_query
    from supportdesk.crews.tools.ticketing import build_ticket_backend
    from supportdesk.crews.triage.triage_crew import TriageCrew
    from supportdesk.flows.services import SupportServices

    policy = settings.decision_policy or factory.kind
    scratch = tempfile.TemporaryDirectory(prefix="supportdesk-eval-")
    # Tickets, customers and run records go to a scratch home: an evaluation files no real tickets.
    run_settings = settings.model_copy(update={"home": Path(scratch.name), "database_url": None,
                                               "jira_url": None, "serper_api_key": None})
    pipeline = _rag_pipeline(kb, settings, model, factory.kind, escalate)
    classifier = build_classifier(classifier_examples, policy=policy, config_dir=settings.config_dir,
                                  cache_dir=Path(settings.home) / "cache")
    services = SupportServices(
        faq=pipeline,
        triage=TriageCrew(model, policy=policy, classifier=classifier,
                          config_dir=settings.config_dir),
        tickets=build_ticket_backend(run_settings),
        chat_model=model,
    )
    predict = flow_predictor(lambda query: handle_query(query, settings=run_settings, services=services))
    return BuiltStage(predict, {"threshold": pipeline.threshold, "llm": settings.llm, "policy": policy,
                                "escalate_examples": len(escalate)},
                      [scratch.cleanup])
