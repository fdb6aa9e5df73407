"""Calibration at a target escalation rate of held-out entries (Neyman-Pearson), on synthetic vectors."""

from __future__ import annotations

import numpy as np
import pytest

from supportdesk.rag.scoring import _threshold_at_tnr, calibrate, calibration_scores


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _kb(n_entries: int = 10, per_entry: int = 5, seed: int = 2):
    rng = np.random.default_rng(seed)
    centers = _unit(rng.normal(size=(n_entries, 384)))
    owners = np.repeat(np.arange(n_entries), per_entry)
    vectors = _unit(centers[owners] + rng.normal(size=(owners.size, 384)) / np.sqrt(384))
    return vectors, owners


def test_threshold_at_tnr_escalates_the_target_share_of_negatives():
    """The threshold is the lowest that puts at least the target share of negatives below it."""
    neg = np.linspace(0.1, 0.6, 100)
    pos = np.full(10, 0.9)
    for target in (0.0, 0.25, 0.33, 0.9, 1.0):
        thr, _bal, tpr, tnr = _threshold_at_tnr(pos, neg, target)
        assert tnr >= target
        assert tnr - target < 0.02 or target == 0.0
        assert tpr == 1.0
    with pytest.raises(ValueError):
        _threshold_at_tnr(pos, neg, 1.5)


def test_higher_target_never_lowers_the_threshold():
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(0.6, 0.1, 200), rng.normal(0.45, 0.1, 200)
    thresholds = [_threshold_at_tnr(pos, neg, t)[0] for t in (0.1, 0.33, 0.5, 0.9)]
    assert thresholds == sorted(thresholds)


def test_target_calibration_reports_its_method_and_rates():
    vectors, owners = _kb()
    report = calibrate(vectors, owners, 10, folds=5, target_tnr=0.33)
    assert report.true_negative_rate >= 0.33
    assert "0.33" in report.method
    assert report.positives > 0 and report.negatives > 0


def test_kb_without_paraphrases_calibrates_on_held_out_entries_only():
    """One text per entry: no positives can be held out, yet a target TNR still gives a threshold;
    the weighted objective needs positives and says so."""
    vectors, owners = _kb(per_entry=1)
    scores = calibration_scores(vectors, owners, 10, folds=5)
    assert scores.positives.size == 0 and scores.held_out_entries.size == 10
    report = calibrate(vectors, owners, 10, folds=5, target_tnr=0.5)
    assert report.positives == 0 and report.true_negative_rate >= 0.5
    with pytest.raises(ValueError, match="target TNR"):
        calibrate(vectors, owners, 10, folds=5)


def test_extra_negatives_are_scored_by_every_fold():
    vectors, owners = _kb()
    extra = _unit(np.random.default_rng(5).normal(size=(7, 384)))
    scores = calibration_scores(vectors, owners, 10, folds=5, extra_negatives=extra)
    assert scores.extra_negatives.size == 7 * 5
    assert scores.positives_right.dtype == bool and scores.positives_right.size == scores.positives.size
