"""A scripted chat model for tests and demos: it replays answers and records every request.

Like pydantic-ai's ``TestModel``, it ships in the package so users can test code that embeds
supportdesk without any model::

    from supportdesk.llm import ScriptedModel

    model = ScriptedModel(['{"verdict": "no_answer"}'])
    model.complete([ChatMessage("user", "hi")]).text   # '{"verdict": "no_answer"}'
    model.calls[0].messages[0].content                   # 'hi'
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from supportdesk.errors import LLMError
from supportdesk.llm._types import ChatMessage, Completion

__all__ = ["ScriptedCall", "ScriptedModel"]


@dataclass(frozen=True)
class ScriptedCall:
    """One request the scripted model received."""

    messages: list[ChatMessage]
    json_schema: dict[str, Any] | None
    max_tokens: int


Responder = Callable[[ScriptedCall], "str | dict[str, Any] | Exception"]


class ScriptedModel:
    """Answers from a list (in order) or from a function of the request.

    :param responses: strings, dicts (sent as JSON) or exceptions (raised), used in order;
        or one callable that receives a :class:`ScriptedCall` and returns one of those.
    :param name: the model name reported in completions.
    """

    def __init__(self, responses: Iterable[str | dict[str, Any] | Exception] | Responder, *, name: str = "scripted") -> None:
        self.name = name
        self._responder: Responder | None = responses if callable(responses) else None
        self._queue: list[str | dict[str, Any] | Exception] = [] if callable(responses) else list(responses)
        self.calls: list[ScriptedCall] = []
        self._lock = threading.Lock()

    def complete(
        self,
        messages: list[ChatMessage],
        *,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int = 512,
        temperature: float = 0.0,
    ) -> Completion:
        call = ScriptedCall(list(messages), json_schema, max_tokens)
        with self._lock:
            self.calls.append(call)
            if self._responder is not None:
                reply = self._responder(call)
            elif self._queue:
                reply = self._queue.pop(0)
            else:
                raise LLMError(f"ScriptedModel {self.name!r} has no scripted response left (call {len(self.calls)})")
        if isinstance(reply, Exception):
            raise reply
        text = reply if isinstance(reply, str) else json.dumps(reply)
        prompt_tokens = sum(len(m.content.split()) for m in messages)
        return Completion(text=text, model=self.name, prompt_tokens=prompt_tokens, completion_tokens=len(text.split()))
