"""The clip message (one per clip in the review channel) and the Publish all / Schedule all modals.

Pure builders from `domain.ClipCard` / `domain.BulkItem` to slack_sdk models. The clip message is
the channel's view of a clip: every platform's state at a glance, the clip's facts, and the two
actions on all its drafts; the video and the per-platform cards are in its thread.
"""

from __future__ import annotations

import json
from datetime import datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DateTimePickerElement,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.domain import BulkItem, ClipCard, ClipEntry, ClipInfo, PendingAction, PostStatus, PreviewState
from bot.domain.forms import FieldId
from bot.slack.blocks import PENDING_LABELS, PLATFORM_ICONS, STATUS_BADGES
from bot.slack.ids import ActionId, ViewId
from bot.slack.mrkdwn import Mrkdwn, code, date, escape, fmt, link, plain_text, truncate

# The clip message's actions block, one block_id per clip so listeners and tests can find it.
CLIP_ACTIONS_BLOCK_PREFIX = "clip_actions_"
# Choices for the gap between posts in Schedule all (minutes; 0 = all at the same time).
SPACING_CHOICES = (0, 15, 30, 60, 120, 240, 1440)
MAX_LISTED = 40  # rows in a confirmation; a clip has a handful of drafts, so this only guards Slack's limits


def duration_text(seconds: float) -> str:
    """0:58, 12:05, 1:02:03."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def score_text(info: ClipInfo) -> str | None:
    """The tool's score on its own scale: "91/100" for a 0–1 score, "7.5/10" for a 0–10 one."""
    if info.score is None or not info.scale:
        return None
    if info.scale == 1:
        return f"{round(info.score * 100)}/100"
    return f"{info.score:g}/{info.scale:g}"


def clip_title(clip: ClipCard) -> str:
    """The clip's title, or a name made from its id."""
    return clip.info.title or f"{clip.provider_title} clip {clip.ref[:12]}"


def _entry_line(entry: ClipEntry) -> Mrkdwn:
    icon = PLATFORM_ICONS.get(entry.platform, "•")
    where = fmt("{icon} *{platform}*", icon=icon, platform=entry.platform.label)
    if entry.targets:
        where = fmt("{where} ({targets})", where=where, targets=", ".join(entry.targets))
    return fmt("{where} — {state}", where=where, state=_entry_state(entry))


def _entry_state(entry: ClipEntry) -> Mrkdwn:
    if entry.pending_action is not None:
        return escape(f"⏳ {PENDING_LABELS[entry.pending_action]}")
    status = entry.status
    if status is PostStatus.DRAFT and entry.changes_requested:
        return escape("✋ Changes requested")
    if status is PostStatus.DRAFT:
        return escape("📝 Draft awaiting review")
    if status is PostStatus.SCHEDULED and entry.scheduled_at is not None:
        return fmt("🗓 Scheduled for {when}", when=date(entry.scheduled_at))
    if status is PostStatus.PUBLISHED:
        return fmt("🚀 Published · {link}", link=link(entry.published_url, "View")) if entry.published_url \
            else escape("🚀 Published")
    if status is PostStatus.FAILED:
        return fmt("❌ Failed: {reason}", reason=truncate(escape(entry.error or "no reason given"), 300))
    if status is PostStatus.UNKNOWN and entry.raw_status:
        return fmt("❔ {word}", word=entry.raw_status)
    return escape(STATUS_BADGES[status])


def _preview_line(clip: ClipCard) -> Mrkdwn | None:
    state = clip.preview_state
    if state is PreviewState.OFF:
        return None
    if state is PreviewState.UPLOADED:
        return Mrkdwn("🎞 The video is in the thread — watch it before you decide.")
    if state is PreviewState.LINKED:
        line = fmt("🎞 {video}", video=link(clip.preview_link, "Watch the video") if clip.preview_link else "Video")
        if clip.preview_link and clip.preview_expires is not None:
            line = fmt("{line}, link works until {until}", line=line, until=date(clip.preview_expires, "{time}"))
        return fmt("{line} ({why})", line=line, why=clip.preview_note) if clip.preview_note else line
    if state is PreviewState.FAILED:
        return fmt("🎞 No video preview: {why}", why=clip.preview_note or "the provider gave none")
    if state is PreviewState.UPLOADING:
        return Mrkdwn("🎞 Uploading the video into the thread…")
    if state is PreviewState.RENDERING:
        return fmt("🎞 {provider} is preparing the video; it will appear in the thread.", provider=clip.provider_title)
    return Mrkdwn("🎞 Fetching the video for the thread…")


def clip_message(clip: ClipCard) -> tuple[str, list[Block]]:
    """The clip's message in the channel: (notification text, blocks)."""
    facts = [fmt("{provider} clip {ref}", provider=clip.provider_title, ref=code(clip.ref))]
    if clip.info.duration_seconds is not None:
        facts.append(fmt("⏱ {d}", d=duration_text(clip.info.duration_seconds)))
    if (score := score_text(clip.info)) is not None:
        facts.append(fmt("⭐ Score {s}", s=score))
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=plain_text(f"🎬 {clip_title(clip)}", 150))),
        ContextBlock(elements=[MarkdownTextObject(text=Mrkdwn(" · ").join(facts))]),
    ]
    lines = [_entry_line(e) for e in clip.entries[:MAX_LISTED]] or [Mrkdwn("No drafts yet.")]
    blocks.append(SectionBlock(text=MarkdownTextObject(text=truncate(Mrkdwn("\n").join(lines), 2900))))
    notes = [n for n in (_preview_line(clip),) if n is not None]
    notes.append(Mrkdwn("🧵 Each platform's draft is in the thread: edit, approve or decide one at a time there."))
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=Mrkdwn("\n").join(notes))]))
    open_drafts = clip.open_drafts
    if open_drafts:
        value = str(clip.clip_id)
        blocks.append(ActionsBlock(block_id=f"{CLIP_ACTIONS_BLOCK_PREFIX}{clip.clip_id}", elements=[
            ButtonElement(text=f"Publish all ({len(open_drafts)})", action_id=ActionId.PUBLISH_ALL, value=value,
                          style="primary"),
            ButtonElement(text="Schedule all", action_id=ActionId.SCHEDULE_ALL, value=value),
        ]))
    counts = ", ".join(f"{e.platform.label}: {_plain_state(e)}" for e in clip.entries[:MAX_LISTED])
    text = truncate(fmt("Clip {title} — {counts}", title=clip_title(clip), counts=counts or "no drafts yet"), 3000)
    return text, blocks


def _plain_state(entry: ClipEntry) -> str:
    if entry.pending_action is not None:
        return PENDING_LABELS[entry.pending_action]
    return STATUS_BADGES[entry.status].split(" ", 1)[1]


# -- Publish all / Schedule all ---------------------------------------------------------------------


def _metadata(**values: object) -> str:
    return json.dumps({k: v for k, v in values.items() if v is not None}, separators=(",", ":"))


def schedule_all_modal(clip_id: int, tz_label: str, initial: datetime, count: int) -> View:
    """Schedule all, step 1: when the first post goes out, and the gap between the others."""
    options = [Option(value=str(m), text=_spacing_label(m)) for m in SPACING_CHOICES]
    return View(
        type="modal",
        callback_id=ViewId.SCHEDULE_ALL,
        private_metadata=_metadata(clip_id=clip_id),
        title="Schedule all",
        submit="Review",
        close="Cancel",
        blocks=[
            SectionBlock(text=MarkdownTextObject(
                text=fmt("Schedule the {n} draft(s) of this clip that you may schedule. You'll see exactly what "
                         "goes where, and when, before anything is scheduled.", n=count))),
            InputBlock(block_id=FieldId.WHEN, label="First post at",
                       element=DateTimePickerElement(action_id=FieldId.WHEN, initial_date_time=int(initial.timestamp())),
                       hint=f"Times are in your Slack time zone ({tz_label}). At least 5 minutes from now."),
            InputBlock(block_id=FieldId.SPACING, label="Then",
                       element=StaticSelectElement(action_id=FieldId.SPACING, options=options,
                                                   initial_option=options[0]),
                       hint="Spacing the posts out lets each platform's audience see the clip at its own time."),
        ],
    )


def _spacing_label(minutes: int) -> str:
    if minutes == 0:
        return "All at the same time"
    if minutes % 1440 == 0:
        return f"One every {minutes // 1440} day" + ("s" if minutes > 1440 else "")
    if minutes % 60 == 0:
        return f"One every {minutes // 60} hour" + ("s" if minutes > 60 else "")
    return f"One every {minutes} minutes"


def bulk_confirm_modal(clip_id: int, title: str, action: PendingAction, items: list[BulkItem], *,
                       first_at: datetime | None = None, spacing_minutes: int | None = None) -> View:
    """The one confirmation: exactly what goes where and when, and what is left out and why."""
    included = [i for i in items if i.included]
    left_out = [i for i in items if not i.included]
    verb = "Publish" if action is PendingAction.PUBLISH else "Schedule"
    lines = [fmt("• {where} — {when}", where=_where(i), when=date(i.at) if i.at else "now") for i in included]
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=fmt("*{title}*", title=title)))]
    if included:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=truncate(
            fmt("*{verb} {n} post(s):*\n{lines}", verb=verb, n=len(included), lines=Mrkdwn("\n").join(lines)),
            2900))))
    else:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=Mrkdwn("*Nothing here can be done by you now.*"))))
    if left_out:
        out = [fmt("• {where}: {why}", where=_where(i), why=truncate(escape(i.refusal or ""), 300)) for i in left_out]
        blocks.append(SectionBlock(text=MarkdownTextObject(text=truncate(
            fmt("*Left out:*\n{lines}", lines=Mrkdwn("\n").join(out)), 2900))))
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=Mrkdwn(
        "Each post is checked again when you confirm and gets its own outcome on its card."))]))
    return View(
        type="modal",
        callback_id=ViewId.BULK_CONFIRM,
        private_metadata=_metadata(
            clip_id=clip_id, action=action.value, spacing_minutes=spacing_minutes,
            first_at=int(first_at.timestamp()) if first_at is not None else None,
            post_ids=[i.post_id for i in included][:MAX_LISTED],
        ),
        title=f"{verb} all",
        submit=f"{verb} {len(included)}" if included else None,
        close="Cancel" if included else "Close",
        blocks=blocks,
    )


def _where(item: BulkItem) -> Mrkdwn:
    icon = PLATFORM_ICONS.get(item.platform, "•")
    if item.targets:
        return fmt("{icon} *{platform}* ({targets})", icon=icon, platform=item.platform.label,
                   targets=", ".join(item.targets))
    return fmt("{icon} *{platform}*", icon=icon, platform=item.platform.label)
