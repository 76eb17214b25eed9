"""The clip, the unit of review: what a provider says about a clip, and what its Slack message shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.domain.posts import PendingAction, Platform, PostStatus


@dataclass(frozen=True)
class ClipInfo:
    """What a provider tells about a clip, when it tells anything (every field is optional)."""

    title: str | None = None
    duration_seconds: float | None = None
    # The tool's score on its own scale: `score / scale` is in 0..1 (Choppity 0–1, Reap 0–10).
    score: float | None = None
    scale: float | None = None


@dataclass(frozen=True)
class Video:
    """Where a clip's video file stands at its provider: exactly one of the three is set."""

    url: str | None = None  # ready: a direct download (possibly short-lived)
    expires_at: datetime | None = None  # when `url` stops working, when the provider says
    wait_seconds: float | None = None  # still being made: ask again after this long
    unavailable: str | None = None  # none will come, and why (shown to people)


class PreviewState(StrEnum):
    """Where a clip's video preview stands."""

    PENDING = "pending"  # not started yet
    RENDERING = "rendering"  # the provider is making the video file
    UPLOADING = "uploading"  # on its way into the clip's thread
    UPLOADED = "uploaded"  # playable in Slack
    LINKED = "linked"  # a link instead (too big, upload failed, or CLIP_PREVIEW=link)
    FAILED = "failed"  # no video to show; `note` says why
    OFF = "off"  # CLIP_PREVIEW=off


@dataclass(frozen=True)
class ClipEntry:
    """One platform draft of a clip, as the clip's summary shows it."""

    post_id: int
    platform: Platform
    status: PostStatus
    raw_status: str | None = None
    pending_action: PendingAction | None = None
    scheduled_at: datetime | None = None
    published_url: str | None = None
    error: str | None = None
    # Where it goes, when not just the platform (a Reap draft's accounts).
    targets: tuple[str, ...] = ()
    # Someone asked for changes that haven't been made yet.
    changes_requested: bool = False


@dataclass(frozen=True)
class ClipCard:
    """Everything the clip's channel message shows; built by the service from the database."""

    clip_id: int
    provider: str
    provider_title: str
    ref: str
    info: ClipInfo
    entries: tuple[ClipEntry, ...]
    preview_state: PreviewState = PreviewState.PENDING
    preview_note: str | None = None
    preview_link: str | None = None
    preview_expires: datetime | None = None

    @property
    def open_drafts(self) -> tuple[ClipEntry, ...]:
        """Drafts nobody has acted on yet (what Publish all / Schedule all may act on)."""
        return tuple(e for e in self.entries
                     if e.status is PostStatus.DRAFT and e.pending_action is None and not e.changes_requested)


@dataclass(frozen=True)
class BulkItem:
    """One post in a Publish all / Schedule all: where it goes and when, or why it is left out."""

    post_id: int
    platform: Platform
    targets: tuple[str, ...] = ()
    at: datetime | None = None  # None: now
    refusal: str | None = None  # set: left out, and why

    @property
    def included(self) -> bool:
        """Whether this post is part of the action."""
        return self.refusal is None
