"""A ``supportdesk worker`` process for the Temporal tests: the real worker with a scripted model.

    python tests/service/temporal/worker_driver.py      # settings from the environment

The model answers by the request's JSON schema (``tests/durable/crash_driver.respond``); nothing
else is patched. Logs go to stderr.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "durable"))

from crash_driver import respond  # noqa: E402

from supportdesk.llm import ScriptedModel  # noqa: E402
from supportdesk.service.temporal.worker import run_worker  # noqa: E402
from supportdesk.settings import Settings  # noqa: E402

if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="worker %(levelname)s %(name)s: %(message)s")
    run_worker(Settings(), chat_model=lambda: ScriptedModel(respond))
