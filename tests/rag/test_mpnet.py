"""The NumPy all-mpnet-base-v2 encoder: reference vectors, its int8 package data, the setting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import numpy as np
import pytest

from supportdesk.errors import ConfigError
from supportdesk.rag import _minilm, _mpnet
from supportdesk.settings import Settings

REFERENCE = json.loads((Path(__file__).parent / "fixtures" / "mpnet_reference.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def encoder() -> _mpnet.MPNetEncoder:
    """The encoder over the packaged int8 weights (once per module)."""
    return _mpnet.MPNetEncoder()


def test_encoder_matches_sentence_transformers_reference(encoder):
    """The six reference sentences (those of the MiniLM fixture) embed with cosine above 0.9995 to
    sentence-transformers' own float32 all-mpnet-base-v2 vectors (today 0.9998; the packaged weights
    are int8), 768 dimensions, unit rows, input order kept."""
    assert REFERENCE["model"] == _mpnet.MODEL_NAME
    got = encoder.encode(REFERENCE["sentences"])
    want = np.asarray(REFERENCE["vectors"], dtype=np.float32)
    assert got.shape == want.shape == (6, 768)
    assert float((got * want).sum(axis=1).min()) > 0.9995
    assert float(np.abs(got - want).max()) < 0.01
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(encoder.encode(REFERENCE["sentences"][::-1]), got[::-1], atol=1e-5)
    assert encoder.model_id.startswith(_mpnet.MODEL_NAME + "@")


def test_similarities_keep_their_order_under_int8(encoder):
    """What the gate compares survives quantisation: the reference pairs' similarities move by less than
    0.005, and two pairs more than 0.01 apart keep their order."""
    want = np.asarray(REFERENCE["vectors"], dtype=np.float32)
    got = encoder.encode(REFERENCE["sentences"])
    upper = np.triu_indices(len(want), 1)
    sims_got, sims_want = (got @ got.T)[upper], (want @ want.T)[upper]
    assert float(np.abs(sims_got - sims_want).max()) < 0.005
    apart = np.abs(sims_want[:, None] - sims_want[None, :]) > 0.01
    assert np.array_equal((sims_got[:, None] > sims_got[None, :])[apart], (sims_want[:, None] > sims_want[None, :])[apart])


def test_relative_position_buckets_follow_mpnet():
    """Near offsets get exact buckets, each direction its own half, far offsets share the last bucket."""
    offsets = np.arange(-200, 201)
    buckets = _mpnet._bucket(offsets)
    assert buckets[offsets == 0] == 0
    assert set(buckets[(offsets > 0) & (offsets < 8)]) == set(range(17, 24))   # keys after the query
    assert set(buckets[(offsets < 0) & (offsets > -8)]) == set(range(1, 8))    # keys before it
    assert buckets.min() >= 0 and buckets.max() == 31
    assert buckets[offsets == 200] == buckets[offsets == 128] == 31


def test_quantize_refuses_another_file_and_round_trips_a_matrix(tmp_path, monkeypatch):
    """quantize() writes the package data only from the pinned float32 file; a matrix it writes
    dequantises to within half a step of each group's scale, transposed ones included."""
    (tmp_path / "model.safetensors").write_bytes(b"not the model")
    with pytest.raises(ConfigError, match="not all-mpnet-base-v2's published file"):
        _mpnet.quantize(tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(8, 2 * _mpnet.GROUP)).astype(np.float32)
    groups = weight.reshape(8, -1, _mpnet.GROUP)
    scale = (np.abs(groups).max(axis=2) / 127.0).astype(np.float16)
    q = np.round(groups / scale[..., None].astype(np.float32)).astype(np.int8).reshape(weight.shape)
    back = _mpnet._dequantized({"w": q, "w.scale": scale, "t": np.ascontiguousarray(q.T),
                                "t.scale_t": np.ascontiguousarray(scale.T)})
    step = np.repeat(scale.astype(np.float32), _mpnet.GROUP, axis=1)
    assert np.all(np.abs(back["w"] - weight) <= step / 2 + 1e-6)
    np.testing.assert_array_equal(back["t"], back["w"].T)
    assert set(back) == {"w", "t"}


def test_a_broken_install_is_a_one_line_error(tmp_path, monkeypatch):
    """Package data without its weights: a ConfigError naming the missing file and the fix."""
    folder = tmp_path / "supportdesk" / "rag"
    (folder / "mpnet_model").mkdir(parents=True)
    monkeypatch.setattr(_mpnet.resources, "files", lambda package: folder)
    with pytest.raises(ConfigError, match="model-int8-1.safetensors is missing: reinstall supportdesk"):
        _mpnet.model_dir()


def test_the_encoder_setting_is_checked_and_read_once(monkeypatch):
    """An unknown SUPPORTDESK_ENCODER is a one-line ConfigError; get_encoder() follows the setting and
    get_encoder(name) picks one explicitly."""
    monkeypatch.setenv("SUPPORTDESK_ENCODER", "bert-large")
    with pytest.raises(ConfigError, match="SUPPORTDESK_ENCODER"):
        Settings()
    with pytest.raises(ConfigError, match="unknown encoder"):
        _minilm.get_encoder("bert-large")
    assert get_args(Settings.model_fields["encoder"].annotation) == _minilm.ENCODER_NAMES  # one list of names
    monkeypatch.setattr(_minilm, "_default", None)
    monkeypatch.setenv("SUPPORTDESK_ENCODER", "all-MiniLM-L6-v2")
    assert _minilm.get_encoder().model_id.startswith(_minilm.MODEL_NAME)
    assert _minilm.get_encoder("all-MiniLM-L6-v2") is _minilm.get_encoder()
