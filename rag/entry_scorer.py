"""EntryScorer: re-ranks the FAQ entries a retriever found with the KB's fused score.

The embedding retriever returns the texts (questions, paraphrases) nearest the query, best first,
with their cosine similarity. Each entry's first retrieved text is its closest one, so the retriever's
score is the entry's ``maxcos`` signal; the scorer adds the entry's centroid similarity and the KB
head's log-probability (:meth:`~supportdesk.rag.scoring.EntryIndex.score_candidates`) and returns
the best ``top_k`` entries. Entries the retriever did not return are not candidates: the retriever's
``top_k`` is the shortlist size. BM25 documents, when connected, add a bonus to those candidates.

::

    scorer = EntryScorer(top_k=5, index=faq.index, entry_ids=faq.entry_ids)
    docs = retriever.run(query_embedding=emb)["documents"]
    scorer.run(query_embedding=emb, documents=docs)["candidates"]   # [{"entry_id", "score"}, ...] best first

The query comes as ``query_embedding`` (a list, as retrievers take it) or ``query_vector`` (the
embedder's float32 array: cheaper for the pipeline to pass on, see ``MiniLMTextEmbedder``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from haystack import Document, component, default_to_dict

from supportdesk.errors import ConfigError
from supportdesk.rag.scoring import EntryIndex

__all__ = ["EntryScorer"]


@component
class EntryScorer:
    """Fused scores of the retrieved FAQ entries, best first.

    :param top_k: candidates returned.
    :param bm25_weight: weight of the BM25 evidence (scores normalised by the best one).
    :param index: the :class:`EntryIndex` of the KB (a collaborator: never serialised).
    :param entry_ids: id of each index entry, same order (comes with the index).
    """

    def __init__(
        self,
        top_k: int = 5,
        bm25_weight: float = 0.0,
        *,
        index: EntryIndex | None = None,
        entry_ids: list[str] | None = None,
    ) -> None:
        if int(top_k) < 1:
            raise ConfigError(f"EntryScorer: top_k must be >= 1, got {top_k}")
        if float(bm25_weight) < 0:
            raise ConfigError(f"EntryScorer: bm25_weight must be >= 0, got {bm25_weight}")
        if index is None or entry_ids is None:
            raise ConfigError("EntryScorer needs the KB's index and entry ids")
        if len(entry_ids) != index.n_entries:
            raise ConfigError(f"EntryScorer: {len(entry_ids)} entry ids for an index of {index.n_entries} entries")
        self.top_k = int(top_k)
        self.bm25_weight = float(bm25_weight)
        self.index = index
        self.entry_ids = list(entry_ids)
        self._pos = {e: i for i, e in enumerate(self.entry_ids)}

    def to_dict(self) -> dict[str, Any]:
        """The configuration; the index is the FAQ's (rebuilt on load)."""
        return default_to_dict(self, top_k=self.top_k, bm25_weight=self.bm25_weight)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EntryScorer:
        """Rebuild with the index of the FAQ being loaded (see :mod:`supportdesk._collaborators`)."""
        from supportdesk._collaborators import collaborator

        faq = collaborator("faq")
        return cls(**data.get("init_parameters", {}), index=faq.index, entry_ids=faq.entry_ids)

    @component.output_types(candidates=list[dict[str, Any]])
    def run(
        self,
        documents: list[Document],
        query_embedding: list[float] | None = None,
        query_vector: np.ndarray | None = None,
        bm25_documents: list[Document] | None = None,
    ) -> dict[str, Any]:
        query = query_vector if query_vector is not None else query_embedding
        if query is None:
            raise ValueError("EntryScorer.run needs query_embedding or query_vector")
        best: dict[int, float] = {}
        for doc in documents:
            i = self._pos.get(str(doc.meta.get("entry_id")))
            if i is not None and doc.score is not None and doc.score > best.get(i, -np.inf):
                best[i] = float(doc.score)
        if not best:
            return {"candidates": []}
        entries = np.fromiter(best, dtype=np.int64, count=len(best))
        maxcos = np.fromiter(best.values(), dtype=np.float32, count=len(best))
        scores = self.index.score_candidates(np.asarray(query, dtype=np.float32), entries, maxcos)
        if self.bm25_weight and bm25_documents:
            top = max((d.score or 0.0) for d in bm25_documents) or 1.0
            bonus: dict[int, float] = {}
            for doc in bm25_documents:
                i = self._pos.get(str(doc.meta.get("entry_id")))
                if i is not None:
                    bonus[i] = max(bonus.get(i, 0.0), (doc.score or 0.0) / top)
            scores = scores + self.bm25_weight * np.array([bonus.get(int(i), 0.0) for i in entries], dtype=np.float32)
        order = np.argsort(-scores, kind="stable")[: self.top_k]
        return {"candidates": [{"entry_id": self.entry_ids[int(entries[k])], "score": float(scores[k])} for k in order]}
