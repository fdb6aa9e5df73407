"""Loading the FAQ knowledge base: errors name the entry or line; KB.jsonl round-trips."""

from __future__ import annotations

import json

import pytest

from supportdesk.errors import ConfigError
from supportdesk.rag import KnowledgeBase

ENTRY = {"id": "reset-password", "question": "How do I reset my password?", "paraphrases": ["I forgot my password"],
         "answer": "Click Forgot password on the login page."}


def test_duplicate_ids_raise_config_error_naming_the_id():
    """Two entries with the same id are refused, and the message names the id."""
    with pytest.raises(ConfigError, match="duplicate FAQ entry id 'reset-password'"):
        KnowledgeBase.from_records([ENTRY, {**ENTRY, "question": "Another question?"}])


def test_empty_question_raises_config_error_naming_entry_and_field():
    """A blank question is refused with the entry's position, id and field in the message."""
    bad = {**ENTRY, "id": "blank-q", "question": "   "}
    with pytest.raises(ConfigError) as info:
        KnowledgeBase.from_records([ENTRY | {"id": "ok"}, bad], source="faq.yaml")
    message = str(info.value)
    assert "entry 2" in message and "'blank-q'" in message and "question" in message


def test_malformed_jsonl_line_raises_config_error_naming_the_line(tmp_path):
    """A line that is not JSON makes a ConfigError that names the file and the line number."""
    path = tmp_path / "kb.jsonl"
    path.write_text(json.dumps(ENTRY) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"kb\.jsonl line 2: invalid JSON"):
        KnowledgeBase.from_jsonl(path)


def test_jsonl_round_trip_keeps_every_entry(tmp_path):
    """to_jsonl then from_jsonl gives back the same entries in the same order."""
    kb = KnowledgeBase.from_records([ENTRY, {"id": "export", "question": "Can I export notes?", "answer": "Yes."}])
    path = tmp_path / "sub" / "kb.jsonl"
    kb.to_jsonl(path)
    again = KnowledgeBase.from_jsonl(path)
    assert again.entries == kb.entries
    assert again.fingerprint() == kb.fingerprint()
    assert not list(path.parent.glob("*.tmp"))


def test_config_override_dir_wins_and_reads_company_and_escalate_examples(tmp_path):
    """faq.yaml in an override folder replaces the packaged one, with its company and escalation examples."""
    (tmp_path / "faq.yaml").write_text(
        "company: Acme\nentries:\n  - id: a\n    question: Q?\n    answer: A.\nescalate_examples: [refund me]\n",
        encoding="utf-8")
    kb = KnowledgeBase.from_config(tmp_path)
    assert (kb.ids, kb.company, kb.escalate_examples) == (["a"], "Acme", ["refund me"])


def test_shipped_faq_loads_with_unique_ids():
    """The packaged config/faq.yaml loads: dozens of entries, each with paraphrases."""
    kb = KnowledgeBase.from_config()
    assert len(kb) >= 20 and len(set(kb.ids)) == len(kb)
    assert "reset-password" in kb and all(entry.paraphrases for entry in kb)


def test_repeated_questions_and_paraphrases_are_dropped_with_a_warning(caplog):
    """Repeats (an entry listed twice, a paraphrase equal to a question or another paraphrase) are dropped, with a warning."""
    other = {"id": "delete-account", "question": "How do I delete my account?", "answer": "Settings > Account > Delete.",
             "paraphrases": ["close my account", "How do I reset my password?", "  CLOSE my   account "]}
    noisy = {**ENTRY, "paraphrases": ["I forgot my password", "how do i reset my password?", "i forgot my password"]}
    with caplog.at_level("WARNING", logger="supportdesk.rag.knowledge_base"):
        kb = KnowledgeBase.from_records([noisy, other, noisy], source="faq.yaml")
    assert kb.ids == ["reset-password", "delete-account"]
    assert kb.get("reset-password").paraphrases == ["I forgot my password"]
    assert kb.get("delete-account").paraphrases == ["close my account"]
    texts, _ = kb.texts()
    assert len({" ".join(t.casefold().split()) for t in texts}) == len(texts)
    assert "dropped 5 repeated FAQ text(s)" in caplog.text and "faq.yaml" in caplog.text


def test_deduplicated_kb_builds_its_document_store():
    """A KB with repeated paraphrases builds its Haystack document store (no DuplicateDocumentError)."""
    import numpy as np

    from supportdesk.rag.document_store import FAQDocumentStore

    kb = KnowledgeBase.from_records([{**ENTRY, "paraphrases": ["I forgot my password"] * 3}])
    texts, owners = kb.texts()
    store = FAQDocumentStore.from_texts(texts, np.eye(len(texts), 4), [kb.ids[int(o)] for o in owners])
    assert store.count_documents() == 2
