"""supportdesk's chat models as Mirascope providers (imported lazily: Mirascope and the openai SDK cost
about a second to import, which the FAQ path never pays).

* :class:`ChatModelProvider` (scope ``supportdesk/``) answers Mirascope calls with the supportdesk
  :class:`~supportdesk.llm.ChatModel` bound for the current call (a context variable), so a structured
  call is Mirascope's own ``Model.call(..., format=...)`` and ``Response.validate(max_retries=...)``
  while every request still goes through the run's budget and journal wrappers. One registration
  serves every model: a registry entry per model instance would grow without bound.
* :class:`EmbeddedServerProvider` (scope ``embedded/``) is Mirascope's OpenAI-completions provider
  pointed at the embedded llama.cpp server on 127.0.0.1, for callers who want to talk to the
  offline model with Mirascope directly (:func:`supportdesk.llm.embedded.register_mirascope_provider`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from mirascope import llm
from mirascope.llm.providers import BaseOpenAICompletionsProvider, BaseProvider
from mirascope.llm.providers.provider_registry import PROVIDER_REGISTRY

from supportdesk.errors import LLMError
from supportdesk.llm._types import ChatMessage, ChatModel, Completion

__all__ = ["SCOPE", "ChatModelProvider", "EmbeddedServerProvider", "bound", "ensure_registered", "from_mirascope", "to_mirascope"]

SCOPE = "supportdesk/"


class _Binding:
    """The chat model answering the current structured call, and every completion it returned."""

    def __init__(self, model: ChatModel, instructions: bool) -> None:
        self.model = model
        self.instructions = instructions
        self.completions: list[Completion] = []


_BINDING: contextvars.ContextVar[_Binding | None] = contextvars.ContextVar("supportdesk_chat_model", default=None)


@contextlib.contextmanager
def bound(model: ChatModel, *, instructions: bool = True) -> Iterator[_Binding]:
    """Bind ``model`` to the ``supportdesk/`` scope for the calls made inside the block."""
    ensure_registered()
    binding = _Binding(model, instructions)
    token = _BINDING.set(binding)
    try:
        yield binding
    finally:
        _BINDING.reset(token)


def ensure_registered() -> None:
    """Register :class:`ChatModelProvider` for ``supportdesk/`` (again, if a host reset the registry)."""
    if not isinstance(PROVIDER_REGISTRY.get(SCOPE), ChatModelProvider):
        llm.register_provider(ChatModelProvider(), scope=SCOPE)


def to_mirascope(messages: Sequence[ChatMessage]) -> list[llm.Message]:
    """Our messages as Mirascope messages."""
    out: list[llm.Message] = []
    for message in messages:
        if message.role == "system":
            out.append(llm.messages.system(message.content))
        elif message.role == "user":
            out.append(llm.messages.user(message.content))
        else:
            out.append(llm.messages.assistant(message.content, model_id=None, provider_id=None))
    return out


def _text(content: Any) -> str:
    if isinstance(content, llm.Text):
        return content.text
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "".join(part.text for part in content if isinstance(part, llm.Text))
    return str(content)


def from_mirascope(messages: Sequence[llm.Message]) -> list[ChatMessage]:
    """Mirascope messages (text parts only) as ours."""
    return [ChatMessage(m.role, _text(m.content)) for m in messages]  # type: ignore[arg-type]


def _with_instructions(messages: list[ChatMessage], text: str | None) -> list[ChatMessage]:
    if not text:
        return messages
    if messages and messages[0].role == "system":
        return [ChatMessage("system", f"{messages[0].content}\n\n{text}"), *messages[1:]]
    return [ChatMessage("system", text), *messages]


class ChatModelProvider(BaseProvider[None]):
    """A Mirascope provider whose model is the supportdesk ChatModel bound by :func:`bound`.

    JSON-mode formats get Mirascope's formatting instructions in the system message (as Mirascope's
    own providers add them) and their schema as constrained decoding (``json_schema``).
    """

    id: ClassVar[str] = "supportdesk"  # type: ignore[assignment]
    default_scope: ClassVar[str] = SCOPE
    error_map: ClassVar[dict[Any, Any]] = {}  # our LLMErrors pass through unchanged

    def __init__(self) -> None:
        self.client = None

    def get_error_status(self, e: Exception) -> int | None:
        return getattr(e, "status_code", None)

    def _binding(self) -> _Binding:
        binding = _BINDING.get()
        if binding is None:
            raise LLMError("no supportdesk ChatModel is bound: call through supportdesk.llm.structured.structured_call")
        return binding

    def _call(self, *, model_id: str, messages: Sequence[llm.Message], toolkit: Any, format: Any = None, **params: Any):  # noqa: ANN202, A002
        binding = self._binding()
        chat = from_mirascope(messages)
        schema: dict[str, Any] | None = None
        if format is not None:
            if binding.instructions:
                chat = _with_instructions(chat, format.formatting_instructions)
            schema = dict(format.schema)
        completion = binding.model.complete(
            chat,
            json_schema=schema,
            max_tokens=int(params.get("max_tokens", 512)),
            temperature=float(params.get("temperature", 0.0)),
        )
        binding.completions.append(completion)
        return llm.Response(
            raw=completion,
            provider_id=self.id,  # type: ignore[arg-type]
            model_id=model_id,
            provider_model_name=completion.model,
            params=params,  # type: ignore[arg-type]
            tools=toolkit,
            format=format,
            input_messages=messages,
            assistant_message=llm.messages.assistant(
                completion.text, model_id=model_id, provider_id=self.id, provider_model_name=completion.model  # type: ignore[arg-type]
            ),
            finish_reason=None,
            usage=llm.Usage(input_tokens=completion.prompt_tokens, output_tokens=completion.completion_tokens),
        )

    def _context_call(self, *, ctx: Any, **kwargs: Any):  # noqa: ANN202
        return self._call(**kwargs)

    async def _call_async(self, **kwargs: Any):  # noqa: ANN202
        context = contextvars.copy_context()
        return await asyncio.to_thread(context.run, lambda: self._call(**kwargs))

    async def _context_call_async(self, *, ctx: Any, **kwargs: Any):  # noqa: ANN202
        return await self._call_async(**kwargs)

    def _unsupported(self, model_id: str) -> llm.FeatureNotSupportedError:
        return llm.FeatureNotSupportedError("streaming", self.id, model_id)  # type: ignore[arg-type]

    def _stream(self, *, model_id: str, **kwargs: Any):  # noqa: ANN202
        raise self._unsupported(model_id)

    def _context_stream(self, *, model_id: str, **kwargs: Any):  # noqa: ANN202
        raise self._unsupported(model_id)

    async def _stream_async(self, *, model_id: str, **kwargs: Any):  # noqa: ANN202
        raise self._unsupported(model_id)

    async def _context_stream_async(self, *, model_id: str, **kwargs: Any):  # noqa: ANN202
        raise self._unsupported(model_id)


class EmbeddedServerProvider(BaseOpenAICompletionsProvider):
    """Mirascope's OpenAI-completions provider for the embedded llama.cpp server (loopback only).

    ``embedded/<anything>`` model ids reach the one loaded model; the server applies the GGUF's chat
    template (the supportdesk flow itself renders prompts for the base model and calls in-process).
    """

    id: ClassVar[str] = "embedded"  # type: ignore[assignment]
    default_scope: ClassVar[str] = "embedded/"
    api_key_env_var: ClassVar[str] = "SUPPORTDESK_EMBEDDED_API_KEY"
    api_key_required: ClassVar[bool] = False
    provider_name: ClassVar[str] = "supportdesk embedded (llama.cpp)"

    def __init__(self, *, base_url: str) -> None:
        if not base_url.startswith(("http://127.", "http://localhost", "http://[::1]")):
            raise LLMError(f"the embedded server must listen on loopback, got {base_url!r}")
        super().__init__(api_key="not-needed", base_url=base_url)

    def _model_name(self, model_id: str) -> str:
        return model_id.removeprefix("embedded/")
