"""A Reap draft's edit form: shared title, description and tags, the target accounts, and each
platform's settings; checked against the strictest of the targets chosen in the submission."""

from __future__ import annotations

from typing import Any

from bot.domain import (
    Change,
    ChoiceField,
    EditForm,
    FieldId,
    FormErrors,
    FormItem,
    FormNote,
    FormValues,
    MultiChoiceField,
    Option,
    Platform,
    PostContent,
    TextField,
)
from bot.providers.reap.draft import (
    IG_FEED,
    LINKEDIN_PRIVACY,
    REAP_DESCRIPTION_LIMIT,
    REAP_MAX_TAGS,
    REAP_TITLE_LIMIT,
    TIKTOK_FLAGS,
    TIKTOK_PRIVACY,
    YOUTUBE_PRIVACY,
    YT_KIDS,
    ReapDraft,
    description_limit,
    field_errors,
    title_limit,
)

INPUT_MAX = 3000
OPTION_TEXT_MAX = 75


def _option_text(text: str) -> str:
    return text if len(text) <= OPTION_TEXT_MAX else text[: OPTION_TEXT_MAX - 1] + "…"


def edit_form(post_id: int, content: PostContent, draft: ReapDraft) -> EditForm:
    """The form of a Reap draft: shared fields, targets and per-platform settings."""
    targets = set(draft.target_platforms())
    t_limit = title_limit(targets)
    d_limit, who = description_limit(targets)
    title = content.title or ""
    items: list[FormItem] = [
        TextField(FieldId.TITLE, f"Title (max {t_limit} characters)", value=title or None, required=False,
                  # Never cap below a value we prefill, or Slack refuses to open the modal.
                  max_length=REAP_TITLE_LIMIT if len(title) <= REAP_TITLE_LIMIT else None,
                  hint="Required when a YouTube account is a target (YouTube allows 100 characters)."),
        TextField(FieldId.CAPTION, f"Description (max {d_limit:,} characters, {who})", value=content.caption or None,
                  multiline=True,
                  max_length=REAP_DESCRIPTION_LIMIT if len(content.caption) <= REAP_DESCRIPTION_LIMIT else None,
                  hint="TikTok counts most emoji as 2 characters." if Platform.TIKTOK in targets else None),
        TextField(FieldId.TAGS, f"Tags (comma-separated, up to {REAP_MAX_TAGS})", value=", ".join(draft.tags) or None,
                  required=False),
        MultiChoiceField(FieldId.TARGETS, "Publish to",
                         tuple(Option(a.id, _option_text(a.label)) for a in draft.integrations),
                         selected=tuple(draft.targets),
                         hint="Title, description and tags are shared by every account Reap posts to."),
    ]
    settings = _settings_items(draft)
    if settings:
        items.append(FormNote("*Platform settings* (used for the accounts you publish to)"))
        items.extend(settings)
    return EditForm(heading=f"Reap clip · Greenlight #{post_id}", items=tuple(items), title="Edit Reap draft")


def _select(field: FieldId, label: str, options: dict[str, str], current: Any) -> ChoiceField:
    return ChoiceField(field, label, tuple(Option(v, t) for v, t in options.items()),
                       selected=current if current in options else None)


def _checks(field: FieldId, label: str, options: dict[str, str], checked: set[str]) -> MultiChoiceField:
    return MultiChoiceField(field, label, tuple(Option(v, _option_text(t)) for v, t in options.items()),
                            selected=tuple(v for v in options if v in checked))


def _settings_items(draft: ReapDraft) -> list[FormItem]:
    items: list[FormItem] = []
    for platform in draft.offered_platforms():
        s = draft.settings_for(platform)
        if platform is Platform.YOUTUBE:
            items.append(_select(FieldId.YT_PRIVACY, "YouTube visibility", YOUTUBE_PRIVACY, s.get("privacy")))
            items.append(_checks(FieldId.YT_KIDS, "YouTube audience", {YT_KIDS: "Made for kids"},
                                 {YT_KIDS} if s.get(YT_KIDS) else set()))
        elif platform is Platform.TIKTOK:
            items.append(_select(FieldId.PRIVACY, "TikTok: who can view", TIKTOK_PRIVACY, s.get("privacy")))
            items.append(_checks(FieldId.TOGGLES, "TikTok options", TIKTOK_FLAGS, {k for k in TIKTOK_FLAGS if s.get(k)}))
        elif platform is Platform.INSTAGRAM:
            items.append(_checks(FieldId.IG_FEED, "Instagram", {IG_FEED: "Also share the Reel to the feed"},
                                 {IG_FEED} if s.get(IG_FEED) else set()))
        elif platform is Platform.LINKEDIN:
            items.append(_select(FieldId.LI_PRIVACY, "LinkedIn visibility", LINKEDIN_PRIVACY, s.get("privacy")))
    return items


def parse_tags(raw: str) -> list[str]:
    """Comma-separated tags: trimmed, empty ones dropped, duplicates (ignoring case) removed."""
    tags: list[str] = []
    seen: set[str] = set()
    for part in raw.split(","):
        tag = part.strip()
        if tag and tag.lower() not in seen:
            seen.add(tag.lower())
            tags.append(tag)
    return tags


def parse_edit(content: PostContent, draft: ReapDraft, values: FormValues) -> Change | FormErrors:
    """Validate the submission against the targets chosen in it: the change, or inline errors."""
    errors: FormErrors = {}
    offered = {a.id for a in draft.integrations}
    ticked = set(values.get(FieldId.TARGETS) or ())
    # Keep the stored order of accounts, and ignore ids that aren't ours to offer.
    targets = [a.id for a in draft.integrations if a.id in ticked and a.id in offered]
    if not targets:
        errors[FieldId.TARGETS] = "Pick at least one account to publish to."
    chosen = draft.model_copy(update={"targets": targets})
    platforms = set(chosen.target_platforms())
    # Surrounding spaces in a title are never intended; the description is kept as typed.
    title = str(values.get(FieldId.TITLE) or "").strip()
    description = str(values.get(FieldId.CAPTION) or "")
    tags = parse_tags(str(values.get(FieldId.TAGS) or ""))
    errors.update(field_errors(title, description, tags, platforms))
    settings = dict(draft.settings)
    for platform in draft.offered_platforms():
        s, problem = _platform_settings(platform, draft.settings_for(platform), values, targeted=platform in platforms)
        if problem is not None:
            errors[problem[0]] = problem[1]
        if s:
            settings[platform.value] = s
    if errors:
        return errors
    new_draft = chosen.model_copy(update={"tags": tags, "settings": settings})
    new_content = content.with_changes(caption=description, title=title if (title or content.title) else content.title)
    return Change(content=new_content, state=new_draft.dump(), summary=_summary(content, new_content, draft, new_draft))


def _platform_settings(
    platform: Platform, current: dict[str, Any], values: FormValues, *, targeted: bool
) -> tuple[dict[str, Any], tuple[str, str] | None]:
    """One platform's settings from the form (fields absent from the form keep their value)."""
    s = dict(current)
    problem: tuple[str, str] | None = None
    if platform is Platform.YOUTUBE:
        problem = _pick(s, values, FieldId.YT_PRIVACY, YOUTUBE_PRIVACY, targeted, "Choose who can see the YouTube video.")
        if FieldId.YT_KIDS in values:
            s[YT_KIDS] = YT_KIDS in (values.get(FieldId.YT_KIDS) or ())
    elif platform is Platform.TIKTOK:
        problem = _pick(s, values, FieldId.PRIVACY, TIKTOK_PRIVACY, targeted, "Choose who can view the TikTok.")
        if FieldId.TOGGLES in values:
            flags = set(values.get(FieldId.TOGGLES) or ())
            s.update({key: key in flags for key in TIKTOK_FLAGS})
    elif platform is Platform.INSTAGRAM:
        if FieldId.IG_FEED in values:
            s[IG_FEED] = IG_FEED in (values.get(FieldId.IG_FEED) or ())
    elif platform is Platform.LINKEDIN:
        problem = _pick(s, values, FieldId.LI_PRIVACY, LINKEDIN_PRIVACY, targeted, "Choose who can see the LinkedIn post.")
    return s, problem


def _pick(s: dict[str, Any], values: FormValues, field: FieldId, allowed: dict[str, str], targeted: bool,
          missing: str) -> tuple[str, str] | None:
    chosen = values.get(field)
    if chosen in allowed:
        s["privacy"] = chosen
        return None
    return (field, missing) if targeted else None


def _summary(old: PostContent, new: PostContent, before: ReapDraft, after: ReapDraft) -> str:
    parts: list[str] = []
    if new.title != old.title:
        parts.append("title")
    if new.caption != old.caption:
        parts.append(f"description ({len(old.caption)} → {len(new.caption)} chars)")
    if after.tags != before.tags:
        parts.append("tags")
    if after.targets != before.targets:
        parts.append("targets")
    if after.settings != before.settings:
        parts.append("platform settings")
    return ", ".join(parts) or "no changes"
