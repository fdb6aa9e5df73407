"""``supportdesk calibrate``: fits the threshold on labelled cases, writes the file the pipeline loads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from supportdesk.cli import main
from supportdesk.eval.calibrate import Scored, fit_threshold, outcome

KB = [
    {"id": "reset-password", "question": "How do I reset my password?",
     "paraphrases": ["I forgot my password", "how to change my password", "password reset link please"],
     "answer": "Use the Forgot password link on the sign-in page."},
    {"id": "export-notes", "question": "How do I export my notes?",
     "paraphrases": ["download all my notes", "export notes to PDF", "can I save my notes as a file"],
     "answer": "Open Settings > Export and pick a format."},
    {"id": "delete-account", "question": "How do I delete my account?",
     "paraphrases": ["close my account for good", "remove my account and data", "I want to delete my profile"],
     "answer": "Settings > Account > Delete account."},
]
IN_SCOPE = [
    ("my password is lost, how do I get a new one", "reset-password"),
    ("send me a link to change my password", "reset-password"),
    ("I can't remember the password for my login", "reset-password"),
    ("get all my notes out as files", "export-notes"),
    ("save notes as PDF documents", "export-notes"),
    ("is there a way to download every note", "export-notes"),
    ("how can I close my profile permanently", "delete-account"),
    ("erase my account and everything in it", "delete-account"),
    ("I would like to remove my account", "delete-account"),
    ("where do I reset the password", "reset-password"),
    ("export my notebook", "export-notes"),
    ("shut down my account please", "delete-account"),
]
OUT_OF_SCOPE = [
    "what's the weather tomorrow", "book a table for two tonight", "how tall is mount everest",
    "play some jazz music", "what is the capital of peru", "translate hello into german",
    "how many calories in an apple", "set an alarm for 7am", "who won the football game",
    "recommend a good novel", "how do I bake sourdough bread", "what time is it in tokyo",
    "is my flight on time", "tell me a joke", "convert 10 miles to km",
]


def _cases(tmp_path: Path, repeat: int = 2) -> Path:
    rows = [{"query": q, "expected_route": "answer", "expected_faq_id": e} for q, e in IN_SCOPE] * repeat
    rows += [{"query": q, "expected_route": "escalate"} for q in OUT_OF_SCOPE] * repeat
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _kb(tmp_path: Path) -> Path:
    path = tmp_path / "kb.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in KB), encoding="utf-8")
    return path


def test_calibrate_writes_the_file_and_the_pipeline_loads_it(tmp_path, capsys):
    """The fitted threshold lands in the file; an eval over the same KB then uses it (and reports it)."""
    out = tmp_path / "calibration.json"
    code = main(["calibrate", "--kb", str(_kb(tmp_path)), "--cases", str(_cases(tmp_path)), "--max-wrong", "0.1",
                 "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "before (KB calibration)" in printed and "after (in-sample)" in printed
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["max_wrong"] == 0.1 and data["n_cases"] == 54 and data["after"]["wrong_answer_rate"] <= 0.1
    from supportdesk.eval.stages import _load_kb
    from supportdesk.llm.scripted import ScriptedModel
    from supportdesk.rag.pipeline import FAQPipeline, load_rag_policy

    rag = FAQPipeline(_load_kb(tmp_path / "kb.jsonl"), ScriptedModel([]), None, load_rag_policy("embedded"),
                      calibration_file=out)
    assert rag.threshold == data["threshold"] and rag.calibration["source"] == str(out)


def test_calibration_of_another_kb_is_ignored(tmp_path, capsys):
    """A calibration file fitted on a different KB (fingerprint) never sets the threshold."""
    out = tmp_path / "calibration.json"
    out.write_text(json.dumps({"threshold": 99.0, "kb_fingerprint": "not-this-kb"}), encoding="utf-8")
    from supportdesk.eval.stages import _load_kb
    from supportdesk.llm.scripted import ScriptedModel
    from supportdesk.rag.pipeline import FAQPipeline, load_rag_policy

    rag = FAQPipeline(_load_kb(_kb(tmp_path)), ScriptedModel([]), None, load_rag_policy("embedded"),
                      calibration_file=out)
    assert rag.threshold != 99.0


def test_calibration_fitted_with_another_encoder_is_ignored(tmp_path):
    """A calibration file of this KB but fitted with another encoder (its scores, another scale) never
    sets the threshold; one of this encoder does."""
    from supportdesk.eval.stages import _load_kb
    from supportdesk.llm.scripted import ScriptedModel
    from supportdesk.rag._minilm import get_encoder
    from supportdesk.rag.pipeline import FAQPipeline, load_rag_policy

    kb = _load_kb(_kb(tmp_path))
    out = tmp_path / "calibration.json"
    for encoder, applied in (("sentence-transformers/all-MiniLM-L6-v2@78c0197b6159d926", False),
                             (get_encoder().model_id, True)):
        out.write_text(json.dumps({"threshold": 0.99, "kb_fingerprint": kb.fingerprint(), "encoder": encoder}),
                       encoding="utf-8")
        rag = FAQPipeline(kb, ScriptedModel([]), None, load_rag_policy("embedded"), calibration_file=out)
        assert (rag.threshold == 0.99) is applied, encoder


def test_unlabelled_or_small_case_files_exit_2_with_one_line(tmp_path, capsys):
    """No route labels, or fewer than 50 labelled cases: exit 2, one line naming the problem, no file."""
    kb = _kb(tmp_path)
    unlabelled = tmp_path / "u.jsonl"
    unlabelled.write_text("".join(json.dumps({"query": f"question {i}"}) + "\n" for i in range(80)), encoding="utf-8")
    out = tmp_path / "c.json"
    assert main(["calibrate", "--kb", str(kb), "--cases", str(unlabelled), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unlabelled" in err[0]
    small = _cases(tmp_path, repeat=1)  # 27 labelled cases
    assert main(["calibrate", "--kb", str(kb), "--cases", str(small), "--out", str(out)]) == 2
    assert "at least 50" in capsys.readouterr().err
    assert main(["calibrate", "--kb", str(kb), "--cases", str(_cases(tmp_path)), "--max-wrong", "1.5",
                 "--out", str(out)]) == 2
    assert not out.exists()


def test_fit_threshold_keeps_the_wrong_answer_rate():
    """On separable synthetic confidences the fitted threshold answers the right ones and no wrong ones."""
    rng = np.random.default_rng(0)
    conf = np.r_[rng.uniform(0.7, 1.0, 100), rng.uniform(0.0, 0.5, 100)]
    expects = np.r_[np.ones(100, bool), np.zeros(100, bool)]
    scored = Scored(conf, expects.copy(), expects)
    thr = fit_threshold(scored, 0.05)
    result = outcome(scored, thr)
    assert result.wrong_answer_rate <= 0.05 and result.full_accuracy > 0.95
