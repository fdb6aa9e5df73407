"""One settings class for the whole package, read from the environment when asked.

Nothing reads the environment at import time: call :func:`load_settings` (or build
:class:`Settings` yourself) where you start a run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from supportdesk.errors import ConfigError

__all__ = ["Settings", "load_settings"]


def _default_home() -> Path:
    return Path.home() / ".supportdesk"


class Settings(BaseSettings):
    """Every knob of supportdesk. Environment variables use the ``SUPPORTDESK_`` prefix.

    Provider credentials keep their customary names (``OPENAI_API_KEY``, ``SERPER_API_KEY``,
    ``JIRA_URL`` ...) so existing deployments need no renaming.
    """

    model_config = SettingsConfigDict(env_prefix="SUPPORTDESK_", extra="ignore", populate_by_name=True)

    def __init__(self, **values: Any) -> None:
        """Read the environment and ``values``; an invalid value is a one-line :class:`ConfigError`
        naming the variable (never a pydantic traceback, never a secret's value)."""
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ConfigError(_settings_problem(type(self), exc)) from exc

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
    max_wrong_answer_rate: float = Field(
        default=0.10, gt=0, lt=1,
        description="Ceiling on the FAQ stage's estimated wrong-answer rate (answered but wrong, over answered); "
                    "the answer threshold is calibrated to keep it.",
    )
    encoder: Literal["all-MiniLM-L6-v2", "all-mpnet-base-v2"] = Field(
        default="all-mpnet-base-v2",
        description="The sentence encoder of the FAQ answer gate (retrieval, gate, its calibration). "
                    "'all-mpnet-base-v2' answers more and more rightly than 'all-MiniLM-L6-v2', at about 30 ms "
                    "a query instead of 5 ms; under the embedded policy MiniLM decides in front of it the "
                    "queries it is sure of (policies.yaml prefilter_encoder). Triage and the web fallback "
                    "keep all-MiniLM-L6-v2.",
    )
    calibration_file: Path | None = Field(
        default=None,
        description="Operator calibration written by 'supportdesk calibrate'; default: <home>/calibration.json.",
    )
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
    web_allowed_domains: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description=(
            "Domains the web fallback may search and cite, comma-separated (subdomains included). "
            "Empty: the web fallback is off."
        ),
    )

    jira_url: str | None = Field(default=None, validation_alias=AliasChoices("JIRA_URL"))
    jira_user: str | None = Field(default=None, validation_alias=AliasChoices("JIRA_USER", "JIRA_EMAIL"))
    jira_api_token: SecretStr | None = Field(default=None, validation_alias=AliasChoices("JIRA_API_TOKEN"))
    jira_project: str = Field(default="SUP", validation_alias=AliasChoices("JIRA_PROJECT", "SUPPORTDESK_JIRA_PROJECT"))
    jira_timeout_s: float = Field(default=15.0, gt=0)

    telemetry: bool = Field(default=False, description="Let CrewAI and Haystack send their telemetry.")
    otel: bool = Field(
        default=False,
        description="OpenTelemetry tracing of runs (SUPPORTDESK_OTEL): spans to the application's tracer provider, "
        "else to OTLP as the standard OTEL_EXPORTER_OTLP_* variables say.",
    )
    log_format: str = Field(
        default="text", pattern="^(text|json)$",
        description="CLI log records on stderr: 'text', or 'json' (one object a line, with run_id and step).",
    )

    # --- the HTTP service (supportdesk serve) ---
    engine: str = Field(default="inprocess", description="Where service runs execute: 'inprocess' or 'temporal'.")
    service_workers: int = Field(default=2, ge=1, le=256, description="In-process engine: runs executing at once.")
    rate_limit_per_minute: int = Field(default=600, ge=0, description="Requests per API key per minute (0: off).")
    rate_limit_burst: int = Field(default=60, ge=1, description="Requests an API key may send at once.")
    max_body_bytes: int = Field(default=64_000, ge=1024, description="Largest request body the service accepts.")
    max_wait_s: float = Field(default=60.0, ge=0, description="Longest ?wait= a POST /v1/runs may ask for.")

    # --- scale-out on Temporal (SUPPORTDESK_ENGINE=temporal; `supportdesk worker`) ---
    temporal_address: str = Field(
        default="127.0.0.1:7233", validation_alias=AliasChoices("TEMPORAL_ADDRESS", "SUPPORTDESK_TEMPORAL_ADDRESS"),
        description="host:port of the Temporal frontend.",
    )
    temporal_namespace: str = Field(
        default="default", validation_alias=AliasChoices("TEMPORAL_NAMESPACE", "SUPPORTDESK_TEMPORAL_NAMESPACE")
    )
    temporal_task_queue: str = Field(default="supportdesk", min_length=1, description="Task queue of runs and workers.")
    run_lease_s: float = Field(
        default=300.0, gt=0, description="A run's execution lease; renewed every step, so longer than the longest step."
    )
    worker_max_concurrent_runs: int = Field(default=4, ge=1, le=256, description="Runs one worker executes at once.")
    worker_model_calls_per_s: dict[str, float] = Field(
        default_factory=dict,
        description='Model calls per second per provider in one worker, e.g. {"openai": 5, "embedded": 2} (JSON).',
    )
    worker_heartbeat_timeout_s: float = Field(
        default=10.0, gt=0, description="A run activity silent this long is retried on another worker."
    )
    worker_sticky_timeout_s: float = Field(
        default=3.0, gt=0, description="A workflow task not picked from a worker's sticky queue in this time moves on."
    )
    ticket_store: Literal["local", "database"] = Field(
        default="local",
        description="Without Jira: 'local' (a SQLite file under home) or 'database' (a table in database_url, "
        "shared by workers on several machines).",
    )
    worker_lease_s: float = Field(
        default=20.0, gt=0, description="run_lease_s inside workers: a dead worker's run is taken over after it."
    )

    @field_validator("llm")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("SUPPORTDESK_LLM must not be empty")
        return value

    @field_validator("web_allowed_domains", mode="before")
    @classmethod
    def _domains(cls, value: object) -> tuple[str, ...]:
        from supportdesk._domains import parse_domains

        return parse_domains(value)  # type: ignore[arg-type]

    @field_validator("config_dir")
    @classmethod
    def _config_dir_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not Path(value).is_dir():
            raise ValueError("folder does not exist" if not Path(value).exists() else "not a folder")
        return value

    def check_home(self) -> None:
        """Raise :class:`ConfigError` unless ``home`` is (or can be created as) a writable folder.

        Creates nothing: run it before the first database or cache file is written.
        """
        home = Path(self.home).expanduser()
        probe = home
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if probe.exists() and not probe.is_dir():
            raise ConfigError(f"SUPPORTDESK_HOME={home}: {probe} is not a folder")
        if not os.access(probe, os.W_OK | os.X_OK):
            raise ConfigError(f"SUPPORTDESK_HOME={home}: {probe} is not writable")

    @property
    def resolved_calibration_file(self) -> Path:
        """The calibration file in force: the configured one, or ``calibration.json`` under ``home``."""
        return self.calibration_file or self.home / "calibration.json"

    @property
    def resolved_database_url(self) -> str:
        """The database URL in force: the configured one, or SQLite under ``home``."""
        return self.database_url or f"sqlite:///{self.home / 'supportdesk.db'}"


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment (and ``.env`` is deliberately not read), then apply overrides.

    :raises ConfigError: an invalid value (one line naming the variable).
    """
    return Settings(**overrides)  # type: ignore[arg-type]


def _settings_problem(cls: type[BaseSettings], exc: ValidationError) -> str:
    """One line naming each invalid setting by its environment variable, with the value unless secret."""
    problems = []
    for error in exc.errors()[:3]:
        key = str(error["loc"][0]) if error["loc"] else "?"
        field = cls.model_fields.get(key)
        env = f"SUPPORTDESK_{key.upper()}" if field is not None else key
        alias = getattr(field, "validation_alias", None) if field is not None else None
        if isinstance(alias, AliasChoices) and alias.choices:
            env = str(alias.choices[0])
        secret = field is not None and "SecretStr" in str(field.annotation)
        given = "" if secret or "input" not in error else f"={str(error['input'])[:60]!r}"
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{env}{given}: {message}")
    more = f" (and {exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
    return "invalid setting " + "; ".join(problems) + more
