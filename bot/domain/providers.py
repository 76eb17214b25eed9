"""What the core knows about providers: their declared capabilities, and the neutral shapes in which
drafts arrive, outcomes are reported and imports are summarised."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.domain.clips import ClipInfo
from bot.domain.posts import Platform, PostContent, PostStatus, RemotePost


class DraftHome(StrEnum):
    """Where a draft lives until it is published."""

    PROVIDER = "provider"  # server-side drafts (Choppity): edits are API calls
    GREENLIGHT = "greenlight"  # the provider has no drafts (Reap): Greenlight holds them until the hand-off


class Outcomes(StrEnum):
    """How Greenlight learns what happened to a published post."""

    WEBHOOK = "webhook"  # the provider says so; the reconciler re-reads what was never reported
    POLLING = "polling"  # the provider never says: Greenlight asks, on a schedule


@dataclass(frozen=True)
class Polling:
    """How often to ask a polling provider about a post in flight, and when to stop."""

    every: timedelta = timedelta(seconds=45)
    slow_after: timedelta = timedelta(hours=1)
    slow_every: timedelta = timedelta(minutes=5)
    give_up_after: timedelta = timedelta(hours=24)

    def interval(self, age: timedelta) -> timedelta:
        """The wait before the next question about a post handed over `age` ago."""
        return self.every if age < self.slow_after else self.slow_every


@dataclass(frozen=True)
class Capabilities:
    """What a provider can do; the core decides by these, never by a provider's name."""

    drafts: DraftHome
    # Statuses from which a cancel still works (a held draft or schedule is cancelled locally).
    cancellable: frozenset[PostStatus]
    outcomes: Outcomes
    # The provider can't schedule (or can't cancel a schedule): Greenlight holds it and publishes
    # at the time itself.
    schedule_held_locally: bool = False
    # Whether re-reading a post tells if a publish whose answer was lost went through. When it
    # can't (no way to list the provider's posts), such a publish is reported, never re-sent.
    publish_confirmable: bool = True
    requests_per_minute: int = 60
    polling: Polling = Polling()
    # How long before a held schedule's time a publish must at least be asked for.
    min_schedule_lead: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class ProviderPost:
    """What a provider is handed about one of its posts (Greenlight's copy)."""

    post_id: int
    external_id: str
    clip_id: str
    project_id: str | None
    platform: Platform
    status: PostStatus
    content: PostContent
    state: dict[str, Any] = field(default_factory=dict)
    scheduled_at: datetime | None = None


@dataclass(frozen=True)
class DraftSpec:
    """A draft to card: the provider's view of it, plus where it belongs."""

    remote: RemotePost
    project_id: str | None = None


class ImportState(StrEnum):
    """Where the thing being imported (a clip, a project) stands."""

    READY = "ready"
    RUNNING = "running"  # the provider is still making it; look again later
    FAILED = "failed"  # it will never have drafts
    NO_TARGETS = "no_targets"  # ready, but nothing to publish to


@dataclass
class Import:
    """What a provider found for `/greenlight <command> <ref>` or a "drafts ready" webhook."""

    ref: str
    state: ImportState = ImportState.READY
    state_word: str = ""
    drafts: list[DraftSpec] = field(default_factory=list)
    # Posts of the clip that are not drafts (already published, scheduled...): listed, not carded.
    others: list[RemotePost] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Where the new drafts will be published ("YouTube · My Channel"), when not one platform each.
    targets: list[str] = field(default_factory=list)
    # RUNNING: look again after this long.
    recheck_after: timedelta | None = None
    # What the provider says about each clip of the drafts (title, duration, score), by clip id.
    clips: dict[str, ClipInfo] = field(default_factory=dict)


@dataclass(frozen=True)
class DraftsReady:
    """A webhook says new drafts exist: import `ref` (a clip or project id; `post_id` when given)."""

    ref: str
    post_id: str | None = None


@dataclass(frozen=True)
class PostChanged:
    """A webhook says a post moved on: re-read it."""

    external_id: str


@dataclass(frozen=True)
class InboundEvent:
    """One verified webhook delivery, reduced to what the core acts on. `id` de-duplicates."""

    id: str
    type: str
    action: DraftsReady | PostChanged | None
    payload: dict[str, Any] = field(default_factory=dict)
