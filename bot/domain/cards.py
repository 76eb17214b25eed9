"""What a review card shows, as data: built by the services from the database, rendered by bot.slack."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.domain.posts import AccountResult, PendingAction, Platform, PostContent, PostStatus
from bot.domain.review import ChangeRequest


class ActivityKind(StrEnum):
    """The last thing a person (or the provider) did to a post, as the card's activity line says it."""

    EDITED = "edited"
    EDITED_AT_PROVIDER = "edited_at_provider"
    APPROVED = "approved"
    PUBLISH_APPROVED = "publish_approved"
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Activity:
    """Data for the card's activity line; rendered (and escaped) only when the card is built."""

    kind: ActivityKind
    actor: str | None = None
    count: int | None = None
    of: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON for the `post.activity` column."""
        out: dict[str, Any] = {"kind": self.kind.value}
        if self.actor is not None:
            out["actor"] = self.actor
        if self.count is not None:
            out["count"] = self.count
        if self.of is not None:
            out["of"] = self.of
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Activity | None:
        """Read the column back; anything unrecognised (an older version's data) is None."""
        if not isinstance(data, dict):
            return None
        try:
            kind = ActivityKind(str(data.get("kind")))
        except ValueError:
            return None
        actor = data.get("actor")
        count, of = data.get("count"), data.get("of")
        return cls(
            kind=kind,
            actor=actor if isinstance(actor, str) else None,
            count=count if isinstance(count, int) else None,
            of=of if isinstance(of, int) else None,
        )


class Tone(StrEnum):
    """How a detail line is marked on the card."""

    INFO = "info"
    OK = "ok"
    WARNING = "warning"
    PROBLEM = "problem"


@dataclass(frozen=True)
class DetailLine:
    """One line of provider-specific detail on a card, as plain text (escaped when shown).

    `label: item · item · item`, or just the items when there is no label.
    """

    items: tuple[str, ...]
    label: str | None = None
    tone: Tone = Tone.INFO


@dataclass(frozen=True)
class CardDetails:
    """What a provider adds to a card: the accounts it posts to, settings, results and notes."""

    targets: tuple[str, ...] = ()
    lines: tuple[DetailLine, ...] = ()
    results: tuple[AccountResult, ...] = ()


@dataclass(frozen=True)
class Card:
    """Everything the Slack card of one post shows; built by the service from the database."""

    post_id: int
    provider: str
    provider_title: str
    external_id: str
    clip_id: str
    platform: Platform
    status: PostStatus
    content: PostContent
    pending_action: PendingAction | None = None
    pending_by: str | None = None
    scheduled_at: datetime | None = None
    published_at: datetime | None = None
    published_url: str | None = None
    error: str | None = None
    approved_by: str | None = None
    approved_at: datetime | None = None
    cancelled_by: str | None = None
    activity: Activity | None = None
    approvals: tuple[str, ...] = ()
    required_approvals: int = 1
    details: CardDetails = CardDetails()
    # The provider's word for an UNKNOWN status.
    raw_status: str | None = None
    # Slack refused the full card (too long): show the compact form, caption shortened.
    compact: bool = False
    # Whether the provider can still cancel the post in its current status.
    can_cancel: bool = False
    # What would stop this draft from going out as it is (the card asks for an edit first).
    problems: tuple[str, ...] = ()
    # A reviewer asked for changes: Publish, Schedule and Approve wait for the next edit.
    change_request: ChangeRequest | None = None
    # The caption is still the words the provider's AI wrote (no person has changed it yet).
    caption_by_ai: bool = False
    # The decision deadline (DECISION_DEADLINE) passed at `overdue_since` without a decision.
    overdue_since: datetime | None = None
    # Four eyes (ALLOW_SELF_APPROVAL=false): the person who made the last edit, who may not decide
    # on this version (None when self-approval is allowed or nobody edited in Slack), and who may
    # (APPROVERS: user and user-group ids; empty means anyone).
    last_editor: str | None = None
    approvers: tuple[str, ...] = ()
