"""Metrics on a six-case fixture whose expected values are worked out by hand below."""

from __future__ import annotations

import pytest

from supportdesk.eval.formats import Case
from supportdesk.eval.metrics import (
    NONE_LABEL,
    CaseResult,
    compute_metrics,
    confusion_matrix,
    macro_f1,
    percentile,
)


def _fixture() -> list[CaseResult]:
    """Six cases (e = expected, p = predicted):

    c1 e: answer/A/billing              p: answer A, top [A,B], billing, 1 call, 0.1 s
    c2 e: answer/B/technical            p: answer A, top [A,B,C], billing, 2 calls, 0.2 s
    c3 e: escalate/unknown/low          p: escalate, unknown, low, 0 calls, 0.3 s
    c4 e: escalate/general/medium       p: answer C, top [C], general, high, 1 call, 0.4 s
    c5 e: answer/C                      p: escalate, top [D,E,F,G,H,C] (C is 6th), 1 call, 0.5 s
    c6 e: technical/high                failed with TimeoutError, 0 calls, 4.0 s
    """
    def case(i: int, **labels: str) -> Case:
        return Case(id=f"c{i}", query=f"query {i}", **labels)

    return [
        CaseResult(case=case(1, expected_route="answer", expected_faq_id="A", expected_category="billing"),
                   predicted_route="answer", predicted_faq_id="A", top_faq_ids=["A", "B"],
                   predicted_category="billing", llm_calls=1, prompt_tokens=100, completion_tokens=10, latency_s=0.1),
        CaseResult(case=case(2, expected_route="answer", expected_faq_id="B", expected_category="technical"),
                   predicted_route="answer", predicted_faq_id="A", top_faq_ids=["A", "B", "C"],
                   predicted_category="billing", llm_calls=2, prompt_tokens=200, completion_tokens=20, latency_s=0.2),
        CaseResult(case=case(3, expected_route="escalate", expected_category="unknown", expected_priority="low"),
                   predicted_route="escalate", predicted_category="unknown", predicted_priority="low", latency_s=0.3),
        CaseResult(case=case(4, expected_route="escalate", expected_category="general", expected_priority="medium"),
                   predicted_route="answer", predicted_faq_id="C", top_faq_ids=["C"], predicted_category="general",
                   predicted_priority="high", llm_calls=1, latency_s=0.4),
        CaseResult(case=case(5, expected_route="answer", expected_faq_id="C"), predicted_route="escalate",
                   top_faq_ids=["D", "E", "F", "G", "H", "C"], llm_calls=1, latency_s=0.5),
        CaseResult(case=case(6, expected_category="technical", expected_priority="high"), error="TimeoutError",
                   latency_s=4.0),
    ]


def test_route_and_escalation_metrics() -> None:
    """Route accuracy 3/5 (c4, c5 wrong); escalation precision 1/2 (c3 of c3,c5); recall 1/2 (c3 of c3,c4)."""
    m = compute_metrics(_fixture())
    assert (m.value("route_accuracy"), m["route_accuracy"].n) == (pytest.approx(3 / 5), 5)
    assert (m.value("escalation_precision"), m["escalation_precision"].n) == (pytest.approx(1 / 2), 2)
    assert (m.value("escalation_recall"), m["escalation_recall"].n) == (pytest.approx(1 / 2), 2)


def test_faq_hit_at_k_only_over_cases_with_an_expected_entry() -> None:
    """hit@1 = 1/3 (c1), hit@5 = 2/3 (c1, c2; c5's entry is 6th), answered-right = 1/3, each with n = 3."""
    m = compute_metrics(_fixture())
    assert (m.value("faq_hit@1"), m["faq_hit@1"].n) == (pytest.approx(1 / 3), 3)
    assert (m.value("faq_hit@5"), m["faq_hit@5"].n) == (pytest.approx(2 / 3), 3)
    assert (m.value("faq_answer_accuracy"), m["faq_answer_accuracy"].n) == (pytest.approx(1 / 3), 3)


def test_wrong_answer_rate_counts_wrong_entry_and_answered_escalations() -> None:
    """Answered c1, c2, c4: c2 used the wrong entry and c4 should have escalated, so 2/3."""
    m = compute_metrics(_fixture())
    assert (m.value("wrong_answer_rate"), m["wrong_answer_rate"].n) == (pytest.approx(2 / 3), 3)


def test_category_accuracy_and_macro_f1_count_failures_as_wrong() -> None:
    """Category accuracy 3/5 (c2 and failed c6 wrong); macro-F1 = (2/3 + 1 + 0 + 1) / 4 = 2/3 over
    billing (tp1 fp1), general (tp1), technical (tp0), unknown (tp1)."""
    m = compute_metrics(_fixture())
    assert (m.value("category_accuracy"), m["category_accuracy"].n) == (pytest.approx(3 / 5), 5)
    assert (m.value("category_macro_f1"), m["category_macro_f1"].n) == (pytest.approx(2 / 3), 5)


def test_priority_accuracy() -> None:
    """Priority accuracy 1/3: c3 right, c4 (high for medium) and failed c6 wrong."""
    m = compute_metrics(_fixture())
    assert (m.value("priority_accuracy"), m["priority_accuracy"].n) == (pytest.approx(1 / 3), 3)


def test_cost_latency_and_failures() -> None:
    """Calls 5/6 a case, prompt tokens 300/6; latency p50 = 0.35 (between 0.3 and 0.4), p95 = 0.5 + 0.75 * 3.5."""
    m = compute_metrics(_fixture())
    assert m.value("llm_calls_per_case") == pytest.approx(5 / 6)
    assert m.value("prompt_tokens_per_case") == pytest.approx(50)
    assert m.value("completion_tokens_per_case") == pytest.approx(5)
    assert m.value("latency_p50") == pytest.approx(0.35)
    assert m.value("latency_p95") == pytest.approx(3.125)
    assert m.failures == {"TimeoutError": 1}
    assert m.value("failure_rate") == pytest.approx(1 / 6)
    assert m["latency_p50"].n == 6


def test_confusion_matrices() -> None:
    """Route matrix [[2,1],[1,1]]; category matrix puts failed c6 in the (none) column; priority rows low..high."""
    m = compute_metrics(_fixture())
    route = m.confusion["route"]
    assert route.rows == ["answer", "escalate"] and route.counts == [[2, 1], [1, 1]]
    category = m.confusion["category"]
    assert category.columns[-1] == NONE_LABEL
    assert category.count("technical", "billing") == 1
    assert category.count("technical", NONE_LABEL) == 1
    assert category.n == 5
    priority = m.confusion["priority"]
    assert priority.rows == ["low", "medium", "high"]
    assert priority.count("medium", "high") == 1 and priority.count("high", NONE_LABEL) == 1


def test_metrics_without_labels_are_left_out() -> None:
    """A run whose cases carry only categories reports no route, FAQ or priority metric."""
    results = [CaseResult(case=Case(query="q", expected_category="billing"), predicted_category="billing")]
    names = {v.name for v in compute_metrics(results).values}
    assert "category_accuracy" in names
    assert not names & {"route_accuracy", "faq_hit@1", "priority_accuracy", "wrong_answer_rate"}


def test_macro_f1_and_percentile_edge_cases() -> None:
    """No pairs gives None; a perfect run gives 1.0; a single latency is every percentile."""
    assert macro_f1([]) is None
    assert macro_f1([("a", "a"), ("b", "b")]) == 1.0
    assert percentile([2.0], 95) == 2.0
    assert percentile([], 50) is None


def test_confusion_matrix_keeps_given_label_order_and_adds_unseen() -> None:
    """Given labels come first in their order; a predicted label outside them is appended."""
    matrix = confusion_matrix("x", [("b", "a"), ("a", "z")], labels=["b", "a"])
    assert matrix.rows == ["b", "a", "z"] and matrix.count("a", "z") == 1


def test_full_accuracy_coverage_and_wrong_answer_rate():
    """Route-judged cases c1-c5 (c6 has no route): right = c1 (answer A), c3 (escalated) -> 2/5;
    answered c1, c2, c4 -> coverage 3/5, wrong c2, c4 -> 2/3."""
    metrics = compute_metrics(_fixture())
    assert metrics.value("full_accuracy") == pytest.approx(2 / 5)
    assert metrics.value("coverage") == pytest.approx(3 / 5)
    assert metrics.value("wrong_answer_rate") == pytest.approx(2 / 3)


def test_risk_coverage_curve_marks_the_operating_point():
    """With confidences, the curve runs from the most confident case; AURC is reported and the
    operating point is (coverage, wrong-answer rate) of what was decided."""
    results = _fixture()
    for result, conf in zip(results, (0.9, 0.8, 0.1, 0.7, 0.2, None), strict=True):
        result.confidence = conf
    metrics = compute_metrics(results)
    curve = metrics.risk_coverage
    assert curve is not None and curve.n == 5
    # order c1 (right), c2 (wrong), c4 (wrong), c5 (right if answered: top D != C -> wrong), c3 (wrong)
    assert curve.risk == pytest.approx([0.0, 0.5, 2 / 3, 3 / 4, 4 / 5])
    assert metrics.value("aurc") == pytest.approx(sum([0.0, 0.5, 2 / 3, 3 / 4, 4 / 5]) / 5)
    assert curve.operating_point == pytest.approx((3 / 5, 2 / 3))
    from supportdesk.eval.report import risk_coverage_svg

    assert "operating point" in risk_coverage_svg(curve)
