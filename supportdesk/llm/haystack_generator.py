"""A Haystack chat generator backed by any supportdesk :class:`~supportdesk.llm.ChatModel`.

::

    from haystack.dataclasses import ChatMessage
    from supportdesk.llm import ScriptedModel
    from supportdesk.llm.haystack_generator import ChatModelGenerator

    generator = ChatModelGenerator(ScriptedModel(["Hello!"]))
    generator.run(messages=[ChatMessage.from_user("Hi")])["replies"][0].text   # 'Hello!'
"""

from __future__ import annotations

from typing import Any

from haystack import component
from haystack.dataclasses import ChatMessage as HaystackChatMessage

from supportdesk.llm._types import ChatMessage, ChatModel, Completion

__all__ = ["ChatModelGenerator", "from_haystack"]


def from_haystack(messages: list[HaystackChatMessage]) -> list[ChatMessage]:
    """Convert Haystack chat messages (system/user/assistant text) to ours."""
    converted = []
    for message in messages:
        role = message.role.value if hasattr(message.role, "value") else str(message.role)
        if role not in ("system", "user", "assistant"):
            role = "user"
        converted.append(ChatMessage(role, message.text or ""))  # type: ignore[arg-type]
    return converted


@component
class ChatModelGenerator:
    """Generates one reply with a supportdesk ChatModel, optionally JSON-schema constrained.

    :param model: the shared chat model of the run.
    :param max_tokens: default completion budget.
    """

    def __init__(self, model: ChatModel, max_tokens: int = 512) -> None:
        self.model = model
        self.max_tokens = max_tokens

    @component.output_types(replies=list[HaystackChatMessage], completions=list[Completion])
    def run(
        self,
        messages: list[HaystackChatMessage],
        json_schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
    ) -> dict[str, Any]:
        completion = self.model.complete(
            from_haystack(messages), json_schema=json_schema, max_tokens=max_tokens or self.max_tokens
        )
        return {"replies": [HaystackChatMessage.from_assistant(completion.text)], "completions": [completion]}
