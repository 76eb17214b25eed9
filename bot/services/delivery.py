"""Delivering cards and messages to Slack, through the job queue, exactly once.

Slack has no idempotency key, and real Slack sometimes stores a `chat.postMessage` and loses the
answer (a 5xx, a reset connection, an answer slower than our timeout), or the process dies while
the call is in flight. So a card post is a small protocol:

1. Before calling Slack, the post records `card_attempted_at` (committed).
2. Slack answers: the card's `ts` is stored and the marker cleared. Slack refuses for sure (an
   `ok: false` that isn't a server error): the marker is cleared and the error handled.
3. The outcome is unknown: the job comes back after `SETTLE_SECONDS` (so a slow Slack has finished
   storing it) and, before posting again, looks for the card in `conversations.history`: every
   card carries message `metadata` naming its post. Found: adopted. Two found: the oldest is kept
   and the others deleted. Not found: posted again, and a `check_card` job looks once more a while
   later, in case Slack was slower still and stored the first attempt after all.

A card that `chat.update` can't find is checked in the history the same way before it is treated
as gone and posted anew, so a transient `message_not_found` never leaves two cards with working
buttons. Thread replies carry metadata with their job id and are looked for in the thread before a
retry posts them again. Ephemerals can't be looked up; they are sent at most once.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from bot import failpoints, metrics
from bot.config import Settings
from bot.db import add_audit, get_post, session_scope
from bot.domain import Card
from bot.jobs import Retry, enqueue
from bot.models import Job, Post, utcnow
from bot.providers.registry import Providers
from bot.services.cards import SLACK_MESSAGE, SYNC_CARD, card_for
from bot.services.identity import DEAD_TOKEN_ERRORS, SlackIdentity
from bot.slack import notices
from bot.slack.blocks import card_message
from bot.slack.mrkdwn import truncate

log = logging.getLogger(__name__)

CHECK_CARD = "check_card"
CARD_EVENT = "greenlight_post"
REPLY_EVENT = "greenlight_reply"
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
_CHAT_UPDATE = "chat.update"


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


class SlackUnavailable(Exception):
    """Slack could not be asked (connection refused, token refused): try again later."""


class Pacer:
    """Per-channel pacing of chat.postMessage after a 429, shared by this process's workers.

    Slack allows about one message per second per channel. Bouncing off the limit costs a 429 per
    card; pacing at the rate Slack told us keeps a burst flowing at the allowed rate. Pacing lapses
    a minute after the last 429.
    """

    def __init__(self) -> None:
        self._paused_until: dict[str, float] = {}
        self._pace: dict[str, float] = {}
        self._last_limited: dict[str, float] = {}
        self._next_slot: dict[str, float] = {}
        self._lock = threading.Lock()

    def pause(self, key: str, seconds: float) -> None:
        """Nothing goes out under `key` for `seconds`."""
        with self._lock:
            self._paused_until[key] = max(self._paused_until.get(key, 0.0), time.monotonic() + seconds)

    def paused_for(self, key: str) -> float:
        """Seconds left of a pause."""
        with self._lock:
            return max(0.0, self._paused_until.get(key, 0.0) - time.monotonic())

    def reserve(self, channel: str) -> float:
        """Take a posting slot in `channel` (returns 0), or say how long to wait for one."""
        with self._lock:
            now = time.monotonic()
            pace = self._pace.get(channel, 0.0)
            if pace <= 0 or now - self._last_limited.get(channel, 0.0) > 60.0:
                self._pace.pop(channel, None)
                return max(0.0, self._paused_until.get(channel, 0.0) - now)
            slot = max(now, self._next_slot.get(channel, 0.0), self._paused_until.get(channel, 0.0))
            if slot > now:
                return slot - now
            self._next_slot[channel] = now + pace
            return 0.0

    def limited(self, channel: str, wait: float) -> None:
        """Slack said 429 for `channel`: wait, then pace at that interval."""
        with self._lock:
            now = time.monotonic()
            self._pace[channel] = max(0.5, min(wait, 5.0))
            self._last_limited[channel] = now
            self._paused_until[channel] = max(self._paused_until.get(channel, 0.0), now + wait)
            self._next_slot[channel] = max(self._next_slot.get(channel, 0.0), now + wait)


class SlackDelivery:
    """Job handlers that talk to the Slack Web API."""

    def __init__(
        self,
        engine: Engine,
        slack: WebClient,
        settings: Settings,
        identity: SlackIdentity,
        providers: Providers,
        *,
        settle_seconds: float = SETTLE_SECONDS,
    ) -> None:
        self.engine = engine
        self.slack = slack
        self.settings = settings
        self.identity = identity
        self.providers = providers
        self.settle_seconds = settle_seconds
        self.pacer = Pacer()
        self.ratelimited = 0
        self._joined: set[str] = set()

    def handlers(self) -> dict[str, Any]:
        """Job kind -> handler."""
        return {SYNC_CARD: self.sync_card, SLACK_MESSAGE: self.send_message, CHECK_CARD: self.check_card}

    # -- cards -----------------------------------------------------------------------------------

    def sync_card(self, job: Job) -> None:
        """Post the card if it has none yet (exactly once, see the module docstring), else update it.

        If Slack refuses the card as too big, the compact form is tried; if Slack refuses even that,
        the channel is told which draft couldn't be shown and the post records why.
        """
        assert job.post_id is not None
        with session_scope(self.engine) as session:
            post = get_post(session, job.post_id)
            if post is None:
                log.warning("card sync for unknown post %s", job.post_id)
                return
            if post.card_error is not None and post.message_ts is None:
                return  # Slack refused this card outright; the channel was told
            card = card_for(session, post, self.settings, self.providers.get(post.provider))
            channel = post.channel_id or self.settings.slack_channel_id
            ts, attempted = post.message_ts, post.card_attempted_at
            if ts is None and self._other_sync_running(session, job):
                # Two posts of one card would be worse than a short wait.
                raise Retry("another worker is posting this card", 0.5)
        with self._slack_errors():
            if ts is None and attempted is not None:
                ts = self._recover_card(job.post_id, channel, attempted)
            try:
                self._deliver_card(job.post_id, card, channel, ts)
            except SlackApiError as err:
                error = str(err.response.get("error") or "")
                if error not in REFUSED_CARD_ERRORS:
                    raise
                if not card.compact:
                    log.warning("Slack refused the card of post %s (%s); trying the compact form", job.post_id, error)
                    self._set(job.post_id, card_compact=True)
                    self._deliver_card(job.post_id, replace(card, compact=True), channel, ts)
                    return
                log.error("Slack refused even the compact card of post %s (%s)", job.post_id, error)
                self._card_refused(job.post_id, card, channel, error)

    def _recover_card(self, post_id: int, channel: str, attempted: datetime) -> str | None:
        """An earlier post of this card has an unknown outcome: find it (and adopt it) or say it isn't there."""
        wait = self.settle_seconds - (utcnow() - attempted).total_seconds()
        if wait > 0:
            raise Retry("card post outcome unknown; waiting for Slack to settle", wait)
        found = self._find_in_history(channel, CARD_EVENT, "post_id", post_id, since=attempted)
        if not found:
            log.info("card of post %s was not posted by the earlier attempt; posting it", post_id)
            with session_scope(self.engine) as session:
                session.execute(
                    update(Post).where(col(Post.id) == post_id).values(card_attempted_at=None)
                    .execution_options(synchronize_session=False)
                )
                # Slack may be slower still: look again later, and keep only one card.
                enqueue(session, CHECK_CARD, post_id=post_id, payload={"since": attempted.isoformat()},
                        dedupe_key=f"check-card:{post_id}", delay=4 * self.settle_seconds, priority=8)
            return None
        keep, extra = found[0], found[1:]
        log.warning("adopting the card of post %s that Slack stored without telling us (ts %s)", post_id, keep)
        with session_scope(self.engine) as session:
            session.execute(
                update(Post)
                .where(col(Post.id) == post_id, col(Post.message_ts).is_(None))
                .values(channel_id=channel, message_ts=keep, card_attempted_at=None, card_error=None)
                .execution_options(synchronize_session=False)
            )
            add_audit(session, post_id=post_id, actor=None, action="card", outcome="adopted", detail=keep)
        for duplicate in extra:
            self._delete_duplicate(post_id, channel, duplicate)
        return keep

    def check_card(self, job: Job) -> None:
        """Job: after a repost, make sure the channel holds exactly one card of the post."""
        assert job.post_id is not None
        with session_scope(self.engine) as session:
            post = get_post(session, job.post_id)
            if post is None or post.message_ts is None or post.channel_id is None:
                return
            channel, keep = post.channel_id, post.message_ts
        since = datetime.fromisoformat(str(job.payload["since"]))
        with self._slack_errors():
            for ts in self._find_in_history(channel, CARD_EVENT, "post_id", job.post_id, since=since):
                if ts != keep:
                    self._delete_duplicate(job.post_id, channel, ts)

    def _delete_duplicate(self, post_id: int, channel: str, ts: str) -> None:
        try:
            self.slack.chat_delete(channel=channel, ts=ts)
            log.warning("deleted a duplicate card of post %s (ts %s)", post_id, ts)
        except SlackApiError as err:
            log.error("could not delete a duplicate card of post %s (ts %s): %s", post_id, ts, err.response.get("error"))

    def _deliver_card(self, post_id: int, card: Card, channel: str, ts: str | None) -> None:
        text, blocks = card_message(card)
        block_dicts = [b.to_dict() for b in blocks]
        try:
            if ts is None:
                self._post_card(post_id, channel, text, block_dicts)
            else:
                # A sync queued while another was in flight is not collapsed into it; it must still
                # wait out the Retry-After that Slack gave the other one.
                wait = self.pacer.paused_for(_CHAT_UPDATE)
                if wait > 0:
                    raise Retry("chat.update paused after rate limit", wait)
                self.slack.chat_update(channel=channel, ts=ts, text=text, blocks=block_dicts)
        except SlackApiError as err:
            limited = retry_after(err)
            if limited is not None:
                self.ratelimited += 1
                if ts is None:
                    self.pacer.limited(channel, limited)
                else:
                    self.pacer.pause(_CHAT_UPDATE, limited)
                raise Retry("slack rate limited", limited) from err
            error = err.response.get("error")
            if ts is not None and error in MAYBE_GONE_ERRORS:
                self._card_maybe_gone(post_id, channel, ts, str(error))
            raise

    def _post_card(self, post_id: int, channel: str, text: str, blocks: list[dict[str, Any]]) -> None:
        wait = self.pacer.reserve(channel)
        if wait > 0:
            raise Retry("channel paced after rate limit", wait)
        # The marker goes in first, committed: whatever happens next, a later attempt knows to look.
        self._set(post_id, card_attempted_at=utcnow())
        failpoints.hit("card_post_started")
        try:
            response = self.slack.chat_postMessage(
                channel=channel,
                text=text,
                blocks=blocks,
                unfurl_links=False,
                unfurl_media=False,
                metadata={"event_type": CARD_EVENT, "event_payload": {"post_id": post_id}},
            )
        except Exception as exc:
            if outcome_unknown(exc):
                log.warning("posting the card of post %s: no answer from Slack (%s); will check before retrying",
                            post_id, _describe(exc))
                raise Retry("card post outcome unknown", self.settle_seconds) from exc
            self._set(post_id, card_attempted_at=None)  # Slack said no for sure: nothing was posted
            raise
        failpoints.hit("card_post_answered")
        metrics.card_posted()
        with session_scope(self.engine) as session:
            session.execute(
                update(Post)
                .where(col(Post.id) == post_id, col(Post.message_ts).is_(None))
                .values(channel_id=response["channel"], message_ts=response["ts"], card_error=None,
                        card_attempted_at=None)
                .execution_options(synchronize_session=False)
            )

    def _card_maybe_gone(self, post_id: int, channel: str, ts: str, error: str) -> None:
        """chat.update couldn't find the card: repost only if the history confirms it is gone."""
        try:
            exists = self._message_exists(channel, ts)
        except SlackApiError as err:
            log.warning("could not check whether the card of post %s still exists (%s); trying again later",
                        post_id, err.response.get("error"))
            raise Retry("card may be gone; check failed", 30.0) from err
        if exists:
            log.warning("chat.update said %s for post %s, but the card is there; trying again later", error, post_id)
            raise Retry(f"transient {error}", min(5.0, self.settle_seconds))
        log.warning("card of post %s is gone (%s); posting a new one", post_id, error)
        self._set(post_id, message_ts=None, channel_id=None)
        raise Retry("card missing; reposting", 0.0)

    def _set(self, post_id: int, **values: Any) -> None:
        with session_scope(self.engine) as session:
            session.execute(
                update(Post).where(col(Post.id) == post_id).values(**values).execution_options(synchronize_session=False)
            )

    def _card_refused(self, post_id: int, card: Card, channel: str, error: str) -> None:
        """Record that Slack won't show this card and tell the channel which draft it is."""
        with session_scope(self.engine) as session:
            post = get_post(session, post_id)
            if post is None:
                return
            post.card_error = error
            post.card_attempted_at = None
            add_audit(session, post_id=post_id, actor=None, action="card", outcome="failed", detail=f"Slack: {error}")
        try:
            self.slack.chat_postMessage(
                channel=channel, text=notices.card_not_shown(card.platform, card.clip_id, error), unfurl_links=False
            )
        except SlackApiError as err:
            wait = retry_after(err)
            if wait is not None:
                raise Retry("slack rate limited", wait) from err
            log.error("could not tell the channel about post %s's refused card: %s", post_id, err.response.get("error"))

    def _other_sync_running(self, session: Session, job: Job) -> bool:
        """Whether another worker is syncing this card right now (it may be posting it)."""
        other = session.exec(
            select(Job.id).where(
                Job.dedupe_key == f"card:{job.post_id}",
                Job.status == "running",
                Job.id != job.id,
                col(Job.locked_until) > utcnow(),
            )
        ).first()
        return other is not None

    # -- looking things up in the channel ---------------------------------------------------------

    def _history(self, **args: Any) -> Any:
        """conversations.history, joining a public channel first if the bot isn't in it yet."""
        channel = str(args["channel"])
        try:
            return self.slack.conversations_history(**args)
        except SlackApiError as err:
            if err.response.get("error") != "not_in_channel" or channel in self._joined:
                raise
        # chat:write.public lets the bot post without joining, but reading needs membership.
        self.slack.conversations_join(channel=channel)
        self._joined.add(channel)
        return self.slack.conversations_history(**args)

    def _find_in_history(self, channel: str, event_type: str, key: str, value: int, *, since: datetime) -> list[str]:
        """Timestamps (oldest first) of our messages in `channel` since `since` whose metadata says `key == value`."""
        oldest = (since - timedelta(seconds=LOOKBACK_SLACK_SECONDS)).timestamp()
        found: list[str] = []
        cursor: str | None = None
        for _ in range(MAX_HISTORY_PAGES):
            args: dict[str, Any] = {"channel": channel, "oldest": f"{oldest:.6f}", "include_all_metadata": True,
                                    "limit": 200}
            if cursor:
                args["cursor"] = cursor
            response = self._history(**args)
            for message in response.get("messages") or []:
                metadata = message.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if metadata.get("event_type") == event_type and payload.get(key) == value and message.get("bot_id"):
                    found.append(str(message["ts"]))
            cursor = ((response.get("response_metadata") or {}).get("next_cursor")) or None
            if not response.get("has_more") or not cursor:
                break
        return sorted(found, key=float)

    def _message_exists(self, channel: str, ts: str) -> bool:
        response = self._history(channel=channel, latest=ts, oldest=ts, inclusive=True, limit=1)
        return any(str(m.get("ts")) == ts for m in response.get("messages") or [])

    def _find_reply(self, channel: str, thread_ts: str, job_id: int, since: datetime) -> bool:
        oldest = (since - timedelta(seconds=LOOKBACK_SLACK_SECONDS)).timestamp()
        try:
            response = self.slack.conversations_replies(channel=channel, ts=thread_ts, oldest=f"{oldest:.6f}",
                                                        include_all_metadata=True, limit=200)
        except SlackApiError as err:
            if err.response.get("error") != "not_in_channel":
                raise
            self.slack.conversations_join(channel=channel)
            response = self.slack.conversations_replies(channel=channel, ts=thread_ts, oldest=f"{oldest:.6f}",
                                                        include_all_metadata=True, limit=200)
        for message in response.get("messages") or []:
            metadata = message.get("metadata") or {}
            if metadata.get("event_type") == REPLY_EVENT and (metadata.get("event_payload") or {}).get("job_id") == job_id:
                return True
        return False

    # -- thread replies and ephemerals -------------------------------------------------------------

    def send_message(self, job: Job) -> None:
        """Send a thread reply (once the card exists, exactly once) or an ephemeral message (at most once)."""
        payload = job.payload
        # Built by bot.slack.notices (escaped); cut without breaking a link or an entity.
        text = truncate(str(payload.get("text", "")), 3900)
        with self._slack_errors():
            if payload.get("mode") == "ephemeral":
                self._send_ephemeral(job, text)
                return
            assert job.post_id is not None and job.id is not None
            with session_scope(self.engine) as session:
                post = get_post(session, job.post_id)
                if post is None:
                    return
                channel, ts = post.channel_id, post.message_ts
            if ts is None or channel is None:
                raise Retry("card not posted yet", 1.0)
            if payload.get("attempted_at"):
                attempted = datetime.fromisoformat(str(payload["attempted_at"]))
                wait = self.settle_seconds - (utcnow() - attempted).total_seconds()
                if wait > 0:
                    raise Retry("reply outcome unknown; waiting for Slack to settle", wait)
                if self._find_reply(channel, ts, job.id, attempted):
                    log.info("thread reply of job %s was posted by an earlier attempt", job.id)
                    return
            wait = self.pacer.reserve(channel)
            if wait > 0:
                raise Retry("channel paced after rate limit", wait)
            self._mark_reply_attempt(job)
            try:
                self.slack.chat_postMessage(
                    channel=channel, thread_ts=ts, text=text, unfurl_links=False,
                    metadata={"event_type": REPLY_EVENT, "event_payload": {"job_id": job.id}},
                )
            except SlackApiError as err:
                limited = retry_after(err)
                if limited is not None:
                    self.pacer.limited(channel, limited)
                    self._unmark(job)  # a 429 means Slack did nothing: no need to look next time
                    raise Retry("slack rate limited", limited) from err
                if err.response.get("error") in ("channel_not_found", "not_in_channel", "thread_not_found"):
                    log.warning("could not post a thread reply for post %s: %s", job.post_id, err.response.get("error"))
                    return
                if outcome_unknown(err):
                    raise Retry("reply outcome unknown", self.settle_seconds) from err
                raise
            except Exception as exc:
                if outcome_unknown(exc):
                    raise Retry("reply outcome unknown", self.settle_seconds) from exc
                raise

    def _mark_reply_attempt(self, job: Job) -> None:
        """Record on the job (committed) that a reply is about to be sent, so a retry looks first."""
        job.payload = {**job.payload, "attempted_at": utcnow().isoformat()}
        with session_scope(self.engine) as session:
            session.execute(
                update(Job).where(col(Job.id) == job.id).values(payload=job.payload)
                .execution_options(synchronize_session=False)
            )

    def _send_ephemeral(self, job: Job, text: str) -> None:
        payload = job.payload
        if payload.get("attempted_at"):
            # An ephemeral can't be looked up afterwards; a second copy would be noise.
            log.warning("ephemeral note of job %s may not have arrived (Slack gave no answer)", job.id)
            return
        self._mark_reply_attempt(job)
        try:
            self.slack.chat_postEphemeral(channel=payload["channel"], user=payload["user"], text=text)
        except SlackApiError as err:
            wait = retry_after(err)
            if wait is not None:
                self._unmark(job)
                raise Retry("slack rate limited", wait) from err
            if err.response.get("error") in ("user_not_in_channel", "channel_not_found", "not_in_channel"):
                log.warning("could not show a note to %s: %s", payload.get("user"), err.response.get("error"))
                return
            raise

    def _unmark(self, job: Job) -> None:
        job.payload = {k: v for k, v in job.payload.items() if k != "attempted_at"}
        with session_scope(self.engine) as session:
            session.execute(
                update(Job).where(col(Job.id) == job.id).values(payload=job.payload)
                .execution_options(synchronize_session=False)
            )

    # -- errors every Slack call can meet -----------------------------------------------------------

    def _slack_errors(self) -> _SlackErrors:
        return _SlackErrors(self.identity)


class _SlackErrors:
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
            raise Retry(f"Slack unreachable ({_describe(exc)})", 5.0) from exc
        return False


def _describe(exc: BaseException) -> str:
    return type(exc).__name__ if not isinstance(exc, SlackApiError) else str(exc.response.get("error"))
