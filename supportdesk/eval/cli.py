"""Argument parsing and output for ``supportdesk eval-data`` and ``supportdesk eval``.

The package CLI owns the sub-command registry; it calls these functions and prints the strings
they return::

    parser = add_eval_data_parser(subparsers)       # supportdesk eval-data DATASET --source --out ...
    print(run_eval_data(args))

    add_eval_arguments(eval_parser)                 # --cases --limit --seed --json --report
    cases = load_cases(args.cases)
    report = run_eval(cases, predict, name=..., limit=args.limit, seed=args.seed)
    print(finish_eval(report, json_out=args.json, html_out=args.report))
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from supportdesk.eval.converters import DATASETS, DEFAULT_SEED, convert_dataset
from supportdesk.eval.runner import EvalReport

__all__ = ["add_eval_arguments", "add_eval_data_parser", "finish_eval", "run_eval_data"]


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
