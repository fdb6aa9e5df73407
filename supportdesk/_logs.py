"""The CLI's log output: text, or JSON lines (``SUPPORTDESK_LOG_FORMAT=json``) with run id and step.

Only the CLI calls :func:`configure_cli_logging` (it owns the process); embedded, supportdesk adds no
handler and leaves the host's root configuration alone. A host that wants the run id and step on its
own records adds :class:`RunContextFilter` to its handler::

    handler.addFilter(RunContextFilter())        # record.run_id, record.step ("-" outside a run)
    handler.setFormatter(JsonFormatter())         # {"ts", "level", "logger", "message", "run_id", "step"}
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import TextIO

from supportdesk import _tracing

__all__ = ["JsonFormatter", "RunContextFilter", "configure_cli_logging"]

TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"


class RunContextFilter(logging.Filter):
    """Stamps ``run_id`` and ``step`` of the current run (contextvars, so threads started with
    ``contextvars.copy_context()`` keep theirs) on every record passing the handler it is on."""

    def filter(self, record: logging.LogRecord) -> bool:
        run_id, step = _tracing.current()
        record.run_id = run_id or getattr(record, "run_id", None) or "-"
        record.step = step or getattr(record, "step", None) or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts (UTC, ISO 8601), level, logger, message, run_id, step, exc (if any)."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "run_id": getattr(record, "run_id", "-"),
            "step": getattr(record, "step", "-"),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["exc"] = record.exc_text
        return json.dumps(data, ensure_ascii=False, default=str)


def configure_cli_logging(*, verbose: bool, log_format: str = "text", stream: TextIO | None = None) -> logging.Handler:
    """The CLI's one stderr handler (root logger: the CLI is the application), with run context."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(RunContextFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])  # no-op if configured
    return handler
