"""Every Slack action id, view callback id and input id, written once.

Block Kit builders and listener registration both import from here, so a typo cannot silently
leave a button without a listener (tests/test_ids.py checks every id is registered).
"""

from __future__ import annotations

from enum import StrEnum


class ActionId(StrEnum):
    """Buttons on the card, on the clip message and on the App Home tab."""

    EDIT = "greenlight_edit"
    PUBLISH = "greenlight_publish"
    SCHEDULE = "greenlight_schedule"
    CANCEL = "greenlight_cancel"
    APPROVE = "greenlight_approve"
    REQUEST_CHANGES = "greenlight_request_changes"
    OPEN_CARD = "greenlight_open_card"
    PUBLISH_ALL = "greenlight_publish_all"
    SCHEDULE_ALL = "greenlight_schedule_all"


class ViewId(StrEnum):
    """Modal callback ids."""

    EDIT = "greenlight_edit_modal"
    SCHEDULE = "greenlight_schedule_modal"
    CANCEL = "greenlight_cancel_modal"
    REQUEST_CHANGES = "greenlight_request_changes_modal"
    LOADING = "greenlight_loading_modal"
    SCHEDULE_ALL = "greenlight_schedule_all_modal"
    BULK_CONFIRM = "greenlight_bulk_confirm_modal"


# Modal inputs: each value is both the input's block_id and its action_id. Providers' edit forms
# name their fields with the same ids, so they are defined once, in the domain.


COMMAND = "/greenlight"
