"""One settings object, read once from the environment; fails fast naming what is wrong.

Only `bot.__main__` calls `load_dotenv()`; nothing else reads `os.environ`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_CHOPPITY_API_URL = "https://api2.choppity.com"
DEFAULT_REAP_API_URL = "https://public.reap.video/api/v1/automation"
DEFAULT_DATABASE_URL = "sqlite:///greenlight.db"

_LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
_LOG_FORMATS = ("text", "json")
CLIP_PREVIEW_MODES = ("upload", "link", "off")


class ConfigError(ValueError):
    """Raised with every problem found, one per line, each naming its variable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("Invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class Settings:
    """Greenlight's configuration. Secrets are excluded from repr so they never reach a log."""

    slack_bot_token: str = field(repr=False)
    slack_signing_secret: str = field(repr=False)
    slack_channel_id: str
    slack_app_token: str | None = field(default=None, repr=False)
    slack_api_url: str = DEFAULT_SLACK_API_URL
    choppity_api_key: str | None = field(default=None, repr=False)
    choppity_api_url: str = DEFAULT_CHOPPITY_API_URL
    choppity_webhook_secrets: tuple[str, ...] = field(default=(), repr=False)
    reap_api_key: str | None = field(default=None, repr=False)
    reap_api_url: str = DEFAULT_REAP_API_URL
    reap_webhook_token: str | None = field(default=None, repr=False)
    reap_integrations: tuple[str, ...] = ()
    database_url: str = field(default=DEFAULT_DATABASE_URL, repr=False)
    host: str = "0.0.0.0"
    port: int = 3000
    log_level: str = "INFO"
    # "text" (readable lines) or "json" (one object a line, for log collectors); see bot.logs.
    log_format: str = "text"
    approvers: tuple[str, ...] = ()
    required_approvals: int = 1
    allow_self_approval: bool = False
    editors_can_edit: bool = True
    remind_after_hours: float = 24.0
    # How long a draft may wait for a decision before it is overdue and the approvers are told
    # once (DECISION_DEADLINE, e.g. 48h); None: no deadline.
    decision_deadline: timedelta | None = None
    reconcile_interval_seconds: float = 60.0
    # A clip's video in its thread: "upload" (playable in Slack), "link" (a link on the clip's
    # message) or "off"; videos over clip_preview_max_mb are linked instead of uploaded.
    clip_preview: str = "upload"
    clip_preview_max_mb: int = 200
    choppity_requests_per_minute: int = 60
    reap_requests_per_minute: int = 10
    worker_threads: int = 4
    worker_poll_seconds: float = 0.5
    auto_migrate: bool = True
    http_timeout_seconds: float = 10.0
    # How long Greenlight waits for Slack to answer a card or a thread reply. When no answer comes,
    # it waits one and a half times this before looking whether Slack stored the message anyway.
    slack_timeout_seconds: float = 10.0
    # How long a worker holds a claimed job before another worker may take it over (crash recovery).
    job_lease_seconds: float = 60.0
    # Where provider request budgets keep their moving window: None (empty) is PostgreSQL when the
    # database is PostgreSQL, else this process's memory; "memory://" or a redis:// URL force one.
    rate_limit_storage_url: str | None = field(default=None, repr=False)
    # Where this deployment is reached from outside (`greenlight doctor` sends test webhooks there).
    public_url: str | None = None
    # GET /metrics (Prometheus) and the instrumentation behind it; see docs/metrics.md.
    metrics_enabled: bool = True
    # When set, GET /metrics needs `Authorization: Bearer <token>`.
    metrics_token: str | None = field(default=None, repr=False)
    # prometheus-client's multiprocess mode: every process on this host writes its samples here and
    # any of them answers /metrics with the sum (PROMETHEUS_MULTIPROC_DIR, the library's own name).
    prometheus_multiproc_dir: str | None = None
    # Test-only: named crash points (bot.failpoints) that SIGKILL the process when reached.
    # GREENLIGHT_FAILPOINTS, comma-separated; never set it in production.
    failpoints: tuple[str, ...] = ()

    @property
    def socket_mode(self) -> bool:
        """Socket Mode when an app-level token is configured, else HTTP mode."""
        return bool(self.slack_app_token)

    @property
    def choppity_enabled(self) -> bool:
        """Choppity is served when its API key is set."""
        return bool(self.choppity_api_key)

    @property
    def reap_enabled(self) -> bool:
        """Reap is served when its API key is set."""
        return bool(self.reap_api_key)

    def secrets(self) -> list[str]:
        """Every secret value, for log redaction."""
        values = [
            self.slack_bot_token,
            self.slack_signing_secret,
            self.slack_app_token,
            self.choppity_api_key,
            self.reap_api_key,
            self.reap_webhook_token,
            self.metrics_token,
            *self.choppity_webhook_secrets,
            *_url_credentials(self.rate_limit_storage_url),
            *_url_credentials(self.database_url),
        ]
        return [v for v in values if v]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Build settings from an environment mapping; raise ConfigError listing every problem."""
        read = _EnvReader(env)
        settings = cls(
            **_slack_settings(read),
            **_provider_settings(read),
            database_url=_database_url(read),
            host=read.get("HOST") or "0.0.0.0",
            port=read.integer("PORT", 3000, 0, 65535),
            log_level=_log_level(read),
            log_format=_log_format(read),
            approvers=_approvers(read),
            required_approvals=read.integer("REQUIRED_APPROVALS", 1, 1, 10),
            allow_self_approval=read.boolean("ALLOW_SELF_APPROVAL", False),
            editors_can_edit=read.boolean("EDITORS_CAN_EDIT", True),
            remind_after_hours=read.number("REMIND_AFTER_HOURS", 24.0),
            decision_deadline=_decision_deadline(read),
            clip_preview=read.choice("CLIP_PREVIEW", CLIP_PREVIEW_MODES),
            clip_preview_max_mb=read.integer("CLIP_PREVIEW_MAX_MB", 200, 1, 1024),
            reconcile_interval_seconds=read.number("RECONCILE_INTERVAL_SECONDS", 60.0, 0.05),
            worker_threads=read.integer("WORKER_THREADS", 4, 1, 64),
            worker_poll_seconds=read.number("WORKER_POLL_SECONDS", 0.5, 0.01),
            auto_migrate=read.boolean("AUTO_MIGRATE", True),
            http_timeout_seconds=read.number("HTTP_TIMEOUT_SECONDS", 10.0, 0.1),
            slack_timeout_seconds=read.number("SLACK_TIMEOUT_SECONDS", 10.0, 0.2),
            job_lease_seconds=read.number("JOB_LEASE_SECONDS", 60.0, 1.0),
            failpoints=read.csv("GREENLIGHT_FAILPOINTS"),
            rate_limit_storage_url=_rate_limit_storage_url(read),
            **_operations_settings(read),
        )
        if read.problems:
            raise ConfigError(read.problems)
        return settings


class _EnvReader:
    """Typed reads from an environment mapping, collecting every problem instead of stopping at one."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def get(self, name: str) -> str | None:
        """The trimmed value, or None when unset or blank."""
        value = self.env.get(name)
        if value is None:
            return None
        return value.strip() or None

    def required(self, name: str, hint: str) -> str:
        """A value that must be set; records a problem (with where to find it) when it is not."""
        value = self.get(name)
        if value is None:
            self.problems.append(f"{name} is missing ({hint})")
            return ""
        return value

    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        """One of `choices` (case-insensitive); the first is the default."""
        value = (self.get(name) or choices[0]).lower()
        if value not in choices:
            self.problems.append(f"{name} must be one of {', '.join(choices)}, got {value!r}")
            return choices[0]
        return value

    def integer(self, name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
        """A whole number within bounds."""
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{name} must be a whole number, got {raw!r}")
            return default
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            self.problems.append(f"{name} must be {bound}, got {value}")
            return default
        return value

    def number(self, name: str, default: float, minimum: float = 0.0) -> float:
        """A number at least `minimum`."""
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            self.problems.append(f"{name} must be a number, got {raw!r}")
            return default
        if not value >= minimum:  # also refuses nan
            self.problems.append(f"{name} must be >= {minimum}, got {value}")
            return default
        return value

    def boolean(self, name: str, default: bool) -> bool:
        """true/false, yes/no, on/off or 1/0."""
        raw = self.get(name)
        if raw is None:
            return default
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        self.problems.append(f"{name} must be true or false, got {raw!r}")
        return default

    def csv(self, name: str) -> tuple[str, ...]:
        """Comma-separated values, blanks dropped."""
        raw = self.get(name)
        if raw is None:
            return ()
        return tuple(part.strip() for part in raw.split(",") if part.strip())

    def url(self, name: str, default: str) -> str:
        """An http(s) URL."""
        value = self.get(name) or default
        if not re.match(r"^https?://[^\s/]+", value):
            self.problems.append(f"{name} must be an http(s) URL, got {value!r}")
        return value


def _slack_settings(read: _EnvReader) -> dict[str, Any]:
    bot_token = read.required("SLACK_BOT_TOKEN", "the xoxb- bot token from OAuth & Permissions")
    if bot_token and not bot_token.startswith("xoxb-"):
        read.problems.append("SLACK_BOT_TOKEN must start with xoxb-")
    signing_secret = read.required("SLACK_SIGNING_SECRET", "from Basic Information > App Credentials")
    channel = read.required("SLACK_CHANNEL_ID", "the id (C…) of the review channel")
    if channel and not re.fullmatch(r"[CG][A-Z0-9]{2,}", channel):
        read.problems.append(f"SLACK_CHANNEL_ID must be a channel id like C0123ABCD, got {channel!r}")
    app_token = read.get("SLACK_APP_TOKEN")
    if app_token and not app_token.startswith("xapp-"):
        read.problems.append("SLACK_APP_TOKEN must start with xapp- (or be unset for HTTP mode)")
    return {
        "slack_bot_token": bot_token,
        "slack_signing_secret": signing_secret,
        "slack_channel_id": channel,
        "slack_app_token": app_token,
        "slack_api_url": read.url("SLACK_API_URL", DEFAULT_SLACK_API_URL),
    }


def _provider_settings(read: _EnvReader) -> dict[str, Any]:
    choppity_key = read.get("CHOPPITY_API_KEY")
    reap_key = read.get("REAP_API_KEY")
    if not choppity_key and not reap_key:
        read.problems.append("CHOPPITY_API_KEY or REAP_API_KEY is missing (set at least one provider)")
    webhook_secrets = read.csv("CHOPPITY_WEBHOOK_SECRET")
    if choppity_key and not webhook_secrets:
        read.problems.append(
            "CHOPPITY_WEBHOOK_SECRET is missing (shown once when you create the webhook in "
            "Choppity; several comma-separated secrets are accepted during rotation)"
        )
    reap_token = read.get("REAP_WEBHOOK_TOKEN")
    if reap_token is not None and len(reap_token) < 16:
        read.problems.append(
            "REAP_WEBHOOK_TOKEN must be at least 16 characters (it guards an unsigned webhook)"
        )
    return {
        "choppity_api_key": choppity_key,
        "choppity_api_url": read.url("CHOPPITY_API_URL", DEFAULT_CHOPPITY_API_URL).rstrip("/"),
        "choppity_webhook_secrets": webhook_secrets,
        "choppity_requests_per_minute": read.integer("CHOPPITY_REQUESTS_PER_MINUTE", 60, 1, 600),
        "reap_api_key": reap_key,
        "reap_api_url": read.url("REAP_API_URL", DEFAULT_REAP_API_URL).rstrip("/"),
        "reap_webhook_token": reap_token,
        "reap_integrations": read.csv("REAP_INTEGRATIONS"),
        "reap_requests_per_minute": read.integer("REAP_REQUESTS_PER_MINUTE", 10, 1, 600),
    }


def _approvers(read: _EnvReader) -> tuple[str, ...]:
    approvers = read.csv("APPROVERS")
    for approver in approvers:
        if not re.fullmatch(r"[USW][A-Z0-9_]{2,}", approver):
            read.problems.append(
                f"APPROVERS entries must be user ids (U…) or user-group ids (S…), got {approver!r}"
            )
    return approvers


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(m|min|h|d)", re.IGNORECASE)
_DURATION_UNITS = {"m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
# A deadline shorter than a minute can't be kept by a loop that looks every few seconds; one past a
# year is a typo.
_DEADLINE_BOUNDS = (timedelta(minutes=1), timedelta(days=365))


def parse_duration(value: str) -> timedelta | None:
    """"48h", "90m", "2d", "1.5h" as a timedelta; None when it isn't such a duration."""
    match = _DURATION.fullmatch(value.strip())
    if match is None:
        return None
    return timedelta(seconds=float(match.group(1)) * _DURATION_UNITS[match.group(2).lower()])


def _decision_deadline(read: _EnvReader) -> timedelta | None:
    raw = read.get("DECISION_DEADLINE")
    if raw is None or raw.lower() in ("0", "off", "none"):
        return None
    deadline = parse_duration(raw)
    low, high = _DEADLINE_BOUNDS
    if deadline is None:
        read.problems.append(f"DECISION_DEADLINE must be a duration like 48h, 90m or 2d (or empty for none), got {raw!r}")
    elif not low <= deadline <= high:
        read.problems.append(f"DECISION_DEADLINE must be between 1 minute and 365 days, got {raw!r}")
        return None
    return deadline


def _log_level(read: _EnvReader) -> str:
    log_level = (read.get("LOG_LEVEL") or "INFO").upper()
    if log_level not in _LOG_LEVELS:
        read.problems.append(f"LOG_LEVEL must be one of {', '.join(_LOG_LEVELS)}, got {log_level!r}")
    return log_level


def _log_format(read: _EnvReader) -> str:
    log_format = (read.get("LOG_FORMAT") or "text").lower()
    if log_format not in _LOG_FORMATS:
        read.problems.append(f"LOG_FORMAT must be one of {', '.join(_LOG_FORMATS)}, got {log_format!r}")
    return log_format


def _database_url(read: _EnvReader) -> str:
    database_url = read.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    if database_url.startswith("postgres://"):
        database_url = "postgresql://" + database_url[len("postgres://") :]
    if database_url.startswith("postgresql://"):
        # psycopg 3 is the driver we ship.
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://") :]
    if not database_url.startswith(("sqlite", "postgresql")):
        read.problems.append("DATABASE_URL must be a sqlite:/// or postgresql:// URL")
    return database_url


# -- PUBLIC_URL, metrics -----------------------------------------------------------------------------

MIN_METRICS_TOKEN_LENGTH = 16


def _operations_settings(read: _EnvReader) -> dict[str, Any]:
    public_url = read.get("PUBLIC_URL")
    if public_url is not None:
        parts = urlsplit(public_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            read.problems.append(f"PUBLIC_URL must be the http(s) base URL Slack and the providers reach, like "
                                 f"https://greenlight.example.com, got {public_url!r}")
        public_url = public_url.rstrip("/")
    token = read.get("METRICS_TOKEN")
    if token is not None and (len(token) < MIN_METRICS_TOKEN_LENGTH or not token.isascii() or not token.isprintable()
                              or " " in token):
        read.problems.append(f"METRICS_TOKEN must be at least {MIN_METRICS_TOKEN_LENGTH} printable ASCII characters "
                             "without spaces (it is sent as a bearer token)")
    multiproc_dir = read.get("PROMETHEUS_MULTIPROC_DIR")
    if multiproc_dir is not None:
        path = Path(multiproc_dir)
        if not path.is_dir():
            read.problems.append(f"PROMETHEUS_MULTIPROC_DIR must be an existing directory, got {multiproc_dir!r}")
        elif not os.access(path, os.W_OK | os.X_OK):
            read.problems.append(f"PROMETHEUS_MULTIPROC_DIR must be writable by this process: {multiproc_dir!r}")
    return {
        "public_url": public_url,
        "metrics_enabled": read.boolean("METRICS_ENABLED", True),
        "metrics_token": token,
        "prometheus_multiproc_dir": multiproc_dir,
    }


# -- RATE_LIMIT_STORAGE_URL ---------------------------------------------------------------------------

RATE_LIMIT_STORAGE_SCHEMES = ("redis", "rediss", "redis+unix", "memory")


def _rate_limit_storage_url(read: _EnvReader) -> str | None:
    value = read.get("RATE_LIMIT_STORAGE_URL")
    if value is not None:
        problem = _rate_limit_storage_problem(value)
        if problem:
            read.problems.append(f"RATE_LIMIT_STORAGE_URL {problem}")
    return value


def _rate_limit_storage_problem(value: str) -> str | None:
    """What is wrong with a RATE_LIMIT_STORAGE_URL (never quoting it: it may hold a password)."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return "is not a valid URL"
    scheme = parts.scheme.lower()
    if scheme not in RATE_LIMIT_STORAGE_SCHEMES or "://" not in value:
        shown = f"a {scheme}: URL" if scheme and scheme.isascii() and scheme.replace("+", "").isalnum() else "that"
        return f"must be redis://host:port/db, rediss://…, redis+unix:///path or memory://, not {shown}"
    if scheme in ("redis", "rediss") and not parts.hostname:
        return f"needs a host ({scheme}://host:6379/0)"
    if scheme == "redis+unix" and not parts.path:
        return "needs a socket path (redis+unix:///path/to/redis.sock)"
    return None


def _url_credentials(value: str | None) -> list[str]:
    """The URL and its password, when it carries one (for log redaction)."""
    if not value:
        return []
    try:
        password = urlsplit(value).password
    except ValueError:
        return [value]
    return [value, unquote(password), password] if password else []
