"""Structured output: a model's text becomes a validated response model, or a typed error.

The schema and the formatting instructions come from Mirascope's ``llm.format(..., mode="json")``;
the schema is also handed to the model for constrained decoding. An answer that does not validate
is fed back with the validation error and asked again, a bounded number of times::

    from supportdesk.llm import ChatMessage, ScriptedModel
    from supportdesk.llm.structured import structured_call
    from supportdesk.models import Classification

    model = ScriptedModel(['{"category": "billing", "priority": "high", "rationale": "double charge"}'])
    result = structured_call(model, [ChatMessage("user", "I was charged twice")], Classification,
                             schema_overrides={"category": {"enum": ["billing", "technical", "general"]}})
    result.value.category      # 'billing'
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from mirascope import llm as mirascope_llm
from mirascope.llm.formatting.format import JSON_MODE_INSTRUCTIONS
from mirascope.llm.responses._utils import extract_serialized_json
from pydantic import BaseModel, ValidationError

from supportdesk.errors import OutputValidationError
from supportdesk.llm._types import ChatMessage, ChatModel, Completion

__all__ = ["StructuredResult", "response_schema", "structured_call", "validate_output"]

logger = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True)
class StructuredResult(Generic[T]):
    """A validated value and the completions it took (one per attempt)."""

    value: T
    completions: list[Completion] = field(default_factory=list)

    @property
    def attempts(self) -> int:
        return len(self.completions)


def response_schema(response_model: type[BaseModel], schema_overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The JSON schema Mirascope derives for ``response_model``, with per-property overrides merged in."""
    fmt = mirascope_llm.format(response_model, mode="json")
    schema = copy.deepcopy(dict(fmt.schema))
    properties = schema.setdefault("properties", {})
    for name, override in (schema_overrides or {}).items():
        if name not in properties:
            raise ValueError(f"{response_model.__name__} has no field {name!r} to override")
        prop = {k: v for k, v in properties[name].items() if k not in ("anyOf", "type")} if "enum" in override else dict(properties[name])
        prop.update(override)
        properties[name] = prop
    return schema


def _instructions(schema: dict[str, Any]) -> str:
    return JSON_MODE_INSTRUCTIONS.format(json_schema=json.dumps(schema, indent=2))


def validate_output(text: str, response_model: type[T], schema_overrides: dict[str, dict[str, Any]] | None = None) -> T:
    """Parse ``text`` into ``response_model`` the way Mirascope's ``response.parse()`` does, then enforce
    the enum overrides the schema carried. Raises :class:`mirascope.llm.ParseError`."""
    try:
        value = response_model.model_validate_json(extract_serialized_json(text))
    except (ValueError, ValidationError) as exc:
        raise mirascope_llm.ParseError(f"Failed to parse response: {exc}", original_exception=exc) from exc
    for name, override in (schema_overrides or {}).items():
        allowed = override.get("enum")
        got = getattr(value, name, None)
        if allowed is not None and got not in allowed:
            exc = ValueError(f"field {name!r} must be one of {allowed}, got {got!r}")
            raise mirascope_llm.ParseError(str(exc), original_exception=exc)
    return value


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
    """Ask ``model`` for a ``response_model`` and return it validated.

    :param retries: how many times an invalid answer is fed back and asked again.
    :param schema_overrides: per-property JSON-schema fragments merged into the schema (an ``enum``
        narrows a free string to the allowed values and is enforced on validation too).
    :param instructions: append Mirascope's JSON formatting instructions to the system message.
    :raises OutputValidationError: when no attempt validated.
    """
    schema = response_schema(response_model, schema_overrides)
    conversation = list(messages)
    if instructions:
        conversation = _with_instructions(conversation, _instructions(schema))
    completions: list[Completion] = []
    last_text = ""
    last_error = ""
    for attempt in range(retries + 1):
        completion = model.complete(conversation, json_schema=schema, max_tokens=max_tokens)
        completions.append(completion)
        last_text = completion.text
        try:
            value = validate_output(completion.text, response_model, schema_overrides)
        except mirascope_llm.ParseError as exc:
            last_error = _short_error(exc)
            logger.info("%s attempt %d did not validate: %s", response_model.__name__, attempt + 1, last_error)
            conversation = [
                *conversation,
                ChatMessage("assistant", completion.text),
                ChatMessage("user", f"That answer was invalid: {last_error}. Reply again with JSON that matches the schema."),
            ]
            continue
        return StructuredResult(value=value, completions=completions)
    raise OutputValidationError(
        f"{response_model.__name__} did not validate after {len(completions)} attempts: {last_error}",
        attempts=len(completions),
        last_output=last_text[:500],
    )


def _with_instructions(messages: list[ChatMessage], text: str) -> list[ChatMessage]:
    if messages and messages[0].role == "system":
        return [ChatMessage("system", f"{messages[0].content}\n\n{text}"), *messages[1:]]
    return [ChatMessage("system", text), *messages]


def _short_error(exc: Exception) -> str:
    original = getattr(exc, "original_exception", exc)
    if isinstance(original, ValidationError):
        parts = [f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in original.errors()[:3]]
        return "; ".join(parts)
    return str(original).splitlines()[0][:300]
