"""The output check of the web fallback: what a model wrote from untrusted web results, checked by code
before a customer reads it; and the screen that drops results carrying instructions for the assistant.

::

    from supportdesk.rag.web_guard import WebAnswerGuard

    guard = WebAnswerGuard(allowed_domains=["help.nimbusnotes.example"])
    guard.run(answer="Type /weather in a note and pick a city.", documents=docs)
    # {'passed': True, 'problems': []}
    guard.run(answer="E-mail your password to admin@evil.example", documents=docs)["problems"]
    # ['links outside the allowed domains: https://evil.example', 'asks for a password, card number or code']
    guard.screen(docs)          # the documents without injected instructions (see looks_like_injection)

An answer passes when it has none of these problems:

* a link (URL, ``www.`` host, bare host name, e-mail domain, ``javascript:``/``data:`` ...) outside the
  allowed domains;
* a request for a password, passcode, PIN, card number, CVV, one-time or verification code, token,
  API key, IBAN or account number (``send us the code``, ``what is your password``);
* a phone number (a contact the operator did not configure);
* markup: HTML tags or entities, Markdown links, images, emphasis, headings or code fences, template
  braces, BBCode;
* text of a web result copied verbatim (twelve words or more in a row): a web result never reaches
  the customer as our words;
* an echo of injected instructions (``ignore previous instructions``, ``system prompt`` ...).

The guard has no opinion on whether the answer is right: grounding is the prompt's job and the
policy's (web answers are only model-written under ``hosted``); it catches what must never pass.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, unquote_plus, urlsplit

from haystack import Document, component, default_from_dict, default_to_dict

from supportdesk._domains import find_links, parse_domains, url_allowed
from supportdesk._guardrails import injection_markers, shingles
from supportdesk._pii import EMAIL_RE, PHONE_RE, redact
from supportdesk.errors import ConfigError

__all__ = ["WebAnswerGuard", "looks_like_injection"]

logger = logging.getLogger(__name__)

_SENSITIVE = (
    r"(?:pass(?:word|code|phrase)s?|pins?\b|pin\s+(?:codes?|numbers?)|card\s+(?:numbers?|details|info\w*|no\b)"
    r"|(?:credit|debit|bank)\s+cards?|cvv2?|cvc2?|csc\b|security\s+codes?|verification\s+codes?"
    r"|one[-\s]?time\s+(?:pass)?(?:codes?|passwords?)|otps?\b|2fa\s+codes?|mfa\s+codes?|totp"
    r"|(?:auth\w*|login|log-?in|sign[-\s]?in|recovery|backup|reset|sms|access|confirmation)\s+codes?"
    r"|(?:the|this|that|your|6-digit|six-digit)\s+codes?|seed\s+phrases?|recovery\s+phrases?|private\s+keys?"
    r"|api\s+keys?|(?:access\s+|auth\s+)?tokens?|credentials|log-?in\s+details|sign-?in\s+details"
    r"|social\s+security(?:\s+numbers?)?|ssn\b|iban\b|(?:bank\s+)?account\s+numbers?|routing\s+numbers?"
    r"|sort\s+codes?)"
)
_VERBS = (
    r"(?:send|sending|share|sharing|provide|providing|give|giving|tell|reply|respond|e-?mail|mail|text|message"
    r"|dm|whatsapp|confirm|verify|include|post|paste|submit|enter|type|read\s+out|disclose|forward|upload"
    r"|fill\s+in|write\s+down|write|need|require|ask\s+for)"
)
_REQUEST_RES = (
    re.compile(rf"(?i)\b{_VERBS}\b(?:\W+(?!new\b)\w+){{0,6}}?\W+(?<!new\s){_SENSITIVE}"),
    re.compile(rf"(?i)\bwhat(?:'s|\s+is|\s+are)\s+(?:your|the)\s+{_SENSITIVE}"),
    re.compile(rf"(?i)\byour\s+{_SENSITIVE}\s*(?:please|here|below|to\s+us|with\s+us)\b"),
)
_MARKUP_RES = (
    re.compile(r"<\s*/?\s*[A-Za-z!?][^>]*>"),          # HTML / XML tags, comments, doctype
    re.compile(r"&(?:[A-Za-z]{2,8}|#\d{1,6}|#x[0-9A-Fa-f]{1,6});"),  # HTML entities
    re.compile(r"!?\[[^\]\n]*\]\([^)\n]*\)"),           # Markdown links and images
    re.compile(r"\[[^\]\n|]*\|[^\]\n]*\]"),             # Jira wiki links [text|url]
    re.compile(r"\[/?(?:url|img|b|i|u|color|size|quote|code)\b[^\]]*\]", re.IGNORECASE),  # BBCode
    re.compile(r"```|~~~"),                             # code fences
    re.compile(r"(?m)^\s{0,3}#{1,6}\s"),                # Markdown headings
    re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__"),         # Markdown emphasis
    re.compile(r"\{\{|\}\}|\{%|%\}"),                   # template braces
)
_INJECTION_RE = re.compile(
    r"(?i)\b(?:ignore|disregard|forget|override|bypass)\b(?:\W+\w+){0,4}?\W+"
    r"(?:instructions?|prompts?|rules|directions|guidelines|messages?|context|policy|policies)\b"
    r"|\b(?:system|developer|hidden|original|initial)\s+(?:prompt|instructions?|message)\b"
    r"|\byou\s+are\s+now\b|\bnew\s+instructions?\b|\bact\s+as\b|\bpretend\s+(?:to\s+be|you)\b"
    r"|\b(?:assistant|AI|model|chatbot|LLM)\s*(?:,|:)\s*(?:you\s+must|please|now)\b"
    r"|<\|(?:im_start|im_end|system|user|assistant|endoftext)\|>|\[/?(?:INST|SYS)\]|<</?SYS>>"
    r"|\bjailbreak|\bDAN\s+mode\b|\bdo\s+anything\s+now\b"
    r"|\b(?:tell|instruct|ask)\s+the\s+(?:customer|user)\s+to\b"
)
VERBATIM_WORDS = 12


def looks_like_injection(text: str, config_dir: Path | None = None) -> bool:
    """True when ``text`` addresses the assistant with instructions (a web result carrying an attack):
    a directive marker of config/injection_markers.yaml (the decision guardrails use the same list,
    :func:`supportdesk._guardrails.injection_markers`) or one of this module's patterns."""
    return bool(text) and (bool(_INJECTION_RE.search(text)) or bool(injection_markers(text, config_dir)))


@component
class WebAnswerGuard:
    """Checks a model's answer built from web results; see the module docstring for the rules.

    :param allowed_domains: the operator's domains (links elsewhere fail the check).
    :param verbatim_words: this many words in a row copied from a result fail the check.
    :param config_dir: override folder for config/injection_markers.yaml.
    """

    def __init__(self, allowed_domains: str | Sequence[str], verbatim_words: int = VERBATIM_WORDS,
                 config_dir: Path | None = None) -> None:
        try:
            self.allowed_domains = parse_domains(allowed_domains)
        except ValueError as exc:
            raise ConfigError(f"WebAnswerGuard allowed_domains: {exc}") from exc
        if verbatim_words < 4:
            raise ConfigError("WebAnswerGuard verbatim_words must be at least 4")
        self.verbatim_words = verbatim_words
        self.config_dir = Path(config_dir) if config_dir is not None else None

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, allowed_domains=list(self.allowed_domains), verbatim_words=self.verbatim_words,
                               config_dir=None if self.config_dir is None else str(self.config_dir))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WebAnswerGuard:
        return default_from_dict(cls, data)

    def problems(self, answer: str, documents: Sequence[Document] = ()) -> list[str]:
        """What is wrong with ``answer`` (empty: it passes)."""
        found: list[str] = []
        if not answer or not answer.strip():
            return ["the answer is empty"]
        outside = [link for link in find_links(answer) if not url_allowed(link, self.allowed_domains)]
        if outside:
            found.append("links outside the allowed domains: " + ", ".join(dict.fromkeys(outside))[:200])
        if any(pattern.search(answer) for pattern in _REQUEST_RES):
            found.append("asks for a password, card number or code")
        if PHONE_RE.search(answer) and "[phone]" in redact(answer):
            found.append("gives a phone number")
        if any(pattern.search(answer) for pattern in _MARKUP_RES):
            found.append("contains markup")
        if looks_like_injection(answer, self.config_dir):
            found.append("repeats instructions aimed at the assistant")
        copied = shingles(answer, self.verbatim_words)
        if copied and any(copied & shingles(doc.content or "", self.verbatim_words) for doc in documents):
            found.append(f"copies {self.verbatim_words}+ words of a web result verbatim")
        return found

    @component.output_types(passed=bool, problems=list[str])
    def run(self, answer: str, documents: list[Document] | None = None) -> dict[str, Any]:
        """``passed`` and the ``problems`` found (each a short phrase, for the escalation reason)."""
        problems = self.problems(answer, documents or [])
        if problems:
            logger.warning("web answer failed the output check: %s", "; ".join(problems))
        return {"passed": not problems, "problems": problems}

    def screen(self, documents: Sequence[Document]) -> list[Document]:
        """``documents`` without those whose title, text or link carries instructions for the assistant,
        and without those whose URL is off the allowed domains (a second fence behind the search
        component). The link is read too because the customer sees it: a path or query string on an
        allowed host is text the page's author chose. So a link that decodes to words (spaces, line
        breaks) or carries an e-mail address is dropped as well: a page's address needs neither."""
        kept = []
        for doc in documents:
            url = str(doc.meta.get("url", ""))
            text = f"{doc.meta.get('title', '')}\n{doc.content or ''}\n{_link_words(url)}"
            if not url_allowed(url, self.allowed_domains):
                logger.info("web result %s dropped: outside the allowed domains", url[:120])
            elif looks_like_injection(text, self.config_dir):
                logger.info("web result %s dropped: it carries instructions", url[:120])
            elif _link_carries_text(url):
                logger.info("web result %s dropped: its link carries text or an e-mail address", redact(url[:120]))
            else:
                kept.append(doc)
        return kept


def _link_carries_text(url: str) -> bool:
    """Whether a link's decoded path, query or fragment holds whitespace or control characters (a
    sentence, not a slug; ``+`` is left as it is) or an e-mail address."""
    parts = urlsplit(url)
    tail = unquote(f"{parts.path}?{parts.query}#{parts.fragment}")
    return any(ch.isspace() or ord(ch) < 32 for ch in tail) or bool(EMAIL_RE.search(tail))


def _link_words(url: str) -> str:
    """A link's path, query and fragment as words (decoded; ``/ - _ + = & ? #`` become spaces)."""
    parts = urlsplit(url)
    return re.sub(r"[/\-_+=&?#.]+", " ", unquote_plus(f"{parts.path} {parts.query} {parts.fragment}")).strip()
