"""Haystack components around the NumPy all-MiniLM-L6-v2 encoder.

::

    from haystack import Document
    from supportdesk.rag.embedder import MiniLMDocumentEmbedder, MiniLMTextEmbedder

    MiniLMTextEmbedder().run(text="How do I reset my password?")["embedding"]       # 384 floats
    docs = MiniLMDocumentEmbedder().run(documents=[Document(content="I forgot my password")])["documents"]
    len(docs[0].embedding)                                                            # 384
"""

from __future__ import annotations

import dataclasses
from typing import Any

from haystack import Document, component

from supportdesk.rag._minilm import MODEL_NAME, get_encoder

__all__ = ["MiniLMDocumentEmbedder", "MiniLMTextEmbedder"]


@component
class MiniLMTextEmbedder:
    """Embeds one query text (unit-length, 384 floats). The model loads on first use."""

    def __init__(self, model: str = MODEL_NAME) -> None:
        self.model = model

    @component.output_types(embedding=list[float], meta=dict[str, Any])
    def run(self, text: str) -> dict[str, Any]:
        vector = get_encoder().encode([text])[0]
        return {"embedding": vector.tolist(), "meta": {"model": self.model}}


@component
class MiniLMDocumentEmbedder:
    """Embeds documents' content in batches; returns copies with ``embedding`` set."""

    def __init__(self, model: str = MODEL_NAME, batch_size: int = 64) -> None:
        self.model = model
        self.batch_size = batch_size

    @component.output_types(documents=list[Document], meta=dict[str, Any])
    def run(self, documents: list[Document]) -> dict[str, Any]:
        encoder = get_encoder()
        vectors = encoder.encode([d.content or "" for d in documents]) if documents else []
        out = [dataclasses.replace(d, embedding=v.tolist()) for d, v in zip(documents, vectors, strict=True)]
        return {"documents": out, "meta": {"model": self.model}}
