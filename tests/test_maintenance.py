"""Housekeeping: finished jobs and old webhook ids are pruned; audit rows never are."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from bot.models import AuditEvent, Job, WebhookEvent, utcnow
from tests.fakes.choppity import FakeChoppity
from tests.harness import Greenlight


def test_prune_keeps_recent_rows_and_every_audit_row(app: Greenlight, fake_choppity: FakeChoppity) -> None:
    remote = fake_choppity.add_post("youtube")
    app.choppity_event("post.draft.created", {"post_id": remote["id"]}, event_id="evt-old")
    app.settle()
    engine = app.services.engine
    with Session(engine) as session:
        audit_before = len(session.exec(select(AuditEvent)).all())
        jobs_before = len(session.exec(select(Job)).all())
        assert jobs_before >= 2
    reconciler = app.services.reconciler  # type: ignore[union-attr]
    assert reconciler.prune() == 0  # everything is recent
    with Session(engine) as session:
        for job in session.exec(select(Job)).all():
            job.finished_at = utcnow() - timedelta(days=8)
            session.add(job)
        event = session.get(WebhookEvent, "choppity:evt-old")
        assert event is not None
        event.received_at = utcnow() - timedelta(days=15)
        session.add(event)
        session.commit()
    assert reconciler.prune() == jobs_before + 1
    with Session(engine) as session:
        assert session.exec(select(Job)).all() == []
        assert session.exec(select(WebhookEvent)).all() == []
        assert len(session.exec(select(AuditEvent)).all()) == audit_before
