"""A Reap draft, typed: what Greenlight holds for a clip until it hands it to Reap, and what Reap
said afterwards. Stored as JSON in the post's provider state; read back through `ReapDraft.load`.

A Reap publish sends one shared title, description and tag list to every target account, so the
limits are those of the strictest platform among the targets (the table in docs/providers.md): a YouTube target
caps the title at 100 characters, a TikTok target makes emoji count twice, and so on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.domain import (
    CAPTION_LIMITS,
    YOUTUBE_TITLE_LIMIT,
    AccountResult,
    CardDetails,
    DetailLine,
    FieldId,
    Platform,
    PostContent,
    Tone,
    utf16_length,
)

# Reap's own field limits (Reap API docs: update-post).
REAP_TITLE_LIMIT = 250
REAP_DESCRIPTION_LIMIT = 1000
REAP_MAX_TAGS = 10
YOUTUBE_TAGS_TOTAL = 500

YOUTUBE_PRIVACY: dict[str, str] = {"public": "Public", "unlisted": "Unlisted", "private": "Private"}
TIKTOK_PRIVACY: dict[str, str] = {"public": "Everyone", "friends": "Friends", "private": "Only me"}
LINKEDIN_PRIVACY: dict[str, str] = {"public": "Public", "connections": "Connections only"}
TIKTOK_FLAGS: dict[str, str] = {
    "disableComments": "Comments off",
    "disableDuet": "Duet off",
    "disableStitch": "Stitch off",
    "brandContent": "Branded content (paid partnership)",
    "brandOrganic": "Promotes own brand",
}
YT_KIDS = "madeForKids"
IG_FEED = "shareToFeed"

# Reap's documented defaults for platformSettings (Reap API docs: publish-clip).
DEFAULT_SETTINGS: dict[str, dict[str, Any]] = {
    Platform.YOUTUBE.value: {"privacy": "public", "embeddable": True, "publicStats": True, "madeForKids": False},
    Platform.TIKTOK.value: {
        "privacy": "public",
        "disableComments": False,
        "disableDuet": False,
        "disableStitch": False,
        "brandContent": False,
        "brandOrganic": False,
    },
    Platform.INSTAGRAM.value: {"shareToFeed": False},
    Platform.LINKEDIN.value: {"privacy": "public"},
}

NO_REASON = "Reap gives no reason; check the Reap dashboard"
CANCEL_NOTE = "Reap: once handed to Reap, a post can't be cancelled from Slack."


def default_settings(platform: str) -> dict[str, Any]:
    """A fresh copy of Reap's defaults for one platform ({} for platforms without settings)."""
    return dict(DEFAULT_SETTINGS.get(platform, {}))


class Account(BaseModel):
    """A connected account Reap can publish to, as it was offered when the draft was made."""

    model_config = ConfigDict(extra="ignore")

    id: str
    platform: Platform
    label: str


class Result(BaseModel):
    """How the publish went on one platform."""

    model_config = ConfigDict(extra="ignore")

    ok: bool | None = None
    url: str | None = None


class ReapDraft(BaseModel):
    """Greenlight's side of a Reap post: targets, tags and settings; then Reap's post and results."""

    model_config = ConfigDict(extra="ignore")

    integrations: list[Account] = Field(default_factory=list)
    targets: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    settings: dict[str, dict[str, Any]] = Field(default_factory=dict)
    reap_post_id: str | None = None
    reap_status: str | None = None
    handed_off_at: datetime | None = None
    results: dict[str, Result] = Field(default_factory=dict)

    @classmethod
    def load(cls, state: dict[str, Any] | None) -> ReapDraft:
        """Read the stored state back (an unreadable one is treated as empty, and says so on the card)."""
        try:
            return cls.model_validate(state or {})
        except ValidationError:
            return cls()

    def dump(self) -> dict[str, Any]:
        """The JSON to store."""
        return self.model_dump(mode="json", exclude_none=True)

    # -- derived ---------------------------------------------------------------------------------

    @property
    def handed_off(self) -> bool:
        """Reap has the post (from now on only Reap can change it)."""
        return self.reap_post_id is not None

    def target_accounts(self) -> list[Account]:
        """The chosen accounts, in their stored order."""
        by_id = {a.id: a for a in self.integrations}
        return [by_id[t] for t in self.targets if t in by_id]

    def target_platforms(self) -> list[Platform]:
        """Distinct platforms of the target accounts, in target order."""
        out: list[Platform] = []
        for account in self.target_accounts():
            if account.platform not in out:
                out.append(account.platform)
        return out

    def offered_platforms(self) -> list[Platform]:
        """Distinct platforms of every account offered (the form shows their settings)."""
        out: list[Platform] = []
        for account in self.integrations:
            if account.platform not in out:
                out.append(account.platform)
        return out

    def settings_for(self, platform: Platform) -> dict[str, Any]:
        """Reap's defaults for `platform`, overlaid with the draft's own choices."""
        return {**default_settings(platform.value), **self.settings.get(platform.value, {})}

    def publish_settings(self) -> dict[str, dict[str, Any]]:
        """platformSettings for publish-clip: "Only include platforms you're publishing to"."""
        return {p.value: self.settings_for(p) for p in self.target_platforms() if default_settings(p.value)}


# -- limits ----------------------------------------------------------------------------------------


def title_limit(platforms: set[Platform]) -> int:
    """YouTube allows 100 characters; Reap itself 250."""
    return YOUTUBE_TITLE_LIMIT if Platform.YOUTUBE in platforms else REAP_TITLE_LIMIT


def description_limit(platforms: set[Platform]) -> tuple[int, str]:
    """The tightest description limit among the targets, and who imposes it."""
    limit, who = REAP_DESCRIPTION_LIMIT, "Reap"
    for platform in sorted(platforms, key=lambda p: p.value):
        platform_limit = CAPTION_LIMITS.get(platform)
        if platform_limit is not None and platform_limit < limit:
            limit, who = platform_limit, platform.label
    return limit, who


def description_length(text: str, platforms: set[Platform]) -> int:
    """Counted the strictest way any target counts (TikTok: UTF-16 units, so emoji count as 2)."""
    return utf16_length(text) if Platform.TIKTOK in platforms else len(text)


def field_errors(title: str, description: str, tags: list[str], platforms: set[Platform]) -> dict[str, str]:
    """Every problem with the shared fields for these target platforms, keyed by field id."""
    errors: dict[str, str] = {}
    if (problem := _title_problem(title, platforms)) is not None:
        errors[FieldId.TITLE] = problem
    if (problem := _description_problem(description, platforms)) is not None:
        errors[FieldId.CAPTION] = problem
    if len(tags) > REAP_MAX_TAGS:
        errors[FieldId.TAGS] = f"Reap allows up to {REAP_MAX_TAGS} tags; you have {len(tags)}."
    elif Platform.YOUTUBE in platforms and sum(len(t) for t in tags) + max(0, len(tags) - 1) > YOUTUBE_TAGS_TOTAL:
        errors[FieldId.TAGS] = f"YouTube allows about {YOUTUBE_TAGS_TOTAL} characters of tags in total."
    return errors


def _title_problem(title: str, platforms: set[Platform]) -> str | None:
    youtube = Platform.YOUTUBE in platforms
    limit = title_limit(platforms)
    if youtube and not title:
        return "A title is required when a YouTube account is a target."
    if len(title) > limit:
        return f"Title is {len(title):,} characters; {'YouTube' if youtube else 'Reap'} allows {limit}."
    if youtube and ("<" in title or ">" in title):
        return "YouTube titles can't contain < or >."
    return None


def _description_problem(description: str, platforms: set[Platform]) -> str | None:
    limit, who = description_limit(platforms)
    length = description_length(description, platforms)
    if not description.strip():
        return "The description can't be empty."
    if length > limit:
        how = " (emoji count as 2 for TikTok)" if length != len(description) else ""
        return f"Description is {length:,} characters{how}; {who} allows {limit:,}."
    if Platform.YOUTUBE in platforms and ("<" in description or ">" in description):
        return "YouTube descriptions can't contain < or >."
    return None


def problems(content: PostContent, draft: ReapDraft) -> list[str]:
    """What would stop this draft from going out to its targets as it is."""
    if not draft.target_accounts():
        return ["This draft has no Reap account to publish to; pick one with Edit."]
    errors = field_errors(content.title or "", content.caption, draft.tags, set(draft.target_platforms()))
    return list(errors.values())


# -- the card --------------------------------------------------------------------------------------


def settings_line(platform: Platform, s: dict[str, Any]) -> DetailLine | None:
    """One line describing a platform's settings, for the card."""
    if platform is Platform.YOUTUBE:
        kids = "made for kids" if s.get(YT_KIDS) else "not made for kids"
        return DetailLine((YOUTUBE_PRIVACY.get(str(s.get("privacy")), str(s.get("privacy"))), kids), label="YouTube")
    if platform is Platform.TIKTOK:
        parts = [TIKTOK_PRIVACY.get(str(s.get("privacy")), str(s.get("privacy")))]
        for key, word in (("disableComments", "comments"), ("disableDuet", "duet"), ("disableStitch", "stitch")):
            parts.append(f"{word} {'off' if s.get(key) else 'on'}")
        if s.get("brandContent"):
            parts.append("branded content")
        if s.get("brandOrganic"):
            parts.append("promotes own brand")
        return DetailLine(tuple(parts), label="TikTok")
    if platform is Platform.INSTAGRAM:
        feed = "Reel, also shared to the feed" if s.get(IG_FEED) else "Reel only (not shared to the feed)"
        return DetailLine((feed,), label="Instagram")
    if platform is Platform.LINKEDIN:
        return DetailLine((LINKEDIN_PRIVACY.get(str(s.get("privacy")), str(s.get("privacy"))),), label="LinkedIn")
    return None


def card_details(content: PostContent, draft: ReapDraft, *, open_draft: bool) -> CardDetails:
    """Targets, tags, settings per target platform, per-account results, and what to fix or know."""
    lines: list[DetailLine] = [
        DetailLine(tuple(draft.tags), label="🏷 Tags") if draft.tags else DetailLine(("🏷 No tags",))
    ]
    for platform in draft.target_platforms():
        line = settings_line(platform, draft.settings_for(platform))
        if line is not None:
            lines.append(line)
    results = account_results(draft)
    failed = [r.account for r in results if r.ok is False]
    if draft.reap_status == "cancelled":
        lines.append(DetailLine(("🚫 Cancelled in the Reap dashboard.",)))
    elif failed and any(r.ok for r in results):
        lines.append(DetailLine((f"⚠️ Partly published: {', '.join(failed)} failed ({NO_REASON}).",), tone=Tone.WARNING))
    if open_draft and not draft.handed_off:
        lines.append(DetailLine((CANCEL_NOTE,)))
    labels = tuple(a.label for a in draft.target_accounts())
    return CardDetails(targets=labels, lines=tuple(lines), results=results)


def account_results(draft: ReapDraft) -> tuple[AccountResult, ...]:
    """Per-platform results of the hand-off, labelled by platform."""
    return tuple(
        AccountResult(account=_label(name), ok=result.ok, url=result.url) for name, result in draft.results.items()
    )


def _label(platform: str) -> str:
    try:
        return Platform(platform).label
    except ValueError:
        return platform
