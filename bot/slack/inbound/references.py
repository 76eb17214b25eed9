"""Post references carried in button values and private_metadata."""

from __future__ import annotations

import re
from typing import Annotated, TypeVar

from pydantic import (
    Field,
    ValidationError,
)

from bot.slack.inbound.parse import load_json
from bot.slack.inbound.policy import (
    DEFAULT_POLICY,
    MAX_POST_ID,
    MAX_PRIVATE_METADATA,
    InboundRejected,
    SlackModel,
)

UNKNOWN_POST = "Greenlight doesn't know this post any more."

PostId = Annotated[int, Field(ge=1, le=MAX_POST_ID)]


class InvalidReference(ValueError):
    """A button value or private_metadata that names no post. `reason` is safe to log;
    `user_message` is what to show (ephemeral for a click, inline error for a modal)."""

    user_message = UNKNOWN_POST

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Reference(SlackModel):
    """Base of the reference kinds: strict JSON types, unknown keys ignored."""


class PostButton(Reference):
    """A card button's value: the decimal post id, e.g. "42"."""

    post_id: PostId

    @classmethod
    def from_value(cls, value: object) -> PostButton:
        """Parse a button value; only ASCII digits, no sign, whitespace or leading zero."""
        if not isinstance(value, str) or not _DECIMAL_ID.fullmatch(value):
            raise InvalidReference("button value is not a post id")
        try:
            return cls(post_id=int(value))
        except ValidationError:
            raise InvalidReference("button value is out of range") from None


_DECIMAL_ID = re.compile(r"[1-9][0-9]{0,18}")


class PostMetadata(Reference):
    """A post modal's private_metadata: {"post_id": 42} (other keys, such as "tz", allowed)."""

    post_id: PostId


class ClipMetadata(Reference):
    """A clip modal's private_metadata: {"clip_id": 7, ...} (the plan's details ride along)."""

    clip_id: PostId
    action: str | None = None
    first_at: int | None = None
    spacing_minutes: int | None = None
    post_ids: list[PostId] = []


R = TypeVar("R", bound=Reference)


def parse_metadata(raw: object, model: type[R]) -> R:
    """Decode a view's private_metadata into `model`, or raise InvalidReference.

    New reference kinds (say a clip-level one) are a new Reference subclass passed here.
    """
    if not isinstance(raw, str) or not raw:
        raise InvalidReference("private_metadata is missing")
    if len(raw) > MAX_PRIVATE_METADATA:
        raise InvalidReference("private_metadata is too long")
    try:
        data = load_json(raw, DEFAULT_POLICY)
    except InboundRejected:
        raise InvalidReference("private_metadata is not JSON") from None
    if not isinstance(data, dict):
        raise InvalidReference("private_metadata is not a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError:
        raise InvalidReference(f"private_metadata is not a valid {model.__name__}") from None


def post_ref_from_button(value: object) -> int:
    """The post id a card button points at (button values are `str(post_id)`)."""
    return PostButton.from_value(value).post_id


def post_ref_from_metadata(raw: object) -> int:
    """The post id in a post modal's private_metadata: a JSON integer in 1..2^63-1, nothing else
    (not true, not 1.9, not "7")."""
    return parse_metadata(raw, PostMetadata).post_id


def clip_ref_from_button(value: object) -> int:
    """The clip id a clip button points at (button values are `str(clip_id)`), with the same rules."""
    try:
        return PostButton.from_value(value).post_id
    except InvalidReference as exc:
        raise InvalidReference(exc.reason.replace("post id", "clip id")) from None


def clip_metadata(raw: object) -> ClipMetadata:
    """A clip modal's private_metadata."""
    return parse_metadata(raw, ClipMetadata)
