"""``supportdesk calibrate``: fit the FAQ answer threshold on an operator's own labelled traffic.

The default threshold is calibrated on the KB itself (cross-fit, risk-controlled, see
:mod:`supportdesk.rag.scoring`). Real traffic differs from any proxy, so an operator with labelled
cases (``CASES.jsonl``: ``query`` and ``expected_route`` and/or ``expected_faq_id``) can fit the
threshold on them::

    supportdesk calibrate --cases CASES.jsonl [--kb KB.jsonl] [--examples EX.jsonl] [--max-wrong 0.1] [--out FILE]

Every case goes through the FAQ stage as it runs (offline, no web search); the chosen threshold is
the lowest whose wrong-answer rate on the cases (answered but wrong, over answered; a 90% upper
bound over a bootstrap of the cases) stays at or below ``--max-wrong``, at the cases' own
out-of-scope share. The result is written as JSON (default ``$SUPPORTDESK_HOME/calibration.json``,
setting ``SUPPORTDESK_CALIBRATION_FILE``); the pipeline loads it whenever its KB has the same
fingerprint (``kb_fingerprint``), else ignores it with a warning. Before/after figures are printed:
in-sample, and a 5-fold cross-validated estimate of the fitted rule. The scorer itself (signals,
fusion, the KB head) is not refitted: the threshold is the one learned parameter.

Fewer than :data:`MIN_CASES` labelled cases, or fewer than :data:`MIN_ANSWERABLE` expected answers,
is an error (exit 2): a threshold fitted on a handful of cases is noise.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from supportdesk.errors import SupportdeskError
from supportdesk.eval.formats import Case, EvalDataError

__all__ = ["MIN_ANSWERABLE", "MIN_CASES", "CalibrationFit", "add_calibrate_parser", "fit_threshold",
           "run_calibrate_command", "write_calibration"]

logger = logging.getLogger(__name__)

#: Least number of route-labelled cases ``calibrate`` accepts.
MIN_CASES = 50
#: Least number of cases expected to be answered.
MIN_ANSWERABLE = 10
CALIBRATION_VERSION = 1


@dataclass(frozen=True)
class Scored:
    """What the FAQ stage made of the cases: confidence (-inf: escalation example first), whether an
    answer from the top entry would be right, whether the case expects an answer."""

    confidence: np.ndarray
    right_if_answered: np.ndarray
    expects_answer: np.ndarray


@dataclass(frozen=True)
class Outcome:
    """Figures of one threshold over scored cases."""

    threshold: float
    full_accuracy: float
    wrong_answer_rate: float
    coverage: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return {"threshold": self.threshold, "full_accuracy": self.full_accuracy,
                "wrong_answer_rate": self.wrong_answer_rate, "coverage": self.coverage, "n": self.n}


@dataclass(frozen=True)
class CalibrationFit:
    """The fitted threshold with before/after figures."""

    threshold: float
    before: Outcome
    after: Outcome
    after_cv: Outcome | None


def outcome(scored: Scored, threshold: float) -> Outcome:
    """Full accuracy, wrong-answer rate and coverage of answering cases with confidence >= threshold."""
    answered = scored.confidence >= threshold
    right = np.where(answered, scored.right_if_answered, ~scored.expects_answer)
    wrong = answered & ~scored.right_if_answered
    return Outcome(float(threshold), float(right.mean()), float(wrong.sum() / max(answered.sum(), 1)),
                   float(answered.mean()), int(scored.confidence.size))


def fit_threshold(scored: Scored, max_wrong: float, *, seed: int = 0) -> float:
    """The lowest threshold whose bootstrapped 90% upper bound of the wrong-answer rate on ``scored``
    stays at or below ``max_wrong`` (:func:`supportdesk.rag.scoring.risk_controlled_threshold` with the
    cases' own out-of-scope share; each case its own bootstrap unit)."""
    from supportdesk.rag.scoring import risk_controlled_threshold

    pos = scored.expects_answer
    share = float((~pos).mean())
    threshold, _, _ = risk_controlled_threshold(
        scored.confidence[pos], scored.right_if_answered[pos], scored.confidence[~pos],
        max_wrong=max_wrong, oos_share=min(share, 0.99), min_answered=10, seed=seed)
    return threshold


def _cross_validated(scored: Scored, max_wrong: float, folds: int = 5, seed: int = 0) -> Outcome:
    """The fitted rule's figures on cases it was not fitted on (``folds``-fold)."""
    rng = np.random.default_rng(seed)
    fold = rng.permutation(scored.confidence.size) % folds
    answered = np.zeros(scored.confidence.size, dtype=bool)
    for f in range(folds):
        train = fold != f
        part = Scored(scored.confidence[train], scored.right_if_answered[train], scored.expects_answer[train])
        if part.expects_answer.sum() < 2:
            continue
        answered[~train] = scored.confidence[~train] >= fit_threshold(part, max_wrong, seed=seed)
    right = np.where(answered, scored.right_if_answered, ~scored.expects_answer)
    wrong = answered & ~scored.right_if_answered
    return Outcome(float("nan"), float(right.mean()), float(wrong.sum() / max(answered.sum(), 1)),
                   float(answered.mean()), int(scored.confidence.size))


def labelled_cases(cases: list[Case], source: str) -> list[Case]:
    """The cases that say whether they should be answered; too few is an :class:`EvalDataError`."""
    labelled = [c for c in cases if c.expected_route is not None or c.expected_faq_id is not None]
    answerable = [c for c in labelled if c.expected_route != "escalate"]
    if len(labelled) < MIN_CASES:
        raise EvalDataError(
            f"{source}: {len(labelled)} cases carry expected_route or expected_faq_id; calibrate needs at least "
            f"{MIN_CASES}" + (" (the file is unlabelled)" if not labelled else ""))
    if len(answerable) < MIN_ANSWERABLE:
        raise EvalDataError(f"{source}: {len(answerable)} cases expect an answer; calibrate needs at least {MIN_ANSWERABLE}")
    return labelled


def score_cases(pipeline: Any, cases: list[Case]) -> Scored:
    """Run each case through the FAQ stage (code decides; no LLM call) and read its confidence."""
    from supportdesk.eval.stages import prediction_from_rag

    conf, right, expects = [], [], []
    for case in cases:
        prediction = prediction_from_rag(pipeline.run(case.query))
        expects_answer = case.expected_route != "escalate"
        top = prediction.predicted_faq_id or (prediction.top_faq_ids[0] if prediction.top_faq_ids else None)
        conf.append(prediction.confidence if prediction.confidence is not None else float("-inf"))
        right.append(expects_answer and (case.expected_faq_id is None or top == case.expected_faq_id))
        expects.append(expects_answer)
    return Scored(np.asarray(conf, dtype=np.float64), np.asarray(right, dtype=bool), np.asarray(expects, dtype=bool))


def write_calibration(path: Path, payload: dict[str, Any]) -> Path:
    """Write the calibration JSON atomically (temp file + rename)."""
    from supportdesk.rag.knowledge_base import atomic_write_text

    atomic_write_text(Path(path), json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return Path(path)


def add_calibrate_parser(subparsers: Any, name: str = "calibrate") -> argparse.ArgumentParser:
    """Register ``calibrate --cases CASES.jsonl [--kb KB.jsonl] [--examples EX.jsonl] [--max-wrong R] [--out FILE]``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help="fit the FAQ answer threshold on your own labelled cases",
        description="Fit the FAQ answer threshold on labelled traffic so that the wrong-answer rate stays "
                    "at or below --max-wrong; writes the file the pipeline loads.",
    )
    parser.add_argument("--cases", type=Path, required=True,
                        help="CASES.jsonl with expected_route and/or expected_faq_id (at least %d)" % MIN_CASES)
    parser.add_argument("--kb", type=Path, default=None, help="KB.jsonl (default: the configured faq.yaml)")
    parser.add_argument("--examples", type=Path, default=None,
                        help="examples whose category is 'unknown' become the FAQ's escalation examples (as in eval)")
    parser.add_argument("--max-wrong", type=float, default=None,
                        help="ceiling on the wrong-answer rate (default: settings.max_wrong_answer_rate, 0.10)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write (default: SUPPORTDESK_CALIBRATION_FILE, else $SUPPORTDESK_HOME/calibration.json)")
    return parser


def _format(fit: CalibrationFit, max_wrong: float, out: Path) -> str:
    rows = [("before (KB calibration)", fit.before), ("after (in-sample)", fit.after)]
    if fit.after_cv is not None:
        rows.append(("after (5-fold cross-validated)", fit.after_cv))
    lines = [f"{'':32s} {'threshold':>9s} {'full acc':>9s} {'wrong ans':>9s} {'coverage':>9s}"]
    for label, o in rows:
        thr = "" if np.isnan(o.threshold) else f"{o.threshold:.4f}"
        lines.append(f"{label:32s} {thr:>9s} {o.full_accuracy:9.3f} {o.wrong_answer_rate:9.3f} {o.coverage:9.3f}")
    lines.append(f"{fit.before.n} labelled cases, max wrong-answer rate {max_wrong:g}; written to {out}")
    return "\n".join(lines)


def run_calibrate_command(args: argparse.Namespace) -> int:
    """``supportdesk calibrate``: exit 0 with the before/after table, or 2 with one line on bad input."""
    from supportdesk.eval.formats import load_cases
    from supportdesk.settings import load_settings

    try:
        settings = load_settings()
        max_wrong = settings.max_wrong_answer_rate if args.max_wrong is None else float(args.max_wrong)
        if not 0.0 < max_wrong < 1.0:
            raise EvalDataError(f"--max-wrong must lie strictly between 0 and 1, not {max_wrong:g}")
        for flag, path in (("--cases", args.cases), ("--kb", args.kb), ("--examples", args.examples)):
            if path is not None and not Path(path).is_file():
                raise EvalDataError(f"{flag} {path}: no such file")
        cases = labelled_cases(load_cases(args.cases), str(args.cases))
        pipeline = _pipeline(settings, args.kb, args.examples, max_wrong)
        unknown = sorted({c.expected_faq_id for c in cases if c.expected_faq_id and c.expected_faq_id not in pipeline.kb})
        if unknown:
            raise EvalDataError(f"{args.cases}: expected_faq_id not in the KB: {', '.join(unknown[:5])}")
    except (EvalDataError, SupportdeskError, OSError) as exc:
        print(f"supportdesk calibrate: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    scored = score_cases(pipeline, cases)
    threshold = fit_threshold(scored, max_wrong)
    fit = CalibrationFit(threshold, outcome(scored, pipeline.threshold), outcome(scored, threshold),
                         _cross_validated(scored, max_wrong))
    from supportdesk.rag._minilm import get_encoder

    out = args.out or settings.resolved_calibration_file
    payload = {
        "version": CALIBRATION_VERSION, "kb_fingerprint": pipeline.kb.fingerprint(), "kb_source": pipeline.kb.source,
        "encoder": get_encoder(pipeline.encoder).model_id, "threshold": threshold, "max_wrong": max_wrong,
        "cases": str(args.cases), "n_cases": len(cases), "fitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "before": fit.before.as_dict(), "after": fit.after.as_dict(),
        "after_cross_validated": None if fit.after_cv is None else {k: v for k, v in fit.after_cv.as_dict().items()
                                                                      if k != "threshold"},
    }
    try:
        write_calibration(Path(out), payload)
    except OSError as exc:
        print(f"supportdesk calibrate: error: cannot write {out}: {exc}", file=sys.stderr)
        return 2
    print(_format(fit, max_wrong, Path(out)))
    return 0


def _pipeline(settings: Any, kb_path: Path | None, examples: Path | None, max_wrong: float) -> Any:
    """The FAQ stage as ``eval --stage rag`` builds it (offline), without any operator calibration."""
    from supportdesk.eval.stages import _load_kb, escalate_examples
    from supportdesk.llm.scripted import ScriptedModel
    from supportdesk.rag.pipeline import FAQPipeline, load_rag_policy

    policy = load_rag_policy(settings.decision_policy or "embedded", settings.config_dir)
    # The threshold is code's decision, on the gate encoder's score: every case goes to the gate (the
    # prefilter, which decides only what its own stricter bounds allow, stays in front at run time).
    policy = {**policy, "answer_decided_by": "code", "prefilter_encoder": None}
    if kb_path is None:
        from supportdesk._guardrails import screened_knowledge_base
        from supportdesk.rag.knowledge_base import KnowledgeBase

        kb = screened_knowledge_base(KnowledgeBase.from_config(settings.config_dir), settings.config_dir)
    else:
        kb = _load_kb(kb_path, escalate_examples(examples, settings.config_dir))
    return FAQPipeline(kb, ScriptedModel([]), None, policy, cache_dir=Path(settings.home) / "cache",
                       config_dir=settings.config_dir, max_wrong=max_wrong, calibration_file=None)
