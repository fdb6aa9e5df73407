"""The FAQ stage's Haystack pipelines: retriever output consumed, dumps/loads round trip, YAML override,
token usage in ChatMessage.meta["usage"]."""

from __future__ import annotations

import numpy as np
import pytest
from haystack import Pipeline
from haystack.dataclasses import ChatMessage as HaystackChatMessage

from supportdesk._collaborators import ALLOWED_MODULES, bind
from supportdesk.errors import ConfigError
from supportdesk.llm import ScriptedModel
from supportdesk.llm.haystack_generator import ChatModelGenerator
from supportdesk.rag import build_faq_pipeline
from supportdesk.rag._minilm import get_encoder
from supportdesk.rag.entry_scorer import EntryScorer
from supportdesk.settings import Settings

QUERIES = ["i forgot the password to my account", "can I get my notes out as a PDF", "what's the weather in Paris"]


def _canonical(pipe: Pipeline) -> dict:
    data = pipe.to_dict()
    return {**data, "connections": sorted(data["connections"], key=lambda c: (c["sender"], c["receiver"]))}


def _candidates(pipe: Pipeline, query: str) -> list[dict]:
    return pipe.run({"embedder": {"text": query}}, include_outputs_from={"scorer"})["scorer"]["candidates"]


def test_every_pipeline_round_trips_through_dumps_and_loads(make_pipeline):
    """dumps() -> loads() -> dumps() is a fixed point for retrieval, judge and web, and the loaded
    retrieval pipeline ranks like the built one."""
    faq = make_pipeline(ScriptedModel([]), policy="hosted")
    for name, pipe in faq.pipelines().items():
        with bind(faq=faq, model=faq.model):
            loaded = Pipeline.loads(pipe.dumps(), allowed_modules=ALLOWED_MODULES)
        assert _canonical(loaded) == _canonical(pipe), name
        assert set(loaded.graph.nodes) == set(pipe.graph.nodes)
        if name == "retrieval":
            for query in QUERIES:
                assert _candidates(loaded, query) == _candidates(pipe, query)


def test_serialised_pipelines_hold_no_collaborators(make_pipeline):
    """No document, embedding, KB entry or model object is written: configuration only."""
    faq = make_pipeline(ScriptedModel([]))
    text = "".join(p.dumps() for p in faq.pipelines().values())
    assert "reset-password" not in text and "reset my password" not in text.lower() and "Scripted" not in text
    assert "supportdesk.rag.document_store.FAQDocumentStore" in text


def test_scorer_ranks_only_the_entries_the_retriever_returned(make_pipeline):
    """The scorer's candidates are the retrieved documents' entries, with the same fused scores as a full scan."""
    faq = make_pipeline(ScriptedModel([]))
    vector = get_encoder(faq.encoder).encode([QUERIES[0]])[0]
    docs = faq.retrieval.get_component("embedding_retriever").run(query_embedding=vector.tolist(), top_k=3)["documents"]
    scorer = EntryScorer(top_k=10, index=faq.index, entry_ids=faq.entry_ids)
    candidates = scorer.run(query_embedding=vector.tolist(), documents=docs)["candidates"]
    retrieved = {d.meta["entry_id"] for d in docs}
    assert {c["entry_id"] for c in candidates} == retrieved
    full = faq.index.score(vector[None, :])[0]
    for c in candidates:
        assert c["score"] == pytest.approx(float(full[faq.entry_ids.index(c["entry_id"])]), abs=1e-5)
    assert scorer.run(query_embedding=vector.tolist(), documents=[])["candidates"] == []


def test_scorer_takes_the_embedders_array_or_a_list_alike(make_pipeline):
    """``query_vector`` (the embedder's float32 array) and ``query_embedding`` (a list) give the same
    candidates; neither is an error naming both."""
    faq = make_pipeline(ScriptedModel([]))
    vector = get_encoder(faq.encoder).encode([QUERIES[0]])[0]
    docs = faq.retrieval.get_component("embedding_retriever").run(query_embedding=vector.tolist())["documents"]
    scorer = EntryScorer(index=faq.index, entry_ids=faq.entry_ids)
    assert scorer.run(documents=docs, query_vector=vector) == scorer.run(documents=docs, query_embedding=vector.tolist())
    with pytest.raises(ValueError, match="query_embedding or query_vector"):
        scorer.run(documents=docs)


def test_a_retrieval_yaml_that_passes_the_list_embedding_still_loads(make_pipeline):
    """A pipeline dumped before the scorer took the array (``embedder.embedding -> scorer.query_embedding``)
    loads and ranks like the built one."""
    faq = make_pipeline(ScriptedModel([]))
    text = faq.retrieval.dumps().replace("- receiver: scorer.query_vector\n  sender: embedder.vector",
                                         "- receiver: scorer.query_embedding\n  sender: embedder.embedding")
    assert "scorer.query_embedding" in text
    with bind(faq=faq, model=faq.model):
        older = Pipeline.loads(text, allowed_modules=ALLOWED_MODULES)
    for query in QUERIES:
        assert _candidates(older, query) == _candidates(faq.retrieval, query)


def test_entry_scorer_validates_its_configuration(make_pipeline):
    """A bad top_k or a missing index fails at construction, not at the first query."""
    faq = make_pipeline(ScriptedModel([]))
    with pytest.raises(ConfigError, match="top_k"):
        EntryScorer(top_k=0, index=faq.index, entry_ids=faq.entry_ids)
    with pytest.raises(ConfigError, match="index"):
        EntryScorer()


def test_bare_loads_rebuilds_the_faq_from_settings(make_pipeline, rag_home, monkeypatch):
    """Pipeline.loads without a bound FAQ builds KB, index and store from Settings() and answers."""
    dumped = make_pipeline(ScriptedModel([])).retrieval.dumps()
    monkeypatch.setenv("SUPPORTDESK_HOME", str(rag_home))
    monkeypatch.delenv("SUPPORTDESK_CONFIG_DIR", raising=False)
    loaded = Pipeline.loads(dumped, allowed_modules=ALLOWED_MODULES)
    out = loaded.run({"embedder": {"text": "How do I reset my password?"}})
    assert out["router"]["answered"]["entry_id"] == "reset-password"


def test_edited_yaml_in_the_config_folder_replaces_the_built_pipeline(make_pipeline, rag_home, tmp_path):
    """<config_dir>/pipelines/retrieval.yaml is loaded: its gate threshold and retriever top_k are the ones used."""
    text = make_pipeline(ScriptedModel([])).retrieval.dumps()
    edited = text.replace("top_k: 50", "top_k: 7")
    assert edited != text
    edited = edited.replace("decided_by: code\n      judge_margin: 0.1\n      judge_top_n: 3\n      threshold:",
                            "decided_by: code\n      judge_margin: 0.1\n      judge_top_n: 3\n      threshold: 0.999 #")
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "retrieval.yaml").write_text(edited, encoding="utf-8")
    settings = Settings(home=rag_home, config_dir=tmp_path)
    faq = build_faq_pipeline(settings, ScriptedModel([]), kind="embedded")
    assert faq.threshold == pytest.approx(0.999)
    assert faq.retrieval.get_component("embedding_retriever").top_k == 7
    result = faq.run("How do I reset my password?")
    assert result.route == "escalated" and "below threshold 0.999" in result.reason


@pytest.mark.parametrize(("content", "match"), [
    ("components: [not: a mapping", "not a loadable pipeline"),
    ("components: {}\nconnections: []\n", r"needs components \['embedder'"),
])
def test_broken_pipeline_yaml_is_a_config_error_naming_the_file(rag_home, tmp_path, content, match):
    """A YAML that does not load, or lacks a component the stage reads, is a ConfigError naming the file."""
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "retrieval.yaml").write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=match) as caught:
        build_faq_pipeline(Settings(home=rag_home, config_dir=tmp_path), ScriptedModel([]), kind="embedded")
    assert "retrieval.yaml" in str(caught.value)


def test_generator_puts_token_usage_in_the_reply_meta():
    """ChatModelGenerator's reply carries model and usage in ChatMessage.meta; it has no other output."""
    out = ChatModelGenerator(ScriptedModel(["two words"])).run(messages=[HaystackChatMessage.from_user("one two three")])
    assert set(out) == {"replies"}
    meta = out["replies"][0].meta
    assert meta["model"] == "scripted"
    assert meta["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def test_judge_usage_reaches_the_result_from_the_reply_meta(make_pipeline):
    """The judge's token usage in RAGResult comes from the generator's ChatMessage.meta["usage"]."""
    model = ScriptedModel([{"verdict": "answer", "entry_id": "reset-password", "answer": "Use Forgot password."}])
    result = make_pipeline(model, policy="hosted").run("How do I reset my password?")
    assert result.route == "answered" and len(result.completions) == 1
    usage = result.completions[0]
    assert usage.purpose == "faq_judge" and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.prompt_tokens == sum(len(m.content.split()) for m in model.calls[0].messages)


def test_shortlist_keeps_the_full_scan_winner_on_the_shipped_faq(make_pipeline):
    """With the default shortlist the retrieval pipeline's top entry is the full scan's for varied queries."""
    faq = make_pipeline(ScriptedModel([]))
    queries = [*QUERIES, "my card was charged twice", "how to share a notebook with my team", "delete my account"]
    for query in queries:
        full = faq.index.score(get_encoder(faq.encoder).encode([query]))[0]
        assert _candidates(faq.retrieval, query)[0]["entry_id"] == faq.entry_ids[int(np.argmax(full))]


def test_faq_store_retrieval_matches_the_in_memory_store():
    """FAQDocumentStore's matrix retrieval returns the base store's documents, order and cosine scores."""
    from haystack import Document
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    from supportdesk.rag.document_store import FAQDocumentStore

    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((60, 8)).astype(np.float32)
    texts, owners = [f"t{i}" for i in range(60)], [f"e{i // 3}" for i in range(60)]
    ours = FAQDocumentStore.from_texts(texts, vectors, owners)
    base = InMemoryDocumentStore(embedding_similarity_function="cosine")
    base.write_documents([Document(content=t, embedding=v.tolist(), meta={"entry_id": o})
                          for t, v, o in zip(texts, vectors, owners, strict=True)])
    query = rng.standard_normal(8).tolist()
    got, want = ours.embedding_retrieval(query, top_k=7), base.embedding_retrieval(query, top_k=7)
    assert [d.content for d in got] == [d.content for d in want]
    assert [d.score for d in got] == pytest.approx([d.score for d in want], abs=1e-5)
    assert all(d.embedding is None for d in got)
