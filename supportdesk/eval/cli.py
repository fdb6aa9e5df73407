"""Argument parsing and output for ``supportdesk eval-data`` and ``supportdesk eval``.

The package CLI owns the sub-command registry; it registers the two commands and dispatches to
their runners, which print to stdout and return the exit code (2, with a one-line message on
stderr, for a missing or malformed file)::

    add_eval_parser(subparsers)          # supportdesk eval --kb KB --cases CASES [--stage rag|triage|flow] ...
    add_eval_data_parser(subparsers)     # supportdesk eval-data DATASET --source DIR --out DIR ...
    exit_code = run_eval_command(args)   # or run_eval_data_command(args)

The pieces are usable on their own::

    cases = load_cases(args.cases)
    report = run_eval(cases, predict, name=..., limit=args.limit, seed=args.seed)
    print(finish_eval(report, json_out=args.json, html_out=args.report))
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from supportdesk.errors import SupportdeskError
from supportdesk.eval.converters import DATASETS, DEFAULT_SEED, convert_dataset
from supportdesk.eval.formats import EvalDataError
from supportdesk.eval.runner import EvalReport

__all__ = [
    "EXIT_DATA",
    "STAGES",
    "add_eval_arguments",
    "add_eval_data_parser",
    "add_eval_parser",
    "finish_eval",
    "run_eval_command",
    "run_eval_data",
    "run_eval_data_command",
    "stage_cases",
]

logger = logging.getLogger(__name__)

STAGES = ("rag", "triage", "flow")
EXIT_OK = 0
EXIT_DATA = 2


def add_eval_data_parser(subparsers: Any, name: str = "eval-data") -> argparse.ArgumentParser:
    """Register ``eval-data DATASET --source DIR --out DIR [--split test|validation]`` on ``subparsers``
    (the object ``ArgumentParser.add_subparsers()`` returns)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help="convert a public dataset into KB/cases/examples JSONL files",
        description="Convert a public support dataset into supportdesk's evaluation files.",
    )
    parser.add_argument("dataset", choices=DATASETS)
    parser.add_argument("--source", type=Path, required=True,
                        help="datasets folder (holding <dataset>/ and category_mapping.json) or the dataset's folder")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--split", choices=("test", "validation"), default="test",
                        help="which cases to write: tune on validation, report on test (default: test)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the fixed splits (default: %(default)s)")
    parser.add_argument("--mapping", type=Path, default=None, help="category_mapping.json (default: found next to --source)")
    parser.add_argument("--max-paraphrases", type=int, default=None,
                        help="clinc150: at most this many train utterances per KB entry")
    parser.add_argument("--kb-paraphrases", action="store_true",
                        help="stackfaq: put the validation rephrasings into the KB (test split only)")
    return parser


def run_eval_data(args: argparse.Namespace) -> str:
    """Run the conversion ``args`` describe; return the summary to print."""
    result = convert_dataset(
        args.dataset, args.source, args.out, split=args.split, mapping=args.mapping, seed=args.seed,
        max_paraphrases=args.max_paraphrases, kb_paraphrases=args.kb_paraphrases,
    )
    return result.summary()


def add_eval_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the stage-independent options of ``supportdesk eval`` to ``parser``."""
    parser.add_argument("--cases", type=Path, required=True, help="CASES.jsonl to evaluate")
    parser.add_argument("--limit", type=int, default=None, help="evaluate a stratified sample of N cases")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample (default: %(default)s)")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="write metrics and every case as JSON")
    parser.add_argument("--report", type=Path, default=None, metavar="OUT.html", help="write a self-contained HTML report")
    return parser


def finish_eval(report: EvalReport, *, json_out: Path | None = None, html_out: Path | None = None) -> str:
    """Write the requested outputs; return the metrics table (plus where the files went) to print."""
    lines = [report.format_table()]
    written = []
    if json_out is not None:
        written.append(f"JSON:   {report.write_json(json_out)}")
    if html_out is not None:
        written.append(f"report: {report.write_html(html_out)}")
    if written:
        lines += ["", *written]
    return "\n".join(lines)


def run_eval_data_command(args: argparse.Namespace) -> int:
    """``supportdesk eval-data``: convert, print the summary; exit 2 with one line on bad input."""
    try:
        print(run_eval_data(args))
    except (EvalDataError, SupportdeskError, OSError) as exc:
        return _fail("eval-data", exc)
    return EXIT_OK


def add_eval_parser(subparsers: Any, name: str = "eval") -> argparse.ArgumentParser:
    """Register ``eval --kb KB.jsonl --cases CASES.jsonl [--examples EX.jsonl] [--stage rag|triage|flow]
    [--limit N --seed S] [--json OUT] [--report OUT.html]`` on ``subparsers``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help="measure answer quality on evaluation cases (offline)",
        description="Run one stage (FAQ RAG, triage or the whole flow) over evaluation cases and print the metrics.",
    )
    parser.add_argument("--stage", choices=STAGES, default="flow",
                        help="rag: the FAQ stage; triage: the code classifier; flow: the whole flow (default: flow)")
    parser.add_argument("--kb", type=Path, default=None, help="KB.jsonl the FAQ stage answers from (rag, flow)")
    parser.add_argument("--examples", type=Path, default=None,
                        help="labelled examples (query, category[, priority]); those labelled 'unknown' are the "
                             "FAQ's escalation examples (queries it must not answer)")
    parser.add_argument("--classifier-examples", type=Path, default=None,
                        help="triage/flow: classify by nearest neighbour over these examples (a dataset's own "
                             "training rows, a yardstick) instead of the shipped classifier "
                             "(config/triage_examples.yaml and its rules, what the flow uses)")
    add_eval_arguments(parser)
    return parser


def run_eval_command(args: argparse.Namespace) -> int:
    """``supportdesk eval``: build the stage, run it over the cases, print the metrics table.

    Missing or malformed files (and broken config) print one line on stderr and return 2.
    """
    from supportdesk.eval.formats import load_cases
    from supportdesk.eval.runner import run_eval
    from supportdesk.eval.stages import build_stage

    stage = getattr(args, "stage", "flow") or "flow"
    try:
        if args.limit is not None and args.limit < 1:
            raise EvalDataError("--limit must be at least 1")
        classifier_examples = getattr(args, "classifier_examples", None)
        for flag, path in (("--cases", args.cases), ("--kb", args.kb), ("--examples", args.examples),
                           ("--classifier-examples", classifier_examples)):
            if path is not None and not Path(path).is_file():
                raise EvalDataError(f"{flag} {path}: no such file")
        if stage in ("rag", "flow") and args.kb is None:
            raise EvalDataError(f"--stage {stage} needs --kb KB.jsonl")
        cases = stage_cases(load_cases(args.cases), stage)
        if not cases:
            raise EvalDataError(f"{args.cases}: no cases")
        built = build_stage(stage, kb=args.kb, examples=args.examples, classifier_examples=classifier_examples)
    except (EvalDataError, SupportdeskError, OSError) as exc:
        return _fail("eval", exc)
    from supportdesk._console import CaseProgress

    progress = CaseProgress(f"eval {stage}").start()  # every stage: a bar on a terminal, tenths when piped
    try:
        report = run_eval(
            cases, built.predict, name=f"{stage}: {Path(args.cases).name}", limit=args.limit, seed=args.seed,
            settings={"stage": stage, "kb": str(args.kb) if args.kb else None,
                      "examples": str(args.examples) if args.examples else None, **built.settings},
            progress=progress,
        )
        print(finish_eval(report, json_out=args.json, html_out=args.report))
    except OSError as exc:  # an unwritable --json / --report path
        return _fail("eval", exc)
    finally:
        progress.stop()
        built.close()
    return EXIT_OK


#: The labels each stage cannot produce: they are dropped before scoring, so that (say) the FAQ stage
#: is not scored on categories it never predicts.
UNSCORED_LABELS: dict[str, tuple[str, ...]] = {
    "rag": ("expected_category", "expected_priority"),
    "triage": ("expected_route", "expected_faq_id"),
    "flow": (),
}


#: The flow classifies only what it escalates: a case it should answer is not scored on these.
FLOW_ANSWERED_UNSCORED = ("expected_category", "expected_priority")


def stage_cases(cases: list[Any], stage: str) -> list[Any]:
    """``cases`` without the labels ``stage`` cannot produce (see :data:`UNSCORED_LABELS`; for the flow,
    category and priority of cases expected to be answered from the FAQ)."""
    out = []
    for case in cases:
        drop = UNSCORED_LABELS.get(stage, ())
        if stage == "flow" and case.expected_route == "answer":
            drop = FLOW_ANSWERED_UNSCORED
        if any(getattr(case, f) is not None for f in drop):
            case = case.model_copy(update=dict.fromkeys(drop))
        out.append(case)
    return out


def _fail(command: str, exc: BaseException) -> int:
    message = " ".join(str(exc).split()) or type(exc).__name__
    print(f"supportdesk {command}: error: {message}", file=sys.stderr)
    return EXIT_DATA
