"""Read-only overviews: the `/greenlight queue` list and the App Home tab.

Both must stay fast with thousands of posts: each group is one COUNT and one bounded SELECT, the
approval counts of the listed posts are one grouped query, and links to cards are computed locally
from the workspace URL (`auth.test`, asked once) instead of one `chat.getPermalink` per post.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, and_, case, func, literal, or_
from sqlmodel import Session, col, select

from bot.config import Settings
from bot.db import session_scope
from bot.domain import Platform, PostContent, PostStatus
from bot.models import Approval, Post, utcnow
from bot.services.feedback import change_request_of
from bot.services.identity import SlackIdentity
from bot.slack.home import HOME_ITEMS_PER_GROUP, QUEUE_ITEMS_PER_GROUP, QueueGroup, QueueItem, headline

log = logging.getLogger(__name__)

IN_FLIGHT = (PostStatus.QUEUED.value, PostStatus.PROCESSING.value, PostStatus.UPLOADING.value)


def permalink(workspace_url: str, channel: str, ts: str, thread_ts: str | None = None) -> str:
    """Slack's permalink of a message: `https://<workspace>.slack.com/archives/<channel>/p<ts digits>`,
    with the thread named for a reply (as chat.getPermalink gives it)."""
    link = f"{workspace_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"
    return f"{link}?thread_ts={thread_ts}&cid={channel}" if thread_ts else link


class Overview:
    """Builds overview groups from the database, with links to each card."""

    def __init__(self, engine: Engine, settings: Settings, identity: SlackIdentity, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.settings = settings
        self.identity = identity
        self.clock = clock

    def workspace_url(self) -> str | None:
        """The workspace's base URL (auth.test, cached); None while Slack can't say: no links then."""
        known = self.identity.get()
        return known.url if known else None

    def _overdue(self) -> ColumnElement[bool] | None:
        """Drafts past the decision deadline (marked by the reminders loop, or due by now)."""
        deadline = self.settings.decision_deadline
        if deadline is None:
            return None
        return and_(col(Post.status) == PostStatus.DRAFT.value,
                    or_(col(Post.escalated_at).is_not(None), col(Post.created_at) <= self.clock() - deadline))

    def _group(
        self,
        session: Session,
        statuses: tuple[str, ...],
        *,
        limit: int,
        newest_first: bool = False,
        since_days: int | None = None,
        workspace: str | None,
        changes: bool | None = None,
    ) -> QueueGroup:
        where: list[ColumnElement[bool]] = [col(Post.status).in_(statuses)]
        if since_days is not None:
            where.append(col(Post.updated_at) > utcnow() - timedelta(days=since_days))
        if changes is not None:
            requested = col(Post.changes_requested_by)
            where.append(requested.is_not(None) if changes else requested.is_(None))
        overdue = self._overdue()
        # The true total and how many are overdue, in one query.
        overdue_count = func.sum(case((overdue, 1), else_=0)) if overdue is not None else literal(0)
        total, late = session.exec(select(func.count(), overdue_count).select_from(Post).where(*where)).one()
        if not total:
            return QueueGroup([], 0)
        order = col(Post.updated_at).desc() if newest_first else col(Post.created_at)
        rows = list(session.exec(select(Post).where(*where).order_by(order, col(Post.id)).limit(limit)).all())
        counts = self._approval_counts(session, rows)
        cutoff = self.clock() - self.settings.decision_deadline if self.settings.decision_deadline else None
        items = [self._item(post, counts, workspace, cutoff) for post in rows]
        return QueueGroup(items, int(total), int(late or 0))

    def _item(self, post: Post, counts: dict[int, int], workspace: str | None, cutoff: datetime | None) -> QueueItem:
        status = PostStatus.parse(post.status)
        when = post.scheduled_at if status == PostStatus.SCHEDULED else (post.published_at or post.updated_at)
        link = (
            permalink(workspace, post.channel_id, post.message_ts, post.thread_ts)
            if workspace and post.channel_id and post.message_ts
            else None
        )
        overdue = status is PostStatus.DRAFT and cutoff is not None and (
            post.escalated_at is not None or post.created_at <= cutoff
        )
        return QueueItem(
            post_id=post.id or 0,
            platform=Platform(post.platform),
            headline=headline(PostContent.from_dict(post.content)),
            status=status,
            permalink=link,
            when=when,
            approvals=counts.get(post.id or 0, 0),
            required=self.settings.required_approvals,
            overdue=overdue,
            changes=change_request_of(post),
        )

    def _approval_counts(self, session: Session, rows: list[Post]) -> dict[int, int]:
        """Approvals of each listed post's current version, in one query."""
        if self.settings.required_approvals <= 1 or not rows:
            return {}
        versions = {post.id: post.content_version for post in rows}
        found = session.exec(
            select(Approval.post_id, Approval.content_version, func.count())
            .where(col(Approval.post_id).in_(list(versions)))
            .group_by(col(Approval.post_id), col(Approval.content_version))
        ).all()
        return {post_id: n for post_id, version, n in found if versions.get(post_id) == version}

    def queue(self) -> tuple[QueueGroup, QueueGroup, QueueGroup]:
        """Drafts waiting for approval, drafts sent back for changes, and scheduled posts."""
        workspace = self.workspace_url()
        draft = (PostStatus.DRAFT.value,)
        with session_scope(self.engine) as session:
            waiting = self._group(session, draft, limit=QUEUE_ITEMS_PER_GROUP, workspace=workspace, changes=False)
            changes = self._group(session, draft, limit=QUEUE_ITEMS_PER_GROUP, workspace=workspace, changes=True)
            scheduled = self._group(session, (PostStatus.SCHEDULED.value,), limit=QUEUE_ITEMS_PER_GROUP, workspace=workspace)
        return waiting, changes, scheduled

    def home(self) -> HomeGroups:
        """Waiting, changes requested, scheduled, publishing now, recently published and recently failed."""
        workspace = self.workspace_url()
        limit = HOME_ITEMS_PER_GROUP
        draft = (PostStatus.DRAFT.value,)
        with session_scope(self.engine) as session:
            return HomeGroups(
                waiting=self._group(session, draft, limit=limit, workspace=workspace, changes=False),
                changes=self._group(session, draft, limit=limit, workspace=workspace, changes=True),
                scheduled=self._group(session, (PostStatus.SCHEDULED.value,), limit=limit, workspace=workspace),
                in_flight=self._group(session, IN_FLIGHT, limit=limit, workspace=workspace),
                published=self._group(session, (PostStatus.PUBLISHED.value,), limit=limit, newest_first=True,
                                      since_days=7, workspace=workspace),
                failed=self._group(session, (PostStatus.FAILED.value,), limit=limit, newest_first=True, since_days=7,
                                   workspace=workspace),
            )


@dataclass(frozen=True)
class HomeGroups:
    """The App Home tab's groups."""

    waiting: QueueGroup
    changes: QueueGroup
    scheduled: QueueGroup
    in_flight: QueueGroup
    published: QueueGroup
    failed: QueueGroup
