"""Modals and overviews: structure, prefill, ids, and Slack's size limits."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.domain import (
    ChangeReason,
    ChangeRequest,
    Platform,
    PostContent,
    PostStatus,
    TikTokSettings,
    YouTubeSettings,
)
from bot.domain.forms import FieldId
from bot.providers.choppity.form import edit_form
from bot.slack.home import (
    ProviderCommand,
    QueueGroup,
    QueueItem,
    headline,
    help_blocks,
    home_view,
    queue_blocks,
)
from bot.slack.ids import ActionId, ViewId
from bot.slack.modals import (
    cancel_modal,
    edit_modal,
    loading_modal,
    next_full_hour,
    request_changes_modal,
    schedule_modal,
)
from bot.slack.mrkdwn import unescape as unescape_mrkdwn


def as_dict(view: View) -> dict[str, Any]:
    d = view.to_dict()
    # Round trip through slack_sdk: the output is a view Slack's own models accept.
    assert View(**d).to_dict() == d
    return d


def choppity_edit_modal(post_id: int, platform: Platform, content: PostContent) -> View:
    """The edit modal Slack shows for a Choppity draft."""
    return edit_modal(post_id, edit_form(post_id, platform, content))


def inputs(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}
    for block_id, b in found.items():
        assert b["element"]["action_id"] == block_id  # forms.py relies on block_id == action_id
    return found


def test_loading_modal() -> None:
    v = as_dict(loading_modal("Edit draft"))
    assert v["callback_id"] == ViewId.LOADING
    assert "submit" not in v
    assert "Loading…" in v["blocks"][0]["text"]["text"]
    assert len(as_dict(loading_modal("A very long title that does not fit"))["title"]["text"]) <= 24


def test_edit_modal_youtube() -> None:
    content = PostContent(caption="c <&> 🎉", title="My title", youtube=YouTubeSettings("22"))
    v = as_dict(choppity_edit_modal(42, Platform.YOUTUBE, content))
    assert v["callback_id"] == ViewId.EDIT
    assert json.loads(v["private_metadata"]) == {"post_id": 42}
    assert (v["title"]["text"], v["submit"]["text"], v["close"]["text"]) == ("Edit draft", "Save", "Cancel")
    fields = inputs(v)
    assert set(fields) == {FieldId.TITLE, FieldId.CAPTION, FieldId.CATEGORY}
    caption = fields[FieldId.CAPTION]
    assert caption["element"]["initial_value"] == "c <&> 🎉"
    assert caption["element"]["multiline"] is True
    # YouTube allows 5000, above Slack's 3000 cap: no max_length, forms.py checks instead.
    assert "max_length" not in caption["element"]
    assert caption["label"]["text"] == "Caption (max 5,000 characters)"
    assert fields[FieldId.TITLE]["element"]["max_length"] == 100
    assert fields[FieldId.TITLE]["element"]["initial_value"] == "My title"
    category = fields[FieldId.CATEGORY]["element"]
    assert category["initial_option"]["value"] == "22"
    assert category["initial_option"]["text"]["text"] == "People & Blogs"
    assert len(category["options"]) == 15


def test_edit_modal_unknown_category_has_no_initial_option() -> None:
    content = PostContent(caption="c", title="t", youtube=YouTubeSettings("99"))
    category = inputs(as_dict(choppity_edit_modal(1, Platform.YOUTUBE, content)))[FieldId.CATEGORY]
    assert "initial_option" not in category["element"]
    assert "99" in category["hint"]["text"]


def test_edit_modal_tiktok() -> None:
    settings = TikTokSettings(
        privacy_level="FOLLOWER_OF_CREATOR", disable_comment=True, brand_organic_toggle=True
    )
    v = as_dict(choppity_edit_modal(7, Platform.TIKTOK, PostContent(caption="hi", tiktok=settings)))
    fields = inputs(v)
    assert set(fields) == {FieldId.CAPTION, FieldId.PRIVACY, FieldId.TOGGLES}
    assert fields[FieldId.CAPTION]["element"]["max_length"] == 2200
    assert fields[FieldId.CAPTION]["label"]["text"] == "Caption (max 2,200 characters)"
    privacy = fields[FieldId.PRIVACY]["element"]
    assert len(privacy["options"]) == 4
    assert privacy["initial_option"]["value"] == "FOLLOWER_OF_CREATOR"
    toggles = fields[FieldId.TOGGLES]
    assert toggles["optional"] is True
    assert len(toggles["element"]["options"]) == 5
    assert [o["value"] for o in toggles["element"]["initial_options"]] == [
        "disable_comment",
        "brand_organic_toggle",
    ]


def test_edit_modal_tiktok_all_off_omits_initial_options() -> None:
    v = as_dict(choppity_edit_modal(7, Platform.TIKTOK, PostContent(caption="hi", tiktok=TikTokSettings())))
    assert "initial_options" not in inputs(v)[FieldId.TOGGLES]["element"]


@pytest.mark.parametrize("platform", [Platform.INSTAGRAM, Platform.LINKEDIN])
def test_edit_modal_caption_only(platform: Platform) -> None:
    v = as_dict(choppity_edit_modal(3, platform, PostContent(caption="hello")))
    assert set(inputs(v)) == {FieldId.CAPTION}


def test_edit_modal_prefill_over_limit_drops_max_length() -> None:
    v = as_dict(choppity_edit_modal(3, Platform.INSTAGRAM, PostContent(caption="x" * 2500)))
    assert "max_length" not in inputs(v)[FieldId.CAPTION]["element"]


def test_schedule_modal() -> None:
    initial = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)
    v = as_dict(schedule_modal(42, "Europe/Berlin", "CET", initial))
    assert v["callback_id"] == ViewId.SCHEDULE
    assert (v["title"]["text"], v["submit"]["text"]) == ("Schedule post", "Schedule")
    assert json.loads(v["private_metadata"]) == {"post_id": 42, "tz": "Europe/Berlin"}
    when = inputs(v)[FieldId.WHEN]
    assert when["element"]["type"] == "datetimepicker"
    assert when["element"]["initial_date_time"] == int(initial.timestamp())
    assert when["hint"]["text"] == "Times are in your Slack time zone (CET). At least 5 minutes from now."


def test_cancel_modal() -> None:
    v = as_dict(cancel_modal(42, "YouTube", "Scheduled"))
    assert v["callback_id"] == ViewId.CANCEL
    assert (v["title"]["text"], v["submit"]["text"], v["close"]["text"]) == (
        "Cancel post",
        "Cancel post",
        "Keep it",
    )
    assert json.loads(v["private_metadata"]) == {"post_id": 42}
    assert "This cancels the *YouTube* post" in v["blocks"][0]["text"]["text"]
    assert "can't be undone" in v["blocks"][0]["text"]["text"]
    reason = inputs(v)[FieldId.REASON]
    assert reason["optional"] is True
    assert reason["element"]["multiline"] is True
    assert reason["element"]["max_length"] == 500


def test_next_full_hour_kolkata_half_hour_offset() -> None:
    now = datetime(2026, 3, 1, 10, 10, tzinfo=UTC)  # 15:40 in Kolkata
    nxt = next_full_hour(now, "Asia/Kolkata")
    assert nxt.tzinfo is not None
    assert (nxt.hour, nxt.minute) == (16, 0)
    assert nxt.astimezone(UTC) == datetime(2026, 3, 1, 10, 30, tzinfo=UTC)


def test_next_full_hour_berlin_and_dst() -> None:
    now = datetime(2026, 1, 15, 9, 59, 59, tzinfo=UTC)  # 10:59:59 CET
    assert next_full_hour(now, "Europe/Berlin") == datetime(
        2026, 1, 15, 11, 0, tzinfo=ZoneInfo("Europe/Berlin")
    )
    # Exactly on the hour: the *next* one.
    on_the_hour = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)  # 11:00 CET
    assert next_full_hour(on_the_hour, "Europe/Berlin").hour == 12
    # Spring forward (29 Mar 2026, 02:00 -> 03:00 local): 01:30 CET is followed by 03:00 CEST.
    before_jump = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    nxt = next_full_hour(before_jump, "Europe/Berlin")
    assert (nxt.hour, nxt.minute) == (3, 0)
    assert nxt.astimezone(UTC) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_next_full_hour_unknown_zone_is_utc() -> None:
    nxt = next_full_hour(datetime(2026, 3, 1, 10, 10, tzinfo=UTC), "Mars/Olympus")
    assert nxt == datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
    assert nxt.utcoffset() == timedelta(0)


# Overviews ---------------------------------------------------------------------------------------


def item(i: int, status: PostStatus = PostStatus.DRAFT) -> QueueItem:
    return QueueItem(
        post_id=i,
        platform=Platform.YOUTUBE,
        headline=f"Post <{i}> & more",
        status=status,
        permalink=f"https://example.slack.com/archives/C1/p{i}",
        when=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        approvals=1,
        required=2,
    )


def group(items: list[QueueItem], total: int | None = None) -> QueueGroup:
    return QueueGroup(items[:20], len(items) if total is None else total)


def validate_blocks(blocks: list[Block]) -> list[dict[str, Any]]:
    dicts = [b.to_dict() for b in blocks]
    for d in dicts:
        parsed = Block.parse(d)
        assert parsed is not None and parsed.to_dict() == d
    return dicts


def test_queue_empty() -> None:
    text, blocks = queue_blocks(group([]), group([]))
    assert text == "Nothing is waiting for review 🎉"
    assert "Nothing is waiting for review 🎉" in str(validate_blocks(blocks))


def test_queue_lists_items_with_links_and_dates() -> None:
    text, blocks = queue_blocks(group([item(1)]), group([item(2, PostStatus.SCHEDULED)]))
    dumped = str(validate_blocks(blocks))
    assert "1 waiting for review, 1 scheduled" == text
    assert "<https://example.slack.com/archives/C1/p1|Open card>" in dumped
    assert "Post &lt;1&gt; &amp; more" in dumped
    assert "<!date^1772366400^" in dumped
    assert "approvals 1/2" in dumped


def test_queue_caps_at_50_blocks() -> None:
    waiting = group([item(i) for i in range(200)])
    scheduled = group([item(i, PostStatus.SCHEDULED) for i in range(200)])
    _, blocks = queue_blocks(waiting, scheduled)
    dumped = str(validate_blocks(blocks))
    assert len(blocks) <= 50
    assert "…and 180 more" in dumped


def test_home_view_caps_at_100_blocks() -> None:
    many = group([item(i) for i in range(200)], total=501)
    v = as_dict(
        home_view(
            many,
            group([item(i, PostStatus.SCHEDULED) for i in range(200)]),
            group([item(i, PostStatus.PUBLISHED) for i in range(200)]),
            group([item(i, PostStatus.FAILED) for i in range(200)]),
            group([item(i, PostStatus.PROCESSING) for i in range(30)]),
        )
    )
    assert v["type"] == "home"
    assert len(v["blocks"]) <= 100
    dumped = str(v)
    assert "Waiting for review (501)" in dumped
    assert "Recently published (last 7 days) (200)" in dumped
    assert "Publishing now (30)" in dumped
    assert "…and 486 more" in dumped
    assert "…and 185 more" in dumped
    buttons = [b["accessory"] for b in v["blocks"] if "accessory" in b]
    assert buttons and all(b["action_id"] == ActionId.OPEN_CARD for b in buttons)


def test_home_view_empty() -> None:
    v = as_dict(home_view(group([]), group([]), group([]), group([])))
    assert "Nothing is waiting for review 🎉" in str(v)


def test_help_blocks() -> None:
    text, blocks = help_blocks(
        [ProviderCommand("clip", "clip", "Choppity"), ProviderCommand("reap", "Reap project", "Reap")]
    )
    dumped = unescape_mrkdwn(str(validate_blocks(blocks)))
    for command in ("/greenlight clip <clip_id>", "/greenlight reap <project_id>", "/greenlight queue"):
        assert command in dumped
    assert "/greenlight help" in dumped
    assert text


def test_headline() -> None:
    assert headline(PostContent(caption="\n  First line here\nsecond")) == "First line here"
    assert headline(PostContent(caption="x", title="Title wins")) == "Title wins"
    long = headline(PostContent(caption="y" * 200))
    assert len(long) <= 80 and long.endswith("…")
    assert headline(PostContent(caption="")) == "(no caption)"


# Review: the request-changes modal, the changes-requested group, overdue marks -----------------------


def test_request_changes_modal() -> None:
    v = as_dict(request_changes_modal(42, "LinkedIn"))
    assert v["callback_id"] == ViewId.REQUEST_CHANGES and json.loads(v["private_metadata"]) == {"post_id": 42}
    assert (v["title"]["text"], v["submit"]["text"], v["close"]["text"]) == ("Request changes", "Request changes",
                                                                             "Cancel")
    fields = inputs(v)
    assert set(fields) == {FieldId.CHANGE_REASON, FieldId.CHANGE_NOTE}
    reason = fields[FieldId.CHANGE_REASON]
    assert reason["element"]["type"] == "radio_buttons" and not reason.get("optional")
    assert [o["value"] for o in reason["element"]["options"]] == [r.value for r in ChangeReason]
    note = fields[FieldId.CHANGE_NOTE]
    assert note["optional"] is True and note["element"]["max_length"] == 500 and note["element"]["multiline"]
    assert "*LinkedIn*" in v["blocks"][0]["text"]["text"]


def test_queue_shows_changes_requested_as_its_own_group_and_overdue_counts() -> None:
    request = ChangeRequest(by="U_BOB", reason=ChangeReason.TONE)
    waiting = QueueGroup([replace(item(1), overdue=True)], 1, overdue=1)
    changes = QueueGroup([replace(item(2), changes=request)], 1)
    text, blocks = queue_blocks(waiting, group([item(3, PostStatus.SCHEDULED)]), changes)
    shown = unescape_mrkdwn(str(validate_blocks(blocks)))
    assert text == "1 waiting for review, 1 with changes requested, 1 scheduled (1 overdue)"
    assert "Waiting for review (1 · 1 overdue)" in shown and "⏰ *overdue*" in shown
    assert "✋ Changes requested (1)" in shown and "✋ Tone, asked by <@U_BOB>" in shown
    assert shown.index("Waiting for review") < shown.index("Changes requested") < shown.index("Scheduled")
    # Only changes requested: still a queue, not "nothing waiting".
    text, _ = queue_blocks(group([]), group([]), changes)
    assert "with changes requested" in text


def test_queue_with_three_full_groups_stays_within_50_blocks_and_counts_true() -> None:
    full = [item(i) for i in range(200)]
    _, blocks = queue_blocks(group(full, total=300), group([item(i, PostStatus.SCHEDULED) for i in range(200)]),
                             group(full, total=250))
    dumped = str(validate_blocks(blocks))
    assert len(blocks) <= 50
    for heading in ("Waiting for review (300)", "Changes requested (250)", "Scheduled (200)"):
        assert heading in dumped
    assert "…and 280 more" in dumped  # the first group keeps its 20


def test_home_view_with_every_group_full_stays_within_100_blocks() -> None:
    many = group([item(i) for i in range(200)], total=501)
    v = as_dict(home_view(many, many, many, many, many, changes=many))
    dumped = str(v)
    assert len(v["blocks"]) <= 100
    for heading in ("Waiting for review (501)", "Changes requested (501)", "Scheduled (501)", "Publishing now (501)",
                    "Failed (last 7 days) (501)", "Recently published (last 7 days) (501)"):
        assert heading in dumped
