"""Running a stage over cases: time each one, keep going past failures, compute the metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Union

from pydantic import BaseModel, Field

from supportdesk.eval.formats import Case
from supportdesk.eval.metrics import CaseResult, Metrics, Prediction, compute_metrics
from supportdesk.eval.sampling import stratified_sample

__all__ = ["EvalReport", "PredictFn", "PredictionLike", "run_eval"]

logger = logging.getLogger(__name__)

PredictionLike = Union[Prediction, CaseResult, Mapping[str, Any]]
"""What a predict function may return: a :class:`Prediction`, a :class:`CaseResult` (its case and
latency are replaced by the runner's) or a mapping of :class:`Prediction` fields."""

PredictFn = Callable[[Case], PredictionLike]
ProgressFn = Callable[[int, int, CaseResult], None]

_MESSAGE_CHARS = 500


class EvalReport(BaseModel):
    """The outcome of one evaluation run: its settings, metrics and every per-case result."""

    name: str = Field(default="eval", description="What was evaluated (stage and data set).")
    settings: dict[str, Any] = Field(default_factory=dict, description="limit, seed, stage options ...")
    started_at: str = ""
    duration_s: float = 0.0
    metrics: Metrics
    results: list[CaseResult]

    def format_table(self) -> str:
        """The metrics as an aligned plain-text table (see :func:`supportdesk.eval.report.format_table`)."""
        from supportdesk.eval.report import format_table

        return format_table(self)

    def write_json(self, path: Path | str) -> Path:
        """Write the metrics and every per-case decision as JSON."""
        from supportdesk.eval.report import write_json

        return write_json(self, path)

    def write_html(self, path: Path | str) -> Path:
        """Write a self-contained HTML report."""
        from supportdesk.eval.report import write_html

        return write_html(self, path)


def _to_result(case: Case, output: PredictionLike, latency_s: float) -> CaseResult:
    if isinstance(output, Prediction):
        fields = output.model_dump(exclude={"case", "latency_s"})
    elif isinstance(output, Mapping):
        fields = {k: v for k, v in output.items() if k not in ("case", "latency_s")}
    else:
        raise TypeError(f"predict returned {type(output).__name__}, not a Prediction, CaseResult or mapping")
    return CaseResult(case=case, latency_s=latency_s, **fields)


def _failed(case: Case, reason: str, exc: BaseException, latency_s: float) -> CaseResult:
    return CaseResult(case=case, latency_s=latency_s, error=reason, error_message=str(exc)[:_MESSAGE_CHARS])


def run_eval(
    cases: Sequence[Case],
    predict: PredictFn,
    *,
    name: str = "eval",
    limit: int | None = None,
    seed: int = 0,
    settings: Mapping[str, Any] | None = None,
    progress: ProgressFn | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> EvalReport:
    """Run ``predict`` on every case (or a stratified sample of ``limit`` cases, see
    :func:`~supportdesk.eval.sampling.stratified_sample`) and score the results.

    Each call is timed with ``clock``. An exception from ``predict`` becomes that case's failure with
    the exception class name as reason; an output that does not validate, reason ``InvalidPrediction``;
    the run goes on.
    ``KeyboardInterrupt`` and other non-``Exception`` errors still stop it. ``progress(i, n, result)``
    is called after each case.
    """
    chosen = stratified_sample(cases, limit, seed=seed)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    run_start = clock()
    results: list[CaseResult] = []
    for index, case in enumerate(chosen, start=1):
        start = clock()
        try:
            output = predict(case)
        except Exception as exc:  # noqa: BLE001 - one case's failure must not end the run
            result = _failed(case, type(exc).__name__, exc, clock() - start)
        else:
            latency = clock() - start
            try:
                result = _to_result(case, output, latency)
            except (TypeError, ValueError) as exc:
                result = _failed(case, "InvalidPrediction", exc, latency)
        if result.error is not None:
            logger.warning("case %s failed: %s: %s", case.id or index, result.error,
                           (result.error_message or "").splitlines()[0] if result.error_message else "")
        results.append(result)
        if progress is not None:
            progress(index, len(chosen), result)
    duration = clock() - run_start
    metrics = compute_metrics(results)
    logger.info("evaluated %d cases in %.1fs (%d failed)", len(results), duration, sum(metrics.failures.values()))
    return EvalReport(
        name=name,
        settings={"limit": limit, "seed": seed, "n_input_cases": len(cases), **(settings or {})},
        started_at=started,
        duration_s=duration,
        metrics=metrics,
        results=results,
    )
