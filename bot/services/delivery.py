"""Delivering clip messages and cards to Slack, through the job queue, exactly once.

Each clip has one message in the review channel; its platform cards are replies in that message's
thread. Slack has no idempotency key, and real Slack sometimes stores a `chat.postMessage` and loses
the answer (a 5xx, a reset connection, an answer slower than our timeout), or the process dies while
the call is in flight. So posting one of these messages is a small protocol:

1. Before calling Slack, the row records that an attempt started (committed).
2. Slack answers: the message's `ts` is stored and the marker cleared. Slack refuses for sure (an
   `ok: false` that isn't a server error): the marker is cleared and the error handled.
3. The outcome is unknown: the job comes back after `settle_seconds` (so a slow Slack has finished
   storing it) and, before posting again, looks for the message (in the channel's history, or in
   the clip's thread for a card): every message carries `metadata` naming its clip or post. Found:
   adopted. Two found: the oldest is kept and the others deleted. Not found: posted again, and a
   `check_card` job looks once more a while later, in case Slack was slower still.

A message that `chat.update` can't find is looked for the same way before it is treated as gone and
posted anew, so a transient `message_not_found` never leaves two cards with working buttons.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from bot import failpoints, metrics
from bot.config import Settings
from bot.db import add_audit, get_post, session_scope
from bot.domain import Card
from bot.jobs import Retry, enqueue
from bot.models import Clip, Job, Post, utcnow
from bot.providers.registry import Providers
from bot.services.cards import SYNC_CARD, SYNC_CLIP, card_for, request_clip_sync
from bot.services.clips import ClipService, clip_of
from bot.services.identity import SlackIdentity
from bot.services.slackio import (
    CHAT_UPDATE,
    MAYBE_GONE_ERRORS,
    REFUSED_CARD_ERRORS,
    SETTLE_SECONDS,
    ChannelReader,
    Pacer,
    describe,
    outcome_unknown,
    retry_after,
    slack_errors,
)
from bot.slack import notices
from bot.slack.blocks import card_message
from bot.slack.clips import clip_message

log = logging.getLogger(__name__)

CHECK_CARD = "check_card"
CHECK_CLIP = "check_clip"
CARD_EVENT = "greenlight_post"
CLIP_EVENT = "greenlight_clip"


@dataclass(frozen=True)
class Slot:
    """One of our messages that must exist exactly once: a post's card, or a clip's message."""

    model: type[Post] | type[Clip]
    row_id: int
    event_type: str
    key: str
    attempted_field: str
    noun: str  # for logs: "the card of post 3"
    kind: str  # "card" or "clip": names its crash points (bot.failpoints), e.g. "card_post_started"

    def metadata(self) -> dict[str, Any]:
        """The message metadata that lets us find it again."""
        return {"event_type": self.event_type, "event_payload": {self.key: self.row_id}}

    def set(self, engine: Engine, values: dict[str, Any], *, only_unposted: bool = False) -> None:
        """Update the row (only while it has no message yet, when asked)."""
        query = update(self.model).where(col(self.model.id) == self.row_id)
        if only_unposted:
            query = query.where(col(self.model.message_ts).is_(None))
        with session_scope(engine) as session:
            session.execute(query.values(**values).execution_options(synchronize_session=False))


def card_slot(post_id: int) -> Slot:
    """The slot of a post's card."""
    return Slot(Post, post_id, CARD_EVENT, "post_id", "card_attempted_at", f"the card of post {post_id}", "card")


def clip_slot(clip_id: int) -> Slot:
    """The slot of a clip's message."""
    return Slot(Clip, clip_id, CLIP_EVENT, "clip_id", "message_attempted_at", f"the message of clip {clip_id}",
                "clip")


# How long a card waits for its clip's message while another worker is posting it.
CLIP_MESSAGE_WAIT_SECONDS = 2.0
# The longest a card goes back to the queue for while its clip's message is put off.
MAX_CLIP_WAIT = 300.0


@dataclass(frozen=True)
class _Target:
    """Where a message goes and what it says, read from the database before any Slack call."""

    channel: str
    ts: str | None
    thread_ts: str | None
    attempted: datetime | None
    text: str
    blocks: list[dict[str, Any]]


class SlackDelivery:
    """Job handlers that post and update clip messages and cards."""

    def __init__(self, engine: Engine, slack: WebClient, settings: Settings, identity: SlackIdentity,
                 providers: Providers, clips: ClipService, *, settle_seconds: float = SETTLE_SECONDS,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.slack = slack
        self.settings = settings
        self.identity = identity
        self.providers = providers
        self.clips = clips
        self.settle_seconds = settle_seconds
        # The job queue's clock: when the clip's own job is due, in the queue's time.
        self.clock = clock
        self.pacer = Pacer()
        self.reader = ChannelReader(slack)
        self.ratelimited = 0

    def handlers(self) -> dict[str, Callable[[Job], None]]:
        """Job kind -> handler."""
        return {SYNC_CARD: self.sync_card, SYNC_CLIP: self.sync_clip, CHECK_CARD: self.check_card,
                CHECK_CLIP: self.check_clip}

    # -- clip messages ----------------------------------------------------------------------------

    def sync_clip(self, job: Job) -> None:
        """Post the clip's message if it has none yet (exactly once), else update it."""
        self._sync_clip(int(job.payload["clip_id"]), job)

    def _sync_clip(self, clip_id: int, job: Job) -> None:
        slot = clip_slot(clip_id)
        with session_scope(self.engine) as session:
            clip = session.get(Clip, clip_id)
            if clip is None:
                return
            text, blocks = clip_message(self.clips.card(session, clip))
            target = _Target(clip.channel_id or self.settings.slack_channel_id, clip.message_ts, None,
                             clip.message_attempted_at, text, [b.to_dict() for b in blocks])
            if target.ts is None and self._other_job_running(session, job, f"clip:{clip_id}"):
                raise Retry("another worker is posting this clip's message", 0.5)
        with slack_errors(self.identity):
            ts = target.ts
            if ts is None and target.attempted is not None:
                ts = self._recover(slot, target.channel, target.attempted, None)
            self._deliver(slot, replace(target, ts=ts))

    # -- cards ------------------------------------------------------------------------------------

    def sync_card(self, job: Job) -> None:
        """Post the card (in its clip's thread) if it has none yet, exactly once, else update it.

        If Slack refuses the card as too big, the compact form is tried; if Slack refuses even that,
        the channel is told which draft couldn't be shown and the post records why.
        """
        assert job.post_id is not None
        post_id = job.post_id
        slot = card_slot(post_id)
        with session_scope(self.engine) as session:
            post = get_post(session, post_id)
            if post is None:
                log.warning("card sync for unknown post %s", post_id)
                return
            if post.card_error is not None and post.message_ts is None:
                return  # Slack refused this card outright; the channel was told
            card = card_for(session, post, self.settings, self.providers.get(post.provider))
            clip = clip_of(session, post)
            clip_id, thread_ts = (clip.id, clip.message_ts) if clip is not None else (None, None)
            if post.message_ts is not None:
                thread_ts = post.thread_ts  # wherever it was posted
            channel = post.channel_id or self.settings.slack_channel_id
            ts, attempted = post.message_ts, post.card_attempted_at
            if ts is None and self._other_job_running(session, job, f"card:{post_id}"):
                # Two posts of one card would be worse than a short wait.
                raise Retry("another worker is posting this card", 0.5)
        if ts is None and clip_id is not None and thread_ts is None:
            thread_ts = self._await_clip_message(clip_id)
        with slack_errors(self.identity):
            if ts is None and attempted is not None:
                ts = self._recover(slot, channel, attempted, thread_ts)
            self._deliver_card(slot, card, channel, ts, thread_ts)
        if clip_id is not None:
            # The clip's summary shows every platform's state: keep it in step with its cards.
            with session_scope(self.engine) as session:
                request_clip_sync(session, clip_id)

    def _await_clip_message(self, clip_id: int) -> str:
        """The ts of the clip's message, which the card's thread hangs off.

        Only the clip's own job posts it (one poster, so one message). While another worker is
        posting it right now, the card waits a moment for it here; otherwise the card goes back to
        the queue at once (its clip's job, queued first, goes ahead of it). A worker never sits on a
        card for long: in a burst of clips every worker would be waiting for messages none of them
        is free to post.
        """
        deadline = time.monotonic() + CLIP_MESSAGE_WAIT_SECONDS
        while True:
            with session_scope(self.engine) as session:
                clip = session.get(Clip, clip_id)
                if clip is not None and clip.message_ts is not None:
                    return clip.message_ts
                queued = session.exec(select(Job.status, Job.run_at).where(
                    Job.dedupe_key == f"clip:{clip_id}", col(Job.status).in_(("pending", "running")))).all()
                if not queued:
                    request_clip_sync(session, clip_id)
            if any(status == "running" for status, _ in queued) and time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            # Back to the queue, until the clip's job is due (it goes first: higher priority). A clip
            # job put off for a while (Slack's Retry-After, a refused token) holds its cards as long.
            due = min((run_at for status, run_at in queued if status == "pending"), default=None)
            wait = (due - self.clock()).total_seconds() if due is not None else 0.0
            raise Retry("the clip's message isn't in the channel yet", min(MAX_CLIP_WAIT, max(0.2, wait + 0.1)))

    def _deliver_card(self, slot: Slot, card: Card, channel: str, ts: str | None, thread_ts: str | None) -> None:
        for compact in (card.compact, True):
            text, blocks = card_message(replace(card, compact=compact))
            target = _Target(channel, ts, thread_ts, None, text, [b.to_dict() for b in blocks])
            try:
                self._deliver(slot, target)
                return
            except SlackApiError as err:
                error = str(err.response.get("error") or "")
                if error not in REFUSED_CARD_ERRORS:
                    raise
                if compact:
                    log.error("Slack refused even the compact card of post %s (%s)", slot.row_id, error)
                    self._card_refused(slot.row_id, card, channel, error)
                    return
                log.warning("Slack refused the card of post %s (%s); trying the compact form", slot.row_id, error)
                slot.set(self.engine, {"card_compact": True})

    def check_card(self, job: Job) -> None:
        """Job: after a repost, make sure the channel (or thread) holds exactly one card of the post."""
        assert job.post_id is not None
        with session_scope(self.engine) as session:
            post = get_post(session, job.post_id)
            if post is None or post.message_ts is None or post.channel_id is None:
                return
            channel, keep, thread_ts = post.channel_id, post.message_ts, post.thread_ts
        since = datetime.fromisoformat(str(job.payload["since"]))
        with slack_errors(self.identity):
            for ts in self.reader.find(channel, CARD_EVENT, "post_id", job.post_id, since=since, thread_ts=thread_ts):
                if ts != keep:
                    self._delete_duplicate(card_slot(job.post_id), channel, ts)

    def check_clip(self, job: Job) -> None:
        """Job: after a repost, make sure the channel holds exactly one message of the clip."""
        clip_id = int(job.payload["clip_id"])
        with session_scope(self.engine) as session:
            clip = session.get(Clip, clip_id)
            if clip is None or clip.message_ts is None or clip.channel_id is None:
                return
            channel, keep = clip.channel_id, clip.message_ts
        since = datetime.fromisoformat(str(job.payload["since"]))
        with slack_errors(self.identity):
            for ts in self.reader.find(channel, CLIP_EVENT, "clip_id", clip_id, since=since):
                if ts != keep:  # a copy Slack stored after we had looked: nothing hangs off it
                    self._delete_duplicate(clip_slot(clip_id), channel, ts)

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

    # -- the protocol, for either kind of message ----------------------------------------------------

    def _deliver(self, slot: Slot, target: _Target) -> None:
        try:
            if target.ts is None:
                self._post_once(slot, target)
                return
            # A sync queued while another was in flight is not collapsed into it; it must still
            # wait out the Retry-After that Slack gave the other one.
            wait = self.pacer.paused_for(CHAT_UPDATE)
            if wait > 0:
                raise Retry("chat.update paused after rate limit", wait)
            self.slack.chat_update(channel=target.channel, ts=target.ts, text=target.text, blocks=target.blocks)
        except SlackApiError as err:
            limited = retry_after(err)
            if limited is not None:
                self.ratelimited += 1
                if target.ts is None:
                    self.pacer.limited(target.channel, limited)
                else:
                    self.pacer.pause(CHAT_UPDATE, limited)
                raise Retry("slack rate limited", limited) from err
            error = err.response.get("error")
            if target.ts is not None and error in MAYBE_GONE_ERRORS:
                self._maybe_gone(slot, target, str(error))
            raise

    def _post_once(self, slot: Slot, target: _Target) -> None:
        wait = self.pacer.reserve(target.channel)
        if wait > 0:
            raise Retry("channel paced after rate limit", wait)
        # The marker goes in first, committed: whatever happens next, a later attempt knows to look.
        slot.set(self.engine, {slot.attempted_field: utcnow()})
        failpoints.hit(f"{slot.kind}_post_started")
        try:
            response = self.slack.chat_postMessage(
                channel=target.channel, thread_ts=target.thread_ts, text=target.text, blocks=target.blocks,
                unfurl_links=False, unfurl_media=False, metadata=slot.metadata(),
            )
        except Exception as exc:
            if outcome_unknown(exc):
                log.warning("posting %s: no answer from Slack (%s); will check before retrying", slot.noun,
                            describe(exc))
                raise Retry("post outcome unknown", self.settle_seconds) from exc
            slot.set(self.engine, {slot.attempted_field: None})  # Slack said no for sure: nothing was posted
            raise
        failpoints.hit(f"{slot.kind}_post_answered")
        if slot.model is Post:
            metrics.card_posted()
        values: dict[str, Any] = {"channel_id": response["channel"], "message_ts": response["ts"],
                                  slot.attempted_field: None}
        if slot.model is Post:
            values.update(thread_ts=target.thread_ts, card_error=None)
        slot.set(self.engine, values, only_unposted=True)

    def _recover(self, slot: Slot, channel: str, attempted: datetime, thread_ts: str | None) -> str | None:
        """An earlier post has an unknown outcome: find it (and adopt it) or say it isn't there."""
        wait = self.settle_seconds - (utcnow() - attempted).total_seconds()
        if wait > 0:
            raise Retry("post outcome unknown; waiting for Slack to settle", wait)
        found = self.reader.find(channel, slot.event_type, slot.key, slot.row_id, since=attempted, thread_ts=thread_ts)
        if not found:
            log.info("%s was not posted by the earlier attempt; posting it", slot.noun)
            slot.set(self.engine, {slot.attempted_field: None})
            with session_scope(self.engine) as session:
                # Slack may be slower still: look again later, and keep only one.
                if slot.model is Post:
                    enqueue(session, CHECK_CARD, post_id=slot.row_id, payload={"since": attempted.isoformat()},
                            dedupe_key=f"check-card:{slot.row_id}", delay=4 * self.settle_seconds, priority=8)
                else:
                    enqueue(session, CHECK_CLIP, payload={"clip_id": slot.row_id, "since": attempted.isoformat()},
                            dedupe_key=f"check-clip:{slot.row_id}", delay=4 * self.settle_seconds, priority=8)
            return None
        keep, extra = found[0], found[1:]
        log.warning("adopting %s that Slack stored without telling us (ts %s)", slot.noun, keep)
        values: dict[str, Any] = {"channel_id": channel, "message_ts": keep, slot.attempted_field: None}
        if slot.model is Post:
            values.update(thread_ts=thread_ts, card_error=None)
        with session_scope(self.engine) as session:
            # One transaction: whoever sees the card adopted also sees why.
            session.execute(update(slot.model).where(col(slot.model.id) == slot.row_id,
                                                     col(slot.model.message_ts).is_(None))
                            .values(**values).execution_options(synchronize_session=False))
            if slot.model is Post:
                add_audit(session, post_id=slot.row_id, actor=None, action="card", outcome="adopted", detail=keep)
        for duplicate in extra:
            self._delete_duplicate(slot, channel, duplicate)
        return keep

    def _maybe_gone(self, slot: Slot, target: _Target, error: str) -> None:
        """chat.update couldn't find the message: post anew only if Slack confirms it is gone."""
        assert target.ts is not None
        try:
            exists = self.reader.exists(target.channel, target.ts, thread_ts=target.thread_ts)
        except SlackApiError as err:
            log.warning("could not check whether %s still exists (%s); trying again later", slot.noun,
                        err.response.get("error"))
            raise Retry("message may be gone; check failed", 30.0) from err
        if exists:
            log.warning("chat.update said %s for %s, but it is there; trying again later", error, slot.noun)
            raise Retry(f"transient {error}", min(5.0, self.settle_seconds))
        log.warning("%s is gone (%s); posting a new one", slot.noun, error)
        values: dict[str, Any] = {"message_ts": None, "channel_id": None}
        if slot.model is Post:
            values["thread_ts"] = None
        slot.set(self.engine, values)
        raise Retry("message missing; reposting", 0.0)

    def _delete_duplicate(self, slot: Slot, channel: str, ts: str) -> None:
        try:
            self.slack.chat_delete(channel=channel, ts=ts)
            log.warning("deleted a duplicate of %s (ts %s)", slot.noun, ts)
        except SlackApiError as err:
            log.error("could not delete a duplicate of %s (ts %s): %s", slot.noun, ts, err.response.get("error"))

    def _other_job_running(self, session: Session, job: Job, dedupe_key: str) -> bool:
        """Whether another worker is syncing this message right now (it may be posting it)."""
        other = session.exec(
            select(Job.id).where(
                Job.dedupe_key == dedupe_key,
                Job.status == "running",
                Job.id != job.id,
                col(Job.locked_until) > utcnow(),
            )
        ).first()
        return other is not None
