"""Property-based fuzzing of /openapi.json against a live server: no response may be a 5xx."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("schemathesis", reason="schemathesis is not installed: pip install -e '.[test]'")


def test_no_generated_request_gets_a_server_error(live_server, tmp_path):
    """schemathesis (bounded: 25 examples per operation, fixed seed) finds no response >= 500."""
    server, live = live_server
    token = live.keys.create("fuzz")[1]
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which("schemathesis")
    assert cli, "schemathesis CLI not found next to the interpreter"
    command = [
        cli, "run", f"{server.url}/openapi.json",
        "--checks", "not_a_server_error",
        "--max-examples", "25",
        "--seed", "20261201",
        "--phases", "examples,fuzzing",
        "--request-timeout", "30",
        "--workers", "1",
        "--header", f"Authorization: Bearer {token}",
        "--no-color",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    print(result.stdout[-4000:])
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "passed" in result.stdout.lower() or "no issues found" in result.stdout.lower()
