"""The review card: right status and buttons per state, caption shown exactly and in full."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from bot.domain import (
    TIKTOK_TOGGLES,
    Activity,
    ActivityKind,
    Card,
    CardDetails,
    ChangeReason,
    ChangeRequest,
    DetailLine,
    PendingAction,
    Platform,
    PostContent,
    PostStatus,
    TikTokSettings,
    YouTubeSettings,
)
from bot.providers.choppity.provider import TIKTOK_TOGGLE_WORDS, details
from bot.slack.blocks import (
    card_message,
    split_caption,
)
from bot.slack.ids import ActionId
from bot.slack.mrkdwn import date as slack_date
from bot.slack.mrkdwn import escape as escape_mrkdwn
from bot.slack.mrkdwn import unescape as unescape_mrkdwn

WHEN = datetime(2026, 3, 1, 14, 0, tzinfo=UTC)


def make_card(**overrides: Any) -> Card:
    base = Card(
        post_id=42,
        provider="choppity",
        provider_title="Choppity",
        external_id="post_9",
        clip_id="abc",
        platform=Platform.YOUTUBE,
        status=PostStatus.DRAFT,
        content=PostContent(
            caption="New video! Tips & tricks <3 🎉",
            title="My title",
            youtube=YouTubeSettings(category_id="22"),
        ),
        can_cancel=True,
    )
    card = replace(base, **overrides)
    if "details" not in overrides and card.provider == "choppity":
        card = replace(card, details=details(card.platform, card.content))  # what the provider adds
    return card


def render(card: Card) -> tuple[str, list[dict[str, Any]]]:
    text, blocks = card_message(card)
    dicts = [b.to_dict() for b in blocks]
    # Every block re-validates through slack_sdk, and the message stays within Slack's limits.
    for d in dicts:
        parsed = Block.parse(d)
        assert parsed is not None and parsed.to_dict() == d
    assert len(dicts) <= 50
    assert 0 < len(text) <= 3000
    return text, dicts


def all_text(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def action_ids(blocks: list[dict[str, Any]]) -> list[str]:
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def visible_caption(blocks: list[dict[str, Any]]) -> str:
    """The caption as a viewer reads it: the card's plain_text sections, joined (no escaping)."""
    return "".join(
        b["text"]["text"] for b in blocks if b["type"] == "section" and b["text"]["type"] == "plain_text"
    )


def test_fallback_text_names_platform_clip_and_state() -> None:
    text, _ = render(make_card())
    assert text == "YouTube draft for clip abc — Draft awaiting review"


def test_draft_shows_edit_publish_schedule_cancel() -> None:
    _, blocks = render(make_card())
    assert action_ids(blocks) == [ActionId.EDIT, ActionId.PUBLISH, ActionId.SCHEDULE, ActionId.REQUEST_CHANGES, ActionId.CANCEL]
    actions = next(b for b in blocks if b["type"] == "actions")
    assert actions["block_id"] == "card_actions_42"
    by_id = {e["action_id"]: e for e in actions["elements"]}
    assert all(e["value"] == "42" for e in by_id.values())
    assert by_id[ActionId.PUBLISH]["style"] == "primary"
    assert by_id[ActionId.CANCEL]["style"] == "danger"
    # Cancel opens a confirmation modal instead of a client-side confirm.
    assert "confirm" not in by_id[ActionId.CANCEL]
    assert "Draft* — awaiting review" in all_text(blocks)


def test_header_has_platform_label_and_badge() -> None:
    _, blocks = render(make_card())
    assert blocks[0]["type"] == "header"
    assert blocks[0]["text"]["text"] == "▶️ YouTube · 📝 Draft"


def test_two_approvals_needed_shows_approve_not_publish() -> None:
    _, blocks = render(make_card(required_approvals=2, approvals=("U_ANA",)))
    assert action_ids(blocks) == [ActionId.EDIT, ActionId.APPROVE, ActionId.REQUEST_CHANGES, ActionId.CANCEL]
    assert "Approvals 1/2: <@U_ANA>" in all_text(blocks)


def test_enough_approvals_shows_publish_and_hides_approve() -> None:
    _, blocks = render(make_card(required_approvals=2, approvals=("U_ANA", "U_BEN")))
    assert action_ids(blocks) == [ActionId.EDIT, ActionId.PUBLISH, ActionId.SCHEDULE, ActionId.REQUEST_CHANGES, ActionId.CANCEL]
    assert "Approvals 2/2: <@U_ANA>, <@U_BEN>" in all_text(blocks)


@pytest.mark.parametrize(
    ("action", "words"),
    [
        (PendingAction.PUBLISH, "Publishing…"),
        (PendingAction.SCHEDULE, "Scheduling…"),
        (PendingAction.CANCEL, "Cancelling…"),
        (PendingAction.EDIT, "Saving your edit…"),
    ],
)
def test_pending_action_shows_progress_and_no_buttons(action: PendingAction, words: str) -> None:
    _, blocks = render(make_card(pending_action=action, pending_by="U_BOB"))
    assert action_ids(blocks) == []
    assert f"⏳ *{words}* requested by <@U_BOB>" in all_text(blocks)


def test_queued_shows_approver_date_and_only_cancel() -> None:
    _, blocks = render(make_card(status=PostStatus.QUEUED, approved_by="U_ANA", approved_at=WHEN, can_cancel=True))
    assert action_ids(blocks) == [ActionId.CANCEL]
    assert "Queued* — approved by <@U_ANA> <!date^1772373600^" in all_text(blocks)


def test_scheduled_shows_time_in_viewer_zone_and_only_cancel() -> None:
    _, blocks = render(make_card(status=PostStatus.SCHEDULED, scheduled_at=WHEN, approved_by="U_ANA", can_cancel=True))
    assert action_ids(blocks) == [ActionId.CANCEL]
    text = all_text(blocks)
    assert f"🗓 *Scheduled for {slack_date(WHEN)}* — by <@U_ANA>" in text
    assert "{date_short_pretty} at {time}|2026-03-01 14:00 UTC>" in text


def test_published_shows_link_and_no_buttons() -> None:
    card = make_card(
        status=PostStatus.PUBLISHED,
        published_at=WHEN,
        published_url="https://youtu.be/xyz?a=1&b=2",
        approved_by="U_ANA",
    )
    _, blocks = render(card)
    assert action_ids(blocks) == []
    text = all_text(blocks)
    assert "🚀 *Published* <!date^1772373600^" in text
    assert "<https://youtu.be/xyz?a=1&amp;b=2|View on YouTube>" in text
    assert "approved by <@U_ANA>" in text


def test_failed_shows_reason_in_own_section_escaped() -> None:
    _, blocks = render(
        make_card(status=PostStatus.FAILED, error="Token <expired> & revoked", approved_by="U_ANA")
    )
    assert action_ids(blocks) == []
    status = blocks[1]
    assert status["type"] == "section"
    assert status["text"]["text"].startswith("❌ *Failed:* Token &lt;expired&gt; &amp; revoked")
    assert "approved by <@U_ANA>" in status["text"]["text"]


def test_cancelled_with_and_without_actor() -> None:
    _, blocks = render(make_card(status=PostStatus.CANCELLED, cancelled_by="U_CAT"))
    assert action_ids(blocks) == []
    assert "🚫 *Cancelled by <@U_CAT>*" in all_text(blocks)
    _, blocks = render(make_card(status=PostStatus.CANCELLED))
    assert "🚫 *Cancelled*" in all_text(blocks)


def test_activity_shown_as_context() -> None:
    _, blocks = render(make_card(activity=Activity(ActivityKind.EDITED, actor="U_ANA")))
    contexts = [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]
    assert "✏️ Edited by <@U_ANA>" in contexts


def test_activity_actor_that_is_not_a_user_id_is_text() -> None:
    _, blocks = render(make_card(activity=Activity(ActivityKind.EDITED, actor="<!channel>")))
    contexts = [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]
    assert "✏️ Edited by &lt;!channel&gt;" in contexts


@pytest.mark.parametrize("status", [PostStatus.PROCESSING, PostStatus.UPLOADING])
def test_publishing_under_way_says_so_without_cancel(status: PostStatus) -> None:
    _, blocks = render(make_card(status=status, approved_by="U_ANA", can_cancel=False))
    assert action_ids(blocks) == []
    text = all_text(blocks)
    assert "Publishing is under way" in text and "can no longer be pulled back" in text


def test_unknown_status_is_shown_as_the_provider_says_it() -> None:
    fallback, blocks = render(make_card(status=PostStatus.UNKNOWN, raw_status="archived", can_cancel=False))
    assert action_ids(blocks) == []
    assert "“archived”" in all_text(blocks)
    assert "archived" in fallback


def test_published_url_with_markup_characters_is_never_a_link() -> None:
    for url in ("https://evil.example/a|Click here", "https://x.example/>@channel", "javascript:alert(1)",
                "https://x.example/<!channel>"):
        _, blocks = render(make_card(status=PostStatus.PUBLISHED, published_url=url))
        text = all_text(blocks)
        assert "View on YouTube" in text
        assert "<!channel>" not in text and "|Click here" not in text and "<javascript" not in text


def test_compact_card_shortens_the_caption_and_says_edit_shows_it_all() -> None:
    caption = "x" * 4000
    _, full = render(make_card(content=PostContent(caption=caption, title="T")))
    _, compact = render(make_card(content=PostContent(caption=caption, title="T"), compact=True))
    assert len(str(compact)) < len(str(full)) - 2000
    assert "Open *Edit* to see it all" in all_text(compact)


def test_caption_round_trips_exactly() -> None:
    caption = "Line one <b>bold?</b> & *stars* _under_ :fire: <!channel>\n\n🎉👩‍👩‍👧 done"
    _, blocks = render(make_card(content=PostContent(caption=caption)))
    assert visible_caption(blocks) == caption
    # Nothing in mrkdwn carries the raw `<!channel>`: it must never ping anyone.
    for b in blocks:
        if b["type"] == "section" and b["text"]["type"] == "mrkdwn":
            assert "<!channel>" not in b["text"]["text"]


def test_long_caption_split_in_full_with_part_labels() -> None:
    words = " ".join(f"word{i}&<{i}>" for i in range(700))
    caption = (words + " 🎉")[:7000]
    assert len(caption) == 7000
    _, blocks = render(make_card(content=PostContent(caption=caption)))
    assert visible_caption(blocks) == caption
    text = all_text(blocks)
    assert "Caption (part 1 of 3)" in text
    assert "Caption (part 3 of 3)" in text
    for b in blocks:
        if b["type"] == "section":
            assert len(b["text"]["text"]) <= 3000


def test_split_caption_never_breaks_surrogate_pairs_and_rejoins() -> None:
    caption = "🎉" * 4000
    parts = split_caption(caption)
    assert "".join(parts) == caption
    assert all(len(p.encode("utf-16-le")) // 2 <= 2900 for p in parts)


def test_huge_caption_is_cut_with_notice() -> None:
    caption = "x" * 20_000
    _, blocks = render(make_card(content=PostContent(caption=caption)))
    shown = visible_caption(blocks)
    assert caption.startswith(shown) and len(shown) < len(caption)
    assert f"of {len(caption):,} characters are shown here" in all_text(blocks)


def test_over_limit_caption_warns() -> None:
    card = make_card(platform=Platform.TIKTOK, content=PostContent(caption="🎉" * 1101))
    _, blocks = render(card)
    assert "Over the TikTok limit: 2,202 characters (emoji count as 2)" in all_text(blocks)


def test_empty_caption_says_so() -> None:
    _, blocks = render(make_card(content=PostContent(caption="")))
    assert "The caption is empty" in all_text(blocks)


def test_youtube_title_and_category_by_name() -> None:
    _, blocks = render(make_card())
    text = all_text(blocks)
    assert "*Title:* My title" in text
    assert "Category: People &amp; Blogs" in text  # escaped for mrkdwn; shows as "People & Blogs"


def test_unknown_youtube_category_shows_id() -> None:
    content = PostContent(caption="c", title="t", youtube=YouTubeSettings(category_id="99"))
    _, blocks = render(make_card(content=content))
    assert "Category 99" in all_text(blocks)


def test_tiktok_settings_in_words() -> None:
    settings = TikTokSettings(privacy_level="PUBLIC_TO_EVERYONE", disable_duet=True, disable_stitch=True)
    card = make_card(platform=Platform.TIKTOK, content=PostContent(caption="hi", tiktok=settings))
    _, blocks = render(card)
    text = all_text(blocks)
    assert "Who can view: Everyone" in text
    assert "Comments: on · Duet: off · Stitch: off · Branded content: no · Own brand promotion: no" in text


def test_tiktok_toggle_words_cover_every_toggle() -> None:
    assert list(TIKTOK_TOGGLE_WORDS) == list(TIKTOK_TOGGLES)


def test_ids_targets_and_notes_in_context() -> None:
    card = make_card(
        provider="reap", provider_title="Reap",
        details=CardDetails(targets=("YouTube · My Channel",), lines=(DetailLine(("Reap: <auto> caption",)),)),
    )
    _, blocks = render(card)
    contexts = "\n".join(e["text"] for b in blocks if b["type"] == "context" for e in b["elements"])
    assert "Clip abc · Reap post post_9" in contexts
    assert "YouTube · My Channel" in contexts
    assert "Reap: &lt;auto&gt; caption" in contexts


def test_escape_round_trip() -> None:
    s = "a & b <c> &amp;"
    assert unescape_mrkdwn(escape_mrkdwn(s)) == s


@pytest.mark.parametrize("status", list(PostStatus))
@pytest.mark.parametrize("platform", list(Platform))
def test_every_state_and_platform_validates(status: PostStatus, platform: Platform) -> None:
    render(make_card(status=status, platform=platform))


def test_reap_post_handed_off_offers_no_cancel_but_a_greenlight_held_schedule_does() -> None:
    def ids(card: Card) -> list[str]:
        _, blocks = card_message(card)
        return [e["action_id"] for b in blocks if b.to_dict()["type"] == "actions" for e in b.to_dict()["elements"]]

    one = CardDetails(targets=("YouTube · My Channel",))
    handed_off = make_card(provider="reap", provider_title="Reap", status=PostStatus.QUEUED, details=one,
                           can_cancel=False)
    held = make_card(provider="reap", provider_title="Reap", status=PostStatus.SCHEDULED, details=one, can_cancel=True)
    assert ids(handed_off) == []
    assert ids(held) == [ActionId.CANCEL]
    _, blocks = card_message(make_card(provider="reap", provider_title="Reap",
                                       details=CardDetails(targets=("YouTube · My Channel", "TikTok · @me"))))
    publish = next(e for b in blocks if b.to_dict()["type"] == "actions" for e in b.to_dict()["elements"]
                   if e["action_id"] == ActionId.PUBLISH)
    assert "YouTube · My Channel, TikTok · @me" in publish["confirm"]["text"]["text"]


# -- review: changes requested, AI draft, overdue, four eyes ---------------------------------------------


def test_changes_requested_card_reads_as_such_and_offers_only_edit_and_cancel() -> None:
    request = ChangeRequest(by="U_BOB", reason=ChangeReason.CLAIM, note="Source for <10x> & *faster*?")
    text, blocks = render(make_card(change_request=request, required_approvals=2, approvals=("U_ANA", "U_DAN")))
    assert action_ids(blocks) == [ActionId.EDIT, ActionId.CANCEL]
    assert blocks[0]["text"]["text"] == "▶️ YouTube · ✋ Changes requested"
    assert text == "YouTube draft for clip abc — Changes requested"
    status = blocks[1]["text"]["text"]
    assert status.startswith("✋ *Changes requested by <@U_BOB>:* Claim to check — Source for &lt;10x&gt; &amp; *faster*?")
    assert "come back with the next edit" in status
    # Without cancel (a provider that can't cancel a draft) only Edit is left.
    _, blocks = render(make_card(change_request=request, can_cancel=False))
    assert action_ids(blocks) == [ActionId.EDIT]
    # Once something is in flight or decided, the request is no longer the card's story.
    _, blocks = render(make_card(change_request=request, pending_action=PendingAction.EDIT, pending_by="U_ANA"))
    assert "Changes requested" not in all_text(blocks) and action_ids(blocks) == []


def test_ai_draft_mark_on_the_caption_until_a_person_changes_it() -> None:
    _, blocks = render(make_card(caption_by_ai=True))
    assert "*Caption* · 29 / 5,000 characters · 🤖 AI draft" in all_text(blocks)
    _, blocks = render(make_card(caption_by_ai=False))
    assert "AI draft" not in all_text(blocks)


def test_overdue_line_only_on_an_open_draft() -> None:
    _, blocks = render(make_card(overdue_since=WHEN))
    assert f"⏰ *Overdue* — a decision was due {slack_date(WHEN)}." in all_text(blocks)
    for decided in (make_card(overdue_since=WHEN, status=PostStatus.QUEUED),
                    make_card(overdue_since=WHEN, pending_action=PendingAction.PUBLISH)):
        _, blocks = render(decided)
        assert "Overdue" not in all_text(blocks)


@pytest.mark.parametrize(
    ("approvers", "required", "words"),
    [
        ((), 1, "🔒 Four eyes: <@U_ANA> made the last edit, so someone else must publish or schedule this version."),
        (("U_ANA", "U_BOB"), 1, "so another approver must publish or schedule this version: <@U_BOB>."),
        (("U_ANA", "S_LEADS"), 2, "must approve, publish or schedule this version: <!subteam^S_LEADS> (not <@U_ANA>)."),
        (("U_ANA",), 1, "<@U_ANA> made the last edit and is the only approver, so nobody can publish or schedule"),
    ],
)
def test_four_eyes_line_says_who_may_still_decide(approvers: tuple[str, ...], required: int, words: str) -> None:
    _, blocks = render(make_card(last_editor="U_ANA", approvers=approvers, required_approvals=required))
    assert words in all_text(blocks)
    _, blocks = render(make_card(last_editor=None, approvers=approvers))
    assert "Four eyes" not in all_text(blocks)
