"""Modal submissions: a Choppity draft's edit form per platform (through the same path as the app:
the modal state read into values, the provider's form validating them), and every error the user can
trigger; the schedule time and the cancel reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.domain import Change, ChangeReason, Platform, PostContent, TikTokSettings, YouTubeSettings
from bot.domain.forms import FieldId
from bot.providers.choppity import form as choppity_form
from bot.slack.forms import form_values, parse_cancel_reason, parse_change_request, parse_schedule

EditForm = Change


def parse_edit(state: dict[str, Any], platform: Platform, old: PostContent | None = None) -> Change | dict[str, str]:
    """What the app does with a submitted edit modal of a Choppity draft."""
    return choppity_form.parse_edit(platform, old or PostContent(caption=""), form_values(state))

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def text(field: FieldId, value: str | None) -> dict[str, Any]:
    return {field.value: {field.value: {"type": "plain_text_input", "value": value}}}


def select(field: FieldId, value: str | None) -> dict[str, Any]:
    option = None if value is None else {"text": {"type": "plain_text", "text": value}, "value": value}
    return {field.value: {field.value: {"type": "static_select", "selected_option": option}}}


def checks(field: FieldId, values: list[str]) -> dict[str, Any]:
    options = [{"text": {"type": "plain_text", "text": v}, "value": v} for v in values]
    return {field.value: {field.value: {"type": "checkboxes", "selected_options": options}}}


def when(ts: int | None) -> dict[str, Any]:
    return {FieldId.WHEN.value: {FieldId.WHEN.value: {"type": "datetimepicker", "selected_date_time": ts}}}


def youtube_state(
    caption: str = "Caption", title: str = "Title", category: str | None = "22"
) -> dict[str, Any]:
    return {**text(FieldId.CAPTION, caption), **text(FieldId.TITLE, title), **select(FieldId.CATEGORY, category)}


def test_youtube_refuses_angle_brackets_in_a_caption_other_platforms_keep_them() -> None:
    refused = errors_of(parse_edit(youtube_state(caption="Hi <there>"), Platform.YOUTUBE))
    assert refused == {FieldId.CAPTION: "YouTube descriptions can't contain < or >."}
    kept = parse_edit({**text(FieldId.CAPTION, "Hi <there>")}, Platform.LINKEDIN)
    assert isinstance(kept, EditForm) and kept.content.caption == "Hi <there>"


def errors_of(result: EditForm | dict[str, str]) -> dict[str, str]:
    assert isinstance(result, dict), result
    return result


def test_youtube_valid() -> None:
    form = parse_edit(youtube_state(caption="Hi *there* & 🎉\n", title="  Nice title  "), Platform.YOUTUBE)
    assert isinstance(form, EditForm)
    assert form.content.caption == "Hi *there* & 🎉\n"  # kept exactly as typed
    assert form.content.title == "Nice title"
    assert form.content.youtube == YouTubeSettings(category_id="22")
    assert form.content.tiktok is None


def test_youtube_caption_up_to_5000() -> None:
    assert isinstance(parse_edit(youtube_state(caption="x" * 5000), Platform.YOUTUBE), EditForm)
    errors = parse_edit(youtube_state(caption="x" * 5001), Platform.YOUTUBE)
    assert errors == {FieldId.CAPTION.value: "Caption is 5,001 characters; YouTube allows 5,000."}


def test_youtube_title_rules() -> None:
    errors = parse_edit(youtube_state(title="a <b> c"), Platform.YOUTUBE)
    assert errors == {FieldId.TITLE.value: "YouTube titles can't contain < or >"}
    errors = parse_edit(youtube_state(title="   "), Platform.YOUTUBE)
    assert isinstance(errors, dict) and FieldId.TITLE.value in errors
    errors = parse_edit(youtube_state(title="t" * 101), Platform.YOUTUBE)
    assert isinstance(errors, dict) and "101" in errors[FieldId.TITLE.value]
    assert isinstance(parse_edit(youtube_state(title="t" * 100), Platform.YOUTUBE), EditForm)


def test_youtube_category_must_be_known() -> None:
    assert parse_edit(youtube_state(category="99"), Platform.YOUTUBE) == {
        FieldId.CATEGORY.value: "Pick a category from the list."
    }
    assert parse_edit(youtube_state(category=None), Platform.YOUTUBE) == {
        FieldId.CATEGORY.value: "Pick a category."
    }


def test_blank_caption_rejected() -> None:
    assert parse_edit(text(FieldId.CAPTION, "  \n "), Platform.INSTAGRAM) == {
        FieldId.CAPTION.value: "Caption can't be empty."
    }
    assert parse_edit(text(FieldId.CAPTION, None), Platform.LINKEDIN) == {
        FieldId.CAPTION.value: "Caption can't be empty."
    }
    assert parse_edit({}, Platform.LINKEDIN) == {FieldId.CAPTION.value: "Caption can't be empty."}


def test_several_errors_at_once() -> None:
    errors = parse_edit(youtube_state(caption="", title="", category=None), Platform.YOUTUBE)
    assert isinstance(errors, dict)
    assert set(errors) == {FieldId.CAPTION.value, FieldId.TITLE.value, FieldId.CATEGORY.value}


def tiktok_state(
    caption: str = "hi", privacy: str | None = "SELF_ONLY", toggles: list[str] | None = None
) -> dict[str, Any]:
    return {
        **text(FieldId.CAPTION, caption),
        **select(FieldId.PRIVACY, privacy),
        **checks(FieldId.TOGGLES, toggles or []),
    }


def test_tiktok_valid_with_toggles() -> None:
    form = parse_edit(
        tiktok_state(toggles=["disable_duet", "brand_content_toggle", "bogus"]), Platform.TIKTOK
    )
    assert isinstance(form, EditForm)
    assert form.content.tiktok == TikTokSettings(
        privacy_level="SELF_ONLY", disable_duet=True, brand_content_toggle=True
    )
    assert form.content.title is None and form.content.youtube is None


def test_tiktok_counts_utf16_units() -> None:
    # 1100 emoji = 1100 characters but 2200 UTF-16 units: exactly at the limit.
    assert isinstance(parse_edit(tiktok_state(caption="🎉" * 1100), Platform.TIKTOK), EditForm)
    errors = parse_edit(tiktok_state(caption="🎉" * 1100 + "a"), Platform.TIKTOK)
    assert errors == {
        FieldId.CAPTION.value: "Caption is 2,201 characters (emoji count as 2); TikTok allows 2,200."
    }
    # Instagram counts characters, so the same 1101-character caption is fine there.
    assert isinstance(parse_edit(text(FieldId.CAPTION, "🎉" * 1100 + "a"), Platform.INSTAGRAM), EditForm)


def test_tiktok_plain_over_limit_message() -> None:
    errors = parse_edit(tiktok_state(caption="x" * 2345), Platform.TIKTOK)
    assert errors == {FieldId.CAPTION.value: "Caption is 2,345 characters; TikTok allows 2,200."}


def test_tiktok_privacy_required_and_known() -> None:
    assert FieldId.PRIVACY.value in errors_of(parse_edit(tiktok_state(privacy=None), Platform.TIKTOK))
    assert FieldId.PRIVACY.value in errors_of(parse_edit(tiktok_state(privacy="PUBLIC"), Platform.TIKTOK))


def test_instagram_and_linkedin_limits() -> None:
    assert isinstance(parse_edit(text(FieldId.CAPTION, "x" * 2200), Platform.INSTAGRAM), EditForm)
    assert FieldId.CAPTION.value in errors_of(parse_edit(text(FieldId.CAPTION, "x" * 2201), Platform.INSTAGRAM))
    assert isinstance(parse_edit(text(FieldId.CAPTION, "x" * 3000), Platform.LINKEDIN), EditForm)
    assert FieldId.CAPTION.value in errors_of(parse_edit(text(FieldId.CAPTION, "x" * 3001), Platform.LINKEDIN))


def test_the_edit_keeps_fields_the_modal_did_not_show() -> None:
    old = PostContent(caption="old", title="T", youtube=YouTubeSettings("22"), tiktok=None)
    form = parse_edit(text(FieldId.CAPTION, "new"), Platform.INSTAGRAM, old)
    assert isinstance(form, EditForm)
    assert form.content == PostContent(caption="new", title="T", youtube=YouTubeSettings("22"))
    assert form.summary == "caption (3 → 3 chars)"


def test_the_edit_applies_youtube_changes() -> None:
    old = PostContent(caption="old", title="T", youtube=YouTubeSettings("22"))
    form = parse_edit(youtube_state(caption="new", title="T2", category="27"), Platform.YOUTUBE, old)
    assert isinstance(form, EditForm)
    new = form.content
    assert new == PostContent(caption="new", title="T2", youtube=YouTubeSettings("27"))
    assert new.changes_from(old) == {"caption": "new", "title": "T2", "youtube": {"category_id": "27"}}


def test_schedule_lead_time() -> None:
    ok = parse_schedule(when(int((NOW + timedelta(minutes=6)).timestamp())), NOW)
    assert ok == NOW + timedelta(minutes=6)
    assert isinstance(ok, datetime) and ok.tzinfo is not None and ok.utcoffset() == timedelta(0)
    assert parse_schedule(when(int((NOW + timedelta(minutes=4)).timestamp())), NOW) == {
        FieldId.WHEN.value: "Pick a time at least 5 minutes from now."
    }
    assert parse_schedule(when(int((NOW - timedelta(hours=1)).timestamp())), NOW) == {
        FieldId.WHEN.value: "That time is in the past."
    }


def test_schedule_missing() -> None:
    assert parse_schedule(when(None), NOW) == {FieldId.WHEN.value: "Pick a date and time."}
    assert parse_schedule({}, NOW) == {FieldId.WHEN.value: "Pick a date and time."}


def test_schedule_custom_lead() -> None:
    ts = int((NOW + timedelta(minutes=20)).timestamp())
    assert parse_schedule(when(ts), NOW, min_lead=timedelta(minutes=30)) == {
        FieldId.WHEN.value: "Pick a time at least 30 minutes from now."
    }


def test_cancel_reason() -> None:
    assert parse_cancel_reason(text(FieldId.REASON, "  wrong clip \n")) == "wrong clip"
    assert parse_cancel_reason(text(FieldId.REASON, "   ")) is None
    assert parse_cancel_reason(text(FieldId.REASON, None)) is None
    assert parse_cancel_reason({}) is None


# Request changes ----------------------------------------------------------------------------------


def radio(value: str | None) -> dict[str, Any]:
    option = None if value is None else {"text": {"type": "plain_text", "text": value}, "value": value}
    return {FieldId.CHANGE_REASON.value: {FieldId.CHANGE_REASON.value: {"type": "radio_buttons",
                                                                        "selected_option": option}}}


def test_change_request_reason_and_note() -> None:
    assert parse_change_request({**radio("tone"), **text(FieldId.CHANGE_NOTE, "  Too salesy  ")}) == (
        ChangeReason.TONE, "Too salesy")
    assert parse_change_request({**radio("timing"), **text(FieldId.CHANGE_NOTE, "   ")}) == (ChangeReason.TIMING, None)
    assert parse_change_request(radio("wrong_account")) == (ChangeReason.WRONG_ACCOUNT, None)


def test_change_request_errors_are_inline() -> None:
    assert parse_change_request({}) == {FieldId.CHANGE_REASON.value: "Pick what needs to change."}
    assert set(parse_change_request(radio("made-up"))) == {FieldId.CHANGE_REASON.value}  # type: ignore[arg-type]
    other = parse_change_request(radio("other"))
    assert isinstance(other, dict) and "Other" in other[FieldId.CHANGE_NOTE.value]
    long = parse_change_request({**radio("claim"), **text(FieldId.CHANGE_NOTE, "x" * 501)})
    assert isinstance(long, dict) and "500" in long[FieldId.CHANGE_NOTE.value] and "501" in long[FieldId.CHANGE_NOTE.value]
