"""Modals: loading placeholder, edit, schedule and cancel. Pure builders returning `View`s.

Every input's block_id and action_id is the same `Field` value, so `forms.py` can find it and
`views.update` keeps what the user typed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk.models.blocks import (
    Block,
    CheckboxesElement,
    ContextBlock,
    DateTimePickerElement,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.domain import (
    CAPTION_LIMITS,
    TIKTOK_PRIVACY_LEVELS,
    TIKTOK_TOGGLES,
    YOUTUBE_CATEGORIES,
    YOUTUBE_TITLE_LIMIT,
    Platform,
    PostContent,
    TikTokSettings,
)
from bot.slack.blocks import platform_title
from bot.slack.ids import Field, ViewId
from bot.slack.mrkdwn import fmt

# Slack's own cap on plain_text_input max_length; longer limits are checked in forms.py.
SLACK_INPUT_MAX = 3000
TITLE_MAX = 24
REASON_MAX = 500


def _metadata(**values: Any) -> str:
    return json.dumps(values, separators=(",", ":"))


def _title(text: str) -> str:
    # Modal titles are capped at 24 characters; a longer one fails views.open.
    return text if len(text) <= TITLE_MAX else text[: TITLE_MAX - 1] + "…"


def loading_modal(title: str) -> View:
    """A placeholder opened at once (trigger_ids expire in 3 s), then replaced via views.update."""
    return View(
        type="modal",
        callback_id=ViewId.LOADING,
        title=_title(title),
        close="Close",
        blocks=[SectionBlock(text=MarkdownTextObject(text="⏳ Loading…"))],
    )


def _caption_input(platform: Platform, caption: str) -> InputBlock:
    limit = CAPTION_LIMITS[platform]
    # Slack's max_length stops typing past the limit, but it can't go above 3000 (YouTube allows
    # 5000) and a prefilled value already over it could be refused, so forms.py is the real check.
    max_length = limit if limit <= SLACK_INPUT_MAX and len(caption) <= limit else None
    hint = None
    if platform is Platform.TIKTOK:
        hint = "TikTok counts most emoji as 2 characters."
    return InputBlock(
        block_id=Field.CAPTION,
        label=f"Caption (max {limit:,} characters)",
        element=PlainTextInputElement(
            action_id=Field.CAPTION,
            multiline=True,
            initial_value=caption or None,
            max_length=max_length,
        ),
        hint=hint,
    )


def _category_input(category_id: str | None) -> InputBlock:
    options = [Option(value=cid, text=name) for cid, name in YOUTUBE_CATEGORIES.items()]
    initial = next((o for o in options if o.value == category_id), None)
    hint = None
    if category_id is not None and initial is None:
        hint = f"The current category ({category_id}) isn't one YouTube lets us assign; pick one."
    return InputBlock(
        block_id=Field.CATEGORY,
        label="Category",
        element=StaticSelectElement(
            action_id=Field.CATEGORY,
            placeholder="Pick a category",
            options=options,
            initial_option=initial,
        ),
        hint=hint,
    )


def _tiktok_inputs(settings: TikTokSettings) -> list[Block]:
    privacy_options = [Option(value=v, text=label) for v, label in TIKTOK_PRIVACY_LEVELS.items()]
    initial_privacy = next((o for o in privacy_options if o.value == settings.privacy_level), None)
    toggle_options = [Option(value=k, text=label) for k, label in TIKTOK_TOGGLES.items()]
    flags = settings.to_dict()
    checked = [o for o in toggle_options if flags.get(o.value)]
    return [
        InputBlock(
            block_id=Field.PRIVACY,
            label="Who can view",
            element=StaticSelectElement(
                action_id=Field.PRIVACY,
                placeholder="Choose who can view",
                options=privacy_options,
                initial_option=initial_privacy,
            ),
        ),
        InputBlock(
            block_id=Field.TOGGLES,
            label="TikTok options",
            # Optional: leaving every box unticked is a valid choice (comments, duet, stitch on).
            optional=True,
            element=CheckboxesElement(
                action_id=Field.TOGGLES,
                options=toggle_options,
                # Slack rejects an empty initial_options list, so omit it instead.
                initial_options=checked or None,
            ),
        ),
    ]


def edit_modal(post_id: int, platform: Platform, content: PostContent) -> View:
    """The edit form for one post, prefilled; fields depend on the platform."""
    blocks: list[Block] = [
        ContextBlock(
            elements=[MarkdownTextObject(text=f"{platform_title(platform)} post · Greenlight #{post_id}")]
        )
    ]
    if platform is Platform.YOUTUBE:
        title = content.title or ""
        blocks.append(
            InputBlock(
                block_id=Field.TITLE,
                label=f"Title (max {YOUTUBE_TITLE_LIMIT} characters)",
                element=PlainTextInputElement(
                    action_id=Field.TITLE,
                    initial_value=title or None,
                    # Same reasoning as the caption: don't cap below a value we prefill.
                    max_length=YOUTUBE_TITLE_LIMIT if len(title) <= YOUTUBE_TITLE_LIMIT else None,
                ),
            )
        )
    blocks.append(_caption_input(platform, content.caption))
    if platform is Platform.YOUTUBE:
        blocks.append(_category_input(content.youtube.category_id if content.youtube else None))
    elif platform is Platform.TIKTOK:
        blocks.extend(_tiktok_inputs(content.tiktok or TikTokSettings()))
    return View(
        type="modal",
        callback_id=ViewId.EDIT,
        private_metadata=_metadata(post_id=post_id),
        title="Edit draft",
        submit="Save",
        close="Cancel",
        blocks=blocks,
    )


def schedule_modal(post_id: int, tz_name: str, tz_label: str, initial: datetime) -> View:
    """Pick when to publish; the datetimepicker shows the viewer's own Slack time zone."""
    return View(
        type="modal",
        callback_id=ViewId.SCHEDULE,
        private_metadata=_metadata(post_id=post_id, tz=tz_name),
        title="Schedule post",
        submit="Schedule",
        close="Cancel",
        blocks=[
            InputBlock(
                block_id=Field.WHEN,
                label="Publish at",
                element=DateTimePickerElement(
                    action_id=Field.WHEN,
                    initial_date_time=int(initial.timestamp()),
                ),
                hint=f"Times are in your Slack time zone ({tz_label}). At least 5 minutes from now.",
            )
        ],
    )


def cancel_modal(post_id: int, platform_label: str, status_label: str) -> View:
    """Confirm a cancel, with an optional reason for the audit trail."""
    warning = fmt(
        "⚠️ This cancels the *{platform}* post (currently {status}). It can't be undone.",
        platform=platform_label, status=status_label,
    )
    return View(
        type="modal",
        callback_id=ViewId.CANCEL,
        private_metadata=_metadata(post_id=post_id),
        title="Cancel post",
        submit="Cancel post",
        close="Keep it",
        blocks=[
            SectionBlock(text=MarkdownTextObject(text=warning)),
            InputBlock(
                block_id=Field.REASON,
                label="Reason (optional)",
                optional=True,
                element=PlainTextInputElement(
                    action_id=Field.REASON,
                    multiline=True,
                    max_length=REASON_MAX,
                    placeholder=PlainTextObject(text="Why is this post cancelled?"),
                ),
            ),
        ],
    )


def _zone(tz_name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(tz_name) if tz_name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        # Slack sometimes reports a zone our tzdata lacks; UTC is a safe, visible default.
        return ZoneInfo("UTC")


def next_full_hour(now_utc: datetime, tz_name: str) -> datetime:
    """The next full hour on the wall clock of `tz_name` (UTC if unknown), tz-aware, strictly after now."""
    zone = _zone(tz_name)
    now = now_utc if now_utc.tzinfo is not None else now_utc.replace(tzinfo=UTC)
    # Walk a 15-minute grid in absolute time until the local clock shows :00. Every real UTC
    # offset is a multiple of 15 minutes (Kolkata +5:30, Kathmandu +5:45), and stepping in UTC
    # never lands on a wall-clock time skipped or doubled by a DST change.
    t = now.astimezone(UTC).replace(second=0, microsecond=0)
    t -= timedelta(minutes=t.minute % 15)
    for _ in range(4 * 48):
        t += timedelta(minutes=15)
        local = t.astimezone(zone)
        if local.minute == 0 and t > now:
            return local
    return (t + timedelta(minutes=15)).astimezone(zone)  # unreachable with real zones
