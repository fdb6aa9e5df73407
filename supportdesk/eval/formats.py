"""The evaluation file formats: ``KB.jsonl``, ``CASES.jsonl`` and ``*.examples.jsonl``.

Each file holds one JSON object a line. Blank lines are skipped; anything else that does not
validate raises :class:`EvalDataError` naming the file and the line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from supportdesk.errors import SupportdeskError

__all__ = [
    "Case",
    "EvalDataError",
    "KBEntry",
    "LabeledExample",
    "Route",
    "load_cases",
    "load_examples",
    "load_kb",
    "read_jsonl",
    "write_jsonl",
]

logger = logging.getLogger(__name__)

Route = Literal["answer", "escalate"]
PriorityLabel = Literal["low", "medium", "high"]

M = TypeVar("M", bound=BaseModel)


class EvalDataError(SupportdeskError, ValueError):
    """An evaluation data file (KB, cases, examples) or a source dataset is missing or malformed."""


class KBEntry(BaseModel):
    """One FAQ entry of a knowledge base (a line of ``KB.jsonl``). Unknown keys are ignored."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, description="Stable id; cases refer to it as expected_faq_id.")
    question: str = Field(min_length=1, description="The canonical question.")
    paraphrases: list[str] = Field(default_factory=list, description="Other ways customers ask it.")
    answer: str = Field(min_length=1, description="The answer text.")


class Case(BaseModel):
    """One evaluation case (a line of ``CASES.jsonl``). Every label is optional; unknown keys are rejected
    so that a misspelt label cannot silently drop out of the metrics."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, description="What the customer wrote.")
    expected_route: Route | None = Field(default=None, description="'answer' from the FAQ or 'escalate'.")
    expected_faq_id: str | None = Field(default=None, description="Id of the KB entry that answers it.")
    expected_category: str | None = Field(default=None, description="billing, technical, general, unknown ...")
    expected_priority: PriorityLabel | None = None
    id: str | None = Field(default=None, description="Case id, unique within a file.")
    split: str | None = Field(default=None, description="train, validation or test.")
    meta: dict[str, Any] = Field(default_factory=dict, description="Free-form provenance (source label ...).")


class LabeledExample(BaseModel):
    """A labelled training query (a line of ``*.train.examples.jsonl``), e.g. for a kNN triage classifier."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1)
    category: str | None = None
    priority: PriorityLabel | None = None
    label: str | None = Field(default=None, description="The dataset's own label (intent, queue ...).")
    id: str | None = None


def read_jsonl(path: Path | str, model: type[M]) -> list[M]:
    """Read one ``model`` per non-blank line of ``path``."""
    path = Path(path)
    if not path.is_file():
        raise EvalDataError(f"{path}: no such file")
    items: list[M] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                items.append(model.model_validate(json.loads(line)))
            except (json.JSONDecodeError, ValidationError) as exc:
                first = str(exc).splitlines()
                detail = "; ".join(first[:3])
                raise EvalDataError(f"{path}:{number}: not a valid {model.__name__}: {detail}") from exc
    logger.debug("read %d %s from %s", len(items), model.__name__, path)
    return items


def write_jsonl(path: Path | str, items: Iterable[BaseModel]) -> int:
    """Write ``items`` one a line (unset optional fields left out); return how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for item in items:
            handle.write(json.dumps(item.model_dump(mode="json", exclude_none=True, exclude_defaults=True),
                                    ensure_ascii=False))
            handle.write("\n")
            count += 1
    logger.debug("wrote %d lines to %s", count, path)
    return count


def load_kb(path: Path | str) -> list[KBEntry]:
    """Load a ``KB.jsonl`` file; raise :class:`EvalDataError` on duplicate ids."""
    entries = read_jsonl(path, KBEntry)
    seen: set[str] = set()
    for entry in entries:
        if entry.id in seen:
            raise EvalDataError(f"{path}: duplicate KB id {entry.id!r}")
        seen.add(entry.id)
    return entries


def load_cases(path: Path | str) -> list[Case]:
    """Load a ``CASES.jsonl`` file."""
    return read_jsonl(path, Case)


def load_examples(path: Path | str) -> list[LabeledExample]:
    """Load a ``*.examples.jsonl`` file."""
    return read_jsonl(path, LabeledExample)
