"""Plumbing every Slack delivery shares: error classes, pacing after 429s, finding our own messages.

Slack has no idempotency key; our messages carry `metadata` naming what they show (a post's card,
a clip's message, a thread reply's job), so after an answer was lost the channel or thread can be
searched before anything is posted again.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.jobs import Retry
from bot.services.identity import DEAD_TOKEN_ERRORS, SlackIdentity

log = logging.getLogger(__name__)

# Slack's answers when a message is too big or malformed: retrying the same card can't help.
REFUSED_CARD_ERRORS = frozenset({"invalid_blocks", "msg_too_long", "msg_blocks_too_long", "invalid_blocks_format"})
# `ok: false` answers that mean Slack had trouble, not that it said no: it may have done the work.
SERVER_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout"})
# Errors of chat.update that may only mean "not right now" (a replica lagging, a deleted message).
MAYBE_GONE_ERRORS = frozenset({"message_not_found", "cant_update_message", "channel_not_found"})
# How long after an unknown outcome to look for the message: past the client timeout, so a slow
# Slack has finished storing it before we decide it isn't there.
SETTLE_SECONDS = 15.0
# How far before the attempt to look back in the channel (clocks differ a little).
LOOKBACK_SLACK_SECONDS = 120.0
MAX_HISTORY_PAGES = 10
# While the bot token is refused, jobs wait this long between attempts instead of hammering Slack.
DEAD_TOKEN_PAUSE = 300.0
# Pause key for chat.update: Slack rate-limits it per method and workspace, not per channel.
CHAT_UPDATE = "chat.update"


def retry_after(err: SlackApiError) -> float | None:
    """Slack's Retry-After for a 429 / `ratelimited`, else None."""
    response = err.response
    if response.status_code == 429 or response.get("error") == "ratelimited":
        raw = response.headers.get("Retry-After") or response.headers.get("retry-after") or "1"
        try:
            return max(0.5, float(raw))
        except ValueError:
            return 1.0
    return None


def outcome_unknown(exc: BaseException) -> bool:
    """Whether Slack may have done what was asked even though we got no (good) answer."""
    if isinstance(exc, SlackApiError):
        return exc.response.status_code >= 500 or exc.response.get("error") in SERVER_ERRORS
    if isinstance(exc, URLError) and isinstance(exc.reason, ConnectionRefusedError):
        return False  # nothing was sent
    if isinstance(exc, ConnectionRefusedError):
        return False
    return isinstance(exc, OSError | URLError | http.client.HTTPException | TimeoutError)


# Pacing ends once a channel has gone this long without a 429 or a paced post: while a burst keeps
# the channel busy, it stays paced (lapsing mid-burst only buys another 429).
PACE_LAPSE = 60.0


class Pacer:
    """Per-channel pacing of chat.postMessage after a 429, shared by this process's workers.

    Slack allows about one message per second per channel. Bouncing off the limit costs a 429 per
    card; pacing at the rate Slack told us keeps a burst flowing at the allowed rate. Pacing lapses
    when the channel has had neither a 429 nor a paced post for PACE_LAPSE seconds.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._paused_until: dict[str, float] = {}
        self._pace: dict[str, float] = {}
        self._last_limited: dict[str, float] = {}
        self._last_paced: dict[str, float] = {}
        self._next_slot: dict[str, float] = {}
        self._lock = threading.Lock()

    def pause(self, key: str, seconds: float) -> None:
        """Nothing goes out under `key` for `seconds`."""
        with self._lock:
            self._paused_until[key] = max(self._paused_until.get(key, 0.0), self._clock() + seconds)

    def paused_for(self, key: str) -> float:
        """Seconds left of a pause."""
        with self._lock:
            return max(0.0, self._paused_until.get(key, 0.0) - self._clock())

    def reserve(self, channel: str) -> float:
        """Take a posting slot in `channel` (returns 0), or say how long to wait for one."""
        with self._lock:
            now = self._clock()
            pace = self._pace.get(channel, 0.0)
            busy_until = max(self._last_limited.get(channel, 0.0), self._last_paced.get(channel, 0.0)) + PACE_LAPSE
            if pace <= 0 or now > busy_until:
                self._pace.pop(channel, None)
                return max(0.0, self._paused_until.get(channel, 0.0) - now)
            slot = max(now, self._next_slot.get(channel, 0.0), self._paused_until.get(channel, 0.0))
            if slot > now:
                return slot - now
            self._next_slot[channel] = now + pace
            self._last_paced[channel] = now
            return 0.0

    def limited(self, channel: str, wait: float) -> None:
        """Slack said 429 for `channel`: wait, then pace at that interval."""
        with self._lock:
            now = self._clock()
            self._pace[channel] = max(0.5, min(wait, 5.0))
            self._last_limited[channel] = now
            self._paused_until[channel] = max(self._paused_until.get(channel, 0.0), now + wait)
            self._next_slot[channel] = max(self._next_slot.get(channel, 0.0), now + wait)


class ChannelReader:
    """Reads the review channel (joining a public one first when needed) to find our own messages."""

    def __init__(self, slack: WebClient) -> None:
        self.slack = slack
        self._joined: set[str] = set()

    def _call(self, method: str, **args: Any) -> Any:
        channel = str(args["channel"])
        call = getattr(self.slack, method)
        try:
            return call(**args)
        except SlackApiError as err:
            if err.response.get("error") != "not_in_channel" or channel in self._joined:
                raise
        # chat:write.public lets the bot post without joining, but reading needs membership.
        self.slack.conversations_join(channel=channel)
        self._joined.add(channel)
        return call(**args)

    def find(self, channel: str, event_type: str, key: str, value: int, *, since: datetime,
             thread_ts: str | None = None) -> list[str]:
        """Timestamps (oldest first) of our messages since `since` whose metadata says `key == value`:
        top-level messages of the channel, or the replies of `thread_ts`."""
        oldest = (since - timedelta(seconds=LOOKBACK_SLACK_SECONDS)).timestamp()
        found: list[str] = []
        cursor: str | None = None
        for _ in range(MAX_HISTORY_PAGES):
            args: dict[str, Any] = {"channel": channel, "oldest": f"{oldest:.6f}", "include_all_metadata": True,
                                    "limit": 200}
            if cursor:
                args["cursor"] = cursor
            if thread_ts is None:
                response = self._call("conversations_history", **args)
            else:
                response = self._call("conversations_replies", ts=thread_ts, **args)
            for message in response.get("messages") or []:
                metadata = message.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if metadata.get("event_type") == event_type and payload.get(key) == value and message.get("bot_id"):
                    found.append(str(message["ts"]))
            cursor = ((response.get("response_metadata") or {}).get("next_cursor")) or None
            if not response.get("has_more") or not cursor:
                break
        return sorted(found, key=float)

    def thread_has_file(self, channel: str, thread_ts: str, file_id: str) -> bool:
        """Whether a message of the thread `thread_ts` carries the file `file_id`."""
        cursor: str | None = None
        for _ in range(MAX_HISTORY_PAGES):
            args: dict[str, Any] = {"channel": channel, "ts": thread_ts, "limit": 200}
            if cursor:
                args["cursor"] = cursor
            response = self._call("conversations_replies", **args)
            for message in response.get("messages") or []:
                if any(f.get("id") == file_id for f in message.get("files") or []):
                    return True
            cursor = ((response.get("response_metadata") or {}).get("next_cursor")) or None
            if not response.get("has_more") or not cursor:
                return False
        return False

    def exists(self, channel: str, ts: str, *, thread_ts: str | None = None) -> bool:
        """Whether message `ts` is still there (a top-level message, or a reply of `thread_ts`)."""
        if thread_ts is None:
            response = self._call("conversations_history", channel=channel, latest=ts, oldest=ts, inclusive=True,
                                  limit=1)
        else:
            response = self._call("conversations_replies", channel=channel, ts=thread_ts, latest=ts, oldest=ts,
                                  inclusive=True, limit=2)
        return any(str(m.get("ts")) == ts for m in response.get("messages") or [])


def slack_errors(identity: SlackIdentity) -> SlackErrors:
    """The error handling every Slack job runs under (see SlackErrors)."""
    return SlackErrors(identity)


class SlackErrors:
    """Turns a refused token into one clear report and a long pause, and a refused connection into a retry."""

    def __init__(self, identity: SlackIdentity) -> None:
        self.identity = identity

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> Literal[False]:
        if isinstance(exc, SlackApiError):
            error = str(exc.response.get("error") or "")
            if error in DEAD_TOKEN_ERRORS:
                self.identity.report(error)
                raise Retry(f"Slack refused the bot token ({error})", DEAD_TOKEN_PAUSE) from exc
            return False
        if exc is None:
            if self.identity.token_error is not None:
                self.identity.clear_token_error()
            return False
        if isinstance(exc, Retry):
            return False
        if not outcome_unknown(exc) and isinstance(exc, OSError | URLError):
            raise Retry(f"Slack unreachable ({describe(exc)})", 5.0) from exc
        return False


def describe(exc: BaseException) -> str:
    return type(exc).__name__ if not isinstance(exc, SlackApiError) else str(exc.response.get("error"))
