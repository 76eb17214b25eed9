"""clip previews: clips carded before previews existed get their preview job

Clips created by a release without video previews were left in preview state "pending" with no job
to move them on, so their message would say the video is on its way forever. Each gets one preview
job: it fetches and uploads the video, or (with CLIP_PREVIEW=off) settles the clip as "off" and
re-renders its message.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 06:30:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from bot.models import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# bot.services.previews.PREVIEW_JOB and its dedupe key, as they are at this revision.
PREVIEW_JOB = "clip_preview"


def upgrade() -> None:
    conn = op.get_bind()
    clip = sa.table("clip", sa.column("id", sa.Integer), sa.column("preview_state", sa.String))
    job = sa.table(
        "job",
        sa.column("kind", sa.String), sa.column("payload", sa.JSON), sa.column("status", sa.String),
        sa.column("dedupe_key", sa.String), sa.column("priority", sa.Integer), sa.column("run_at", UTCDateTime()),
        sa.column("attempts", sa.Integer), sa.column("created_at", UTCDateTime()),
    )
    waiting = [row.id for row in conn.execute(sa.select(clip.c.id).where(clip.c.preview_state == "pending"))]
    queued = {row.dedupe_key for row in conn.execute(
        sa.select(job.c.dedupe_key).where(job.c.kind == PREVIEW_JOB, job.c.status.in_(("pending", "running"))))}
    now = datetime.now(UTC)
    rows = [
        {"kind": PREVIEW_JOB, "payload": {"clip_id": clip_id}, "status": "pending", "dedupe_key": f"preview:{clip_id}",
         "priority": 7, "run_at": now, "attempts": 0, "created_at": now}
        for clip_id in waiting if f"preview:{clip_id}" not in queued
    ]
    if rows:
        op.bulk_insert(job, rows)


def downgrade() -> None:
    # The jobs are ordinary work: a downgraded build without previews leaves them unhandled (a
    # job with no handler fails after its retries), so remove the ones still waiting.
    job = sa.table("job", sa.column("kind", sa.String), sa.column("status", sa.String))
    op.execute(sa.delete(job).where(job.c.kind == PREVIEW_JOB, job.c.status == "pending"))
