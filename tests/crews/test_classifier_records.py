"""The nearest-example classifier over dataset records, with softmax-weighted votes (fake encoder)."""

from __future__ import annotations

import numpy as np

from supportdesk.crews.classifier import ExampleClassifier


class KeywordEncoder:
    """Embeds a text as a one-hot-ish vector over a few keywords (deterministic, no model)."""

    WORDS = ("charge", "refund", "crash", "error", "hours", "discount", "weather")

    def encode(self, texts):
        rows = []
        for text in texts:
            v = np.array([1.0 if w in text.lower() else 0.0 for w in self.WORDS] + [0.3])
            rows.append(v / np.linalg.norm(v))
        return np.asarray(rows, dtype=np.float32)


RECORDS = [
    ("double charge on my card", "billing", "high"),
    ("refund please", "billing", None),
    ("the app shows an error", "technical", "medium"),
    ("crash on start", "technical", "medium"),
    ("what are your hours", "general", "low"),
    ("any discount for students", "general", "low"),
]


def test_from_records_uses_packaged_categories_when_they_fit():
    clf = ExampleClassifier.from_records(RECORDS, encoder=KeywordEncoder(), policy={"knn_k": 3})
    assert clf.categories.names == ["billing", "technical", "general", "unknown"]
    assert clf.rules == []
    s = clf.suggest("I want a refund")
    assert s.category == "billing"
    # the only billing neighbour with a priority decides it; priority-less examples vote for category only
    assert s.priority in ("high", "medium", "low")


def test_from_records_with_own_categories():
    records = [("weather today", "smalltalk", None), ("crash again", "bugs", "high")]
    clf = ExampleClassifier.from_records(records, encoder=KeywordEncoder())
    assert clf.categories.names == ["smalltalk", "bugs", "unknown"]
    assert clf.suggest("the weather").category == "smalltalk"
    assert clf.suggest("the weather").priority == "medium"  # no priority label: the category default


def test_temperature_lets_the_closest_example_outvote_many_far_ones():
    """With exp((sim - best)/T) votes one exact neighbour beats several weaker ones; plain similarity
    votes let the crowd win."""
    records = [("crash", "technical", "high")] + [("refund charge error", "billing", "low")] * 4
    enc = KeywordEncoder()
    sharp = ExampleClassifier.from_records(records, encoder=enc, policy={"knn_k": 5, "knn_temperature": 0.05})
    flat = ExampleClassifier.from_records(records, encoder=enc, policy={"knn_k": 5, "knn_temperature": None})
    assert sharp.suggest("crash error").category == "technical"
    assert flat.suggest("crash error").category == "billing"
    assert sharp.describe()["temperature"] == 0.05 and flat.describe()["temperature"] is None
