"""Category and priority from code: nearest labelled examples plus keyword rules.

The examples and rules are data (``config/triage_examples.yaml``), the categories too
(``config/categories.yaml``). A message is embedded with all-MiniLM-L6-v2 (the NumPy encoder of
:mod:`supportdesk.rag._minilm`), the ``k`` most similar examples vote for their category weighted
by similarity, and the winning category's neighbours vote for the priority. Keyword rules then
override the category (when a rule names one) and raise the priority to their floor::

    from supportdesk.crews.classifier import ExampleClassifier

    classifier = ExampleClassifier.from_config()
    s = classifier.suggest("I was charged twice for my subscription this month and I want one payment refunded.")
    s.category, s.priority, s.rules      # ('billing', 'high', ['double_charge', 'refund'])
"""

from __future__ import annotations

import logging
import re
import threading
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, Field

from supportdesk._config import load_yaml
from supportdesk.errors import ConfigError
from supportdesk.models.state import Priority

__all__ = [
    "Category",
    "CategorySet",
    "ExampleClassifier",
    "LabelledExample",
    "PriorityRule",
    "TextEncoder",
    "TriageSuggestion",
    "load_categories",
    "raise_priority",
]

logger = logging.getLogger(__name__)

PRIORITY_ORDER: dict[str, int] = {"low": 0, "medium": 1, "high": 2}

#: Softmax temperature of the neighbours' votes (cosine similarity units); see :class:`ExampleClassifier`.
DEFAULT_TEMPERATURE = 0.05


def raise_priority(current: Priority, floor: Priority | None) -> Priority:
    """The higher of two priorities (``floor`` None keeps ``current``)."""
    if floor is None or PRIORITY_ORDER[floor] <= PRIORITY_ORDER[current]:
        return current
    return floor


class TextEncoder(Protocol):
    """Anything that embeds texts into L2-normalised rows (``supportdesk.rag._minilm.MiniLMEncoder``)."""

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Category:
    """One triage category of ``config/categories.yaml``."""

    name: str
    description: str
    default_priority: Priority = "medium"


@dataclass(frozen=True)
class CategorySet:
    """The allowed categories and the fallback (always allowed)."""

    categories: tuple[Category, ...]
    fallback: str = "unknown"

    @property
    def names(self) -> list[str]:
        """Category names, fallback last."""
        return [c.name for c in self.categories] + [self.fallback]

    def bullet_list(self) -> str:
        """``- name: description`` lines for a prompt."""
        lines = [f"- {c.name}: {c.description}" for c in self.categories]
        lines.append(f"- {self.fallback}: none of the above fits.")
        return "\n".join(lines)


def load_categories(config_dir: Path | None = None) -> CategorySet:
    """Read ``categories.yaml`` (packaged, or overridden in ``config_dir``)."""
    data = load_yaml("categories.yaml", config_dir)
    raw = data.get("categories") if isinstance(data, dict) else None
    if not isinstance(raw, dict) or not raw:
        raise ConfigError("categories.yaml needs a non-empty 'categories' mapping")
    categories = []
    for name, spec in raw.items():
        spec = spec or {}
        priority = spec.get("default_priority", "medium")
        if priority not in PRIORITY_ORDER:
            raise ConfigError(f"categories.yaml: {name}: default_priority must be low, medium or high")
        categories.append(Category(str(name), str(spec.get("description", "")).strip(), priority))
    fallback = str(data.get("fallback", "unknown"))
    if fallback in raw:
        raise ConfigError(f"categories.yaml: the fallback {fallback!r} must not also be a category")
    return CategorySet(tuple(categories), fallback)


@dataclass(frozen=True)
class LabelledExample:
    """A short support message with its category and priority (None: the example has no priority label;
    it votes for the category only)."""

    text: str
    category: str
    priority: Priority | None = "medium"


@dataclass(frozen=True)
class PriorityRule:
    """A keyword rule: a regex that raises the priority and optionally fixes the category."""

    name: str
    pattern: re.Pattern[str]
    priority: Priority | None = None
    category: str | None = None


class TriageSuggestion(BaseModel):
    """What code concluded about a message, with the evidence."""

    category: str
    priority: Priority
    confidence: float = Field(description="Cosine similarity of the best example (0 without examples).")
    neighbours: list[tuple[str, str, float]] = Field(
        default_factory=list, description="(category, example text, similarity) of the k nearest examples."
    )
    rules: list[str] = Field(default_factory=list, description="Names of the keyword rules that matched.")
    rule_priority: Priority | None = Field(default=None, description="Highest priority floor among the rules.")


def _load_examples(config_dir: Path | None, categories: CategorySet) -> tuple[list[LabelledExample], list[PriorityRule]]:
    data = load_yaml("triage_examples.yaml", config_dir)
    if not isinstance(data, dict) or not isinstance(data.get("examples"), dict):
        raise ConfigError("triage_examples.yaml needs an 'examples' mapping of category -> list")
    known = set(categories.names)
    examples: list[LabelledExample] = []
    for category, items in data["examples"].items():
        if category not in known:
            raise ConfigError(f"triage_examples.yaml: category {category!r} is not in categories.yaml")
        for item in items or []:
            if not isinstance(item, dict) or not item.get("text"):
                raise ConfigError(f"triage_examples.yaml: {category}: every example needs a text")
            priority = item.get("priority", "medium")
            if priority not in PRIORITY_ORDER:
                raise ConfigError(f"triage_examples.yaml: {item['text']!r}: bad priority {priority!r}")
            examples.append(LabelledExample(str(item["text"]), str(category), priority))
    rules: list[PriorityRule] = []
    for raw in data.get("rules") or []:
        try:
            pattern = re.compile(str(raw["pattern"]), re.IGNORECASE)
        except (KeyError, re.error) as exc:
            raise ConfigError(f"triage_examples.yaml: rule {raw.get('name', '?')!r}: bad pattern ({exc})") from exc
        priority = raw.get("priority")
        category = raw.get("category")
        if priority is not None and priority not in PRIORITY_ORDER:
            raise ConfigError(f"triage_examples.yaml: rule {raw.get('name')!r}: bad priority {priority!r}")
        if category is not None and category not in known:
            raise ConfigError(f"triage_examples.yaml: rule {raw.get('name')!r}: unknown category {category!r}")
        rules.append(PriorityRule(str(raw.get("name", pattern.pattern[:20])), pattern, priority, category))
    return examples, rules


class ExampleClassifier:
    """Nearest-labelled-example classifier with keyword rules.

    :param examples: the labelled messages (at least one).
    :param categories: allowed categories and the fallback.
    :param rules: keyword rules, applied after the vote.
    :param encoder: embeds texts (L2-normalised rows); default: the MiniLM encoder, loaded on first use.
    :param k: how many nearest examples vote.
    :param min_similarity: below this best similarity the category is the fallback.
    :param temperature: each neighbour's vote is ``exp((similarity - best) / temperature)``, so the
        closest examples dominate and many neighbours can vote without drowning them; ``None`` or 0:
        the similarity itself (clipped at 0). With 0.05, k = 20 classifies like k = 1 on small example
        sets and like a smoothed vote on large ones (BANKING77 and the ticket set, train -> validation).
    """

    def __init__(
        self,
        examples: Sequence[LabelledExample],
        categories: CategorySet,
        rules: Sequence[PriorityRule] = (),
        *,
        encoder: TextEncoder | None = None,
        k: int = 5,
        min_similarity: float = 0.3,
        temperature: float | None = DEFAULT_TEMPERATURE,
    ) -> None:
        if not examples:
            raise ConfigError("the example classifier needs at least one labelled example")
        self.examples = list(examples)
        self.categories = categories
        self.rules = list(rules)
        self.k = max(1, k)
        self.min_similarity = min_similarity
        self.temperature = temperature if temperature and temperature > 0 else None
        self._encoder = encoder
        self._matrix: np.ndarray | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config_dir: Path | None = None, *, policy: Mapping[str, Any] | None = None,
                    encoder: TextEncoder | None = None) -> ExampleClassifier:
        """Build from ``categories.yaml`` and ``triage_examples.yaml``; ``policy`` gives ``knn_k`` and ``min_similarity``."""
        categories = load_categories(config_dir)
        examples, rules = _load_examples(config_dir, categories)
        policy = policy or {}
        return cls(
            examples,
            categories,
            rules,
            encoder=encoder,
            k=int(policy.get("knn_k", 5)),
            min_similarity=float(policy.get("min_similarity", 0.3)),
            temperature=policy.get("knn_temperature", DEFAULT_TEMPERATURE),
        )

    @classmethod
    def from_records(
        cls,
        records: Sequence[tuple[str, str, Priority | None]],
        *,
        config_dir: Path | None = None,
        policy: Mapping[str, Any] | None = None,
        encoder: TextEncoder | None = None,
    ) -> ExampleClassifier:
        """Build over labelled ``(text, category, priority or None)`` records, e.g. a dataset's training
        examples. The categories are those of ``categories.yaml`` when every record's category is one of
        them, else the records' own (the fallback stays the configured one); no keyword rules apply
        (they are written for the packaged categories)."""
        configured = load_categories(config_dir)
        seen = list(dict.fromkeys(category for _, category, _ in records))
        if set(seen) <= set(configured.names):
            categories = configured
        else:
            categories = CategorySet(tuple(Category(c, "") for c in seen if c != configured.fallback),
                                     configured.fallback)
        examples = [LabelledExample(text, category, priority) for text, category, priority in records]
        policy = policy or {}
        return cls(examples, categories, (), encoder=encoder, k=int(policy.get("knn_k", 5)),
                   min_similarity=float(policy.get("min_similarity", 0.3)),
                   temperature=policy.get("knn_temperature", DEFAULT_TEMPERATURE))

    def describe(self) -> dict[str, Any]:
        """What the classifier is built from (for reports)."""
        return {"examples": len(self.examples), "categories": self.categories.names, "rules": len(self.rules),
                "k": self.k, "min_similarity": self.min_similarity, "temperature": self.temperature}

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if self._encoder is None:
            from supportdesk.rag._minilm import NAME, get_encoder

            self._encoder = get_encoder(NAME)  # k and min_similarity are this model's
        vectors = np.asarray(self._encoder.encode(list(texts)), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def _example_matrix(self) -> np.ndarray:
        with self._lock:
            if self._matrix is None:
                self._matrix = self._encode([e.text for e in self.examples])
            return self._matrix

    def matching_rules(self, text: str) -> list[PriorityRule]:
        """The keyword rules whose pattern occurs in ``text``."""
        return [rule for rule in self.rules if rule.pattern.search(text)]

    def suggest(self, text: str) -> TriageSuggestion:
        """Category and priority for ``text`` from its nearest examples and the keyword rules."""
        query = self._encode([text])[0]
        sims = self._example_matrix() @ query
        order = np.argsort(-sims)[: self.k]
        neighbours = [(self.examples[i].category, self.examples[i].text, round(float(sims[i]), 4)) for i in order]
        best = float(sims[order[0]])

        weights = self._weights(sims[order], best)
        votes: dict[str, float] = defaultdict(float)
        for i, weight in zip(order, weights, strict=True):
            votes[self.examples[i].category] += weight
        category = max(votes, key=lambda c: votes[c]) if best >= self.min_similarity else self.categories.fallback

        rules = self.matching_rules(text)
        rule_categories = [r.category for r in rules if r.category]
        if rule_categories:
            category = rule_categories[0]

        priority = self._vote_priority(category, order, weights)
        rule_priority: Priority | None = None
        for rule in rules:
            if rule.priority is not None:
                rule_priority = raise_priority(rule_priority or "low", rule.priority)
        priority = raise_priority(priority, rule_priority)
        logger.debug("suggest %r -> %s/%s (best %.3f, rules %s)", text[:60], category, priority, best,
                     [r.name for r in rules])
        return TriageSuggestion(
            category=category,
            priority=priority,
            confidence=round(max(best, 0.0), 4),
            neighbours=neighbours,
            rules=[r.name for r in rules],
            rule_priority=rule_priority,
        )

    def _weights(self, sims: np.ndarray, best: float) -> list[float]:
        """Vote weight of each neighbour (``sims`` best first)."""
        if self.temperature is None:
            return [max(float(x), 0.0) for x in sims]
        return [float(np.exp((float(x) - best) / self.temperature)) for x in sims]

    def _vote_priority(self, category: str, order: np.ndarray, weights: Sequence[float]) -> Priority:
        votes: dict[str, float] = defaultdict(float)
        for i, weight in zip(order, weights, strict=True):
            example = self.examples[i]
            if example.category == category and example.priority is not None:
                votes[example.priority] += weight
        if votes:
            return max(votes, key=lambda p: (votes[p], PRIORITY_ORDER[p]))  # type: ignore[return-value]
        for c in self.categories.categories:
            if c.name == category:
                return c.default_priority
        return "medium"
