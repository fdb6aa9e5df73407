"""SUPPORTDESK_LLM parsing and the models the factory builds from it."""

from __future__ import annotations

import pytest

from supportdesk.errors import ConfigError
from supportdesk.llm.anthropic import AnthropicModel
from supportdesk.llm.embedded import EmbeddedModel
from supportdesk.llm.factory import LLMFactory, ModelSpec, parse_model_spec
from supportdesk.llm.openai_compatible import OpenAICompatibleModel
from supportdesk.settings import Settings


@pytest.mark.parametrize(
    ("value", "spec"),
    [
        ("embedded", ModelSpec("embedded")),
        ("openai/gpt-4o-mini", ModelSpec("openai", "gpt-4o-mini")),
        ("anthropic/claude-haiku-4-5", ModelSpec("anthropic", "claude-haiku-4-5")),
        ("gemini/gemini-2.5-flash", ModelSpec("gemini", "gemini-2.5-flash")),
        ("ollama/llama3.2", ModelSpec("ollama", "llama3.2")),
        ("ollama/llama3.2@http://127.0.0.1:9999/v1", ModelSpec("ollama", "llama3.2", "http://127.0.0.1:9999/v1")),
        ("openai-compatible/qwen@http://127.0.0.1:8080/v1", ModelSpec("openai-compatible", "qwen", "http://127.0.0.1:8080/v1")),
    ],
)
def test_valid_specs_parse(value, spec):
    """Every documented provider form parses to its spec."""
    assert parse_model_spec(value) == spec


@pytest.mark.parametrize(
    "value", ["gpt-4o", "mystery/model", "openai/", "openai-compatible/qwen", "openai/gpt@http://x", "ollama/m@ftp://x"]
)
def test_malformed_specs_are_config_errors(value):
    """A malformed SUPPORTDESK_LLM is a one-line ConfigError naming the value."""
    with pytest.raises(ConfigError, match="SUPPORTDESK_LLM"):
        parse_model_spec(value)


def test_embedded_is_the_default_and_loads_nothing_up_front():
    """The default setting builds the embedded model lazily (no weights loaded at construction)."""
    factory = LLMFactory(Settings())
    model = factory.chat_model()
    assert isinstance(model, EmbeddedModel) and factory.kind == "embedded"
    assert factory.chat_model() is model


def test_anthropic_without_its_extra_is_one_line_naming_the_extra(monkeypatch):
    """A plain install has no anthropic SDK: asking for an Anthropic model is a ConfigError that names
    the extra to install, before any client is built."""
    import sys

    monkeypatch.setitem(sys.modules, "anthropic", None)  # what importlib sees when the SDK is not installed
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    with pytest.raises(ConfigError, match=r"pip install 'supportdesk\[anthropic\]'") as caught:
        LLMFactory(Settings(llm="anthropic/claude-haiku-4-5")).chat_model()
    assert "\n" not in str(caught.value)


def test_hosted_providers_need_their_key(monkeypatch):
    """A hosted provider without its key fails with the variable's name; with it, the client is built."""
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        LLMFactory(Settings(llm="openai/gpt-4o-mini")).chat_model()
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    factory = LLMFactory(Settings(llm="anthropic/claude-haiku-4-5"))
    assert isinstance(factory.chat_model(), AnthropicModel) and factory.kind == "hosted"
    ollama = LLMFactory(Settings(llm="ollama/llama3.2")).chat_model()
    assert isinstance(ollama, OpenAICompatibleModel) and ollama.base_url == "http://127.0.0.1:11434/v1"
