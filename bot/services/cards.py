"""Delivering cards and messages to Slack, through the job queue.

Nothing here calls Slack inside a request handler: state changes enqueue a `sync_card` job (one
pending per post, so bursts of changes collapse into one `chat.update` that renders the latest
state) and `slack_message` jobs for thread replies and ephemeral notes. A 429 puts the job back
with Slack's `Retry-After`; nothing is dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from bot.config import Settings
from bot.db import add_audit, get_post, session_scope
from bot.domain import Activity, Card, PendingAction, Platform, PostContent, PostStatus, Provider
from bot.jobs import Retry, enqueue
from bot.models import Approval, Job, Post, utcnow
from bot.slack import notices
from bot.slack.blocks import card_message
from bot.slack.mrkdwn import Mrkdwn, truncate

log = logging.getLogger(__name__)

SYNC_CARD = "sync_card"
SLACK_MESSAGE = "slack_message"
# Slack's answers when a message is too big or malformed: retrying the same card can't help.
REFUSED_CARD_ERRORS = frozenset({"invalid_blocks", "msg_too_long", "msg_blocks_too_long", "invalid_blocks_format"})
# Which statuses each provider can still cancel from (provider name -> statuses).
Cancellable = Callable[[str], frozenset[PostStatus]]
# Pause key for chat.update: Slack rate-limits it per method and workspace, not per channel.
_CHAT_UPDATE = "chat.update"


def request_card_sync(session: Session, post_id: int) -> None:
    """Ask for the post's card to be (re)rendered; collapses with any pending request."""
    enqueue(session, SYNC_CARD, post_id=post_id, dedupe_key=f"card:{post_id}", priority=2)


def request_thread_reply(session: Session, post_id: int, text: Mrkdwn) -> None:
    """Queue a short reply in the card's thread (posted once the card exists); `text` is built by
    `bot.slack.notices`, so everything from outside in it is already escaped."""
    enqueue(session, SLACK_MESSAGE, post_id=post_id, payload={"mode": "thread", "text": text}, priority=6)


def request_ephemeral(session: Session, *, channel: str, user: str, text: Mrkdwn, post_id: int | None = None) -> None:
    """Queue a message only `user` sees, in `channel`."""
    enqueue(
        session,
        SLACK_MESSAGE,
        post_id=post_id,
        payload={"mode": "ephemeral", "channel": channel, "user": user, "text": text},
        priority=3,
    )


def approvals_for(session: Session, post: Post) -> tuple[str, ...]:
    """Users who approved the post's current content version, oldest first."""
    rows = session.exec(
        select(Approval.user_id)
        .where(Approval.post_id == post.id, Approval.content_version == post.content_version)
        .order_by(col(Approval.created_at))
    ).all()
    return tuple(rows)


def card_for(session: Session, post: Post, settings: Settings, cancellable: frozenset[PostStatus] = frozenset()) -> Card:
    """The Card (view model) for a post, from the database."""
    assert post.id is not None
    extra = post.extra or {}
    status = PostStatus.parse(post.status)
    return Card(
        post_id=post.id,
        provider=Provider(post.provider),
        external_id=post.external_id,
        clip_id=post.clip_id,
        platform=Platform(post.platform),
        status=status,
        content=PostContent.from_dict(post.content),
        pending_action=PendingAction(post.pending_action) if post.pending_action else None,
        pending_by=post.pending_by,
        scheduled_at=post.scheduled_at,
        published_at=post.published_at,
        published_url=post.published_url,
        error=post.error,
        approved_by=post.approved_by,
        approved_at=post.approved_at,
        cancelled_by=post.cancelled_by,
        activity=Activity.from_dict(post.activity),
        approvals=approvals_for(session, post),
        required_approvals=settings.required_approvals,
        targets=tuple(extra.get("target_labels", ())),
        notes=tuple(extra.get("notes", ())),
        raw_status=post.remote_status,
        compact=post.card_compact,
        can_cancel=status in cancellable,
    )


def _retry_after(err: SlackApiError) -> float | None:
    response = err.response
    if response.status_code == 429 or response.get("error") == "ratelimited":
        raw = response.headers.get("Retry-After") or response.headers.get("retry-after") or "1"
        try:
            return max(0.5, float(raw))
        except ValueError:
            return 1.0
    return None


class SlackDelivery:
    """Job handlers that talk to the Slack Web API."""

    def __init__(
        self, engine: Engine, slack: WebClient, settings: Settings, cancellable: Cancellable = lambda _: frozenset()
    ) -> None:
        self.engine = engine
        self.slack = slack
        self.settings = settings
        self.cancellable = cancellable
        # Per-channel pause after a 429 on chat.postMessage, so a burst of new cards is paced at
        # what Slack allows instead of hammering it (shared by this process's worker threads).
        self._channel_paused_until: dict[str, float] = {}
        self._pace: dict[str, float] = {}
        self._last_limited: dict[str, float] = {}
        self._next_slot: dict[str, float] = {}
        self._lock = threading.Lock()
        self.ratelimited = 0

    def handlers(self) -> dict[str, Any]:
        """Job kind -> handler."""
        return {SYNC_CARD: self.sync_card, SLACK_MESSAGE: self.send_message}

    def _pause(self, channel: str, seconds: float) -> None:
        with self._lock:
            self._channel_paused_until[channel] = max(
                self._channel_paused_until.get(channel, 0.0), time.monotonic() + seconds
            )

    def _paused_for(self, channel: str) -> float:
        with self._lock:
            return max(0.0, self._channel_paused_until.get(channel, 0.0) - time.monotonic())

    def _reserve_post_slot(self, channel: str) -> float:
        """After a 429, space new cards in `channel` one Retry-After apart; returns the wait.

        Slack allows about one message per second per channel. Bouncing off the limit costs a 429
        per card; pacing at the rate Slack told us keeps a burst flowing at the allowed rate.
        Pacing lapses a minute after the last 429.
        """
        with self._lock:
            now = time.monotonic()
            pace = self._pace.get(channel, 0.0)
            if pace <= 0 or now - self._last_limited.get(channel, 0.0) > 60.0:
                self._pace.pop(channel, None)
                return max(0.0, self._channel_paused_until.get(channel, 0.0) - now)
            slot = max(now, self._next_slot.get(channel, 0.0), self._channel_paused_until.get(channel, 0.0))
            if slot > now:
                return slot - now
            self._next_slot[channel] = now + pace
            return 0.0

    def _limited(self, channel: str, retry_after: float) -> None:
        with self._lock:
            now = time.monotonic()
            self._pace[channel] = max(0.5, min(retry_after, 5.0))
            self._last_limited[channel] = now
            self._channel_paused_until[channel] = max(self._channel_paused_until.get(channel, 0.0), now + retry_after)
            self._next_slot[channel] = max(self._next_slot.get(channel, 0.0), now + retry_after)

    def sync_card(self, job: Job) -> None:
        """Post the card if it has no message yet, else update it in place.

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
            card = card_for(session, post, self.settings, self.cancellable(post.provider))
            channel = post.channel_id or self.settings.slack_channel_id
            ts = post.message_ts
            if ts is None and self._other_sync_running(session, job):
                # Two posts of one card would be worse than a short wait.
                raise Retry("another worker is posting this card", 0.5)
        try:
            self._deliver_card(job.post_id, card, channel, ts)
        except SlackApiError as err:
            error = str(err.response.get("error") or "")
            if error not in REFUSED_CARD_ERRORS:
                raise
            if not card.compact:
                log.warning("Slack refused the card of post %s (%s); trying the compact form", job.post_id, error)
                self._set_card_state(job.post_id, card_compact=True)
                self._deliver_card(job.post_id, replace(card, compact=True), channel, ts)
                return
            log.error("Slack refused even the compact card of post %s (%s)", job.post_id, error)
            self._card_refused(job.post_id, card, channel, error)

    def _deliver_card(self, post_id: int, card: Card, channel: str, ts: str | None) -> None:
        text, blocks = card_message(card)
        block_dicts = [b.to_dict() for b in blocks]
        try:
            if ts is None:
                wait = self._reserve_post_slot(channel)
                if wait > 0:
                    raise Retry("channel paced after rate limit", wait)
                response = self.slack.chat_postMessage(
                    channel=channel,
                    text=text,
                    blocks=block_dicts,
                    unfurl_links=False,
                    unfurl_media=False,
                    metadata={"event_type": "greenlight_post", "event_payload": {"post_id": post_id}},
                )
                with session_scope(self.engine) as session:
                    session.execute(
                        update(Post)
                        .where(col(Post.id) == post_id, col(Post.message_ts).is_(None))
                        .values(channel_id=response["channel"], message_ts=response["ts"], card_error=None)
                        .execution_options(synchronize_session=False)
                    )
            else:
                # A sync queued while another was in flight is not collapsed into it; it must still
                # wait out the Retry-After that Slack gave the other one.
                wait = self._paused_for(_CHAT_UPDATE)
                if wait > 0:
                    raise Retry("chat.update paused after rate limit", wait)
                self.slack.chat_update(channel=channel, ts=ts, text=text, blocks=block_dicts)
        except SlackApiError as err:
            retry_after = _retry_after(err)
            if retry_after is not None:
                self.ratelimited += 1
                if ts is None:
                    self._limited(channel, retry_after)
                else:
                    self._pause(_CHAT_UPDATE, retry_after)
                raise Retry("slack rate limited", retry_after) from err
            error = err.response.get("error")
            if ts is not None and error in ("message_not_found", "cant_update_message", "channel_not_found"):
                # The card was deleted in Slack: post a fresh one rather than lose the post.
                log.warning("card of post %s is gone (%s); posting a new one", post_id, error)
                with session_scope(self.engine) as session:
                    session.execute(
                        update(Post)
                        .where(col(Post.id) == post_id)
                        .values(message_ts=None, channel_id=None)
                        .execution_options(synchronize_session=False)
                    )
                raise Retry("card missing; reposting", 0.0) from err
            raise

    def _set_card_state(self, post_id: int, **values: Any) -> None:
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
            add_audit(session, post_id=post_id, actor=None, action="card", outcome="failed", detail=f"Slack: {error}")
        try:
            self.slack.chat_postMessage(
                channel=channel, text=notices.card_not_shown(card.platform, card.clip_id, error), unfurl_links=False
            )
        except SlackApiError as err:
            retry_after = _retry_after(err)
            if retry_after is not None:
                raise Retry("slack rate limited", retry_after) from err
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

    def send_message(self, job: Job) -> None:
        """Send a thread reply (once the card exists) or an ephemeral message."""
        payload = job.payload
        # Built by bot.slack.notices (escaped); cut without breaking a link or an entity.
        text = truncate(str(payload.get("text", "")), 3900)
        try:
            if payload.get("mode") == "ephemeral":
                self.slack.chat_postEphemeral(channel=payload["channel"], user=payload["user"], text=text)
                return
            assert job.post_id is not None
            with session_scope(self.engine) as session:
                post = get_post(session, job.post_id)
                if post is None:
                    return
                channel, ts = post.channel_id, post.message_ts
            if ts is None or channel is None:
                raise Retry("card not posted yet", 1.0)
            wait = self._reserve_post_slot(channel)
            if wait > 0:
                raise Retry("channel paced after rate limit", wait)
            self.slack.chat_postMessage(channel=channel, thread_ts=ts, text=text, unfurl_links=False)
        except SlackApiError as err:
            retry_after = _retry_after(err)
            if retry_after is not None:
                if payload.get("mode") != "ephemeral" and job.post_id is not None:
                    with session_scope(self.engine) as session:
                        post = get_post(session, job.post_id)
                        if post is not None and post.channel_id:
                            self._limited(post.channel_id, retry_after)
                raise Retry("slack rate limited", retry_after) from err
            if err.response.get("error") in ("user_not_in_channel", "channel_not_found", "not_in_channel"):
                log.warning("could not deliver message for post %s: %s", job.post_id, err.response.get("error"))
                return
            raise
