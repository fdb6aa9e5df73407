"""A Haystack chat generator backed by any supportdesk :class:`~supportdesk.llm.ChatModel`.

::

    from haystack.dataclasses import ChatMessage
    from supportdesk.llm import ScriptedModel
    from supportdesk.llm.haystack_generator import ChatModelGenerator

    generator = ChatModelGenerator(ScriptedModel(["Hello!"]))
    reply = generator.run(messages=[ChatMessage.from_user("Hi")])["replies"][0]
    reply.text                     # 'Hello!'
    reply.meta["usage"]            # {'prompt_tokens': ..., 'completion_tokens': ..., 'total_tokens': ...}

Serialised (``Pipeline.dumps``) it writes ``max_tokens`` only: the model is the run's, bound when the
pipeline is loaded, else built from settings (see :mod:`supportdesk._collaborators`).
"""

from __future__ import annotations

from typing import Any

from haystack import component, default_to_dict
from haystack.dataclasses import ChatMessage as HaystackChatMessage

from supportdesk.llm._types import ChatMessage, ChatModel, Completion

__all__ = ["ChatModelGenerator", "completion_from_reply", "from_haystack"]


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
        if int(max_tokens) < 1:
            raise ValueError(f"ChatModelGenerator: max_tokens must be >= 1, got {max_tokens}")
        self.model = model
        self.max_tokens = int(max_tokens)

    def to_dict(self) -> dict[str, Any]:
        """The configuration; never the model."""
        return default_to_dict(self, max_tokens=self.max_tokens)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChatModelGenerator:
        """Rebuild with the model bound for the load, else the one from settings."""
        from supportdesk._collaborators import collaborator

        return cls(collaborator("model"), **data.get("init_parameters", {}))

    @component.output_types(replies=list[HaystackChatMessage])
    def run(
        self,
        messages: list[HaystackChatMessage],
        json_schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
    ) -> dict[str, Any]:
        completion = self.model.complete(
            from_haystack(messages), json_schema=json_schema, max_tokens=max_tokens or self.max_tokens
        )
        meta = {
            "model": completion.model,
            "latency_s": completion.latency_s,
            "usage": {
                "prompt_tokens": completion.prompt_tokens,
                "completion_tokens": completion.completion_tokens,
                "total_tokens": completion.prompt_tokens + completion.completion_tokens,
            },
        }
        return {"replies": [HaystackChatMessage.from_assistant(completion.text, meta=meta)]}


def completion_from_reply(reply: HaystackChatMessage) -> Completion:
    """The usage a generator put in ``reply.meta`` (``model``, ``usage``), as a :class:`Completion`."""
    usage = reply.meta.get("usage") or {}
    return Completion(
        text=reply.text or "",
        model=str(reply.meta.get("model", "")),
        prompt_tokens=int(usage.get("prompt_tokens", 0)),
        completion_tokens=int(usage.get("completion_tokens", 0)),
        latency_s=float(reply.meta.get("latency_s", 0.0)),
    )
