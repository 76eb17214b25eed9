"""`greenlight doctor` against the fakes: one all-✅ run (through the real CLI, in a subprocess) and each ❌.

Most runs call `run_doctor` with a captured stream; the CLI runs check the wiring and the exit
status. Every run's output is checked for every secret of its settings.
"""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, col, func, select

from bot import metrics
from bot.config import Settings
from bot.db import make_engine, migrate
from bot.doctor import FAIL, MANIFEST_BOT_SCOPES, OK, SKIP, WARN, manifest_bot_scopes, run_doctor
from bot.models import Job, Post, WebhookEvent
from bot.services.health import migration_head
from tests import harness
from tests.fakes.choppity import FakeChoppity
from tests.fakes.reap import FakeReap
from tests.fakes.slack import DEFAULT_SCOPES, FakeSlack
from tests.harness import WEBHOOK_SECRET, Greenlight, base_env, postgres_schema

ROOT = Path(__file__).resolve().parent.parent
REAP_TOKEN = "reap-path-token-0123456789abcdef"
DB_PASSWORD = "s3cret-db-pass-word"
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")


@pytest.fixture(autouse=True)
def metrics_back_on() -> Iterator[None]:
    """The doctor turns this process's metrics off (its calls aren't the deployment's traffic)."""
    yield
    metrics.configure(enabled=True, multiproc_dir=None)


@pytest.fixture
def fake_reap() -> Iterator[FakeReap]:
    with FakeReap(rate_limit_per_minute=100) as fake:
        fake.add_integration("youtube")
        yield fake


@pytest.fixture
def migrated(tmp_path: Path) -> str:
    """A SQLite database at the latest migration."""
    url = f"sqlite:///{tmp_path / 'greenlight.db'}"
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    return url


@pytest.fixture
def env(fake_slack: FakeSlack, fake_choppity: FakeChoppity, fake_reap: FakeReap, migrated: str) -> dict[str, str]:
    """Settings that are all good (no PUBLIC_URL)."""
    return base_env(fake_slack, fake_choppity, migrated, REAP_API_KEY=fake_reap.api_key, REAP_API_URL=fake_reap.url,
                    REAP_WEBHOOK_TOKEN=REAP_TOKEN, METRICS_TOKEN="metrics-token-0123456789")


def secrets_of(env: dict[str, str]) -> list[str]:
    return [*Settings.from_env(env).secrets(), DB_PASSWORD, REAP_TOKEN]


def doctor(env: dict[str, str], **overrides: str) -> tuple[int, str]:
    """Run the doctor on these settings; (exit status, output). Fails the test if a secret is printed."""
    full = {**env, **overrides}
    out = io.StringIO()
    code = run_doctor(Settings.from_env(full), out, manifest=ROOT / "manifest.yml")
    text = out.getvalue()
    for secret in secrets_of(full):
        assert secret not in text, f"a secret was printed:\n{text}"
    return code, text


def line(output: str, name: str) -> str:
    """The report line of the check called `name`."""
    found = [ln for ln in output.splitlines() if f" {name}: " in ln]
    assert len(found) == 1, f"no single line for {name!r} in:\n{output}"
    return found[0]


def cli(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m bot doctor` as a person runs it."""
    full = {k: os.environ[k] for k in _INHERITED if k in os.environ}
    full.update(env, GREENLIGHT_ENV_FILE="/nonexistent", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "bot", "doctor", *args], env=full, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def serve() -> Iterator[Callable[[dict[str, str]], Greenlight]]:
    """Greenlight serving on loopback, for PUBLIC_URL checks."""
    started: list[Greenlight] = []

    def start(env: dict[str, str]) -> Greenlight:
        app = Greenlight(env).start()
        started.append(app)
        return app

    yield start
    for app in started:
        app.stop()


# -- all green ------------------------------------------------------------------------------------------


def test_all_checks_pass_through_the_cli_and_the_test_deliveries_change_nothing(
    env: dict[str, str], serve: Callable[[dict[str, str]], Greenlight], fake_slack: FakeSlack, tmp_path: Path
) -> None:
    app = serve(env)
    posted_before = fake_slack.count("chat.postMessage")
    result = cli({**env, "PUBLIC_URL": app.url + "/"}, cwd=tmp_path)
    output = result.stdout
    assert result.returncode == 0, output + result.stderr
    for secret in secrets_of(env):
        assert secret not in output and secret not in result.stderr
    for name in ("Slack bot token", "Slack scopes", "Review channel", "Choppity API key", "Reap API key", "Database",
                 "Database migrations", "Database writable", "Choppity webhook", "Reap webhook"):
        assert line(output, name).startswith(OK), output
    assert "@greenlight (UBOT) in Acme (T1)" in line(output, "Slack bot token")
    assert "team id team_abc" in line(output, "Choppity API key") and "1 active integration" in line(output, "Reap API key")
    assert f"{app.url}/webhooks/reap/{{token}}" in line(output, "Reap webhook")
    assert FAIL not in output and "All checks passed" in output
    # Harmless: nothing posted, nothing carded, no job; Choppity's test event recorded as ignored.
    assert fake_slack.count("chat.postMessage") == posted_before
    with Session(app.services.engine) as session:
        assert session.exec(select(func.count()).select_from(Post)).one() == 0
        assert session.exec(select(func.count()).select_from(Job)).one() == 0
        events = session.exec(select(WebhookEvent)).all()
    assert [(e.provider, e.type) for e in events] == [("choppity", "greenlight.doctor")]


def test_the_cli_exits_1_on_a_failure_and_keeps_the_secrets(env: dict[str, str], tmp_path: Path) -> None:
    bad = {**env, "DATABASE_URL": f"postgresql://greenlight:{DB_PASSWORD}@127.0.0.1:1/greenlight"}
    result = cli(bad, cwd=tmp_path)
    assert result.returncode == 1
    assert line(result.stdout, "Database").startswith(FAIL)
    assert "problem found" in result.stdout
    for secret in secrets_of(bad):
        assert secret not in result.stdout and secret not in result.stderr


def test_manifest_scopes_are_what_the_fallback_says() -> None:
    assert manifest_bot_scopes((ROOT / "manifest.yml").read_text()) == MANIFEST_BOT_SCOPES
    assert MANIFEST_BOT_SCOPES <= DEFAULT_SCOPES


# -- Slack ----------------------------------------------------------------------------------------------


def test_bad_token(env: dict[str, str]) -> None:
    code, output = doctor(env, SLACK_BOT_TOKEN="xoxb-not-the-right-token-42")
    assert code == 1
    assert line(output, "Slack bot token").startswith(f"{FAIL} Slack bot token: refused (invalid_auth) — fix: ")
    assert line(output, "Slack scopes").startswith(SKIP) and line(output, "Review channel").startswith(SKIP)


def test_revoked_token(env: dict[str, str], fake_slack: FakeSlack) -> None:
    fake_slack.revoke_token()
    code, output = doctor(env)
    assert code == 1 and "refused (token_revoked)" in line(output, "Slack bot token")
    assert "reinstall the app" in line(output, "Slack bot token")


def test_slack_unreachable(env: dict[str, str]) -> None:
    code, output = doctor(env, SLACK_API_URL="http://127.0.0.1:1/api/")
    assert code == 1 and "couldn't reach Slack" in line(output, "Slack bot token")


def test_missing_scopes_are_named(env: dict[str, str], fake_slack: FakeSlack) -> None:
    fake_slack.set_scopes(DEFAULT_SCOPES - {"channels:join", "groups:history"})
    code, output = doctor(env)
    assert code == 1
    scopes = line(output, "Slack scopes")
    assert scopes.startswith(f"{FAIL} Slack scopes: missing channels:join, groups:history")
    assert "reinstall the app" in scopes


def test_files_write_is_needed_only_to_upload_clip_videos(env: dict[str, str], fake_slack: FakeSlack) -> None:
    fake_slack.set_scopes(DEFAULT_SCOPES - {"files:write"})
    code, output = doctor(env, CLIP_PREVIEW="upload")
    assert code == 1 and line(output, "Slack scopes").startswith(f"{FAIL} Slack scopes: missing files:write")
    for mode in ("link", "off"):
        code, output = doctor(env, CLIP_PREVIEW=mode)
        assert line(output, "Slack scopes").startswith(f"{OK} Slack scopes"), output


def test_channel_not_found(env: dict[str, str]) -> None:
    code, output = doctor(env, SLACK_CHANNEL_ID="C0NOSUCH")
    assert code == 1
    channel = line(output, "Review channel")
    assert channel.startswith(FAIL) and "C0NOSUCH not found" in channel and "SLACK_CHANNEL_ID" in channel


def test_bot_not_a_member_of_a_private_channel(env: dict[str, str], fake_slack: FakeSlack) -> None:
    fake_slack.add_channel("C0SECRET", name="secret-review", is_private=True, bot_member=False)
    code, output = doctor(env, SLACK_CHANNEL_ID="C0SECRET")
    assert code == 1
    channel = line(output, "Review channel")
    assert channel.startswith(FAIL) and "not a member of #secret-review" in channel and "/invite @greenlight" in channel


def test_public_channel_without_the_bot(env: dict[str, str], fake_slack: FakeSlack) -> None:
    fake_slack.add_channel("C0OPEN", name="open-review", bot_member=False)
    code, output = doctor(env, SLACK_CHANNEL_ID="C0OPEN")
    assert code == 0 and line(output, "Review channel").startswith(f"{OK} Review channel: #open-review (C0OPEN) is public")
    fake_slack.set_scopes(DEFAULT_SCOPES - {"chat:write.public"})
    code, output = doctor(env, SLACK_CHANNEL_ID="C0OPEN")
    assert code == 1 and "not a member of #open-review" in line(output, "Review channel")


def test_archived_channel(env: dict[str, str], fake_slack: FakeSlack) -> None:
    fake_slack.add_channel("C0OLD", name="old-review")
    fake_slack._channels["C0OLD"]["is_archived"] = True  # the fake has no setter for it
    code, output = doctor(env, SLACK_CHANNEL_ID="C0OLD")
    assert code == 1 and "#old-review (C0OLD) is archived" in line(output, "Review channel")


def test_channel_checked_with_exactly_the_manifest_scopes(env: dict[str, str], fake_slack: FakeSlack) -> None:
    # The manifest asks for no channels:read: the channel's history says whether it is there.
    fake_slack.set_scopes(MANIFEST_BOT_SCOPES)
    code, output = doctor(env)
    assert code == 0 and line(output, "Review channel").startswith(f"{OK} Review channel: C0REVIEW exists")
    fake_slack.add_channel("C0OPEN", bot_member=False)
    code, output = doctor(env, SLACK_CHANNEL_ID="C0OPEN")
    assert code == 0 and "is public" in line(output, "Review channel")
    code, output = doctor(env, SLACK_CHANNEL_ID="C0NOSUCH")
    assert code == 1 and "C0NOSUCH not found" in line(output, "Review channel")


# -- providers ------------------------------------------------------------------------------------------


def test_choppity_key_refused(env: dict[str, str]) -> None:
    code, output = doctor(env, CHOPPITY_API_KEY="ck-wrong-key-team_abc")
    assert code == 1
    choppity = line(output, "Choppity API key")
    assert choppity.startswith(f"{FAIL} Choppity API key: refused by Choppity (HTTP 401)")
    assert "CHOPPITY_API_KEY" in choppity
    assert line(output, "Reap API key").startswith(OK)


def test_reap_key_refused(env: dict[str, str]) -> None:
    code, output = doctor(env, REAP_API_KEY="reap_wrong_key_0123456789")
    assert code == 1
    assert line(output, "Reap API key").startswith(f"{FAIL} Reap API key: refused by Reap (HTTP 401)")
    assert line(output, "Choppity API key").startswith(OK)


def test_provider_rate_limiting_is_a_warning(env: dict[str, str], fake_choppity: FakeChoppity) -> None:
    fake_choppity.fail_next("GET", r"/v1/ping$", 429, code="RATE_LIMITED", message="slow down", times=10,
                            retry_after=30)
    code, output = doctor(env)
    assert code == 0 and line(output, "Choppity API key").startswith(WARN)


# -- the database ---------------------------------------------------------------------------------------


def test_database_unreachable_never_shows_its_password(env: dict[str, str]) -> None:
    code, output = doctor(env, DATABASE_URL=f"postgresql://greenlight:{DB_PASSWORD}@127.0.0.1:1/greenlight")
    assert code == 1
    database = line(output, "Database")
    assert database.startswith(f"{FAIL} Database: PostgreSQL database greenlight at 127.0.0.1:1 unreachable")
    assert line(output, "Database migrations").startswith(SKIP)


def test_database_not_migrated(env: dict[str, str], tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    code, output = doctor(env, DATABASE_URL=f"sqlite:///{empty}")
    assert code == 1
    assert line(output, "Database").startswith(OK)
    assert line(output, "Database migrations").startswith(f"{FAIL} Database migrations: not migrated")
    assert "greenlight migrate" in line(output, "Database migrations")


def test_database_behind(env: dict[str, str], migrated: str) -> None:
    engine = make_engine(migrated)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0003'")
    engine.dispose()
    code, output = doctor(env)
    head = migration_head()
    assert code == 1 and f"behind: at 0003, this build needs {head}" in line(output, "Database migrations")
    assert line(output, "Database writable").startswith(OK)


def test_missing_sqlite_file_is_reported_not_created(env: dict[str, str], tmp_path: Path) -> None:
    absent = tmp_path / "nowhere" / "greenlight.db"
    code, output = doctor(env, DATABASE_URL=f"sqlite:///{absent}")
    assert code == 1 and "does not exist" in line(output, "Database") and not absent.exists()


def test_read_only_database(env: dict[str, str]) -> None:
    base = harness.test_database_url()
    if not base:
        pytest.skip("needs PostgreSQL (a read-only session): TEST_DATABASE_URL is not set (.ci/run sets it)")
    with postgres_schema(base) as url:
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()
        read_only = url + "%20-cdefault_transaction_read_only%3Don"  # like a hot standby
        code, output = doctor(env, DATABASE_URL=read_only)
    assert code == 1
    assert line(output, "Database").startswith(OK) and line(output, "Database migrations").startswith(OK)
    writable = line(output, "Database writable")
    assert writable.startswith(f"{FAIL} Database writable: a test write failed") and "read-only" in writable


# -- webhooks from outside ------------------------------------------------------------------------------


def test_public_url_with_another_webhook_secret(
    env: dict[str, str], serve: Callable[[dict[str, str]], Greenlight]
) -> None:
    app = serve({**env, "CHOPPITY_WEBHOOK_SECRET": "whsec_the_other_deployment"})
    code, output = doctor(env, PUBLIC_URL=app.url)
    assert code == 1
    hook = line(output, "Choppity webhook")
    assert hook.startswith(f"{FAIL} Choppity webhook: {app.url}/webhooks/choppity refused the test delivery's signature")
    assert line(output, "Reap webhook").startswith(OK)


def test_public_url_with_another_reap_token(env: dict[str, str], serve: Callable[[dict[str, str]], Greenlight]) -> None:
    app = serve({**env, "REAP_WEBHOOK_TOKEN": "another-token-0123456789abcdef"})
    code, output = doctor(env, PUBLIC_URL=app.url)
    assert code == 1 and "answered 404" in line(output, "Reap webhook")
    assert line(output, "Choppity webhook").startswith(OK)


def test_public_url_unreachable(env: dict[str, str]) -> None:
    code, output = doctor(env, PUBLIC_URL="http://127.0.0.1:1")
    assert code == 1
    assert "http://127.0.0.1:1/webhooks/choppity unreachable (ConnectError)" in line(output, "Choppity webhook")
    assert line(output, "Reap webhook").startswith(FAIL)


def test_public_url_answering_something_else(env: dict[str, str]) -> None:
    def redirecting(url: str, **kwargs: object) -> httpx.Response:
        return httpx.Response(301, headers={"location": "https://greenlight.example.com/webhooks/choppity"})

    out = io.StringIO()
    code = run_doctor(Settings.from_env({**env, "PUBLIC_URL": "http://greenlight.example.com"}), out,
                      manifest=ROOT / "manifest.yml", post=redirecting)
    assert code == 1 and "answered HTTP 301 to https://greenlight.example.com" in line(out.getvalue(), "Choppity webhook")


def test_without_public_url_or_reap_token_those_checks_are_skipped(env: dict[str, str]) -> None:
    settings = {k: v for k, v in env.items() if k != "REAP_WEBHOOK_TOKEN"}
    code, output = doctor(settings)
    assert code == 0 and line(output, "Webhooks from outside").startswith(SKIP)
    code, output = doctor(settings, PUBLIC_URL="http://127.0.0.1:1")
    assert line(output, "Reap webhook").startswith(SKIP)


def test_doctor_webhook_event_is_acknowledged_and_ignored(
    env: dict[str, str], serve: Callable[[dict[str, str]], Greenlight]
) -> None:
    app = serve(env)
    for _ in range(2):  # a fresh event id each run: never taken for a redelivery
        code, output = doctor(env, PUBLIC_URL=app.url)
        assert code == 0, output
    app.settle()
    with Session(app.services.engine) as session:
        types = session.exec(select(WebhookEvent.type).where(col(WebhookEvent.provider) == "choppity")).all()
        assert list(types) == ["greenlight.doctor", "greenlight.doctor"]
        assert session.exec(select(func.count()).select_from(Job)).one() == 0
    # The secret used to sign it is not the only one accepted during a rotation.
    rotated = {**env, "CHOPPITY_WEBHOOK_SECRET": f"{WEBHOOK_SECRET},whsec_old_secret_123"}
    code, output = doctor(rotated, PUBLIC_URL=app.url)
    assert code == 0 and line(output, "Choppity webhook").startswith(OK)
