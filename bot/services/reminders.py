"""Reminders: a draft nobody has touched for REMIND_AFTER_HOURS gets one nudge in its thread, and a
draft still undecided DECISION_DEADLINE after it arrived is overdue: its card says so and the
approvers are told once, with an escalation (their user groups mentioned first).

At most one reminder per period per post (`reminded_at`), exactly one escalation per post
(`escalated_at`, set by a compare-and-set UPDATE in the same transaction as the thread reply's
job, so neither a second pass, a restart nor a second replica repeats it), never for decided posts,
and only one replica runs the loop at a time (the `reminders` lease).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine, or_, update
from sqlmodel import Session, col, select

from bot.config import Settings
from bot.db import add_audit, session_scope, take_lease
from bot.domain import PostStatus
from bot.jobs import PeriodicLoop
from bot.models import Post, utcnow
from bot.services.access import Approvers
from bot.services.cards import due_at, request_card_sync, request_thread_reply
from bot.services.feedback import change_request_of, who_should_edit
from bot.slack import notices
from bot.slack.mrkdwn import Mrkdwn, mention, usergroup

log = logging.getLogger(__name__)

BATCH = 50


class Reminders(PeriodicLoop):
    """Periodic loop that nudges approvers about stale drafts and escalates overdue ones."""

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
        # A quarter of the shortest period, at most every 5 minutes, at least every second.
        periods = [p for p in (self._remind_period, settings.decision_deadline) if p is not None]
        shortest = min(periods).total_seconds() if periods else interval
        self.interval = min(interval, max(1.0, shortest / 4))
        super().__init__()

    @property
    def _remind_period(self) -> timedelta | None:
        hours = self.settings.remind_after_hours
        return timedelta(hours=hours) if hours > 0 else None

    @property
    def enabled(self) -> bool:
        """REMIND_AFTER_HOURS=0 and no DECISION_DEADLINE turn the loop off."""
        return self._remind_period is not None or self.settings.decision_deadline is not None

    @property
    def period(self) -> float:
        """A quarter of the shortest period, at most every 5 minutes."""
        return self.interval

    def start(self) -> None:
        """Run in a background thread (no-op when disabled)."""
        if self.enabled:
            super().start()

    def _take_lease(self) -> bool:
        return take_lease(self.engine, name="reminders", holder=self.holder, seconds=self.interval * 0.9)

    def run_once(self) -> int:
        """Send due escalations, then due reminders; returns how many thread replies were queued."""
        if not self.enabled or not self._take_lease():
            return 0
        now = self.clock()
        sent = self._escalate(now) + self._remind(now)
        if sent:
            self.wake()
        return sent

    def _who(self) -> Mrkdwn:
        if not self.approvers.restricted:
            return Mrkdwn("Reviewers")
        return self.approvers.describe()

    def _remind(self, now: datetime) -> int:
        period = self._remind_period
        if period is None:
            return 0
        who = self._who()
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
                .limit(BATCH)
            ).all()
            for post in rows:
                hours = int((now - post.updated_at).total_seconds() // 3600)
                request = change_request_of(post)
                # Sent back for changes: the nudge goes to whoever should edit, not the approvers.
                text = (notices.changes_reminder(request, who_should_edit(session, post), hours) if request
                        else notices.reminder(who, hours))
                request_thread_reply(session, post.id or 0, text)
                post.reminded_at = now
                sent += 1
        return sent

    # -- the decision deadline ----------------------------------------------------------------------

    def escalation_who(self) -> Mrkdwn:
        """Who an escalation addresses: the approver user groups first, then the approvers by name."""
        if not self.approvers.restricted:
            return Mrkdwn("Reviewers")
        parts = [usergroup(g) for g in self.approvers.groups] + [mention(u) for u in sorted(self.approvers.users)]
        return Mrkdwn(" ").join(parts)

    def _escalate(self, now: datetime) -> int:
        deadline = self.settings.decision_deadline
        if deadline is None:
            return 0
        label = _describe(deadline)
        sent = 0
        with session_scope(self.engine) as session:
            rows = session.exec(
                select(Post)
                .where(
                    col(Post.status) == PostStatus.DRAFT.value,
                    col(Post.pending_action).is_(None),
                    col(Post.escalated_at).is_(None),
                    col(Post.message_ts).is_not(None),
                    col(Post.created_at) <= now - deadline,
                )
                .order_by(col(Post.created_at))
                .limit(BATCH)
            ).all()
            for post in rows:
                if self._escalate_one(session, post, now, label):
                    sent += 1
        return sent

    def _escalate_one(self, session: Session, post: Post, now: datetime, label: str) -> bool:
        """Mark one post overdue (only if no other pass did) and queue its single escalation."""
        assert post.id is not None
        claimed = session.execute(
            update(Post)
            .where(col(Post.id) == post.id, col(Post.escalated_at).is_(None),
                   col(Post.status) == PostStatus.DRAFT.value)
            .values(escalated_at=now, reminded_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(claimed, "rowcount", 0) != 1:
            return False
        due = due_at(post, self.settings) or now
        request = change_request_of(post)
        ask = who_should_edit(session, post) if request is not None else None
        request_thread_reply(session, post.id, notices.overdue(self.escalation_who(), due, label, request, ask))
        add_audit(session, post_id=post.id, actor=None, action="deadline", outcome="overdue",
                  detail=f"due {due.isoformat()}")
        request_card_sync(session, post.id)
        return True


def _describe(deadline: timedelta) -> str:
    """48 h, 90 min, 3 days: the deadline as people say it."""
    minutes = int(deadline.total_seconds() // 60)
    if minutes % (24 * 60) == 0 and minutes >= 3 * 24 * 60:
        return f"{minutes // (24 * 60)} days"
    if minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{minutes} min"
