"""The one interface every model behind supportdesk implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = ["ChatMessage", "ChatModel", "Completion", "Role"]

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    """One message of a conversation."""

    role: Role
    content: str


@dataclass(frozen=True)
class Completion:
    """What a model returned, with the usage figures budgets and the audit trail need."""

    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: Prompt tokens the provider served from its prompt cache (llama.cpp's, OpenAI's, Anthropic's); 0 if unknown.
    cached_prompt_tokens: int = field(default=0, compare=False)


@runtime_checkable
class ChatModel(Protocol):
    """A chat model: messages in, text out, optionally constrained to a JSON schema.

    Implementations: :class:`~supportdesk.llm.EmbeddedModel`, :class:`~supportdesk.llm.OpenAICompatibleModel`,
    :class:`~supportdesk.llm.AnthropicModel` and, for tests, :class:`~supportdesk.llm.ScriptedModel`.
    """

    name: str

    def complete(
        self,
        messages: list[ChatMessage],
        *,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int = 512,
        temperature: float = 0.0,
    ) -> Completion:
        """Return the model's reply. Raise an :class:`~supportdesk.errors.LLMError` on failure."""
        ...
