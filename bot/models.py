"""SQLModel tables. All times are timezone-aware UTC.

- `Post`: one row per carded post, with where its Slack card lives (channel + ts) so every change
  re-renders the same message.
- `Clip`: one row per clip under review, with where its clip message lives and its preview's state.
- `AuditEvent`: append-only record of who did what, when, with what outcome.
- `Job`: the durable work queue (outbox). Work is written here before it is done, in the same
  transaction as the state change that asked for it, and claimed with a lease.
- `WebhookEvent`: received webhook ids, for at-least-once de-duplication.
- `Approval`: one row per approver per content version (several approvals may be required).
- `PostVersion`: append-only, the content of every version of a post (what an edit replaced).
- `Lease`: named singleton leases for background loops shared by several replicas.
- `RateLimitHit`, `RateLimitBlock`: provider request budgets shared by replicas on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Double,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Timezone-aware now, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite would otherwise hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        # SQLite compares datetimes as text: store naive UTC so ordering is correct.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(index: bool = False, nullable: bool = True) -> Any:
    return Field(default=None, sa_type=UTCDateTime, index=index, nullable=nullable)


class Post(SQLModel, table=True):
    """A provider post (or, for Reap, a Greenlight-held draft) and its Slack card."""

    __tablename__ = "post"
    __table_args__ = (
        UniqueConstraint("provider", "external_id", name="uq_post_provider_external"),
        Index("ix_post_status_pending", "status", "pending_action"),
    )

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=16)
    external_id: str = Field(max_length=255)
    clip_id: str = Field(max_length=255, index=True)
    project_id: str | None = Field(default=None, max_length=255)
    platform: str = Field(max_length=16)
    status: str = Field(max_length=16, index=True)
    # The provider's own word when `status` is "unknown" (a status Greenlight doesn't know yet).
    remote_status: str | None = Field(default=None, max_length=32)
    content: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Reap drafts keep their per-platform settings and targets here (see bot.providers.reap.client).
    extra: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    content_version: int = 1
    last_editor: str | None = Field(default=None, max_length=32)

    pending_action: str | None = Field(default=None, max_length=16)
    pending_by: str | None = Field(default=None, max_length=32)
    pending_since: datetime | None = _ts()

    scheduled_at: datetime | None = _ts(index=True)
    published_at: datetime | None = _ts()
    published_url: str | None = Field(default=None, sa_column=Column(Text))
    error: str | None = Field(default=None, sa_column=Column(Text))
    approved_by: str | None = Field(default=None, max_length=32)
    approved_at: datetime | None = _ts()
    cancelled_by: str | None = Field(default=None, max_length=32)
    cancel_reason: str | None = Field(default=None, sa_column=Column(Text))
    # The card's activity line as data (bot.domain.Activity); never stored as markup.
    activity: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))

    channel_id: str | None = Field(default=None, max_length=32)
    message_ts: str | None = Field(default=None, max_length=32)
    # The clip message whose thread holds the card (None: a top-level card, from before clips).
    thread_ts: str | None = Field(default=None, max_length=32)
    # Set (committed) just before chat.postMessage: while set without a message_ts, the outcome of
    # that post is unknown and the channel is searched for the card before posting again.
    card_attempted_at: datetime | None = _ts()
    # Slack refused the full card (too long): it is shown in the compact form from then on.
    card_compact: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})
    # Slack refused even the compact card; the channel was told which draft it could not show.
    card_error: str | None = Field(default=None, sa_column=Column(Text))

    # An open "changes requested" (bot.domain.ChangeRequest); the next new version clears it.
    changes_requested_by: str | None = Field(default=None, max_length=32)
    changes_requested_at: datetime | None = _ts()
    change_reason: str | None = Field(default=None, max_length=32)
    change_note: str | None = Field(default=None, sa_column=Column(Text))
    # The caption is still the one the provider's AI wrote: no person has changed it.
    caption_by_ai: bool = Field(default=True, sa_column_kwargs={"server_default": text("true")})

    remote_checked_at: datetime | None = _ts()
    reminded_at: datetime | None = _ts()
    # When the decision deadline (DECISION_DEADLINE) passed and the approvers were told, once.
    escalated_at: datetime | None = _ts()
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class Clip(SQLModel, table=True):
    """A clip, the unit of review: one message in the channel, its video and platform cards in its thread."""

    __tablename__ = "clip"
    __table_args__ = (UniqueConstraint("provider", "ref", name="uq_clip_provider_ref"),)

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=16)
    # The provider's clip id (the `clip_id` of the clip's posts).
    ref: str = Field(max_length=255)
    project_id: str | None = Field(default=None, max_length=255)
    title: str | None = Field(default=None, sa_column=Column(Text))
    duration_seconds: float | None = Field(default=None, sa_column=Column(Double))
    # The tool's own score, on its own scale (`score_scale`: 1 for Choppity's 0–1, 10 for Reap's 0–10).
    score: float | None = Field(default=None, sa_column=Column(Double))
    score_scale: float | None = Field(default=None, sa_column=Column(Double))

    channel_id: str | None = Field(default=None, max_length=32)
    message_ts: str | None = Field(default=None, max_length=32)
    # Set (committed) just before chat.postMessage, as for cards: a later attempt looks before posting.
    message_attempted_at: datetime | None = _ts()

    # The video in the thread: pending, rendering, uploading, uploaded, linked, failed or off.
    preview_state: str = Field(default="pending", max_length=16)
    # What the preview job knows: the provider's render id, the Slack file id, why it is a link…
    preview: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))

    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AuditEvent(SQLModel, table=True):
    """Append-only: no code path updates or deletes these rows."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    post_id: int | None = Field(default=None, index=True)
    actor: str | None = Field(default=None, max_length=32)
    action: str = Field(max_length=32)
    outcome: str = Field(max_length=16)
    detail: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class Job(SQLModel, table=True):
    """One unit of durable work; claimed by a worker with a lease, retried with backoff."""

    __tablename__ = "job"
    __table_args__ = (
        Index("ix_job_due", "status", "run_at"),
        # At most one *pending* job per dedupe key: pending card refreshes collapse into one.
        Index(
            "uq_job_pending_dedupe",
            "dedupe_key",
            unique=True,
            sqlite_where=text("status = 'pending' AND dedupe_key IS NOT NULL"),
            postgresql_where=text("status = 'pending' AND dedupe_key IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    post_id: int | None = Field(default=None, index=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="pending", max_length=16)
    dedupe_key: str | None = Field(default=None, max_length=255)
    priority: int = 5
    run_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    attempts: int = 0
    locked_by: str | None = Field(default=None, max_length=64)
    locked_until: datetime | None = _ts()
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = _ts()


class WebhookEvent(SQLModel, table=True):
    """A received webhook delivery; the primary key makes redeliveries no-ops."""

    __tablename__ = "webhook_event"

    id: str = Field(primary_key=True, max_length=300)
    provider: str = Field(max_length=16)
    type: str = Field(max_length=64)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class Approval(SQLModel, table=True):
    """An approver's approval of one content version of a post."""

    __tablename__ = "approval"
    __table_args__ = (UniqueConstraint("post_id", "user_id", "content_version", name="uq_approval_once"),)

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(index=True)
    user_id: str = Field(max_length=32)
    content_version: int
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PostVersion(SQLModel, table=True):
    """One content version of a post, as it was: append-only, like the audit log.

    Version 1 is what the provider drafted; each edit (in Slack, or seen at the provider) adds the
    next. `editor` is the Slack user who made it (None: the provider's draft or an outside edit).
    """

    __tablename__ = "post_version"
    __table_args__ = (UniqueConstraint("post_id", "version", name="uq_post_version"),)

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(index=True)
    version: int
    content: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # The provider's own draft state of that version (a held draft's tags, targets...).
    state: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    editor: str | None = Field(default=None, max_length=32)
    # "provider" (drafted there, or edited there) or "slack" (an edit made in Greenlight).
    source: str = Field(max_length=16)
    summary: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Lease(SQLModel, table=True):
    """A named lease so only one replica runs a periodic loop at a time."""

    __tablename__ = "lease"

    name: str = Field(primary_key=True, max_length=64)
    holder: str | None = Field(default=None, max_length=64)
    expires_at: datetime | None = _ts()


class RateLimitHit(SQLModel, table=True):
    """One provider request, for the moving window replicas share on PostgreSQL.

    Written and pruned only by bot.services.budgets.PostgresWindow; `at` is unix seconds on
    the database's clock.
    """

    __tablename__ = "rate_limit_hit"
    __table_args__ = (Index("ix_rate_limit_hit_key_at", "key", "at"),)

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    )
    key: str = Field(max_length=128)
    at: float = Field(sa_column=Column(Double, nullable=False))


class RateLimitBlock(SQLModel, table=True):
    """"No calls to this provider account before `blocked_until` (unix seconds)", as a replica heard it."""

    __tablename__ = "rate_limit_block"

    key: str = Field(primary_key=True, max_length=128)
    blocked_until: float = Field(sa_column=Column(Double, nullable=False))
