"""One settings class for the whole package, read from the environment when asked.

Nothing reads the environment at import time: call :func:`load_settings` (or build
:class:`Settings` yourself) where you start a run.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "load_settings"]


def _default_home() -> Path:
    return Path.home() / ".supportdesk"


class Settings(BaseSettings):
    """Every knob of supportdesk. Environment variables use the ``SUPPORTDESK_`` prefix.

    Provider credentials keep their customary names (``OPENAI_API_KEY``, ``SERPER_API_KEY``,
    ``JIRA_URL`` ...) so existing deployments need no renaming.
    """

    model_config = SettingsConfigDict(env_prefix="SUPPORTDESK_", extra="ignore", populate_by_name=True)

    llm: str = Field(
        default="embedded",
        description=(
            "Which model every component uses: 'embedded' (offline Gemma 3 270M), 'openai/<model>', "
            "'anthropic/<model>', 'gemini/<model>', 'ollama/<model>[@base_url]', "
            "'openai-compatible/<model>@<base_url>'."
        ),
    )
    llm_timeout_s: float = Field(default=60.0, gt=0)
    llm_max_retries: int = Field(default=2, ge=0, le=10)
    output_retries: int = Field(default=2, ge=0, le=5, description="Re-asks after an invalid structured answer.")
    embedded_threads: int = Field(default=2, ge=1, le=64)
    embedded_ctx: int = Field(default=4096, ge=512)

    home: Path = Field(default_factory=_default_home, description="Where local databases and caches live.")
    database_url: str | None = Field(
        default=None, description="sqlite:///path or postgresql://...; default: SQLite under home."
    )
    config_dir: Path | None = Field(default=None, description="A folder that overrides the packaged config/ files.")
    max_query_chars: int = Field(default=8000, ge=1)
    decision_policy: str | None = Field(
        default=None,
        description="Name of a decision policy in config/policies.yaml; default: chosen by the LLM kind.",
    )

    run_wait_s: float = Field(default=30.0, ge=0, description="How long to wait for a run another process executes.")
    ticket_reconcile_wait_s: float = Field(default=30.0, ge=0, description="Bounded search after an unclear ticket call.")
    budget_llm_calls: int | None = Field(default=30, ge=1, description="Per-run limit of LLM calls (None: no limit).")
    budget_tokens: int | None = Field(default=60_000, ge=1, description="Per-run limit of prompt+completion tokens.")
    budget_seconds: float | None = Field(default=600.0, gt=0, description="Per-run wall-clock limit.")
    budget_cost_usd: float | None = Field(default=None, gt=0, description="Per-run cost limit; needs a price.")
    price_per_1k_tokens_usd: float | None = Field(default=None, gt=0, description="The provider's price, for cost.")

    openai_api_key: SecretStr | None = Field(default=None, validation_alias=AliasChoices("OPENAI_API_KEY"))
    anthropic_api_key: SecretStr | None = Field(default=None, validation_alias=AliasChoices("ANTHROPIC_API_KEY"))
    gemini_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("GEMINI_API_KEY", "GOOGLE_API_KEY")
    )
    llm_api_key: SecretStr | None = Field(
        default=None, description="Key for an openai-compatible server.",
    )

    serper_api_key: SecretStr | None = Field(default=None, validation_alias=AliasChoices("SERPER_API_KEY"))
    serper_url: str = Field(default="https://google.serper.dev/search")
    serper_timeout_s: float = Field(default=10.0, gt=0)

    jira_url: str | None = Field(default=None, validation_alias=AliasChoices("JIRA_URL"))
    jira_user: str | None = Field(default=None, validation_alias=AliasChoices("JIRA_USER", "JIRA_EMAIL"))
    jira_api_token: SecretStr | None = Field(default=None, validation_alias=AliasChoices("JIRA_API_TOKEN"))
    jira_project: str = Field(default="SUP", validation_alias=AliasChoices("JIRA_PROJECT", "SUPPORTDESK_JIRA_PROJECT"))
    jira_timeout_s: float = Field(default=15.0, gt=0)

    telemetry: bool = Field(default=False, description="Let CrewAI and Haystack send their telemetry.")

    @field_validator("llm")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("SUPPORTDESK_LLM must not be empty")
        return value

    @property
    def resolved_database_url(self) -> str:
        """The database URL in force: the configured one, or SQLite under ``home``."""
        return self.database_url or f"sqlite:///{self.home / 'supportdesk.db'}"


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment (and ``.env`` is deliberately not read), then apply overrides."""
    return Settings(**overrides)  # type: ignore[arg-type]
