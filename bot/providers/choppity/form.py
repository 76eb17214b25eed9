"""A Choppity draft's edit form: what each platform's post has, and how a submission is checked.

YouTube posts have a title, a description and a category; TikTok posts a caption, who can view and
five toggles; Instagram and LinkedIn a caption. Limits are the destination platforms' own
(the table in docs/providers.md), counted the way each platform counts.
"""

from __future__ import annotations

from bot.domain import (
    CAPTION_LIMITS,
    TIKTOK_PRIVACY_LEVELS,
    TIKTOK_TOGGLES,
    YOUTUBE_CATEGORIES,
    YOUTUBE_TITLE_LIMIT,
    Change,
    ChoiceField,
    EditForm,
    FieldId,
    FormErrors,
    FormItem,
    FormValues,
    MultiChoiceField,
    Option,
    Platform,
    PostContent,
    TextField,
    TikTokSettings,
    YouTubeSettings,
    caption_error,
    describe_changes,
    title_error,
)

# Slack's own cap on a text input's max_length; longer limits are checked on submission.
INPUT_MAX = 3000


def edit_form(post_id: int, platform: Platform, content: PostContent) -> EditForm:
    """The form for one post, prefilled from Choppity's current copy."""
    items: list[FormItem] = []
    if platform is Platform.YOUTUBE:
        title = content.title or ""
        items.append(TextField(
            FieldId.TITLE, f"Title (max {YOUTUBE_TITLE_LIMIT} characters)", value=title or None,
            # Never cap below a value we prefill: Slack would refuse to open the modal.
            max_length=YOUTUBE_TITLE_LIMIT if len(title) <= YOUTUBE_TITLE_LIMIT else None,
        ))
    items.append(_caption_field(platform, content.caption))
    if platform is Platform.YOUTUBE:
        items.append(_category_field(content.youtube.category_id if content.youtube else None))
    elif platform is Platform.TIKTOK:
        items.extend(_tiktok_fields(content.tiktok or TikTokSettings()))
    return EditForm(heading=f"{platform.label} post · Greenlight #{post_id}", items=tuple(items))


def _caption_field(platform: Platform, caption: str) -> TextField:
    limit = CAPTION_LIMITS[platform]
    # The input can stop typing past the limit only up to Slack's 3000, and not below a value
    # already over it; the submission check is the real one.
    max_length = limit if limit <= INPUT_MAX and len(caption) <= limit else None
    hint = "TikTok counts most emoji as 2 characters." if platform is Platform.TIKTOK else None
    return TextField(FieldId.CAPTION, f"Caption (max {limit:,} characters)", value=caption or None, multiline=True,
                     max_length=max_length, hint=hint)


def _category_field(category_id: str | None) -> ChoiceField:
    options = tuple(Option(cid, name) for cid, name in YOUTUBE_CATEGORIES.items())
    known = category_id in YOUTUBE_CATEGORIES
    hint = None
    if category_id is not None and not known:
        hint = f"The current category ({category_id}) isn't one YouTube lets us assign; pick one."
    return ChoiceField(FieldId.CATEGORY, "Category", options, selected=category_id if known else None, hint=hint)


def _tiktok_fields(settings: TikTokSettings) -> list[FormItem]:
    flags = settings.to_dict()
    return [
        ChoiceField(FieldId.PRIVACY, "Who can view",
                    tuple(Option(v, label) for v, label in TIKTOK_PRIVACY_LEVELS.items()),
                    selected=settings.privacy_level if settings.privacy_level in TIKTOK_PRIVACY_LEVELS else None),
        MultiChoiceField(FieldId.TOGGLES, "TikTok options",
                         tuple(Option(k, label) for k, label in TIKTOK_TOGGLES.items()),
                         selected=tuple(k for k in TIKTOK_TOGGLES if flags.get(k))),
    ]


def parse_edit(platform: Platform, old: PostContent, values: FormValues) -> Change | FormErrors:
    """A submitted form: the new content (fields the form didn't show kept), or errors by field id."""
    errors: FormErrors = {}
    # The caption is kept exactly as typed (no strip): it is what will be posted.
    caption = _text(values, FieldId.CAPTION)
    if (problem := caption_error(caption, platform)) is not None:
        errors[FieldId.CAPTION] = problem
    content = old.with_changes(caption=caption)
    if platform is Platform.YOUTUBE:
        # Surrounding spaces in a title are never intended; YouTube would trim them anyway.
        title = _text(values, FieldId.TITLE).strip()
        if (problem := title_error(title)) is not None:
            errors[FieldId.TITLE] = problem
        category = values.get(FieldId.CATEGORY)
        if category is None:
            errors[FieldId.CATEGORY] = "Pick a category."
        elif category not in YOUTUBE_CATEGORIES:
            errors[FieldId.CATEGORY] = "Pick a category from the list."
        content = content.with_changes(title=title, youtube=YouTubeSettings(category_id=str(category or "")))
    elif platform is Platform.TIKTOK:
        privacy = values.get(FieldId.PRIVACY)
        if privacy not in TIKTOK_PRIVACY_LEVELS:
            errors[FieldId.PRIVACY] = "Choose who can view this post."
        ticked = set(values.get(FieldId.TOGGLES) or ())
        content = content.with_changes(tiktok=TikTokSettings(
            privacy_level=str(privacy or ""), **{key: key in ticked for key in TIKTOK_TOGGLES}))
    if errors:
        return errors
    return Change(content=content, summary=describe_changes(old, content))


def content_problems(platform: Platform, content: PostContent) -> list[str]:
    """What the platform would refuse in this content (checked before publishing or scheduling)."""
    found = [caption_error(content.caption, platform)]
    if platform is Platform.YOUTUBE:
        found.append(title_error((content.title or "").strip()))
    return [problem for problem in found if problem is not None]


def _text(values: FormValues, field: FieldId) -> str:
    value = values.get(field)
    return value if isinstance(value, str) else ""
