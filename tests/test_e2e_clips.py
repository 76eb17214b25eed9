"""End to end: the clip is the unit of review.

One message per clip in the review channel (every platform's state, Publish all, Schedule all); the
platform cards in its thread; one confirmation that lists exactly what goes where and when; each
post still acted on alone, with its own outcome. Real HTTP against the fakes throughout.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from slack_sdk.models.views import View
from sqlmodel import Session, select

from bot.domain.forms import FieldId
from bot.models import Clip, Post
from bot.slack.ids import ActionId, ViewId
from tests.fakes.choppity import FakeChoppity
from tests.fakes.reap import FakeReap
from tests.fakes.slack import FakeSlack, Message
from tests.harness import (
    CHANNEL,
    Greenlight,
    SlackDriver,
    base_env,
    buttons,
    card,
    cards_in_channel,
    clip_messages,
    db_post,
    live_markup_problems,
    publish_calls,
    text_of,
    thread,
    wait_until,
)

PLATFORMS = ("youtube", "tiktok", "instagram", "linkedin")


def clip_up(app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity,
            platforms: tuple[str, ...] = PLATFORMS) -> tuple[int, str]:
    """A Choppity clip with one draft per platform, brought in with /greenlight clip: (clip row id, clip id)."""
    ref = fake_choppity.add_clip(platforms=platforms)
    slack.command(f"clip {ref}")
    wait_until(lambda: len(cards_in_channel(fake_slack)) == len(platforms), message="every card")
    app.settle()
    with Session(app.services.engine) as session:
        clip = session.exec(select(Clip).where(Clip.ref == ref)).one()
        assert clip.id is not None
        return clip.id, ref


def clip_message(fake_slack: FakeSlack, app: Greenlight, clip_id: int) -> Message:
    """The clip's message as Slack holds it now."""
    with Session(app.services.engine) as session:
        clip = session.get(Clip, clip_id)
        assert clip is not None and clip.message_ts is not None
        ts = clip.message_ts
    message = fake_slack.message(CHANNEL, ts)
    assert message is not None
    return message


def posts_of(app: Greenlight, ref: str) -> list[Post]:
    """Greenlight's rows of a clip, oldest first."""
    with Session(app.services.engine) as session:
        rows = list(session.exec(select(Post).where(Post.clip_id == ref).order_by(Post.id)).all())  # type: ignore[arg-type]
        for row in rows:
            session.expunge(row)
        return rows


def response_view(response: httpx.Response) -> dict[str, Any]:
    """The view a view_submission answered with (response_action: update), checked by slack_sdk."""
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["response_action"] == "update", answer
    view: dict[str, Any] = answer["view"]
    View(**view).validate_json()
    return view


def listed_text(view: dict[str, Any]) -> str:
    """Everything a confirmation shows."""
    return json.dumps(view["blocks"], ensure_ascii=False)


# -- the layout ------------------------------------------------------------------------------------------


def test_a_clip_is_one_message_with_its_cards_in_the_thread(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    clip_id, ref = clip_up(app, slack, fake_slack, fake_choppity)
    [top] = fake_slack.messages(CHANNEL)  # the channel holds one message for the whole clip
    assert top.ts == clip_message(fake_slack, app, clip_id).ts
    assert top.metadata == {"event_type": "greenlight_clip", "event_payload": {"clip_id": clip_id}}
    cards = cards_in_channel(fake_slack)
    assert len(cards) == 4 and all(c.thread_ts == top.ts for c in cards)
    assert {p.thread_ts for p in posts_of(app, ref)} == {top.ts}
    summary = text_of(top)
    for label in ("YouTube", "TikTok", "Instagram", "LinkedIn"):
        assert f"{label}* — 📝 Draft awaiting review" in summary
    assert ref in summary
    assert buttons(top) == [ActionId.PUBLISH_ALL, ActionId.SCHEDULE_ALL]
    assert "Publish all (4)" in summary
    assert live_markup_problems(fake_slack) == []


def test_a_second_clip_gets_its_own_message_and_a_reimport_adds_nothing(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    first, ref = clip_up(app, slack, fake_slack, fake_choppity, ("youtube", "tiktok"))
    second = fake_choppity.add_clip(platforms=("linkedin",))
    slack.command(f"clip {second}")
    wait_until(lambda: len(cards_in_channel(fake_slack)) == 3, message="third card")
    slack.command(f"clip {ref}")
    app.settle()
    assert len(clip_messages(fake_slack)) == 2 and len(cards_in_channel(fake_slack)) == 3
    assert fake_slack.count("chat.postMessage") == 5


def test_the_summary_follows_every_outcome_and_replies_name_the_platform(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    clip_id, ref = clip_up(app, slack, fake_slack, fake_choppity, ("youtube", "tiktok"))
    youtube, tiktok = posts_of(app, ref)
    assert youtube.id is not None and tiktok.id is not None
    slack.click(ActionId.PUBLISH, youtube.id, user="U_BOB")
    slack.click(ActionId.PUBLISH, tiktok.id, user="U_BOB")
    app.settle()
    fake_choppity.complete_publish(youtube.external_id, url="https://youtu.be/clip0001")
    app.choppity_event("post.published", {"post_id": youtube.external_id})
    fake_choppity.fail_post(tiktok.external_id, "TikTok account disconnected")
    app.choppity_event("post.failed", {"post_id": tiktok.external_id})
    app.settle()
    wait_until(lambda: "Published" in text_of(clip_message(fake_slack, app, clip_id)), message="summary updated")
    summary = text_of(clip_message(fake_slack, app, clip_id))
    assert "YouTube* — 🚀 Published" in summary and "https://youtu.be/clip0001" in summary
    assert "TikTok* — ❌ Failed: TikTok account disconnected" in summary
    assert buttons(clip_message(fake_slack, app, clip_id)) == []  # nothing left to act on
    assert any(r.startswith("*YouTube* · ") and "https://youtu.be/clip0001" in r
               for r in thread(fake_slack, app, youtube.external_id))
    assert thread(fake_slack, app, tiktok.external_id)  # its own replies, in the same thread
    assert not any("youtu.be" in r for r in thread(fake_slack, app, tiktok.external_id))


# -- Publish all -------------------------------------------------------------------------------------------


def test_publish_all_confirms_exactly_what_goes_then_publishes_each_once(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    clip_id, ref = clip_up(app, slack, fake_slack, fake_choppity, ("youtube", "tiktok", "linkedin"))
    youtube, tiktok, linkedin = posts_of(app, ref)
    assert linkedin.id is not None
    slack.click(ActionId.PUBLISH, linkedin.id)  # already on its way: left out of Publish all
    app.settle()
    slack.click(ActionId.PUBLISH_ALL, clip_id, user="U_BOB")
    view = slack.latest_view(ViewId.BULK_CONFIRM)
    shown = listed_text(view)
    assert "Publish 2 post(s)" in shown and "YouTube" in shown and "TikTok" in shown and "now" in shown
    assert "Left out" in shown and "LinkedIn" in shown
    assert json.loads(view["private_metadata"])["post_ids"] == [youtube.id, tiktok.id]
    assert publish_calls(fake_choppity, youtube.external_id) == []  # nothing until confirmed
    slack.submit(view, user="U_BOB")
    app.settle()
    for post in (youtube, tiktok, linkedin):
        assert len(publish_calls(fake_choppity, post.external_id)) == 1
        assert db_post(app, post.external_id).status == "queued"
    assert "Queued" in text_of(card(fake_slack, app, youtube.external_id))
    note = fake_slack.ephemerals("U_BOB")[-1].text
    assert "Publishing 2 post(s) of this clip: YouTube, TikTok" in note
    # A second confirmation of the same list changes nothing: each post is re-checked.
    slack.submit(view, user="U_BOB")
    app.settle()
    assert len(publish_calls(fake_choppity, youtube.external_id)) == 1
    assert "was left out" in fake_slack.ephemerals("U_BOB")[-1].text


def test_publish_all_respects_each_posts_approval_rules(
    make_app: Any, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app = make_app(APPROVERS="U_BOB,U_CAROL", REQUIRED_APPROVALS="2")
    slack = SlackDriver(app, fake_slack)
    clip_id, ref = clip_up(app, slack, fake_slack, fake_choppity, ("youtube", "tiktok"))
    youtube, tiktok = posts_of(app, ref)
    assert youtube.id is not None
    # Not an approver: nothing is offered, nothing is done.
    slack.click(ActionId.PUBLISH_ALL, clip_id, user="U_MALLORY")
    view = slack.latest_view(ViewId.BULK_CONFIRM)
    assert "Nothing here can be done by you now" in listed_text(view) and "submit" not in view
    # Two approvals on YouTube only: TikTok is listed as left out, with why.
    slack.click(ActionId.APPROVE, youtube.id, user="U_BOB")
    slack.click(ActionId.APPROVE, youtube.id, user="U_CAROL")
    app.settle()
    slack.click(ActionId.PUBLISH_ALL, clip_id, user="U_BOB")
    view = slack.latest_view(ViewId.BULK_CONFIRM)
    assert "Publish 1 post(s)" in listed_text(view) and "needs 2 approvals" in listed_text(view).lower()
    slack.submit(view, user="U_BOB")
    app.settle()
    assert len(publish_calls(fake_choppity, youtube.external_id)) == 1
    assert publish_calls(fake_choppity, tiktok.external_id) == []


def test_a_forged_confirmation_never_acts_on_another_clips_posts(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    clip_id, _ = clip_up(app, slack, fake_slack, fake_choppity, ("youtube",))
    other_ref = fake_choppity.add_clip(platforms=("tiktok",))
    slack.command(f"clip {other_ref}")
    wait_until(lambda: len(cards_in_channel(fake_slack)) == 2, message="second clip")
    app.settle()
    [other] = posts_of(app, other_ref)
    slack.click(ActionId.PUBLISH_ALL, clip_id)
    view = slack.latest_view(ViewId.BULK_CONFIRM)
    forged = {**view, "private_metadata": json.dumps({"clip_id": clip_id, "action": "publish",
                                                      "post_ids": [other.id]})}
    assert slack.submit(forged).status_code == 200
    app.settle()
    assert publish_calls(fake_choppity, other.external_id) == []
    for garbage in ("{}", "not json", json.dumps({"clip_id": clip_id, "action": "delete", "post_ids": []})):
        assert slack.submit({**view, "private_metadata": garbage}).status_code == 200
    app.settle()
    assert fake_choppity.calls("POST", r"/publish$") == []


# -- Schedule all -----------------------------------------------------------------------------------------


def _first_slot() -> datetime:
    return (datetime.now(UTC) + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)


def test_schedule_all_spaces_the_posts_and_lists_each_time_before_anything_happens(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    clip_id, ref = clip_up(app, slack, fake_slack, fake_choppity, ("youtube", "tiktok", "instagram"))
    posts = posts_of(app, ref)
    slack.click(ActionId.SCHEDULE_ALL, clip_id, user="U_BOB")
    form = slack.latest_view(ViewId.SCHEDULE_ALL)
    first = _first_slot()
    answer = slack.submit(form, user="U_BOB", values={
        FieldId.WHEN: {"type": "datetimepicker", "selected_date_time": int(first.timestamp())},
        FieldId.SPACING: {"type": "static_select", "selected_option": {"value": "60"}},
    })
    confirm = response_view(answer)
    assert confirm["callback_id"] == ViewId.BULK_CONFIRM
    shown = listed_text(confirm)
    for n in range(3):
        assert f"<!date^{int((first + timedelta(hours=n)).timestamp())}^" in shown
    assert fake_choppity.calls("POST", r"/publish$") == []
    slack.submit({**form, **confirm, "id": form["id"]}, user="U_BOB")
    app.settle()
    for n, post in enumerate(posts):
        [call] = publish_calls(fake_choppity, post.external_id)
        assert call.json == {"scheduled_at": int((first + timedelta(hours=n)).timestamp()) * 1000}
    assert "Scheduling 3 post(s)" in fake_slack.ephemerals("U_BOB")[-1].text


@pytest.mark.parametrize(("when_delta", "spacing", "field", "message"), [
    (timedelta(minutes=3), "0", FieldId.WHEN, "at least 5 minutes"),
    (timedelta(minutes=-30), "0", FieldId.WHEN, "in the past"),
    (timedelta(hours=2), "7", FieldId.SPACING, "how far apart"),
])
def test_schedule_all_refuses_bad_input_inline(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity,
    when_delta: timedelta, spacing: str, field: FieldId, message: str,
) -> None:
    clip_id, _ = clip_up(app, slack, fake_slack, fake_choppity, ("youtube",))
    slack.click(ActionId.SCHEDULE_ALL, clip_id)
    form = slack.latest_view(ViewId.SCHEDULE_ALL)
    answer = slack.submit(form, values={
        FieldId.WHEN: {"type": "datetimepicker", "selected_date_time": int((datetime.now(UTC) + when_delta).timestamp())},
        FieldId.SPACING: {"type": "static_select", "selected_option": {"value": spacing}},
    }).json()
    assert answer["response_action"] == "errors" and message in answer["errors"][field.value]
    assert fake_choppity.calls("POST", r"/publish$") == []


def test_a_confirmation_left_open_too_long_schedules_nothing(
    fake_slack: FakeSlack, fake_choppity: FakeChoppity, database_url: str
) -> None:
    ahead = [timedelta(0)]
    app = Greenlight(base_env(fake_slack, fake_choppity, database_url),
                     clock=lambda: datetime.now(UTC) + ahead[0]).start()
    try:
        slack = SlackDriver(app, fake_slack)
        clip_id, _ = clip_up(app, slack, fake_slack, fake_choppity, ("youtube",))
        slack.click(ActionId.SCHEDULE_ALL, clip_id)
        form = slack.latest_view(ViewId.SCHEDULE_ALL)
        first = datetime.now(UTC) + timedelta(minutes=10)
        confirm = response_view(slack.submit(form, values={
            FieldId.WHEN: {"type": "datetimepicker", "selected_date_time": int(first.timestamp())}}))
        ahead[0] = timedelta(minutes=7)  # the reviewer went for coffee
        answer = slack.submit({**form, **confirm, "id": form["id"]})
        assert "less than 5 minutes away" in json.dumps(response_view(answer))
        app.settle()
        assert fake_choppity.calls("POST", r"/publish$") == []
    finally:
        app.stop()


# -- the same for Reap --------------------------------------------------------------------------------------


def test_a_reap_clip_shows_its_title_duration_and_score(fake_slack: FakeSlack, database_url: str) -> None:
    with FakeReap(rate_limit_per_minute=100) as reap:
        account = reap.add_integration("youtube", name="Main channel")
        project = reap.add_project(status="completed", clips=[
            {"title": "The moment <!channel> it *clicked*", "duration": 58.4, "viralityScore": 8.5}])
        env = base_env(fake_slack, None, database_url, REAP_API_KEY=reap.api_key, REAP_API_URL=reap.url,
                       REAP_INTEGRATIONS=account)
        app = Greenlight(env).start()
        try:
            slack = SlackDriver(app, fake_slack)
            slack.command(f"reap {project}")
            wait_until(lambda: len(cards_in_channel(fake_slack)) == 1, message="the card")
            app.settle()
            [top] = clip_messages(fake_slack)
            shown = text_of(top)
            assert "⏱ 0:58" in shown and "Score 8.5/10" in shown
            assert top.blocks[0]["text"]["text"] == "🎬 The moment <!channel> it *clicked*"  # plain text
            assert buttons(top) == [ActionId.PUBLISH_ALL, ActionId.SCHEDULE_ALL]
            assert live_markup_problems(fake_slack) == []
        finally:
            app.stop()


# -- exactly once -------------------------------------------------------------------------------------------


def test_a_lost_answer_for_the_clip_message_never_makes_two(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    fake_slack.lose_answer_next("chat.postMessage", how="500")
    ref = fake_choppity.add_clip(platforms=("youtube", "tiktok"))
    slack.command(f"clip {ref}")
    wait_until(lambda: len(cards_in_channel(fake_slack)) == 2, timeout=30, message="both cards")
    app.drain()
    assert len(clip_messages(fake_slack)) == 1
    [top] = clip_messages(fake_slack)
    assert {c.thread_ts for c in cards_in_channel(fake_slack)} == {top.ts}
