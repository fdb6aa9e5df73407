"""Offline by default: switch off every library's telemetry before those libraries are imported.

CrewAI reads its switches when ``crewai`` is imported and Haystack when ``haystack`` is, so
:func:`apply_offline_defaults` runs from ``supportdesk/__init__``: it only sets variables the user
has not set, so an explicit ``CREWAI_DISABLE_TELEMETRY=false`` (or ``SUPPORTDESK_TELEMETRY=true``)
still turns telemetry on. CrewAI's local storage goes under supportdesk's home instead of
``~/.local/share/<cwd name>``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["OFFLINE_ENV", "apply_offline_defaults"]

OFFLINE_ENV = {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_DISABLE_TRACKING": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "OTEL_SDK_DISABLED": "true",
    "HAYSTACK_TELEMETRY_ENABLED": "False",
    "ANONYMIZED_TELEMETRY": "False",
    "LITELLM_TELEMETRY": "False",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def apply_offline_defaults() -> None:
    """Set the telemetry-off variables the user has not set, unless SUPPORTDESK_TELEMETRY is true."""
    if os.environ.get("SUPPORTDESK_TELEMETRY", "").strip().lower() in ("1", "true", "yes"):
        return
    for name, value in OFFLINE_ENV.items():
        os.environ.setdefault(name, value)
    home = Path(os.environ.get("SUPPORTDESK_HOME") or Path.home() / ".supportdesk")
    os.environ.setdefault("CREWAI_STORAGE_DIR", str(home / "crewai"))
