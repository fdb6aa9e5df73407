"""Measured answer quality on real data: file formats, dataset converters, metrics, the runner and
its reports. See the README section "Evaluation" for the file formats and commands."""

from supportdesk.eval.converters import DATASETS, ConversionResult, convert_dataset
from supportdesk.eval.formats import (
    Case,
    EvalDataError,
    KBEntry,
    LabeledExample,
    load_cases,
    load_examples,
    load_kb,
    write_jsonl,
)
from supportdesk.eval.metrics import CaseResult, ConfusionMatrix, Metrics, MetricValue, Prediction, compute_metrics
from supportdesk.eval.runner import EvalReport, run_eval
from supportdesk.eval.sampling import stratified_sample

__all__ = [
    "DATASETS",
    "Case",
    "CaseResult",
    "ConfusionMatrix",
    "ConversionResult",
    "EvalDataError",
    "EvalReport",
    "KBEntry",
    "LabeledExample",
    "MetricValue",
    "Metrics",
    "Prediction",
    "compute_metrics",
    "convert_dataset",
    "load_cases",
    "load_examples",
    "load_kb",
    "run_eval",
    "stratified_sample",
    "write_jsonl",
]
