"""post lifecycle and card state: the provider's raw status, structured activity, compact cards

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("post", schema=None) as batch_op:
        batch_op.add_column(sa.Column("remote_status", sa.String(length=32), nullable=True))
        # The activity line is stored as data and rendered (escaped) when a card is built; the old
        # column held ready-made mrkdwn.
        batch_op.add_column(sa.Column("activity", sa.JSON(), nullable=True))
        batch_op.drop_column("last_activity")
        batch_op.add_column(sa.Column("card_compact", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("card_error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("post", schema=None) as batch_op:
        batch_op.drop_column("card_error")
        batch_op.drop_column("card_compact")
        batch_op.drop_column("activity")
        batch_op.add_column(sa.Column("last_activity", sa.Text(), nullable=True))
        batch_op.drop_column("remote_status")
