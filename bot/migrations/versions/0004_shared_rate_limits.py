"""shared provider budgets: one row per provider request, and blocks heard from the provider

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_hit",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
    )
    op.create_index("ix_rate_limit_hit_key_at", "rate_limit_hit", ["key", "at"])
    op.create_table(
        "rate_limit_block",
        sa.Column("key", sa.String(length=128), primary_key=True),
        sa.Column("blocked_until", sa.Double(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rate_limit_block")
    op.drop_index("ix_rate_limit_hit_key_at", table_name="rate_limit_hit")
    op.drop_table("rate_limit_hit")
