"""review feedback: changes requested, the AI-draft mark, deadline escalations and post versions

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.models

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("post", schema=None) as batch_op:
        batch_op.add_column(sa.Column("changes_requested_by", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("changes_requested_at", bot.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("change_reason", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("change_note", sa.Text(), nullable=True))
        # Existing posts keep the AI-draft mark: whether someone rewrote a caption before this
        # version was not recorded, and "AI draft" on a human caption is the safer mistake.
        batch_op.add_column(
            sa.Column("caption_by_ai", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.add_column(sa.Column("escalated_at", bot.models.UTCDateTime(timezone=True), nullable=True))
    op.create_table(
        "post_version",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("editor", sa.String(length=32), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("created_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("post_id", "version", name="uq_post_version"),
    )
    op.create_index("ix_post_version_post_id", "post_version", ["post_id"])


def downgrade() -> None:
    op.drop_index("ix_post_version_post_id", table_name="post_version")
    op.drop_table("post_version")
    with op.batch_alter_table("post", schema=None) as batch_op:
        batch_op.drop_column("escalated_at")
        batch_op.drop_column("caption_by_ai")
        batch_op.drop_column("change_note")
        batch_op.drop_column("change_reason")
        batch_op.drop_column("changes_requested_at")
        batch_op.drop_column("changes_requested_by")
