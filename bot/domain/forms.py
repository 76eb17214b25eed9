"""Edit forms as data: a provider says which fields its drafts have, bot.slack renders them as a modal.

Field ids double as the modal's input block ids, so they are written once, here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.domain.posts import PostContent


class FieldId(StrEnum):
    """Every field a provider's edit form may have (and the inputs of the schedule, cancel and
    request-changes modals)."""

    CAPTION = "greenlight_caption"
    TITLE = "greenlight_title"
    CATEGORY = "greenlight_category"
    PRIVACY = "greenlight_privacy"
    TOGGLES = "greenlight_toggles"
    WHEN = "greenlight_when"
    SPACING = "greenlight_spacing"
    REASON = "greenlight_reason"
    TAGS = "greenlight_tags"
    TARGETS = "greenlight_targets"
    YT_PRIVACY = "greenlight_yt_privacy"
    YT_KIDS = "greenlight_yt_kids"
    IG_FEED = "greenlight_ig_feed"
    LI_PRIVACY = "greenlight_li_privacy"
    # The "Request changes" modal.
    CHANGE_REASON = "greenlight_change_reason"
    CHANGE_NOTE = "greenlight_change_note"


@dataclass(frozen=True)
class Option:
    """One choice of a select or a checkbox group."""

    value: str
    label: str


@dataclass(frozen=True)
class TextField:
    """A text input. `max_length` is what the input itself enforces (Slack caps it at 3000)."""

    id: FieldId
    label: str
    value: str | None = None
    multiline: bool = False
    required: bool = True
    max_length: int | None = None
    hint: str | None = None
    placeholder: str | None = None


@dataclass(frozen=True)
class ChoiceField:
    """Pick one."""

    id: FieldId
    label: str
    options: tuple[Option, ...]
    selected: str | None = None
    required: bool = True
    hint: str | None = None


@dataclass(frozen=True)
class MultiChoiceField:
    """Pick any number (checkboxes, or a multi-select when there are many options)."""

    id: FieldId
    label: str
    options: tuple[Option, ...]
    selected: tuple[str, ...] = ()
    # Optional by default: "none ticked" is usually a valid answer, and when it isn't the provider
    # says so in words rather than Slack's generic "this field is required".
    required: bool = False
    hint: str | None = None


@dataclass(frozen=True)
class FormNote:
    """A line of explanation between fields."""

    text: str


FormItem = TextField | ChoiceField | MultiChoiceField | FormNote


@dataclass(frozen=True)
class EditForm:
    """A draft's edit form: a heading line and the fields, in order."""

    heading: str
    items: tuple[FormItem, ...]
    title: str = "Edit draft"


# What was submitted, by field id: text -> str (None when left empty), one choice -> its value (or
# None), several -> the list of values. A field absent from the mapping was not in the modal.
FormValues = Mapping[str, Any]
FormErrors = dict[str, str]


@dataclass(frozen=True)
class Change:
    """An accepted edit: the new content, the provider's new state for a draft it doesn't hold itself,
    and a field-level summary for the thread and the audit ("caption (64 → 71 chars), tags")."""

    content: PostContent
    summary: str
    state: dict[str, Any] | None = None
