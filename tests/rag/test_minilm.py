"""The NumPy all-MiniLM-L6-v2 encoder against sentence-transformers reference vectors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from supportdesk.rag._minilm import MODEL_NAME, NAME, get_encoder

REFERENCE = json.loads((Path(__file__).parent / "fixtures" / "minilm_reference.json").read_text(encoding="utf-8"))


def test_encoder_matches_sentence_transformers_reference():
    """Every reference sentence embeds within 1e-5 (max abs) of the stored sentence-transformers vector.

    The fixture holds all-MiniLM-L6-v2 vectors computed by sentence-transformers (7 decimals) for six
    sentences: short, long, English, German, in and off the FAQ; today's max difference is about 2e-7."""
    assert REFERENCE["model"] == MODEL_NAME
    got = get_encoder(NAME).encode(REFERENCE["sentences"])
    want = np.asarray(REFERENCE["vectors"], dtype=np.float32)
    assert got.shape == want.shape == (len(REFERENCE["sentences"]), 384)
    assert float(np.abs(got - want).max()) < 1e-5


def test_encoder_returns_l2_normalised_float32_rows():
    """Rows are float32 and of unit L2 norm, whatever the text length."""
    vectors = get_encoder(NAME).encode(["hi", "How do I reset my password?", "word " * 400])
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_encoder_keeps_input_order_across_length_sorted_batches():
    """Batches are sorted by length internally, but row i is always the embedding of text i."""
    texts = ["a much longer sentence about invoices and refunds", "short", "medium length text here"]
    forward = get_encoder(NAME).encode(texts)
    backward = get_encoder(NAME).encode(texts[::-1])
    np.testing.assert_allclose(forward, backward[::-1], atol=1e-5)
    assert get_encoder(NAME).encode([]).shape == (0, 384)
