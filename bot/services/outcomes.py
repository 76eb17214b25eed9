"""Learning what happened to posts: webhooks, polling, and the reconciler, for every provider alike.

A verified webhook is only recorded (its id is the primary key, so redeliveries are no-ops) with a
job, then answered; the job acts on it, treating it as a hint: drafts are imported through the
provider, and a post said to have moved on is re-read. A provider that never reports outcomes
(capability `outcomes=POLLING`) is asked on a schedule instead, until the post is decided or the
provider's give-up time has passed. The reconciler re-reads posts whose outcome never arrived.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, or_
from sqlmodel import col, select

from bot.config import Settings
from bot.db import add_audit, find_post, get_post, record_webhook, session_scope, take_lease
from bot.domain import DraftsReady, InboundEvent, Outcomes, PostChanged, PostStatus, RemotePost
from bot.jobs import PeriodicLoop, Retry, enqueue
from bot.models import Job, Post, WebhookEvent, utcnow
from bot.providers.budget import Priority
from bot.providers.errors import ApiError, ApiNotFound
from bot.providers.http import next_delay
from bot.providers.registry import Providers
from bot.services.cards import request_card_sync, request_thread_reply
from bot.services.intake import IntakeService
from bot.services.state import apply_remote, outcome_reply, provider_post
from bot.slack import notices

log = logging.getLogger(__name__)

PROVIDER_EVENT = "provider_event"
REFRESH_POST = "refresh_post"
# Handed over and not decided yet (or a status Greenlight doesn't know: it may move on).
WATCHED = (PostStatus.QUEUED.value, PostStatus.PROCESSING.value, PostStatus.UPLOADING.value, PostStatus.UNKNOWN.value)

Clock = Callable[[], datetime]


class OutcomeService:
    """Webhook events in, refreshed posts and cards out."""

    def __init__(self, engine: Engine, providers: Providers, intake: IntakeService, *,
                 wake: Callable[[], None] = lambda: None, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.providers = providers
        self.intake = intake
        self.wake = wake
        self.clock = clock

    def handlers(self) -> dict[str, Callable[[Job], None]]:
        """Job kind -> handler."""
        return {PROVIDER_EVENT: self.process_event, REFRESH_POST: self.refresh}

    # -- webhooks --------------------------------------------------------------------------------------

    def ingest(self, slug: str, events: list[InboundEvent]) -> int:
        """Persist verified events and queue them; returns how many were new (redeliveries change nothing)."""
        new = 0
        with session_scope(self.engine) as session:
            for event in events:
                if not record_webhook(session, event_id=event.id, provider=slug, type_=event.type, payload=event.payload):
                    continue
                new += 1
                if event.action is None:
                    # Recorded (so the id is never processed twice) but there is nothing to do.
                    log.info("%s event %s (%s) needs no action; recorded", slug, event.id, event.type)
                    continue
                enqueue(session, PROVIDER_EVENT, priority=4,
                        payload={"provider": slug, "event_id": event.id, **_action_payload(event)})
        if new:
            self.wake()
        return new

    def process_event(self, job: Job) -> None:
        """Act on one event: import the drafts it announces, or re-read the post it names."""
        slug = str(job.payload["provider"])
        if slug not in self.providers:
            log.warning("%s event ignored: %s is not configured", job.payload.get("kind"), slug)
            return
        log.info("%s event %s (%s): %s", slug, job.payload.get("event_id"), job.payload.get("type"),
                 job.payload.get("kind"))
        if job.payload.get("kind") == "drafts_ready":
            # Through the import job: it confirms the state with the provider and rechecks later.
            self.intake.run_import(job)
            return
        with session_scope(self.engine) as session:
            row = find_post(session, provider=slug, external_id=str(job.payload["external_id"]))
            post_id = row.id if row is not None else None
        if post_id is None:
            log.info("%s event about post %s, which has no card; ignored", slug, job.payload["external_id"])
            return
        self.refresh_post(post_id, source=str(job.payload.get("type") or "webhook"))

    # -- re-reading posts ----------------------------------------------------------------------------------

    def refresh(self, job: Job) -> None:
        """Job: re-read one post (reconciler, or the next poll of a polling provider)."""
        assert job.post_id is not None
        self.refresh_post(job.post_id, source=str(job.payload.get("source", "reconcile")), attempt=job.attempts)

    def refresh_post(self, post_id: int, *, source: str, attempt: int = 1) -> None:
        """Re-read a post from its provider (the truth) and apply it.

        A post the provider no longer knows is logged and left alone; rate limits and outages
        become a Retry; a polling provider's post still in flight is asked again later.
        """
        with session_scope(self.engine) as session:
            post = get_post(session, post_id)
            if post is None:
                return
            provider = self.providers.get(post.provider)
            target = provider_post(post)
        if provider is None:
            return
        try:
            remote = provider.read(target, priority=Priority.BACKGROUND)
        except ApiNotFound:
            log.warning("post %s (%s) no longer exists at %s", post_id, target.external_id, provider.title)
            return
        except ApiError as exc:
            delay = next_delay(exc, attempt)
            if delay is None:
                raise
            raise Retry(exc.user_message, delay) from exc
        self.apply_remote_update(post_id, remote, source=source)
        caps = provider.capabilities
        if caps.outcomes is Outcomes.POLLING and remote.status.is_in_flight:
            self._poll_again(post_id, provider.title, caps.polling.interval, caps.polling.give_up_after)

    def _poll_again(self, post_id: int, title: str, interval: Callable[[timedelta], timedelta],
                    give_up_after: timedelta) -> None:
        with session_scope(self.engine) as session:
            post = get_post(session, post_id)
            if post is None:
                since = self.clock()
            else:
                # Handed over on approval or, for a schedule Greenlight held, at the scheduled time.
                since = max((t for t in (post.approved_at, post.scheduled_at) if t is not None),
                            default=post.updated_at)
        age = self.clock() - since
        if age > give_up_after:
            with session_scope(self.engine) as session:
                request_thread_reply(session, post_id, notices.still_in_flight(title, int(give_up_after.total_seconds() // 3600)))
                add_audit(session, post_id=post_id, actor=None, action="poll", outcome="gave_up",
                          detail=f"no outcome after {give_up_after}")
            self.wake()
            return
        raise Retry(f"{title} post still in flight", interval(age).total_seconds())

    def apply_remote_update(self, post_id: int, remote: RemotePost, *, source: str) -> None:
        """Store what the provider says; on a status change, update the card and the thread."""
        with session_scope(self.engine) as session:
            post = get_post(session, post_id)
            if post is None:
                return
            old_status = post.status
            if not apply_remote(post, remote):
                return
            if post.status != old_status:
                add_audit(session, post_id=post_id, actor=None, action=source, outcome=post.status,
                          detail=post.error or post.published_url or post.remote_status)
                reply = outcome_reply(post, remote)
                if reply and post.status != PostStatus.CANCELLED:
                    request_thread_reply(session, post_id, reply)
            request_card_sync(session, post_id)
        self.wake()


def _action_payload(event: InboundEvent) -> dict[str, object]:
    action = event.action
    if isinstance(action, DraftsReady):
        return {"kind": "drafts_ready", "ref": action.ref, "post_id": action.post_id, "type": event.type}
    assert isinstance(action, PostChanged)
    return {"kind": "post_changed", "external_id": action.external_id, "type": event.type}


class Reconciler(PeriodicLoop):
    """Periodically re-reads posts that should have moved on, in case an outcome was never reported.

    One replica at a time holds the `reconciler` lease; the actual reads are `refresh_post` jobs
    at background priority, so they never take the rate-limit slots reserved for clicks.
    """

    name = "reconciler"

    def __init__(self, engine: Engine, settings: Settings, wake: Callable[[], None] = lambda: None, *,
                 holder: str, batch: int = 20, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.settings = settings
        self.wake = wake
        self.holder = holder
        self.clock = clock
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
        return take_lease(self.engine, name="reconciler", holder=self.holder,
                          seconds=max(1.0, self.settings.reconcile_interval_seconds * 0.9))

    def prune(self, *, jobs_older_than: timedelta = timedelta(days=7),
              events_older_than: timedelta = timedelta(days=14)) -> int:
        """Delete finished jobs and old webhook ids so the tables stay small.

        Webhook ids are kept well past the providers' retry spans (days), so a late redelivery is
        still recognised as a duplicate. Audit rows are never deleted.
        """
        now = self.clock()
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
        now = self.clock()
        interval = self.settings.reconcile_interval_seconds
        # Each post is re-read at most every three passes (at most every 30 s with short intervals).
        checked_before = now - timedelta(seconds=max(interval, min(30.0, 3 * interval)))
        with session_scope(self.engine) as session:
            rows = session.exec(
                select(Post.id)
                .where(
                    col(Post.pending_action).is_(None),
                    or_(
                        col(Post.status).in_(WATCHED) & (col(Post.updated_at) < now - self.queued_grace),
                        (col(Post.status) == PostStatus.SCHEDULED.value)
                        & (col(Post.scheduled_at) < now - self.scheduled_grace),
                    ),
                    or_(col(Post.remote_checked_at).is_(None), col(Post.remote_checked_at) < checked_before),
                )
                .order_by(col(Post.remote_checked_at))
                .limit(self.batch)
            ).all()
            queued = sum(
                1 for post_id in rows
                if enqueue(session, REFRESH_POST, post_id=post_id, payload={"source": "reconcile"},
                           dedupe_key=f"refresh:{post_id}", priority=8)
            )
        if queued:
            log.info("reconciler queued %s refreshes", queued)
            self.wake()
        return queued
