"""End to end: Choppity drafts become cards, and every button does what it says.

Each test runs the real app over HTTP against the fake Slack and fake Choppity servers and asserts
on what Slack received, what Choppity received and what the database holds.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from bot.domain.forms import FieldId
from bot.models import Job, Post
from bot.slack.ids import ActionId, ViewId
from tests.fakes.choppity import FakeChoppity
from tests.fakes.slack import FakeSlack
from tests.harness import (
    CHANNEL,
    Greenlight,
    SlackDriver,
    audit,
    buttons,
    card,
    card_up,
    cards_in_channel,
    clip_messages,
    db_post,
    publish_calls,
    replies_about,
    text_of,
    wait_until,
)

# -- drafts arrive ----------------------------------------------------------------------------------


def test_clip_command_cards_each_draft_once_and_lists_non_drafts(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    clip = fake_choppity.add_clip()
    published = fake_choppity.add_post("linkedin", clip_id=clip, status="published")
    response, response_url = slack.command(f"clip {clip}")
    assert response.status_code == 200
    assert "Looking up" in response.text
    wait_until(lambda: len(cards_in_channel(fake_slack)) == 4, message="4 cards")
    wait_until(lambda: bool(fake_slack.responses(response_url)), message="summary")
    summary = fake_slack.responses(response_url)[-1]["text"]
    assert "Posted 4 drafts" in summary
    assert "LinkedIn: published" in summary
    assert published["id"] not in {db.external_id for db in _all_posts(app)}

    # Twice: nothing new is posted, and the summary says so.
    _, again_url = slack.command(f"clip {clip}")
    wait_until(lambda: bool(fake_slack.responses(again_url)), message="second summary")
    assert "Nothing new" in fake_slack.responses(again_url)[-1]["text"]
    app.settle()
    assert len(cards_in_channel(fake_slack)) == 4 and len(clip_messages(fake_slack)) == 1


def _all_posts(app: Greenlight) -> list[Post]:
    with Session(app.services.engine) as session:
        return list(session.exec(select(Post)).all())


def test_clip_command_reports_unknown_clip_and_api_errors(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    _, url = slack.command("clip does-not-exist")
    wait_until(lambda: bool(fake_slack.responses(url)), message="error reply")
    assert "couldn't find" in fake_slack.responses(url)[-1]["text"].lower()
    fake_choppity.fail_next("GET", r"/posts$", 401, code="UNAUTHORIZED", message="Authentication required")
    clip = fake_choppity.add_clip(platforms=("tiktok",))
    _, url = slack.command(f"clip {clip}")
    wait_until(lambda: bool(fake_slack.responses(url)), message="401 reply")
    assert "CHOPPITY_API_KEY" in fake_slack.responses(url)[-1]["text"]
    assert fake_slack.messages(CHANNEL) == []


def test_help_and_unknown_subcommands(app: Greenlight, slack: SlackDriver) -> None:
    response, _ = slack.command("")
    assert "/greenlight clip" in response.text
    response, _ = slack.command("frobnicate")
    assert "I don't know `frobnicate`" in response.text


def test_card_shows_everything_a_reviewer_needs(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    caption = "Big news <b>& more</b> 🎉\nSecond line"
    _, yt = card_up(app, fake_choppity, "youtube", caption=caption, title="My title")
    _, tt = card_up(app, fake_choppity, "tiktok")
    yt_text = text_of(card(fake_slack, app, yt["id"]))
    assert "YouTube" in yt_text and "My title" in yt_text
    assert caption in yt_text
    assert "People & Blogs" in yt_text
    assert yt["clip_id"] in yt_text
    assert buttons(card(fake_slack, app, yt["id"])) == [
        ActionId.EDIT, ActionId.PUBLISH, ActionId.SCHEDULE, ActionId.REQUEST_CHANGES, ActionId.CANCEL
    ]
    tt_text = text_of(card(fake_slack, app, tt["id"]))
    assert "TikTok" in tt_text and "Everyone" in tt_text
    assert "Duet" in tt_text and "Stitch" in tt_text


def test_long_caption_is_shown_in_full(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    caption = " ".join(f"word{i}" for i in range(700))  # ~5,000 chars, over one section's 3,000
    _, yt = card_up(app, fake_choppity, "youtube", caption=caption)
    shown = text_of(card(fake_slack, app, yt["id"]))
    assert "word0" in shown and "word699" in shown
    assert "part 1 of 2" in shown.lower()


# -- publish ----------------------------------------------------------------------------------------


def test_publish_queues_once_and_updates_the_card(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    post_id, remote = card_up(app, fake_choppity)
    response = slack.click(ActionId.PUBLISH, post_id, user="U_BOB")
    assert response.status_code == 200
    app.settle()
    calls = publish_calls(fake_choppity, remote["id"])
    assert len(calls) == 1 and calls[0].json == {}
    message = card(fake_slack, app, remote["id"])
    assert "Queued" in text_of(message) and "<@U_BOB>" in text_of(message)
    assert buttons(message) == [ActionId.CANCEL]
    assert db_post(app, remote["id"]).status == "queued"
    assert ("U_BOB", "publish", "ok") in audit(app, post_id)
    replies = replies_about(fake_slack, db_post(app, remote["id"]))
    assert any("U_BOB" in r.text for r in replies)


def test_publish_click_is_acked_before_choppity_answers(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    post_id, remote = card_up(app, fake_choppity)
    fake_choppity.delay_next("POST", r"/publish$", 2.0)
    response = slack.click(ActionId.PUBLISH, post_id)
    assert response.status_code == 200
    # The ack came back while Choppity was still thinking: the card says work is in progress.
    assert publish_calls(fake_choppity, remote["id"]) == [] or db_post(app, remote["id"]).status == "draft"
    wait_until(lambda: "Publishing" in text_of(card(fake_slack, app, remote["id"])), message="in-progress card")
    app.settle()
    assert db_post(app, remote["id"]).status == "queued"


def test_simultaneous_publish_clicks_make_one_choppity_call(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    post_id, remote = card_up(app, fake_choppity)
    users = ["U_ANA", "U_BOB", "U_CAROL"] * 4
    results: list[int] = []
    barrier = threading.Barrier(len(users))

    def click(user: str) -> None:
        barrier.wait()
        results.append(slack.click(ActionId.PUBLISH, post_id, user=user).status_code)

    threads = [threading.Thread(target=click, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    app.settle()
    assert results == [200] * len(users)
    assert len(publish_calls(fake_choppity, remote["id"])) == 1
    wait_until(lambda: len(fake_slack.ephemerals()) >= len(users) - 1, message="ephemerals for the losers")
    assert all("already" in e.text for e in fake_slack.ephemerals())


def test_publish_rejected_by_choppity_tells_the_clicker_and_restores_the_card(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    post_id, remote = card_up(app, fake_choppity)
    fake_choppity.fail_next("POST", r"/publish$", 400, code="BAD_REQUEST", message="YouTube connection expired")
    slack.click(ActionId.PUBLISH, post_id, user="U_ANA")
    app.settle()
    wait_until(lambda: bool(fake_slack.ephemerals("U_ANA")), message="ephemeral")
    assert "YouTube connection expired" in fake_slack.ephemerals("U_ANA")[-1].text
    post = db_post(app, remote["id"])
    assert post.status == "draft" and post.pending_action is None
    assert ActionId.PUBLISH in buttons(card(fake_slack, app, remote["id"]))
    assert ("U_ANA", "publish", "failed") in audit(app, post_id)


def test_publish_on_a_post_published_elsewhere_corrects_the_card(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    post_id, remote = card_up(app, fake_choppity)
    fake_choppity.set_status(remote["id"], "published", published_url="https://youtu.be/xyz",
                             published_at=int(time.time() * 1000))
    slack.click(ActionId.PUBLISH, post_id)
    app.settle()
    assert db_post(app, remote["id"]).status == "published"
    message = card(fake_slack, app, remote["id"])
    assert "Published" in text_of(message) and buttons(message) == []
    assert "published" in fake_slack.ephemerals("U_ANA")[-1].text


def test_publish_with_bad_credentials_or_missing_post_explains_it(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    post_id, remote = card_up(app, fake_choppity)
    fake_choppity.fail_next("POST", r"/publish$", 401, code="UNAUTHORIZED", message="Authentication required")
    slack.click(ActionId.PUBLISH, post_id)
    app.settle()
    assert "CHOPPITY_API_KEY" in fake_slack.ephemerals("U_ANA")[-1].text
    assert "xoxb" not in fake_slack.ephemerals("U_ANA")[-1].text
    fake_choppity.fail_next("POST", r"/publish$", 404, code="NOT_FOUND", message="Post not found")
    fake_choppity.fail_next("GET", r"/v1/posts/", 404, code="NOT_FOUND", message="Post not found")
    slack.click(ActionId.PUBLISH, post_id)
    app.settle()
    assert "Post not found" in fake_slack.ephemerals("U_ANA")[-1].text
    assert db_post(app, remote["id"]).pending_action is None


def test_publish_rate_limited_then_succeeds(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    post_id, remote = card_up(app, fake_choppity)
    fake_choppity.fail_next("POST", r"/publish$", 429, code="RATE_LIMITED", message="Slow down", retry_after=1)
    slack.click(ActionId.PUBLISH, post_id)
    wait_until(lambda: db_post(app, remote["id"]).status == "queued", message="queued after 429")
    calls = publish_calls(fake_choppity, remote["id"])
    assert [c.status for c in calls] == [429, 202]
    assert calls[1].at - calls[0].at >= 0.9  # Retry-After honoured


def test_publish_5xx_is_re_read_before_any_second_attempt(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    post_id, remote = card_up(app, fake_choppity)
    fake_choppity.fail_next("POST", r"/publish$", 503, code="INTERNAL", message="upstream down")
    slack.click(ActionId.PUBLISH, post_id)
    wait_until(lambda: db_post(app, remote["id"]).status == "queued", timeout=20, message="queued after 503")
    paths = [(c.method, c.path) for c in fake_choppity.calls() if remote["id"] in c.path]
    publish_index = [i for i, p in enumerate(paths) if p[0] == "POST"]
    assert len(publish_index) == 2
    # Between the failed and the successful publish, Greenlight asked Choppity for the post.
    assert ("GET", f"/v1/posts/{remote['id']}") in paths[publish_index[0] + 1 : publish_index[1]]


def test_publish_timeout_after_sending_never_publishes_twice(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    post_id, remote = card_up(app, fake_choppity)
    # Choppity queues the post, then takes longer than our 3 s read timeout to answer.
    fake_choppity.hang_after_processing("POST", r"/publish$", 4.0)
    slack.click(ActionId.PUBLISH, post_id)
    wait_until(lambda: db_post(app, remote["id"]).status == "queued", timeout=25, message="queued after timeout")
    assert len(publish_calls(fake_choppity, remote["id"])) == 1
    assert ("U_ANA", "publish", "unknown") in audit(app, post_id)
    assert ("U_ANA", "publish", "ok") in audit(app, post_id)


# -- edit -------------------------------------------------------------------------------------------


def test_edit_modal_is_prefilled_from_choppity_now_and_puts_only_changes(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    post_id, remote = card_up(app, fake_choppity, "youtube", title="Old title")
    # Someone edited the post in Choppity after the card was posted.
    fake_choppity.set_status(remote["id"], "draft", caption="Caption changed in Choppity")
    assert slack.click(ActionId.EDIT, post_id).status_code == 200
    view = slack.latest_view(ViewId.EDIT)
    prefilled = json.dumps(view)
    assert "Caption changed in Choppity" in prefilled and "Old title" in prefilled
    response = slack.submit(view, values={FieldId.TITLE: {"type": "plain_text_input", "value": "New title"}})
    assert response.status_code == 200 and response.text in ("", "{}")
    app.settle()
    puts = fake_choppity.calls("PUT", rf"/v1/posts/{remote['id']}$")
    assert [c.json for c in puts] == [{"title": "New title"}]
    shown = text_of(card(fake_slack, app, remote["id"]))
    assert "New title" in shown and "Edited by <@U_ANA>" in shown
    assert ("U_ANA", "edit", "ok") in audit(app, post_id)


def test_edit_validation_errors_show_inline_and_change_nothing(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    post_id, remote = card_up(app, fake_choppity, "tiktok")
    slack.click(ActionId.EDIT, post_id)
    view = slack.latest_view(ViewId.EDIT)
    response = slack.submit(view, values={FieldId.CAPTION: {"type": "plain_text_input", "value": "x" * 2201}})
    body = response.json()
    assert body["response_action"] == "errors" and "2,200" in body["errors"][FieldId.CAPTION]
    yt_id, yt = card_up(app, fake_choppity, "youtube")
    slack.click(ActionId.EDIT, yt_id)
    view = slack.latest_view(ViewId.EDIT, post_id=yt_id)
    bad_title = slack.submit(view, values={FieldId.TITLE: {"type": "plain_text_input", "value": "<script>"}})
    assert FieldId.TITLE in bad_title.json()["errors"]
    app.settle()
    assert fake_choppity.calls("PUT") == []


def test_edit_of_a_post_no_longer_draft_is_refused(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    post_id, remote = card_up(app, fake_choppity, "instagram")
    fake_choppity.set_status(remote["id"], "queued")
    slack.click(ActionId.EDIT, post_id)
    view = slack.latest_view(ViewId.LOADING)
    wait_until(lambda: "queued" in json.dumps(slack.latest_view(ViewId.LOADING)), message="refusal notice")
    assert view["callback_id"] == ViewId.LOADING
    app.settle()
    assert db_post(app, remote["id"]).status == "queued"
    assert buttons(card(fake_slack, app, remote["id"])) == [ActionId.CANCEL]


# -- schedule ---------------------------------------------------------------------------------------


def test_schedule_in_the_viewers_time_zone(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    post_id, remote = card_up(app, fake_choppity, "linkedin")
    slack.click(ActionId.SCHEDULE, post_id, user="U_CAROL")  # Asia/Kolkata, UTC+5:30
    view = slack.latest_view(ViewId.SCHEDULE)
    picker = next(b for b in view["blocks"] if b.get("block_id") == FieldId.WHEN)["element"]
    initial = datetime.fromtimestamp(picker["initial_date_time"], tz=ZoneInfo("Asia/Kolkata"))
    assert initial.minute == 0 and initial.second == 0  # a full hour in *her* zone
    assert initial > datetime.now(UTC) + timedelta(minutes=5)
    assert "Kolkata" in json.dumps(view) or "India" in json.dumps(view)

    too_soon = int(time.time()) + 180
    response = slack.submit(view, user="U_CAROL",
                            values={FieldId.WHEN: {"type": "datetimepicker", "selected_date_time": too_soon}})
    assert response.json()["response_action"] == "errors"
    assert publish_calls(fake_choppity, remote["id"]) == []

    when = int(time.time()) + 7200
    assert slack.submit(view, user="U_CAROL",
                        values={FieldId.WHEN: {"type": "datetimepicker", "selected_date_time": when}}).status_code == 200
    app.settle()
    calls = publish_calls(fake_choppity, remote["id"])
    assert [c.json for c in calls] == [{"scheduled_at": when * 1000}]
    message = card(fake_slack, app, remote["id"])
    assert f"<!date^{when}^" in json.dumps(message.blocks)
    assert buttons(message) == [ActionId.CANCEL]
    assert db_post(app, remote["id"]).status == "scheduled"


# -- cancel -----------------------------------------------------------------------------------------


def test_cancel_asks_for_confirmation_and_records_the_reason(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    post_id, remote = card_up(app, fake_choppity, "tiktok")
    slack.click(ActionId.CANCEL, post_id, user="U_BOB")
    view = slack.latest_view(ViewId.CANCEL)
    assert fake_choppity.calls("DELETE") == []  # nothing happens until confirmed
    slack.submit(view, user="U_BOB", values={FieldId.REASON: {"type": "plain_text_input", "value": "Off-brand"}})
    app.settle()
    assert len(fake_choppity.calls("DELETE", rf"/v1/posts/{remote['id']}$")) == 1
    message = card(fake_slack, app, remote["id"])
    assert "Cancelled by <@U_BOB>" in text_of(message) and buttons(message) == []
    assert db_post(app, remote["id"]).cancel_reason == "Off-brand"
    assert any("Off-brand" in r.text for r in replies_about(fake_slack, db_post(app, remote["id"])))


def test_cancel_after_queueing_still_works_and_cancel_of_published_is_refused(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    post_id, remote = card_up(app, fake_choppity)
    slack.click(ActionId.PUBLISH, post_id)
    app.settle()
    slack.click(ActionId.CANCEL, post_id)
    slack.submit(slack.latest_view(ViewId.CANCEL))
    app.settle()
    assert db_post(app, remote["id"]).status == "cancelled"

    other_id, other = card_up(app, fake_choppity)
    fake_choppity.set_status(other["id"], "published")
    slack.click(ActionId.CANCEL, other_id)
    slack.submit(slack.latest_view(ViewId.CANCEL))
    app.settle()
    assert "can no longer be cancelled" in fake_slack.ephemerals("U_ANA")[-1].text
    assert db_post(app, other["id"]).status == "published"


# -- restart, health, security ------------------------------------------------------------------------


def test_buttons_keep_working_after_a_restart(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    post_id, remote = card_up(app, fake_choppity)
    app.restart()
    slack.click(ActionId.PUBLISH, post_id)
    app.settle()
    assert db_post(app, remote["id"]).status == "queued"
    assert len(cards_in_channel(fake_slack)) == 1  # the same card, updated in place


def test_healthz_reports_ok_without_secrets(app: Greenlight) -> None:
    import httpx

    response = httpx.get(f"{app.url}/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"
    for secret in app.settings.secrets():
        assert secret not in response.text


def test_forged_or_malformed_slack_requests_get_401(app: Greenlight, slack: SlackDriver, fake_choppity: FakeChoppity) -> None:
    import httpx

    body = "command=%2Fgreenlight&text=help&user_id=U_ANA"
    bad = httpx.post(f"{app.url}/slack/events", content=body, headers={
        "x-slack-request-timestamp": str(int(time.time())), "x-slack-signature": "v0=" + "0" * 64,
        "content-type": "application/x-www-form-urlencoded"})
    assert bad.status_code == 401
    huge = httpx.post(f"{app.url}/slack/events", content=body, headers={
        "x-slack-request-timestamp": "9" * 5000, "x-slack-signature": "v0=abc",
        "content-type": "application/x-www-form-urlencoded"})
    assert huge.status_code == 401
    stale = slack._post(body, timestamp=str(int(time.time()) - 301))
    assert stale.status_code == 401


def test_no_job_is_left_behind(app: Greenlight, slack: SlackDriver, fake_choppity: FakeChoppity) -> None:
    post_id, _ = card_up(app, fake_choppity)
    slack.click(ActionId.PUBLISH, post_id)
    app.settle()
    with Session(app.services.engine) as session:
        statuses = {j.status for j in session.exec(select(Job)).all()}
    assert statuses == {"done"}
