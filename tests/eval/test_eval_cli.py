"""``supportdesk eval`` and ``supportdesk eval-data`` end to end on tiny fixtures (offline, no LLM call)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from supportdesk.cli import main
from supportdesk.eval import Case
from supportdesk.eval.cli import stage_cases

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
    {"id": "offline-mode", "question": "Does the app work offline?",
     "paraphrases": ["can I use it without internet", "offline access to notes", "no connection, can I still edit"],
     "answer": "Yes: notes you opened recently stay available offline."},
]
CASES = [
    {"id": "c1", "query": "I can't remember my password", "expected_route": "answer", "expected_faq_id": "reset-password",
     "expected_category": "technical"},
    {"id": "c2", "query": "how can I export all my notes to PDF?", "expected_route": "answer",
     "expected_faq_id": "export-notes", "expected_category": "general"},
    {"id": "c3", "query": "please close my account and remove my data", "expected_route": "answer",
     "expected_faq_id": "delete-account", "expected_category": "general"},
]
EXAMPLES = [
    {"query": "I was charged twice this month", "category": "billing", "priority": "high"},
    {"query": "refund my last invoice please", "category": "billing", "priority": "medium"},
    {"query": "where can I download my receipts", "category": "billing", "priority": "low"},
    {"query": "the app crashes when I open a note", "category": "technical", "priority": "medium"},
    {"query": "the whole service is down for our team", "category": "technical", "priority": "high"},
    {"query": "sync stopped working after the update", "category": "technical"},
    {"query": "do you have a discount for students", "category": "general", "priority": "low"},
    {"query": "what are your opening hours", "category": "general", "priority": "low"},
]
TRIAGE_CASES = [
    {"id": "t1", "query": "you billed me two times for the same month", "expected_category": "billing",
     "expected_priority": "high"},
    {"id": "t2", "query": "the application crashes every time I open it", "expected_category": "technical"},
    {"id": "t3", "query": "is there a student discount?", "expected_category": "general", "expected_priority": "low"},
]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return {
        "kb": _write(tmp_path / "kb.jsonl", KB),
        "cases": _write(tmp_path / "cases.jsonl", CASES),
        "examples": _write(tmp_path / "examples.jsonl", EXAMPLES),
        "triage_cases": _write(tmp_path / "triage.jsonl", TRIAGE_CASES),
    }


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("flag", ["--cases", "--kb", "--examples"])
def test_missing_file_is_one_line_and_exit_2(files, capsys, tmp_path, flag):
    """A missing --cases, --kb or --examples exits 2 with one line naming the flag and the path."""
    args = {"--cases": files["cases"], "--kb": files["kb"], "--examples": files["examples"]}
    args[flag] = tmp_path / "nope.jsonl"
    argv = ["eval", "--stage", "rag"] + [str(x) for pair in args.items() for x in pair]
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert flag in line and "nope.jsonl" in line and "no such file" in line


def test_bad_jsonl_names_file_and_line(files, capsys, tmp_path):
    """A line that is not JSON (or not a valid case) exits 2 naming the file and the line number."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(CASES[0]) + "\n{not json\n", encoding="utf-8")
    assert main(["eval", "--stage", "rag", "--kb", str(files["kb"]), "--cases", str(bad)]) == 2
    assert "bad.jsonl:2" in _one_error_line(capsys)

    typo = _write(tmp_path / "typo.jsonl", [{"query": "x", "expected_rout": "answer"}])
    assert main(["eval", "--stage", "triage", "--cases", str(typo)]) == 2
    assert "typo.jsonl:1" in _one_error_line(capsys)


def test_bad_kb_line_is_one_line(files, capsys, tmp_path):
    """A KB line without an answer exits 2 with the KB file and line."""
    kb = _write(tmp_path / "kb-bad.jsonl", [KB[0], {"id": "x", "question": "q"}])
    assert main(["eval", "--stage", "rag", "--kb", str(kb), "--cases", str(files["cases"])]) == 2
    assert "kb-bad.jsonl:2" in _one_error_line(capsys)


@pytest.mark.parametrize("stage", ["rag", "flow"])
def test_rag_and_flow_need_a_kb(files, capsys, stage):
    """--stage rag/flow without --kb exits 2 (flow is the default stage)."""
    argv = ["eval", "--cases", str(files["cases"])] + (["--stage", stage] if stage != "flow" else [])
    assert main(argv) == 2
    assert "--kb" in _one_error_line(capsys)


def test_bad_limit_is_exit_2(files, capsys):
    assert main(["eval", "--stage", "triage", "--cases", str(files["triage_cases"]), "--limit", "0"]) == 2
    assert "--limit" in _one_error_line(capsys)


def test_rag_stage_runs_offline_and_writes_json_and_html(files, capsys, tmp_path, loopback_only):
    """The FAQ stage over a tiny KB answers paraphrases from the right entry without any LLM call,
    prints the metrics and writes the JSON and HTML reports; categories are not scored for it."""
    out_json, out_html = tmp_path / "out.json", tmp_path / "out.html"
    code = main(["eval", "--stage", "rag", "--kb", str(files["kb"]), "--cases", str(files["cases"]),
                 "--json", str(out_json), "--report", str(out_html)])
    assert code == 0
    table = capsys.readouterr().out
    assert "faq_hit@1" in table and "category_accuracy" not in table
    data = json.loads(out_json.read_text(encoding="utf-8"))
    values = {m["name"]: m["value"] for m in data["metrics"]["values"]}
    assert values["faq_hit@1"] == 1.0
    assert values["llm_calls_per_case"] == 0
    assert data["settings"]["stage"] == "rag" and data["settings"]["threshold"] is not None
    assert out_html.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")
    assert not [a for a in loopback_only if isinstance(a, tuple)]


def test_triage_stage_uses_the_given_examples(files, capsys, tmp_path):
    """--classifier-examples: the kNN yardstick over labelled examples: categories (and priorities where
    labelled), no LLM; an example without a priority still votes for its category."""
    out_json = tmp_path / "t.json"
    code = main(["eval", "--stage", "triage", "--classifier-examples", str(files["examples"]),
                 "--cases", str(files["triage_cases"]), "--json", str(out_json)])
    assert code == 0
    assert "category_accuracy" in capsys.readouterr().out
    data = json.loads(out_json.read_text(encoding="utf-8"))
    values = {m["name"]: m["value"] for m in data["metrics"]["values"]}
    assert values["category_accuracy"] == 1.0
    assert values["llm_calls_per_case"] == 0
    assert data["settings"]["classifier"]["examples"] == len(EXAMPLES)


def test_triage_stage_defaults_to_packaged_examples(files, capsys, tmp_path):
    """The triage stage evaluates the shipped classifier (packaged triage_examples.yaml with its rules),
    even when dataset examples are given with --examples."""
    out_json = tmp_path / "t.json"
    assert main(["eval", "--stage", "triage", "--examples", str(files["examples"]), "--cases",
                 str(files["triage_cases"]), "--limit", "2", "--json", str(out_json)]) == 0
    assert "category_accuracy" in capsys.readouterr().out
    settings = json.loads(out_json.read_text(encoding="utf-8"))["settings"]
    assert settings["classifier_source"] == "shipped" and settings["classifier"]["rules"] > 0


def test_flow_stage_answers_from_the_kb_and_files_nothing_in_home(files, capsys, tmp_path):
    """The whole flow over the KB: FAQ hits close the run without an LLM call; tickets, customers and
    run records go to a scratch home, never the user's."""
    code = main(["eval", "--stage", "flow", "--kb", str(files["kb"]), "--cases", str(files["cases"]), "--limit", "2"])
    assert code == 0
    captured = capsys.readouterr()
    assert "route_accuracy" in captured.out and "[2/2]" in captured.err
    assert not list((tmp_path / "home").glob("*.db"))


def test_stage_cases_drops_labels_a_stage_cannot_produce():
    case = Case(query="q", expected_route="answer", expected_faq_id="a", expected_category="billing",
                expected_priority="high")
    assert stage_cases([case], "rag")[0].expected_category is None
    assert stage_cases([case], "rag")[0].expected_faq_id == "a"
    assert stage_cases([case], "triage")[0].expected_route is None
    assert stage_cases([case], "triage")[0].expected_priority == "high"
    assert stage_cases([case], "flow")[0].expected_category is None  # the flow classifies escalations only
    escalate = case.model_copy(update={"expected_route": "escalate", "expected_faq_id": None})
    assert stage_cases([escalate], "flow")[0] == escalate


def test_eval_data_missing_source_is_exit_2(capsys, tmp_path):
    """eval-data on a folder without the dataset exits 2 with one line."""
    assert main(["eval-data", "clinc150", "--source", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    assert "error" in _one_error_line(capsys)
