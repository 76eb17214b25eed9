"""Parse and validate modal submissions before acking: a typed form, or `{block_id: message}`.

Pure functions over `view["state"]["values"]`; the view listener answers
`ack(response_action="errors", errors=...)` with the mapping, or `ack()` and calls the service.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.domain import (
    CAPTION_LIMITS,
    TIKTOK_PRIVACY_LEVELS,
    TIKTOK_TOGGLES,
    YOUTUBE_CATEGORIES,
    YOUTUBE_TITLE_LIMIT,
    Platform,
    PostContent,
    TikTokSettings,
    YouTubeSettings,
)
from bot.slack.ids import Field
from bot.slack.inbound import InputError, selected_date_time

Errors = dict[str, str]


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


def _element(state_values: dict[str, Any], field: Field) -> dict[str, Any]:
    """The state of one input; tolerates an action_id that differs from the block_id."""
    block = state_values.get(field.value)
    if not isinstance(block, dict) or not block:
        return {}
    element = block.get(field.value)
    if element is None:
        # One element per input block, so the only value is the one we want.
        element = next(iter(block.values()))
    return element if isinstance(element, dict) else {}


def _text_value(state_values: dict[str, Any], field: Field) -> str | None:
    value = _element(state_values, field).get("value")
    return value if isinstance(value, str) else None


def _selected_value(state_values: dict[str, Any], field: Field) -> str | None:
    option = _element(state_values, field).get("selected_option")
    if isinstance(option, dict) and isinstance(option.get("value"), str):
        return str(option["value"])
    return None


def _selected_values(state_values: dict[str, Any], field: Field) -> set[str]:
    options = _element(state_values, field).get("selected_options")
    if not isinstance(options, list):
        return set()
    return {str(o["value"]) for o in options if isinstance(o, dict) and "value" in o}


@dataclass
class EditForm:
    """A valid edit-modal submission."""

    caption: str
    title: str | None = None
    youtube: YouTubeSettings | None = None
    tiktok: TikTokSettings | None = None

    def to_content(self, old: PostContent) -> PostContent:
        """The edited content; fields the modal didn't show are kept from `old`."""
        return old.with_changes(
            caption=self.caption,
            title=self.title if self.title is not None else old.title,
            youtube=self.youtube if self.youtube is not None else old.youtube,
            tiktok=self.tiktok if self.tiktok is not None else old.tiktok,
        )


def parse_edit(state_values: dict[str, Any], platform: Platform) -> EditForm | Errors:
    """Validate the edit modal for `platform`: an EditForm, or errors keyed by input block_id."""
    errors: Errors = {}
    # The caption is kept exactly as typed (no strip): it is what will be posted.
    caption = _text_value(state_values, Field.CAPTION) or ""
    if (problem := caption_error(caption, platform)) is not None:
        errors[Field.CAPTION.value] = problem

    form = EditForm(caption=caption)
    if platform is Platform.YOUTUBE:
        # Surrounding spaces in a title are never intended; YouTube would trim them anyway.
        title = (_text_value(state_values, Field.TITLE) or "").strip()
        if (problem := title_error(title)) is not None:
            errors[Field.TITLE.value] = problem
        form.title = title
        category = _selected_value(state_values, Field.CATEGORY)
        if category is None:
            errors[Field.CATEGORY.value] = "Pick a category."
        elif category not in YOUTUBE_CATEGORIES:
            errors[Field.CATEGORY.value] = "Pick a category from the list."
        form.youtube = YouTubeSettings(category_id=category)
    elif platform is Platform.TIKTOK:
        privacy = _selected_value(state_values, Field.PRIVACY)
        if privacy not in TIKTOK_PRIVACY_LEVELS:
            errors[Field.PRIVACY.value] = "Choose who can view this post."
        checked = _selected_values(state_values, Field.TOGGLES)
        form.tiktok = TikTokSettings(
            privacy_level=privacy or "",
            **{key: key in checked for key in TIKTOK_TOGGLES},
        )
    return errors if errors else form


def parse_schedule(
    state_values: dict[str, Any],
    now_utc: datetime,
    min_lead: timedelta = timedelta(minutes=5),
) -> datetime | Errors:
    """The chosen publish time as an aware UTC datetime, or errors keyed by Field.WHEN."""
    key = Field.WHEN.value
    try:
        raw = selected_date_time(state_values, key)
    except InputError as err:
        return err.as_errors()
    if raw is None:
        return {key: "Pick a date and time."}
    when = datetime.fromtimestamp(raw, UTC)
    now = now_utc if now_utc.tzinfo is not None else now_utc.replace(tzinfo=UTC)
    if when <= now:
        return {key: "That time is in the past."}
    if when - now < min_lead:
        minutes = max(1, int(min_lead.total_seconds() // 60))
        unit = "minute" if minutes == 1 else "minutes"
        return {key: f"Pick a time at least {minutes} {unit} from now."}
    return when


def parse_cancel_reason(state_values: dict[str, Any]) -> str | None:
    """The optional cancel reason, stripped; None when left empty."""
    reason = (_text_value(state_values, Field.REASON) or "").strip()
    return reason or None
