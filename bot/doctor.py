"""`greenlight doctor`: live checks of everything Greenlight depends on, one line each.

`greenlight check` validates the settings offline; the doctor asks the world whether they work:

- Slack: the bot token (`auth.test`), its granted scopes (the `x-oauth-scopes` header of that
  answer) against the bot scopes `manifest.yml` asks for, and the review channel (it exists, is not
  archived, and the bot is in it or may post without joining).
- Each configured provider: one cheap authenticated read (`Provider.check_access`).
- The database: reachable, migrated to this build's head, and writable (a write in a transaction
  that is rolled back).
- With `PUBLIC_URL` set: each provider's webhook route from outside in, with a test delivery
  authenticated exactly as the provider would send it (`Provider.probe_delivery`): an event type
  the route records and acknowledges without acting on, so no card is ever made.

Nothing is posted to Slack: a message in the review channel would notify the reviewers and stay in
its history, and an ephemeral one needs a person in the channel to receive it. Whether a bot may
post follows from the channel (exists, not archived), its membership and the scopes, which is what
is checked; only a workspace rule limiting who may post in a channel goes unseen.

Every line goes through the secret redaction before it is printed, and no check prints a token,
key, webhook secret, URL token or database password in the first place.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url

from bot import metrics
from bot.config import Settings
from bot.db import MIGRATIONS_DIR, make_engine
from bot.providers.base import Provider
from bot.providers.budget import RateBudget
from bot.providers.errors import ApiError, ApiRateLimited, ApiUnauthorized, ApiUnavailable
from bot.providers.registry import Providers, build_providers
from bot.security import redact, register_secrets

OK, FAIL, WARN, SKIP = "✅", "❌", "⚠️", "⏭️"
TIMEOUT = 10.0
# The bot scopes manifest.yml asks for, for when the doctor runs where manifest.yml isn't (a
# container image); tests/test_doctor.py keeps this equal to the file.
MANIFEST_BOT_SCOPES = frozenset({
    "chat:write", "chat:write.public", "commands", "users:read", "usergroups:read", "channels:history",
    "groups:history", "channels:join", "files:write",
})
# Scopes only CLIP_PREVIEW=upload uses.
UPLOAD_SCOPES = frozenset({"files:write"})
_REINSTALL = ("add the missing scopes to the app (OAuth & Permissions → Scopes, or paste manifest.yml into App Manifest), "
              "then reinstall the app (Install App → Reinstall to Workspace)")
_TOKEN_FIX = ("copy the Bot User OAuth Token (xoxb-…) from OAuth & Permissions into SLACK_BOT_TOKEN; if the app "
              "was uninstalled or the token revoked, reinstall the app first")
_CHANNEL_FIX = ("check SLACK_CHANNEL_ID (the C… id at the bottom of the channel's details); for a private channel, "
                "/invite @greenlight in it")


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    mark: str
    name: str
    detail: str
    fix: str | None = None

    def line(self) -> str:
        """`✅ Name: detail`, with `— fix: …` after a failure."""
        fix = f" — fix: {self.fix}" if self.fix and self.mark in (FAIL, WARN) else ""
        return f"{self.mark} {self.name}: {self.detail}{fix}"


# -- manifest.yml -------------------------------------------------------------------------------------


def manifest_bot_scopes(text_: str) -> frozenset[str]:
    """The `oauth_config: scopes: bot:` list of an app manifest (block or flow style; comments skipped)."""
    keys: list[tuple[int, str]] = []  # the mapping keys enclosing the current line, with their indents
    scopes: set[str] = set()
    for raw in text_.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        content = line.strip()
        if content.startswith("-"):
            while keys and keys[-1][0] > indent:  # an item may sit at its key's indent
                keys.pop()
            if [k for _, k in keys][-3:] == ["oauth_config", "scopes", "bot"]:
                scopes.add(content[1:].strip().strip("'\""))
            continue
        while keys and keys[-1][0] >= indent:
            keys.pop()
        key, _, value = content.partition(":")
        keys.append((indent, key.strip()))
        value = value.strip()
        if [k for _, k in keys][-3:] == ["oauth_config", "scopes", "bot"] and value.startswith("["):
            scopes.update(v.strip().strip("'\"") for v in value.strip("[]").split(",") if v.strip())
    return frozenset(scopes)


def expected_scopes(manifest: Path | None) -> tuple[frozenset[str], str]:
    """The bot scopes to expect, and where they came from."""
    candidates = [manifest] if manifest else [Path("manifest.yml"), Path(__file__).resolve().parent.parent / "manifest.yml"]
    for candidate in candidates:
        if candidate.is_file():
            return manifest_bot_scopes(candidate.read_text(encoding="utf-8")), str(candidate)
    return MANIFEST_BOT_SCOPES, "this build's manifest.yml"


# -- Slack --------------------------------------------------------------------------------------------


def slack_checks(settings: Settings, client: WebClient, manifest: Path | None) -> Iterator[Check]:
    """Token, scopes and review channel."""
    try:
        response = client.auth_test()
    except SlackApiError as err:
        yield Check(FAIL, "Slack bot token", f"refused ({err.response.get('error') or 'unknown error'})", _TOKEN_FIX)
        yield from _skipped(("Slack scopes", "Review channel"), "needs a valid bot token")
        return
    except Exception as exc:  # noqa: BLE001 - any failure to ask is reported, not raised
        yield Check(FAIL, "Slack bot token", f"couldn't reach Slack at {settings.slack_api_url} ({type(exc).__name__})",
                    "check the network (and a proxy) from this host to Slack, and SLACK_API_URL")
        yield from _skipped(("Slack scopes", "Review channel"), "needs Slack to answer")
        return
    yield Check(OK, "Slack bot token", f"valid: @{response.get('user')} ({response.get('user_id')}) "
                f"in {response.get('team')} ({response.get('team_id')})")
    header = response.headers.get("x-oauth-scopes") or response.headers.get("X-OAuth-Scopes")
    granted = frozenset(s.strip() for s in str(header or "").split(",") if s.strip())
    expected, source = expected_scopes(manifest)
    if settings.clip_preview != "upload":
        expected -= UPLOAD_SCOPES  # only uploading a clip's video needs them
    yield _scopes_check(granted, header is not None, expected, source)
    yield _channel_check(client, settings.slack_channel_id, granted)


def _skipped(names: Iterable[str], why: str) -> Iterator[Check]:
    for name in names:
        yield Check(SKIP, name, f"skipped ({why})")


def _scopes_check(granted: frozenset[str], reported: bool, expected: frozenset[str], source: str) -> Check:
    if not reported:
        return Check(WARN, "Slack scopes", "Slack did not report the token's scopes (no x-oauth-scopes header), so "
                     f"they could not be compared with {source}", "if a proxy sits in between, let it pass that header")
    missing = sorted(expected - granted)
    if missing:
        return Check(FAIL, "Slack scopes", f"missing {', '.join(missing)} (of the {len(expected)} {source} asks for)",
                     f"{_REINSTALL}")
    return Check(OK, "Slack scopes", f"all {len(expected)} bot scopes {source} asks for are granted")


def _channel_check(client: WebClient, channel: str, granted: frozenset[str]) -> Check:
    """The review channel exists and the bot can post there (without posting anything)."""
    try:
        info = client.conversations_info(channel=channel)["channel"]
    except SlackApiError as err:
        error = str(err.response.get("error") or "unknown error")
        if error == "missing_scope":
            # conversations.info needs channels:read / groups:read, which the manifest doesn't ask for.
            return _channel_by_history(client, channel, granted)
        return _channel_error(channel, error)
    except Exception as exc:  # noqa: BLE001
        return Check(FAIL, "Review channel", f"couldn't ask Slack about {channel} ({type(exc).__name__})")
    name = f"#{info.get('name') or channel} ({channel})"
    if info.get("is_archived"):
        return Check(FAIL, "Review channel", f"{name} is archived", "unarchive it, or set SLACK_CHANNEL_ID to another")
    return _posting_verdict(name, bool(info.get("is_private")), bool(info.get("is_member")), granted)


def _channel_by_history(client: WebClient, channel: str, granted: frozenset[str]) -> Check:
    """Without channels:read: one message of history tells whether the channel is there and the bot in it."""
    try:
        client.conversations_history(channel=channel, limit=1)
    except SlackApiError as err:
        error = str(err.response.get("error") or "unknown error")
        if error == "not_in_channel":  # a private channel is invisible to a non-member: this one is public
            return _posting_verdict(channel, False, False, granted)
        if error == "missing_scope":
            return Check(WARN, "Review channel", f"can't check {channel}: the token may read neither the channel's "
                         "details nor its history", _REINSTALL)
        return _channel_error(channel, error)
    except Exception as exc:  # noqa: BLE001
        return Check(FAIL, "Review channel", f"couldn't ask Slack about {channel} ({type(exc).__name__})")
    return _posting_verdict(channel, None, True, granted)


def _channel_error(channel: str, error: str) -> Check:
    if error == "channel_not_found":
        return Check(FAIL, "Review channel", f"{channel} not found (or private without the bot in it)", _CHANNEL_FIX)
    return Check(FAIL, "Review channel", f"Slack answered {error} for {channel}", _CHANNEL_FIX)


def _posting_verdict(name: str, private: bool | None, member: bool, granted: frozenset[str]) -> Check:
    if member:
        return Check(OK, "Review channel", f"{name} exists and the bot is a member, so it can post there")
    if not private and "chat:write.public" in granted:
        return Check(OK, "Review channel", f"{name} is public; the bot posts without joining (chat:write.public) and "
                     "joins by itself when it needs the history")
    fix = f"/invite @greenlight in {name}"
    return Check(FAIL, "Review channel", f"the bot is not a member of {name}, so it can't post there", fix)


# -- providers ----------------------------------------------------------------------------------------


def provider_checks(providers: Providers) -> Iterator[Check]:
    """One cheap authenticated read per configured provider."""
    for provider in providers.values():
        yield _provider_check(provider)


def _provider_check(provider: Provider) -> Check:
    name, setting = f"{provider.title} API key", f"{provider.slug.upper()}_API_KEY"
    try:
        description = provider.check_access()
    except ApiUnauthorized as err:
        return Check(FAIL, name, f"refused by {provider.title} (HTTP {err.status})",
                     f"create an API key in {provider.title} and put the whole string in {setting}")
    except ApiRateLimited as err:
        return Check(WARN, name, f"{provider.title} is rate limiting this key; it could not be checked now",
                     f"run the doctor again in {max(1, round(err.retry_after))} s")
    except ApiUnavailable as err:
        return Check(FAIL, name, f"couldn't check it: {err}",
                     f"check {provider.slug.upper()}_API_URL and the network from this host")
    except ApiError as err:
        return Check(FAIL, name, f"{provider.title} said: {err}", f"check {setting}")
    if description is None:
        return Check(SKIP, name, f"{provider.title} offers no cheap read to check it with")
    return Check(OK, name, f"valid ({description})")


# -- the database -------------------------------------------------------------------------------------


def database_checks(settings: Settings) -> Iterator[Check]:
    """Reachable, migrated to head, writable (a write rolled back)."""
    url = make_url(settings.database_url)
    where = _where(url)
    sqlite_file = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
    if sqlite_file and not Path(str(url.database)).exists():
        yield Check(FAIL, "Database", f"{where} does not exist",
                    "run `greenlight migrate` (or start Greenlight with AUTO_MIGRATE=true) in the right working "
                    "directory, or fix DATABASE_URL")
        yield from _skipped(("Database migrations", "Database writable"), "no database")
        return
    engine = make_engine(settings.database_url)
    try:
        yield from _database_checks(engine, where)
    finally:
        engine.dispose()


def _database_checks(engine: Engine, where: str) -> Iterator[Check]:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        yield Check(FAIL, "Database", f"{where} unreachable ({_first_line(exc)})",
                    "check DATABASE_URL (host, port, name, user, password) and that the server accepts "
                    "connections from this host")
        yield from _skipped(("Database migrations", "Database writable"), "database unreachable")
        return
    yield Check(OK, "Database", f"{where} reachable")
    migrated = _migrations_check(engine)
    yield migrated
    if migrated.mark == FAIL and "not migrated" in migrated.detail:
        yield from _skipped(("Database writable",), "no tables yet")
        return
    yield _writable_check(engine)


def _migrations_check(engine: Engine) -> Check:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(cfg)
    head = script.get_current_head()
    try:
        with engine.connect() as conn:
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:  # noqa: BLE001 - no alembic_version table: never migrated
        current = None
    fix = "run `greenlight migrate` (or start Greenlight with AUTO_MIGRATE=true)"
    if current is None:
        return Check(FAIL, "Database migrations", "not migrated (no schema yet)", fix)
    if current == head:
        return Check(OK, "Database migrations", f"at head ({head})")
    known = {rev.revision for rev in script.walk_revisions()}
    if current not in known:
        return Check(FAIL, "Database migrations", f"at {current}, which this build doesn't know (a newer release "
                     f"migrated it; this build needs {head})", "run the release that migrated it, or a newer one")
    return Check(FAIL, "Database migrations", f"behind: at {current}, this build needs {head}", fix)


def _writable_check(engine: Engine) -> Check:
    try:
        with engine.connect() as conn:
            with conn.begin() as tx:
                _bounded(conn)
                conn.execute(text("INSERT INTO lease (name, holder, expires_at) VALUES (:name, 'doctor', NULL)"),
                             {"name": f"__doctor_{uuid.uuid4().hex[:12]}"})
                tx.rollback()
    except Exception as exc:  # noqa: BLE001
        return Check(FAIL, "Database writable", f"a test write failed ({_first_line(exc)})",
                     "give the database user INSERT/UPDATE/DELETE on Greenlight's tables, and check the disk "
                     "(or, for SQLite, the file's and its directory's permissions)")
    return Check(OK, "Database writable", "a test write succeeded (and was rolled back)")


def _bounded(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL statement_timeout = 5000"))


def _where(url: Any) -> str:
    """The database without its password: "SQLite file …" or "PostgreSQL gl at db:5432"."""
    if url.get_backend_name() == "sqlite":
        return f"SQLite file {url.database}" if url.database not in (None, "", ":memory:") else "SQLite in memory"
    return f"PostgreSQL database {url.database} at {url.host}:{url.port or 5432}"


def _first_line(exc: BaseException) -> str:
    message = str(getattr(exc, "orig", None) or exc).strip()
    first = message.splitlines()[0] if message else type(exc).__name__
    return re.sub(r"\s+", " ", first)[:200]


# -- webhooks from outside ----------------------------------------------------------------------------


def webhook_checks(settings: Settings, providers: Providers, post: Callable[..., httpx.Response]) -> Iterator[Check]:
    """With PUBLIC_URL: a test delivery to each provider's webhook route, from outside in."""
    if not settings.public_url:
        yield Check(SKIP, "Webhooks from outside", "skipped (PUBLIC_URL is not set)")
        return
    for provider in providers.values():
        route = provider.webhook_route
        if route is not None:
            yield _webhook_check(settings.public_url, provider, route.path, post)


def _webhook_check(public_url: str, provider: Provider, template: str, post: Callable[..., httpx.Response]) -> Check:
    name, shown = f"{provider.title} webhook", f"{public_url}{template}"
    delivery = provider.probe_delivery(time.time())
    if delivery is None:
        return Check(SKIP, name, f"skipped ({provider.title}'s webhook secret or token is not configured)")
    try:
        response = post(public_url + delivery.path, content=delivery.body, headers=delivery.headers,
                        timeout=TIMEOUT, follow_redirects=False)
    except httpx.HTTPError as exc:
        return Check(FAIL, name, f"{shown} unreachable ({type(exc).__name__})",
                     "check PUBLIC_URL, DNS and TLS, and that the proxy forwards POST /webhooks/* to Greenlight")
    status = response.status_code
    if status == 200:
        return Check(OK, name, f"{shown} accepted the test delivery")
    if status in (401, 403):
        return Check(FAIL, name, f"{shown} refused the test delivery's signature (HTTP {status})",
                     f"the Greenlight answering there has another {provider.title} webhook secret than this one; "
                     "give both the same settings")
    if status == 404:
        return Check(FAIL, name, f"{shown} answered 404",
                     "check PUBLIC_URL points at Greenlight and the proxy keeps the path; a token in the path must "
                     "match the running Greenlight's")
    if status == 503:
        return Check(FAIL, name, f"{shown} answered 503: Greenlight there can't write to its database right now",
                     "see its /readyz")
    where = f" to {response.headers.get('location')}" if 300 <= status < 400 else ""
    return Check(FAIL, name, f"{shown} answered HTTP {status}{where}",
                 "set PUBLIC_URL to the URL that reaches Greenlight directly (https, no redirect)")


# -- the command --------------------------------------------------------------------------------------


def run_doctor(settings: Settings, out: TextIO, *, manifest: Path | None = None,
               post: Callable[..., httpx.Response] = httpx.post) -> int:
    """Run every check, printing each line as it is known; 1 if any failed, else 0."""
    register_secrets(settings.secrets())
    # The doctor's own calls are not the deployment's traffic: they must not reach its metrics (in
    # multiprocess mode they would land in the shared directory).
    metrics.configure(enabled=False, multiproc_dir=None)
    secrets = settings.secrets()
    checks: list[Check] = []

    def emit(found: Iterable[Check]) -> None:
        for check in found:
            checks.append(check)
            out.write(redact(check.line(), secrets) + "\n")
            out.flush()

    out.write("Greenlight doctor: live checks of Slack, the providers, the database and the webhooks\n")
    slack = WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=int(TIMEOUT))
    emit(slack_checks(settings, slack, manifest))
    providers = build_providers(settings, lambda key, per_minute: RateBudget(per_minute, key=key))
    try:
        emit(provider_checks(providers))
        emit(database_checks(settings))
        emit(webhook_checks(settings, providers, post))
    finally:
        providers.close()
    failed = sum(1 for c in checks if c.mark == FAIL)
    warned = sum(1 for c in checks if c.mark == WARN)
    if failed:
        out.write(f"\n{failed} problem{'s' if failed != 1 else ''} found: fix the ❌ lines above, then run "
                  "`greenlight doctor` again.\n")
        return 1
    note = f" ({warned} warning{'s' if warned != 1 else ''})" if warned else ""
    out.write(f"\nAll checks passed{note}.\n")
    return 0


def add_doctor_parser(commands: Any) -> None:
    """Add the `doctor` subcommand to the `greenlight` argument parser's subparsers."""
    parser = commands.add_parser(
        "doctor", help="check live that Slack, the providers, the database and the webhooks work",
        description="Live checks, one line each (✅ / ❌ with the fix / ⚠️ / ⏭️ skipped). Exits 1 if any check "
                    "failed. Never prints a secret.")
    parser.add_argument("--manifest", type=Path, metavar="PATH",
                        help="the app manifest whose bot scopes the token must have (default: ./manifest.yml, "
                             "else the one this build ships with)")
