"""Reading modal submissions: a provider's edit form as plain values, the schedule time, the cancel
reason. Pure functions over `view["state"]["values"]`; validation of an edit is the provider's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.domain import (
    CHANGE_NOTE_LIMIT,
    ChangeReason,
    ChoiceField,
    EditForm,
    FieldId,
    FormErrors,
    MultiChoiceField,
    TextField,
)
from bot.slack.inbound import InputError, selected_date_time


def _element(state_values: dict[str, Any], block_id: str) -> dict[str, Any]:
    """The state of one input; tolerates an action_id that differs from the block_id."""
    block = state_values.get(block_id)
    if not isinstance(block, dict) or not block:
        return {}
    element = block.get(block_id)
    if element is None:
        # One element per input block, so the only value is the one we want.
        element = next(iter(block.values()))
    return element if isinstance(element, dict) else {}


def _text(state_values: dict[str, Any], block_id: str) -> str | None:
    value = _element(state_values, block_id).get("value")
    return value if isinstance(value, str) else None


def _selected(state_values: dict[str, Any], block_id: str) -> str | None:
    option = _element(state_values, block_id).get("selected_option")
    if isinstance(option, dict) and isinstance(option.get("value"), str):
        return str(option["value"])
    return None


def _selected_many(state_values: dict[str, Any], block_id: str) -> list[str]:
    options = _element(state_values, block_id).get("selected_options")
    if not isinstance(options, list):
        return []
    return [str(o["value"]) for o in options if isinstance(o, dict) and isinstance(o.get("value"), str)]


def form_values(state_values: dict[str, Any], form: EditForm | None = None) -> dict[str, Any]:
    """The submitted values by field id: text -> str or None, one choice -> value or None, several ->
    a list. With the form, only its fields are read (and a field absent from the submission is
    absent here); without it, every input present is read by the shape of its state."""
    values: dict[str, Any] = {}
    if form is not None:
        for item in form.items:
            if isinstance(item, TextField | ChoiceField | MultiChoiceField) and item.id in state_values:
                values[item.id] = _read(state_values, item.id, item)
        return values
    for block_id in state_values:
        element = _element(state_values, block_id)
        if "selected_options" in element:
            values[block_id] = _selected_many(state_values, block_id)
        elif "selected_option" in element:
            values[block_id] = _selected(state_values, block_id)
        elif "value" in element:
            values[block_id] = _text(state_values, block_id)
    return values


def _read(state_values: dict[str, Any], block_id: str, item: TextField | ChoiceField | MultiChoiceField) -> Any:
    if isinstance(item, TextField):
        return _text(state_values, block_id)
    if isinstance(item, ChoiceField):
        return _selected(state_values, block_id)
    return _selected_many(state_values, block_id)


def parse_schedule(
    state_values: dict[str, Any],
    now_utc: datetime,
    min_lead: timedelta = timedelta(minutes=5),
) -> datetime | FormErrors:
    """The chosen publish time as an aware UTC datetime, or errors keyed by the WHEN input."""
    key = FieldId.WHEN.value
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


def parse_spacing(state_values: dict[str, Any], choices: tuple[int, ...]) -> timedelta | FormErrors:
    """Schedule all's gap between posts (one of `choices`, in minutes)."""
    key = FieldId.SPACING.value
    raw = state_values.get(key, {}).get(key, {}) if isinstance(state_values.get(key), dict) else {}
    option = raw.get("selected_option") if isinstance(raw, dict) else None
    value = option.get("value") if isinstance(option, dict) else None
    if not isinstance(value, str) or not value.isdigit() or int(value) not in choices:
        return {key: "Pick how far apart the posts go out."}
    return timedelta(minutes=int(value))


def parse_cancel_reason(state_values: dict[str, Any]) -> str | None:
    """The optional cancel reason, stripped; None when left empty."""
    reason = (_text(state_values, FieldId.REASON.value) or "").strip()
    return reason or None


def parse_change_request(state_values: dict[str, Any]) -> tuple[ChangeReason, str | None] | FormErrors:
    """The reason and the (stripped, optional) note of a "Request changes" modal, or inline errors.

    Slack enforces the radio choice and the note's length in the client; a forged or stale
    submission is checked here all the same.
    """
    errors: FormErrors = {}
    reason = ChangeReason.parse(_selected(state_values, FieldId.CHANGE_REASON.value))
    note = (_text(state_values, FieldId.CHANGE_NOTE.value) or "").strip() or None
    if reason is None:
        errors[FieldId.CHANGE_REASON.value] = "Pick what needs to change."
    if note is not None and len(note) > CHANGE_NOTE_LIMIT:
        errors[FieldId.CHANGE_NOTE.value] = f"Keep the note to {CHANGE_NOTE_LIMIT} characters (it has {len(note):,})."
    elif note is None and reason is ChangeReason.OTHER:
        errors[FieldId.CHANGE_NOTE.value] = "Say what should change (the reason is “Other”)."
    if errors or reason is None:
        return errors
    return reason, note
