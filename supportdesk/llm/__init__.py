"""The LLM layer: one :class:`ChatModel` interface, its implementations, and the factory that builds
every model the package uses (Haystack generator, CrewAI agents' LLM, structured calls) from one setting."""

from supportdesk.llm._types import ChatMessage, ChatModel, Completion
from supportdesk.llm.scripted import ScriptedCall, ScriptedModel

__all__ = ["ChatMessage", "ChatModel", "Completion", "ScriptedCall", "ScriptedModel"]
