"""Settings: one object, read once, failing fast with every problem named."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings

GOOD = {
    "SLACK_BOT_TOKEN": "xoxb-1-2-abc",
    "SLACK_SIGNING_SECRET": "signing-secret-value",
    "SLACK_CHANNEL_ID": "C0REVIEW",
    "CHOPPITY_API_KEY": "9f8e7d6c-secret-team_abc",
    "CHOPPITY_WEBHOOK_SECRET": "whsec_new,whsec_old",
}


def test_defaults_and_parsing() -> None:
    settings = Settings.from_env(GOOD)
    assert settings.database_url == "sqlite:///greenlight.db"
    assert (settings.host, settings.port) == ("0.0.0.0", 3000)
    assert settings.choppity_api_url == "https://api2.choppity.com"
    assert settings.choppity_webhook_secrets == ("whsec_new", "whsec_old")
    assert not settings.socket_mode and settings.choppity_enabled and not settings.reap_enabled
    assert settings.required_approvals == 1 and settings.editors_can_edit and not settings.allow_self_approval


def test_every_problem_is_named_at_once() -> None:
    env = {"SLACK_BOT_TOKEN": "not-a-bot-token", "PORT": "eighty", "REQUIRED_APPROVALS": "0",
           "APPROVERS": "U123,bob", "LOG_LEVEL": "LOUD", "DATABASE_URL": "mysql://x"}
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    text = str(info.value)
    for name in ("SLACK_BOT_TOKEN must start with xoxb-", "SLACK_SIGNING_SECRET is missing",
                 "SLACK_CHANNEL_ID is missing", "CHOPPITY_API_KEY or REAP_API_KEY", "PORT must be a whole number",
                 "REQUIRED_APPROVALS must be between", "APPROVERS entries", "LOG_LEVEL", "DATABASE_URL"):
        assert name in text


def test_postgres_urls_use_psycopg3() -> None:
    settings = Settings.from_env({**GOOD, "DATABASE_URL": "postgres://u:p@db:5432/gl"})
    assert settings.database_url == "postgresql+psycopg://u:p@db:5432/gl"


def test_repr_hides_secrets() -> None:
    settings = Settings.from_env({**GOOD, "DATABASE_URL": "postgresql://u:hunter2@db/gl"})
    text = repr(settings)
    for secret in [*settings.secrets(), "hunter2"]:
        assert secret not in text


def test_python_m_bot_exits_naming_missing_variables(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CHOPPITY_", "REAP_"))}
    env["GREENLIGHT_ENV_FILE"] = str(tmp_path / "absent.env")
    result = subprocess.run([sys.executable, "-m", "bot", "check"], env=env, capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN is missing" in result.stderr and "SLACK_CHANNEL_ID is missing" in result.stderr


def test_dotenv_file_is_loaded(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("\n".join(f"{k}={v}" for k, v in GOOD.items()) + "\nPORT=3999\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CHOPPITY_", "REAP_"))}
    env["GREENLIGHT_ENV_FILE"] = str(env_file)
    result = subprocess.run([sys.executable, "-m", "bot", "check"], env=env, capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "port=3999" in result.stderr
    assert "xoxb-1-2-abc" not in result.stderr


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("48h", timedelta(hours=48)), ("90m", timedelta(minutes=90)), ("2d", timedelta(days=2)),
     ("1.5h", timedelta(minutes=90)), (" 30 MIN ", timedelta(minutes=30)), ("", None), ("0", None), ("off", None)],
)
def test_decision_deadline_durations(raw: str, expected: timedelta | None) -> None:
    assert Settings.from_env({**GOOD, "DECISION_DEADLINE": raw}).decision_deadline == expected
    assert Settings.from_env(GOOD).decision_deadline is None


@pytest.mark.parametrize("raw", ["48", "two days", "48hours", "-1h", "30s", "0.5m", "400d"])
def test_decision_deadline_refuses_what_it_cannot_keep(raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({**GOOD, "DECISION_DEADLINE": raw})
    assert "DECISION_DEADLINE must be" in str(info.value) and repr(raw) in str(info.value)
