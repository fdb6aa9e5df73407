"""The FAQ stage: agentic RAG over the FAQ with a web-search fallback, built from Haystack pipelines.

Three ``haystack.Pipeline`` objects, joined by ConditionalRouters whose routes are data
(config/routes.yaml):

1. ``retrieval``: MiniLM text embedder -> InMemoryEmbeddingRetriever (+ InMemoryBM25Retriever when
   BM25 is fused) -> :class:`EntryScorer` -> :class:`AnswerGate` -> router (answered | judge | web);
2. ``judge`` (LLM decides, hosted policy): ChatPromptBuilder -> ChatModelGenerator -> parser (FAQAnswer)
   -> router (answered | web);
3. ``web``: ChatPromptBuilder (results marked UNTRUSTED) -> ChatModelGenerator -> parser (WebAnswer)
   -> router (answered | escalate). :class:`SerperWebSearch` runs first, on its own: without a key,
   or when the search finds nothing, the query escalates with that reason and the LLM is not called.

Under the embedded policy a confident FAQ match is answered with the entry's text verbatim, with no
LLM call. Failures fail closed: an LLM reply that never validates (retries included), a provider
error or a web-search error escalates the query with the reason; it is never answered. Usage::

    from supportdesk.rag import build_faq_pipeline
    rag = build_faq_pipeline(settings, model, kind="embedded")   # what the flow calls

    from supportdesk.llm import ScriptedModel
    from supportdesk.rag import FAQPipeline, KnowledgeBase, load_rag_policy

    rag = FAQPipeline(KnowledgeBase.from_config(), model=ScriptedModel([]), web_search=None,
                      policy=load_rag_policy("embedded"))
    result = rag.run("How do I reset my password?")
    result.route, result.faq_id, result.sources     # ('answered', 'reset-password', ['reset-password'])
    rag.threshold                                   # the calibrated answer threshold
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from haystack import Document, Pipeline
from haystack.components.builders import ChatPromptBuilder
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever
from haystack.components.routers import ConditionalRouter
from haystack.dataclasses import ChatMessage as HaystackChatMessage
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack.utils.type_serialization import deserialize_type

from supportdesk._config import load_yaml
from supportdesk.errors import ConfigError, LLMError, WebSearchError
from supportdesk.llm._types import ChatModel, Completion
from supportdesk.llm.haystack_generator import ChatModelGenerator
from supportdesk.llm.structured import response_schema
from supportdesk.models.faq import RAGResult, TokenUsage
from supportdesk.models.responses import FAQAnswer, WebAnswer
from supportdesk.rag.components import ESCALATE_ID, AnswerGate, EntryScorer, StructuredParser, choice_overrides
from supportdesk.rag.embedder import MiniLMTextEmbedder
from supportdesk.rag.knowledge_base import KnowledgeBase, atomic_save_npy, atomic_write_text, cached_embeddings
from supportdesk.rag.scoring import EntryIndex, ScoringParams, calibrate, train_linear_head
from supportdesk.rag.serper import DISABLED_REASON, SerperWebSearch

if TYPE_CHECKING:
    from supportdesk.settings import Settings

__all__ = ["DEFAULT_POLICY", "FAQPipeline", "build_faq_pipeline", "load_rag_policy"]

logger = logging.getLogger(__name__)

DEFAULT_POLICY: dict[str, Any] = {
    "answer_decided_by": "code",
    "threshold": None,
    "judge_margin": 0.1,
    "judge_top_n": 3,
    "head_weight": 0.1,
    "bm25_weight": 0.0,
    "calibration_negative_weight": 0.3,
    "calibration_target_tnr": None,
    "top_k": 5,
    "web_search": True,
    "web_top_k": 5,
    "web_answer_decided_by": "llm",
    "web_min_similarity": 0.55,
    "output_retries": 1,
    "max_tokens": {"faq_judge": 200, "web_answer": 200},
}


def load_rag_policy(name: str = "embedded", override_dir: Path | None = None) -> dict[str, Any]:
    """The ``rag:`` section of policy ``name`` in config/policies.yaml, over :data:`DEFAULT_POLICY`."""
    data = load_yaml("policies.yaml", override_dir)
    if not isinstance(data, dict) or name not in data:
        raise ConfigError(f"policies.yaml has no policy {name!r}")
    section = (data[name] or {}).get("rag") or {}
    if not isinstance(section, dict):
        raise ConfigError(f"policies.yaml: {name}.rag must be a mapping")
    unknown = set(section) - set(DEFAULT_POLICY)
    if unknown:
        raise ConfigError(f"policies.yaml: {name}.rag has unknown keys {sorted(unknown)}")
    return {**DEFAULT_POLICY, **section}


def _routes(name: str, override_dir: Path | None) -> list[dict[str, Any]]:
    data = load_yaml("routes.yaml", override_dir)
    routes = data.get(name) if isinstance(data, dict) else None
    if not isinstance(routes, list) or not routes:
        raise ConfigError(f"routes.yaml: missing route list {name!r}")
    out = []
    for i, route in enumerate(routes):
        try:
            out.append({**route, "output_type": deserialize_type(str(route["output_type"]))})
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"routes.yaml: {name}[{i}] needs condition, output, output_name, output_type") from exc
    return out


def _prompt(name: str, override_dir: Path | None) -> list[HaystackChatMessage]:
    data = load_yaml("prompts_rag.yaml", override_dir)
    spec = data.get(name) if isinstance(data, dict) else None
    if not isinstance(spec, dict) or "user" not in spec:
        raise ConfigError(f"prompts_rag.yaml: missing prompt {name!r} (system, user)")
    messages = [HaystackChatMessage.from_system(spec["system"])] if spec.get("system") else []
    return [*messages, HaystackChatMessage.from_user(spec["user"])]


def _usage(completions: list[Completion], purpose: str) -> list[TokenUsage]:
    return [TokenUsage(model=c.model, prompt_tokens=c.prompt_tokens, completion_tokens=c.completion_tokens,
                       purpose=purpose) for c in completions]


class FAQPipeline:
    """Answer a customer query from the FAQ, else from the web, else escalate.

    :param kb: the knowledge base.
    :param model: the chat model (used only for judging and web answers).
    :param web_search: the web-search component; ``None`` disables the fallback.
    :param policy: the ``rag`` section of a decision policy (see :func:`load_rag_policy`).
    :param threshold: an explicit answer threshold; default: the policy's, else calibrated on the KB.
    :param cache_dir: where embeddings and calibration are cached (e.g. ``settings.home / "cache"``).
    :param config_dir: override folder for routes.yaml and prompts_rag.yaml.
    :param company: the company name the prompts use (default: the KB's, faq.yaml ``company``).
    """

    def __init__(
        self,
        kb: KnowledgeBase,
        model: ChatModel,
        web_search: SerperWebSearch | None = None,
        policy: dict[str, Any] | None = None,
        *,
        threshold: float | None = None,
        cache_dir: Path | None = None,
        config_dir: Path | None = None,
        company: str | None = None,
    ) -> None:
        self.kb = kb
        self.model = model
        self.web_search = web_search
        self.policy = {**DEFAULT_POLICY, **(policy or {})}
        self.company = company or kb.company
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.params = ScoringParams(head_weight=float(self.policy["head_weight"]))
        started = time.perf_counter()
        self._build_index()
        explicit = threshold if threshold is not None else self.policy.get("threshold")
        self.calibration: dict[str, Any] | None = None
        self.threshold: float = float(explicit) if explicit is not None else self._calibrated_threshold()
        self.retrieval = self._retrieval_pipeline(config_dir)
        self.judge = self._llm_pipeline("faq_judge", FAQAnswer, "judge", config_dir, with_search=False)
        self.web = (
            self._llm_pipeline("web_answer", WebAnswer, "web", config_dir, with_search=True)
            if web_search is not None and self.policy["web_search"] else None
        )
        self.build_s = time.perf_counter() - started
        logger.info("FAQ pipeline ready: %d entries, threshold %.4f, %.2fs", len(kb), self.threshold,
                    time.perf_counter() - started)

    # -- construction --------------------------------------------------------------------------
    def _cache_key(self) -> str:
        from supportdesk.rag._minilm import get_encoder

        blob = json.dumps([get_encoder().model_id, self.kb.fingerprint(), self.params.__dict__,
                           self.policy["calibration_negative_weight"], self.policy["calibration_target_tnr"]],
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:24]

    def _build_index(self) -> None:
        texts, owners = self.kb.texts()
        self.entry_ids = self.kb.ids
        escalate = self.kb.escalate_examples
        if escalate:
            texts = [*texts, *escalate]
            owners = np.concatenate([owners, np.full(len(escalate), len(self.entry_ids), dtype=np.int64)])
            self.entry_ids = [*self.entry_ids, ESCALATE_ID]
        self._texts, self._owners = texts, owners
        self._vectors = cached_embeddings(texts, cache_dir=self.cache_dir)
        head = None
        head_path = self.cache_dir / f"rag-head-{self._cache_key()}.npy" if self.cache_dir else None
        if head_path is not None and head_path.exists():
            try:
                packed = np.load(head_path)
                if packed.shape == (self._vectors.shape[1] + 1, len(self.entry_ids)):
                    head = (packed[:-1], packed[-1])
            except (OSError, ValueError) as exc:
                logger.warning("ignoring unreadable head cache %s: %s", head_path, exc)
        if head is None and self.params.use_head:
            head = train_linear_head(self._vectors, owners, len(self.entry_ids), self.params)
            if head_path is not None:
                try:
                    atomic_save_npy(head_path, np.vstack([head[0], head[1][None, :]]))
                except OSError as exc:
                    logger.warning("could not write head cache %s: %s", head_path, exc)
        self.index = EntryIndex.build(self._vectors, owners, len(self.entry_ids), self.params, head=head)

    def _calibrated_threshold(self) -> float:
        path = self.cache_dir / f"rag-calibration-{self._cache_key()}.json" if self.cache_dir else None
        if path is not None and path.exists():
            try:
                self.calibration = json.loads(path.read_text(encoding="utf-8"))
                return float(self.calibration["threshold"])
            except (OSError, ValueError, KeyError) as exc:
                logger.warning("ignoring calibration cache %s: %s", path, exc)
        # Calibrate on the real entries only: escalation examples are not an answerable entry.
        real = self._owners < len(self.kb)
        target = self.policy["calibration_target_tnr"]
        report = calibrate(self._vectors[real], self._owners[real], len(self.kb), params=self.params,
                           negative_weight=float(self.policy["calibration_negative_weight"]),
                           target_tnr=None if target is None else float(target))
        self.calibration = dict(report.__dict__)
        if path is not None:
            try:  # temp file + os.replace: concurrent writers never leave a torn file
                atomic_write_text(path, json.dumps(self.calibration))
            except OSError as exc:
                logger.warning("could not write calibration cache %s: %s", path, exc)
        return report.threshold

    def _retrieval_pipeline(self, config_dir: Path | None) -> Pipeline:
        store = InMemoryDocumentStore(embedding_similarity_function="cosine")
        store.write_documents([
            Document(content=text, embedding=vec.tolist(), meta={"entry_id": self.entry_ids[int(owner)]})
            for text, vec, owner in zip(self._texts, self._vectors, self._owners, strict=True)
        ])
        top_k = int(self.policy["top_k"])
        pipe = Pipeline()
        pipe.add_component("embedder", MiniLMTextEmbedder())
        pipe.add_component("embedding_retriever", InMemoryEmbeddingRetriever(store, top_k=top_k))
        pipe.add_component("scorer", EntryScorer(self.index, self.entry_ids, top_k=max(top_k, 5),
                                                 bm25_weight=float(self.policy["bm25_weight"])))
        pipe.add_component("gate", AnswerGate(self.kb, self.threshold, str(self.policy["answer_decided_by"]),
                                              float(self.policy["judge_margin"]), int(self.policy["judge_top_n"])))
        pipe.add_component("router", ConditionalRouter(_routes("faq", config_dir)))
        pipe.connect("embedder.embedding", "embedding_retriever.query_embedding")
        pipe.connect("embedder.embedding", "scorer.query_embedding")
        if float(self.policy["bm25_weight"]) > 0:
            pipe.add_component("bm25_retriever", InMemoryBM25Retriever(store, top_k=4 * top_k))
            pipe.connect("bm25_retriever.documents", "scorer.bm25_documents")
        pipe.connect("scorer.candidates", "gate.candidates")
        pipe.connect("gate.decision", "router.decision")
        return pipe

    def _llm_pipeline(self, prompt: str, response_model: type, routes: str, config_dir: Path | None,
                      *, with_search: bool) -> Pipeline:
        # with_search: the prompt and the parser take the search results (run before, see _web).
        retries = int(self.policy["output_retries"])
        max_tokens = int(self.policy["max_tokens"].get(prompt, 256))
        pipe = Pipeline()
        pipe.add_component("prompt", ChatPromptBuilder(template=_prompt(prompt, config_dir), required_variables="*"))
        pipe.add_component("generator", ChatModelGenerator(self.model, max_tokens=max_tokens))
        pipe.add_component("parser", StructuredParser(response_model, self.model, retries=retries, max_tokens=max_tokens))
        pipe.add_component("router", ConditionalRouter(_routes(routes, config_dir)))
        pipe.connect("prompt.prompt", "generator.messages")
        pipe.connect("prompt.prompt", "parser.messages")
        pipe.connect("generator.replies", "parser.replies")
        pipe.connect("generator.completions", "parser.completions")
        pipe.connect("parser.decision", "router.decision")
        return pipe

    # -- running -------------------------------------------------------------------------------
    def candidates(self, query: str, top_k: int = 5) -> list[tuple[str, float]]:
        """The best FAQ entries for ``query`` and their fused scores (no gate, no LLM)."""
        vector = cached_embeddings([query])
        scores = self.index.score(vector)[0]
        order = [i for i in np.argsort(-scores) if self.entry_ids[i] != ESCALATE_ID][:top_k]
        return [(self.entry_ids[i], float(scores[i])) for i in order]

    def run(self, query: str) -> RAGResult:
        """Decide one query: answered (FAQ or web) or escalated. LLM and search failures escalate."""
        started = time.perf_counter()
        result = self._run(query)
        result.latency_s = time.perf_counter() - started
        logger.info("rag route=%s faq_id=%s conf=%s reason=%s", result.route, result.faq_id,
                    None if result.confidence is None else round(result.confidence, 4), result.reason)
        return result

    def _run(self, query: str) -> RAGResult:
        data: dict[str, Any] = {"embedder": {"text": query}}
        if "bm25_retriever" in self.retrieval.graph.nodes:
            data["bm25_retriever"] = {"query": query}
        out = self.retrieval.run(data, include_outputs_from={"scorer"})
        candidates = out["scorer"]["candidates"]
        top = [(c["entry_id"], round(c["score"], 6)) for c in candidates if c["entry_id"] != ESCALATE_ID]
        confidence = float(candidates[0]["score"]) if candidates else None
        base = {"confidence": confidence, "threshold": self.threshold, "top_candidates": top}
        routed = out["router"]
        usage: list[TokenUsage] = []
        if "answered" in routed:
            decision = routed["answered"]
            return RAGResult(route="answered", answer=decision["answer"], faq_id=decision["entry_id"],
                             sources=[decision["entry_id"]], reason=decision["reason"], **base)
        decision = routed.get("judge") or routed.get("web") or {}
        reason = decision.get("reason", "no FAQ answer")
        if "judge" in routed:
            route, judged, judge_usage, reason = self._judge(query, decision)
            usage += judge_usage
            if route == "answered":
                entry = self.kb.get(judged["entry_id"])
                answer = judged.get("answer") or entry.answer
                return RAGResult(route="answered", answer=answer, faq_id=entry.id, sources=[entry.id],
                                 reason=reason, completions=usage, **base)
            if route == "escalate":
                return RAGResult(route="escalated", reason=reason, completions=usage, **base)
        return self._web(query, reason, usage, base)

    def _judge(self, query: str, decision: dict[str, Any]) -> tuple[str, dict[str, Any], list[TokenUsage], str]:
        """(route, decision, usage, reason): route ``answered``, ``web`` (no FAQ answer) or ``escalate``."""
        entries = decision["entries"]
        allowed = [e["id"] for e in entries]
        out, failure = _run_llm_pipeline(self.judge, {
            "prompt": {"query": query, "entries": entries, "company": self.company},
            "generator": {"json_schema": response_schema(FAQAnswer, choice_overrides(FAQAnswer, allowed_ids=allowed))},
            "parser": {"allowed_ids": allowed},
        })
        if failure is not None:
            logger.warning("FAQ judge failed: %s", failure)
            return "escalate", {}, [], f"FAQ judge failed: {failure}"
        usage = _usage(out["parser"]["completions"], "faq_judge")
        routed = out["router"]
        route = next(iter(routed))
        judged = routed[route]
        return route, judged, usage, str(judged.get("reason") or "the model found no FAQ answer")

    def _web(self, query: str, reason: str, usage: list[TokenUsage], base: dict[str, Any]) -> RAGResult:
        if self.web is None or self.web_search is None:
            return RAGResult(route="escalated", reason=f"{reason}; web search not configured", completions=usage, **base)
        if not self.web_search.enabled:
            self.web_search.run(query=query)  # logs the reason once
            return RAGResult(route="escalated", reason=f"{reason}; web search skipped: {DISABLED_REASON}",
                             completions=usage, **base)
        try:
            documents = self.web_search.run(query=query)["documents"]
        except WebSearchError as exc:
            logger.warning("web search failed: %s", exc)
            return RAGResult(route="escalated", web_searched=True, completions=usage,
                             reason=f"{reason}; web search failed: {exc}", **base)
        if not documents:
            # Nothing to ground an answer on: the model is not asked.
            return RAGResult(route="escalated", web_searched=True, completions=usage,
                             reason=f"{reason}; the web search found no results", **base)
        if self.policy["web_answer_decided_by"] == "code":
            return self._web_by_similarity(query, documents, reason, usage, base)
        out, failure = _run_llm_pipeline(self.web, {
            "prompt": {"query": query, "company": self.company, "documents": documents},
            "generator": {"json_schema": response_schema(WebAnswer, choice_overrides(WebAnswer, documents=documents))},
            "parser": {"documents": documents},
        })
        if failure is not None:
            logger.warning("web answer failed: %s", failure)
            return RAGResult(route="escalated", web_searched=True, completions=usage,
                             reason=f"{reason}; web answer failed: {failure}", **base)
        usage = usage + _usage(out.get("parser", {}).get("completions", []), "web_answer")
        routed = out["router"]
        if "answered" in routed:
            decision = routed["answered"]
            return RAGResult(route="answered", answer=decision["answer"], sources=[decision["url"]],
                             web_searched=True, reason=f"{reason}; {decision['reason']}", completions=usage, **base)
        decision = routed.get("escalate", {})
        return RAGResult(route="escalated", web_searched=True, completions=usage,
                         reason=f"{reason}; {decision.get('reason', 'no web answer')}", **base)


    def _web_by_similarity(
        self, query: str, documents: list[Any], reason: str, usage: list[TokenUsage], base: dict[str, Any]
    ) -> RAGResult:
        """Code picks the web result: the one whose title and snippet are most similar to the query,
        if similar enough. Its snippet is quoted with its URL (untrusted text, never followed)."""
        from supportdesk.rag._minilm import get_encoder

        texts = [f"{d.meta.get('title', '')}. {d.content}" for d in documents]
        vectors = get_encoder().encode([query, *texts])
        similarities = vectors[1:] @ vectors[0]
        best = int(similarities.argmax())
        if float(similarities[best]) < float(self.policy["web_min_similarity"]):
            return RAGResult(route="escalated", web_searched=True, completions=usage, **base,
                             reason=f"{reason}; no web result is close enough ({float(similarities[best]):.2f})")
        doc = documents[best]
        title = doc.meta.get("title") or doc.meta.get("url", "")
        return RAGResult(route="answered", answer=f"From {title}: {doc.content}", sources=[doc.meta["url"]],
                         web_searched=True, completions=usage, **base,
                         reason=f"{reason}; web result {best + 1} matches ({float(similarities[best]):.2f})")


def _run_llm_pipeline(pipeline: Pipeline, data: dict[str, Any]) -> tuple[dict[str, Any], LLMError | None]:
    """Run an LLM pipeline, keeping the parser's outputs. A model failure (Haystack wraps it in a
    PipelineRuntimeError) comes back as the LLMError, for the caller to escalate; anything else raises."""
    try:
        return pipeline.run(data, include_outputs_from={"parser"}), None
    except Exception as exc:
        root = _root(exc)
        if not isinstance(root, LLMError):
            raise
        return {}, root


def _root(exc: BaseException) -> BaseException:
    seen = exc
    while seen.__cause__ is not None:
        seen = seen.__cause__
    return seen


def build_faq_pipeline(
    settings: Settings,
    model: ChatModel,
    *,
    kind: Literal["embedded", "hosted"],
    kb: KnowledgeBase | None = None,
    web_search: SerperWebSearch | None = None,
) -> FAQPipeline:
    """The FAQ stage as the flow uses it, wired from settings.

    * the KB: ``kb``, else config/faq.yaml (``settings.config_dir`` overrides the packaged file);
    * the policy: the ``rag`` section of ``settings.decision_policy or kind`` in policies.yaml;
    * the web search: ``web_search``, else :class:`SerperWebSearch` from ``settings.serper_*``
      (without a key the fallback is skipped with a logged reason and no socket is opened);
    * caches (embeddings, head, calibration) under ``settings.home / "cache"``.
    """
    config_dir = settings.config_dir
    policy = load_rag_policy(settings.decision_policy or kind, config_dir)
    if kb is None:
        kb = KnowledgeBase.from_config(config_dir)
    if web_search is None:
        web_search = SerperWebSearch(
            api_key=settings.serper_api_key,
            url=settings.serper_url,
            timeout_s=settings.serper_timeout_s,
            top_k=int(policy["web_top_k"]),
        )
    if not web_search.enabled and policy["web_search"]:
        logger.info("FAQ web fallback off: %s", DISABLED_REASON)
    return FAQPipeline(kb, model, web_search, policy, cache_dir=Path(settings.home) / "cache", config_dir=config_dir)
