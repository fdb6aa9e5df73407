"""The MiniLM prefilter in front of the all-mpnet-base-v2 gate: its verdicts, its band, its pipeline, when it
stands aside."""

from __future__ import annotations

import json

import numpy as np
import pytest
from haystack import Pipeline

from supportdesk.llm import ScriptedModel
from supportdesk.rag import FAQPipeline, KnowledgeBase, load_rag_policy
from supportdesk.rag._minilm import MPNET_NAME, NAME, get_encoder
from supportdesk.rag.components import ESCALATE_ID
from supportdesk._collaborators import ALLOWED_MODULES, bind
from supportdesk.rag.prefilter import PrefilterGate
from supportdesk.rag.scoring import EntryIndex, prefilter_band


def _verdict(query: str, floor: float, sure: float) -> dict:
    texts = ["How do I change my password?", "Reset a forgotten password", "Export a notebook as a PDF file",
             "Download my notes as PDF", "I want to talk to a human about a charge"]
    encoder = get_encoder(NAME)
    index = EntryIndex.build(encoder.encode(texts), np.array([0, 0, 1, 1, 2]), 3)
    gate = PrefilterGate(floor, sure, index=index, entry_ids=["password", "pdf", ESCALATE_ID], label=NAME)
    return gate.run(query_vector=encoder.encode([query])[0])["decision"]


def test_prefilter_verdicts_follow_its_band():
    """At or above ``sure`` it answers from the top entry, below ``floor`` it decides there is no FAQ
    answer, in between the gate decides; closest to an escalation example is no FAQ answer too."""
    sure = _verdict("my password is lost, how can I set a new one", floor=0.2, sure=0.5)
    assert sure["verdict"] == "answer" and sure["entry_id"] == "password" and sure["top"][0][0] == "password"
    assert _verdict("my password is lost, how can I set a new one", floor=0.2, sure=0.99)["verdict"] == "undecided"
    far = _verdict("which trains leave for Lyon tonight", floor=0.6, sure=0.99)
    assert far["verdict"] == "no_evidence" and "below its floor" in far["reason"]
    person = _verdict("a human needs to look at a charge on my card", floor=0.0, sure=0.5)
    assert person["verdict"] == "no_evidence" and "escalation example" in person["reason"]
    assert all(entry != ESCALATE_ID for entry, _ in person["top"])


def test_band_keeps_the_floor_under_the_answerable_texts():
    """The floor sits at the miss quantile of the cross-fit's answerable scores and under ``sure``; a KB
    with one text per entry has no floor."""
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(12, 32))
    vectors = np.repeat(centres, 8, axis=0) + 0.35 * rng.normal(size=(96, 32))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    owners = np.repeat(np.arange(12), 8)
    floor, sure = prefilter_band(vectors.astype(np.float32), owners, 12, miss=0.1)
    assert np.isfinite(floor) and floor <= sure
    singles, _ = prefilter_band(centres[:, :] / np.linalg.norm(centres, axis=1, keepdims=True), np.arange(12), 12)
    assert singles == float("-inf")


@pytest.fixture(scope="module")
def cascade(rag_home) -> FAQPipeline:
    """The shipped FAQ under the embedded policy: MiniLM in front of the all-mpnet-base-v2 gate."""
    return FAQPipeline(KnowledgeBase.from_config(), ScriptedModel([]), None, load_rag_policy("embedded"),
                       cache_dir=rag_home / "cache", encoder=MPNET_NAME)


def test_a_sure_question_is_answered_before_the_gate_is_built(rag_home):
    """A plain paraphrase of an FAQ question is answered by the prefilter alone: the larger encoder's
    index, calibration and pipeline are not built for it."""
    faq = FAQPipeline(KnowledgeBase.from_config(), ScriptedModel([]), None, load_rag_policy("embedded"),
                      cache_dir=rag_home / "cache", encoder=MPNET_NAME)
    result = faq.run("I no longer know my password, how do I sign in again?")
    assert result.route == "answered" and result.faq_id == "reset-password"
    assert "sure threshold" in result.reason and result.top_candidates[0][0] == "reset-password"
    assert "retrieval" not in faq.__dict__ and "index" not in faq.__dict__
    assert faq.prefilter_encoder == NAME and set(faq.pipelines()) == {"prefilter", "retrieval", "judge", "web"}


def test_an_undecided_question_goes_to_the_gate_once(cascade):
    """A query between the prefilter's floor and its sure bound is decided by the gate with the larger
    encoder's score and threshold; the gate is built once and reused."""
    probes = ["is there a way to have notebooks in two languages", "can my whole team see a shared page",
              "do you keep copies of deleted things", "what happens to my data in europe"]
    undecided = [q for q in probes
                 if "undecided" in cascade.prefilter.run({"embedder": {"text": q}})["router"]]
    assert undecided, "no probe fell between the floor and the sure bound"
    result = cascade.run(undecided[0])
    assert "sure threshold" not in result.reason and result.threshold == pytest.approx(cascade.threshold)
    retrieval = cascade.retrieval
    cascade.run(undecided[-1])
    assert cascade.retrieval is retrieval and cascade.index.vectors.shape[1] == 768


def test_an_explicit_threshold_or_a_strict_operator_calibration_turns_the_prefilter_off(rag_home, tmp_path):
    """A threshold fixed by hand, or an operator calibration stricter than the prefilter's own bound,
    leaves every decision to the gate; a looser operator calibration keeps the prefilter."""
    kb = KnowledgeBase.from_config()
    policy = load_rag_policy("embedded")

    def build(**kwargs):
        return FAQPipeline(kb, ScriptedModel([]), None, {**policy, **kwargs.pop("policy", {})},
                           cache_dir=rag_home / "cache", encoder=MPNET_NAME, **kwargs)

    assert build(policy={"threshold": 0.7}).prefilter is None
    strict, loose = tmp_path / "strict.json", tmp_path / "loose.json"
    for path, max_wrong in ((strict, 0.01), (loose, 0.1)):
        path.write_text(json.dumps({"threshold": 0.7, "kb_fingerprint": kb.fingerprint(), "max_wrong": max_wrong,
                                    "encoder": get_encoder(MPNET_NAME).model_id}), encoding="utf-8")
    assert build(calibration_file=strict).prefilter is None
    assert build(calibration_file=loose).prefilter is not None


def test_the_same_encoder_on_both_sides_means_no_prefilter(rag_home):
    """With the gate on all-MiniLM-L6-v2 (SUPPORTDESK_ENCODER) there is nothing cheaper in front of it."""
    faq = FAQPipeline(KnowledgeBase.from_config(), ScriptedModel([]), None, load_rag_policy("embedded"),
                      cache_dir=rag_home / "cache", encoder=NAME)
    assert faq.prefilter is None and faq.index.vectors.shape[1] == 384


def test_the_prefilter_pipeline_round_trips_and_a_null_bound_takes_the_calibrated_one(cascade):
    """dumps() -> loads() keeps the prefilter pipeline (configuration only); ``floor: null`` and
    ``sure: null`` in its YAML load the FAQ's own band."""
    text = cascade.prefilter.dumps()
    assert "reset-password" not in text and "PrefilterGate" in text
    floor, sure = cascade.prefilter_band
    edited = text.replace(f"floor: {floor}", "floor: null").replace(f"sure: {sure}", "sure: null")
    assert edited != text
    with bind(faq=cascade, model=cascade.model):
        loaded = Pipeline.loads(edited, allowed_modules=ALLOWED_MODULES)
    gate = loaded.get_component("gate")
    assert (gate.floor, gate.sure) == (floor, sure)
    query = "how do I get a pdf of my notes"
    assert loaded.run({"embedder": {"text": query}}) == cascade.prefilter.run({"embedder": {"text": query}})


def test_concurrent_first_undecided_queries_build_the_gate_once(rag_home):
    """Two threads reaching the gate at once both get its decision; it is built once (the second waits)."""
    from concurrent.futures import ThreadPoolExecutor

    faq = FAQPipeline(KnowledgeBase.from_config(), ScriptedModel([]), None, load_rag_policy("embedded"),
                      cache_dir=rag_home / "cache", encoder=MPNET_NAME)
    built = []
    original = faq._indexed
    faq._indexed = lambda encoder: built.append(encoder) or original(encoder)
    queries = ["can my whole team see a shared page", "do you keep copies of deleted things"]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(faq.run, queries))
    assert all(r.threshold == pytest.approx(faq.threshold) for r in results)
    assert len(built) == 1
