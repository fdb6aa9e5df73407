"""FAQ data and the result of the FAQ (RAG) stage."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["FAQEntry", "RAGResult", "TokenUsage"]

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


class FAQEntry(BaseModel):
    """One FAQ entry: a canonical question, how customers phrase it, and the answer we give."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(description="Stable slug, e.g. 'reset-password'.")
    question: str = Field(min_length=1)
    paraphrases: list[str] = Field(default_factory=list)
    answer: str = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        value = value.strip()
        if not _ID.match(value):
            raise ValueError("must be a slug: letters, digits, '-', '_', '.', ':' (at most 128)")
        return value

    @field_validator("question", "answer")
    @classmethod
    def _text(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("paraphrases")
    @classmethod
    def _paraphrases(cls, value: list[str]) -> list[str]:
        cleaned = [p.strip() for p in value]
        if any(not p for p in cleaned):
            raise ValueError("paraphrases must not be empty strings")
        return cleaned

    @property
    def texts(self) -> list[str]:
        """The question followed by its paraphrases: what retrieval matches queries against."""
        return [self.question, *self.paraphrases]


class TokenUsage(BaseModel):
    """Usage of one LLM call made by the RAG stage."""

    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    purpose: str = Field(default="", description="faq_answer, faq_judge or web_answer")


class RAGResult(BaseModel):
    """What the FAQ stage decided for one query."""

    route: Literal["answered", "escalated"]
    answer: str | None = None
    faq_id: str | None = Field(default=None, description="The FAQ entry behind the answer, if any.")
    sources: list[str] = Field(default_factory=list, description="FAQ entry ids or web URLs behind the answer.")
    confidence: float | None = Field(default=None, description="Fused retrieval score of the top FAQ entry.")
    threshold: float | None = Field(default=None, description="The answer threshold in force.")
    top_candidates: list[tuple[str, float]] = Field(
        default_factory=list, description="Best FAQ entries and their fused scores, best first (hit@k)."
    )
    web_searched: bool = False
    reason: str = Field(default="", description="One line: why this route.")
    completions: list[TokenUsage] = Field(default_factory=list)
    latency_s: float = 0.0

    @property
    def prompt_tokens(self) -> int:
        """Prompt tokens of all LLM calls of this stage."""
        return sum(c.prompt_tokens for c in self.completions)

    @property
    def completion_tokens(self) -> int:
        """Completion tokens of all LLM calls of this stage."""
        return sum(c.completion_tokens for c in self.completions)
