"""PrefilterGate: a cheap encoder in front of the FAQ answer gate decides alone the queries it is sure of.

all-mpnet-base-v2 decides better than all-MiniLM-L6-v2 on every public set, but a query costs about
30 ms against 5 ms and its weights take about a second and 440 MB to load. The embedded policy
therefore runs a ``prefilter`` pipeline first (``rag.prefilter_encoder`` in config/policies.yaml):
MiniLM text embedder -> this gate -> router (config/routes.yaml ``prefilter``). A query whose MiniLM
score reaches ``sure`` is answered from its top entry, one below ``floor`` (or closest to an
escalation example) has no FAQ answer (web fallback, else escalation), and only the queries in between
go on to the retrieval pipeline, whose encoder loads on the first such query. Both bounds come from the
KB's own cross-fit (:func:`supportdesk.rag.scoring.prefilter_band`): ``sure`` keeps MiniLM's estimated
wrong-answer rate at 0.02 against each sample of out-of-scope traffic alone, ``floor`` lies under 99% of
the KB's held-out answerable texts. Measured (``benchmarks/encoder_cascade.py``,
``supportdesk/eval/README.md`` "Sixth pass", "Seventh pass"): within 0.005 full accuracy of the larger
encoder alone on every public set and split. Usage::

    gate = PrefilterGate(floor=0.42, sure=0.81, index=index, entry_ids=entry_ids)
    gate.run(query_vector=vector)["decision"]
    # {"verdict": "answer", "entry_id": "reset-password", "score": 0.93, "top": [...], "reason": "..."}
    # other verdicts: "no_evidence" (decided: no FAQ answer), "undecided" (the answer gate decides)

``floor: null`` / ``sure: null`` in a pipeline YAML take the FAQ's calibrated band on load.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from haystack import component, default_to_dict

from supportdesk.errors import ConfigError
from supportdesk.rag.components import ESCALATE_ID
from supportdesk.rag.scoring import EntryIndex

__all__ = ["PrefilterGate"]


@component
class PrefilterGate:
    """The cheap encoder's verdict on one query, from a full scan of the KB's entries.

    :param floor: below this fused score the query has no FAQ answer.
    :param sure: at or above it the top entry answers.
    :param top_k: real entries reported in ``top``.
    :param index: the KB's :class:`EntryIndex` under the cheap encoder (escalation examples included;
        a collaborator: never serialised).
    :param entry_ids: the id of each index entry (``ESCALATE_ID`` for the examples).
    :param label: the encoder's name, for the reasons.
    """

    def __init__(self, floor: float, sure: float, top_k: int = 5, *, index: EntryIndex | None = None,
                 entry_ids: list[str] | None = None, label: str = "prefilter") -> None:
        if index is None or entry_ids is None or len(entry_ids) != index.n_entries:
            raise ConfigError("PrefilterGate needs the KB's index and one entry id per index entry")
        if float(floor) > float(sure) or int(top_k) < 1:
            raise ConfigError(f"PrefilterGate: needs floor <= sure and top_k >= 1, got {floor}, {sure}, {top_k}")
        self.floor, self.sure, self.top_k = float(floor), float(sure), int(top_k)
        self.index, self.entry_ids, self.label = index, list(entry_ids), label

    def to_dict(self) -> dict[str, Any]:
        """The configuration; the index is the FAQ's (rebuilt on load)."""
        return default_to_dict(self, floor=self.floor, sure=self.sure, top_k=self.top_k)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PrefilterGate:
        """Rebuild with the prefilter index of the FAQ being loaded; a null bound takes its calibrated one."""
        from supportdesk._collaborators import collaborator

        faq = collaborator("faq")
        params = dict(data.get("init_parameters", {}))
        floor, sure = faq.prefilter_band
        params["floor"] = floor if params.get("floor") is None else params["floor"]
        params["sure"] = sure if params.get("sure") is None else params["sure"]
        return cls(**params, index=faq.prefilter_index, entry_ids=faq.entry_ids, label=faq.prefilter_encoder)

    @component.output_types(decision=dict[str, Any])
    def run(self, query_vector: np.ndarray) -> dict[str, Any]:
        scores = self.index.score(np.asarray(query_vector, dtype=np.float32)[None, :])[0]
        order = np.argsort(-scores)
        best, score = int(order[0]), float(scores[order[0]])
        # one index entry at most is the escalation pseudo-entry
        top = [(self.entry_ids[i], round(float(scores[i]), 6)) for i in order[: self.top_k + 1]
               if self.entry_ids[i] != ESCALATE_ID]
        where = f"{self.label} score {score:.3f}"
        decision: dict[str, Any] = {"verdict": "undecided", "score": score, "top": top[: self.top_k],
                                    "reason": f"{where}: the answer gate decides"}
        if self.entry_ids[best] == ESCALATE_ID:
            decision.update(verdict="no_evidence", threshold=self.floor,
                            reason=f"{self.label}: closest to an escalation example: needs a person")
        elif score >= self.sure:
            decision.update(verdict="answer", entry_id=self.entry_ids[best], threshold=self.sure,
                            reason=f"FAQ match: {where} >= its sure threshold {self.sure:.3f}")
        elif score < self.floor:
            decision.update(verdict="no_evidence", threshold=self.floor,
                            reason=f"best FAQ score: {where} below its floor {self.floor:.3f}")
        return {"decision": decision}
