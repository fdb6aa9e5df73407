"""What CrewAI would persist on its own, switched off: supportdesk's journal is the only store of a run.

CrewAI 1.15 writes every crew kickoff's task inputs and outputs (the customer's message, the account
facts, the drafted ticket) to ``latest_kickoff_task_outputs.db`` under ``CREWAI_STORAGE_DIR``, for its
``crewai replay`` command. supportdesk resumes from its own journal (redacted audit trail, masked
cards) and never uses that replay, so :class:`UnstoredCrew` keeps those outputs in memory only::

    from supportdesk.crews._crewai_stores import UnstoredCrew

    crew = UnstoredCrew(agents=[...], tasks=[...], memory=False)   # a Crew; nothing written to disk

Memory (``memory=False``) and flow persistence (no ``@persist``) are off in supportdesk already, so
nothing else of a run lands in CrewAI's storage folder.
"""

from __future__ import annotations

from typing import Any

from crewai import Crew
from crewai.utilities.task_output_storage_handler import TaskOutputStorageHandler
from pydantic import PrivateAttr

__all__ = ["DiscardedTaskOutputs", "UnstoredCrew"]


class DiscardedTaskOutputs(TaskOutputStorageHandler):
    """A task-output store that keeps nothing (no SQLite file is opened or created)."""

    def __init__(self) -> None:  # no super().__init__: that opens the SQLite store
        self.storage = None  # type: ignore[assignment]

    def update(self, task_index: int, log: dict[str, Any]) -> None:
        return None

    def add(self, task: Any, output: dict[str, Any], task_index: int, inputs: dict[str, Any] | None = None,
            was_replayed: bool = False) -> None:
        return None

    def reset(self) -> None:
        return None

    def load(self) -> list[dict[str, Any]] | None:
        return None


class UnstoredCrew(Crew):
    """A CrewAI ``Crew`` whose kickoff task outputs are never written to CrewAI's storage folder."""

    _task_output_handler: TaskOutputStorageHandler = PrivateAttr(default_factory=DiscardedTaskOutputs)
