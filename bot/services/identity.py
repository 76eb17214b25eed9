"""Who Greenlight is in Slack: `auth.test`, asked once per process and shared.

Bolt would otherwise call `auth.test` on the first request of every process (before that request
could be acknowledged), and the overviews need the workspace URL to build links to cards. Here it
is fetched once in the background at start-up, cached, and never waited for on the path to an
ack: until it is known, requests are authorized with the configured token alone.

A revoked or invalid token is remembered (`token_error`), so readiness can report it and the job
queue can stop calling Slack with a token that will never work again.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.mrkdwn import safe_url

log = logging.getLogger(__name__)

# Slack's answers meaning the token will never work again (until an admin fixes it).
DEAD_TOKEN_ERRORS = frozenset({"invalid_auth", "token_revoked", "account_inactive", "not_authed", "token_expired"})
# After a failed auth.test (Slack down), ask again no sooner than this.
RETRY_SECONDS = 30.0


@dataclass(frozen=True)
class Identity:
    """The bot's identity and workspace, from auth.test."""

    team_id: str | None
    team: str | None
    # Set when the workspace belongs to an Enterprise organisation.
    enterprise_id: str | None
    url: str | None
    bot_user_id: str | None
    bot_id: str | None
    scopes: frozenset[str]


class SlackIdentity:
    """A cached auth.test, shared by Bolt's authorization, the overviews and readiness."""

    def __init__(self, slack: WebClient, token: str) -> None:
        self._slack = slack
        self._token = token
        self._lock = threading.Lock()
        # One auth.test at a time: a caller arriving while one is in flight waits for its answer.
        self._fetching = threading.Lock()
        self._identity: Identity | None = None
        self._failed_at = 0.0
        self.token_error: str | None = None

    def get(self, *, refresh: bool = False, wait: float = 5.0) -> Identity | None:
        """The identity (asking Slack if it isn't known yet, or on `refresh`); None if Slack can't say.

        While another thread's auth.test is in flight, waits for it (up to `wait` seconds) rather
        than asking again.
        """
        with self._lock:
            if self._identity is not None and not refresh:
                return self._identity
        if not self._fetching.acquire(timeout=wait):
            return self.known()
        try:
            with self._lock:
                if self._identity is not None and not refresh:
                    return self._identity
                if not refresh and time.monotonic() - self._failed_at < RETRY_SECONDS:
                    return None
            return self._fetch()
        finally:
            self._fetching.release()

    def known(self) -> Identity | None:
        """The identity if it is already known (never asks Slack)."""
        with self._lock:
            return self._identity

    def _fetch(self) -> Identity | None:
        try:
            response = self._slack.auth_test()
        except SlackApiError as err:
            error = str(err.response.get("error") or "unknown_error")
            self._failed(error)
            return None
        except Exception as err:  # noqa: BLE001 - Slack unreachable: try again later
            log.warning("auth.test failed: %s", type(err).__name__)
            self._failed(None)
            return None
        scopes = response.headers.get("x-oauth-scopes") or response.headers.get("X-OAuth-Scopes") or ""
        identity = Identity(
            team_id=_str(response.get("team_id")),
            team=_str(response.get("team")),
            enterprise_id=_str(response.get("enterprise_id")),
            url=safe_url(response.get("url")),
            bot_user_id=_str(response.get("user_id")),
            bot_id=_str(response.get("bot_id")),
            scopes=frozenset(s.strip() for s in str(scopes).split(",") if s.strip()),
        )
        with self._lock:
            self._identity = identity
            self.token_error = None
        return identity

    def _failed(self, error: str | None) -> None:
        with self._lock:
            self._failed_at = time.monotonic()
        if error is not None:
            self.report(error)

    def report(self, error: str) -> None:
        """Record a Slack error; a dead-token error is logged once, clearly, and kept for readiness."""
        if error not in DEAD_TOKEN_ERRORS:
            log.warning("auth.test failed: %s", error)
            return
        with self._lock:
            first = self.token_error != error
            self.token_error = error
        if first:
            log.error(
                "Slack refused Greenlight's bot token (%s). Nothing can be posted until SLACK_BOT_TOKEN is "
                "replaced (reinstall the app to get a new one).", error,
            )

    def clear_token_error(self) -> None:
        """A call with the token worked again."""
        with self._lock:
            self.token_error = None

    def home_teams(self, wait: float = 2.0) -> frozenset[str] | None:
        """Our own team id (and enterprise id): whoever comes from elsewhere is a Slack Connect
        partner. Asks Slack if needed (waiting at most `wait` seconds); None while it can't say."""
        known = self.known() or self.get(wait=wait)
        if known is None:
            return None
        ids = frozenset(i for i in (known.team_id, known.enterprise_id) if i)
        return ids or None

    def warm(self) -> None:
        """Fetch the identity in the background (start-up), so no request ever waits for it."""
        threading.Thread(target=self.get, name="greenlight-auth-test", daemon=True).start()

    def authorize(self, enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        """Bolt's authorize hook: the configured token, plus the bot's ids once they are known."""
        with self._lock:
            known = self._identity
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=team_id or (known.team_id if known else None),
            bot_token=self._token,
            bot_user_id=known.bot_user_id if known else None,
            bot_id=known.bot_id if known else None,
        )


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
