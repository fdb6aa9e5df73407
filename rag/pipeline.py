"""The FAQ stage: agentic RAG over the FAQ with a web-search fallback, built from Haystack pipelines.

Three ``haystack.Pipeline`` objects, joined by ConditionalRouters whose routes are data
(config/routes.yaml):

1. ``retrieval``: MiniLM text embedder -> InMemoryEmbeddingRetriever over the FAQ's texts (a
   shortlist of ``retrieval_top_k`` documents; + InMemoryBM25Retriever when BM25 is fused) ->
   :class:`EntryScorer` (re-ranks the shortlisted entries with the fused score) -> :class:`AnswerGate`
   -> router (answered | judge | web);
2. ``judge`` (LLM decides, hosted policy): ChatPromptBuilder -> ChatModelGenerator -> parser (FAQAnswer)
   -> router (answered | web);
3. ``web``: ChatPromptBuilder (results marked UNTRUSTED) -> ChatModelGenerator -> parser (WebAnswer)
   -> router (answered | escalate). :class:`SerperWebSearch` runs first, on its own: without a key,
   or when the search finds nothing, the query escalates with that reason and the LLM is not called.

Every pipeline round-trips through ``Pipeline.dumps()`` / ``Pipeline.loads()`` (collaborators: the
KB, its index and store, the chat model, are rebuilt, never serialised; see
:mod:`supportdesk._collaborators`). ``supportdesk pipelines dump`` writes them; a file
``<config_dir>/pipelines/<retrieval|judge|web>.yaml`` replaces the pipeline built here.

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
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import numpy as np
from haystack import Pipeline
from haystack.components.builders import ChatPromptBuilder
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever
from haystack.components.routers import ConditionalRouter
from haystack.dataclasses import ChatMessage as HaystackChatMessage
from haystack.utils.type_serialization import deserialize_type
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from supportdesk._collaborators import ALLOWED_MODULES, bind
from supportdesk._config import load_yaml
from supportdesk._guardrails import injection_markers, request_text, screened_knowledge_base
from supportdesk.errors import ConfigError, LLMError, WebSearchError
from supportdesk.llm._types import ChatModel, Completion
from supportdesk.llm.haystack_generator import ChatModelGenerator
from supportdesk.llm.structured import response_schema
from supportdesk.models.faq import RAGResult, TokenUsage
from supportdesk.models.responses import FAQAnswer, WebAnswer
from supportdesk.rag._minilm import NAME, MiniLMEncoder, encoder_name, get_encoder
from supportdesk.rag.components import ESCALATE_ID, AnswerGate, StructuredParser, choice_overrides
from supportdesk.rag.document_store import FAQDocumentStore
from supportdesk.rag.embedder import MiniLMTextEmbedder
from supportdesk.rag.entry_scorer import EntryScorer
from supportdesk.rag.knowledge_base import KnowledgeBase, atomic_save_npy, atomic_write_text, cached_embeddings
from supportdesk.rag.prefilter import PrefilterGate
from supportdesk.rag.scoring import (
    DEFAULT_MAX_WRONG,
    EntryIndex,
    ScoringParams,
    calibrate,
    prefilter_band,
    train_linear_head,
)
from supportdesk.rag.serper import SerperWebSearch
from supportdesk.rag.web_guard import WebAnswerGuard

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
    "max_wrong_answer_rate": None,
    "oos_share": 0.5,
    "calibration_proxy_topics": 10,
    "calibration_folds": 5,
    "prefilter_encoder": None,
    "prefilter_sure_wrong": 0.02,
    "prefilter_miss": 0.01,
    "top_k": 5,
    "retrieval_top_k": 50,
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
    :param max_wrong: the ceiling on the estimated wrong-answer rate the KB calibration keeps
        (default: the policy's ``max_wrong_answer_rate``, else 0.10; ``settings.max_wrong_answer_rate``
        in :func:`build_faq_pipeline`).
    :param calibration_file: an operator calibration (``supportdesk calibrate``); used when it was fitted
        on this KB, else ignored with a warning. Precedence: ``threshold``, the policy's ``threshold``,
        this file, the KB's own risk-controlled calibration.
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
        max_wrong: float | None = None,
        calibration_file: Path | None = None,
        encoder: str | None = None,
    ) -> None:
        self.kb = kb
        self.model = model
        self.web_search = web_search
        self.policy = {**DEFAULT_POLICY, **(policy or {})}
        self.company = company or kb.company
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.config_dir = config_dir
        self.params = ScoringParams(head_weight=float(self.policy["head_weight"]))
        if max_wrong is None:
            configured = self.policy.get("max_wrong_answer_rate")
            max_wrong = DEFAULT_MAX_WRONG if configured is None else float(configured)
        self.max_wrong = float(max_wrong)
        self.encoder = encoder_name(encoder)
        self._encoder_arg = encoder
        started = time.perf_counter()
        self._texts, self._owners, self.entry_ids = self._kb_texts()
        self._explicit = threshold if threshold is not None else self.policy.get("threshold")
        self._calibration_file = calibration_file
        self._lock = threading.Lock()
        self.judge = self._load_or_build("judge", lambda: self._judge_pipeline(config_dir))
        self.web = (
            self._load_or_build("web", lambda: self._web_pipeline(config_dir))
            if web_search is not None and self.policy["web_search"] else None
        )
        front = self.policy["prefilter_encoder"]
        self.prefilter_encoder: str | None = (
            encoder_name(front) if front and encoder_name(front) != self.encoder and self._explicit is None
            and self._operator_allows_prefilter() else None)
        self.prefilter: Pipeline | None = None
        if self.prefilter_encoder is not None:
            self.prefilter_index, self.prefilter_band = self._prefilter_band(self.prefilter_encoder)
            self.prefilter = self._load_or_build("prefilter", lambda: self._prefilter_pipeline(config_dir))
        if self.prefilter is None or self._override("retrieval") is not None:
            self._build_gate()  # an edited retrieval YAML is checked at start-up, not at the first query
        self.build_s = time.perf_counter() - started
        logger.info("FAQ pipeline ready: %d entries, encoder %s%s, %.2fs", len(kb), self.encoder,
                    f" behind the {self.prefilter_encoder} prefilter (loads on the first undecided query)"
                    if self.prefilter else f", threshold {self.threshold:.4f}", self.build_s)

    #: Built with the deciding encoder's gate: on first use when a prefilter stands in front (its
    #: weights then load only for a query the prefilter cannot decide), else at construction.
    _GATE = frozenset({"index", "store", "threshold", "calibration", "retrieval", "_vectors"})

    def __getattr__(self, name: str) -> Any:
        # Another thread waits for the build; the building thread itself reads only what it has set.
        if name in FAQPipeline._GATE and "_lock" in self.__dict__ and self.__dict__.get("_builder") != threading.get_ident():
            self._build_gate()
            return self.__dict__[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _build_gate(self) -> None:
        """The deciding encoder's index, threshold, document store and retrieval pipeline (once)."""
        with self._lock:
            if "retrieval" in self.__dict__:
                return
            self._builder = threading.get_ident()
            try:
                started = time.perf_counter()
                self._vectors, self.index = self._indexed(get_encoder(self.encoder))
                self.calibration: dict[str, Any] | None = None
                operator = None if self._explicit is not None else self._operator_calibration(self._calibration_file)
                if self._explicit is not None:
                    self.threshold: float = float(self._explicit)
                elif operator is not None:
                    self.calibration, self.threshold = operator, float(operator["threshold"])
                else:
                    self.threshold = self._calibrated_threshold()
                self.store = FAQDocumentStore.from_texts(self._texts, self._vectors,
                                                         [self.entry_ids[int(o)] for o in self._owners])
                retrieval = self._load_or_build("retrieval", lambda: self._retrieval_pipeline(self.config_dir))
                edited = float(retrieval.get_component("gate").threshold)  # an edited YAML may set it
                if edited != self.threshold and self.prefilter is not None:
                    logger.info("FAQ prefilter off: the retrieval pipeline's gate sets its own threshold")
                    self.prefilter = self.prefilter_encoder = None
                self.threshold = edited
                self.retrieval = retrieval
                logger.info("FAQ answer gate ready: %s, threshold %.4f, %.2fs", self.encoder, self.threshold,
                            time.perf_counter() - started)
            finally:
                self._builder = None

    # -- construction --------------------------------------------------------------------------
    def _cache_key(self, encoder: MiniLMEncoder | None = None, *extra: Any) -> str:
        model_id = (encoder or get_encoder(self.encoder)).model_id
        blob = json.dumps([model_id, self.kb.fingerprint(), self.params.__dict__,
                           self.policy["calibration_negative_weight"], self.policy["calibration_target_tnr"],
                           "risk-v4", self.max_wrong, self.policy["oos_share"], self.policy["calibration_folds"],
                           self.policy["calibration_proxy_topics"],
                           *extra], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:24]

    def _kb_texts(self) -> tuple[list[str], np.ndarray, list[str]]:
        """The texts every index holds, the entry of each, and the entry ids (the escalation examples
        as one more entry, ``ESCALATE_ID``)."""
        texts, owners = self.kb.texts()
        entry_ids = self.kb.ids
        escalate = self.kb.escalate_examples
        if escalate:
            texts = [*texts, *escalate]
            owners = np.concatenate([owners, np.full(len(escalate), len(entry_ids), dtype=np.int64)])
            entry_ids = [*entry_ids, ESCALATE_ID]
        return texts, owners, entry_ids

    def _indexed(self, encoder: MiniLMEncoder) -> tuple[np.ndarray, EntryIndex]:
        """The KB's vectors under ``encoder`` and their entry index (embeddings and head cached)."""
        vectors = cached_embeddings(self._texts, cache_dir=self.cache_dir, encoder=encoder)
        head = None
        head_path = self.cache_dir / f"rag-head-{self._cache_key(encoder)}.npy" if self.cache_dir else None
        if head_path is not None and head_path.exists():
            try:
                packed = np.load(head_path)
                if packed.shape == (vectors.shape[1] + 1, len(self.entry_ids)):
                    head = (packed[:-1], packed[-1])
            except (OSError, ValueError) as exc:
                logger.warning("ignoring unreadable head cache %s: %s", head_path, exc)
        if head is None and self.params.use_head:
            head = train_linear_head(vectors, self._owners, len(self.entry_ids), self.params)
            if head_path is not None:
                try:
                    atomic_save_npy(head_path, np.vstack([head[0], head[1][None, :]]))
                except OSError as exc:
                    logger.warning("could not write head cache %s: %s", head_path, exc)
        return vectors, EntryIndex.build(vectors, self._owners, len(self.entry_ids), self.params, head=head)

    def _prefilter_band(self, name: str) -> tuple[EntryIndex, tuple[float, float]]:
        """The cheap encoder's index and ``(floor, sure)`` band (:func:`~supportdesk.rag.scoring.prefilter_band`,
        cached)."""
        encoder = get_encoder(name)
        vectors, index = self._indexed(encoder)
        sure_wrong, miss = float(self.policy["prefilter_sure_wrong"]), float(self.policy["prefilter_miss"])
        key = self._cache_key(encoder, "prefilter-v3", sure_wrong, miss)
        path = self.cache_dir / f"rag-prefilter-{key}.json" if self.cache_dir else None
        band: tuple[float, ...] | None = None
        if path is not None and path.exists():
            try:
                band = tuple(float(v) for v in json.loads(path.read_text(encoding="utf-8"))["band"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                logger.warning("ignoring prefilter cache %s: %s", path, exc)
        if band is None:
            real = self._owners < len(self.kb)
            band = prefilter_band(vectors[real], self._owners[real], len(self.kb), params=self.params,
                                  folds=int(self.policy["calibration_folds"]),
                                  escalate=vectors[~real] if (~real).any() else None, sure_wrong=sure_wrong,
                                  miss=miss, oos_share=float(self.policy["oos_share"]))
            if path is not None:
                try:
                    atomic_write_text(path, json.dumps({"band": list(band)}))
                except OSError as exc:
                    logger.warning("could not write prefilter cache %s: %s", path, exc)
        logger.info("FAQ prefilter %s: answers alone from %.4f, escalates alone below %.4f", name, band[1], band[0])
        return index, (float(band[0]), float(band[1]))

    def _calibrated_threshold(self) -> float:
        path = self.cache_dir / f"rag-calibration-{self._cache_key()}.json" if self.cache_dir else None
        if path is not None and path.exists():
            try:
                self.calibration = json.loads(path.read_text(encoding="utf-8"))
                return float(self.calibration["threshold"])
            except (OSError, ValueError, KeyError) as exc:
                logger.warning("ignoring calibration cache %s: %s", path, exc)
        # Calibrate on the real entries; the escalation examples join every fold as at run time.
        real = self._owners < len(self.kb)
        target = self.policy["calibration_target_tnr"]
        escalate = self._vectors[~real] if (~real).any() else None
        report = calibrate(self._vectors[real], self._owners[real], len(self.kb), params=self.params,
                           negative_weight=float(self.policy["calibration_negative_weight"]),
                           target_tnr=None if target is None else float(target),
                           max_wrong=self.max_wrong if target is None else None,
                           oos_share=float(self.policy["oos_share"]), escalate=escalate,
                           proxy_topics=float(self.policy["calibration_proxy_topics"]),
                           folds=int(self.policy["calibration_folds"]))
        self.calibration = dict(report.__dict__)
        if path is not None:
            try:  # temp file + os.replace: concurrent writers never leave a torn file
                atomic_write_text(path, json.dumps(self.calibration))
            except OSError as exc:
                logger.warning("could not write calibration cache %s: %s", path, exc)
        return report.threshold

    def _operator_allows_prefilter(self) -> bool:
        """Whether an operator calibration of this KB (if any) is loose enough for the prefilter: its
        ``max_wrong`` at least the prefilter's own bound, so the prefilter's answers are the stricter ones."""
        path = self._calibration_file
        if path is None or not Path(path).is_file():
            return True
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            if data.get("kb_fingerprint") != self.kb.fingerprint():
                return True  # ignored at the gate (with a warning)
            allowed = float(data["max_wrong"]) >= float(self.policy["prefilter_sure_wrong"])
        except (OSError, ValueError, KeyError, TypeError):
            return True  # ignored at the gate (with a warning)
        if not allowed:
            logger.info("FAQ prefilter off: the operator calibration %s is stricter than its bound", path)
        return allowed

    def _operator_calibration(self, path: Path | None) -> dict[str, Any] | None:
        """The operator's calibration file when it exists and was fitted on this KB (see
        :func:`supportdesk.eval.calibrate.write_calibration`), else ``None``."""
        if path is None or not Path(path).is_file():
            return None
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            threshold = float(data["threshold"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("ignoring calibration file %s: %s", path, exc)
            return None
        if data.get("kb_fingerprint") != self.kb.fingerprint():
            logger.warning("ignoring calibration file %s: fitted on another knowledge base", path)
            return None
        if data.get("encoder") not in (None, get_encoder(self.encoder).model_id):  # another encoder's scores
            logger.warning("ignoring calibration file %s: fitted with the encoder %s", path, data.get("encoder"))
            return None
        logger.info("answer threshold %.4f from the operator calibration %s", threshold, path)
        return {**data, "threshold": threshold, "source": str(path)}

    # Pipelines: built here from policy and config, or loaded from ``<config_dir>/pipelines/<name>.yaml``
    # (what ``supportdesk pipelines dump`` writes); components a stage reads by name must be there.
    _REQUIRED = {"prefilter": ("embedder", "gate", "router"),
                 "retrieval": ("embedder", "embedding_retriever", "scorer", "gate", "router"),
                 "judge": ("prompt", "generator", "parser", "router"),
                 "web": ("prompt", "generator", "parser", "router")}

    def _override(self, name: str) -> Path | None:
        """``<config_dir>/pipelines/<name>.yaml`` when the operator has one."""
        path = self.config_dir / "pipelines" / f"{name}.yaml" if self.config_dir is not None else None
        return path if path is not None and path.is_file() else None

    def _load_or_build(self, name: str, build: Any) -> Pipeline:
        path = self._override(name)
        with bind(faq=self, model=self.model):
            if path is None:
                return build()
            try:
                pipe = Pipeline.loads(path.read_text(encoding="utf-8"), allowed_modules=ALLOWED_MODULES)
            except Exception as exc:
                raise ConfigError(f"{path}: not a loadable pipeline: {_root(exc)}") from exc
        missing = [c for c in self._REQUIRED[name] if c not in pipe.graph.nodes]
        if missing:
            raise ConfigError(f"{path}: the {name} pipeline needs components {missing}")
        logger.info("%s pipeline loaded from %s", name, path)
        return pipe

    def pipelines(self) -> dict[str, Pipeline]:
        """Every pipeline of the stage by name (the web one even when the fallback is off; the prefilter
        when the policy has one), for dumping."""
        with bind(faq=self, model=self.model):
            web = self.web if self.web is not None else self._web_pipeline(self.config_dir)
        front = {"prefilter": self.prefilter} if self.prefilter is not None else {}
        return {**front, "retrieval": self.retrieval, "judge": self.judge, "web": web}

    def _judge_pipeline(self, config_dir: Path | None) -> Pipeline:
        return self._llm_pipeline("faq_judge", FAQAnswer, "judge", config_dir, with_search=False)

    def _web_pipeline(self, config_dir: Path | None) -> Pipeline:
        return self._llm_pipeline("web_answer", WebAnswer, "web", config_dir, with_search=True)

    def _prefilter_pipeline(self, config_dir: Path | None) -> Pipeline:
        # The cheap encoder's verdict; "undecided" goes on to the retrieval pipeline (see _run).
        floor, sure = self.prefilter_band
        pipe = Pipeline()
        pipe.add_component("embedder", MiniLMTextEmbedder(f"sentence-transformers/{self.prefilter_encoder}"))
        pipe.add_component("gate", PrefilterGate(floor, sure, int(self.policy["top_k"]), index=self.prefilter_index,
                                                 entry_ids=self.entry_ids, label=str(self.prefilter_encoder)))
        pipe.add_component("router", ConditionalRouter(_routes("prefilter", config_dir)))
        pipe.connect("embedder.vector", "gate.query_vector")
        pipe.connect("gate.decision", "router.decision")
        return pipe

    def _retrieval_pipeline(self, config_dir: Path | None) -> Pipeline:
        # The embedding retriever shortlists texts; the scorer re-ranks their entries with the fused score.
        store = self.store
        top_k = int(self.policy["top_k"])
        pipe = Pipeline()
        # model None: the encoder setting's (what a dumped YAML keeps following)
        pipe.add_component("embedder", MiniLMTextEmbedder(None if self._encoder_arg is None
                                                          else f"sentence-transformers/{self.encoder}"))
        pipe.add_component("embedding_retriever",
                           InMemoryEmbeddingRetriever(store, top_k=max(int(self.policy["retrieval_top_k"]), top_k)))
        pipe.add_component("scorer", EntryScorer(top_k=max(top_k, 5), bm25_weight=float(self.policy["bm25_weight"]),
                                                 index=self.index, entry_ids=self.entry_ids))
        pipe.add_component("gate", AnswerGate(self.kb, self.threshold, str(self.policy["answer_decided_by"]),
                                              float(self.policy["judge_margin"]), int(self.policy["judge_top_n"])))
        pipe.add_component("router", ConditionalRouter(_routes("faq", config_dir)))
        pipe.connect("embedder.embedding", "embedding_retriever.query_embedding")
        pipe.connect("embedder.vector", "scorer.query_vector")
        pipe.connect("embedding_retriever.documents", "scorer.documents")
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
        pipe.connect("parser.decision", "router.decision")
        return pipe

    # -- running -------------------------------------------------------------------------------
    def candidates(self, query: str, top_k: int = 5) -> list[tuple[str, float]]:
        """The best FAQ entries for ``query`` and their fused scores (no gate, no LLM)."""
        vector = get_encoder(self.encoder).encode([query])
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
        # Retrieval reads the request without its directive sentences (supportdesk._guardrails).
        request = request_text(query, self.config_dir)
        routed = self.prefilter.run({"embedder": {"text": request}})["router"] if self.prefilter is not None else {}
        if routed and "undecided" not in routed:  # the prefilter decided: its score and bound
            early = next(iter(routed.values()))
            base = {"confidence": early["score"], "threshold": early["threshold"], "top_candidates": early["top"]}
        else:
            data: dict[str, Any] = {"embedder": {"text": request}}
            if "bm25_retriever" in self.retrieval.graph.nodes:
                data["bm25_retriever"] = {"query": request}
            out = self.retrieval.run(data, include_outputs_from={"scorer"})
            candidates = out["scorer"]["candidates"]
            top = [(c["entry_id"], round(c["score"], 6)) for c in candidates if c["entry_id"] != ESCALATE_ID]
            confidence = float(candidates[0]["score"]) if candidates else None
            base = {"confidence": confidence, "threshold": self.threshold, "top_candidates": top}
            routed = out["router"]
        usage: list[TokenUsage] = []
        if "answered" in routed:
            decision = routed["answered"]
            answer = decision.get("answer") or self.kb.get(decision["entry_id"]).answer  # the entry's text verbatim
            return RAGResult(route="answered", answer=answer, faq_id=decision["entry_id"],
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
        route, judged = self._guard_judgement(query, decision, route, routed[route], allowed)
        return route, judged, usage, str(judged.get("reason") or "the model found no FAQ answer")

    def _guard_judgement(self, query: str, decision: dict[str, Any], route: str, judged: dict[str, Any],
                         allowed: list[str]) -> tuple[str, dict[str, Any]]:
        """Code's bounds on the judge (supportdesk._guardrails): the model picks, code speaks.

        The customer reads the chosen entry's own text, never the model's words; the entry must be one
        code retrieved; and when the query carries directive markers, the model may only confirm code's
        top entry or decline (escalating is always safe): any other pick gives way to code's gate, as
        under the ``code`` policy (the top entry when its score reaches the threshold, else no FAQ answer).
        """
        if route == "answered" and judged.get("entry_id") not in allowed:
            return "web", {"verdict": "no_answer", "reason": "the model named an entry code did not retrieve"}
        markers = injection_markers(query, self.config_dir)
        if markers and route == "answered" and allowed and judged.get("entry_id") != allowed[0]:
            score = float(decision.get("score") or 0.0)
            if allowed and score >= self.threshold:
                top = allowed[0]
                judged, route = {"verdict": "answer", "entry_id": top,
                                 "reason": f"directive markers ({', '.join(markers)}): code's FAQ match "
                                           f"{score:.3f} >= threshold {self.threshold:.3f}"}, "answered"
            else:
                judged, route = {"verdict": "no_answer",
                                 "reason": f"directive markers ({', '.join(markers)}): code's best FAQ score "
                                           f"{score:.3f} is below threshold {self.threshold:.3f}"}, "web"
            logger.info("FAQ judge guardrail: %s", judged["reason"])
        if route == "answered":
            judged = {**judged, "answer": self.kb.get(judged["entry_id"]).answer}
        return route, judged

    def _web(self, query: str, reason: str, usage: list[TokenUsage], base: dict[str, Any]) -> RAGResult:
        """The web fallback. Results come only from the operator's domains (the search drops the rest),
        results carrying instructions are dropped, and the customer never reads a result's text: under
        ``code`` our own sentence with the link (``web_reply`` in prompts_rag.yaml), under ``llm`` the
        model's answer once it passes :class:`WebAnswerGuard` (``web_reply_checked``); else escalate."""
        if self.web is None or self.web_search is None:
            return RAGResult(route="escalated", reason=f"{reason}; web search not configured", completions=usage, **base)
        off = self.web_search.disabled_reason
        if off is not None:
            self.web_search.run(query=query)  # logs the reason once
            return RAGResult(route="escalated", reason=f"{reason}; web search skipped: {off}", completions=usage, **base)
        try:
            searched = self.web_search.run(query=query)
        except WebSearchError as exc:
            logger.warning("web search failed: %s", exc)
            return RAGResult(route="escalated", web_searched=True, completions=usage,
                             reason=f"{reason}; web search failed: {exc}", **base)
        if not searched.get("query"):
            return RAGResult(route="escalated", completions=usage, **base,
                             reason=f"{reason}; web search skipped: nothing left to search without personal data")
        guard = WebAnswerGuard(self.web_search.allowed_domains, config_dir=self.config_dir)
        documents = guard.screen(searched["documents"])
        if not documents:
            # Nothing to ground an answer on: the model is not asked.
            found = "no results" if not searched["documents"] else "only results that carry instructions"
            return RAGResult(route="escalated", web_searched=True, completions=usage,
                             reason=f"{reason}; the web search found {found}", **base)
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
        if "answered" not in routed:
            decision = routed.get("escalate", {})
            return RAGResult(route="escalated", web_searched=True, completions=usage,
                             reason=f"{reason}; {decision.get('reason', 'no web answer')}", **base)
        decision = routed["answered"]
        url = str(decision["url"])
        checked = guard.run(answer=str(decision.get("answer") or ""), documents=documents)
        if not checked["passed"]:
            return RAGResult(route="escalated", web_searched=True, completions=usage, **base,
                             reason=f"{reason}; the web answer failed the output check: {'; '.join(checked['problems'])}")
        answer = _web_reply(self.config_dir, "web_reply_checked", answer=" ".join(str(decision["answer"]).split()),
                            url=url, domain=_host(url))
        return RAGResult(route="answered", answer=answer, sources=[url], web_searched=True,
                         reason=f"{reason}; {decision['reason']}; output check passed", completions=usage, **base)

    def _web_by_similarity(
        self, query: str, documents: list[Any], reason: str, usage: list[TokenUsage], base: dict[str, Any]
    ) -> RAGResult:
        """Code picks the web result: the one whose title and snippet are most similar to the query,
        if similar enough. The customer reads our own sentence with its link (``web_reply``), never its text."""
        texts = [f"{d.meta.get('title', '')}. {d.content}" for d in documents]
        vectors = get_encoder(NAME).encode([query, *texts])  # web_min_similarity is this model's
        similarities = vectors[1:] @ vectors[0]
        best = int(similarities.argmax())
        if float(similarities[best]) < float(self.policy["web_min_similarity"]):
            return RAGResult(route="escalated", web_searched=True, completions=usage, **base,
                             reason=f"{reason}; no web result is close enough ({float(similarities[best]):.2f})")
        doc = documents[best]
        url = str(doc.meta["url"])
        title = " ".join(str(doc.meta.get("title") or "").split())[:100]
        answer = _web_reply(self.config_dir, "web_reply", url=url, domain=_host(url), title=title)
        return RAGResult(route="answered", answer=answer, sources=[url], web_searched=True, completions=usage, **base,
                         reason=f"{reason}; web result {best + 1} matches ({float(similarities[best]):.2f})")


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _web_reply(config_dir: Path | None, name: str, **values: str) -> str:
    """Our sentence around a web source: template ``name`` of prompts_rag.yaml (Jinja, sandboxed)."""
    template = _reply_templates(config_dir).get(name)
    if not isinstance(template, str) or not template.strip():
        raise ConfigError(f"prompts_rag.yaml: missing reply template {name!r}")
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    try:
        return env.from_string(template).render(**values).strip()
    except Exception as exc:  # an unknown variable or broken syntax in an edited template
        raise ConfigError(f"prompts_rag.yaml: reply template {name!r} does not render: {exc}") from exc


def _reply_templates(config_dir: Path | None) -> dict[str, Any]:
    data = load_yaml("prompts_rag.yaml", config_dir)
    return data if isinstance(data, dict) else {}


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
    * the web search: ``web_search``, else :class:`SerperWebSearch` from ``settings.serper_*`` and
      ``settings.web_allowed_domains`` (without a key or without allowed domains the fallback is
      skipped with a logged reason and no socket is opened);
    * caches (embeddings, head, calibration) under ``settings.home / "cache"``.
    """
    config_dir = settings.config_dir
    policy = load_rag_policy(settings.decision_policy or kind, config_dir)
    if kb is None:
        kb = KnowledgeBase.from_config(config_dir)
    kb = screened_knowledge_base(kb, config_dir)  # a poisoned FAQ never speaks injected instructions
    if web_search is None:
        web_search = SerperWebSearch(
            api_key=settings.serper_api_key,
            allowed_domains=settings.web_allowed_domains,
            url=settings.serper_url,
            timeout_s=settings.serper_timeout_s,
            top_k=int(policy["web_top_k"]),
        )
    if web_search.disabled_reason is not None and policy["web_search"]:
        logger.info("FAQ web fallback off: %s", web_search.disabled_reason)
    return FAQPipeline(kb, model, web_search, policy, cache_dir=Path(settings.home) / "cache", config_dir=config_dir,
                       max_wrong=_max_wrong(policy, settings), calibration_file=settings.resolved_calibration_file)


def _max_wrong(policy: dict[str, Any], settings: Settings) -> float:
    """The policy's ``max_wrong_answer_rate`` when set, else ``settings.max_wrong_answer_rate``."""
    configured = policy.get("max_wrong_answer_rate")
    return float(configured) if configured is not None else float(settings.max_wrong_answer_rate)
