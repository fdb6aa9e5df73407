"""The real shipped FAQ (config/faq.yaml) with the embedded policy: three queries that pin its behaviour."""

from __future__ import annotations

import pytest


def test_password_reset_is_answered_from_the_faq(shipped_pipeline):
    """'How do I reset my password?' is answered with the reset-password entry."""
    result = shipped_pipeline.run("How do I reset my password?")
    assert (result.route, result.faq_id, result.sources) == ("answered", "reset-password", ["reset-password"])


def test_double_charge_refund_request_escalates(shipped_pipeline):
    """A specific double charge with a refund request needs a person: escalated, not answered from the FAQ."""
    result = shipped_pipeline.run(
        "I was charged twice for my subscription this month and I want one payment refunded.")
    assert result.route == "escalated" and result.faq_id is None and result.answer is None


@pytest.mark.parametrize("query", ["what's the weather in Paris", "Who won the football world cup in 1998?"])
def test_out_of_domain_query_escalates(shipped_pipeline, query):
    """An out-of-domain question scores below the calibrated threshold and escalates."""
    result = shipped_pipeline.run(query)
    assert result.route == "escalated"
    assert result.confidence is not None and result.confidence < shipped_pipeline.threshold


def test_calibrated_threshold_is_recorded(shipped_pipeline):
    """The shipped pipeline's threshold comes from calibration on the KB, with its report kept."""
    report = shipped_pipeline.calibration
    assert report is not None and report["threshold"] == pytest.approx(shipped_pipeline.threshold)
    assert report["positives"] > 0 and report["negatives"] > 0
