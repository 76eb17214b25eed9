"""Read-only overviews: the `/greenlight queue` list and the App Home tab."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine
from sqlmodel import col, select

from bot.config import Settings
from bot.db import session_scope
from bot.domain import Platform, PostContent, PostStatus
from bot.models import Approval, Post, utcnow
from bot.slack.home import QueueItem

log = logging.getLogger(__name__)


class Overview:
    """Builds queue items from the database, with permalinks to each card."""

    def __init__(self, engine: Engine, settings: Settings, slack: WebClient) -> None:
        self.engine = engine
        self.settings = settings
        self.slack = slack
        self._permalinks: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def permalink(self, channel: str | None, ts: str | None) -> str | None:
        """chat.getPermalink, cached (permalinks never change)."""
        if not channel or not ts:
            return None
        with self._lock:
            hit = self._permalinks.get((channel, ts))
        if hit:
            return hit
        try:
            link = str(self.slack.chat_getPermalink(channel=channel, message_ts=ts)["permalink"])
        except SlackApiError as err:
            log.warning("chat.getPermalink failed: %s", err.response.get("error"))
            return None
        with self._lock:
            self._permalinks[(channel, ts)] = link
        return link

    def _items(self, statuses: tuple[str, ...], *, limit: int, order_desc: bool = False, since_days: int | None = None,
               with_links: bool = True) -> list[QueueItem]:
        with session_scope(self.engine) as session:
            query = select(Post).where(col(Post.status).in_(statuses), col(Post.message_ts).is_not(None))
            if since_days is not None:
                query = query.where(col(Post.updated_at) > utcnow() - timedelta(days=since_days))
            order = col(Post.updated_at).desc() if order_desc else col(Post.created_at)
            rows = session.exec(query.order_by(order).limit(limit)).all()
            counts: dict[int, int] = {}
            for post in rows:
                counts[post.id or 0] = len(
                    session.exec(
                        select(Approval.id).where(Approval.post_id == post.id, Approval.content_version == post.content_version)
                    ).all()
                )
            items: list[QueueItem] = []
            for post in rows:
                content = PostContent.from_dict(post.content)
                headline = (content.title or content.caption or "").replace("\n", " ")
                when = post.scheduled_at if post.status == PostStatus.SCHEDULED else (post.published_at or post.updated_at)
                items.append(
                    QueueItem(
                        post_id=post.id or 0,
                        platform=Platform(post.platform),
                        headline=headline[:80],
                        status=PostStatus(post.status),
                        permalink=self.permalink(post.channel_id, post.message_ts) if with_links else None,
                        when=when,
                        approvals=counts.get(post.id or 0, 0),
                        required=self.settings.required_approvals,
                    )
                )
        return items

    def queue(self) -> tuple[list[QueueItem], list[QueueItem]]:
        """Drafts waiting for approval, and scheduled posts."""
        waiting = self._items((PostStatus.DRAFT.value,), limit=40)
        scheduled = self._items((PostStatus.SCHEDULED.value,), limit=40)
        return waiting, scheduled

    def home(self) -> tuple[list[QueueItem], list[QueueItem], list[QueueItem], list[QueueItem]]:
        """Waiting, scheduled, recently published and recently failed."""
        waiting, scheduled = self.queue()
        published = self._items((PostStatus.PUBLISHED.value,), limit=10, order_desc=True, since_days=7)
        failed = self._items((PostStatus.FAILED.value,), limit=10, order_desc=True, since_days=7)
        return waiting, scheduled, published, failed
