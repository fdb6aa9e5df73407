"""Metrics over per-case results: pure functions, no I/O.

Every metric is computed only over the cases that carry its label and reports that ``n``. A case
that failed (``error`` set) still counts in every metric whose label it has: its missing
prediction is simply wrong. A metric whose ``n`` is 0 has value ``None``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from supportdesk.eval.formats import Case, Route

__all__ = [
    "NONE_LABEL",
    "CaseResult",
    "ConfusionMatrix",
    "MetricValue",
    "Metrics",
    "Prediction",
    "category_accuracy",
    "RiskCoverage",
    "aurc",
    "category_macro_f1",
    "compute_metrics",
    "coverage",
    "full_accuracy",
    "risk_coverage_curve",
    "confusion_matrix",
    "escalation_precision",
    "escalation_recall",
    "failures_by_reason",
    "faq_answer_accuracy",
    "faq_hit_at",
    "latency_percentile",
    "macro_f1",
    "mean_per_case",
    "percentile",
    "priority_accuracy",
    "route_accuracy",
    "wrong_answer_rate",
]

NONE_LABEL = "(none)"
"""The confusion-matrix column of cases that predicted nothing (failed or not classified)."""


class Prediction(BaseModel):
    """What a stage decided for one case; adapters return this, the runner adds case and latency."""

    model_config = ConfigDict(extra="forbid")

    predicted_route: Route | None = None
    predicted_faq_id: str | None = None
    top_faq_ids: list[str] = Field(default_factory=list, description="Best first, at most five are used.")
    predicted_category: str | None = None
    predicted_priority: str | None = None
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    confidence: float | None = Field(default=None, description="The answer confidence the gate compared "
                                     "(top fused score; -inf when an escalation example ranked first).")
    error: str | None = Field(default=None, description="Failure reason (e.g. an exception class name).")
    error_message: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict, description="Free-form: scores, answer text ...")


class CaseResult(Prediction):
    """One case and what the stage decided for it."""

    case: Case
    latency_s: float = 0.0

    @property
    def failed(self) -> bool:
        """True if the case ended in an error."""
        return self.error is not None

    @property
    def top5(self) -> list[str]:
        """The ranked FAQ ids used by hit@k: ``top_faq_ids``, or the predicted id alone if none are given."""
        if self.top_faq_ids:
            return self.top_faq_ids[:5]
        return [self.predicted_faq_id] if self.predicted_faq_id else []


class MetricValue(BaseModel):
    """One figure: its value (``None`` when n is 0), the number of cases behind it, and a unit."""

    name: str
    value: float | None
    n: int
    unit: Literal["ratio", "count", "seconds", "tokens"] = "ratio"
    description: str = ""


class ConfusionMatrix(BaseModel):
    """Counts of expected (rows) against predicted (columns)."""

    name: str
    rows: list[str]
    columns: list[str]
    counts: list[list[int]]

    @property
    def n(self) -> int:
        """Number of cases in the matrix."""
        return sum(map(sum, self.counts))

    def count(self, expected: str, predicted: str) -> int:
        """The cell of one expected and one predicted label (0 when absent)."""
        if expected not in self.rows or predicted not in self.columns:
            return 0
        return self.counts[self.rows.index(expected)][self.columns.index(predicted)]


class RiskCoverage(BaseModel):
    """The risk-coverage curve: answer the most confident cases first; at each coverage (answered over
    all) the risk is the wrong share among those answered. ``operating_point``: (coverage, risk) of
    what the stage actually decided."""

    coverage: list[float]
    risk: list[float]
    aurc: float | None
    operating_point: tuple[float, float] | None = None
    n: int = 0


class Metrics(BaseModel):
    """All metrics of one run."""

    n_cases: int
    values: list[MetricValue]
    confusion: dict[str, ConfusionMatrix] = Field(default_factory=dict)
    risk_coverage: RiskCoverage | None = None
    failures: dict[str, int] = Field(default_factory=dict)

    def __getitem__(self, name: str) -> MetricValue:
        for value in self.values:
            if value.name == name:
                return value
        raise KeyError(name)

    def value(self, name: str) -> float | None:
        """The value of metric ``name``."""
        return self[name].value


def _ratio(hits: int, n: int) -> float | None:
    return hits / n if n else None


def _metric(name: str, hits: int, n: int, description: str) -> MetricValue:
    return MetricValue(name=name, value=_ratio(hits, n), n=n, description=description)


# ------------------------------------------------------------------------------------------- routing


def route_accuracy(results: Sequence[CaseResult]) -> MetricValue:
    """Share of cases with ``expected_route`` whose predicted route equals it."""
    labelled = [r for r in results if r.case.expected_route is not None]
    hits = sum(r.predicted_route == r.case.expected_route for r in labelled)
    return _metric("route_accuracy", hits, len(labelled), "predicted route == expected route")


def escalation_precision(results: Sequence[CaseResult]) -> MetricValue:
    """Of the route-labelled cases predicted ``escalate``, the share that expected ``escalate``."""
    predicted = [r for r in results if r.case.expected_route is not None and r.predicted_route == "escalate"]
    hits = sum(r.case.expected_route == "escalate" for r in predicted)
    return _metric("escalation_precision", hits, len(predicted), "escalate is positive; n = predicted escalate")


def escalation_recall(results: Sequence[CaseResult]) -> MetricValue:
    """Of the cases expecting ``escalate``, the share predicted ``escalate``."""
    expected = [r for r in results if r.case.expected_route == "escalate"]
    hits = sum(r.predicted_route == "escalate" for r in expected)
    return _metric("escalation_recall", hits, len(expected), "escalate is positive; n = expected escalate")


def wrong_answer_rate(results: Sequence[CaseResult]) -> MetricValue:
    """Of the cases answered (predicted ``answer``) that say what a right answer is, the share answered
    wrongly: the case expected ``escalate``, or it names an FAQ entry and another one was given."""
    judged = [
        r for r in results
        if r.predicted_route == "answer" and (r.case.expected_route is not None or r.case.expected_faq_id is not None)
    ]
    wrong = sum(
        r.case.expected_route == "escalate"
        or (r.case.expected_faq_id is not None and r.predicted_faq_id != r.case.expected_faq_id)
        for r in judged
    )
    return _metric("wrong_answer_rate", wrong, len(judged), "answered, but should have escalated or used another entry")


def _route_judged(results: Sequence[CaseResult]) -> list[CaseResult]:
    return [r for r in results if r.case.expected_route is not None or r.case.expected_faq_id is not None]


def _expects_answer(r: CaseResult) -> bool:
    return r.case.expected_route == "answer" or (r.case.expected_route is None and r.case.expected_faq_id is not None)


def _right_if_answered(r: CaseResult) -> bool:
    """An answer would be right: the case expects one, and from the predicted (top) entry if it names one."""
    if not _expects_answer(r):
        return False
    if r.case.expected_faq_id is None:
        return True
    top = r.predicted_faq_id or (r.top_faq_ids[0] if r.top_faq_ids else None)
    return top == r.case.expected_faq_id


def full_accuracy(results: Sequence[CaseResult]) -> MetricValue:
    """Share of route-judged cases decided right: an expected escalation escalated, an expected answer
    answered (from the expected entry when the case names one). Failed cases are wrong."""
    judged = _route_judged(results)
    hits = sum(
        (r.predicted_route == "escalate" and not _expects_answer(r))
        or (r.predicted_route == "answer" and _right_if_answered(r))
        for r in judged
    )
    return _metric("full_accuracy", hits, len(judged), "escalation escalated, answer from the right entry")


def coverage(results: Sequence[CaseResult]) -> MetricValue:
    """Share of route-judged cases answered."""
    judged = _route_judged(results)
    return _metric("coverage", sum(r.predicted_route == "answer" for r in judged), len(judged), "answered over all")


def risk_coverage_curve(results: Sequence[CaseResult], max_points: int = 200) -> RiskCoverage | None:
    """The risk-coverage curve over the route-judged cases that carry a ``confidence`` (see
    :class:`RiskCoverage`); a case answered wrongly if answered counts as risk. AURC: the mean risk
    over every coverage level (ties answered together), lower is better."""
    judged = [r for r in _route_judged(results) if r.confidence is not None]
    if not judged:
        return None
    import numpy as np

    from supportdesk.rag.scoring import risk_coverage

    conf = np.array([r.confidence for r in judged], dtype=np.float64)
    conf = np.where(np.isfinite(conf), conf, -1e9)
    cov, risk, area = risk_coverage(conf, np.array([_right_if_answered(r) for r in judged]))
    keep = np.unique(np.linspace(0, cov.size - 1, min(max_points, cov.size)).round().astype(int))
    wa = wrong_answer_rate(judged)
    answered = sum(r.predicted_route == "answer" for r in judged)
    point = (answered / len(judged), wa.value or 0.0)
    return RiskCoverage(coverage=[float(x) for x in cov[keep]], risk=[float(x) for x in risk[keep]], aurc=area,
                        operating_point=point, n=len(judged))


def aurc(results: Sequence[CaseResult]) -> MetricValue:
    """Area under the risk-coverage curve (lower is better; see :func:`risk_coverage_curve`)."""
    curve = risk_coverage_curve(results)
    return MetricValue(name="aurc", value=None if curve is None else curve.aurc, n=0 if curve is None else curve.n,
                       description="area under the risk-coverage curve (lower is better)")


# ------------------------------------------------------------------------------------------------ faq


def faq_hit_at(results: Sequence[CaseResult], k: int) -> MetricValue:
    """Share of cases with ``expected_faq_id`` whose entry is among the first ``k`` ranked ids
    (:attr:`CaseResult.top5`), whatever the route."""
    labelled = [r for r in results if r.case.expected_faq_id is not None]
    hits = sum(r.case.expected_faq_id in r.top5[:k] for r in labelled)
    return _metric(f"faq_hit@{k}", hits, len(labelled), f"expected entry in the top {k} retrieved")


def faq_answer_accuracy(results: Sequence[CaseResult]) -> MetricValue:
    """Share of cases with ``expected_faq_id`` answered (route ``answer``) from exactly that entry."""
    labelled = [r for r in results if r.case.expected_faq_id is not None]
    hits = sum(r.predicted_route == "answer" and r.predicted_faq_id == r.case.expected_faq_id for r in labelled)
    return _metric("faq_answer_accuracy", hits, len(labelled), "answered from the expected entry")


# ------------------------------------------------------------------------------------- classification


def _accuracy(results: Sequence[CaseResult], expected: Callable[[CaseResult], str | None],
              predicted: Callable[[CaseResult], str | None], name: str, description: str) -> MetricValue:
    labelled = [r for r in results if expected(r) is not None]
    hits = sum(predicted(r) == expected(r) for r in labelled)
    return _metric(name, hits, len(labelled), description)


def category_accuracy(results: Sequence[CaseResult]) -> MetricValue:
    """Share of cases with ``expected_category`` whose predicted category equals it."""
    return _accuracy(results, lambda r: r.case.expected_category, lambda r: r.predicted_category,
                     "category_accuracy", "predicted category == expected")


def priority_accuracy(results: Sequence[CaseResult]) -> MetricValue:
    """Share of cases with ``expected_priority`` whose predicted priority equals it."""
    return _accuracy(results, lambda r: r.case.expected_priority, lambda r: r.predicted_priority,
                     "priority_accuracy", "predicted priority == expected")


def macro_f1(pairs: Sequence[tuple[str, str | None]]) -> float | None:
    """Unweighted mean F1 over the labels that occur as expected or predicted (``None`` predictions
    count against their expected label but form no class). A label's F1 is 0 when it has no hits."""
    if not pairs:
        return None
    labels = sorted({e for e, _ in pairs} | {p for _, p in pairs if p is not None})
    scores = []
    for label in labels:
        tp = sum(e == label and p == label for e, p in pairs)
        fp = sum(e != label and p == label for e, p in pairs)
        fn = sum(e == label and p != label for e, p in pairs)
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores)


def category_macro_f1(results: Sequence[CaseResult]) -> MetricValue:
    """Macro-F1 of the predicted category over cases with ``expected_category`` (see :func:`macro_f1`)."""
    pairs = [(r.case.expected_category, r.predicted_category) for r in results if r.case.expected_category is not None]
    return MetricValue(name="category_macro_f1", value=macro_f1(pairs), n=len(pairs),
                       description="mean per-category F1")


def confusion_matrix(name: str, pairs: Sequence[tuple[str, str | None]],
                     labels: Sequence[str] | None = None) -> ConfusionMatrix:
    """Expected (rows) x predicted (columns) counts. Rows and columns: ``labels`` if given, else every
    label seen, sorted; a :data:`NONE_LABEL` column is added when some prediction is ``None``."""
    seen = sorted({e for e, _ in pairs} | {p for _, p in pairs if p is not None})
    order = list(labels) if labels is not None else seen
    order += [label for label in seen if label not in order]
    columns = order + ([NONE_LABEL] if any(p is None for _, p in pairs) else [])
    counts = Counter((e, p if p is not None else NONE_LABEL) for e, p in pairs)
    return ConfusionMatrix(name=name, rows=order, columns=columns,
                           counts=[[counts[(row, col)] for col in columns] for row in order])


# -------------------------------------------------------------------------------------------- cost/time


def mean_per_case(results: Sequence[CaseResult], field: str, unit: Literal["count", "tokens"]) -> MetricValue:
    """Mean of an integer field (``llm_calls``, ``prompt_tokens``, ``completion_tokens``) over all cases."""
    total = sum(getattr(r, field) for r in results)
    return MetricValue(name=f"{field}_per_case", value=_ratio(total, len(results)), n=len(results), unit=unit,
                       description=f"mean {field} per case (total {total:,})")


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) with linear interpolation between order statistics
    (NumPy's default): position ``(n - 1) * q / 100`` in the sorted values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_percentile(results: Sequence[CaseResult], q: float) -> MetricValue:
    """Latency percentile over all cases (failed ones included: they took that time too)."""
    return MetricValue(name=f"latency_p{q:g}", value=percentile([r.latency_s for r in results], q), n=len(results),
                       unit="seconds", description=f"{q:g}th percentile of per-case seconds")


def failures_by_reason(results: Sequence[CaseResult]) -> dict[str, int]:
    """Number of failed cases per reason, most frequent first."""
    counts = Counter(r.error for r in results if r.error is not None)
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


# ---------------------------------------------------------------------------------------------- all


ROUTES = ("answer", "escalate")
PRIORITIES = ("low", "medium", "high")


def compute_metrics(results: Sequence[CaseResult]) -> Metrics:
    """Every metric, confusion matrix and failure count of ``results``. Metrics and matrices whose
    label no case carries are left out."""
    failures = failures_by_reason(results)
    failure_n = sum(failures.values())
    has_route = any(r.case.expected_route is not None for r in results)
    has_faq = any(r.case.expected_faq_id is not None for r in results)
    has_category = any(r.case.expected_category is not None for r in results)
    has_priority = any(r.case.expected_priority is not None for r in results)
    values: list[MetricValue] = []
    if has_route:
        values += [route_accuracy(results), escalation_precision(results), escalation_recall(results)]
    if has_faq:
        values += [faq_hit_at(results, 1), faq_hit_at(results, 5), faq_answer_accuracy(results)]
    curve = risk_coverage_curve(results) if (has_route or has_faq) else None
    if has_route or has_faq:
        values += [full_accuracy(results), wrong_answer_rate(results), coverage(results)]
        if curve is not None:
            values.append(MetricValue(name="aurc", value=curve.aurc, n=curve.n,
                                      description="area under the risk-coverage curve (lower is better)"))
    if has_category:
        values += [category_accuracy(results), category_macro_f1(results)]
    if has_priority:
        values.append(priority_accuracy(results))
    values += [
        MetricValue(name="failure_rate", value=_ratio(failure_n, len(results)), n=len(results),
                    description="cases that ended in an error"),
        mean_per_case(results, "llm_calls", "count"),
        mean_per_case(results, "prompt_tokens", "tokens"),
        mean_per_case(results, "completion_tokens", "tokens"),
        latency_percentile(results, 50),
        latency_percentile(results, 95),
    ]
    confusion: dict[str, ConfusionMatrix] = {}
    if has_route:
        confusion["route"] = confusion_matrix(
            "route", [(r.case.expected_route, r.predicted_route) for r in results if r.case.expected_route], ROUTES)
    if has_category:
        confusion["category"] = confusion_matrix(
            "category", [(r.case.expected_category, r.predicted_category) for r in results if r.case.expected_category])
    if has_priority:
        confusion["priority"] = confusion_matrix(
            "priority", [(r.case.expected_priority, r.predicted_priority) for r in results if r.case.expected_priority],
            PRIORITIES)
    return Metrics(n_cases=len(results), values=values, confusion=confusion, failures=failures, risk_coverage=curve)
