"""Posts, whatever system drafted them: platforms, statuses, content and the provider's view of a post."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any


class Platform(StrEnum):
    """Social platforms a post can target."""

    YOUTUBE = "youtube"
    TIKTOK = "tiktok"
    INSTAGRAM = "instagram"
    LINKEDIN = "linkedin"
    X = "x"

    @property
    def label(self) -> str:
        """Human label, e.g. "YouTube"."""
        return PLATFORM_LABELS[self]


PLATFORM_LABELS: dict[Platform, str] = {
    Platform.YOUTUBE: "YouTube",
    Platform.TIKTOK: "TikTok",
    Platform.INSTAGRAM: "Instagram",
    Platform.LINKEDIN: "LinkedIn",
    Platform.X: "X",
}

# Caption limits of the destination platforms (docs/providers.md); enforced before any write.
CAPTION_LIMITS: dict[Platform, int] = {
    Platform.YOUTUBE: 5000,
    Platform.TIKTOK: 2200,
    Platform.INSTAGRAM: 2200,
    Platform.LINKEDIN: 3000,
    Platform.X: 280,
}
YOUTUBE_TITLE_LIMIT = 100


class PostStatus(StrEnum):
    """Lifecycle of a post as the provider reports it (Choppity's eight statuses, plus UNKNOWN).

    draft → (scheduled →) queued → processing → uploading → published | failed; cancelled from draft,
    scheduled or queued. A status Greenlight has never heard of (a provider's future addition) is
    UNKNOWN here, and the provider's own word for it is kept next to it for display.
    """

    DRAFT = "draft"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    PROCESSING = "processing"
    UPLOADING = "uploading"
    PUBLISHED = "published"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, value: object) -> PostStatus:
        """The status named by `value`, or UNKNOWN (never raises: one odd post must not fail a batch)."""
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            return cls.UNKNOWN

    @property
    def is_terminal(self) -> bool:
        """Terminal states never move back (webhooks may arrive late or out of order)."""
        return self in TERMINAL_STATUSES

    @property
    def is_in_flight(self) -> bool:
        """Handed to the provider and not decided yet: the reconciler watches these."""
        return self in IN_FLIGHT_STATUSES

    @property
    def rank(self) -> int | None:
        """Position along the publish pipeline; a re-read never moves a post backwards along it."""
        return _RANK.get(self)


TERMINAL_STATUSES = frozenset({PostStatus.PUBLISHED, PostStatus.FAILED, PostStatus.CANCELLED})
IN_FLIGHT_STATUSES = frozenset(
    {PostStatus.SCHEDULED, PostStatus.QUEUED, PostStatus.PROCESSING, PostStatus.UPLOADING}
)
# Publishing is under way at the platform: the provider can no longer pull the post back.
PUBLISHING_STATUSES = frozenset({PostStatus.PROCESSING, PostStatus.UPLOADING})
_RANK: dict[PostStatus, int] = {
    PostStatus.DRAFT: 0,
    PostStatus.SCHEDULED: 1,
    PostStatus.QUEUED: 2,
    PostStatus.PROCESSING: 3,
    PostStatus.UPLOADING: 4,
    PostStatus.PUBLISHED: 5,
    PostStatus.FAILED: 5,
    PostStatus.CANCELLED: 5,
}
# What a provider may call a status: short, lower-case words. Anything else is not shown verbatim.
_STATUS_WORD = re.compile(r"[a-z][a-z0-9_ -]{0,31}")


def status_word(value: object) -> str | None:
    """A provider's raw status, cleaned for display, or None when it isn't a plausible status word."""
    if not isinstance(value, str):
        return None
    word = value.strip().lower()
    return word if _STATUS_WORD.fullmatch(word) else None


# Ids that come from providers and webhooks are opaque, but they end up in URL paths and queries:
# only this conservative alphabet passes, never "." or ".." (the first character can't be a dot).
_EXTERNAL_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._:-]{0,254}")


def is_external_id(value: object) -> bool:
    """Whether `value` is a usable provider id (post, clip, project, render)."""
    return isinstance(value, str) and _EXTERNAL_ID.fullmatch(value) is not None


class PendingAction(StrEnum):
    """A user action accepted by Greenlight and not yet confirmed by the provider."""

    PUBLISH = "publish"
    SCHEDULE = "schedule"
    CANCEL = "cancel"
    EDIT = "edit"


# TikTok privacy levels (TikTok Content Posting API values, as Choppity uses them).
TIKTOK_PRIVACY_LEVELS: dict[str, str] = {
    "PUBLIC_TO_EVERYONE": "Everyone",
    "MUTUAL_FOLLOW_FRIENDS": "Friends",
    "FOLLOWER_OF_CREATOR": "Followers",
    "SELF_ONLY": "Only me",
}

# The five TikTok toggles, in the order the card and the modal show them.
TIKTOK_TOGGLES: dict[str, str] = {
    "disable_comment": "Comments off",
    "disable_duet": "Duet off",
    "disable_stitch": "Stitch off",
    "brand_content_toggle": "Branded content (paid partnership)",
    "brand_organic_toggle": "Promotes own brand",
}

# YouTube video categories (YouTube Data API videoCategories, region US, assignable ones).
YOUTUBE_CATEGORIES: dict[str, str] = {
    "1": "Film & Animation",
    "2": "Autos & Vehicles",
    "10": "Music",
    "15": "Pets & Animals",
    "17": "Sports",
    "19": "Travel & Events",
    "20": "Gaming",
    "22": "People & Blogs",
    "23": "Comedy",
    "24": "Entertainment",
    "25": "News & Politics",
    "26": "Howto & Style",
    "27": "Education",
    "28": "Science & Technology",
    "29": "Nonprofits & Activism",
}


@dataclass(frozen=True)
class TikTokSettings:
    """TikTok-only settings of a post."""

    privacy_level: str = "PUBLIC_TO_EVERYONE"
    disable_comment: bool = False
    disable_duet: bool = False
    disable_stitch: bool = False
    brand_content_toggle: bool = False
    brand_organic_toggle: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape Choppity uses."""
        return {
            "privacy_level": self.privacy_level,
            "disable_comment": self.disable_comment,
            "disable_duet": self.disable_duet,
            "disable_stitch": self.disable_stitch,
            "brand_content_toggle": self.brand_content_toggle,
            "brand_organic_toggle": self.brand_organic_toggle,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TikTokSettings:
        """Read Choppity's JSON shape, tolerating missing keys."""
        return cls(
            privacy_level=str(data.get("privacy_level") or "PUBLIC_TO_EVERYONE"),
            **{k: bool(data.get(k, False)) for k in TIKTOK_TOGGLES},
        )


@dataclass(frozen=True)
class YouTubeSettings:
    """YouTube-only settings of a post."""

    category_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape Choppity uses."""
        return {"category_id": self.category_id}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> YouTubeSettings:
        """Read Choppity's JSON shape."""
        cid = data.get("category_id")
        return cls(category_id=str(cid) if cid is not None else None)


@dataclass(frozen=True)
class PostContent:
    """What will be posted: the part of a post people review and edit."""

    caption: str
    title: str | None = None
    youtube: YouTubeSettings | None = None
    tiktok: TikTokSettings | None = None

    def to_dict(self) -> dict[str, Any]:
        """Serialise for storage."""
        out: dict[str, Any] = {"caption": self.caption}
        if self.title is not None:
            out["title"] = self.title
        if self.youtube is not None:
            out["youtube"] = self.youtube.to_dict()
        if self.tiktok is not None:
            out["tiktok"] = self.tiktok.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PostContent:
        """Inverse of to_dict; also reads Choppity's post JSON directly."""
        yt = data.get("youtube")
        tt = data.get("tiktok")
        title = data.get("title")
        return cls(
            caption=str(data.get("caption") or ""),
            title=str(title) if title is not None else None,
            youtube=YouTubeSettings.from_dict(yt) if isinstance(yt, dict) else None,
            tiktok=TikTokSettings.from_dict(tt) if isinstance(tt, dict) else None,
        )

    def changes_from(self, old: PostContent) -> dict[str, Any]:
        """Fields that differ from `old`, in the provider's update shape (only changed fields)."""
        diff: dict[str, Any] = {}
        if self.caption != old.caption:
            diff["caption"] = self.caption
        if self.title != old.title and self.title is not None:
            diff["title"] = self.title
        if self.youtube is not None and self.youtube != old.youtube:
            diff["youtube"] = self.youtube.to_dict()
        if self.tiktok is not None and self.tiktok != old.tiktok:
            diff["tiktok"] = self.tiktok.to_dict()
        return diff

    def with_changes(self, **kwargs: Any) -> PostContent:
        """A copy with some fields replaced."""
        return replace(self, **kwargs)


@dataclass(frozen=True)
class RemotePost:
    """A post as the provider has it right now."""

    id: str
    clip_id: str
    platform: Platform
    status: PostStatus
    content: PostContent
    scheduled_at: datetime | None = None
    published_at: datetime | None = None
    published_url: str | None = None
    error: str | None = None
    # The provider's own word when `status` is UNKNOWN (shown as-is on the card).
    raw_status: str | None = None
    # The provider's own state of the post after this read or action (None: unchanged). Opaque to
    # the core: each provider reads it back into its own typed model.
    state: dict[str, Any] | None = None
    # Per-account results when one post went to several accounts (a Reap hand-off).
    results: tuple[AccountResult, ...] = ()


@dataclass(frozen=True)
class AccountResult:
    """How publishing went on one account of a multi-account post."""

    account: str
    ok: bool | None  # None: the provider reported no result for it
    url: str | None = None


# -- how platforms count ---------------------------------------------------------------------------


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units, the way TikTok counts (most emoji count as 2)."""
    return len(text.encode("utf-16-le")) // 2


def caption_length(caption: str, platform: Platform) -> int:
    """Caption length as the destination platform counts it."""
    if platform is Platform.TIKTOK:
        return utf16_length(caption)
    return len(caption)


def caption_error(caption: str, platform: Platform) -> str | None:
    """Why a caption can't be posted to `platform`, or None when it can."""
    if not caption.strip():
        return "Caption can't be empty."
    limit = CAPTION_LIMITS.get(platform)
    length = caption_length(caption, platform)
    if limit is not None and length > limit:
        # Say how TikTok counts when it differs from what the user sees, or the numbers look wrong.
        how = " (emoji count as 2)" if length != len(caption) else ""
        return f"Caption is {length:,} characters{how}; {platform.label} allows {limit:,}."
    if platform is Platform.YOUTUBE and ("<" in caption or ">" in caption):
        # YouTube refuses them in a description (its API rejects the upload).
        return "YouTube descriptions can't contain < or >."
    return None


def title_error(title: str) -> str | None:
    """Why a YouTube title is invalid, or None."""
    if not title:
        return "A YouTube title is required."
    if len(title) > YOUTUBE_TITLE_LIMIT:
        return f"Title is {len(title):,} characters; YouTube allows {YOUTUBE_TITLE_LIMIT}."
    if "<" in title or ">" in title:
        return "YouTube titles can't contain < or >"
    return None


def describe_changes(old: PostContent, new: PostContent) -> str:
    """Field-level summary of an edit, for the audit log and the thread."""
    parts: list[str] = []
    if new.caption != old.caption:
        parts.append(f"caption ({len(old.caption)} → {len(new.caption)} chars)")
    if new.title != old.title:
        parts.append("title")
    if new.youtube != old.youtube:
        parts.append("category")
    if new.tiktok is not None and old.tiktok is not None and new.tiktok != old.tiktok:
        changed = [k for k, v in new.tiktok.to_dict().items() if old.tiktok.to_dict().get(k) != v]
        parts.append("TikTok " + ", ".join(k.replace("_", " ") for k in changed))
    return ", ".join(parts) or "no changes"
