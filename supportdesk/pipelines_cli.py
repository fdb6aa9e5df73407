"""``supportdesk pipelines dump [--out DIR]``: the FAQ stage's Haystack pipelines as editable YAML.

The YAML is ``Pipeline.dumps()`` of the pipelines the current settings build (``prefilter`` under a
policy with a ``prefilter_encoder``, ``retrieval``, ``judge``, ``web``). It holds configuration only (components, their parameters, prompts, routes,
connections); the FAQ's documents, its index and the chat model are never in it: loading rebuilds
them from settings. Put an edited file in ``$SUPPORTDESK_CONFIG_DIR/pipelines/<name>.yaml`` and the
FAQ stage loads it instead of building that pipeline in code::

    supportdesk pipelines dump --out "$SUPPORTDESK_CONFIG_DIR/pipelines"
    $EDITOR "$SUPPORTDESK_CONFIG_DIR/pipelines/retrieval.yaml"     # e.g. the retriever's top_k
    supportdesk ask "How do I reset my password?"                  # uses the edited pipeline
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_pipelines_parser", "dump_pipelines", "run_pipelines_command"]


def add_pipelines_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``supportdesk pipelines dump``."""
    pipelines = sub.add_parser("pipelines", help="dump the FAQ stage's Haystack pipelines as YAML")
    actions = pipelines.add_subparsers(dest="pipelines_command", required=True)
    dump = actions.add_parser("dump", help="write prefilter.yaml, retrieval.yaml, judge.yaml and web.yaml")
    dump.add_argument("--out", type=Path, help="folder to write them to (default: print them to stdout)")


def dump_pipelines(settings: object | None = None) -> dict[str, str]:
    """``{name: yaml}`` of every FAQ pipeline the settings build (``Pipeline.dumps()``)."""
    from supportdesk.llm.factory import LLMFactory
    from supportdesk.rag.pipeline import build_faq_pipeline
    from supportdesk.settings import Settings

    from haystack.marshal import YamlMarshaller

    settings = settings if settings is not None else Settings()
    factory = LLMFactory(settings)  # type: ignore[arg-type]
    faq = build_faq_pipeline(settings, factory.chat_model(), kind=factory.kind)  # type: ignore[arg-type]
    out = {}
    for name, pipe in faq.pipelines().items():
        data = pipe.to_dict()
        gate = data["components"].get("gate")
        if name == "prefilter":
            gate["init_parameters"].update(floor=None, sure=None)  # null: the FAQ's band when loaded
        elif gate is not None and faq.policy.get("threshold") is None:
            gate["init_parameters"]["threshold"] = None  # null: calibrated on the FAQ when loaded
        out[name] = _HEADER.format(name=name) + YamlMarshaller().marshal(data)
    return out


_HEADER = """\
# The FAQ stage's {name} pipeline (Haystack Pipeline.dumps), written by `supportdesk pipelines dump`.
# Edit and save as $SUPPORTDESK_CONFIG_DIR/pipelines/{name}.yaml to use it. Not in this file: the
# FAQ's documents and index, the chat model (rebuilt from settings when loaded). A gate threshold (or
# a prefilter floor or sure bound) of null means the one calibrated on the current FAQ.
"""


def run_pipelines_command(args: argparse.Namespace) -> int:
    """Handler of ``supportdesk pipelines``; exit 0."""
    dumped = dump_pipelines()
    if args.out is None:
        for name, text in dumped.items():
            print(f"# ---- pipelines/{name}.yaml ----")
            print(text)
        return 0
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for name, text in dumped.items():
        path = out / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        print(path)
    print(f"load them back: copy into $SUPPORTDESK_CONFIG_DIR/pipelines/ (now: {out})", file=sys.stderr)
    return 0
