"""Overviews: the `/greenlight queue` reply, the App Home tab and `/greenlight help`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from slack_sdk.models.blocks import (
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.domain import Platform, PostContent, PostStatus
from bot.slack.blocks import clip_text, escape_mrkdwn, platform_title, slack_date
from bot.slack.ids import COMMAND, ActionId

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
HEADLINE_CHARS = 80
# Items per group: 2 queue groups fit in a message, 4 home groups fit in a view, each with room
# for its header, its "…and N more" line and the page's own header and intro.
QUEUE_ITEMS_PER_GROUP = 20
HOME_ITEMS_PER_GROUP = 20


@dataclass(frozen=True)
class QueueItem:
    """One post in an overview list."""

    post_id: int
    platform: Platform
    headline: str
    status: PostStatus
    permalink: str | None = None
    when: datetime | None = None
    approvals: int = 0
    required: int = 1


def headline(content: PostContent, limit: int = HEADLINE_CHARS) -> str:
    """A one-line summary of a post: its title, or the caption's first line, cut to `limit`."""
    source = content.title or content.caption
    first = next((line.strip() for line in source.splitlines() if line.strip()), "")
    if not first:
        return "(no caption)"
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


# How each group phrases an item's time.
_WHEN_WORDS: dict[PostStatus, str] = {
    PostStatus.DRAFT: "waiting since",
    PostStatus.QUEUED: "queued",
    PostStatus.SCHEDULED: "goes out",
    PostStatus.PUBLISHED: "published",
    PostStatus.FAILED: "failed",
    PostStatus.CANCELLED: "cancelled",
}


def _item_text(item: QueueItem, *, link: bool) -> str:
    head = escape_mrkdwn(clip_text(item.headline, HEADLINE_CHARS))
    details: list[str] = []
    if item.status is PostStatus.DRAFT and item.required > 1:
        details.append(f"approvals {item.approvals}/{item.required}")
    if item.when is not None:
        details.append(f"{_WHEN_WORDS[item.status]} {slack_date(item.when)}")
    if link and item.permalink:
        details.append(f"<{escape_mrkdwn(item.permalink)}|Open card>")
    line = f"{platform_title(item.platform)} · *{head}*"
    if details:
        line += "\n" + " · ".join(details)
    return line


def _item_block(item: QueueItem, *, button: bool) -> SectionBlock:
    # The Home tab gets a real button (it reads better there); messages keep a plain link.
    accessory = None
    if button and item.permalink:
        accessory = ButtonElement(
            text="Open card", action_id=ActionId.OPEN_CARD, url=item.permalink, value=str(item.post_id)
        )
    return SectionBlock(
        text=MarkdownTextObject(text=_item_text(item, link=not button)),
        accessory=accessory,
    )


def _group(title: str, items: Sequence[QueueItem], *, empty: str, cap: int, button: bool) -> list[Block]:
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=f"*{title} ({len(items)})*"))]
    if not items:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=empty)]))
        return blocks
    blocks.extend(_item_block(item, button=button) for item in items[:cap])
    if len(items) > cap:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"…and {len(items) - cap} more")]))
    return blocks


def queue_blocks(waiting: list[QueueItem], scheduled: list[QueueItem]) -> tuple[str, list[Block]]:
    """The ephemeral `/greenlight queue` reply: posts awaiting review, then scheduled ones (≤ 50 blocks)."""
    text = f"{len(waiting)} waiting for review, {len(scheduled)} scheduled"
    if not waiting and not scheduled:
        empty_text = "Nothing is waiting for review 🎉"
        return empty_text, [SectionBlock(text=MarkdownTextObject(text=empty_text))]
    blocks: list[Block] = [HeaderBlock(text="Greenlight queue")]
    blocks += _group(
        "📝 Waiting for review",
        waiting,
        empty="Nothing is waiting for review 🎉",
        cap=QUEUE_ITEMS_PER_GROUP,
        button=False,
    )
    blocks.append(DividerBlock())
    blocks += _group(
        "🗓 Scheduled", scheduled, empty="Nothing is scheduled.", cap=QUEUE_ITEMS_PER_GROUP, button=False
    )
    return text, blocks[:MAX_MESSAGE_BLOCKS]


def home_view(
    waiting: list[QueueItem],
    scheduled: list[QueueItem],
    published: list[QueueItem],
    failed: list[QueueItem],
) -> View:
    """The App Home tab: four groups with counts (≤ 100 blocks)."""
    blocks: list[Block] = [
        HeaderBlock(text="Greenlight"),
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=f"Drafts waiting for review, scheduled posts and recent results. `{COMMAND} help` for commands."
                )
            ]
        ),
    ]
    groups = [
        ("📝 Waiting for review", waiting, "Nothing is waiting for review 🎉"),
        ("🗓 Scheduled", scheduled, "Nothing is scheduled."),
        ("❌ Failed", failed, "No failures."),
        ("🚀 Recently published", published, "Nothing published yet."),
    ]
    for title, items, empty in groups:
        blocks.append(DividerBlock())
        blocks += _group(title, items, empty=empty, cap=HOME_ITEMS_PER_GROUP, button=True)
    return View(type="home", blocks=blocks[:MAX_VIEW_BLOCKS])


def help_blocks() -> tuple[str, list[Block]]:
    """The `/greenlight help` reply."""
    # `<clip_id>` would be read as a Slack link even inside backticks, hence the escaping.
    commands = "\n".join(
        [
            f"`{COMMAND} clip {escape_mrkdwn('<clip_id>')}` — post the Choppity drafts of a clip here for review",
            f"`{COMMAND} reap {escape_mrkdwn('<project_id>')}` — post the Reap drafts of a project here for review",
            f"`{COMMAND} queue` — what's waiting for review and what's scheduled (only you see it)",
            f"`{COMMAND} help` — this message",
        ]
    )
    buttons = "\n".join(
        [
            "*Edit* — change the caption (and the title, category or TikTok settings) before it goes out",
            "*Approve* — count your approval when a post needs more than one",
            "*Publish* — post it now",
            "*Schedule* — pick a date and time (in your Slack time zone, at least 5 minutes ahead)",
            "*Cancel* — stop the post, with an optional reason; this can't be undone",
        ]
    )
    text = f"Greenlight: review AI-drafted posts in Slack. Try `{COMMAND} queue`."
    blocks: list[Block] = [
        HeaderBlock(text="Greenlight help"),
        SectionBlock(
            text=MarkdownTextObject(
                text="Greenlight posts each AI-drafted social post here as a card. "
                "Nothing goes out until someone presses *Publish* or *Schedule*."
            )
        ),
        SectionBlock(text=MarkdownTextObject(text=f"*Commands*\n{commands}")),
        SectionBlock(text=MarkdownTextObject(text=f"*Buttons on a card*\n{buttons}")),
        ContextBlock(
            elements=[MarkdownTextObject(text="Times on cards are shown in your own Slack time zone.")]
        ),
    ]
    return text, blocks
