"""Risk-controlled answer thresholds: the estimated wrong-answer rate stays under the ceiling."""

from __future__ import annotations

import numpy as np
import pytest

from supportdesk.rag.scoring import calibrate, risk_controlled_threshold, risk_coverage


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def test_threshold_keeps_the_mixture_wrong_rate_under_the_ceiling():
    """At the chosen threshold the point estimate is <= max_wrong; a lower threshold would exceed it."""
    rng = np.random.default_rng(1)
    pos, neg = rng.normal(0.7, 0.08, 2000), rng.normal(0.5, 0.08, 2000)
    right = rng.random(2000) > 0.05
    thr, rate, coverage = risk_controlled_threshold(pos, right, neg, max_wrong=0.1, confidence=None)
    answered_pos, answered_neg = (pos >= thr).mean(), (neg >= thr).mean()
    wrong = 0.5 * ((pos >= thr) & ~right).mean() + 0.5 * answered_neg
    assert wrong / (0.5 * answered_pos + 0.5 * answered_neg) <= 0.1 + 1e-9
    assert rate <= 0.1 and 0 < coverage < 1
    looser, _, _ = risk_controlled_threshold(pos, right, neg, max_wrong=0.2, confidence=None)
    assert looser < thr


def test_bootstrap_bound_is_more_cautious_for_few_entries():
    """The entry-bootstrap upper bound never gives a lower threshold than the point estimate."""
    rng = np.random.default_rng(2)
    pos, neg = rng.normal(0.7, 0.1, 300), rng.normal(0.5, 0.1, 300)
    groups = np.repeat(np.arange(10), 30)
    point, _, _ = risk_controlled_threshold(pos, np.ones(300, bool), neg, confidence=None)
    bound, _, _ = risk_controlled_threshold(pos, np.ones(300, bool), neg, pos_groups=groups, neg_groups=groups + 10)
    assert bound >= point


def test_invalid_settings_are_rejected():
    """A ceiling outside (0, 1) or an out-of-scope share outside [0, 1) is a ValueError."""
    with pytest.raises(ValueError):
        risk_controlled_threshold(np.ones(3), np.ones(3, bool), np.zeros(3), max_wrong=0.0)
    with pytest.raises(ValueError):
        risk_controlled_threshold(np.ones(3), np.ones(3, bool), np.zeros(3), oos_share=1.0)


def test_risk_calibration_on_synthetic_kb_reports_its_estimate():
    """calibrate(max_wrong=...) on clustered vectors reports the method, estimate and coverage."""
    rng = np.random.default_rng(3)
    centers = _unit(rng.normal(size=(12, 384)))
    owners = np.repeat(np.arange(12), 6)
    vectors = _unit(centers[owners] + rng.normal(size=(owners.size, 384)) / np.sqrt(384))
    report = calibrate(vectors, owners, 12, max_wrong=0.1)
    assert "risk control" in report.method and report.max_wrong == 0.1
    assert report.estimated_wrong_rate is not None and report.estimated_wrong_rate <= 0.1


def test_calibrate_resamples_entries_and_counts_the_escalation_examples():
    """calibrate() bounds the rate over resampled entries and lets the KB's escalation examples carry
    out-of-scope mass: its threshold is risk_controlled_threshold's with both passed."""
    from supportdesk.rag.scoring import calibration_scores

    rng = np.random.default_rng(5)
    centers = _unit(rng.normal(size=(20, 384)))
    owners = np.repeat(np.arange(20), 8)
    vectors = _unit(centers[owners] + 1.2 * rng.normal(size=(owners.size, 384)) / np.sqrt(384))
    escalate = _unit(rng.normal(size=(30, 384)))
    report = calibrate(vectors, owners, 20, max_wrong=0.1, escalate=escalate)
    scores = calibration_scores(vectors, owners, 20, escalate=escalate)
    expected, _, _ = risk_controlled_threshold(
        scores.positives, scores.positives_right, scores.held_out_entries, max_wrong=0.1,
        escalate_neg=scores.escalate_held_out, pos_groups=scores.positives_entry, neg_groups=scores.held_out_entry)
    texts_only, _, _ = risk_controlled_threshold(scores.positives, scores.positives_right, scores.held_out_entries,
                                                 max_wrong=0.1)
    assert scores.escalate_held_out.size == 30 and report.threshold == pytest.approx(expected)
    assert expected != pytest.approx(texts_only)


def test_risk_coverage_curve_and_area():
    """Perfectly ranked cases: zero risk until the wrong ones; AURC is the mean risk."""
    conf = np.array([0.9, 0.8, 0.7, 0.1])
    correct = np.array([True, True, True, False])
    cov, risk, area = risk_coverage(conf, correct)
    assert list(cov) == [0.25, 0.5, 0.75, 1.0] and list(risk) == [0, 0, 0, 0.25]
    assert area == pytest.approx(0.0625)
