"""Risk-controlled answer thresholds: the estimated wrong-answer rate stays under the ceiling."""

from __future__ import annotations

import numpy as np
import pytest

from supportdesk.rag.scoring import (
    calibrate,
    calibration_scores,
    example_topics,
    near_share_for,
    prefilter_band,
    risk_controlled_threshold,
    risk_coverage,
)


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


def _kb_and_examples(seed: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A KB of 20 clustered entries, 60 examples of 60 unrelated requests and 60 wordings of 3 requests."""
    rng = np.random.default_rng(seed)
    centers = _unit(rng.normal(size=(20, 384)))
    owners = np.repeat(np.arange(20), 8)
    vectors = _unit(centers[owners] + 1.2 * rng.normal(size=(owners.size, 384)) / np.sqrt(384))
    diverse = _unit(rng.normal(size=(60, 384)))
    few = _unit(rng.normal(size=(3, 384)))
    narrow = _unit(few[np.arange(60) % 3] + 1.2 * rng.normal(size=(60, 384)) / np.sqrt(384))
    return vectors, owners, diverse, narrow


def test_escalation_examples_are_counted_in_topics_on_the_kbs_own_scale():
    """Wordings as alike as two texts of one KB entry are one topic; unrelated requests are one each."""
    vectors, owners, diverse, narrow = _kb_and_examples()
    assert np.unique(example_topics(diverse, vectors, owners)).size == 60
    topics = example_topics(narrow, vectors, owners)
    assert np.unique(topics).size == 3
    assert all(np.unique(topics[i::3]).size == 1 for i in range(3))  # each request's wordings together


def test_the_proxy_gives_way_as_the_examples_cover_more_topics():
    """Ten topics weigh as much as the held-out entries; more topics weigh more, none leaves the proxy alone."""
    assert near_share_for(10) == pytest.approx(0.5)
    assert near_share_for(0) == 1.0
    assert near_share_for(90) == pytest.approx(0.1)
    assert near_share_for(3) > near_share_for(30) > near_share_for(300)
    assert near_share_for(10, proxy_topics=30) == pytest.approx(0.75)


def test_many_wordings_of_few_requests_do_not_buy_a_looser_threshold():
    """The same held-out scores counted as 3 topics give a threshold at least as cautious as counted as
    60 independent examples, and calibrate() counts them as 3."""
    vectors, owners, _, narrow = _kb_and_examples()
    scores = calibration_scores(vectors, owners, 20, escalate=narrow)
    common = dict(max_wrong=0.1, escalate_neg=scores.escalate_held_out, pos_groups=scores.positives_entry,
                  neg_groups=scores.held_out_entry)
    by_topic, _, _ = risk_controlled_threshold(scores.positives, scores.positives_right, scores.held_out_entries,
                                               escalate_groups=scores.escalate_topic, **common)
    independent, _, _ = risk_controlled_threshold(scores.positives, scores.positives_right,
                                                  scores.held_out_entries, **common)
    assert np.unique(scores.escalate_topic).size == 3
    assert by_topic > independent
    assert calibrate(vectors, owners, 20, max_wrong=0.1, escalate=narrow).threshold == pytest.approx(by_topic)


def test_the_prefilters_sure_bound_holds_against_each_out_of_scope_sample():
    """With escalation examples the cheap encoder answers alone only above the stricter of the held-out
    entries' and the examples' own thresholds, never at the looser mixture the answer gate uses."""
    rng = np.random.default_rng(3)
    pairs = _unit(rng.normal(size=(10, 384)))  # entries come in pairs of neighbours: held out, one looks like the other
    centers = _unit(pairs[np.arange(20) // 2] + 0.8 * rng.normal(size=(20, 384)) / np.sqrt(384))
    owners = np.repeat(np.arange(20), 8)
    vectors = _unit(centers[owners] + 0.8 * rng.normal(size=(owners.size, 384)) / np.sqrt(384))
    diverse = _unit(rng.normal(size=(60, 384)))
    scores = calibration_scores(vectors, owners, 20, escalate=diverse)
    common = dict(max_wrong=0.02, escalate_neg=scores.escalate_held_out, escalate_groups=scores.escalate_topic,
                  pos_groups=scores.positives_entry, neg_groups=scores.held_out_entry)
    args = (scores.positives, scores.positives_right, scores.held_out_entries)
    each = [risk_controlled_threshold(*args, near_share=share, **common)[0] for share in (1.0, 0.0)]
    mixed, _, _ = risk_controlled_threshold(*args, **common)
    _, sure = prefilter_band(vectors, owners, 20, escalate=diverse, sure_wrong=0.02)
    assert sure == pytest.approx(max(each))
    assert sure > mixed


def test_the_calibration_report_says_how_the_examples_were_counted():
    """The report names the examples, their topics and the share the held-out entries kept."""
    vectors, owners, _, narrow = _kb_and_examples()
    method = calibrate(vectors, owners, 20, max_wrong=0.1, escalate=narrow).method
    assert "60 escalation examples in 3 topics" in method
    assert f"held-out entries {near_share_for(3):.2f}" in method
