"""Use cases on posts: card new drafts, accept clicks, and carry them out against the provider.

A click never calls the provider directly. `request()` checks who is asking, flips the post into
"<action> in progress" with a compare-and-set UPDATE and writes the job, all in one transaction,
before Slack is acknowledged. The job (`run_action`) then calls the provider; a publish that may
have reached the provider but got no answer is re-read before any second attempt, never re-sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot import failpoints
from bot.config import Settings
from bot.db import add_audit, claim_post_action, find_post, get_post, insert_post_if_new, session_scope
from bot.domain import (
    Activity,
    ActivityKind,
    ClipListing,
    PendingAction,
    Platform,
    PostContent,
    PostStatus,
    RemotePost,
)
from bot.jobs import Retry, enqueue
from bot.models import Approval, Job, Post, utcnow
from bot.providers.budget import BudgetExhausted, Priority
from bot.providers.errors import (
    ApiBadRequest,
    ApiError,
    ApiNotFound,
    ApiRateLimited,
    ApiRejected,
    ApiUnavailable,
)
from bot.services.access import ApproverLookupFailed, Approvers
from bot.services.cards import approvals_for, request_card_sync, request_ephemeral, request_thread_reply
from bot.slack import notices
from bot.slack.mrkdwn import Mrkdwn, Say, code, fmt

log = logging.getLogger(__name__)

POST_ACTION = "post_action"
REFRESH_POST = "refresh_post"
# A publish whose outcome is unknown is re-read this many times before we give up and say so.
MAX_ACTION_ATTEMPTS = 6

# Every provider takes publish, schedule and edit only on drafts; what can still be cancelled is the
# provider's own rule (`PostProvider.cancellable`).
DRAFT_ONLY: tuple[str, ...] = (PostStatus.DRAFT.value,)



class PostProvider(Protocol):
    """What the service needs from a provider client (Choppity today)."""

    provider: str
    # Statuses from which the provider can still cancel a post (Choppity: draft, scheduled, queued).
    cancellable: frozenset[PostStatus]

    def list_clip_posts(self, clip_id: str, *, priority: Priority = ...) -> ClipListing: ...

    def get_post(self, post_id: str, *, priority: Priority = ...) -> RemotePost: ...

    def update_post(self, post_id: str, changes: dict[str, Any]) -> RemotePost: ...

    def publish_post(self, post_id: str, scheduled_at: datetime | None = None) -> RemotePost: ...

    def cancel_post(self, post_id: str) -> RemotePost: ...


@dataclass
class ActionResult:
    """Whether an action was accepted, and if not, what to tell the person who asked."""

    accepted: bool
    message: Say | None = None


@dataclass
class ImportSummary:
    """Outcome of `/greenlight clip <id>` or a draft webhook."""

    clip_id: str
    carded: list[RemotePost] = field(default_factory=list)
    already: list[RemotePost] = field(default_factory=list)
    not_drafts: list[RemotePost] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    # Greenlight ids of the posts carded by this import (to wait for their cards).
    new_post_ids: list[int] = field(default_factory=list)

    def text(self, *, shown: int | None = None, failed: int = 0) -> Mrkdwn:
        """The ephemeral summary; `shown`/`failed` count the cards Slack really accepted, once known."""
        clip = code(self.clip_id)
        lines: list[Mrkdwn] = []
        n = len(self.carded)
        if n:
            platforms = ", ".join(p.platform.label for p in self.carded)
            posted = n if shown is None else shown
            if posted == n:
                lines.append(fmt("Posted {n} draft{s} for clip {clip} ({platforms}).", n=n, s="s" if n != 1 else "",
                                 clip=clip, platforms=platforms))
            else:
                lines.append(fmt("Posted {posted} of {n} drafts for clip {clip} ({platforms}).", posted=posted, n=n,
                                 clip=clip, platforms=platforms))
            if failed:
                lines.append(fmt("⚠️ {failed} draft(s) couldn't be shown in Slack; the channel has a note saying which.",
                                 failed=failed))
            if shown is not None and posted + failed < n:
                lines.append(fmt("{left} card(s) are still on their way (Slack is pacing new messages).",
                                 left=n - posted - failed))
        elif self.already:
            lines.append(fmt("Nothing new for clip {clip}: every draft already has a card.", clip=clip))
        else:
            lines.append(fmt("Clip {clip} has no drafts to review.", clip=clip))
        if n and self.already:
            lines.append(fmt("{k} draft(s) already had a card.", k=len(self.already)))
        for post in self.not_drafts:
            word = post.raw_status if post.status is PostStatus.UNKNOWN and post.raw_status else post.status.value
            lines.append(fmt("• {platform}: {status} (not a draft, no card)", platform=post.platform.label, status=word))
        for reason in self.unreadable:
            lines.append(fmt("• Skipped {reason}.", reason=reason))
        return Mrkdwn("\n").join(lines)


def describe_changes(old: PostContent, new: PostContent) -> str:
    """Field-level summary of an edit, for the audit log and the thread."""
    parts: list[str] = []
    if new.caption != old.caption:
        parts.append(f"caption ({len(old.caption)} → {len(new.caption)} chars)")
    if new.title != old.title:
        parts.append("title")
    if new.youtube != old.youtube:
        parts.append("category")
    if new.tiktok is not None and old.tiktok is not None and new.tiktok != old.tiktok:
        changed = [k for k, v in new.tiktok.to_dict().items() if old.tiktok.to_dict().get(k) != v]
        parts.append("TikTok " + ", ".join(k.replace("_", " ") for k in changed))
    return ", ".join(parts) or "no changes"


def apply_remote(post: Post, remote: RemotePost, *, ours: bool = False) -> bool:
    """Copy the provider's view onto our row. True if anything changed.

    Terminal states never move back, and a re-read never moves a post backwards along the publish
    pipeline (a stale read can't turn "uploading" into "queued"); an UNKNOWN status is shown as the
    provider says it. Content that changed at the provider (someone edited the draft there) is a
    new version: the approvals given so far no longer apply. `ours=True` when the change is our
    own edit job's result, which versions the content itself.
    """
    before = (post.status, post.remote_status, post.content, post.scheduled_at, post.published_url, post.error)
    current = PostStatus.parse(post.status)
    incoming = remote.status
    moves = not current.is_terminal and (
        current.rank is None or incoming.rank is None or incoming.rank >= current.rank
    )
    if moves:
        post.status = incoming.value
        post.remote_status = remote.raw_status if incoming is PostStatus.UNKNOWN else None
    if not current.is_terminal or current == incoming:
        new_content = remote.content.to_dict()
        if not ours and post.content and new_content != post.content and current == PostStatus.DRAFT:
            post.content_version += 1
            post.last_editor = None
            post.activity = Activity(ActivityKind.EDITED_AT_PROVIDER).to_dict()
        post.content = new_content
        post.scheduled_at = remote.scheduled_at or post.scheduled_at
        post.published_at = remote.published_at or post.published_at
        post.published_url = remote.published_url or post.published_url
        post.error = remote.error or post.error
    post.remote_checked_at = utcnow()
    changed = before != (post.status, post.remote_status, post.content, post.scheduled_at, post.published_url, post.error)
    if changed:
        post.updated_at = utcnow()
    return changed


def outcome_reply(post: Post) -> Mrkdwn | None:
    """The thread line recording a terminal, scheduled or under-way outcome."""
    status = PostStatus.parse(post.status)
    platform = Platform(post.platform)
    if status == PostStatus.PUBLISHED:
        return notices.published(platform, post.published_url)
    if status == PostStatus.FAILED:
        return notices.publish_failed(platform, post.error, post.approved_by)
    if status == PostStatus.SCHEDULED and post.scheduled_at:
        return notices.scheduled(post.scheduled_at, None)
    if status == PostStatus.CANCELLED:
        return notices.cancelled(post.cancelled_by, None)
    return None


class PostService:
    """Card drafts, accept actions, run them."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        providers: dict[str, PostProvider],
        approvers: Approvers,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.providers = providers
        self.approvers = approvers
        self.wake = wake

    def handlers(self) -> dict[str, Callable[..., None]]:
        """Job kind -> handler."""
        return {POST_ACTION: self.run_action, REFRESH_POST: self.refresh}

    def provider_for(self, post: Post) -> PostProvider:
        """The client serving this post's provider."""
        try:
            return self.providers[post.provider]
        except KeyError:
            raise ApiUnavailable(
                f"{post.provider.title()} is not configured on this Greenlight", provider=post.provider
            ) from None

    # -- drafts -------------------------------------------------------------------------------

    def import_clip(self, provider: str, clip_id: str, *, actor: str | None = None) -> ImportSummary:
        """Card every draft of a clip that has no card yet (idempotent)."""
        listing = self.providers[provider].list_clip_posts(clip_id)
        summary = self.card_posts(provider, clip_id, listing.posts, actor=actor)
        summary.unreadable.extend(listing.unreadable)
        return summary

    def card_outcomes(self, post_ids: list[int]) -> tuple[int, int]:
        """How many of these posts have a card in Slack, and how many Slack refused outright."""
        if not post_ids:
            return 0, 0
        with session_scope(self.engine) as session:
            rows = session.exec(
                select(Post.message_ts, Post.card_error).where(col(Post.id).in_(post_ids))
            ).all()
        shown = sum(1 for ts, _ in rows if ts is not None)
        failed = sum(1 for ts, error in rows if ts is None and error is not None)
        return shown, failed

    def card_posts(
        self, provider: str, clip_id: str, remote_posts: list[RemotePost], *, actor: str | None = None
    ) -> ImportSummary:
        """Create rows and cards for drafts; refresh rows we already track."""
        summary = ImportSummary(clip_id=clip_id)
        with session_scope(self.engine) as session:
            for remote in remote_posts:
                existing = find_post(session, provider=provider, external_id=remote.id)
                if existing is not None:
                    if apply_remote(existing, remote):
                        request_card_sync(session, existing.id)  # type: ignore[arg-type]
                    (summary.already if remote.status == PostStatus.DRAFT else summary.not_drafts).append(remote)
                    continue
                if remote.status != PostStatus.DRAFT:
                    summary.not_drafts.append(remote)
                    continue
                row = Post(
                    provider=provider,
                    external_id=remote.id,
                    clip_id=remote.clip_id or clip_id,
                    platform=remote.platform.value,
                    status=remote.status.value,
                    content=remote.content.to_dict(),
                    channel_id=self.settings.slack_channel_id,
                    remote_checked_at=utcnow(),
                )
                if insert_post_if_new(session, row):
                    assert row.id is not None
                    add_audit(session, post_id=row.id, actor=actor, action="carded", outcome="ok", detail=remote.id)
                    request_card_sync(session, row.id)
                    summary.carded.append(remote)
                    summary.new_post_ids.append(row.id)
                else:
                    summary.already.append(remote)
        self.wake()
        return summary

    def refresh_for_edit(self, post_id: int) -> Post:
        """Re-read a post from its provider (never trust a stale copy) and return our row."""
        with session_scope(self.engine) as session:
            post = get_post(session, post_id)
            if post is None:
                raise LookupError(post_id)
            provider = self.provider_for(post)
            external_id = post.external_id
        remote = provider.get_post(external_id)
        with session_scope(self.engine) as session:
            post = get_post(session, post_id)
            assert post is not None
            if apply_remote(post, remote):
                request_card_sync(session, post_id)
            session.flush()
            session.expunge(post)
        self.wake()
        return post

    # -- accepting actions ---------------------------------------------------------------------

    def request(
        self,
        post_id: int,
        user: str,
        action: PendingAction,
        *,
        channel: str,
        payload: dict[str, Any] | None = None,
    ) -> ActionResult:
        """Accept (or refuse) a person's action; when accepted, the job is durably queued."""
        if action != PendingAction.EDIT or not self.settings.editors_can_edit:
            refusal = self.refuse_non_approver(post_id, user, action)
            if refusal:
                return ActionResult(False, refusal)
        with session_scope(self.engine) as session:
            post = get_post(session, post_id)
            if post is None:
                return ActionResult(False, notices.unknown_post())
            if action in (PendingAction.PUBLISH, PendingAction.SCHEDULE) and self.settings.required_approvals > 1:
                have = approvals_for(session, post)
                if len(have) < self.settings.required_approvals and post.pending_action is None:
                    return ActionResult(
                        False, notices.needs_approvals(action, len(have), self.settings.required_approvals)
                    )
            if not claim_post_action(
                session, post_id=post_id, action=action.value, user=user, allowed_statuses=self.allowed_from(post, action)
            ):
                session.refresh(post)
                request_card_sync(session, post_id)  # the card may be showing stale buttons
                return ActionResult(False, self.why_not(post, action))
            job_payload = {"action": action.value, "user": user, "channel": channel, **(payload or {})}
            enqueue(session, POST_ACTION, post_id=post_id, payload=job_payload, priority=3)
            add_audit(session, post_id=post_id, actor=user, action=action.value, outcome="requested")
            request_card_sync(session, post_id)
        self.wake()
        return ActionResult(True)

    def approve(self, post_id: int, user: str, *, channel: str) -> ActionResult:
        """Record one approval of the current version (several may be required)."""
        refusal = self.refuse_non_approver(post_id, user, "approve")
        if refusal:
            return ActionResult(False, refusal)
        with session_scope(self.engine) as session:
            post = get_post(session, post_id)
            if post is None:
                return ActionResult(False, notices.unknown_post())
            if post.status != PostStatus.DRAFT or post.pending_action is not None:
                return ActionResult(False, self.why_not(post, PendingAction.PUBLISH))
            if post.last_editor == user and not self.settings.allow_self_approval:
                add_audit(session, post_id=post_id, actor=user, action="approve", outcome="denied", detail="self-approval")
                return ActionResult(False, notices.self_approval())
            if user in approvals_for(session, post):
                return ActionResult(False, notices.already_approved())
            try:
                with session.begin_nested():
                    session.add(Approval(post_id=post_id, user_id=user, content_version=post.content_version))
                    session.flush()
            except IntegrityError:
                # A double-click raced us; the unique constraint counts each person once.
                return ActionResult(False, notices.already_approved())
            add_audit(session, post_id=post_id, actor=user, action="approve", outcome="ok", detail=f"v{post.content_version}")
            count = len(approvals_for(session, post))
            need = self.settings.required_approvals
            post.activity = Activity(ActivityKind.APPROVED, actor=user, count=count, of=need).to_dict()
            request_thread_reply(session, post_id, notices.approved(user, count, need))
            request_card_sync(session, post_id)
        self.wake()
        return ActionResult(True)

    def refuse_non_approver(self, post_id: int, user: str, action: str) -> Say | None:
        """Why `user` may not `action` this post (audited as denied), or None when they may."""
        try:
            if self.approvers.is_approver(user):
                return None
            refusal = notices.not_an_approver(action, self.approvers.describe())
        except ApproverLookupFailed:
            refusal = notices.approver_check_failed()
        with session_scope(self.engine) as session:
            add_audit(session, post_id=post_id, actor=user, action=str(action), outcome="denied", detail=refusal.plain[:500])
        return refusal

    def cancellable(self, post: Post) -> frozenset[PostStatus]:
        """Statuses from which this post's provider can still cancel it."""
        provider = self.providers.get(post.provider)
        return provider.cancellable if provider is not None else frozenset()

    def allowed_from(self, post: Post, action: PendingAction) -> tuple[str, ...]:
        """Statuses in which `action` may start on this post."""
        if action is PendingAction.CANCEL:
            return tuple(sorted(s.value for s in self.cancellable(post)))
        return DRAFT_ONLY

    def can_start(self, post: Post, action: PendingAction) -> bool:
        """Whether `action` could start on this post now (no other action in flight, right status)."""
        return post.pending_action is None and post.status in self.allowed_from(post, action)

    def why_not(self, post: Post, action: PendingAction) -> Say:
        """Why `action` isn't possible on this post right now."""
        return notices.why_not(
            action,
            status=PostStatus.parse(post.status),
            pending=PendingAction(post.pending_action) if post.pending_action else None,
            pending_by=post.pending_by,
            error=post.error,
            raw_status=post.remote_status,
            can_cancel=PostStatus.parse(post.status) in self.cancellable(post),
            provider=post.provider.title(),
        )

    # -- running actions (job handler) ---------------------------------------------------------

    def run_action(self, job: Any) -> None:
        """Carry out an accepted action against the provider, exactly once.

        No provider action is ever blindly repeated: when an earlier attempt may have reached the
        provider (its answer was lost, it timed out, the process died, or saving the outcome
        failed), the post is re-read first and the action completed from what is found.
        """
        action = PendingAction(job.payload["action"])
        user = str(job.payload["user"])
        with session_scope(self.engine) as session:
            post = get_post(session, job.post_id)
            if post is None or post.pending_action != action.value or post.pending_by != user:
                return  # finished already (crash after commit, before the job was marked done)
            provider = self.provider_for(post)
            external_id = post.external_id
            old_content = PostContent.from_dict(post.content)
            allowed = self.allowed_from(post, action)
        try:
            failpoints.hit("before_provider_call")
            remote = self._attempt(provider, action, external_id, job, old_content, allowed)
            failpoints.hit("after_provider_call")
        except BudgetExhausted as exc:
            raise Retry("rate budget exhausted", exc.wait) from exc
        except ApiRateLimited as exc:
            if job.attempts < MAX_ACTION_ATTEMPTS:
                raise Retry("provider rate limited", exc.retry_after) from exc
            self._fail(job, action, user, exc)
            return
        except ApiUnavailable as exc:
            if job.attempts < MAX_ACTION_ATTEMPTS:
                delay = min(30.0, 1.5 * 2 ** (job.attempts - 1))
                if exc.sent:
                    if not job.payload.get("outcome_unknown"):
                        self._note_unknown(job, action, user, exc)
                    # The request may still be in flight at the provider: give it a client timeout
                    # to land before re-reading, so a slow provider isn't asked twice.
                    delay = max(delay, self.settings.http_timeout_seconds)
                raise Retry(exc.user_message, delay) from exc
            self._fail(job, action, user, exc)
            return
        except ApiRejected as exc:
            # After an attempt that may have reached the provider, "no" can mean "already done":
            # that attempt did it. On a first attempt a refusal is just a refusal.
            maybe_done = job.attempts > 1 or job.payload.get("outcome_unknown")
            confirmed = self._confirmed(provider, action, external_id, job, old_content) if maybe_done else None
            if confirmed is None:
                self._fail(job, action, user, exc)
                return
            remote = confirmed
        self._succeed(job, action, user, remote, old_content)

    def _note_unknown(self, job: Any, action: PendingAction, user: str, exc: ApiUnavailable) -> None:
        """Record (once) that the outcome is unknown: later attempts re-read before anything else."""
        job.payload = {**job.payload, "outcome_unknown": True}
        with session_scope(self.engine) as session:
            session.execute(
                update(Job).where(col(Job.id) == job.id).values(payload=job.payload)
                .execution_options(synchronize_session=False)
            )
            add_audit(session, post_id=job.post_id, actor=user, action=action.value, outcome="unknown",
                      detail=exc.user_message)

    def _attempt(
        self, provider: PostProvider, action: PendingAction, external_id: str, job: Any, old: PostContent,
        allowed: tuple[str, ...],
    ) -> RemotePost:
        if job.attempts > 1 or job.payload.get("outcome_unknown"):
            # An earlier attempt may have reached the provider: ask before doing anything again.
            current = provider.get_post(external_id)
            if self._done(action, current, job, old):
                return current
            if current.status.value not in allowed:
                raise ApiBadRequest(
                    f"It is {current.raw_status or current.status.value} now, so it can't be {notices.VERB_ED[action]}.",
                    provider=provider.provider,
                )
        return self._call(provider, action, external_id, job, old)

    def _confirmed(
        self, provider: PostProvider, action: PendingAction, external_id: str, job: Any, old: PostContent
    ) -> RemotePost | None:
        """The post as the provider has it, if that shows the action already done; else None."""
        try:
            current = provider.get_post(external_id)
        except ApiError:
            return None
        return current if self._done(action, current, job, old) else None

    @staticmethod
    def _done(action: PendingAction, current: RemotePost, job: Any, old: PostContent) -> bool:
        """Whether the provider's copy shows this action (or its effect) already carried out."""
        if action is PendingAction.PUBLISH:
            return current.status is not PostStatus.DRAFT
        if action is PendingAction.SCHEDULE:
            return current.status is not PostStatus.DRAFT and current.status is not PostStatus.CANCELLED
        if action is PendingAction.CANCEL:
            return current.status is PostStatus.CANCELLED
        wanted = PostContent.from_dict(job.payload["content"])
        return current.status is PostStatus.DRAFT and not wanted.changes_from(current.content) and (
            wanted != old or not job.payload.get("provider_changes")
        )

    def _call(
        self, provider: PostProvider, action: PendingAction, external_id: str, job: Any, old: PostContent
    ) -> RemotePost:
        if action in (PendingAction.PUBLISH, PendingAction.SCHEDULE):
            when = None
            if action == PendingAction.SCHEDULE:
                when = datetime.fromtimestamp(int(job.payload["scheduled_at"]), tz=UTC)
            return provider.publish_post(external_id, when)
        if action == PendingAction.CANCEL:
            return provider.cancel_post(external_id)
        new = PostContent.from_dict(job.payload["content"])
        changes = new.changes_from(old)
        # Providers with settings beyond PostContent (Reap: tags, targets) pass them alongside.
        changes.update(job.payload.get("provider_changes") or {})
        if not changes:
            return provider.get_post(external_id)
        return provider.update_post(external_id, changes)

    def _succeed(self, job: Any, action: PendingAction, user: str, remote: RemotePost, old: PostContent) -> None:
        now = utcnow()
        with session_scope(self.engine) as session:
            post = get_post(session, job.post_id)
            assert post is not None
            apply_remote(post, remote, ours=True)
            post.pending_action = post.pending_by = None
            post.pending_since = None
            detail = remote.status.value
            reply: Mrkdwn | None = None
            if action in (PendingAction.PUBLISH, PendingAction.SCHEDULE):
                post.approved_by, post.approved_at = user, now
                if remote.status == PostStatus.SCHEDULED:
                    post.activity = Activity(ActivityKind.SCHEDULED, actor=user).to_dict()
                    reply = notices.scheduled(post.scheduled_at, user)
                else:
                    post.activity = Activity(ActivityKind.PUBLISH_APPROVED, actor=user).to_dict()
                    reply = notices.handed_over(user, post.provider.title(), remote.status)
            elif action == PendingAction.CANCEL:
                reason = job.payload.get("reason")
                reason = str(reason) if reason else None
                post.cancelled_by = user
                post.cancel_reason = reason
                post.activity = Activity(ActivityKind.CANCELLED, actor=user).to_dict()
                reply = notices.cancelled(user, reason)
                detail = f"cancelled; reason: {reason}" if reason else "cancelled"
            else:
                new = remote.content
                summary = describe_changes(old, new)
                detail = summary
                if new != old:
                    post.content_version += 1
                    post.last_editor = user
                    post.activity = Activity(ActivityKind.EDITED, actor=user).to_dict()
                    reset = self.settings.required_approvals > 1 and approvals_for_version(
                        session, post.id, post.content_version - 1
                    )
                    reply = notices.edited(user, summary, approvals_reset=reset)
            add_audit(session, post_id=post.id, actor=user, action=action.value, outcome="ok", detail=detail)
            if reply:
                request_thread_reply(session, job.post_id, reply)
            request_card_sync(session, job.post_id)
        self.wake()

    def _fail(self, job: Any, action: PendingAction, user: str, err: ApiError) -> None:
        """Release the post, tell the person in plain words, and correct the card from the truth."""
        remote: RemotePost | None = None
        with session_scope(self.engine) as session:
            post = get_post(session, job.post_id)
            assert post is not None
            provider = self.providers.get(post.provider)
            external_id = post.external_id
        if provider is not None and not isinstance(err, ApiNotFound):
            try:
                remote = provider.get_post(external_id)
            except ApiError:
                remote = None
        with session_scope(self.engine) as session:
            post = get_post(session, job.post_id)
            assert post is not None
            status_before = post.status
            if remote is not None:
                apply_remote(post, remote)
            post.pending_action = post.pending_by = None
            post.pending_since = None
            add_audit(session, post_id=post.id, actor=user, action=action.value, outcome="failed", detail=err.user_message)
            # Say where the post stands when that is why the action failed (it moved on meanwhile).
            now_status = PostStatus.parse(post.status) if post.status != status_before else None
            text = notices.action_failed_ephemeral(
                action, Platform(post.platform), err.user_message, now=now_status, provider=post.provider.title()
            )
            request_ephemeral(session, channel=str(job.payload.get("channel") or post.channel_id), user=user, text=text, post_id=post.id)
            request_thread_reply(session, job.post_id, notices.action_failed_thread(user, action, err.user_message))
            request_card_sync(session, job.post_id)
        self.wake()

    def give_up(self, job: Any, exc: BaseException) -> None:
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
            request_ephemeral(
                session, channel=str(job.payload.get("channel")), user=str(job.payload.get("user")),
                text=notices.internal_error_ephemeral(), post_id=job.post_id,
            )
            request_thread_reply(
                session, job.post_id,
                notices.internal_error_thread(job.payload.get("user"), str(job.payload.get("action"))),
            )
            request_card_sync(session, job.post_id)
        self.wake()

    # -- refresh (webhooks, reconciler) -------------------------------------------------------

    def refresh(self, job: Any) -> None:
        """Job handler: re-read one post (reconciler) and bring its card up to date."""
        self.refresh_post(
            job.post_id,
            source=str(job.payload.get("source", "reconcile")),
            priority=Priority(job.payload.get("priority", Priority.BACKGROUND.value)),
        )

    def refresh_post(self, post_id: int, *, source: str, priority: Priority = Priority.BACKGROUND) -> None:
        """Re-read a post from its provider (the truth) and apply it; rate limits become a Retry.

        A post the provider no longer knows is logged and left alone; other API errors propagate
        for the calling job to retry.
        """
        with session_scope(self.engine) as session:
            post = get_post(session, post_id)
            if post is None:
                return
            provider = self.provider_for(post)
            external_id = post.external_id
        try:
            remote = provider.get_post(external_id, priority=priority)
        except BudgetExhausted as exc:
            raise Retry("rate budget exhausted", exc.wait) from exc
        except ApiRateLimited as exc:
            raise Retry("provider rate limited", exc.retry_after) from exc
        except ApiNotFound:
            log.warning("post %s (%s) no longer exists at the provider", post_id, external_id)
            return
        self.apply_remote_update(post_id, remote, source=source)

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
                reply = outcome_reply(post)
                if reply and post.status != PostStatus.CANCELLED:
                    request_thread_reply(session, post_id, reply)
            request_card_sync(session, post_id)
        self.wake()


def approvals_for_version(session: Session, post_id: int | None, version: int) -> bool:
    """Whether any approval exists for that content version."""
    return session.exec(
        select(Approval.id).where(Approval.post_id == post_id, Approval.content_version == version)
    ).first() is not None
