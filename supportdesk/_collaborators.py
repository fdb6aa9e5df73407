"""Collaborators of serialisable Haystack components: bound for a build, else rebuilt from settings.

A component's ``to_dict`` writes its configuration only; the objects it works with (the chat model,
the FAQ knowledge base and its index, the document store) are never serialised. Its ``from_dict``
asks :func:`collaborator` for them: the ones bound with :func:`bind` (what
:class:`~supportdesk.rag.FAQPipeline` does when it loads a pipeline for a run), else ones rebuilt
from :class:`~supportdesk.settings.Settings` (what a user gets with a bare ``Pipeline.loads``)::

    from haystack import Pipeline
    from supportdesk._collaborators import ALLOWED_MODULES, bind

    with bind(model=my_model, faq=faq_pipeline):
        pipe = Pipeline.loads(yaml_text, allowed_modules=ALLOWED_MODULES)

    pipe = Pipeline.loads(yaml_text, allowed_modules=ALLOWED_MODULES)   # model, KB from Settings()

Names: ``model`` (a :class:`~supportdesk.llm.ChatModel`) and ``faq`` (the
:class:`~supportdesk.rag.FAQPipeline` whose ``kb``, ``index``, ``entry_ids``, ``store`` and
``threshold`` the retrieval components use).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

__all__ = ["ALLOWED_MODULES", "bind", "collaborator"]

logger = logging.getLogger(__name__)

#: Module prefixes ``Pipeline.loads`` must trust for our components (Haystack's allowlist).
ALLOWED_MODULES = ["supportdesk"]

_BOUND: ContextVar[dict[str, Any] | None] = ContextVar("supportdesk_collaborators", default=None)
_FROM_SETTINGS: dict[tuple[str, str], Any] = {}
_LOCK = threading.RLock()


@contextmanager
def bind(**objects: Any) -> Iterator[None]:
    """Bind collaborators by name for the ``from_dict`` calls made inside the block."""
    token = _BOUND.set({**(_BOUND.get() or {}), **objects})
    try:
        yield
    finally:
        _BOUND.reset(token)


def collaborator(name: str) -> Any:
    """The bound collaborator ``name``, else the one built from ``Settings()`` (once per settings)."""
    bound = _BOUND.get() or {}
    if name in bound:
        return bound[name]
    if name not in ("model", "faq"):
        raise KeyError(f"unknown collaborator {name!r}")
    from supportdesk.settings import Settings

    settings = Settings()
    key = (name, settings.model_dump_json())
    with _LOCK:
        if key not in _FROM_SETTINGS:
            logger.info("building the %s from settings for a deserialised pipeline", name)
            _FROM_SETTINGS[key] = _build(name, settings)
        return _FROM_SETTINGS[key]


def _build(name: str, settings: Any) -> Any:
    from supportdesk.llm.factory import LLMFactory

    factory = LLMFactory(settings)
    if name == "model":
        return factory.chat_model()
    from supportdesk.rag.pipeline import build_faq_pipeline

    return build_faq_pipeline(settings, collaborator("model"), kind=factory.kind)
