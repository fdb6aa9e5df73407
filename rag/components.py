"""Haystack components of the FAQ stage: the answerability gate and the LLM answer parser.

(:class:`~supportdesk.rag.entry_scorer.EntryScorer`, re-exported here, ranks the retrieved entries.)
Collaborators (the KB, the chat model) are never serialised: ``from_dict`` takes them from
:mod:`supportdesk._collaborators`.

::

    cands = scorer.run(query_embedding=emb, documents=docs)["candidates"]   # [{"entry_id", "score"}, ...]
    gate = AnswerGate(kb, threshold=0.55, decided_by="code")
    gate.run(candidates=cands)["decision"]                      # {"verdict": "answer", "entry_id": ...}
"""

from __future__ import annotations

import logging
from typing import Any

from haystack import Document, component, default_to_dict
from haystack.dataclasses import ChatMessage as HaystackChatMessage
from haystack.utils.type_serialization import deserialize_type, serialize_type
from pydantic import BaseModel

from supportdesk.errors import ConfigError, OutputValidationError
from supportdesk.llm._types import ChatMessage, ChatModel, Completion
from supportdesk.llm.haystack_generator import completion_from_reply, from_haystack
from supportdesk.llm.structured import structured_call, validate_output
from supportdesk.models.responses import FAQAnswer, WebAnswer
from supportdesk.rag.entry_scorer import EntryScorer
from supportdesk.rag.knowledge_base import KnowledgeBase

__all__ = ["ESCALATE_ID", "AnswerGate", "EntryScorer", "StructuredParser", "choice_overrides"]

logger = logging.getLogger(__name__)

#: Pseudo-entry id of the KB's escalation examples: when it ranks first, the query escalates.
ESCALATE_ID = "__escalate__"


@component
class AnswerGate:
    """Decides whether the FAQ can answer: code compares the top score with the threshold.

    With ``decided_by="llm"`` a top score within ``judge_margin`` below the threshold, or above it,
    goes to the LLM judge with the ``judge_top_n`` best entries (verdict ``judge``).
    Verdicts: ``answer`` (entry_id, answer text verbatim), ``judge`` (entries), ``no_evidence``.
    """

    def __init__(
        self,
        kb: KnowledgeBase,
        threshold: float,
        decided_by: str = "code",
        judge_margin: float = 0.1,
        judge_top_n: int = 3,
    ) -> None:
        self.kb = kb
        self.threshold = threshold
        self.decided_by = decided_by
        self.judge_margin = judge_margin
        self.judge_top_n = judge_top_n

    def to_dict(self) -> dict[str, Any]:
        """The configuration; the KB is the FAQ's (rebuilt on load)."""
        return default_to_dict(self, threshold=self.threshold, decided_by=self.decided_by,
                               judge_margin=self.judge_margin, judge_top_n=self.judge_top_n)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnswerGate:
        """Rebuild with the KB of the FAQ being loaded; ``threshold: null`` takes its calibrated threshold."""
        from supportdesk._collaborators import collaborator

        faq = collaborator("faq")
        params = dict(data.get("init_parameters", {}))
        if params.get("threshold") is None:
            params["threshold"] = faq.threshold
        return cls(faq.kb, **params)

    @component.output_types(decision=dict[str, Any])
    def run(self, candidates: list[dict[str, Any]]) -> dict[str, Any]:
        real = [c for c in candidates if c["entry_id"] != ESCALATE_ID]
        top = candidates[0] if candidates else None
        if top is None:
            return {"decision": {"verdict": "no_evidence", "reason": "empty knowledge base"}}
        score = float(top["score"])
        if top["entry_id"] == ESCALATE_ID:
            return {"decision": {"verdict": "no_evidence", "score": score,
                                 "reason": "closest to an escalation example: needs a person"}}
        if self.decided_by == "llm":
            if score >= self.threshold - self.judge_margin:
                entries = [self.kb.get(c["entry_id"]) for c in real[: self.judge_top_n]]
                return {"decision": {"verdict": "judge", "score": score,
                                     "entries": [e.model_dump() for e in entries],
                                     "reason": f"top score {score:.3f}: the model judges"}}
        elif score >= self.threshold:
            entry = self.kb.get(top["entry_id"])
            return {"decision": {"verdict": "answer", "entry_id": entry.id, "answer": entry.answer, "score": score,
                                 "reason": f"FAQ match {score:.3f} >= threshold {self.threshold:.3f}"}}
        return {"decision": {"verdict": "no_evidence", "score": score,
                             "reason": f"best FAQ score {score:.3f} below threshold {self.threshold:.3f}"}}


@component
class StructuredParser:
    """Parses the generator's reply into ``FAQAnswer`` or ``WebAnswer``; re-asks the model on invalid output.

    The choice is narrowed to what the prompt offered: ``entry_id`` must be one of ``allowed_ids``
    (the judged candidates) and ``result_number`` one of the web results shown. A reply outside that
    set is invalid like a reply that is not JSON: it is fed back with the error and asked again.

    Verdicts: ``answer``; ``no_answer`` (the model says nothing answers); ``invalid`` (no reply
    validated, retries included: the stage fails closed and escalates, see config/routes.yaml).

    :param response_model: ``FAQAnswer`` or ``WebAnswer``.
    :param model: the chat model, for re-asks (``structured_call`` with the reply fed back).
    :param retries: re-asks after an invalid reply.
    :param max_tokens: completion budget of a re-ask.

    Outputs: ``decision`` (routed) and ``completions``: the reply's usage (``ChatMessage.meta["usage"]``)
    and every re-ask's, for the run's token accounting.
    """

    def __init__(self, response_model: type[BaseModel], model: ChatModel, retries: int = 1, max_tokens: int = 256) -> None:
        if int(retries) < 0 or int(max_tokens) < 1:
            raise ConfigError(f"StructuredParser: retries must be >= 0 and max_tokens >= 1, got {retries}, {max_tokens}")
        self.response_model = response_model
        self.model = model
        self.retries = retries
        self.max_tokens = max_tokens

    def to_dict(self) -> dict[str, Any]:
        """The configuration; the chat model is the run's (rebuilt on load)."""
        return default_to_dict(self, response_model=serialize_type(self.response_model), retries=self.retries,
                               max_tokens=self.max_tokens)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StructuredParser:
        """Rebuild with the chat model bound for the load, else the one from settings."""
        from supportdesk._collaborators import collaborator

        params = dict(data.get("init_parameters", {}))
        response_model = deserialize_type(params.pop("response_model"))
        if response_model not in (FAQAnswer, WebAnswer):
            raise ConfigError(f"StructuredParser: response_model must be FAQAnswer or WebAnswer, got {response_model!r}")
        return cls(response_model, collaborator("model"), **params)

    @component.output_types(decision=dict[str, Any], completions=list[Completion])
    def run(
        self,
        replies: list[HaystackChatMessage],
        messages: list[HaystackChatMessage],
        documents: list[Document] | None = None,
        allowed_ids: list[str] | None = None,
    ) -> dict[str, Any]:
        used = [completion_from_reply(reply) for reply in replies]  # usage from ChatMessage.meta["usage"]
        text = replies[0].text if replies else ""
        overrides = choice_overrides(self.response_model, allowed_ids=allowed_ids, documents=documents)
        value: BaseModel | None = None
        try:
            value = validate_output(text or "", self.response_model, overrides)
        except Exception as exc:  # mirascope ParseError
            error = str(getattr(exc, "original_exception", exc)).splitlines()[0][:300]
            logger.info("%s reply did not validate (%s)", self.response_model.__name__, error)
            if self.retries > 0:
                conversation: list[ChatMessage] = [
                    *from_haystack(messages),
                    ChatMessage("assistant", text or ""),
                    ChatMessage("user", f"That answer was invalid: {error}. "
                                        "Reply again with JSON that matches the schema."),
                ]
                try:
                    result = structured_call(self.model, conversation, self.response_model, retries=self.retries - 1,
                                             max_tokens=self.max_tokens, schema_overrides=overrides)
                    value = result.value
                    used.extend(result.completions)
                except OutputValidationError as err:
                    logger.warning("%s: %s", self.response_model.__name__, err)
                    error = str(err)
            if value is None:
                return {"decision": {"verdict": "invalid", "url": None,
                                     "reason": f"the model gave no valid answer ({error})"}, "completions": used}
        assert value is not None
        decision: dict[str, Any] = value.model_dump()
        if isinstance(value, FAQAnswer):
            if value.verdict == "answer" and not value.entry_id:
                decision = {"verdict": "invalid", "reason": "the model answered without naming an FAQ entry"}
            else:
                decision["reason"] = ("the model chose FAQ entry" if value.verdict == "answer"
                                      else "the model found no FAQ answer")
        elif isinstance(value, WebAnswer):
            docs = documents or []
            n = value.result_number
            if value.verdict == "answer" and n is not None and 1 <= n <= len(docs):
                decision["url"] = docs[n - 1].meta.get("url")
                decision["reason"] = f"answered from web result {n} (untrusted)"
            elif value.verdict == "answer":
                decision = {"verdict": "invalid", "url": None,
                            "reason": "the model answered without naming a web result"}
            else:
                decision = {"verdict": "no_answer", "url": None, "reason": "no web result answers the question"}
        return {"decision": decision, "completions": used}


def choice_overrides(
    response_model: type[BaseModel], *, allowed_ids: list[str] | None = None, documents: list[Document] | None = None
) -> dict[str, dict[str, Any]] | None:
    """JSON-schema overrides that narrow the model's choice to what it was shown (``null`` stays allowed
    for ``no_answer``). Used for constrained decoding and enforced when the reply is validated."""
    if response_model is FAQAnswer and allowed_ids:
        return {"entry_id": {"enum": [*allowed_ids, None]}}
    if response_model is WebAnswer and documents:
        return {"result_number": {"enum": [*range(1, len(documents) + 1), None]}}
    return None

