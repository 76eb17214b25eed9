"""Modals: loading placeholder, a provider's edit form, schedule and cancel. Pure builders of `View`s.

Every input's block_id and action_id is its field id, so `forms.py` can find it and `views.update`
keeps what the user typed.
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
    DividerBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    RadioButtonsElement,
    SectionBlock,
    StaticMultiSelectElement,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.domain import (
    CHANGE_NOTE_LIMIT,
    ChangeReason,
    ChoiceField,
    EditForm,
    FormNote,
    MultiChoiceField,
    TextField,
)
from bot.domain.forms import FieldId
from bot.slack.ids import ViewId
from bot.slack.mrkdwn import escape, fmt

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


# Slack: checkboxes take at most 10 options; more become a multi-select.
MAX_CHECKBOXES = 10


def edit_modal(post_id: int, form: EditForm) -> View:
    """A provider's edit form as a modal, prefilled; every input's block_id is its field id."""
    blocks: list[Block] = [ContextBlock(elements=[MarkdownTextObject(text=escape(form.heading))])]
    for item in form.items:
        if isinstance(item, FormNote):
            # A note is our own words from the provider's form definition (it may carry *bold*).
            blocks.append(DividerBlock())
            blocks.append(ContextBlock(elements=[MarkdownTextObject(text=item.text)]))
        else:
            blocks.append(_input(item))
    return View(
        type="modal",
        callback_id=ViewId.EDIT,
        private_metadata=_metadata(post_id=post_id),
        title=_title(form.title),
        submit="Save",
        close="Cancel",
        blocks=blocks,
    )


def _input(item: TextField | ChoiceField | MultiChoiceField) -> InputBlock:
    element: Any
    if isinstance(item, TextField):
        element = PlainTextInputElement(
            action_id=item.id, multiline=item.multiline, initial_value=item.value or None,
            max_length=min(item.max_length, SLACK_INPUT_MAX) if item.max_length else None,
            placeholder=PlainTextObject(text=item.placeholder) if item.placeholder else None,
        )
        optional = not item.required
    elif isinstance(item, ChoiceField):
        options = [Option(value=o.value, text=o.label) for o in item.options]
        element = StaticSelectElement(
            action_id=item.id, placeholder="Choose", options=options,
            initial_option=next((o for o in options if o.value == item.selected), None),
        )
        optional = not item.required
    else:
        options = [Option(value=o.value, text=o.label) for o in item.options]
        # Slack rejects an empty initial_options list, so omit it instead.
        initial = [o for o in options if o.value in item.selected] or None
        element = (
            CheckboxesElement(action_id=item.id, options=options, initial_options=initial)
            if len(options) <= MAX_CHECKBOXES
            else StaticMultiSelectElement(action_id=item.id, placeholder="Choose", options=options,
                                          initial_options=initial)
        )
        optional = not item.required
    return InputBlock(block_id=item.id, label=item.label, element=element, optional=optional, hint=item.hint)


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
                block_id=FieldId.WHEN,
                label="Publish at",
                element=DateTimePickerElement(
                    action_id=FieldId.WHEN,
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
                block_id=FieldId.REASON,
                label="Reason (optional)",
                optional=True,
                element=PlainTextInputElement(
                    action_id=FieldId.REASON,
                    multiline=True,
                    max_length=REASON_MAX,
                    placeholder=PlainTextObject(text="Why is this post cancelled?"),
                ),
            ),
        ],
    )


def request_changes_modal(post_id: int, platform_label: str) -> View:
    """Ask for changes: one reason from a fixed list, and a note for whoever edits next."""
    intro = fmt("✋ The *{platform}* draft goes back for an edit: Publish, Schedule and Approve wait until the next "
                "version, and the card's thread asks whoever edited it last (or brought it in) to make the changes.",
                platform=platform_label)
    return View(
        type="modal",
        callback_id=ViewId.REQUEST_CHANGES,
        private_metadata=_metadata(post_id=post_id),
        title="Request changes",
        submit="Request changes",
        close="Cancel",
        blocks=[
            SectionBlock(text=MarkdownTextObject(text=intro)),
            InputBlock(
                block_id=FieldId.CHANGE_REASON,
                label="What needs to change?",
                element=RadioButtonsElement(
                    action_id=FieldId.CHANGE_REASON,
                    options=[Option(value=r.value, text=r.label) for r in ChangeReason],
                ),
            ),
            InputBlock(
                block_id=FieldId.CHANGE_NOTE,
                label="Note",
                optional=True,
                hint="Required when the reason is “Other”. Shown on the card and in the thread.",
                element=PlainTextInputElement(
                    action_id=FieldId.CHANGE_NOTE,
                    multiline=True,
                    max_length=CHANGE_NOTE_LIMIT,
                    placeholder=PlainTextObject(text="e.g. Too salesy for LinkedIn; drop the last hashtag."),
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
