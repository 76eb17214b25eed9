"""The clip as the unit of review: its row, its channel message's view model, and acting on all its drafts.

A clip's drafts (one per platform for Choppity, one per clip for Reap) are reviewed together: the
clip has one message in the review channel (summary of every platform's state, Publish all and
Schedule all), and its platform cards and its video live in that message's thread, so the channel
stays readable with many clips a day.

Publish all / Schedule all never bypass a post's own rules: the plan asks the review service, post
by post, whether this person may act on it now; the confirmation lists exactly what goes where and
when (and what is left out, and why); on confirmation each included post is requested like a click
on its own card, re-checked at that moment, and gets its own outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.db import ensure_clip, session_scope
from bot.domain import (
    BulkItem,
    ClipCard,
    ClipEntry,
    ClipInfo,
    PendingAction,
    Platform,
    PostStatus,
    PreviewState,
)
from bot.models import Clip, Post, utcnow
from bot.providers.registry import Providers
from bot.services.cards import request_clip_sync
from bot.services.feedback import change_request_of
from bot.services.previews import parse_time, request_preview
from bot.services.review import Review
from bot.services.state import provider_post
from bot.slack import notices
from bot.slack.mrkdwn import Say

log = logging.getLogger(__name__)

# Schedule all: at most this many minutes between two posts, and how far ahead the first may be.
MAX_SPACING_MINUTES = 24 * 60


@dataclass(frozen=True)
class BulkPlan:
    """What Publish all / Schedule all would do for this person now."""

    clip_id: int
    action: PendingAction
    items: tuple[BulkItem, ...]
    refusal: Say | None = None  # the whole action is refused (unknown clip…)

    @property
    def included(self) -> tuple[BulkItem, ...]:
        """The posts that would be acted on."""
        return tuple(i for i in self.items if i.included)


@dataclass(frozen=True)
class BulkOutcome:
    """What happened when the plan was confirmed: accepted posts, and refusals met on the way."""

    accepted: tuple[BulkItem, ...]
    refused: tuple[BulkItem, ...]


def register_clip(session: Session, *, provider: str, ref: str, project_id: str | None,
                  info: ClipInfo | None, preview: bool) -> Clip:
    """The clip row of a newly carded draft (created on its first draft, with its message requested,
    and its video preview when `preview`)."""
    clip, created = ensure_clip(session, Clip(provider=provider, ref=ref, project_id=project_id))
    if created:
        assert clip.id is not None
        if preview:
            request_preview(session, clip.id)
        else:
            clip.preview_state = PreviewState.OFF.value
    if info is not None and _merge_info(clip, info):
        clip.updated_at = utcnow()
        created = True
    if created:
        assert clip.id is not None
        request_clip_sync(session, clip.id)
    return clip


def _merge_info(clip: Clip, info: ClipInfo) -> bool:
    """Fill what the provider told about the clip; True when anything changed."""
    before = (clip.title, clip.duration_seconds, clip.score, clip.score_scale)
    clip.title = info.title or clip.title
    clip.duration_seconds = info.duration_seconds if info.duration_seconds is not None else clip.duration_seconds
    if info.score is not None and info.scale:
        clip.score, clip.score_scale = info.score, info.scale
    return before != (clip.title, clip.duration_seconds, clip.score, clip.score_scale)


def clip_of(session: Session, post: Post) -> Clip | None:
    """The clip row a post belongs to (None for posts carded before clips existed)."""
    return session.exec(select(Clip).where(Clip.provider == post.provider, Clip.ref == post.clip_id)).first()


def clip_posts(session: Session, clip: Clip) -> list[Post]:
    """The clip's posts, in a stable platform order."""
    rows = session.exec(
        select(Post).where(Post.provider == clip.provider, Post.clip_id == clip.ref).order_by(col(Post.id))
    ).all()
    order = {p: i for i, p in enumerate(Platform)}
    return sorted(rows, key=lambda p: (order.get(Platform(p.platform), 99), p.id or 0))


class ClipService:
    """Clip summaries and the actions on every draft of a clip."""

    def __init__(self, engine: Engine, providers: Providers, review: Review, *,
                 wake: Callable[[], None] = lambda: None, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.providers = providers
        self.review = review
        self.wake = wake
        self.clock = clock

    def card(self, session: Session, clip: Clip) -> ClipCard:
        """The clip message's view model, from the database."""
        assert clip.id is not None
        provider = self.providers.get(clip.provider)
        entries = []
        for post in clip_posts(session, clip):
            assert post.id is not None
            targets = provider.card_details(provider_post(post)).targets if provider is not None else ()
            entries.append(ClipEntry(
                post_id=post.id, platform=Platform(post.platform), status=PostStatus.parse(post.status),
                raw_status=post.remote_status,
                pending_action=PendingAction(post.pending_action) if post.pending_action else None,
                scheduled_at=post.scheduled_at, published_url=post.published_url, error=post.error,
                targets=targets, changes_requested=change_request_of(post) is not None,
            ))
        preview = clip.preview or {}
        return ClipCard(
            clip_id=clip.id, provider=clip.provider,
            provider_title=provider.title if provider is not None else clip.provider.title(),
            ref=clip.ref,
            info=ClipInfo(title=clip.title, duration_seconds=clip.duration_seconds, score=clip.score,
                          scale=clip.score_scale),
            entries=tuple(entries), preview_state=PreviewState(clip.preview_state),
            preview_note=preview.get("note"), preview_link=preview.get("link"),
            preview_expires=parse_time(preview.get("expires_at")),
        )

    def heading(self, clip_id: int) -> str:
        """A clip's name for a modal: its title, or its provider and id."""
        with session_scope(self.engine) as session:
            clip = session.get(Clip, clip_id)
            if clip is None:
                return "This clip"
            provider = self.providers.get(clip.provider)
            return clip.title or f"{provider.title if provider else clip.provider} clip {clip.ref[:12]}"

    def open_draft_count(self, clip_id: int) -> int:
        """How many of the clip's drafts nobody has acted on yet."""
        with session_scope(self.engine) as session:
            clip = session.get(Clip, clip_id)
            if clip is None:
                return 0
            return sum(1 for p in clip_posts(session, clip)
                       if p.status == PostStatus.DRAFT.value and p.pending_action is None)

    # -- Publish all / Schedule all --------------------------------------------------------------------

    def plan(self, clip_id: int, user: str, action: PendingAction, *, first_at: datetime | None = None,
             spacing: timedelta = timedelta(0), team: str | None = None) -> BulkPlan:
        """What acting on every draft of the clip would do for `user` now (no side effects)."""
        with session_scope(self.engine) as session:
            clip = session.get(Clip, clip_id)
            if clip is None:
                return BulkPlan(clip_id, action, (), refusal=notices.unknown_clip())
            # Every post of the clip is listed: what goes, and for the others why not (already
            # published, on its way, waiting for approvals…).
            posts = clip_posts(session, clip)
            for post in posts:
                session.expunge(post)
        items: list[BulkItem] = []
        slot = 0
        for post in posts:
            assert post.id is not None
            refusal = self.review.refusal(post, user, action, team=team)
            at = None
            if action is PendingAction.SCHEDULE and first_at is not None and refusal is None:
                at = first_at + slot * spacing
                slot += 1
            provider = self.providers.get(post.provider)
            targets = provider.card_details(provider_post(post)).targets if provider is not None else ()
            items.append(BulkItem(post_id=post.id, platform=Platform(post.platform), targets=targets, at=at,
                                  refusal=refusal.plain if refusal is not None else None))
        return BulkPlan(clip_id, action, tuple(items))

    def confirm(self, clip_id: int, user: str, action: PendingAction, post_ids: list[int], *, channel: str,
                first_at: datetime | None = None, spacing: timedelta = timedelta(0),
                team: str | None = None) -> BulkOutcome:
        """Act on exactly the posts the confirmation listed, at the times it listed (first, then spaced)."""
        with session_scope(self.engine) as session:
            clip = session.get(Clip, clip_id)
            posts = {p.id: p for p in clip_posts(session, clip)} if clip is not None else {}
        items = []
        for index, post_id in enumerate(post_ids):
            post = posts.get(post_id)
            if post is None:
                continue  # not a post of this clip (a forged or stale list): never acted on
            at = first_at + index * spacing if action is PendingAction.SCHEDULE and first_at is not None else None
            items.append(BulkItem(post_id=post_id, platform=Platform(post.platform), at=at))
        return self.run(BulkPlan(clip_id, action, tuple(items)), user, channel=channel, team=team)

    def run(self, plan: BulkPlan, user: str, *, channel: str, team: str | None = None) -> BulkOutcome:
        """Request every included post of a confirmed plan; each is re-checked now and acted on alone."""
        accepted: list[BulkItem] = []
        refused: list[BulkItem] = []
        for item in plan.included:
            payload = {"scheduled_at": int(item.at.timestamp())} if item.at is not None else None
            result = self.review.request(item.post_id, user, plan.action, channel=channel, payload=payload, team=team)
            if result.accepted:
                accepted.append(item)
            else:
                reason = result.message.plain if result.message is not None else "it was refused"
                refused.append(BulkItem(item.post_id, item.platform, item.targets, item.at, refusal=reason))
        if accepted:
            with session_scope(self.engine) as session:
                request_clip_sync(session, plan.clip_id)
            self.wake()
        log.info("%s all on clip %s by %s: %s accepted, %s refused", plan.action.value, plan.clip_id, user,
                 len(accepted), len(refused))
        return BulkOutcome(tuple(accepted), tuple(refused))
