"""Every Slack action id, view callback id and input id, written once.

Block Kit builders and listener registration both import from here, so a typo cannot silently
leave a button without a listener (tests/test_ids.py checks every id is registered).
"""

from __future__ import annotations

from enum import StrEnum


class ActionId(StrEnum):
    """Buttons on the card and on the App Home tab."""

    EDIT = "greenlight_edit"
    PUBLISH = "greenlight_publish"
    SCHEDULE = "greenlight_schedule"
    CANCEL = "greenlight_cancel"
    APPROVE = "greenlight_approve"
    OPEN_CARD = "greenlight_open_card"


class ViewId(StrEnum):
    """Modal callback ids."""

    EDIT = "greenlight_edit_modal"
    SCHEDULE = "greenlight_schedule_modal"
    CANCEL = "greenlight_cancel_modal"
    LOADING = "greenlight_loading_modal"
    REAP_EDIT = "greenlight_reap_edit_modal"


class Field(StrEnum):
    """Modal inputs; each value serves as both the input block_id and the element action_id."""

    CAPTION = "greenlight_caption"
    TITLE = "greenlight_title"
    CATEGORY = "greenlight_category"
    PRIVACY = "greenlight_privacy"
    TOGGLES = "greenlight_toggles"
    WHEN = "greenlight_when"
    REASON = "greenlight_reason"
    DESCRIPTION = "greenlight_description"
    TAGS = "greenlight_tags"
    TARGETS = "greenlight_targets"
    YT_PRIVACY = "greenlight_yt_privacy"
    YT_KIDS = "greenlight_yt_kids"
    IG_FEED = "greenlight_ig_feed"
    LI_PRIVACY = "greenlight_li_privacy"


COMMAND = "/greenlight"
