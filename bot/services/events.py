"""Webhook ingestion and reconciliation: outcomes reported by providers become card updates.

Ingestion only records the event (its id is the primary key, so redeliveries are no-ops) and a job,
then the HTTP answer goes out; processing happens in the job, which treats the event as a hint and
`GET`s the post before changing anything. The reconciler catches what webhooks never reported.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, delete, or_
from sqlmodel import col, select

from bot.config import Settings
from bot.db import find_post, record_webhook, session_scope, take_lease
from bot.domain import PostStatus, Provider
from bot.jobs import PeriodicLoop, Retry, enqueue
from bot.models import Job, Post, WebhookEvent, utcnow
from bot.providers.budget import BudgetExhausted, Priority
from bot.providers.choppity.webhook import ChoppityEvent
from bot.providers.errors import ApiError, ApiNotFound, ApiRateLimited
from bot.services.posts import REFRESH_POST, PostService

log = logging.getLogger(__name__)

CHOPPITY_EVENT = "choppity_event"
WATCHED = (PostStatus.QUEUED.value, PostStatus.PROCESSING.value, PostStatus.UPLOADING.value, PostStatus.UNKNOWN.value)
POST_EVENTS = ("post.scheduled", "post.published", "post.failed")


class EventService:
    """Turns provider webhooks into card updates."""

    def __init__(self, engine: Engine, posts: PostService, wake: Callable[[], None] = lambda: None) -> None:
        self.engine = engine
        self.posts = posts
        self.wake = wake

    def handlers(self) -> dict[str, Callable[..., None]]:
        """Job kind -> handler."""
        return {CHOPPITY_EVENT: self.process_choppity}

    def ingest_choppity(self, event: ChoppityEvent) -> bool:
        """Persist a verified event and queue it; False for a redelivery (nothing changes)."""
        payload = {"id": event.id, "type": event.type, "created": event.created_ms, "data": event.data}
        with session_scope(self.engine) as session:
            if not record_webhook(session, event_id=event.id, provider="choppity", type_=event.type, payload=payload):
                return False
            enqueue(session, CHOPPITY_EVENT, payload=payload, priority=4)
        self.wake()
        return True

    def process_choppity(self, job: Any) -> None:
        """Apply one Choppity event, re-reading the post as the source of truth."""
        event = ChoppityEvent(
            id=job.payload["id"], type=job.payload["type"], created_ms=job.payload.get("created"), data=job.payload["data"]
        )
        client = self.posts.providers.get(Provider.CHOPPITY.value)
        if client is None:
            log.warning("choppity event %s ignored: Choppity is not configured", event.id)
            return
        try:
            if event.type == "post.draft.created":
                self._draft_created(event)
            elif event.type in POST_EVENTS:
                self._post_changed(event)
            else:
                log.info("ignoring choppity event %s of type %s", event.id, event.type)
        except BudgetExhausted as exc:
            raise Retry("rate budget exhausted", exc.wait) from exc
        except ApiRateLimited as exc:
            raise Retry("choppity rate limited", exc.retry_after) from exc

    def _draft_created(self, event: ChoppityEvent) -> None:
        client = self.posts.providers[Provider.CHOPPITY.value]
        post_id, clip_id = event.post_id, event.clip_id
        if post_id:
            try:
                remote = client.get_post(post_id, priority=Priority.BACKGROUND)
            except ApiNotFound:
                log.warning("draft event %s names unknown post %s", event.id, post_id)
                return
            self.posts.card_posts(Provider.CHOPPITY.value, remote.clip_id or clip_id or "", [remote])
        elif clip_id:
            try:
                listing = client.list_clip_posts(clip_id, priority=Priority.BACKGROUND)
            except ApiNotFound:
                log.warning("draft event %s names unknown clip %s", event.id, clip_id)
                return
            self.posts.card_posts(Provider.CHOPPITY.value, clip_id, listing.posts)
        else:
            log.warning("draft event %s has neither a post id nor a clip id", event.id)

    def _post_changed(self, event: ChoppityEvent) -> None:
        post_id = event.post_id
        if not post_id:
            log.warning("event %s (%s) has no post id", event.id, event.type)
            return
        with session_scope(self.engine) as session:
            row = find_post(session, provider=Provider.CHOPPITY.value, external_id=post_id)
            our_id = row.id if row else None
        if our_id is None:
            log.info("event %s (%s) is about post %s, which has no card; ignored", event.id, event.type, post_id)
            return
        try:
            self.posts.refresh_post(our_id, source=event.type)
        except ApiError as exc:
            # The event is stored and already acknowledged: keep re-reading until Choppity answers.
            raise Retry(exc.user_message, 5.0) from exc


class Reconciler(PeriodicLoop):
    """Periodically re-reads posts that should have moved on, in case a webhook was lost.

    One replica at a time holds the `reconciler` lease; the actual reads are `refresh_post` jobs
    at background priority, so they never take the rate-limit slots reserved for clicks.
    """

    name = "reconciler"

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        wake: Callable[[], None] = lambda: None,
        *,
        holder: str,
        batch: int = 20,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.wake = wake
        self.holder = holder
        # A post handed over is re-read when no outcome arrived within three passes, at most three
        # minutes; a scheduled one two passes (at most two minutes) after its time.
        interval = settings.reconcile_interval_seconds
        self.queued_grace = timedelta(seconds=min(3 * interval, 180.0))
        self.scheduled_grace = timedelta(seconds=min(2 * interval, 120.0))
        self.batch = batch
        super().__init__()

    @property
    def period(self) -> float:
        """RECONCILE_INTERVAL_SECONDS."""
        return self.settings.reconcile_interval_seconds

    def take_lease(self) -> bool:
        """Hold the reconciler lease for one interval; False if another replica has it."""
        return take_lease(
            self.engine, name="reconciler", holder=self.holder,
            seconds=max(1.0, self.settings.reconcile_interval_seconds * 0.9),
        )

    def prune(self, *, jobs_older_than: timedelta = timedelta(days=7),
              events_older_than: timedelta = timedelta(days=14)) -> int:
        """Delete finished jobs and old webhook ids so the tables stay small.

        Webhook ids are kept well past Choppity's retry span (days), so a late redelivery is still
        recognised as a duplicate. Audit rows are never deleted.
        """
        now = utcnow()
        with session_scope(self.engine) as session:
            jobs = session.execute(
                delete(Job).where(col(Job.status).in_(("done", "failed")), col(Job.finished_at) < now - jobs_older_than)
            )
            events = session.execute(delete(WebhookEvent).where(col(WebhookEvent.received_at) < now - events_older_than))
            return int(jobs.rowcount or 0) + int(events.rowcount or 0)  # type: ignore[attr-defined]

    def run_once(self) -> int:
        """Queue refreshes for posts that look stuck; returns how many were queued."""
        if not self.take_lease():
            return 0
        self.prune()
        now = utcnow()
        interval = self.settings.reconcile_interval_seconds
        # Each post is re-read at most every three passes (at most every 30 s with short intervals).
        checked_before = now - timedelta(seconds=max(interval, min(30.0, 3 * interval)))
        with session_scope(self.engine) as session:
            rows = session.exec(
                select(Post.id)
                .where(
                    col(Post.pending_action).is_(None),
                    or_(
                        # Handed over and not decided yet: queued, processing, uploading, or a
                        # status Greenlight doesn't know (it may move on to one it does).
                        col(Post.status).in_(WATCHED) & (col(Post.updated_at) < now - self.queued_grace),
                        (col(Post.status) == PostStatus.SCHEDULED.value)
                        & (col(Post.scheduled_at) < now - self.scheduled_grace),
                    ),
                    or_(col(Post.remote_checked_at).is_(None), col(Post.remote_checked_at) < checked_before),
                )
                .order_by(col(Post.remote_checked_at))
                .limit(self.batch)
            ).all()
            queued = 0
            for post_id in rows:
                if enqueue(
                    session,
                    REFRESH_POST,
                    post_id=post_id,
                    payload={"source": "reconcile", "priority": Priority.BACKGROUND.value},
                    dedupe_key=f"refresh:{post_id}",
                    priority=8,
                ):
                    queued += 1
        if queued:
            log.info("reconciler queued %s refreshes", queued)
            self.wake()
        return queued
