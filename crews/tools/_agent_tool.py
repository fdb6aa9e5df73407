"""The base of supportdesk's CrewAI tools: an invalid call becomes an error message for the agent.

An agent that passes bad arguments (or a tool that fails on a bad value) gets one line back,
``Error: ...``, and can correct itself; nothing raises into CrewAI's executor::

    class LookupTool(AgentSafeTool):
        name: str = "lookup"
        description: str = "..."
        args_schema: type[BaseModel] = LookupArgs
"""

from __future__ import annotations

from typing import Any

from crewai.tools import BaseTool
from pydantic import ValidationError

from supportdesk import _tracing

__all__ = ["AgentSafeTool", "one_line", "validation_message"]


def one_line(exc: Exception) -> str:
    """An exception's message on one line, at most 400 characters."""
    return " ".join(str(exc).split())[:400]


def validation_message(exc: ValidationError) -> str:
    """A pydantic validation error as one short line: ``field: message; field: message``."""
    parts = []
    for error in exc.errors()[:4]:
        where = ".".join(str(p) for p in error["loc"]) or "arguments"
        parts.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


class AgentSafeTool(BaseTool):
    """A tool whose arguments are validated against ``args_schema`` before it runs."""

    def invalid(self, exc: ValidationError) -> str:
        """The message an agent gets for arguments that do not validate."""
        return f"Error: invalid arguments for {self.name}: {validation_message(exc)}"

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """Run the tool for an agent: invalid arguments or values come back as an ``Error: ...`` string."""
        with _tracing.span(f"supportdesk.tool {self.name}", **{"tool.name": self.name, "tool.caller": "agent"}) as span:
            result = self._checked_run(*args, **kwargs)
            if span is not None:
                span.set_attribute("tool.error", isinstance(result, str) and result.startswith("Error:"))
            return result

    def _checked_run(self, *args: Any, **kwargs: Any) -> Any:
        if not args:
            try:
                self.args_schema.model_validate(kwargs)
            except ValidationError as exc:
                return self.invalid(exc)
        try:
            return super().run(*args, **kwargs)
        except ValueError as exc:
            return f"Error: {one_line(exc)}"
