"""Settings: an invalid value is a one-line ConfigError naming the variable; config dir and home are checked."""

from __future__ import annotations

import os

import pytest

from supportdesk.errors import ConfigError
from supportdesk.settings import Settings, load_settings


@pytest.mark.parametrize(
    ("env", "value", "needle"),
    [
        ("SUPPORTDESK_MAX_QUERY_CHARS", "abc", "SUPPORTDESK_MAX_QUERY_CHARS='abc'"),
        ("SUPPORTDESK_MAX_QUERY_CHARS", "0", "greater than or equal to 1"),
        ("SUPPORTDESK_LLM_TIMEOUT_S", "-1", "SUPPORTDESK_LLM_TIMEOUT_S"),
        ("SUPPORTDESK_TELEMETRY", "maybe", "SUPPORTDESK_TELEMETRY"),
        ("SUPPORTDESK_BUDGET_LLM_CALLS", "lots", "SUPPORTDESK_BUDGET_LLM_CALLS"),
    ],
)
def test_invalid_environment_value_is_one_line_config_error(monkeypatch, env, value, needle):
    """An invalid environment value raises ConfigError (not a pydantic traceback) on one line naming the variable."""
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert needle in message and "\n" not in message and message.startswith("invalid setting")


def test_secret_values_are_never_echoed():
    """A malformed secret setting is named but its value is not shown."""
    with pytest.raises(ConfigError) as info:
        Settings(openai_api_key=["sk-live-secret-value"])
    assert "OPENAI_API_KEY" in str(info.value) and "sk-live" not in str(info.value)


def test_missing_config_dir_is_a_config_error(tmp_path):
    """SUPPORTDESK_CONFIG_DIR naming no folder is refused when the settings are read, and nothing is created."""
    missing = tmp_path / "no-such-config"
    with pytest.raises(ConfigError, match="SUPPORTDESK_CONFIG_DIR.*folder does not exist"):
        Settings(config_dir=missing)
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a folder"):
        Settings(config_dir=tmp_path / "a-file")
    assert not missing.exists()


def test_check_home_accepts_a_creatable_home_and_creates_nothing(tmp_path):
    """A home that does not exist yet under a writable folder passes, and check_home creates nothing."""
    Settings(home=tmp_path / "a" / "b").check_home()
    assert not (tmp_path / "a").exists()


def test_check_home_refuses_a_file_in_the_way(tmp_path):
    """A home whose path runs through a regular file is a ConfigError naming SUPPORTDESK_HOME."""
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match="SUPPORTDESK_HOME.*not a folder"):
        Settings(home=tmp_path / "file" / "home").check_home()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write anywhere")
def test_check_home_refuses_a_read_only_folder(tmp_path):
    """A home inside a folder this user cannot write is a ConfigError naming SUPPORTDESK_HOME."""
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(ConfigError, match="SUPPORTDESK_HOME.*not writable"):
            Settings(home=locked / "home").check_home()
    finally:
        locked.chmod(0o700)
