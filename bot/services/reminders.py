"""Reminders: a draft nobody has touched for REMIND_AFTER_HOURS gets one nudge in its thread.

At most one reminder per period per post (`reminded_at`), never for decided posts, and only one
replica runs the loop at a time (the `reminders` lease).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine, or_
from sqlmodel import col, select

from bot.config import Settings
from bot.db import session_scope, take_lease
from bot.domain import PostStatus
from bot.jobs import PeriodicLoop
from bot.models import Post, utcnow
from bot.services.access import Approvers
from bot.services.cards import request_thread_reply
from bot.slack import notices
from bot.slack.mrkdwn import Mrkdwn

log = logging.getLogger(__name__)


class Reminders(PeriodicLoop):
    """Periodic loop that nudges approvers about stale drafts."""

    name = "reminders"

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        approvers: Approvers,
        *,
        wake: Callable[[], None] = lambda: None,
        holder: str,
        interval: float = 300.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.approvers = approvers
        self.wake = wake
        self.holder = holder
        self.clock = clock
        self.interval = min(interval, max(1.0, settings.remind_after_hours * 3600 / 4))
        super().__init__()

    @property
    def enabled(self) -> bool:
        """REMIND_AFTER_HOURS=0 turns reminders off."""
        return self.settings.remind_after_hours > 0

    @property
    def period(self) -> float:
        """A quarter of REMIND_AFTER_HOURS, at most every 5 minutes."""
        return self.interval

    def start(self) -> None:
        """Run in a background thread (no-op when disabled)."""
        if self.enabled:
            super().start()

    def _take_lease(self) -> bool:
        return take_lease(self.engine, name="reminders", holder=self.holder, seconds=self.interval * 0.9)

    def run_once(self) -> int:
        """Send due reminders; returns how many were queued."""
        if not self.enabled or not self._take_lease():
            return 0
        period = timedelta(hours=self.settings.remind_after_hours)
        now = self.clock()
        who = self.approvers.describe() if self.approvers.restricted else Mrkdwn("Reviewers")
        sent = 0
        with session_scope(self.engine) as session:
            rows = session.exec(
                select(Post)
                .where(
                    col(Post.status) == PostStatus.DRAFT.value,
                    col(Post.pending_action).is_(None),
                    col(Post.message_ts).is_not(None),
                    col(Post.updated_at) < now - period,
                    or_(col(Post.reminded_at).is_(None), col(Post.reminded_at) < now - period),
                )
                .limit(50)
            ).all()
            for post in rows:
                hours = int((now - post.updated_at).total_seconds() // 3600)
                request_thread_reply(session, post.id or 0, notices.reminder(who, hours))
                post.reminded_at = now
                sent += 1
        if sent:
            self.wake()
        return sent
