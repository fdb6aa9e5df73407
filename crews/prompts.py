"""The triage slots a small model fills, and what code writes instead of it.

Prose lives in ``config/prompts_triage.yaml``; this module only assembles it::

    prompts = TriagePrompts.from_config()
    prompts.title_messages("The app crashes on start")   # few-shot conversation for the title slot
    grounded_title("TicketDraft", "The app crashes on start")   # 'The app crashes on start'
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from supportdesk._config import load_yaml
from supportdesk.crews.classifier import TriageSuggestion
from supportdesk.errors import ConfigError
from supportdesk.llm._types import ChatMessage
from supportdesk.models.responses import CustomerLookup

__all__ = ["CUSTOMER_BLOCK", "TriagePrompts", "customer_block", "customer_text", "fallback_title", "grounded_title",
           "title_fits"]

_WORD = re.compile(r"[a-z0-9]{4,}")
TITLE_MAX = 80


#: The delimiters of the customer's text in every prompt; system prompts say the block is data.
CUSTOMER_BLOCK = ("<customer_message>", "</customer_message>")


def customer_text(text: str) -> str:
    """Customer text made safe to sit inside its block: ``<`` and ``>`` become ``‹`` and ``›`` so that
    the text can neither close the block nor open a tag of its own."""
    return str(text).replace("<", "‹").replace(">", "›")


def customer_block(text: str) -> str:
    """``text`` inside the customer-message delimiters (see :data:`CUSTOMER_BLOCK`)."""
    return f"{CUSTOMER_BLOCK[0]}\n{customer_text(text)}\n{CUSTOMER_BLOCK[1]}"


def _stems(text: str) -> set[str]:
    return {w[:5] for w in _WORD.findall(text.lower())}


def _first_sentence(query: str) -> str:
    return re.split(r"(?<=[.!?])\s", " ".join(query.split()), maxsplit=1)[0].rstrip(".!? ")


def title_fits(query: str) -> bool:
    """True when the query's first sentence is a title as it stands: three words or more (not a bare
    greeting) and at most ``TITLE_MAX`` characters (nothing cut). Then code titles the ticket with it
    and no model is asked (the embedded policy's ``title_written_by: auto``)."""
    first = _first_sentence(query)
    return len(first.split()) >= 3 and len(first) <= TITLE_MAX


def fallback_title(query: str) -> str:
    """The query's first sentence, cut at a word boundary to fit a title."""
    first = _first_sentence(query)
    if len(first) <= TITLE_MAX:
        return first
    return first[: TITLE_MAX - 1].rsplit(" ", 1)[0] + "…"


def _tokens(text: str) -> set[str]:
    """Whitespace-separated tokens, lower-cased, without surrounding punctuation."""
    return {t.strip(".,;:!?()[]\"'").lower() for t in text.split()}


def _specifics(text: str) -> set[str]:
    """Numbers, e-mail addresses, links and other tokens holding a digit or ``@``."""
    return {t for t in _tokens(text) if any(c.isdigit() or c == "@" for c in t)}


def grounded_title(title: str, query: str) -> str:
    """Keep a model's title only if it names something the customer wrote and invents nothing; else
    fall back to the query's first sentence.

    A small model sometimes echoes the schema name, invents a topic or makes up specifics: a title
    sharing no content word (first five letters of words of four or more) with the query, one with a
    number, e-mail or link the query does not hold, or one over twelve words is not grounded.
    """
    title = " ".join(title.split()).strip(" .")
    grounded = (len(title) >= 8 and len(title.split()) <= 12 and bool(_stems(title) & _stems(query))
                and title.lower() != "ticketdraft" and _specifics(title) <= _tokens(query))
    return title[:TITLE_MAX] if grounded else fallback_title(query)


@dataclass(frozen=True)
class TriagePrompts:
    """Few-shot title prompt and the code-written ticket summary, from ``prompts_triage.yaml``."""

    title_system: str
    title_examples: tuple[tuple[str, str], ...]
    summary_template: str
    #: The title when every sentence of the message addresses the assistant (none names a problem).
    flagged_title: str

    @classmethod
    def from_config(cls, config_dir: Path | None = None) -> TriagePrompts:
        data = load_yaml("prompts_triage.yaml", config_dir)
        try:
            title = data["ticket_title"]
            examples = tuple((str(e["message"]), str(e["title"])) for e in title.get("examples", []))
            # A configuration folder from before ``ticket_title.flagged`` existed takes the packaged one.
            flagged = title.get("flagged") or load_yaml("prompts_triage.yaml")["ticket_title"]["flagged"]
            flagged = " ".join(str(flagged).split())[:TITLE_MAX]
            return cls(" ".join(str(title["system"]).split()), examples, " ".join(str(data["ticket_summary"]).split()),
                       flagged)
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"prompts_triage.yaml: missing or malformed key {exc}") from exc

    def title_messages(self, query: str) -> list[ChatMessage]:
        """System prompt, worked examples as user/assistant turns, then the real message; every
        customer message (examples included) sits in its delimited block."""
        messages = [ChatMessage("system", self.title_system)]
        for message, title in self.title_examples:
            messages += [ChatMessage("user", customer_block(message)),
                         ChatMessage("assistant", json.dumps({"title": title}))]
        return [*messages, ChatMessage("user", customer_block(query))]

    def ticket_summary(self, query: str, suggestion: TriageSuggestion, lookup: CustomerLookup) -> str:
        """The ticket summary from facts only: the message, code's triage and its evidence, the account."""
        evidence = ", ".join([*(f"rule {r}" for r in suggestion.rules), f"nearest examples {suggestion.confidence:.2f}"])
        text = self.summary_template.format(
            query=query if len(query) <= 400 else query[:399] + "…",
            category=suggestion.category,
            priority=suggestion.priority,
            evidence=evidence,
            customer_facts=lookup.summary or "customer not identified",
        )
        return text if len(text) <= 1000 else text[:999] + "…"
