"""Haystack components around the NumPy sentence encoder: all-MiniLM-L6-v2, or the ``encoder``
setting's choice when no ``model`` is given (``supportdesk.rag._minilm.get_encoder``).

::

    from haystack import Document
    from supportdesk.rag.embedder import MiniLMDocumentEmbedder, MiniLMTextEmbedder

    MiniLMTextEmbedder().run(text="How do I reset my password?")["embedding"]       # 384 floats
    MiniLMTextEmbedder().run(text="How do I reset my password?")["vector"]          # the same, float32 array
    docs = MiniLMDocumentEmbedder().run(documents=[Document(content="I forgot my password")])["documents"]
    len(docs[0].embedding)                                                            # 384
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from haystack import Document, component

from supportdesk.errors import ConfigError
from supportdesk.rag._minilm import ENCODER_NAMES, MiniLMEncoder, get_encoder

__all__ = ["MiniLMDocumentEmbedder", "MiniLMTextEmbedder"]

#: The encoders these components run, by the names a pipeline YAML may give (None: the setting's).
ENCODERS = {f"sentence-transformers/{n}": n for n in ENCODER_NAMES}


def _checked(model: str | None) -> str | None:
    if model is not None and model not in ENCODERS:  # the FAQ's cached embeddings and calibration are the encoder's
        raise ConfigError(f"embedder: model must be one of {sorted(ENCODERS)} or unset, got {model!r}")
    return model


def _encoder(model: str | None) -> MiniLMEncoder:
    """The encoder a component's ``model`` names (``None``: the ``encoder`` setting's), loaded once."""
    return get_encoder(ENCODERS[model] if model is not None else None)


@component
class MiniLMTextEmbedder:
    """Embeds one query text (unit-length, 384 floats). The model loads on first use.

    Outputs ``embedding`` (``list[float]``, what Haystack's retrievers take) and ``vector``, the same
    numbers as a float32 array for components that compute with them (the entry scorer): a pipeline
    deep-copies every input, a list element by element (about 3 ms for 384 floats), an array at once.
    """

    def __init__(self, model: str | None = None) -> None:
        self.model = _checked(model)

    def warm_up(self) -> None:
        """Load the encoder (once per process)."""
        _encoder(self.model)

    @component.output_types(embedding=list[float], vector=np.ndarray, meta=dict[str, Any])
    def run(self, text: str) -> dict[str, Any]:
        encoder = _encoder(self.model)
        vector = encoder.encode([text])[0]
        return {"embedding": vector.tolist(), "vector": vector, "meta": {"model": encoder.model_id}}


@component
class MiniLMDocumentEmbedder:
    """Embeds documents' content in batches; returns copies with ``embedding`` set."""

    def __init__(self, model: str | None = None, batch_size: int = 64) -> None:
        if int(batch_size) < 1:
            raise ConfigError(f"MiniLMDocumentEmbedder: batch_size must be >= 1, got {batch_size}")
        self.model = _checked(model)
        self.batch_size = int(batch_size)

    def warm_up(self) -> None:
        """Load the encoder (once per process)."""
        _encoder(self.model)

    @component.output_types(documents=list[Document], meta=dict[str, Any])
    def run(self, documents: list[Document]) -> dict[str, Any]:
        encoder = _encoder(self.model)
        texts = [d.content or "" for d in documents]
        vectors = [v for i in range(0, len(texts), self.batch_size) for v in encoder.encode(texts[i:i + self.batch_size])]
        out = [dataclasses.replace(d, embedding=v.tolist()) for d, v in zip(documents, vectors, strict=True)]
        return {"documents": out, "meta": {"model": encoder.model_id}}
