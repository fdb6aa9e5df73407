"""Converters on tiny synthetic copies of the real dataset layouts."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from supportdesk.eval.converters import convert_dataset, split_by_label
from supportdesk.eval.formats import EvalDataError, load_cases, load_examples, load_kb
from supportdesk.eval.mapping import load_mapping

MAPPING = {
    "_note": "test mapping",
    "banking77": {"billing": ["transfer_fee_charged"], "technical": ["card_not_working"]},
    "bitext": {"billing": ["REFUND"], "technical_intents": ["recover_password"], "general": ["ACCOUNT(other intents)"]},
    "tickets_queue": {"billing": ["Billing and Payments"], "technical": ["Technical Support"]},
    "tickets_priority": {"low": "low", "medium": "medium", "high": "high (README calls it critical)"},
    "clinc150": {"unknown": ["oos"], "billing": ["pay_bill"], "_other": "a note"},
}


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A datasets folder with the mapping file."""
    (tmp_path / "category_mapping.json").write_text(json.dumps(MAPPING), encoding="utf-8")
    return tmp_path


def test_mapping_reads_intent_keys_parenthesised_labels_and_priority_notes(root: Path) -> None:
    """technical_intents are intent level, 'ACCOUNT(other intents)' is ACCOUNT, 'high (...)' is high."""
    mapping = load_mapping(root / "category_mapping.json")
    bitext = mapping.for_dataset("bitext")
    assert bitext.category("ACCOUNT", "recover_password") == "technical"
    assert bitext.category("ACCOUNT", "edit_account") == "general"
    assert bitext.category("REFUND", "get_refund") == "billing"
    assert bitext.category("ORDER", "cancel_order") == "general"
    assert mapping.priority("high") == "high" and mapping.priority("Critical") == "high"
    assert mapping.for_dataset("clinc150").category("oos") == "unknown"


def test_clinc150_kb_from_train_and_cases_with_routes(root: Path, tmp_path: Path) -> None:
    """KB has one entry per train intent; in-scope cases expect answer + intent, oos expect escalate."""
    data = {
        "train": [["pay my bill", "pay_bill"], ["settle the bill", "pay_bill"], ["what time is it", "time"]],
        "oos_train": [["tell me a secret", "oos"]],
        "val": [["bill payment please", "pay_bill"]], "oos_val": [["sing", "oos"]],
        "test": [["i want to pay my bill", "pay_bill"], ["clock check", "time"]], "oos_test": [["weather on mars", "oos"]],
    }
    (root / "clinc150").mkdir()
    (root / "clinc150" / "data_full.json").write_text(json.dumps(data), encoding="utf-8")
    out = tmp_path / "out"
    result = convert_dataset("clinc150", root, out, split="test")
    kb = {e.id: e for e in load_kb(out / "clinc150.kb.jsonl")}
    assert set(kb) == {"pay_bill", "time"}
    assert kb["pay_bill"].question == "pay my bill" and kb["pay_bill"].paraphrases == ["settle the bill"]
    assert "pay bill" in kb["pay_bill"].answer.lower()
    cases = load_cases(result.files["cases"])
    assert [(c.expected_route, c.expected_faq_id, c.expected_category) for c in cases] == [
        ("answer", "pay_bill", "billing"), ("answer", "time", "general"), ("escalate", None, "unknown")]
    assert all(c.split == "test" for c in cases)
    val = load_cases(convert_dataset("clinc150", root / "clinc150", out, split="validation").files["cases"])
    assert [c.query for c in val] == ["bill payment please", "sing"]


def test_banking77_categories_and_train_examples(root: Path, tmp_path: Path) -> None:
    """Test cases carry only expected_category; examples come from train minus the validation hold-out."""
    train = [[f"fee question {i}", "transfer_fee_charged"] for i in range(10)] + [
        [f"card broken {i}", "card_not_working"] for i in range(10)]
    _write_csv(root / "banking77" / "train.csv", ["text", "category"], train)
    _write_csv(root / "banking77" / "test.csv", ["text", "category"],
               [["why was i charged", "transfer_fee_charged"], ["where is my card", "card_arrival"]])
    out = tmp_path / "out"
    test = load_cases(convert_dataset("banking77", root, out, split="test").files["cases"])
    assert [(c.expected_category, c.expected_route) for c in test] == [("billing", None), ("general", None)]
    examples = load_examples(out / "banking77.train.examples.jsonl")
    val = load_cases(convert_dataset("banking77", root, out, split="validation").files["cases"])
    assert len(examples) == 18 and len(val) == 2
    assert not {e.query for e in examples} & {c.query for c in val}


def test_banking77_faq_mode_holds_out_half_the_intents(root: Path, tmp_path: Path) -> None:
    """FAQ mode: half the intents are entries from train rows (ids slugged), the other intents' test
    queries must escalate; no test query is in the KB."""
    intents = ["transfer_fee_charged", "card_not_working", "card_arrival", "reverted_card_payment?"]
    train = [[f"{intent} question {i}", intent] for intent in intents for i in range(5)]
    _write_csv(root / "banking77" / "train.csv", ["text", "category"], train)
    _write_csv(root / "banking77" / "test.csv", ["text", "category"], [[f"new {i} {t}", t] for i, t in enumerate(intents)])
    result = convert_dataset("banking77", root, tmp_path / "out", split="test")
    kb = load_kb(result.files["kb"])
    cases = load_cases(result.files["faq cases"])
    assert len(kb) == 2 and all("?" not in e.id for e in kb)
    ids = {e.id for e in kb}
    assert sum(c.expected_route == "escalate" for c in cases) == 2
    assert all(c.expected_faq_id in ids for c in cases if c.expected_route == "answer")
    assert not {c.query for c in cases} & {t for e in kb for t in [e.question, *e.paraphrases]}


def test_bitext_dedupes_and_splits_disjointly(root: Path, tmp_path: Path) -> None:
    """Duplicate instructions are dropped; train/validation/test are disjoint and use intent-level mapping."""
    header = ["instruction", "intent", "category", "response"]
    rows = [[f"reset my password {i}", "recover_password", "ACCOUNT", "r"] for i in range(20)]
    rows += [[f"refund please {i}", "get_refund", "REFUND", "r"] for i in range(20)]
    rows += [["Refund please 0", "get_refund", "REFUND", "r"]]  # a duplicate, case-insensitively
    _write_csv(root / "bitext" / "bitext_sample.csv", header, rows)
    out = tmp_path / "out"
    queries = {}
    for split in ("validation", "test"):
        result = convert_dataset("bitext", root, out, split=split)
        queries[split] = {c.query: c.expected_category for c in load_cases(result.files["cases"])}
    train = {e.query for e in load_examples(out / "bitext.train.examples.jsonl")}
    assert len(train) + len(queries["validation"]) + len(queries["test"]) == 40
    assert not train & set(queries["test"]) and not set(queries["validation"]) & set(queries["test"])
    assert {cat for q, cat in queries["test"].items() if "password" in q} == {"technical"}
    assert {cat for q, cat in queries["test"].items() if "refund" in q} == {"billing"}


def test_tickets_english_only_subject_body_priority_and_versions(root: Path, tmp_path: Path) -> None:
    """Only English rows; query = subject + body with literal \\n unescaped; v5 is test, v4 train/validation."""
    header = ["subject", "body", "answer", "type", "queue", "priority", "language"]
    v4 = [[f"Login {i}", f"Cannot log in\\nhelp {i}", "a", "Incident", "Technical Support", "high", "en"] for i in range(10)]
    v4 += [["Rechnung", "Falsch", "a", "Request", "Billing and Payments", "low", "de"]]
    v5 = [["Invoice", "Charged twice\\nplease fix", "a", "Request", "Billing and Payments", "medium", "en"],
          ["", "Where are you", "a", "Request", "Human Resources", "low", "en"],
          ["Hallo", "Guten Tag", "a", "Request", "Customer Service", "low", "de"]]
    _write_csv(root / "tickets" / "tickets_v4_en_de_truncated.csv", header, v4)
    _write_csv(root / "tickets" / "tickets_v5_en_de_truncated.csv", header, v5)
    out = tmp_path / "out"
    test = load_cases(convert_dataset("tickets", root, out, split="test").files["cases"])
    assert [c.query for c in test] == ["Invoice\n\nCharged twice\nplease fix", "Where are you"]
    assert [(c.expected_category, c.expected_priority) for c in test] == [("billing", "medium"), ("general", "low")]
    val = load_cases(convert_dataset("tickets", root, out, split="validation").files["cases"])
    examples = load_examples(out / "tickets.train.examples.jsonl")
    assert len(val) == 2 and len(examples) == 8
    assert {(e.category, e.priority) for e in examples} == {("technical", "high")}


STACKFAQ = """<root>
<qapair>
<rephr>
How do I strike text on github?
</rephr><rephr>
*
</rephr><rephr>
Strikethrough in github markdown.
</rephr><rephr>
Cross out words in a github issue.
</rephr><rephr>
Github strikethrough syntax?
</rephr>
<question>
Strikethrough with GitHub Markdown
</question>
<answer>
   Use ~~tildes~~.
</answer>
<answer>
   Use &lt;del&gt;.
</answer>
</qapair>
<qapair>
<rephr>
Delete my facebook account.
</rephr><rephr>

</rephr><rephr>
Remove FB account.
</rephr>
<question>
How do I delete my Facebook account?
</question>
<answer>
   Go to the help page.
</answer>
</qapair>
</root>"""


def test_stackfaq_holds_test_rephrasings_out_of_the_kb(root: Path, tmp_path: Path) -> None:
    """'*' and empty rephrasings are dropped; test cases never appear in the KB, even with kb_paraphrases."""
    (root / "stackfaq").mkdir()
    (root / "stackfaq" / "stackExchange-FAQ.xml").write_text(STACKFAQ, encoding="utf-8")
    out = tmp_path / "out"
    test = load_cases(convert_dataset("stackfaq", root, out, split="test").files["cases"])
    kb = load_kb(out / "stackfaq.kb.jsonl")
    assert [e.id for e in kb] == ["stackfaq-000", "stackfaq-001"]
    assert kb[0].answer == "Use ~~tildes~~." and kb[0].paraphrases == []
    assert all(c.expected_route == "answer" and c.expected_faq_id for c in test)
    val = load_cases(convert_dataset("stackfaq", root, out, split="validation").files["cases"])
    all_queries = {c.query for c in test} | {c.query for c in val}
    assert "*" not in all_queries and "" not in all_queries and len(all_queries) == 6
    assert not {c.query for c in test} & {c.query for c in val}
    convert_dataset("stackfaq", root, out, split="test", kb_paraphrases=True)
    paraphrases = {p for e in load_kb(out / "stackfaq.kb.jsonl") for p in e.paraphrases}
    assert paraphrases == {c.query for c in val}
    with pytest.raises(EvalDataError):
        convert_dataset("stackfaq", root, out, split="validation", kb_paraphrases=True)


def test_split_by_label_is_deterministic_and_per_label() -> None:
    """Same seed, same split; each label contributes round(n * fraction) items to the first part."""
    items = [("a", i) for i in range(10)] + [("b", i) for i in range(4)]
    first = split_by_label(items, lambda item: item[0], {"test": 0.5, "train": 0.5}, seed=7)
    assert first == split_by_label(items, lambda item: item[0], {"test": 0.5, "train": 0.5}, seed=7)
    assert sum(1 for label, _ in first["test"] if label == "a") == 5
    assert sum(1 for label, _ in first["test"] if label == "b") == 2


def test_unknown_dataset_and_missing_files_raise_eval_data_error(root: Path, tmp_path: Path) -> None:
    """A wrong dataset name or a missing source file is an EvalDataError, not a crash."""
    with pytest.raises(EvalDataError):
        convert_dataset("nope", root, tmp_path)
    (root / "banking77").mkdir()
    with pytest.raises(EvalDataError):
        convert_dataset("banking77", root, tmp_path)
