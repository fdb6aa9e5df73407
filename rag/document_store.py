"""The FAQ's document store: every FAQ question and paraphrase, embedded, one Haystack Document each.

An :class:`~haystack.document_stores.in_memory.InMemoryDocumentStore` whose documents are the FAQ's
texts (``meta["entry_id"]`` names the entry). Serialised, it writes its settings only; deserialised, it
is the store of the FAQ the pipeline is loaded for (see :mod:`supportdesk._collaborators`): the
documents come from the knowledge base, never from the YAML. To move the FAQ to an external store,
replace this store and the retrievers in a dumped pipeline with a Haystack document store
integration (their documents need the same ``meta["entry_id"]``)::

    from supportdesk.rag.document_store import FAQDocumentStore

    store = FAQDocumentStore.from_texts(texts, vectors, entry_ids)   # vectors: (n, 384) unit rows
    store.count_documents()                                          # len(texts)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
from haystack import Document, default_to_dict
from haystack.document_stores.in_memory import InMemoryDocumentStore

__all__ = ["FAQDocumentStore"]


class FAQDocumentStore(InMemoryDocumentStore):
    """An in-memory, instance-local, cosine-similarity store of the FAQ's embedded texts."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("embedding_similarity_function", "cosine")
        kwargs["shared"] = False  # freed with the pipeline; never a process-global index
        self._matrix: tuple[np.ndarray, list[Document]] | None = None
        super().__init__(**kwargs)

    @classmethod
    def from_texts(cls, texts: Sequence[str], vectors: np.ndarray, entry_ids: Sequence[str], **kwargs: Any) -> FAQDocumentStore:
        """A store holding ``texts[i]`` with embedding ``vectors[i]`` and ``meta["entry_id"] = entry_ids[i]``."""
        store = cls(**kwargs)
        store.write_documents([
            Document(content=text, embedding=vector.tolist(), meta={"entry_id": entry_id})
            for text, vector, entry_id in zip(texts, vectors, entry_ids, strict=True)
        ])
        return store

    def write_documents(self, *args: Any, **kwargs: Any) -> int:
        self._matrix = None
        return super().write_documents(*args, **kwargs)

    def delete_documents(self, *args: Any, **kwargs: Any) -> None:
        self._matrix = None
        super().delete_documents(*args, **kwargs)

    def embedding_retrieval(
        self,
        query_embedding: list[float],
        filters: dict[str, Any] | None = None,
        top_k: int = 10,
        scale_score: bool = False,
        return_embedding: bool | None = False,
    ) -> list[Document]:
        """As the in-memory store's, with the embeddings kept as one NumPy matrix (rebuilt after a
        write): one matrix product a query instead of a Python pass over every document. Filtered or
        scaled retrieval takes the base class's path."""
        if filters or scale_score or not query_embedding:
            return super().embedding_retrieval(query_embedding, filters, top_k, scale_score, return_embedding)
        matrix, docs = self._embedding_matrix()
        if not docs:
            return []
        query = np.asarray(query_embedding, dtype=np.float32)
        scores = matrix @ (query / max(float(np.linalg.norm(query)), 1e-12))
        k = min(int(top_k), len(docs))
        best = np.argpartition(-scores, k - 1)[:k]
        best = best[np.argsort(-scores[best], kind="stable")]
        keep = self.return_embedding if return_embedding is None else return_embedding
        return [dataclasses.replace(docs[i], score=float(scores[i]), embedding=docs[i].embedding if keep else None)
                for i in best]

    def _embedding_matrix(self) -> tuple[np.ndarray, list[Document]]:
        if getattr(self, "_matrix", None) is None:
            docs = [d for d in self.storage.values() if d.embedding is not None]
            matrix = np.asarray([d.embedding for d in docs], dtype=np.float32).reshape(len(docs), -1)
            matrix /= np.clip(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12, None)
            self._matrix = (matrix, docs)
        return self._matrix

    def to_dict(self) -> dict[str, Any]:
        """No parameters: the documents, and how they are compared (cosine), come from the FAQ."""
        return default_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FAQDocumentStore:
        """The store of the FAQ being loaded (bound, else built from settings); the YAML holds no documents."""
        from supportdesk._collaborators import collaborator

        return collaborator("faq").store
