"""all-MiniLM-L6-v2 sentence embeddings in pure NumPy (no torch at run time).

The weights are package data (``supportdesk/rag/minilm_model/``: the sentence-transformers model's
safetensors, tokenizer and config, Apache-2.0, model card included), so no torch is installed or
imported. The forward pass is a plain
BERT encoder (6 layers, 12 heads, hidden size 384), mean pooling over the attention mask and L2
normalisation, exactly what sentence-transformers computes for this model (max abs difference
below 1e-5, checked by ``tests/rag/test_minilm.py`` against stored reference vectors)::

    from supportdesk.rag._minilm import get_encoder

    encoder = get_encoder("all-MiniLM-L6-v2")   # loads the weights once per process
    vectors = encoder.encode(["How do I reset my password?", "I forgot my password"])
    vectors.shape                        # (2, 384), float32, unit length
    float(vectors[0] @ vectors[1])       # cosine similarity, about 0.8

Importing this module is cheap; the weights (90 MB) are read on the first :func:`get_encoder` call.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from supportdesk.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tokenizers import Tokenizer

__all__ = ["ENCODER_NAMES", "MODEL_NAME", "MPNET_NAME", "NAME", "MiniLMEncoder", "encoder_name", "get_encoder",
           "model_dir"]

logger = logging.getLogger(__name__)

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
#: Its name for the ``encoder`` setting and :func:`get_encoder`; what the triage classifier and the web
#: fallback always embed with (their similarity settings are this model's).
NAME = "all-MiniLM-L6-v2"
#: The larger encoder (``supportdesk.rag._mpnet``): the FAQ gate's default, behind a MiniLM prefilter.
MPNET_NAME = "all-mpnet-base-v2"
#: Every name the ``encoder`` setting and :func:`get_encoder` accept.
ENCODER_NAMES = (NAME, MPNET_NAME)
MAX_SEQ_LENGTH = 256
_MODEL_FOLDER = "minilm_model"

_lock = threading.Lock()
_cached: dict[str, MiniLMEncoder] = {}
_default: str | None = None


def model_dir() -> Path:
    """The folder holding model.safetensors, tokenizer.json and config.json.

    :raises ConfigError: the package data lacks a model file (a broken install).
    """
    root = Path(str(resources.files("supportdesk.rag"))) / _MODEL_FOLDER
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        if not (root / name).is_file():
            raise ConfigError(f"embedding model file {root / name} is missing: reinstall supportdesk")
    return root


@dataclass(frozen=True)
class _Layer:
    wq: np.ndarray
    bq: np.ndarray
    wk: np.ndarray
    bk: np.ndarray
    wv: np.ndarray
    bv: np.ndarray
    wo: np.ndarray
    bo: np.ndarray
    ln1_w: np.ndarray
    ln1_b: np.ndarray
    wi: np.ndarray
    bi: np.ndarray
    wout: np.ndarray
    bout: np.ndarray
    ln2_w: np.ndarray
    ln2_b: np.ndarray


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centered = x - mean
    var = np.mean(centered * centered, axis=-1, keepdims=True)
    return centered / np.sqrt(var + eps) * weight + bias


def _erf(x: np.ndarray) -> np.ndarray:
    """Error function in NumPy (Numerical Recipes ``erfcc``: fractional error below 1.2e-7)."""
    z = np.abs(x).astype(np.float64)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277))))))))
    erfc = t * np.exp(poly)
    return np.where(x >= 0, 1.0 - erfc, erfc - 1.0).astype(np.float32)


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x * np.float32(0.7071067811865476)))


class MiniLMEncoder:
    """The all-MiniLM-L6-v2 encoder: texts in, unit-length float32 vectors (384) out.

    :param directory: a folder with the Hugging Face files (default: the installed package's).
    :param batch_size: texts per forward pass; batches are sorted by length to limit padding.
    """

    dimension = 384

    def __init__(self, directory: Path | None = None, *, batch_size: int = 64) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.directory = Path(directory) if directory is not None else model_dir()
        self.batch_size = batch_size
        config = json.loads((self.directory / "config.json").read_text(encoding="utf-8"))
        self._heads = int(config["num_attention_heads"])
        self._eps = float(config.get("layer_norm_eps", 1e-12))
        self._tokenizer: Tokenizer = Tokenizer.from_file(str(self.directory / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)
        self._tokenizer.no_padding()
        weights = load_file(str(self.directory / "model.safetensors"))
        self._fingerprint = hashlib.sha256(
            (self.directory / "model.safetensors").read_bytes()[:1 << 20]
        ).hexdigest()[:16]
        p = "embeddings."
        self._word = weights[p + "word_embeddings.weight"]
        self._pos = weights[p + "position_embeddings.weight"]
        self._type = weights[p + "token_type_embeddings.weight"]
        self._emb_ln_w = weights[p + "LayerNorm.weight"]
        self._emb_ln_b = weights[p + "LayerNorm.bias"]
        self._layers: list[_Layer] = []
        for i in range(int(config["num_hidden_layers"])):
            q = f"encoder.layer.{i}."
            self._layers.append(
                _Layer(
                    wq=np.ascontiguousarray(weights[q + "attention.self.query.weight"].T),
                    bq=weights[q + "attention.self.query.bias"],
                    wk=np.ascontiguousarray(weights[q + "attention.self.key.weight"].T),
                    bk=weights[q + "attention.self.key.bias"],
                    wv=np.ascontiguousarray(weights[q + "attention.self.value.weight"].T),
                    bv=weights[q + "attention.self.value.bias"],
                    wo=np.ascontiguousarray(weights[q + "attention.output.dense.weight"].T),
                    bo=weights[q + "attention.output.dense.bias"],
                    ln1_w=weights[q + "attention.output.LayerNorm.weight"],
                    ln1_b=weights[q + "attention.output.LayerNorm.bias"],
                    wi=np.ascontiguousarray(weights[q + "intermediate.dense.weight"].T),
                    bi=weights[q + "intermediate.dense.bias"],
                    wout=np.ascontiguousarray(weights[q + "output.dense.weight"].T),
                    bout=weights[q + "output.dense.bias"],
                    ln2_w=weights[q + "output.LayerNorm.weight"],
                    ln2_b=weights[q + "output.LayerNorm.bias"],
                )
            )
        logger.debug("loaded MiniLM weights from %s", self.directory)

    @property
    def model_id(self) -> str:
        """Model name plus a fingerprint of the weights: the key of on-disk embedding caches."""
        return f"{MODEL_NAME}@{self._fingerprint}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``: an array of shape ``(len(texts), dimension)``, rows of unit length."""
        texts = list(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            width = max(len(encodings[i].ids) for i in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            types = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.float32)
            for row, i in enumerate(chunk):
                enc = encodings[i]
                n = len(enc.ids)
                ids[row, :n] = enc.ids
                types[row, :n] = enc.type_ids
                mask[row, :n] = 1.0
            out[chunk] = self._forward(ids, types, mask)
        return out

    def _forward(self, ids: np.ndarray, types: np.ndarray, mask: np.ndarray) -> np.ndarray:
        width = ids.shape[1]
        hidden = self._word[ids] + self._pos[np.arange(width)][None, :, :] + self._type[types]
        hidden = _layer_norm(hidden, self._emb_ln_w, self._emb_ln_b, self._eps)
        return mean_pooled(encoder_stack(hidden, mask, self._layers, self._heads, self._eps), mask)


def encoder_stack(hidden: np.ndarray, mask: np.ndarray, layers: Sequence[_Layer], heads: int, eps: float,
                  position_bias: np.ndarray | None = None) -> np.ndarray:
    """A post-norm transformer encoder (BERT, MPNet) over embedded tokens ``hidden`` (batch, width, dim):
    padded keys (``mask`` 0) are masked out; ``position_bias`` (heads, width, width) is added to every
    layer's attention scores (MPNet's relative positions)."""
    batch, width = hidden.shape[:2]
    head_dim = hidden.shape[-1] // heads
    scale = np.float32(1.0 / np.sqrt(head_dim))
    # Additive mask: padded keys get the dtype's minimum, like transformers does.
    bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :].astype(np.float32)
    if position_bias is not None:
        bias = bias + position_bias[None].astype(np.float32)
    for layer in layers:
        x2 = hidden.reshape(batch * width, -1)
        q = (x2 @ layer.wq + layer.bq).reshape(batch, width, heads, head_dim).transpose(0, 2, 1, 3)
        k = (x2 @ layer.wk + layer.bk).reshape(batch, width, heads, head_dim).transpose(0, 2, 3, 1)
        v = (x2 @ layer.wv + layer.bv).reshape(batch, width, heads, head_dim).transpose(0, 2, 1, 3)
        scores = (q @ k) * scale + bias
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * width, -1)
        attn = context @ layer.wo + layer.bo
        hidden = _layer_norm(attn.reshape(batch, width, -1) + hidden, layer.ln1_w, layer.ln1_b, eps)
        x2 = hidden.reshape(batch * width, -1)
        inter = _gelu(x2 @ layer.wi + layer.bi)
        ffn = inter @ layer.wout + layer.bout
        hidden = _layer_norm(ffn.reshape(batch, width, -1) + hidden, layer.ln2_w, layer.ln2_b, eps)
    return hidden


def mean_pooled(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over the unmasked tokens, L2-normalised: sentence-transformers' pooling for these models."""
    summed = (hidden * mask[:, :, None]).sum(axis=1)
    counts = np.clip(mask.sum(axis=1, keepdims=True), 1e-9, None)
    pooled = summed / counts
    norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
    return (pooled / norms).astype(np.float32)


def encoder_name(name: str | None = None) -> str:
    """``name``, or without one the ``encoder`` setting's, read once per process (the first call).

    :raises ConfigError: an unknown name.
    """
    global _default
    if name is None:
        if _default is None:
            from supportdesk.settings import Settings

            _default = Settings().encoder
        name = _default
    if name not in ENCODER_NAMES:
        raise ConfigError(f"unknown encoder {name!r}: use one of {', '.join(ENCODER_NAMES)}")
    return name


def get_encoder(name: str | None = None) -> MiniLMEncoder:
    """The process-wide encoder ``name`` (default: :func:`encoder_name`'s), loaded on first use
    (thread-safe).

    :raises ConfigError: an unknown name.
    """
    name = encoder_name(name)
    cached = _cached.get(name)
    if cached is not None:
        return cached
    with _lock:
        if name not in _cached:
            if name == NAME:
                _cached[name] = MiniLMEncoder()
            else:
                from supportdesk.rag._mpnet import MPNetEncoder

                _cached[name] = MPNetEncoder()
    return _cached[name]
