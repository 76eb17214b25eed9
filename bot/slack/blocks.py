"""The review card: one Slack message per post, re-rendered in place on every state change.

Pure functions from `domain.Card` to `slack_sdk.models` blocks; nothing here touches the client.
Text that comes from a provider or a user (captions, titles, errors, notes) is either sent as
plain_text or escaped, so a caption containing `<!channel>` or `*stars*` shows literally and
pings nobody.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.domain import (
    CAPTION_LIMITS,
    TIKTOK_PRIVACY_LEVELS,
    TIKTOK_TOGGLES,
    YOUTUBE_CATEGORIES,
    Card,
    PendingAction,
    Platform,
    PostStatus,
    Provider,
    TikTokSettings,
)
from bot.slack.forms import caption_length
from bot.slack.ids import ActionId

MAX_MESSAGE_BLOCKS = 50
# Slack caps a section's text at 3000; we stay below it and count UTF-16 units, the stricter of
# the ways Slack might count, so an emoji-heavy part never trips `invalid_blocks`.
CAPTION_PART_UNITS = 2900
# Slack rejects messages whose blocks hold roughly 12k characters in total (`msg_blocks_too_long`,
# undocumented). No platform allows a caption this long, so past it we cut, and say so.
CARD_CAPTION_BUDGET = 10_000
FALLBACK_TEXT_LIMIT = 3000
CONTEXT_TEXT_LIMIT = 2900
# The actions block keeps one block_id per post so listeners and tests can find it.
CARD_ACTIONS_BLOCK_PREFIX = "card_actions_"

PLATFORM_ICONS: dict[Platform, str] = {
    Platform.YOUTUBE: "▶️",
    Platform.TIKTOK: "🎵",
    Platform.INSTAGRAM: "📸",
    Platform.LINKEDIN: "💼",
    Platform.X: "𝕏",
}

# Short badge per status for the header and the fallback text.
STATUS_BADGES: dict[PostStatus, str] = {
    PostStatus.DRAFT: "📝 Draft",
    PostStatus.QUEUED: "✅ Queued",
    PostStatus.SCHEDULED: "🗓 Scheduled",
    PostStatus.PUBLISHED: "🚀 Published",
    PostStatus.FAILED: "❌ Failed",
    PostStatus.CANCELLED: "🚫 Cancelled",
}

PENDING_LABELS: dict[PendingAction, str] = {
    PendingAction.PUBLISH: "Publishing…",
    PendingAction.SCHEDULE: "Scheduling…",
    PendingAction.CANCEL: "Cancelling…",
    PendingAction.EDIT: "Saving your edit…",
}

# Card wording of the five TikTok toggles, keyed like domain.TIKTOK_TOGGLES. The "disable_*"
# flags read inverted ("Comments: on" means disable_comment is False) because people think in
# what is allowed, not in what is disabled.
TIKTOK_TOGGLE_WORDS: dict[str, tuple[str, str, str]] = {
    # key: (label, word when flag is True, word when flag is False)
    "disable_comment": ("Comments", "off", "on"),
    "disable_duet": ("Duet", "off", "on"),
    "disable_stitch": ("Stitch", "off", "on"),
    "brand_content_toggle": ("Branded content", "yes", "no"),
    "brand_organic_toggle": ("Own brand promotion", "yes", "no"),
}

# Slack user ids look like U0123ABCD (W… on Enterprise Grid); "_" admits readable ids in tests.
_USER_ID = re.compile(r"^[UW][A-Z0-9_]{2,}$")


def escape_mrkdwn(text: str) -> str:
    """Escape `&`, `<`, `>` the way Slack requires so text shows literally in mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape_mrkdwn(text: str) -> str:
    """Inverse of escape_mrkdwn."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def mention(user: str | None) -> str:
    """`<@U…>` for a Slack user id; anything else (a provider name, say) escaped as text."""
    if not user:
        return "someone"
    if _USER_ID.match(user):
        return f"<@{user}>"
    return escape_mrkdwn(user)


def slack_date(when: datetime) -> str:
    """A `<!date>` token so every viewer sees the time in their own zone; UTC text as fallback."""
    # Naive datetimes from the database are UTC by convention.
    aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    utc = aware.astimezone(UTC)
    fallback = utc.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(utc.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def platform_title(platform: Platform) -> str:
    """Icon plus label, e.g. "▶️ YouTube"."""
    return f"{PLATFORM_ICONS.get(platform, '📣')} {platform.label}"


def clip_text(text: str, limit: int) -> str:
    """Shorten to `limit` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    # Reserve room for the notice (its count is at most len(text)) so the result fits the limit.
    keep = max(0, limit - len(f"… ({len(text):,} more characters)"))
    return text[:keep] + f"… ({len(text) - keep:,} more characters)"


def actions_block_id(post_id: int) -> str:
    """The stable block_id of a card's actions block."""
    return f"{CARD_ACTIONS_BLOCK_PREFIX}{post_id}"


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split_caption(caption: str, max_units: int = CAPTION_PART_UNITS) -> list[str]:
    """Split into parts of at most `max_units` UTF-16 units; joining the parts gives the caption back."""
    parts: list[str] = []
    rest = caption
    while _utf16_units(rest) > max_units:
        # Largest prefix that fits, by code points (an astral char counts as two units).
        units = 0
        cut = 0
        for ch in rest:
            step = 2 if ord(ch) > 0xFFFF else 1
            if units + step > max_units:
                break
            units += step
            cut += 1
        # Prefer to break after a newline, then after a space, within the last fifth of the part,
        # so words and emoji sequences stay whole. Otherwise cut hard.
        window_start = cut - max(1, cut // 5)
        best = rest.rfind("\n", window_start, cut)
        if best < 0:
            best = rest.rfind(" ", window_start, cut)
        # max(1, …): always make progress, even with a budget smaller than one character.
        split_at = best + 1 if best >= 0 else max(1, cut)
        parts.append(rest[:split_at])
        rest = rest[split_at:]
    parts.append(rest)
    return parts


def _context(*lines: str) -> ContextBlock:
    return ContextBlock(
        elements=[MarkdownTextObject(text=clip_text(line, CONTEXT_TEXT_LIMIT)) for line in lines]
    )


def _status_line(card: Card) -> str:
    """One line saying where the post stands and who moved it there."""
    if card.pending_action is not None:
        label = PENDING_LABELS[card.pending_action]
        by = f" requested by {mention(card.pending_by)}" if card.pending_by else ""
        return f"⏳ *{label}*{by}"
    status = card.status
    if status is PostStatus.DRAFT:
        return "📝 *Draft* — awaiting review"
    if status is PostStatus.QUEUED:
        line = "✅ *Queued*"
        if card.approved_by:
            line += f" — approved by {mention(card.approved_by)}"
        if card.approved_at:
            line += f" {slack_date(card.approved_at)}"
        return line
    if status is PostStatus.SCHEDULED:
        when = slack_date(card.scheduled_at) if card.scheduled_at else "a time not yet confirmed"
        by = f" — by {mention(card.approved_by)}" if card.approved_by else ""
        return f"🗓 *Scheduled for {when}*{by}"
    if status is PostStatus.PUBLISHED:
        line = "🚀 *Published*"
        if card.published_at:
            line += f" {slack_date(card.published_at)}"
        if card.published_url:
            line += f" · <{escape_mrkdwn(card.published_url)}|View on {card.platform.label}>"
        if card.approved_by:
            line += f"\napproved by {mention(card.approved_by)}"
        return line
    if status is PostStatus.FAILED:
        reason = card.error.strip() if card.error else "the provider gave no reason"
        line = f"❌ *Failed:* {escape_mrkdwn(reason)}"
        if card.approved_by:
            line += f"\napproved by {mention(card.approved_by)}"
        return line
    # Cancelled.
    if card.cancelled_by:
        return f"🚫 *Cancelled by {mention(card.cancelled_by)}*"
    return "🚫 *Cancelled*"


def _badge(card: Card) -> str:
    if card.pending_action is not None:
        return f"⏳ {PENDING_LABELS[card.pending_action]}"
    return STATUS_BADGES[card.status]


def fallback_text(card: Card) -> str:
    """Notification text, e.g. "YouTube draft for clip abc — Draft awaiting review"."""
    noun = "draft" if card.status is PostStatus.DRAFT else "post"
    if card.pending_action is not None:
        state = PENDING_LABELS[card.pending_action]
    elif card.status is PostStatus.DRAFT:
        state = "Draft awaiting review"
    else:
        state = card.status.value.capitalize()
    text = f"{card.platform.label} {noun} for clip {card.clip_id} — {state}"
    return clip_text(text, FALLBACK_TEXT_LIMIT)


def _tiktok_settings_lines(settings: TikTokSettings | None) -> list[str]:
    if settings is None:
        return ["TikTok settings: not set (TikTok's defaults apply)"]
    who = TIKTOK_PRIVACY_LEVELS.get(settings.privacy_level, escape_mrkdwn(settings.privacy_level))
    flags = settings.to_dict()
    words = []
    for key in TIKTOK_TOGGLES:
        label, when_true, when_false = TIKTOK_TOGGLE_WORDS[key]
        words.append(f"{label}: {when_true if flags[key] else when_false}")
    return [f"Who can view: {who}", " · ".join(words)]


def category_name(category_id: str | None) -> str:
    """Category name by id: "22" gives People & Blogs, an unknown "99" gives "Category 99"."""
    if category_id is None:
        return "not set"
    return YOUTUBE_CATEGORIES.get(category_id, f"Category {category_id}")


def _settings_lines(card: Card) -> list[str]:
    if card.provider is Provider.REAP:
        return []  # Reap's per-platform settings are in card.notes (PostContent has none for it)
    content = card.content
    if card.platform is Platform.TIKTOK:
        return _tiktok_settings_lines(content.tiktok)
    if card.platform is Platform.YOUTUBE:
        cid = content.youtube.category_id if content.youtube else None
        name = category_name(cid)
        # "Category: Category 99" reads badly; an unknown id already names itself.
        if cid is not None and cid not in YOUTUBE_CATEGORIES:
            return [escape_mrkdwn(name)]
        return [f"Category: {escape_mrkdwn(name)}"]
    return []


def _caption_blocks(card: Card) -> list[Block]:
    caption = card.content.caption
    limit = CAPTION_LIMITS.get(card.platform)
    length = caption_length(caption, card.platform)
    count = f"{length:,} / {limit:,} characters" if limit else f"{length:,} characters"
    if not caption.strip():
        return [_context(f"*Caption* · {count}"), _context("_(The caption is empty.)_")]

    shown = caption
    cut_note: str | None = None
    if _utf16_units(caption) > CARD_CAPTION_BUDGET:
        shown = split_caption(caption, CARD_CAPTION_BUDGET)[0]
        cut_note = (
            f"⚠️ Only the first {len(shown):,} of {len(caption):,} characters are shown here "
            "(Slack's message size limit). Open *Edit* to see the whole caption."
        )
    parts = split_caption(shown)
    blocks: list[Block] = []
    for i, part in enumerate(parts, start=1):
        label = "*Caption*" if len(parts) == 1 else f"*Caption (part {i} of {len(parts)})*"
        if i == 1:
            label += f" · {count}"
        blocks.append(_context(label))
        # plain_text with emoji off: shows exactly what will be posted, no mrkdwn, no :shortcodes:.
        blocks.append(SectionBlock(text=PlainTextObject(text=part, emoji=False)))
    if cut_note:
        blocks.append(_context(cut_note))
    if limit and length > limit:
        unit = " (emoji count as 2)" if card.platform is Platform.TIKTOK else ""
        blocks.append(
            _context(
                f"⚠️ Over the {card.platform.label} limit: {length:,} characters{unit}, "
                f"{card.platform.label} allows {limit:,}. Edit before publishing."
            )
        )
    return blocks


def _approvals_line(card: Card) -> str:
    who = ", ".join(mention(u) for u in card.approvals)
    line = f"👍 Approvals {len(card.approvals)}/{card.required_approvals}"
    if who:
        line += f": {who}"
    if len(card.approvals) >= card.required_approvals:
        line += " — ready to publish"
    return line


def _button(text: str, action: ActionId, card: Card, style: str | None = None) -> ButtonElement:
    return ButtonElement(text=text, action_id=action, value=str(card.post_id), style=style)


def _buttons(card: Card) -> list[ButtonElement]:
    """Which buttons the card offers; none while a request is in flight or once the post is final."""
    if card.pending_action is not None or card.status.is_terminal:
        return []
    cancel = _button("Cancel", ActionId.CANCEL, card, style="danger")
    if card.status == PostStatus.QUEUED and card.provider == Provider.REAP:
        return []  # handed to Reap, which has no cancel endpoint; the card's note says so
    if card.status in (PostStatus.QUEUED, PostStatus.SCHEDULED):
        return [cancel]
    # Draft.
    buttons = [_button("Edit", ActionId.EDIT, card)]
    # With one approval required, pressing Publish or Schedule *is* the approval.
    if card.required_approvals <= 1 or len(card.approvals) >= card.required_approvals:
        publish = _button("Publish", ActionId.PUBLISH, card, style="primary")
        # Publishing can't be taken back; a client-side confirm costs one click and saves a post.
        publish.confirm = ConfirmObject(
            title="Publish now?",
            text=(
                f"This posts to {', '.join(card.targets)} right away."
                if card.targets
                else f"This posts to {card.platform.label} right away."
            )[:300],
            confirm="Publish",
            deny="Not yet",
        )
        buttons += [publish, _button("Schedule", ActionId.SCHEDULE, card)]
    else:
        buttons.append(_button("Approve", ActionId.APPROVE, card, style="primary"))
    buttons.append(cancel)
    return buttons


def card_blocks(card: Card) -> list[Block]:
    """The blocks of a card (at most 50)."""
    blocks: list[Block] = [
        HeaderBlock(
            text=PlainTextObject(text=clip_text(f"{platform_title(card.platform)} · {_badge(card)}", 150))
        ),
        SectionBlock(text=MarkdownTextObject(text=clip_text(_status_line(card), 2900))),
    ]
    show_approvals = (
        card.required_approvals > 1 and card.pending_action is None and card.status is PostStatus.DRAFT
    )
    if show_approvals:
        blocks.append(_context(_approvals_line(card)))
    if card.last_activity:
        # Built by the service with mentions in it, so it is mrkdwn on purpose, not escaped.
        blocks.append(_context(card.last_activity))
    blocks.append(DividerBlock())

    if card.content.title is not None:
        title = clip_text(escape_mrkdwn(card.content.title), 2800)
        blocks.append(SectionBlock(text=MarkdownTextObject(text=f"*Title:* {title}")))
    blocks.extend(_caption_blocks(card))

    settings = _settings_lines(card)
    if settings:
        blocks.append(_context("\n".join(settings)))
    if card.targets:
        blocks.append(_context("\n".join(f"🎯 {escape_mrkdwn(t)}" for t in card.targets)))
    if card.notes:
        blocks.append(_context("\n".join(escape_mrkdwn(n) for n in card.notes)))
    blocks.append(
        _context(
            f"Clip {escape_mrkdwn(card.clip_id)} · {card.provider.value.capitalize()} post "
            f"{escape_mrkdwn(card.external_id)} · Greenlight #{card.post_id}"
        )
    )

    buttons = _buttons(card)
    if buttons:
        blocks.append(ActionsBlock(block_id=actions_block_id(card.post_id), elements=buttons))
    # Defensive: the layout above stays far below 50, but never let Slack reject a card.
    if len(blocks) > MAX_MESSAGE_BLOCKS:
        tail = blocks[-1:] if buttons else []
        blocks = (
            blocks[: MAX_MESSAGE_BLOCKS - 1 - len(tail)]
            + [_context("⚠️ Some details were left out to fit Slack's message limit.")]
            + tail
        )
    return blocks


def card_message(card: Card) -> tuple[str, list[Block]]:
    """Fallback text and blocks of a card, ready for chat.postMessage / chat.update."""
    return fallback_text(card), card_blocks(card)


def blocks_to_dicts(blocks: Sequence[Block]) -> list[dict[str, object]]:
    """Serialise (and validate) blocks for the Web API."""
    return [b.to_dict() for b in blocks]
