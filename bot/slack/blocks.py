"""The review card: one Slack message per post, re-rendered in place on every state change.

Pure functions from `domain.Card` to `slack_sdk.models` blocks; nothing here touches the client.
Text from a provider or a person (captions, titles, errors, notes, URLs) is either sent as
plain_text or goes through `bot.slack.mrkdwn`, so a caption containing `<!channel>` or `*stars*`
shows literally and pings nobody.
"""

from __future__ import annotations

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
    AccountResult,
    Activity,
    ActivityKind,
    Card,
    DetailLine,
    PendingAction,
    Platform,
    PostStatus,
    Tone,
    caption_length,
)
from bot.slack.ids import ActionId
from bot.slack.mrkdwn import Mrkdwn, Person, date, escape, fmt, link, mention, plain_text, say, truncate
from bot.slack.review_lines import change_request_line, four_eyes_line, is_open_draft, overdue_line

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
    PostStatus.PROCESSING: "⏳ Publishing",
    PostStatus.UPLOADING: "⏳ Uploading",
    PostStatus.PUBLISHED: "🚀 Published",
    PostStatus.FAILED: "❌ Failed",
    PostStatus.CANCELLED: "🚫 Cancelled",
    PostStatus.UNKNOWN: "❔ Status unknown",
}
CHANGES_REQUESTED_BADGE = "✋ Changes requested"
# In the compact card the caption is cut to this many characters; Edit shows all of it.
COMPACT_CAPTION_CHARS = 600

PENDING_LABELS: dict[PendingAction, str] = {
    PendingAction.PUBLISH: "Publishing…",
    PendingAction.SCHEDULE: "Scheduling…",
    PendingAction.CANCEL: "Cancelling…",
    PendingAction.EDIT: "Saving your edit…",
}

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


def _context(*lines: Mrkdwn) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=truncate(line, CONTEXT_TEXT_LIMIT)) for line in lines])


def _status_line(card: Card) -> Mrkdwn:
    """One line saying where the post stands and who moved it there."""
    if card.pending_action is not None:
        label = PENDING_LABELS[card.pending_action]
        if card.pending_by:
            return fmt("⏳ *{label}* requested by {who}", label=label, who=mention(card.pending_by))
        return fmt("⏳ *{label}*", label=label)
    status = card.status
    approved = fmt("approved by {who}", who=mention(card.approved_by)) if card.approved_by else None
    if status is PostStatus.DRAFT:
        return change_request_line(card) or Mrkdwn("📝 *Draft* — awaiting review")
    if status is PostStatus.QUEUED:
        line = Mrkdwn("✅ *Queued*")
        if approved:
            line = fmt("{line} — {approved}", line=line, approved=approved)
        if card.approved_at:
            line = fmt("{line} {when}", line=line, when=date(card.approved_at))
        return line
    if status is PostStatus.SCHEDULED:
        when = date(card.scheduled_at) if card.scheduled_at else escape("a time not yet confirmed")
        line = fmt("🗓 *Scheduled for {when}*", when=when)
        return fmt("{line} — by {who}", line=line, who=mention(card.approved_by)) if card.approved_by else line
    if status in (PostStatus.PROCESSING, PostStatus.UPLOADING):
        doing = "uploading the video" if status is PostStatus.UPLOADING else "processing the post"
        line = fmt("⏳ *Publishing is under way* — {platform} is {doing}. It can no longer be pulled back.",
                   platform=card.platform.label, doing=doing)
        return fmt("{line}\n{approved}", line=line, approved=approved) if approved else line
    if status is PostStatus.PUBLISHED:
        line = Mrkdwn("🚀 *Published*")
        if card.published_at:
            line = fmt("{line} {when}", line=line, when=date(card.published_at))
        if card.published_url:
            line = fmt("{line} · {link}", line=line, link=link(card.published_url, f"View on {card.platform.label}"))
        return fmt("{line}\n{approved}", line=line, approved=approved) if approved else line
    if status is PostStatus.FAILED:
        reason = card.error.strip() if card.error else "the provider gave no reason"
        line = fmt("❌ *Failed:* {reason}", reason=reason)
        return fmt("{line}\n{approved}", line=line, approved=approved) if approved else line
    if status is PostStatus.UNKNOWN:
        word = card.raw_status or "a status Greenlight doesn't know"
        return fmt("❔ *{provider} reports this post as “{word}”* — Greenlight doesn't know this status yet and "
                   "leaves the post alone.", provider=card.provider_title, word=word)
    # Cancelled.
    if card.cancelled_by:
        return fmt("🚫 *Cancelled by {who}*", who=mention(card.cancelled_by))
    return Mrkdwn("🚫 *Cancelled*")


def activity_line(activity: Activity, provider_title: str) -> Mrkdwn:
    """The card's "who did what last" line."""
    who = Person(activity.actor, plain="someone")
    kind = activity.kind
    if kind is ActivityKind.EDITED:
        return say("✏️ Edited by {who}", who=who).mrkdwn
    if kind is ActivityKind.EDITED_AT_PROVIDER:
        return say("✏️ Edited in {provider}", provider=provider_title).mrkdwn
    if kind is ActivityKind.APPROVED:
        return say("👍 Approved by {who} ({count}/{of})", who=who, count=activity.count or 0, of=activity.of or 0).mrkdwn
    if kind is ActivityKind.SCHEDULED:
        return say("🗓 Scheduled by {who}", who=who).mrkdwn
    if kind is ActivityKind.PUBLISH_APPROVED:
        return say("✅ Approved by {who}", who=who).mrkdwn
    return say("🚫 Cancelled by {who}", who=who).mrkdwn


def _badge(card: Card) -> str:
    if card.pending_action is not None:
        return f"⏳ {PENDING_LABELS[card.pending_action]}"
    if card.status is PostStatus.UNKNOWN and card.raw_status:
        return f"❔ {card.raw_status}"
    if card.change_request is not None and card.status is PostStatus.DRAFT:
        return CHANGES_REQUESTED_BADGE
    return STATUS_BADGES[card.status]


def fallback_text(card: Card) -> str:
    """Notification text, e.g. "YouTube draft for clip abc — Draft awaiting review" (escaped mrkdwn)."""
    noun = "draft" if card.status is PostStatus.DRAFT else "post"
    if card.pending_action is not None:
        state = PENDING_LABELS[card.pending_action]
    elif card.status is PostStatus.DRAFT:
        state = "Changes requested" if card.change_request is not None else "Draft awaiting review"
    elif card.status is PostStatus.UNKNOWN:
        state = card.raw_status or "Status unknown"
    else:
        state = card.status.value.capitalize()
    text = fmt("{platform} {noun} for clip {clip} — {state}", platform=card.platform.label, noun=noun,
               clip=card.clip_id, state=state)
    return truncate(text, FALLBACK_TEXT_LIMIT)


def _detail_text(line: DetailLine) -> Mrkdwn:
    items = Mrkdwn(" · ").join(line.items)
    mark = {Tone.INFO: "", Tone.OK: "✅ ", Tone.WARNING: "", Tone.PROBLEM: "❌ "}[line.tone]
    if line.label:
        return fmt("{mark}{label}: {items}", mark=mark, label=line.label, items=items)
    return fmt("{mark}{items}", mark=mark, items=items)


def _result_text(result: AccountResult) -> Mrkdwn:
    if result.ok:
        return fmt("✅ {account}: {link}", account=result.account, link=link(result.url, "published")) if result.url \
            else fmt("✅ {account}: published", account=result.account)
    if result.ok is False:
        return fmt("❌ {account} failed", account=result.account)
    return fmt("❔ {account}: no result reported", account=result.account)


def _caption_blocks(card: Card) -> list[Block]:
    caption = card.content.caption
    limit = CAPTION_LIMITS.get(card.platform)
    length = caption_length(caption, card.platform)
    count = f"{length:,} / {limit:,} characters" if limit else f"{length:,} characters"
    if card.caption_by_ai:
        count += " · 🤖 AI draft"
    if not caption.strip():
        return [_context(fmt("*Caption* · {count}", count=count)), _context(Mrkdwn("_(The caption is empty.)_"))]

    shown = caption
    cut_note: Mrkdwn | None = None
    budget = COMPACT_CAPTION_CHARS if card.compact else CARD_CAPTION_BUDGET
    if _utf16_units(caption) > budget:
        shown = split_caption(caption, budget)[0]
        why = "this draft is too long for a Slack message" if card.compact else "Slack's message size limit"
        cut_note = fmt(
            "⚠️ Only the first {shown} of {total} characters are shown here ({why}). Open *Edit* to see it all.",
            shown=f"{len(shown):,}", total=f"{len(caption):,}", why=why,
        )
    parts = split_caption(shown)
    blocks: list[Block] = []
    for i, part in enumerate(parts, start=1):
        label = Mrkdwn("*Caption*") if len(parts) == 1 else fmt("*Caption (part {i} of {n})*", i=i, n=len(parts))
        if i == 1:
            label = fmt("{label} · {count}", label=label, count=count)
        blocks.append(_context(label))
        # plain_text with emoji off: shows exactly what will be posted, no mrkdwn, no :shortcodes:.
        blocks.append(SectionBlock(text=PlainTextObject(text=part, emoji=False)))
    if cut_note:
        blocks.append(_context(cut_note))
    if limit and length > limit:
        unit = " (emoji count as 2)" if card.platform is Platform.TIKTOK else ""
        blocks.append(
            _context(
                fmt("⚠️ Over the {platform} limit: {length} characters{unit}, {platform} allows {limit}. Edit before publishing.",
                    platform=card.platform.label, length=f"{length:,}", unit=unit, limit=f"{limit:,}")
            )
        )
    return blocks


def _approvals_line(card: Card) -> Mrkdwn:
    who = Mrkdwn(", ").join(mention(u) for u in card.approvals)
    line = fmt("👍 Approvals {n}/{need}", n=len(card.approvals), need=card.required_approvals)
    if card.approvals:
        line = fmt("{line}: {who}", line=line, who=who)
    if len(card.approvals) >= card.required_approvals:
        line = line + Mrkdwn(" — ready to publish")
    return line


def _button(text: str, action: ActionId, card: Card, style: str | None = None) -> ButtonElement:
    return ButtonElement(text=text, action_id=action, value=str(card.post_id), style=style)


def _buttons(card: Card) -> list[ButtonElement]:
    """Which buttons the card offers; none while a request is in flight or once the post is final."""
    if card.pending_action is not None or card.status.is_terminal:
        return []
    cancel = _button("Cancel", ActionId.CANCEL, card, style="danger")
    if card.status is not PostStatus.DRAFT:
        # Scheduled or queued: only Cancel, and only while the provider can still pull it back.
        return [cancel] if card.can_cancel else []
    buttons = [_button("Edit", ActionId.EDIT, card)]
    if card.change_request is not None:
        # Changes were asked for: nothing but an edit (or a cancel) until the next version.
        return buttons + ([cancel] if card.can_cancel else [])
    # With one approval required, pressing Publish or Schedule *is* the approval.
    if card.required_approvals <= 1 or len(card.approvals) >= card.required_approvals:
        publish = _button("Publish", ActionId.PUBLISH, card, style="primary")
        # Publishing can't be taken back; a client-side confirm costs one click and saves a post.
        # Confirm dialogs are plain text: outside text (account names) goes in as plain text.
        where = ", ".join(card.details.targets) if card.details.targets else card.platform.label
        publish.confirm = ConfirmObject(
            title="Publish now?",
            text=PlainTextObject(text=plain_text(f"This posts to {where} right away.", 300), emoji=False),
            confirm="Publish",
            deny="Not yet",
        )
        buttons += [publish, _button("Schedule", ActionId.SCHEDULE, card)]
    else:
        buttons.append(_button("Approve", ActionId.APPROVE, card, style="primary"))
    buttons.append(_button("Request changes", ActionId.REQUEST_CHANGES, card))
    if card.can_cancel:
        buttons.append(cancel)
    return buttons


def card_blocks(card: Card) -> list[Block]:
    """The blocks of a card (at most 50); `card.compact` gives the short form Slack will accept."""
    blocks: list[Block] = [
        HeaderBlock(
            text=PlainTextObject(text=plain_text(f"{platform_title(card.platform)} · {_badge(card)}", 150))
        ),
        SectionBlock(text=MarkdownTextObject(text=truncate(_status_line(card), 2900))),
    ]
    show_approvals = (
        card.required_approvals > 1 and card.pending_action is None and card.status is PostStatus.DRAFT
    )
    if show_approvals:
        blocks.append(_context(_approvals_line(card)))
    review_lines = [line for line in (overdue_line(card), four_eyes_line(card)) if line is not None]
    if review_lines and is_open_draft(card):
        blocks.append(_context(*review_lines))
    if card.activity:
        blocks.append(_context(activity_line(card.activity, card.provider_title)))
    blocks.append(DividerBlock())

    if card.content.title is not None:
        title_limit = 300 if card.compact else 2800
        blocks.append(SectionBlock(text=MarkdownTextObject(
            text=truncate(fmt("*Title:* {title}", title=card.content.title), title_limit + 10))))
    blocks.extend(_caption_blocks(card))

    details = card.details
    if details.targets:
        blocks.append(_context(Mrkdwn("\n").join(fmt("🎯 {t}", t=t) for t in details.targets)))
    lines = [_detail_text(line) for line in details.lines] + [_result_text(r) for r in details.results]
    if lines and not card.compact:
        blocks.append(_context(Mrkdwn("\n").join(lines)))
    if card.problems:
        blocks.append(_context(fmt("⚠️ Edit before publishing: {problems}", problems=" ".join(card.problems))))
    blocks.append(
        _context(
            fmt("Clip {clip} · {provider} post {external} · Greenlight #{id}", clip=card.clip_id,
                provider=card.provider_title, external=card.external_id, id=card.post_id)
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
            + [_context(Mrkdwn("⚠️ Some details were left out to fit Slack's message limit."))]
            + tail
        )
    return blocks


def card_message(card: Card) -> tuple[str, list[Block]]:
    """Fallback text and blocks of a card, ready for chat.postMessage / chat.update."""
    return fallback_text(card), card_blocks(card)
