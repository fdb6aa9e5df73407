"""Structured output through Mirascope's call API: a model's answer becomes a validated response model,
or a typed error.

:func:`structured_call` is Mirascope end to end: ``llm.Model(...).call(messages, format=...)`` with a
JSON-mode :class:`mirascope.llm.Format` (Mirascope's schema and formatting instructions), then
``Response.validate(max_retries=...)``, which parses and, on a
:class:`mirascope.llm.ParseError`, resumes the conversation with the error's ``retry_message()``.
The model behind the call is a supportdesk :class:`~supportdesk.llm.ChatModel` (through the
``supportdesk/`` provider of :mod:`supportdesk.llm._mirascope`), so the run's budget and journal
wrappers see every attempt and the schema also reaches the model as constrained decoding::

    from supportdesk.llm import ChatMessage, ScriptedModel
    from supportdesk.llm.structured import structured_call
    from supportdesk.models import Classification

    model = ScriptedModel(['{"category": "billing", "priority": "high", "rationale": "double charge"}'])
    result = structured_call(model, [ChatMessage("user", "I was charged twice")], Classification,
                             schema_overrides={"category": {"enum": ["billing", "technical", "general"]}})
    result.value.category      # 'billing'

``schema_overrides`` merge JSON-schema fragments into a property; an ``enum`` is also enforced on
validation (the format parses into a subclass whose field is a ``Literal`` of the allowed values).
Mirascope is imported on the first call, not with this module.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field, create_model

from supportdesk.errors import OutputValidationError
from supportdesk.llm._types import ChatMessage, ChatModel, Completion

if TYPE_CHECKING:
    from mirascope import llm

__all__ = ["StructuredResult", "prepare_in_background", "response_format", "response_schema", "structured_call",
           "validate_output"]

logger = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)


def prepare_in_background(model: ChatModel) -> threading.Thread:
    """Load ``model`` (its ``warm_up``, found through wrappers' ``inner``) on a daemon thread, so
    that a structured call known to come soon finds it ready: a cold CLI escalation overlaps the
    load and the first constrained decode (about 2.5 s on two cores) with classifying and importing
    Mirascope. A failure only logs: the call itself then loads again and raises a typed error."""
    def prepare() -> None:
        try:
            inner: Any = model
            while not hasattr(inner, "warm_up") and getattr(inner, "inner", None) is not None:
                inner = inner.inner
            warm_up = getattr(inner, "warm_up", None)
            if callable(warm_up):
                warm_up()
        except Exception as exc:  # the call that follows loads again and raises a typed error
            logger.debug("background preparation of %s failed: %s", getattr(model, "name", model), exc)

    thread = threading.Thread(target=prepare, name="supportdesk-model-warm-up", daemon=True)
    thread.start()
    return thread


@dataclass(frozen=True)
class StructuredResult(Generic[T]):
    """A validated value and the completions it took (one per attempt)."""

    value: T
    completions: list[Completion] = field(default_factory=list)

    @property
    def attempts(self) -> int:
        return len(self.completions)


_narrowed_cache: dict[tuple[type[BaseModel], str], type[BaseModel]] = {}
_narrowed_lock = threading.Lock()


def _narrowed(response_model: type[T], overrides: dict[str, dict[str, Any]]) -> type[T]:
    """``response_model`` with each ``enum``-overridden field typed as a Literal of the allowed values."""
    enums = {name: list(o["enum"]) for name, o in overrides.items() if "enum" in o}
    if not enums:
        return response_model
    key = (response_model, json.dumps(enums, sort_keys=True, default=str))
    with _narrowed_lock:
        cached = _narrowed_cache.get(key)
        if cached is None:
            fields: dict[str, Any] = {}
            for name, values in enums.items():
                original = response_model.model_fields[name]
                default = ... if original.is_required() else original.default
                fields[name] = (Literal[tuple(values)], Field(default=default, description=original.description))  # type: ignore[valid-type]
            cached = create_model(response_model.__name__, __base__=response_model, __doc__=response_model.__doc__, **fields)
            _narrowed_cache[key] = cached
    return cached  # type: ignore[return-value]


def response_format(
    response_model: type[BaseModel], schema_overrides: dict[str, dict[str, Any]] | None = None
) -> llm.Format[Any]:
    """The JSON-mode Mirascope ``Format`` for ``response_model`` with per-property overrides merged in."""
    from mirascope import llm

    overrides = dict(schema_overrides or {})
    base = llm.format(response_model, mode="json")
    assert base is not None
    schema = copy.deepcopy(dict(base.schema))
    properties = schema.setdefault("properties", {})
    for name, override in overrides.items():
        if name not in properties or name not in response_model.model_fields:
            raise ValueError(f"{response_model.__name__} has no field {name!r} to override")
        prop = {k: v for k, v in properties[name].items() if k not in ("anyOf", "type")} if "enum" in override else dict(properties[name])
        prop.update(override)
        properties[name] = prop
    return llm.Format(
        name=base.name,
        description=base.description,
        schema=schema,
        mode="json",
        formattable=_narrowed(response_model, overrides),
    )


def response_schema(response_model: type[BaseModel], schema_overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The JSON schema Mirascope derives for ``response_model``, with per-property overrides merged in."""
    return dict(response_format(response_model, schema_overrides).schema)


def _as(response_model: type[T], value: BaseModel) -> T:
    return value if type(value) is response_model else response_model.model_validate(value.model_dump())


def validate_output(text: str, response_model: type[T], schema_overrides: dict[str, dict[str, Any]] | None = None) -> T:
    """Parse ``text`` (a reply received elsewhere, e.g. from a Haystack generator) with Mirascope's
    ``Response.parse()`` for the same format :func:`structured_call` uses. Raises :class:`mirascope.llm.ParseError`."""
    from mirascope import llm

    fmt = response_format(response_model, schema_overrides)
    response = llm.Response(
        raw=None,
        provider_id="supportdesk",  # type: ignore[arg-type]
        model_id="supportdesk/reply",
        provider_model_name="reply",
        params={},
        format=fmt,
        input_messages=[],
        assistant_message=llm.messages.assistant(text, model_id=None, provider_id=None),
        finish_reason=None,
        usage=None,
    )
    try:
        return _as(response_model, response.parse())
    except llm.ParseError as exc:
        # One readable line (field, problem, offending value) for callers that feed it back to the model.
        short = _short_error(exc)
        raise llm.ParseError(f"Failed to parse response: {short}", original_exception=ValueError(short)) from exc


def structured_call(
    model: ChatModel,
    messages: list[ChatMessage],
    response_model: type[T],
    *,
    retries: int = 2,
    max_tokens: int = 512,
    schema_overrides: dict[str, dict[str, Any]] | None = None,
    instructions: bool = True,
) -> StructuredResult[T]:
    """Ask ``model`` for a ``response_model`` through Mirascope and return it validated.

    :param retries: how many times an invalid answer is fed back (Mirascope's ``retry_message``) and asked again.
    :param schema_overrides: per-property JSON-schema fragments merged into the schema (an ``enum``
        narrows a free string to the allowed values and is enforced on validation too).
    :param instructions: add Mirascope's JSON formatting instructions to the system message.
    :raises OutputValidationError: when no attempt validated.
    """
    from mirascope import llm

    from supportdesk.llm._mirascope import SCOPE, bound, to_mirascope

    fmt = response_format(response_model, schema_overrides)
    with bound(model, instructions=instructions) as binding:
        mirascope_model = llm.Model(f"{SCOPE}{model.name}", max_tokens=max_tokens, temperature=0.0)
        response = mirascope_model.call(to_mirascope(messages), format=fmt)
        try:
            value, _ = response.validate(max_retries=retries)
        except llm.ParseError as exc:
            last = binding.completions[-1].text if binding.completions else ""
            raise OutputValidationError(
                f"{response_model.__name__} did not validate after {len(binding.completions)} attempts: {_short_error(exc)}",
                attempts=len(binding.completions),
                last_output=last[:500],
            ) from exc
    if len(binding.completions) > 1:
        logger.info("%s validated after %d attempts", response_model.__name__, len(binding.completions))
    return StructuredResult(value=_as(response_model, value), completions=list(binding.completions))


def _short_error(exc: Exception) -> str:
    from pydantic import ValidationError

    original = getattr(exc, "original_exception", exc)
    if isinstance(original, ValidationError):
        parts = [
            f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']} (got {str(e.get('input'))[:60]!r})"
            for e in original.errors()[:3]
        ]
        return "; ".join(parts)
    return str(original).splitlines()[0][:300]
