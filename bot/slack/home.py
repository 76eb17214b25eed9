"""Overviews: the `/greenlight queue` reply, the App Home tab and `/greenlight help`.

Each group shows its true total in its heading and "…and N more" beyond the items that fit
(Slack allows 50 blocks in a message and 100 in the Home tab).
"""

from __future__ import annotations

from dataclasses import dataclass, field
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

from bot.domain import ChangeRequest, Platform, PostContent, PostStatus
from bot.slack.blocks import platform_title
from bot.slack.ids import COMMAND, ActionId
from bot.slack.mrkdwn import Mrkdwn, date, escape, fmt, link, mention, safe_url

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
HEADLINE_CHARS = 80
# Items per group: 2 queue groups fit in a message, 5 home groups fit in a view, each with room
# for its header, its "…and N more" line and the page's own header and intro.
QUEUE_ITEMS_PER_GROUP = 20
HOME_ITEMS_PER_GROUP = 15


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
    # The decision deadline passed (DECISION_DEADLINE).
    overdue: bool = False
    # The open change request, in the "changes requested" group.
    changes: ChangeRequest | None = None


@dataclass(frozen=True)
class QueueGroup:
    """The first items of one group, and how many posts the group holds in all (and how many of
    them are overdue)."""

    items: list[QueueItem] = field(default_factory=list)
    total: int = 0
    overdue: int = 0

    @property
    def more(self) -> int:
        """Posts in the group that are not listed."""
        return max(0, self.total - len(self.items))


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
    PostStatus.PROCESSING: "publishing since",
    PostStatus.UPLOADING: "uploading since",
    PostStatus.PUBLISHED: "published",
    PostStatus.FAILED: "failed",
    PostStatus.CANCELLED: "cancelled",
    PostStatus.UNKNOWN: "last seen",
}


def _item_text(item: QueueItem, *, with_link: bool) -> Mrkdwn:
    head = item.headline if len(item.headline) <= HEADLINE_CHARS else item.headline[: HEADLINE_CHARS - 1] + "…"
    details: list[Mrkdwn] = []
    if item.overdue:
        details.append(Mrkdwn("⏰ *overdue*"))
    if item.changes is not None:
        details.append(fmt("✋ {reason}, asked by {who}", reason=item.changes.reason.label, who=mention(item.changes.by)))
    if item.status is PostStatus.DRAFT and item.required > 1 and item.changes is None:
        details.append(fmt("approvals {n}/{need}", n=item.approvals, need=item.required))
    if item.when is not None:
        details.append(fmt("{words} {when}", words=_WHEN_WORDS[item.status], when=date(item.when)))
    if with_link and item.permalink:
        details.append(link(item.permalink, "Open card"))
    line = fmt("{platform} · *{head}*", platform=platform_title(item.platform), head=head)
    if details:
        line = fmt("{line}\n{details}", line=line, details=Mrkdwn(" · ").join(details))
    return line


def _item_block(item: QueueItem, *, button: bool) -> SectionBlock:
    # The Home tab gets a real button (it reads better there); messages keep a plain link.
    accessory = None
    url = safe_url(item.permalink)
    if button and url:
        accessory = ButtonElement(text="Open card", action_id=ActionId.OPEN_CARD, url=url, value=str(item.post_id))
    return SectionBlock(
        text=MarkdownTextObject(text=_item_text(item, with_link=not button)),
        accessory=accessory,
    )


def _heading(title: str, group: QueueGroup) -> Mrkdwn:
    count = f"{group.total:,}" + (f" · {group.overdue:,} overdue" if group.overdue else "")
    return fmt("*{title} ({n})*", title=title, n=count)


def _caps(groups: list[QueueGroup], cap: int, budget: int) -> list[int]:
    """Items to show per group: at most `cap` each, `budget` in all, earlier groups first."""
    caps: list[int] = []
    for group in groups:
        n = min(cap, len(group.items), max(0, budget))
        caps.append(n)
        budget -= n
    return caps


def _group(title: str, group: QueueGroup, *, empty: str, cap: int, button: bool) -> list[Block]:
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=_heading(title, group)))]
    if not group.items:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=escape(empty))]))
        return blocks
    shown = group.items[:cap]
    blocks.extend(_item_block(item, button=button) for item in shown)
    more = group.total - len(shown)
    if more > 0:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=fmt("…and {n} more", n=f"{more:,}"))]))
    return blocks


def _groups_blocks(groups: list[tuple[str, QueueGroup, str]], *, cap: int, budget: int, button: bool,
                   divider_first: bool) -> list[Block]:
    """The groups in order, each with its heading and "…and N more", sharing `budget` blocks."""
    # Every group keeps its heading and its empty / "…and N more" line; items share what's left.
    fixed = len(groups) * 2 + (len(groups) if divider_first else len(groups) - 1)
    caps = _caps([group for _, group, _ in groups], cap, budget - fixed)
    blocks: list[Block] = []
    for i, ((title, group, empty), n) in enumerate(zip(groups, caps, strict=True)):
        if divider_first or i > 0:
            blocks.append(DividerBlock())
        blocks += _group(title, group, empty=empty, cap=n, button=button)
    return blocks


def queue_blocks(
    waiting: QueueGroup, scheduled: QueueGroup, changes: QueueGroup | None = None,
) -> tuple[str, list[Block]]:
    """The ephemeral `/greenlight queue` reply: posts awaiting review, those sent back for changes,
    then scheduled ones (≤ 50 blocks)."""
    changes = changes or QueueGroup()
    text = f"{waiting.total:,} waiting for review, {changes.total:,} with changes requested, {scheduled.total:,} scheduled"
    if not changes.total:
        text = f"{waiting.total:,} waiting for review, {scheduled.total:,} scheduled"
    if not waiting.total and not scheduled.total and not changes.total:
        empty_text = "Nothing is waiting for review 🎉"
        return empty_text, [SectionBlock(text=MarkdownTextObject(text=empty_text))]
    if waiting.overdue:
        text += f" ({waiting.overdue:,} overdue)"
    groups: list[tuple[str, QueueGroup, str]] = [("📝 Waiting for review", waiting, "Nothing is waiting for review 🎉")]
    if changes.total:
        groups.append(("✋ Changes requested", changes, "No changes requested."))
    groups.append(("🗓 Scheduled", scheduled, "Nothing is scheduled."))
    blocks: list[Block] = [HeaderBlock(text="Greenlight queue")]
    blocks += _groups_blocks(groups, cap=QUEUE_ITEMS_PER_GROUP, budget=MAX_MESSAGE_BLOCKS - 1, button=False,
                             divider_first=False)
    return text, blocks[:MAX_MESSAGE_BLOCKS]


def home_view(
    waiting: QueueGroup,
    scheduled: QueueGroup,
    published: QueueGroup,
    failed: QueueGroup,
    in_flight: QueueGroup | None = None,
    changes: QueueGroup | None = None,
) -> View:
    """The App Home tab: the groups with their true counts (≤ 100 blocks)."""
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
    groups: list[tuple[str, QueueGroup, str]] = [("📝 Waiting for review", waiting, "Nothing is waiting for review 🎉")]
    if changes is not None:
        groups.append(("✋ Changes requested", changes, "No changes requested."))
    groups.append(("🗓 Scheduled", scheduled, "Nothing is scheduled."))
    if in_flight is not None:
        groups.append(("⏳ Publishing now", in_flight, "Nothing is being published right now."))
    groups += [
        ("❌ Failed (last 7 days)", failed, "No failures."),
        ("🚀 Recently published (last 7 days)", published, "Nothing published yet."),
    ]
    blocks += _groups_blocks(groups, cap=HOME_ITEMS_PER_GROUP, budget=MAX_VIEW_BLOCKS - len(blocks), button=True,
                             divider_first=True)
    return View(type="home", blocks=blocks[:MAX_VIEW_BLOCKS])


@dataclass(frozen=True)
class ProviderCommand:
    """`/greenlight <command> <id>`: bring a provider's <noun> in."""

    command: str
    noun: str
    provider: str


def help_blocks(commands: list[ProviderCommand]) -> tuple[str, list[Block]]:
    """The `/greenlight help` reply."""
    lines = [
        fmt("`{c} {sub} {arg}` — post the {provider} drafts of a {noun} here for review", c=COMMAND, sub=p.command,
            arg=f"<{p.noun.split()[-1]}_id>", provider=p.provider, noun=p.noun.split()[-1])
        for p in commands
    ]
    lines += [
        fmt("`{c} queue` — what's waiting for review and what's scheduled (only you see it)", c=COMMAND),
        fmt("`{c} help` — this message", c=COMMAND),
    ]
    commands_text = Mrkdwn("\n").join(lines)
    buttons = "\n".join(
        [
            "*Edit* — change the caption (and the title, category or TikTok settings) before it goes out",
            "*Approve* — count your approval when a post needs more than one",
            "*Publish* — post it now",
            "*Schedule* — pick a date and time (in your Slack time zone, at least 5 minutes ahead)",
            "*Request changes* — send the draft back with a reason and a note; the next edit resolves it",
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
        SectionBlock(text=MarkdownTextObject(text=fmt("*Commands*\n{commands}", commands=commands_text))),
        SectionBlock(text=MarkdownTextObject(text=f"*Buttons on a card*\n{buttons}")),
        ContextBlock(
            elements=[MarkdownTextObject(text="Times on cards are shown in your own Slack time zone.")]
        ),
    ]
    return text, blocks
