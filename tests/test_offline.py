"""Start-up and vendor switches: what `import supportdesk` loads and sets, telemetry, .env handling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _python(code: str, *, env: dict[str, str] | None = None, cwd: Path | None = None) -> dict:
    """Run ``code`` in a fresh interpreter (a clean sys.modules and environment) and return its JSON output."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CREWAI_", "HAYSTACK_", "OTEL_", "SUPPORTDESK_"))}
    base.pop("PYTHON_DOTENV_DISABLED", None)
    out = subprocess.run(
        [sys.executable, "-c", code], env={**base, **(env or {})}, cwd=cwd or REPO,
        capture_output=True, text=True, timeout=300, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_supportdesk_loads_no_framework():
    """`import supportdesk` imports neither crewai, haystack, mirascope, the LLM SDKs nor xllamacpp."""
    got = _python(
        "import sys, json, supportdesk; "
        "print(json.dumps(sorted(m for m in ('crewai', 'haystack', 'mirascope', 'openai', 'anthropic', 'xllamacpp', "
        "'litellm', 'torch') if m in sys.modules)))"
    )
    assert got == []


def test_import_supportdesk_leaves_the_host_opentelemetry_alone():
    """No OTEL_* variable is set, and a host TracerProvider keeps recording spans after importing supportdesk."""
    got = _python(
        "import os, json\n"
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.trace.export import SimpleSpanProcessor\n"
        "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter\n"
        "exporter = InMemorySpanExporter(); provider = TracerProvider()\n"
        "provider.add_span_processor(SimpleSpanProcessor(exporter)); trace.set_tracer_provider(provider)\n"
        "import supportdesk\n"
        "with trace.get_tracer('host').start_as_current_span('host-span'): pass\n"
        "print(json.dumps({'otel': sorted(k for k in os.environ if k.startswith('OTEL_')),"
        " 'spans': [s.name for s in exporter.get_finished_spans()]}))"
    )
    assert got == {"otel": [], "spans": ["host-span"]}


def test_vendor_telemetry_is_off_by_default_by_their_own_switches():
    """CrewAI's and Haystack's own opt-outs are set; CrewAI's telemetry object comes up disabled."""
    got = _python(
        "import os, json, supportdesk\n"
        "from crewai_core.telemetry import Telemetry\n"
        "print(json.dumps({k: os.environ.get(k) for k in ('CREWAI_DISABLE_TELEMETRY', 'CREWAI_TRACING_ENABLED',"
        " 'HAYSTACK_TELEMETRY_ENABLED')} | {'crewai_disabled': Telemetry._is_telemetry_disabled()}))"
    )
    assert got == {"CREWAI_DISABLE_TELEMETRY": "true", "CREWAI_TRACING_ENABLED": "false",
                   "HAYSTACK_TELEMETRY_ENABLED": "False", "crewai_disabled": True}


def test_telemetry_setting_switches_the_vendor_switches():
    """SUPPORTDESK_TELEMETRY=true leaves the vendors on; Settings(telemetry=True) removes our opt-outs, never the user's."""
    env_on = _python(
        "import os, json, supportdesk; print(json.dumps(os.environ.get('CREWAI_DISABLE_TELEMETRY')))",
        env={"SUPPORTDESK_TELEMETRY": "true"},
    )
    assert env_on is None
    got = _python(
        "import os, json, supportdesk\n"
        "from supportdesk._offline import apply_vendor_settings\n"
        "apply_vendor_settings(supportdesk.Settings(telemetry=True))\n"
        "print(json.dumps([os.environ.get('CREWAI_DISABLE_TELEMETRY'), os.environ.get('HAYSTACK_TELEMETRY_ENABLED')]))",
        env={"HAYSTACK_TELEMETRY_ENABLED": "False"},  # the user's own choice stays
    )
    assert got == [None, "False"]


def test_crewai_import_does_not_load_a_dotenv(tmp_path):
    """CrewAI's import-time load_dotenv() runs disabled when supportdesk imports crewai, and the guard leaves
    no variable behind: a .env in the working folder does not reach the settings."""
    (tmp_path / ".env").write_text("SUPPORTDESK_LLM=openai/from-dotenv\nOPENAI_API_KEY=sk-from-dotenv\n")
    got = _python(
        "import os, sys, json, dotenv\n"
        "seen = []\n"
        "real = dotenv.load_dotenv\n"
        "def spy(*a, **k):\n"
        "    seen.append(os.environ.get('PYTHON_DOTENV_DISABLED'))\n"
        "    return real(dotenv.find_dotenv(usecwd=True), **k)  # look where the user stands\n"
        "dotenv.load_dotenv = spy\n"
        "import supportdesk, supportdesk.flows\n"
        "print(json.dumps([seen, os.environ.get('OPENAI_API_KEY'), supportdesk.load_settings().llm,"
        " os.environ.get('PYTHON_DOTENV_DISABLED'), 'crewai' in sys.modules]))",
        cwd=tmp_path,
    )
    calls, key, llm, left, crewai_loaded = got
    assert calls and all(value == "1" for value in calls)
    assert (key, llm, left, crewai_loaded) == (None, "embedded", None, True)


@pytest.mark.parametrize("module", ["supportdesk.llm.structured", "supportdesk.rag.pipeline"])
def test_structured_output_modules_import_mirascope_lazily(module):
    """Modules on the FAQ path do not import Mirascope (and the openai SDK) until a structured call is made."""
    got = _python(f"import sys, json, {module}; print(json.dumps('mirascope' in sys.modules))")
    assert got is False
