"""Sampling, runner, stage adapters, file formats and the rendered reports."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from supportdesk.eval import Case, EvalDataError, Prediction, load_cases, run_eval, stratified_sample, write_jsonl
from supportdesk.eval.cli import add_eval_data_parser, finish_eval
from supportdesk.eval.report import render_html
from supportdesk.eval.stages import prediction_from_rag, prediction_from_state, prediction_from_triage


def _cases() -> list[Case]:
    """60 'a', 30 'b', 9 'c', 1 'd' faq cases."""
    counts = {"a": 60, "b": 30, "c": 9, "d": 1}
    return [Case(id=f"{k}{i}", query=f"{k} {i}", expected_faq_id=k) for k, n in counts.items() for i in range(n)]


def test_stratified_sample_is_deterministic_and_keeps_input_order() -> None:
    """The same seed gives the same sample, in input order; another seed gives another sample."""
    cases = _cases()
    first = stratified_sample(cases, 20, seed=1)
    assert first == stratified_sample(cases, 20, seed=1)
    assert first != stratified_sample(cases, 20, seed=2)
    positions = [cases.index(c) for c in first]
    assert positions == sorted(positions)


def test_stratified_sample_keeps_proportions() -> None:
    """20 of 60/30/9/1 gives 12/6/2 by largest remainder (quotas 12, 6, 1.8, 0.2)."""
    counts = Counter(c.expected_faq_id for c in stratified_sample(_cases(), 20, seed=3))
    assert counts == {"a": 12, "b": 6, "c": 2}


def test_stratified_sample_without_or_with_large_limit_returns_all() -> None:
    """No limit, or one at least the number of cases, returns every case."""
    cases = _cases()
    assert stratified_sample(cases, None) == cases
    assert stratified_sample(cases, 500) == cases


def test_run_eval_records_failures_and_keeps_going() -> None:
    """An exception becomes that case's failure reason; a bad output is InvalidPrediction; others still run."""
    cases = [Case(id=str(i), query=q, expected_route="answer") for i, q in enumerate(["ok", "boom", "bad", "dict"])]

    def predict(case: Case) -> object:
        if case.query == "boom":
            raise TimeoutError("too slow")
        if case.query == "bad":
            return {"predicted_route": "maybe"}
        if case.query == "dict":
            return {"predicted_route": "answer", "llm_calls": 2}
        return Prediction(predicted_route="answer")

    ticks = iter(range(100))
    report = run_eval(cases, predict, clock=lambda: float(next(ticks)))
    assert [r.error for r in report.results] == [None, "TimeoutError", "InvalidPrediction", None]
    assert report.results[1].error_message == "too slow"
    assert all(r.latency_s == 1.0 for r in report.results)
    assert report.metrics.failures == {"InvalidPrediction": 1, "TimeoutError": 1}
    assert report.metrics.value("route_accuracy") == pytest.approx(2 / 4)


def test_run_eval_with_limit_samples_and_records_settings() -> None:
    """--limit and --seed sample the cases and are kept in the report's settings."""
    report = run_eval(_cases(), lambda case: Prediction(top_faq_ids=[case.expected_faq_id or ""]), limit=10, seed=5)
    assert len(report.results) == 10
    assert report.settings["limit"] == 10 and report.settings["n_input_cases"] == 100
    assert report.metrics.value("faq_hit@1") == 1.0


def _report() -> object:
    cases = [
        Case(id="1", query="refund <now>", expected_route="escalate", expected_category="billing",
             expected_priority="high"),
        Case(id="2", query="reset password", expected_route="answer", expected_faq_id="pw",
             expected_category="technical", expected_priority="low"),
    ]
    answers = {"1": Prediction(predicted_route="answer", predicted_faq_id="pw", predicted_category="technical",
                               predicted_priority="medium"),
               "2": Prediction(predicted_route="answer", predicted_faq_id="pw", top_faq_ids=["pw"],
                               predicted_category="technical", predicted_priority="low")}
    return run_eval(cases, lambda case: answers[case.id or ""], name="demo")


def test_html_report_is_self_contained_with_matrices_and_histogram() -> None:
    """The HTML holds route/category/priority heatmaps, an SVG histogram, escaped text and no external assets."""
    page = render_html(_report())  # type: ignore[arg-type]
    for name in ("route", "category", "priority"):
        assert f'data-matrix="{name}"' in page
    assert "<svg" in page and "<style>" in page
    assert "refund &lt;now&gt;" in page and "refund <now>" not in page
    assert "<link" not in page and "<script" not in page and "src=" not in page


def test_table_and_json_outputs(tmp_path: Path) -> None:
    """The text table lists every metric with its n; the JSON holds metrics and every per-case decision."""
    report = _report()
    text = finish_eval(report, json_out=tmp_path / "r.json", html_out=tmp_path / "r.html")  # type: ignore[arg-type]
    assert "route_accuracy" in text and "confusion: category" in text
    line = next(line for line in text.splitlines() if line.startswith("route_accuracy"))
    assert line.split()[1:3] == ["0.500", "2"]
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert [r["predicted_route"] for r in data["results"]] == ["answer", "answer"]
    assert data["metrics"]["confusion"]["route"]["counts"] == [[1, 0], [1, 0]]
    assert (tmp_path / "r.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_rag_adapter_maps_routes_candidates_and_usage() -> None:
    """'answered' -> answer, candidate ids ranked (deduplicated, five at most), completions counted."""
    result = SimpleNamespace(
        route="answered", faq_id="a",
        top_candidates=[("a", 0.9), ("b", 0.8), ("a", 0.7), ("c", 0.6), ("d", 0.5), ("e", 0.4), ("f", 0.3)],
        completions=[SimpleNamespace(prompt_tokens=10, completion_tokens=3)] * 2,
    )
    prediction = prediction_from_rag(result)
    assert prediction.predicted_route == "answer" and prediction.predicted_faq_id == "a"
    assert prediction.top_faq_ids == ["a", "b", "c", "d", "e"]
    assert (prediction.llm_calls, prediction.prompt_tokens, prediction.completion_tokens) == (2, 20, 6)
    escalated = prediction_from_rag(SimpleNamespace(route="escalated", faq_id=None, top_candidates=[], completions=[]))
    assert escalated.predicted_route == "escalate" and escalated.error is None
    assert prediction_from_rag(SimpleNamespace(route="weird", faq_id=None, top_candidates=[])).error == "UnknownRoute"


def test_triage_and_flow_adapters() -> None:
    """Triage gives category/priority; a ticketed flow run is escalate with its triage; a failed run is an error."""
    from supportdesk.models import Classification, CustomerTicketState, TicketStatus

    triage = prediction_from_triage(Classification(category="billing", priority="high"))
    assert (triage.predicted_category, triage.predicted_priority) == ("billing", "high")
    ticket = CustomerTicketState(status=TicketStatus.TICKET_CREATED, category="technical", priority="low", llm_calls=3)
    flow = prediction_from_state(ticket)
    assert (flow.predicted_route, flow.predicted_category, flow.llm_calls) == ("escalate", "technical", 3)
    answered = prediction_from_state(CustomerTicketState(status=TicketStatus.FAQ_ANSWERED, faq_id="pw"))
    assert (answered.predicted_route, answered.predicted_faq_id, answered.predicted_category) == ("answer", "pw", None)
    failed = prediction_from_state(CustomerTicketState(status=TicketStatus.FAILED, failure_reason="llm down"))
    assert (failed.error, failed.error_message, failed.predicted_route) == ("flow_failed", "llm down", None)


def test_cases_file_rejects_unknown_keys_with_line_number(tmp_path: Path) -> None:
    """A misspelt label is an EvalDataError naming file and line; valid files round-trip."""
    path = tmp_path / "cases.jsonl"
    write_jsonl(path, [Case(query="q", expected_route="answer", id="1")])
    assert load_cases(path) == [Case(query="q", expected_route="answer", id="1")]
    path.write_text('{"query": "q"}\n\n{"query": "q", "expected_faq": "x"}\n', encoding="utf-8")
    with pytest.raises(EvalDataError, match=r"cases.jsonl:3"):
        load_cases(path)


def test_eval_data_parser_accepts_the_documented_command() -> None:
    """`eval-data DATASET --source DIR --out DIR --split validation` parses."""
    parser = argparse.ArgumentParser()
    add_eval_data_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["eval-data", "clinc150", "--source", "d", "--out", "o", "--split", "validation"])
    assert (args.dataset, args.split, args.source, args.seed) == ("clinc150", "validation", Path("d"), 13)
