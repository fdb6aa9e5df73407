"""One setting, every model: ``SUPPORTDESK_LLM`` decides what the Haystack generator, the CrewAI
agents and the structured calls all talk to.

=========================================  =====================================================
``embedded`` (default)                      Gemma 3 270M in-process, offline
``openai/<model>``                          OpenAI, key from ``OPENAI_API_KEY``
``anthropic/<model>``                       Anthropic, key from ``ANTHROPIC_API_KEY``
``gemini/<model>``                          Gemini's OpenAI-compatible endpoint, ``GEMINI_API_KEY``
``ollama/<model>[@<base_url>]``             a local Ollama (default ``http://127.0.0.1:11434/v1``)
``openai-compatible/<model>@<base_url>``    any OpenAI-compatible server (``SUPPORTDESK_LLM_API_KEY``)
=========================================  =====================================================

::

    from supportdesk.llm.factory import LLMFactory
    from supportdesk.settings import Settings

    factory = LLMFactory(Settings(llm="embedded"))
    model = factory.chat_model()          # the ChatModel every component shares
    generator = factory.haystack_generator()
    crew_llm = factory.crewai_llm()
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from supportdesk.errors import ConfigError
from supportdesk.llm._types import ChatModel

if TYPE_CHECKING:
    from supportdesk.settings import Settings

__all__ = ["LLMFactory", "ModelSpec", "parse_model_spec"]

OPENAI_URL = "https://api.openai.com/v1"
GEMINI_URL = "https://generativelanguage.googleapis.com/v1beta/openai"
OLLAMA_URL = "http://127.0.0.1:11434/v1"
PROVIDERS = ("embedded", "openai", "anthropic", "gemini", "ollama", "openai-compatible")


@dataclass(frozen=True)
class ModelSpec:
    """A parsed ``SUPPORTDESK_LLM`` value."""

    provider: Literal["embedded", "openai", "anthropic", "gemini", "ollama", "openai-compatible"]
    model: str = ""
    base_url: str | None = None

    @property
    def kind(self) -> Literal["embedded", "hosted"]:
        """Which decision policy fits: the tiny embedded model or a capable one."""
        return "embedded" if self.provider == "embedded" else "hosted"


def parse_model_spec(value: str) -> ModelSpec:
    """Parse ``provider/model[@base_url]``; a malformed value is a :class:`ConfigError`."""
    value = value.strip()
    if value == "embedded":
        return ModelSpec("embedded")
    provider, sep, rest = value.partition("/")
    if not sep or provider not in PROVIDERS or provider == "embedded" or not rest:
        raise ConfigError(f"SUPPORTDESK_LLM={value!r} is not one of: {', '.join(p + '/<model>' for p in PROVIDERS[1:])} or 'embedded'")
    model, at, base_url = rest.partition("@")
    if not model:
        raise ConfigError(f"SUPPORTDESK_LLM={value!r} names no model")
    if provider == "openai-compatible" and not at:
        raise ConfigError(f"SUPPORTDESK_LLM={value!r}: openai-compatible needs '<model>@<base_url>'")
    if at and provider not in ("ollama", "openai-compatible"):
        raise ConfigError(f"SUPPORTDESK_LLM={value!r}: only ollama and openai-compatible take '@<base_url>'")
    if at and not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"SUPPORTDESK_LLM={value!r}: base URL must start with http:// or https://")
    return ModelSpec(provider, model, base_url or None)  # type: ignore[arg-type]


class LLMFactory:
    """Builds the one :class:`ChatModel` of a run, and the framework adapters around it.

    :param settings: where the model spec, keys and timeouts come from.
    :param chat_model: use this model instead (tests pass a ScriptedModel; embedders their own).
    :param kind: which decision policy applies; default: the kind of ``settings.llm``.
    """

    def __init__(
        self,
        settings: Settings,
        chat_model: ChatModel | None = None,
        *,
        kind: Literal["embedded", "hosted"] | None = None,
    ) -> None:
        self.settings = settings
        self.spec = parse_model_spec(settings.llm)
        self.kind: Literal["embedded", "hosted"] = kind or self.spec.kind
        self._chat_model = chat_model

    def chat_model(self) -> ChatModel:
        """The shared model (built once)."""
        if self._chat_model is None:
            self._chat_model = self._build()
        return self._chat_model

    def haystack_generator(self):  # noqa: ANN201 - haystack is imported lazily
        from supportdesk.llm.haystack_generator import ChatModelGenerator

        return ChatModelGenerator(self.chat_model())

    def crewai_llm(self):  # noqa: ANN201 - crewai is imported lazily
        from supportdesk.llm.crewai_llm import CrewChatLLM

        return CrewChatLLM(chat_model=self.chat_model())

    def _build(self) -> ChatModel:
        s, spec = self.settings, self.spec
        common = {"timeout_s": s.llm_timeout_s, "max_retries": s.llm_max_retries}
        if spec.provider == "embedded":
            from supportdesk.llm.embedded import EmbeddedModel

            return EmbeddedModel(threads=s.embedded_threads, n_ctx=s.embedded_ctx)
        from supportdesk.llm.openai_compatible import OpenAICompatibleModel

        if spec.provider == "openai":
            return OpenAICompatibleModel(spec.model, base_url=OPENAI_URL, api_key=_key(s.openai_api_key, "OPENAI_API_KEY"), provider="openai", **common)
        if spec.provider == "gemini":
            return OpenAICompatibleModel(spec.model, base_url=GEMINI_URL, api_key=_key(s.gemini_api_key, "GEMINI_API_KEY"), provider="gemini", **common)
        if spec.provider == "ollama":
            return OpenAICompatibleModel(spec.model, base_url=spec.base_url or OLLAMA_URL, provider="ollama", **common)
        if spec.provider == "anthropic":
            if importlib.util.find_spec("anthropic") is None:  # an extra: Mirascope imports it whenever it is installed
                raise ConfigError(f"SUPPORTDESK_LLM={s.llm} needs the anthropic SDK: pip install 'supportdesk[anthropic]'")
            from supportdesk.llm.anthropic import AnthropicModel

            return AnthropicModel(spec.model, api_key=_key(s.anthropic_api_key, "ANTHROPIC_API_KEY"), **common)
        api_key = s.llm_api_key.get_secret_value() if s.llm_api_key else None
        return OpenAICompatibleModel(spec.model, base_url=spec.base_url or "", api_key=api_key, **common)


def _key(secret, env_name: str) -> str:  # noqa: ANN001
    if secret is None or not secret.get_secret_value():
        raise ConfigError(f"{env_name} is not set; it is needed for the configured SUPPORTDESK_LLM")
    return secret.get_secret_value()
