"""Small Block Kit surfaces for telling someone something: an information modal."""

from __future__ import annotations

from slack_sdk.models.blocks import SectionBlock
from slack_sdk.models.blocks.basic_components import MarkdownTextObject, PlainTextObject
from slack_sdk.models.views import View

from bot.slack.ids import ViewId


def notice_modal(title: str, text: str) -> View:
    """A modal with one message and a Close button (replaces a loading modal on errors)."""
    return View(
        type="modal",
        callback_id=ViewId.LOADING.value,
        title=PlainTextObject(text=title[:24]),
        close=PlainTextObject(text="Close"),
        blocks=[SectionBlock(text=MarkdownTextObject(text=text[:2900]))],
    )
