"""Carrying out accepted actions against the providers, exactly once.

A `post_action` job (written by `bot.services.review` when the click was accepted) calls the
provider, guided only by its capabilities:
- a draft or schedule Greenlight holds (a provider without server-side drafts) is edited, scheduled
  or cancelled here, locally; a held schedule becomes a `hand_off` job at its time;
- no provider call is ever blindly repeated: when an earlier attempt may have reached the provider
  (its answer was lost, it timed out, the process died, saving the outcome failed), the post is
  re-read first and the action completed from what is found; a provider whose posts can't be
  re-read that way is asked at most once, with a marker committed before the call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, update
from sqlmodel import col

from bot import failpoints
from bot.config import Settings
from bot.db import add_audit, get_post, session_scope
from bot.domain import (
    Activity,
    ActivityKind,
    DraftHome,
    Outcomes,
    PendingAction,
    Platform,
    PostContent,
    PostStatus,
    ProviderPost,
    RemotePost,
)
from bot.jobs import Retry, enqueue
from bot.models import Job, Post, utcnow
from bot.providers.base import Provider
from bot.providers.budget import Priority
from bot.providers.errors import (
    ApiBadRequest,
    ApiError,
    ApiNotFound,
    ApiOutcomeUnknown,
    ApiRateLimited,
    ApiRejected,
    ApiUnavailable,
)
from bot.providers.http import next_delay
from bot.providers.registry import Providers
from bot.services import feedback
from bot.services.cards import approvals_of, request_card_sync, request_ephemeral, request_thread_reply
from bot.services.outcomes import REFRESH_POST
from bot.services.review import POST_ACTION, change_of
from bot.services.state import apply_remote, provider_post
from bot.slack import notices
from bot.slack.changes import field_diffs
from bot.slack.mrkdwn import Mrkdwn

log = logging.getLogger(__name__)

HAND_OFF = "hand_off"
# An action whose outcome stays unknown is re-read this many times before we give up and say so.
MAX_ACTION_ATTEMPTS = 6
# A held schedule handed over this much after its time gets a note saying why.
LATE_HAND_OFF = timedelta(minutes=5)

Clock = Callable[[], datetime]


class ActionRunner:
    """Job handlers for accepted actions and held schedules."""

    def __init__(
        self, engine: Engine, settings: Settings, providers: Providers, *,
        wake: Callable[[], None] = lambda: None, clock: Clock = utcnow,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.providers = providers
        self.wake = wake
        self.clock = clock

    def handlers(self) -> dict[str, Callable[[Job], None]]:
        """Job kind -> handler."""
        return {POST_ACTION: self.run_action, HAND_OFF: self.run_hand_off}

    # -- the job ---------------------------------------------------------------------------------------

    def run_action(self, job: Job) -> None:
        """Carry out an accepted action (see the module docstring)."""
        action = PendingAction(job.payload["action"])
        user = str(job.payload["user"])
        with session_scope(self.engine) as session:
            post = get_post(session, job.post_id)
            if post is None or post.pending_action != action.value or post.pending_by != user:
                return  # finished already (crash after commit, before the job was marked done)
            provider = self.providers.get(post.provider)
            target = provider_post(post)
            allowed = ("scheduled",) if job.payload.get("hand_off") else _allowed(provider, post, action)
        if provider is None:
            self._fail(job, action, user, ApiBadRequest(notices.provider_gone(post.provider).plain))
            return
        try:
            failpoints.hit("before_provider_call")
            remote = self._attempt(provider, action, target, job, allowed)
            failpoints.hit("after_provider_call")
        except ApiError as exc:
            self._handle_error(job, action, user, provider, target, exc)
            return
        self._succeed(job, action, user, remote, target.content)

    def _handle_error(self, job: Job, action: PendingAction, user: str, provider: Provider, target: ProviderPost,
                      exc: ApiError) -> None:
        if _lost_hand_off(provider, action, exc):
            # It may be publishing, and nothing can tell: retrying only delays saying so.
            self._fail(job, action, user, ApiOutcomeUnknown(notices.lost_hand_off(provider.title).plain,
                                                            provider=provider.slug))
            return
        if isinstance(exc, ApiRateLimited | ApiUnavailable) and job.attempts < MAX_ACTION_ATTEMPTS:
            delay = next_delay(exc, job.attempts) or 1.0
            if isinstance(exc, ApiUnavailable) and exc.sent:
                self._note_unknown(job, action, user, exc)
                # The request may still be in flight at the provider: give it a client timeout to
                # land before re-reading, so a slow provider isn't asked twice.
                delay = max(delay, self.settings.http_timeout_seconds)
            raise Retry(exc.user_message, delay) from exc
        if isinstance(exc, ApiRejected) and (job.attempts > 1 or job.payload.get("outcome_unknown")):
            # After an attempt that may have reached the provider, "no" can mean "already done":
            # that attempt did it. On a first attempt a refusal is just a refusal.
            confirmed = self._confirmed(provider, action, target, job)
            if confirmed is not None:
                self._succeed(job, action, user, confirmed, target.content)
                return
        self._fail(job, action, user, exc)

    def _note_unknown(self, job: Job, action: PendingAction, user: str, exc: ApiError) -> None:
        """Record (once) that the outcome is unknown: later attempts re-read before anything else."""
        if job.payload.get("outcome_unknown"):
            return
        job.payload = {**job.payload, "outcome_unknown": True}
        with session_scope(self.engine) as session:
            session.execute(update(Job).where(col(Job.id) == job.id).values(payload=job.payload)
                            .execution_options(synchronize_session=False))
            add_audit(session, post_id=job.post_id, actor=user, action=action.value, outcome="unknown",
                      detail=exc.user_message)

    def _mark_sent(self, job: Job, *, sent: bool = True) -> None:
        """Commit, before a call that can't be confirmed afterwards, that it is about to be sent (or,
        with `sent=False`, that it provably wasn't)."""
        payload = {k: v for k, v in job.payload.items() if k != "sent_at"}
        job.payload = {**payload, "sent_at": utcnow().isoformat()} if sent else payload
        with session_scope(self.engine) as session:
            session.execute(update(Job).where(col(Job.id) == job.id).values(payload=job.payload)
                            .execution_options(synchronize_session=False))

    # -- what to call --------------------------------------------------------------------------------

    def _attempt(self, provider: Provider, action: PendingAction, target: ProviderPost, job: Job,
                 allowed: tuple[str, ...]) -> RemotePost:
        caps = provider.capabilities
        local = self._local(provider, action, target, job)
        if local is not None:
            return local
        if action is PendingAction.PUBLISH and not caps.publish_confirmable:
            if job.payload.get("sent_at"):
                # An earlier attempt sent it and its answer never arrived: it may be publishing.
                raise ApiOutcomeUnknown(notices.lost_hand_off(provider.title).plain, provider=provider.slug)
            self._mark_sent(job)
            try:
                return provider.publish(target, at=None, actor=str(job.payload["user"]))
            except ApiError as exc:
                if not (isinstance(exc, ApiUnavailable) and exc.sent):
                    # A definite answer (a refusal, a 429) or no budget slot: nothing was handed
                    # over, so a later attempt may send it.
                    self._mark_sent(job, sent=False)
                raise
        if job.attempts > 1 or job.payload.get("outcome_unknown"):
            # An earlier attempt may have reached the provider: ask before doing anything again.
            current = provider.read(target, priority=Priority.INTERACTIVE)
            if _done(action, current, job, target.content):
                return current
            if current.status.value not in allowed:
                raise ApiBadRequest(
                    f"It is {current.raw_status or current.status.value} now, so it can't be {notices.VERB_ED[action]}.",
                    provider=provider.slug,
                )
        return self._call(provider, action, target, job)

    def _local(self, provider: Provider, action: PendingAction, target: ProviderPost, job: Job) -> RemotePost | None:
        """Actions on a draft or schedule Greenlight holds itself: no provider call."""
        caps = provider.capabilities
        held = caps.drafts is DraftHome.GREENLIGHT and target.status in (PostStatus.DRAFT, PostStatus.SCHEDULED)
        if action is PendingAction.CANCEL and held:
            return _as_remote(target, status=PostStatus.CANCELLED)
        if action is PendingAction.SCHEDULE and caps.schedule_held_locally:
            problems = provider.publish_problems(target)
            if problems:
                raise ApiBadRequest("Edit the draft first: " + " ".join(problems), provider=provider.slug)
            when = datetime.fromtimestamp(int(job.payload["scheduled_at"]), tz=UTC)
            return _as_remote(target, status=PostStatus.SCHEDULED, scheduled_at=when)
        return None

    def _call(self, provider: Provider, action: PendingAction, target: ProviderPost, job: Job) -> RemotePost:
        user = str(job.payload["user"])
        if action is PendingAction.PUBLISH:
            return provider.publish(target, at=None, actor=user)
        if action is PendingAction.SCHEDULE:
            return provider.publish(target, at=datetime.fromtimestamp(int(job.payload["scheduled_at"]), tz=UTC),
                                    actor=user)
        if action is PendingAction.CANCEL:
            return provider.cancel(target, actor=user)
        return provider.update(target, change_of(job.payload), actor=user)

    def _confirmed(self, provider: Provider, action: PendingAction, target: ProviderPost, job: Job) -> RemotePost | None:
        """The post as the provider has it, if that shows the action already done; else None."""
        if not provider.capabilities.publish_confirmable and action is PendingAction.PUBLISH:
            return None
        try:
            current = provider.read(target, priority=Priority.INTERACTIVE)
        except ApiError:
            return None
        return current if _done(action, current, job, target.content) else None

    # -- outcomes ----------------------------------------------------------------------------------------

    def _succeed(self, job: Job, action: PendingAction, user: str, remote: RemotePost, old: PostContent) -> None:
        provider_title, polling, held = self._provider_facts(job)
        with session_scope(self.engine) as session:
            post = get_post(session, job.post_id)
            assert post is not None
            before_state = dict(post.extra or {})
            apply_remote(post, remote, ours=True)
            post.pending_action = post.pending_by = None
            post.pending_since = None
            reply, detail = self._record(session, post, job, action, user, remote, (old, before_state), provider_title)
            add_audit(session, post_id=post.id, actor=user, action=action.value, outcome="ok", detail=detail)
            if reply:
                request_thread_reply(session, job.post_id or 0, reply)
            if action is PendingAction.SCHEDULE and remote.status is PostStatus.SCHEDULED and held:
                self._hold(session, post)
            if polling is not None and remote.status.is_in_flight and action is PendingAction.PUBLISH:
                enqueue(session, REFRESH_POST, post_id=post.id, payload={"source": "poll"},
                        dedupe_key=f"refresh:{post.id}", delay=polling, priority=7)
            request_card_sync(session, job.post_id or 0)
        self.wake()

    def _provider_facts(self, job: Job) -> tuple[str, float | None, bool]:
        """The provider's name, its first poll delay (polling providers), and whether it holds schedules."""
        with session_scope(self.engine) as session:
            post = get_post(session, job.post_id)
            provider = self.providers.get(post.provider) if post is not None else None
        if provider is None:
            return "the provider", None, False
        caps = provider.capabilities
        polling = caps.polling.every.total_seconds() if caps.outcomes is Outcomes.POLLING else None
        return provider.title, polling, caps.schedule_held_locally

    def _record(
        self, session: Any, post: Post, job: Job, action: PendingAction, user: str, remote: RemotePost,
        before: tuple[PostContent, dict[str, Any]], provider_title: str,
    ) -> tuple[Mrkdwn | None, str]:
        """Who did it, on the post; the thread reply and the audit detail."""
        if action in (PendingAction.PUBLISH, PendingAction.SCHEDULE):
            if job.payload.get("hand_off"):
                return self._handed_over(post, provider_title), remote.status.value
            post.approved_by, post.approved_at = user, utcnow()
            if remote.status == PostStatus.SCHEDULED:
                post.activity = Activity(ActivityKind.SCHEDULED, actor=user).to_dict()
                return notices.scheduled(post.scheduled_at, user), remote.status.value
            post.activity = Activity(ActivityKind.PUBLISH_APPROVED, actor=user).to_dict()
            return notices.handed_over(user, provider_title, remote.status), remote.status.value
        if action is PendingAction.CANCEL:
            reason = job.payload.get("reason")
            reason = str(reason) if reason else None
            post.cancelled_by, post.cancel_reason = user, reason
            post.activity = Activity(ActivityKind.CANCELLED, actor=user).to_dict()
            return notices.cancelled(user, reason), f"cancelled; reason: {reason}" if reason else "cancelled"
        summary = change_of(job.payload).summary
        if summary == "no changes":
            return None, summary
        return self._edited(session, post, user, summary, *before), summary

    def _edited(self, session: Any, post: Post, user: str, summary: str, old: PostContent,
                before_state: dict[str, Any]) -> Mrkdwn:
        """A new version by `user`: kept, its diff said in the thread; it resolves a change request."""
        post.content_version += 1
        post.last_editor = user
        post.activity = Activity(ActivityKind.EDITED, actor=user).to_dict()
        new = PostContent.from_dict(post.content)
        if new.caption != old.caption:
            post.caption_by_ai = False
        feedback.record_new_version(session, post, before=old.to_dict(), before_state=before_state, editor=user,
                                    source=feedback.SOURCE_SLACK, summary=summary)
        resolved = feedback.resolve_change_request(session, post, by=user)
        reset = self.settings.required_approvals > 1 and bool(approvals_of(session, post.id, post.content_version - 1))
        return notices.edited(user, summary, approvals_reset=reset, diff=field_diffs(old, new), resolved=resolved)

    def _handed_over(self, post: Post, provider_title: str) -> Mrkdwn | None:
        """A held schedule went out: say so in the thread if it went out late."""
        when = post.scheduled_at
        late = self.clock() - when if when is not None else timedelta(0)
        if late > LATE_HAND_OFF:
            return notices.handed_over_late(provider_title, int(late.total_seconds() // 60))
        return None

    def _hold(self, session: Any, post: Post) -> None:
        """A schedule Greenlight holds: the hand-off job waits for its time (one per post)."""
        assert post.id is not None and post.scheduled_at is not None
        delay = max(0.0, (post.scheduled_at - self.clock()).total_seconds())
        enqueue(session, HAND_OFF, post_id=post.id, payload={"scheduled_at": int(post.scheduled_at.timestamp())},
                dedupe_key=f"hand-off:{post.id}", delay=delay, priority=3)

    def _fail(self, job: Job, action: PendingAction, user: str, err: ApiError) -> None:
        """Release the post, tell the person in plain words, and correct the card from the truth."""
        remote = self._reread(job, err)
        with session_scope(self.engine) as session:
            post = get_post(session, job.post_id)
            assert post is not None
            status_before = post.status
            if remote is not None:
                apply_remote(post, remote)
            if isinstance(err, ApiOutcomeUnknown) and action is PendingAction.PUBLISH:
                # Handed over, answer lost, can't be re-read: it may be publishing. Never re-sent.
                post.status, post.error = PostStatus.FAILED.value, err.user_message
            post.pending_action = post.pending_by = None
            post.pending_since = None
            add_audit(session, post_id=post.id, actor=user, action=action.value, outcome="failed", detail=err.user_message)
            # Say where the post stands when that is why the action failed (it moved on meanwhile).
            now_status = PostStatus.parse(post.status) if post.status != status_before else None
            provider = self.providers.get(post.provider)
            text = notices.action_failed_ephemeral(
                action, Platform(post.platform), err.user_message, now=now_status,
                provider=provider.title if provider is not None else post.provider.title(),
            )
            request_ephemeral(session, channel=str(job.payload.get("channel") or post.channel_id), user=user, text=text,
                              post_id=post.id)
            request_thread_reply(session, job.post_id or 0, notices.action_failed_thread(user, action, err.user_message))
            request_card_sync(session, job.post_id or 0)
        self.wake()

    def _reread(self, job: Job, err: ApiError) -> RemotePost | None:
        """The provider's copy after a failure, so the card shows the truth (None if it can't be read)."""
        if isinstance(err, ApiNotFound | ApiOutcomeUnknown):
            return None
        with session_scope(self.engine) as session:
            post = get_post(session, job.post_id)
            assert post is not None
            provider = self.providers.get(post.provider)
            target = provider_post(post)
        if provider is None:
            return None
        try:
            return provider.read(target, priority=Priority.INTERACTIVE)
        except ApiError:
            return None

    def give_up(self, job: Job, exc: BaseException) -> None:
        """A job failed for good on an unexpected error: never leave a post stuck "in progress"."""
        if job.kind != POST_ACTION or job.post_id is None:
            return
        with session_scope(self.engine) as session:
            session.execute(
                update(Post)
                .where(col(Post.id) == job.post_id, col(Post.pending_action) == job.payload.get("action"))
                .values(pending_action=None, pending_by=None, pending_since=None)
                .execution_options(synchronize_session=False)
            )
            add_audit(session, post_id=job.post_id, actor=job.payload.get("user"), action=str(job.payload.get("action")),
                      outcome="failed", detail=f"internal error: {type(exc).__name__}")
            request_ephemeral(session, channel=str(job.payload.get("channel")), user=str(job.payload.get("user")),
                              text=notices.internal_error_ephemeral(), post_id=job.post_id)
            request_thread_reply(session, job.post_id,
                                 notices.internal_error_thread(job.payload.get("user"), str(job.payload.get("action"))))
            request_card_sync(session, job.post_id)
        self.wake()

    # -- held schedules --------------------------------------------------------------------------------

    def run_hand_off(self, job: Job) -> None:
        """Job: at a held schedule's time, hand the post over (exactly once; survives restarts)."""
        with session_scope(self.engine) as session:
            post = get_post(session, job.post_id)
            if post is None or post.status != PostStatus.SCHEDULED.value or post.scheduled_at is None:
                return  # cancelled, failed or already handed over
            when = post.scheduled_at
            wanted = job.payload.get("scheduled_at")
            if isinstance(wanted, int) and abs(wanted - int(when.timestamp())) > 1:
                return  # a stale job for an earlier schedule of this post
            early = (when - self.clock()).total_seconds()
            if early > 1.0:
                raise Retry("not time yet", early)
            if post.pending_action is not None:
                raise Retry("another action is in progress (a cancel wins if it came first)", 1.0)
            # The approver who scheduled it is the one handing it over: claim it like a click would.
            post.pending_action, post.pending_by, post.pending_since = PendingAction.PUBLISH.value, post.approved_by, utcnow()
            enqueue(session, POST_ACTION, post_id=post.id, priority=3, payload={
                "action": PendingAction.PUBLISH.value, "user": post.approved_by or "", "channel": post.channel_id,
                "hand_off": True,
            })
            request_card_sync(session, post.id or 0)
        self.wake()


def _lost_hand_off(provider: Provider, action: PendingAction, exc: ApiError) -> bool:
    """A publish that may have reached a provider which can't be asked afterwards whether it did."""
    return (action is PendingAction.PUBLISH and not provider.capabilities.publish_confirmable
            and isinstance(exc, ApiUnavailable) and exc.sent)


def _allowed(provider: Provider | None, post: Post, action: PendingAction) -> tuple[str, ...]:
    if action is PendingAction.CANCEL and provider is not None:
        return tuple(s.value for s in provider.capabilities.cancellable)
    return (PostStatus.DRAFT.value,)


def _done(action: PendingAction, current: RemotePost, job: Job, old: PostContent) -> bool:
    """Whether the provider's copy shows this action (or its effect) already carried out."""
    if action is PendingAction.PUBLISH:
        return current.status is not PostStatus.DRAFT and current.status is not PostStatus.SCHEDULED
    if action is PendingAction.SCHEDULE:
        return current.status is not PostStatus.DRAFT and current.status is not PostStatus.CANCELLED
    if action is PendingAction.CANCEL:
        return current.status is PostStatus.CANCELLED
    wanted = change_of(job.payload).content
    return current.status is PostStatus.DRAFT and not wanted.changes_from(current.content) and wanted != old


def _as_remote(target: ProviderPost, **changes: Any) -> RemotePost:
    base = RemotePost(id=target.external_id, clip_id=target.clip_id, platform=target.platform, status=target.status,
                      content=target.content, scheduled_at=target.scheduled_at)
    return replace(base, **changes)

