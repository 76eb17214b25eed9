"""The Reap edit modal and its validation. Pure builders and parsers, like `modals.py` / `forms.py`.

A Reap publish sends one shared title, description and tag list to every target account, so the
limits are those of the strictest platform among the *selected* targets (apis.md Part C): a YouTube
target caps the title at 100 characters, a TikTok target makes emoji count twice, and so on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    CheckboxesElement,
    ContextBlock,
    DividerBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    StaticMultiSelectElement,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.domain import CAPTION_LIMITS, YOUTUBE_TITLE_LIMIT, Platform
from bot.slack.forms import utf16_length
from bot.slack.ids import Field, ViewId
from bot.slack.inbound import InvalidReference, post_ref_from_metadata
from bot.slack.modals import SLACK_INPUT_MAX

Errors = dict[str, str]

# Reap's own field limits (apis.md B.3 update-post).
REAP_TITLE_LIMIT = 250
REAP_DESCRIPTION_LIMIT = 1000
REAP_MAX_TAGS = 10
YOUTUBE_TAGS_TOTAL = 500
# Slack: checkboxes take at most 10 options, option text at most 75 characters.
MAX_CHECKBOXES = 10
OPTION_TEXT_MAX = 75

YOUTUBE_PRIVACY: dict[str, str] = {"public": "Public", "unlisted": "Unlisted", "private": "Private"}
TIKTOK_PRIVACY: dict[str, str] = {"public": "Everyone", "friends": "Friends", "private": "Only me"}
LINKEDIN_PRIVACY: dict[str, str] = {"public": "Public", "connections": "Connections only"}
TIKTOK_FLAGS: dict[str, str] = {
    "disableComments": "Comments off",
    "disableDuet": "Duet off",
    "disableStitch": "Stitch off",
    "brandContent": "Branded content (paid partnership)",
    "brandOrganic": "Promotes own brand",
}
YT_KIDS_VALUE = "madeForKids"
IG_FEED_VALUE = "shareToFeed"

# Reap's documented defaults for platformSettings (apis.md B.3 publish-clip).
DEFAULT_SETTINGS: dict[str, dict[str, Any]] = {
    Platform.YOUTUBE.value: {"privacy": "public", "embeddable": True, "publicStats": True, "madeForKids": False},
    Platform.TIKTOK.value: {
        "privacy": "public",
        "disableComments": False,
        "disableDuet": False,
        "disableStitch": False,
        "brandContent": False,
        "brandOrganic": False,
    },
    Platform.INSTAGRAM.value: {"shareToFeed": False},
    Platform.LINKEDIN.value: {"privacy": "public"},
}


def default_settings(platform: str) -> dict[str, Any]:
    """A fresh copy of Reap's defaults for one platform ({} for platforms without settings)."""
    return dict(DEFAULT_SETTINGS.get(platform, {}))


def settings_line(platform: str, settings: dict[str, Any]) -> str | None:
    """One human line describing a platform's settings, for the card."""
    s = {**default_settings(platform), **settings}
    if platform == Platform.YOUTUBE.value:
        kids = "made for kids" if s.get("madeForKids") else "not made for kids"
        return f"YouTube: {YOUTUBE_PRIVACY.get(str(s.get('privacy')), str(s.get('privacy')))} · {kids}"
    if platform == Platform.TIKTOK.value:
        parts = [TIKTOK_PRIVACY.get(str(s.get("privacy")), str(s.get("privacy")))]
        for key, word in (("disableComments", "comments"), ("disableDuet", "duet"), ("disableStitch", "stitch")):
            parts.append(f"{word} {'off' if s.get(key) else 'on'}")
        if s.get("brandContent"):
            parts.append("branded content")
        if s.get("brandOrganic"):
            parts.append("promotes own brand")
        return "TikTok: " + " · ".join(parts)
    if platform == Platform.INSTAGRAM.value:
        return "Instagram: Reel, also shared to the feed" if s.get("shareToFeed") else "Instagram: Reel only (not shared to the feed)"
    if platform == Platform.LINKEDIN.value:
        return f"LinkedIn: {LINKEDIN_PRIVACY.get(str(s.get('privacy')), str(s.get('privacy')))}"
    return None


# -- limits ---------------------------------------------------------------------------------------


def title_limit(platforms: set[Platform]) -> int:
    """YouTube allows 100 characters; Reap itself 250."""
    return YOUTUBE_TITLE_LIMIT if Platform.YOUTUBE in platforms else REAP_TITLE_LIMIT


def description_limit(platforms: set[Platform]) -> tuple[int, str]:
    """The tightest description limit among the targets, and who imposes it."""
    limit, who = REAP_DESCRIPTION_LIMIT, "Reap"
    for platform in sorted(platforms, key=lambda p: p.value):
        platform_limit = CAPTION_LIMITS.get(platform)
        if platform_limit is not None and platform_limit < limit:
            limit, who = platform_limit, platform.label
    return limit, who


def description_length(text: str, platforms: set[Platform]) -> int:
    """Counted the strictest way any target counts (TikTok: UTF-16 units, so emoji count as 2)."""
    return utf16_length(text) if Platform.TIKTOK in platforms else len(text)


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


def field_errors(title: str, description: str, tags: list[str], platforms: set[Platform]) -> Errors:
    """Every problem with the shared fields for these target platforms, keyed by input block_id."""
    errors: Errors = {}
    youtube = Platform.YOUTUBE in platforms
    limit = title_limit(platforms)
    if youtube and not title:
        errors[Field.TITLE.value] = "A title is required when a YouTube account is a target."
    elif len(title) > limit:
        who = "YouTube" if youtube else "Reap"
        errors[Field.TITLE.value] = f"Title is {len(title):,} characters; {who} allows {limit}."
    elif youtube and ("<" in title or ">" in title):
        errors[Field.TITLE.value] = "YouTube titles can't contain < or >."

    d_limit, who = description_limit(platforms)
    d_length = description_length(description, platforms)
    if not description.strip():
        errors[Field.DESCRIPTION.value] = "The description can't be empty."
    elif d_length > d_limit:
        how = " (emoji count as 2 for TikTok)" if d_length != len(description) else ""
        errors[Field.DESCRIPTION.value] = f"Description is {d_length:,} characters{how}; {who} allows {d_limit:,}."
    elif youtube and ("<" in description or ">" in description):
        errors[Field.DESCRIPTION.value] = "YouTube descriptions can't contain < or >."

    if len(tags) > REAP_MAX_TAGS:
        errors[Field.TAGS.value] = f"Reap allows up to {REAP_MAX_TAGS} tags; you have {len(tags)}."
    elif youtube and sum(len(t) for t in tags) + max(0, len(tags) - 1) > YOUTUBE_TAGS_TOTAL:
        errors[Field.TAGS.value] = f"YouTube allows about {YOUTUBE_TAGS_TOTAL} characters of tags in total."
    return errors


# -- the modal ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    """An integration the modal offers as a target."""

    id: str
    platform: Platform
    label: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Choice | None:
        """Read the snapshot stored in `Post.extra["integrations"]`."""
        try:
            return cls(id=str(data["id"]), platform=Platform(str(data["platform"])), label=str(data.get("label") or data["id"]))
        except (KeyError, ValueError):
            return None


def choices_of(extra: dict[str, Any]) -> list[Choice]:
    """The target choices stored on a Reap post."""
    raw = extra.get("integrations") or []
    found = (Choice.from_dict(item) for item in raw if isinstance(item, dict))
    return [c for c in found if c is not None]


def _option_text(text: str) -> str:
    return text if len(text) <= OPTION_TEXT_MAX else text[: OPTION_TEXT_MAX - 1] + "…"


def _select(field_: Field, label: str, options: dict[str, str], current: Any) -> InputBlock:
    opts = [Option(value=value, text=text) for value, text in options.items()]
    initial = next((o for o in opts if o.value == current), None)
    return InputBlock(
        block_id=field_.value,
        label=label,
        element=StaticSelectElement(action_id=field_.value, placeholder="Choose", options=opts, initial_option=initial),
    )


def _checkboxes(field_: Field, label: str, options: dict[str, str], checked: set[str]) -> InputBlock:
    opts = [Option(value=value, text=_option_text(text)) for value, text in options.items()]
    initial = [o for o in opts if o.value in checked]
    return InputBlock(
        block_id=field_.value,
        label=label,
        # Unticking every box is a valid choice for settings toggles.
        optional=True,
        # Slack rejects an empty initial_options list, so omit it instead.
        element=CheckboxesElement(action_id=field_.value, options=opts, initial_options=initial or None),
    )


def _targets_input(choices: list[Choice], targets: list[str]) -> InputBlock:
    opts = [Option(value=c.id, text=_option_text(c.label)) for c in choices]
    initial = [o for o in opts if o.value in targets] or None
    element: CheckboxesElement | StaticMultiSelectElement
    if len(opts) <= MAX_CHECKBOXES:
        element = CheckboxesElement(action_id=Field.TARGETS.value, options=opts, initial_options=initial)
    else:
        element = StaticMultiSelectElement(
            action_id=Field.TARGETS.value, placeholder="Pick accounts", options=opts, initial_options=initial
        )
    return InputBlock(
        block_id=Field.TARGETS.value,
        label="Publish to",
        # Checked by us so that "pick at least one" is said in words, not as Slack's generic error.
        optional=True,
        element=element,
        hint="Title, description and tags are shared by every account Reap posts to.",
    )


def _settings_blocks(platforms: list[Platform], settings: dict[str, dict[str, Any]]) -> list[Block]:
    blocks: list[Block] = []
    for platform in platforms:
        s = {**default_settings(platform.value), **settings.get(platform.value, {})}
        if platform is Platform.YOUTUBE:
            blocks.append(_select(Field.YT_PRIVACY, "YouTube visibility", YOUTUBE_PRIVACY, s.get("privacy")))
            blocks.append(
                _checkboxes(
                    Field.YT_KIDS, "YouTube audience", {YT_KIDS_VALUE: "Made for kids"},
                    {YT_KIDS_VALUE} if s.get("madeForKids") else set(),
                )
            )
        elif platform is Platform.TIKTOK:
            blocks.append(_select(Field.PRIVACY, "TikTok: who can view", TIKTOK_PRIVACY, s.get("privacy")))
            blocks.append(
                _checkboxes(Field.TOGGLES, "TikTok options", TIKTOK_FLAGS, {k for k in TIKTOK_FLAGS if s.get(k)})
            )
        elif platform is Platform.INSTAGRAM:
            blocks.append(
                _checkboxes(
                    Field.IG_FEED, "Instagram", {IG_FEED_VALUE: "Also share the Reel to the feed"},
                    {IG_FEED_VALUE} if s.get("shareToFeed") else set(),
                )
            )
        elif platform is Platform.LINKEDIN:
            blocks.append(_select(Field.LI_PRIVACY, "LinkedIn visibility", LINKEDIN_PRIVACY, s.get("privacy")))
    return blocks


def _platforms_of(choices: list[Choice], ids: list[str] | None = None) -> list[Platform]:
    """Distinct platforms (first-seen order) of the chosen integrations, or of all of them."""
    out: list[Platform] = []
    for c in choices:
        if (ids is None or c.id in ids) and c.platform not in out:
            out.append(c.platform)
    return out


def reap_edit_modal(
    post_id: int,
    *,
    title: str | None,
    description: str,
    extra: dict[str, Any],
) -> View:
    """The edit form of a Reap draft: shared fields, targets and per-platform settings."""
    choices = choices_of(extra)
    targets = [str(t) for t in extra.get("targets") or []]
    target_platforms = set(_platforms_of(choices, targets))
    t_limit = title_limit(target_platforms)
    d_limit, who = description_limit(target_platforms)
    title = title or ""
    tags = [str(t) for t in extra.get("tags") or []]
    blocks: list[Block] = [
        ContextBlock(elements=[MarkdownTextObject(text=f"Reap clip · Greenlight #{post_id}")]),
        InputBlock(
            block_id=Field.TITLE.value,
            label=f"Title (max {t_limit} characters)",
            optional=True,
            element=PlainTextInputElement(
                action_id=Field.TITLE.value,
                initial_value=title or None,
                # Never cap below a value we prefill, or Slack refuses to open the modal.
                max_length=REAP_TITLE_LIMIT if len(title) <= REAP_TITLE_LIMIT else None,
            ),
            hint="Required when a YouTube account is a target (YouTube allows 100 characters).",
        ),
        InputBlock(
            block_id=Field.DESCRIPTION.value,
            label=f"Description (max {d_limit:,} characters, {who})",
            element=PlainTextInputElement(
                action_id=Field.DESCRIPTION.value,
                multiline=True,
                initial_value=description or None,
                max_length=(
                    REAP_DESCRIPTION_LIMIT
                    if len(description) <= REAP_DESCRIPTION_LIMIT and REAP_DESCRIPTION_LIMIT <= SLACK_INPUT_MAX
                    else None
                ),
            ),
            hint="TikTok counts most emoji as 2 characters." if Platform.TIKTOK in target_platforms else None,
        ),
        InputBlock(
            block_id=Field.TAGS.value,
            label=f"Tags (comma-separated, up to {REAP_MAX_TAGS})",
            optional=True,
            element=PlainTextInputElement(action_id=Field.TAGS.value, initial_value=", ".join(tags) or None),
        ),
        _targets_input(choices, targets),
    ]
    platforms = _platforms_of(choices)
    settings_blocks = _settings_blocks(platforms, extra.get("settings") or {})
    if settings_blocks:
        blocks.append(DividerBlock())
        blocks.append(
            ContextBlock(elements=[MarkdownTextObject(text="*Platform settings* (used for the accounts you publish to)")])
        )
        blocks.extend(settings_blocks)
    return View(
        type="modal",
        callback_id=ViewId.REAP_EDIT.value,
        private_metadata=json.dumps({"post_id": post_id}, separators=(",", ":")),
        title="Edit Reap draft",
        submit="Save",
        close="Cancel",
        blocks=blocks,
    )


# -- parsing --------------------------------------------------------------------------------------


def _element(state_values: dict[str, Any], field_: Field) -> dict[str, Any]:
    block = state_values.get(field_.value)
    if not isinstance(block, dict) or not block:
        return {}
    element = block.get(field_.value)
    if element is None:
        element = next(iter(block.values()))
    return element if isinstance(element, dict) else {}


def _text(state_values: dict[str, Any], field_: Field) -> str:
    value = _element(state_values, field_).get("value")
    return value if isinstance(value, str) else ""


def _selected(state_values: dict[str, Any], field_: Field) -> str | None:
    option = _element(state_values, field_).get("selected_option")
    if isinstance(option, dict) and isinstance(option.get("value"), str):
        return str(option["value"])
    return None


def _checked(state_values: dict[str, Any], field_: Field) -> set[str] | None:
    """Ticked values, or None when the input wasn't in the modal at all."""
    if field_.value not in state_values:
        return None
    options = _element(state_values, field_).get("selected_options")
    if not isinstance(options, list):
        return set()
    return {str(o["value"]) for o in options if isinstance(o, dict) and "value" in o}


@dataclass
class ReapEditForm:
    """A valid Reap edit submission."""

    title: str
    description: str
    tags: list[str]
    targets: list[str]
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)


def parse_reap_edit(state_values: dict[str, Any], extra: dict[str, Any]) -> ReapEditForm | Errors:
    """Validate the Reap edit modal against the targets chosen in it: a form, or inline errors."""
    errors: Errors = {}
    choices = choices_of(extra)
    known = {c.id for c in choices}
    ticked = _checked(state_values, Field.TARGETS) or set()
    # Keep the stored order of accounts, and ignore ids that aren't ours to offer.
    targets = [c.id for c in choices if c.id in ticked and c.id in known]
    if not targets:
        errors[Field.TARGETS.value] = "Pick at least one account to publish to."
    platforms = set(_platforms_of(choices, targets))

    # Surrounding spaces in a title are never intended; the description is kept as typed.
    title = _text(state_values, Field.TITLE).strip()
    description = _text(state_values, Field.DESCRIPTION)
    tags = parse_tags(_text(state_values, Field.TAGS))
    errors.update(field_errors(title, description, tags, platforms))

    stored: dict[str, dict[str, Any]] = extra.get("settings") or {}
    settings: dict[str, dict[str, Any]] = {p: dict(v) for p, v in stored.items() if isinstance(v, dict)}

    def current(platform: Platform) -> dict[str, Any]:
        return {**default_settings(platform.value), **settings.get(platform.value, {})}

    for platform in _platforms_of(choices):
        targeted = platform in platforms
        s = current(platform)
        if platform is Platform.YOUTUBE:
            privacy = _selected(state_values, Field.YT_PRIVACY)
            if privacy in YOUTUBE_PRIVACY:
                s["privacy"] = privacy
            elif targeted:
                errors[Field.YT_PRIVACY.value] = "Choose who can see the YouTube video."
            kids = _checked(state_values, Field.YT_KIDS)
            if kids is not None:
                s["madeForKids"] = YT_KIDS_VALUE in kids
        elif platform is Platform.TIKTOK:
            privacy = _selected(state_values, Field.PRIVACY)
            if privacy in TIKTOK_PRIVACY:
                s["privacy"] = privacy
            elif targeted:
                errors[Field.PRIVACY.value] = "Choose who can view the TikTok."
            flags = _checked(state_values, Field.TOGGLES)
            if flags is not None:
                s.update({key: key in flags for key in TIKTOK_FLAGS})
        elif platform is Platform.INSTAGRAM:
            feed = _checked(state_values, Field.IG_FEED)
            if feed is not None:
                s["shareToFeed"] = IG_FEED_VALUE in feed
        elif platform is Platform.LINKEDIN:
            privacy = _selected(state_values, Field.LI_PRIVACY)
            if privacy in LINKEDIN_PRIVACY:
                s["privacy"] = privacy
            elif targeted:
                errors[Field.LI_PRIVACY.value] = "Choose who can see the LinkedIn post."
        if s:
            settings[platform.value] = s
    if errors:
        return errors
    return ReapEditForm(title=title, description=description, tags=tags, targets=targets, settings=settings)


def post_id_of(view: dict[str, Any]) -> int | None:
    """The Greenlight post id a submitted Reap modal is about (None when the reference is unusable)."""
    try:
        return post_ref_from_metadata(view.get("private_metadata"))
    except InvalidReference:
        return None
