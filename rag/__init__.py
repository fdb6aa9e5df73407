"""The FAQ stage (agentic RAG over the FAQ, web-search fallback, escalation), built on Haystack.

Public API::

    from supportdesk.rag import FAQPipeline, KnowledgeBase, SerperWebSearch, build_faq_pipeline, load_rag_policy

Submodules load lazily, so ``import supportdesk.rag`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from supportdesk.rag.knowledge_base import KnowledgeBase
    from supportdesk.rag.pipeline import FAQPipeline, build_faq_pipeline, load_rag_policy
    from supportdesk.rag.serper import SerperWebSearch

__all__ = ["FAQPipeline", "KnowledgeBase", "SerperWebSearch", "build_faq_pipeline", "load_rag_policy"]

_WHERE = {
    "FAQPipeline": "supportdesk.rag.pipeline",
    "load_rag_policy": "supportdesk.rag.pipeline",
    "build_faq_pipeline": "supportdesk.rag.pipeline",
    "KnowledgeBase": "supportdesk.rag.knowledge_base",
    "SerperWebSearch": "supportdesk.rag.serper",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(name)
