"""What the Slack side of a change asks for: card refreshes, thread replies, ephemeral notes.

Nothing here calls Slack: state changes enqueue a `sync_card` job (one pending per post, so bursts
of changes collapse into one `chat.update` that renders the latest state) and `slack_message` jobs
for thread replies and ephemeral notes, in the same transaction as the change. `bot.services.delivery`
runs them. `card_for` builds a card's view model from the database.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session, col, select

from bot.config import Settings
from bot.domain import (
    Activity,
    Card,
    CardDetails,
    PendingAction,
    Platform,
    PostContent,
    PostStatus,
    ProviderPost,
)
from bot.jobs import enqueue
from bot.models import Approval, Post
from bot.providers.base import Provider
from bot.services.feedback import change_request_of
from bot.services.state import provider_post
from bot.slack.mrkdwn import Mrkdwn

log = logging.getLogger(__name__)

SYNC_CARD = "sync_card"
SYNC_CLIP = "sync_clip"
SLACK_MESSAGE = "slack_message"


def request_card_sync(session: Session, post_id: int) -> None:
    """Ask for the post's card to be (re)rendered; collapses with any pending request."""
    enqueue(session, SYNC_CARD, post_id=post_id, dedupe_key=f"card:{post_id}", priority=2)


def request_clip_sync(session: Session, clip_id: int) -> None:
    """Ask for the clip's message to be (re)rendered; it goes before its cards, which live in its thread."""
    enqueue(session, SYNC_CLIP, payload={"clip_id": clip_id}, dedupe_key=f"clip:{clip_id}", priority=1)


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


def approvals_of(session: Session, post_id: int | None, version: int) -> tuple[str, ...]:
    """Users who approved version `version` of a post, oldest first."""
    rows = session.exec(
        select(Approval.user_id)
        .where(Approval.post_id == post_id, Approval.content_version == version)
        .order_by(col(Approval.created_at))
    ).all()
    return tuple(rows)


def approvals_for(session: Session, post: Post) -> tuple[str, ...]:
    """Users who approved the post's current content version, oldest first."""
    return approvals_of(session, post.id, post.content_version)


def card_for(session: Session, post: Post, settings: Settings, provider: Provider | None) -> Card:
    """The Card (view model) for a post, from the database and its provider's details."""
    assert post.id is not None
    status = PostStatus.parse(post.status)
    target = provider_post(post)
    return Card(
        post_id=post.id,
        provider=post.provider,
        provider_title=provider.title if provider is not None else post.provider.title(),
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
        details=provider.card_details(target) if provider is not None else CardDetails(),
        raw_status=post.remote_status,
        compact=post.card_compact,
        can_cancel=provider is not None and status in provider.capabilities.cancellable,
        problems=_problems(provider, target.status, target),
        change_request=change_request_of(post),
        caption_by_ai=post.caption_by_ai,
        overdue_since=due_at(post, settings) if post.escalated_at is not None else None,
        last_editor=None if settings.allow_self_approval else post.last_editor,
        approvers=settings.approvers,
    )


def due_at(post: Post, settings: Settings) -> datetime | None:
    """When a decision on this draft is due (DECISION_DEADLINE after it arrived), if there is a deadline."""
    return post.created_at + settings.decision_deadline if settings.decision_deadline is not None else None


def _problems(provider: Provider | None, status: PostStatus, target: ProviderPost) -> tuple[str, ...]:
    """Publish blockers, while Greenlight still decides what goes out (a draft, or a schedule it holds)."""
    if provider is None:
        return ()
    open_draft = status is PostStatus.DRAFT or (
        status is PostStatus.SCHEDULED and provider.capabilities.schedule_held_locally
    )
    return tuple(provider.publish_problems(target)) if open_draft else ()
