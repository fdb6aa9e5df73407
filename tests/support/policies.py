"""A policies.yaml variant for tests that need the embedded model to write an escalation's rationale and
title (two model calls), as the shipped policy does not where code can write them."""

from __future__ import annotations

from pathlib import Path


def model_slots_config(folder: Path) -> Path:
    """Write into ``folder`` a policies.yaml whose embedded policy has the model write the rationale and
    the title; returns ``folder`` (a value for ``SUPPORTDESK_CONFIG_DIR``)."""
    from supportdesk._config import config_path

    text = config_path("policies.yaml").read_text(encoding="utf-8")
    patched = text.replace("rationale_written_by: code", "rationale_written_by: llm", 1)
    patched = patched.replace("title_written_by: auto", "title_written_by: llm", 1)
    assert patched.count("_written_by: llm") >= 2, "policies.yaml no longer has the slots this helper switches"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "policies.yaml").write_text(patched, encoding="utf-8")
    return folder
