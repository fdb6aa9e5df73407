"""`supportdesk pipelines dump`: writes every FAQ pipeline as YAML that loads back, and an edited copy in
the config folder is the pipeline the stage uses."""

from __future__ import annotations

from haystack import Pipeline

from supportdesk._collaborators import ALLOWED_MODULES
from supportdesk.cli import main
from supportdesk.llm import ScriptedModel
from supportdesk.rag import build_faq_pipeline
from supportdesk.settings import Settings


def test_dump_writes_yaml_that_loads_back_and_is_used_from_the_config_folder(tmp_path, capsys, monkeypatch):
    """dump --out writes prefilter/retrieval/judge/web YAML; each loads with Pipeline.loads; placed under
    <config_dir>/pipelines an edited retrieval.yaml is loaded by the FAQ stage, the prefilter still in front."""
    out = tmp_path / "conf" / "pipelines"
    assert main(["pipelines", "dump", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.split()
    assert sorted(p.rsplit("/", 1)[-1] for p in printed) == ["judge.yaml", "prefilter.yaml", "retrieval.yaml",
                                                              "web.yaml"]
    for name in ("prefilter", "retrieval", "judge", "web"):
        text = (out / f"{name}.yaml").read_text(encoding="utf-8")
        assert text.startswith("# The FAQ stage's")
        assert name != "retrieval" or "      threshold: null\n" in text  # calibrated on the FAQ when loaded
        assert name != "prefilter" or ("      floor: null\n" in text and "      sure: null\n" in text)
        assert isinstance(Pipeline.loads(text, allowed_modules=ALLOWED_MODULES), Pipeline)
    retrieval = out / "retrieval.yaml"
    retrieval.write_text(retrieval.read_text(encoding="utf-8").replace("top_k: 50", "top_k: 9"), encoding="utf-8")
    monkeypatch.setenv("SUPPORTDESK_CONFIG_DIR", str(tmp_path / "conf"))
    faq = build_faq_pipeline(Settings(), ScriptedModel([]), kind="embedded")
    assert faq.retrieval.get_component("embedding_retriever").top_k == 9
    assert faq.prefilter is not None
    assert faq.run("How do I reset my password?").faq_id == "reset-password"
