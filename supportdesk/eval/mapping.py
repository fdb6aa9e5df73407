"""Reading ``category_mapping.json``: each dataset's labels onto supportdesk's categories.

The file's structure (see the datasets README)::

    {"banking77": {"billing": [intent, ...], "technical": [...]},
     "bitext": {"billing": [CATEGORY, ...], "technical_intents": [intent, ...],
                "general": ["ACCOUNT(other intents)", "ORDER", ...]},
     "tickets_queue": {"billing": [queue, ...], "technical": [...], "general": [...]},
     "tickets_priority": {"low": "low", "medium": "medium", "high": "high (README calls it critical)"},
     "clinc150": {"unknown": ["oos"], "billing": [...], "technical": [...], "_other": "a note"}}

Keys starting with ``_`` are notes. A key ending in ``_intents`` lists intent-level labels of that
category (they win over category-level keys). A label such as ``ACCOUNT(other intents)`` is the
category-level label ``ACCOUNT``. Labels not listed map to ``general``.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supportdesk.eval.formats import EvalDataError

__all__ = ["DEFAULT_CATEGORY", "CategoryMapping", "LabelMap", "load_mapping"]

logger = logging.getLogger(__name__)

DEFAULT_CATEGORY = "general"
PRIORITIES = ("low", "medium", "high")
_PAREN = re.compile(r"\s*\(.*\)\s*$")


@dataclass(frozen=True)
class LabelMap:
    """One dataset's label -> category lookup (category level and intent level)."""

    labels: dict[str, str] = field(default_factory=dict)
    intents: dict[str, str] = field(default_factory=dict)
    default: str = DEFAULT_CATEGORY

    def category(self, label: str | None, intent: str | None = None) -> str:
        """The category of ``intent`` if listed, else of ``label``, else the default."""
        if intent is not None and intent in self.intents:
            return self.intents[intent]
        if label is not None and label in self.labels:
            return self.labels[label]
        return self.default

    @classmethod
    def from_json(cls, section: dict[str, Any], *, name: str) -> LabelMap:
        """Build from one section of the mapping file (see the module docstring)."""
        labels: dict[str, str] = {}
        intents: dict[str, str] = {}
        for key, values in section.items():
            if key.startswith("_"):
                continue
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise EvalDataError(f"category mapping {name}.{key}: expected a list of labels")
            if key.endswith("_intents"):
                target, category = intents, key[: -len("_intents")]
            else:
                target, category = labels, key
            for value in values:
                label = _PAREN.sub("", value)
                if label in target and target[label] != category:
                    raise EvalDataError(f"category mapping {name}: {label!r} is in two categories")
                target[label] = category
        return cls(labels=labels, intents=intents)


@dataclass(frozen=True)
class CategoryMapping:
    """All datasets' label maps plus the ticket set's priority map."""

    datasets: dict[str, LabelMap]
    priorities: dict[str, str]

    def for_dataset(self, name: str) -> LabelMap:
        """The label map of ``name``; an empty one (everything ``general``) if the file has none."""
        if name not in self.datasets:
            logger.warning("category mapping has no section %r: every label maps to %s", name, DEFAULT_CATEGORY)
            return LabelMap()
        return self.datasets[name]

    def priority(self, label: str | None) -> str | None:
        """Map a dataset priority onto low/medium/high; ``None`` if it cannot be mapped."""
        if label is None:
            return None
        key = label.strip().lower()
        if key in self.priorities:
            return self.priorities[key]
        if key in PRIORITIES:
            return key
        if key in ("critical", "urgent", "very high"):
            return "high"
        return None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CategoryMapping:
        """Parse the mapping file's content."""
        datasets: dict[str, LabelMap] = {}
        priorities: dict[str, str] = {}
        for name, section in data.items():
            if name.startswith("_"):
                continue
            if not isinstance(section, dict):
                raise EvalDataError(f"category mapping {name}: expected an object")
            if name.endswith("_priority"):
                priorities.update(_priority_map(section, name=name))
            else:
                datasets[name] = LabelMap.from_json(section, name=name)
        return cls(datasets=datasets, priorities=priorities)


def _priority_map(section: dict[str, Any], *, name: str) -> dict[str, str]:
    """``{"high": "high (README calls it critical)"}`` -> ``{"high": "high"}``: the value's first word
    when it is a priority, else the key itself."""
    result: dict[str, str] = {}
    for key, value in section.items():
        if key.startswith("_"):
            continue
        words = str(value).strip().lower().split()
        target = words[0] if words and words[0] in PRIORITIES else key.strip().lower()
        if target not in PRIORITIES:
            raise EvalDataError(f"category mapping {name}.{key}: {value!r} is not low/medium/high")
        result[key.strip().lower()] = target
    return result


def load_mapping(path: Path | str) -> CategoryMapping:
    """Read ``category_mapping.json``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise EvalDataError(f"{path}: no such file") from exc
    except json.JSONDecodeError as exc:
        raise EvalDataError(f"{path}: not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise EvalDataError(f"{path}: expected a JSON object")
    return CategoryMapping.from_json(data)
