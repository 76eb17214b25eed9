"""Modal input values, read defensively: typed errors that become inline modal errors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bot.slack.inbound.policy import MAX_DATETIME_SECONDS

UNSTORABLE_TEXT = "This text contains characters Slack can't store; please retype it."
INVALID_DATETIME = "That date and time isn't valid; please pick it again."

# C0 controls except \t and \n, and any surrogate code point (in a Python str decoded by json,
# a surrogate is always a lone one: valid pairs are combined into one character).
_UNSTORABLE = re.compile("[\x00-\x08\x0b-\x1f\ud800-\udfff]")


class InputError(ValueError):
    """A modal input that can't be accepted: answer `ack(response_action="errors",
    errors={block_id: message})`."""

    def __init__(self, block_id: str, message: str) -> None:
        super().__init__(message)
        self.block_id = block_id
        self.message = message

    def as_errors(self) -> dict[str, str]:
        """The mapping for ack(response_action="errors", errors=...)."""
        return {self.block_id: self.message}


def has_unstorable_characters(text: str) -> bool:
    """True for lone surrogates, NUL and other C0 controls except \\t and \\n."""
    return _UNSTORABLE.search(text) is not None


def _element(values: Mapping[str, Any], block_id: str) -> Mapping[str, Any]:
    block = values.get(block_id) if isinstance(values, Mapping) else None
    if not isinstance(block, Mapping) or not block:
        return {}
    element = block.get(block_id)
    if element is None:
        element = next(iter(block.values()))  # one element per input block
    return element if isinstance(element, Mapping) else {}


def text_input(values: Mapping[str, Any], block_id: str) -> str | None:
    """A plain_text_input's value (None when empty or absent); InputError if it has characters
    that can't be stored or sent back to Slack."""
    value = _element(values, block_id).get("value")
    if not isinstance(value, str):
        return None
    if has_unstorable_characters(value):
        raise InputError(block_id, UNSTORABLE_TEXT)
    return value


def unstorable_text_errors(values: Mapping[str, Any]) -> dict[str, str]:
    """{block_id: UNSTORABLE_TEXT} for every input in `view.state.values` whose text is unusable."""
    errors: dict[str, str] = {}
    if not isinstance(values, Mapping):
        return errors
    for block_id, block in values.items():
        if not isinstance(block, Mapping):
            continue
        for element in block.values():
            value = element.get("value") if isinstance(element, Mapping) else None
            if isinstance(value, str) and has_unstorable_characters(value):
                errors[str(block_id)] = UNSTORABLE_TEXT
    return errors


_DATETIME_DIGITS = re.compile(r"[0-9]{1,10}")


def selected_date_time(values: Mapping[str, Any], block_id: str) -> int | None:
    """A datetimepicker's UNIX seconds (None when nothing is picked); InputError when the value is
    not an integer in 0..9_999_999_999 (10^13, a 30-digit number, 1.5, true, "-1"...)."""
    raw = _element(values, block_id).get("selected_date_time")
    if raw is None:
        return None
    if isinstance(raw, str) and _DATETIME_DIGITS.fullmatch(raw):
        raw = int(raw)
    if not isinstance(raw, int) or isinstance(raw, bool) or not 0 <= raw <= MAX_DATETIME_SECONDS:
        raise InputError(block_id, INVALID_DATETIME)
    return raw
