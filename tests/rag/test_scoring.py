"""Entry scoring and threshold calibration on synthetic unit vectors (no encoder needed)."""

from __future__ import annotations

import numpy as np

from supportdesk.rag.scoring import EntryIndex, _best_threshold, calibrate


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _synthetic_kb(n_entries: int = 12, per_entry: int = 6, noise: float = 0.25, seed: int = 1):
    rng = np.random.default_rng(seed)
    centers = _unit(rng.normal(size=(n_entries, 384)))
    owners = np.repeat(np.arange(n_entries), per_entry)
    vectors = _unit(centers[owners] + noise * rng.normal(size=(owners.size, 384)) / np.sqrt(384) * 4)
    return centers, vectors, owners, rng


def test_best_threshold_lies_between_negative_and_positive_ranges():
    """With separable score sets the chosen threshold is above every negative and at most every positive."""
    pos = np.array([0.71, 0.8, 0.93, 0.66])
    neg = np.array([0.12, 0.3, 0.41, 0.2])
    thr, bal, tpr, tnr = _best_threshold(pos, neg, negative_weight=0.3)
    assert neg.max() < thr <= pos.min()
    assert (bal, tpr, tnr) == (1.0, 1.0, 1.0)


def test_heavier_negative_weight_never_lowers_the_threshold():
    """Weighting negatives more moves the threshold up (or keeps it) on overlapping score sets."""
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(0.6, 0.1, 300), rng.normal(0.45, 0.1, 300)
    thresholds = [_best_threshold(pos, neg, w)[0] for w in (0.1, 0.3, 1.0, 3.0)]
    assert thresholds == sorted(thresholds)


def test_calibration_separates_a_tiny_synthetic_kb():
    """Cross-fit calibration on well-separated clusters: perfect held-out rates, and the threshold sits
    between fresh off-topic queries (below) and fresh on-topic paraphrases (above)."""
    centers, vectors, owners, rng = _synthetic_kb()
    report = calibrate(vectors, owners, len(centers), folds=4)
    assert report.positives > 0 and report.negatives > 0
    assert report.true_positive_rate == 1.0 and report.true_negative_rate == 1.0
    index = EntryIndex.build(vectors, owners, len(centers))
    on_topic = _unit(centers + 0.25 * rng.normal(size=centers.shape) / np.sqrt(384) * 4)
    off_topic = _unit(rng.normal(size=(20, 384)))
    on_scores, off_scores = index.score(on_topic), index.score(off_topic)
    assert off_scores.max() < report.threshold < on_scores.max(axis=1).min()
    assert list(on_scores.argmax(axis=1)) == list(range(len(centers)))
