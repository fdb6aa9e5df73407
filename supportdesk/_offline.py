"""Offline by default, without touching the host application's own telemetry or configuration.

What is switched off, and how: only the vendors' *own* switches, each set only if the user has not
set it (an explicit ``CREWAI_DISABLE_TELEMETRY=false`` still wins):

* CrewAI: ``CREWAI_DISABLE_TELEMETRY`` / ``CREWAI_DISABLE_TRACKING`` (``crewai_core.telemetry`` then
  builds no exporter; it is read when its ``Telemetry`` singleton starts and before every span) and
  ``CREWAI_TRACING_ENABLED=false`` (no AMP trace upload, no first-run prompt).
* Haystack: ``HAYSTACK_TELEMETRY_ENABLED=False`` (read once, when ``haystack`` is imported).
* chromadb (CrewAI's memory) ``ANONYMIZED_TELEMETRY``; litellm ``LITELLM_TELEMETRY``.

``OTEL_SDK_DISABLED`` is **never** set: it is the OpenTelemetry SDK's global kill switch and would
switch off the host application's tracing too (CrewAI honours its own switches above without it).
Nor are process-wide library settings such as ``HF_HUB_OFFLINE`` set: supportdesk loads its weights
from package data and needs none of them.

The ``telemetry`` setting (``SUPPORTDESK_TELEMETRY``) switches all of this: :func:`apply_offline_defaults`
runs from ``supportdesk/__init__`` (the vendors read their switches when imported, and a host may
import them right after us), and :func:`apply_vendor_settings` applies a run's :class:`Settings`
before its services import CrewAI and Haystack, undoing the defaults when ``telemetry=True``.
Haystack fixes its choice at import, so turn it on before the first run of the process.

``.env`` files: supportdesk reads none (settings come from the environment and arguments only).
CrewAI calls ``load_dotenv()`` when ``crewai`` is imported, which would load the ``.env`` of the
folder above its virtualenv into ``os.environ``; :func:`import_crewai` imports it with
``PYTHON_DOTENV_DISABLED`` set for that import only, so no ``.env`` changes supportdesk's settings
behind the user's back. Load one yourself if you want it (``set -a; . ./.env; set +a``).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

__all__ = ["OFFLINE_ENV", "apply_offline_defaults", "apply_telemetry", "apply_vendor_settings", "import_crewai"]

logger = logging.getLogger(__name__)

OFFLINE_ENV = {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_DISABLE_TRACKING": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "HAYSTACK_TELEMETRY_ENABLED": "False",
    "ANONYMIZED_TELEMETRY": "False",
    "LITELLM_TELEMETRY": "False",
}

_TRUE = ("1", "true", "yes", "on")
#: The variables this module set (so turning telemetry on removes ours and never the user's).
_ours: set[str] = set()
_lock = threading.Lock()


def apply_telemetry(enabled: bool) -> None:
    """Switch the vendors' telemetry: off sets the variables the user has not set; on removes ours."""
    with _lock:
        if not enabled:
            for name, value in OFFLINE_ENV.items():
                if name not in os.environ:
                    os.environ[name] = value
                    _ours.add(name)
            return
        for name in [n for n in _ours if n in OFFLINE_ENV]:
            if os.environ.get(name) == OFFLINE_ENV[name]:
                del os.environ[name]
            _ours.discard(name)
    if "haystack" in sys.modules:
        logger.info("telemetry on: Haystack read its switch when it was imported; it applies from the next process")


def apply_offline_defaults() -> None:
    """Telemetry off unless ``SUPPORTDESK_TELEMETRY`` is true (runs when ``supportdesk`` is imported)."""
    apply_telemetry(os.environ.get("SUPPORTDESK_TELEMETRY", "").strip().lower() in _TRUE)
    _storage_dir(Path(os.environ.get("SUPPORTDESK_HOME") or Path.home() / ".supportdesk"))


def _storage_dir(home: Path) -> None:
    """CrewAI's local storage under supportdesk's home (not ``~/.local/share/<cwd name>``), unless set by the user."""
    with _lock:
        if "CREWAI_STORAGE_DIR" not in os.environ or "CREWAI_STORAGE_DIR" in _ours:
            os.environ["CREWAI_STORAGE_DIR"] = str(home / "crewai")
            _ours.add("CREWAI_STORAGE_DIR")


def apply_vendor_settings(settings: Any) -> None:
    """Apply a run's settings to the vendors before they are imported: telemetry, CrewAI's storage folder."""
    apply_telemetry(bool(getattr(settings, "telemetry", False)))
    home = getattr(settings, "home", None)
    if home is not None:
        _storage_dir(Path(home))


def import_crewai() -> None:
    """Import ``crewai`` once without its import-time ``load_dotenv()`` (see the module docstring)."""
    if "crewai" in sys.modules:
        return
    with _lock:
        user_value = os.environ.get("PYTHON_DOTENV_DISABLED")
        if user_value is None:
            os.environ["PYTHON_DOTENV_DISABLED"] = "1"
        try:
            import crewai  # noqa: F401
        finally:
            if user_value is None:
                os.environ.pop("PYTHON_DOTENV_DISABLED", None)
