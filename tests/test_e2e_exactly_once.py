"""Exactly once under the faults real Slack and real Choppity produce: lost answers, slow answers,
transient errors, and a provider that applies a call after the client gave up on it.

Each test counts what happened upstream (cards in the channel, calls Choppity received), what the
person was told and what the audit holds.
"""

from __future__ import annotations

import pytest
from slack_sdk import WebClient
from sqlmodel import Session, select

from bot.domain.forms import FieldId
from bot.models import Job
from bot.slack.ids import ActionId, ViewId
from tests.fakes.choppity import FakeChoppity
from tests.fakes.slack import FakeSlack
from tests.harness import (
    CHANNEL,
    Greenlight,
    SlackDriver,
    audit_details,
    base_env,
    buttons,
    card,
    card_up,
    cards_of,
    clip_messages,
    db_post,
    is_card,
    replies_about,
    text_of,
    thread,
    wait_until,
)


def card_ts(app: Greenlight, external_id: str) -> str | None:
    """The post's card ts, or None while it has no row or no card yet."""
    from bot.models import Post

    with Session(app.services.engine) as session:
        post = session.exec(select(Post).where(Post.external_id == external_id)).first()
        return post.message_ts if post is not None else None


def assert_publish_works(app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, post_id: int, external: str) -> None:
    """The one card's buttons work: Publish moves it to Queued, in place."""
    slack.click(ActionId.PUBLISH, post_id, user="U_BOB")
    def queued() -> bool:
        ts = card_ts(app, external)
        message = fake_slack.message(CHANNEL, ts) if ts else None
        return message is not None and "Queued" in text_of(message)

    wait_until(queued, timeout=30, message="card shows Queued")
    app.drain()
    assert db_post(app, external).status == "queued"
    assert len(cards_of(fake_slack, post_id)) == 1


# -- one card per draft, whatever Slack does ----------------------------------------------------------


@pytest.mark.parametrize("how", ["500", "503", "drop", "slow"])
def test_a_card_whose_answer_is_lost_is_found_and_adopted_not_posted_twice(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity, how: str
) -> None:
    fake_slack.lose_answer_next("chat.postMessage", how=how, seconds=2.0, where=is_card)
    remote = fake_choppity.add_post("youtube")
    app.choppity_event("post.draft.created", {"post_id": remote["id"]})
    wait_until(lambda: card_ts(app, remote["id"]) is not None, timeout=20, message="card adopted")
    post = db_post(app, remote["id"])
    assert post.id is not None
    assert cards_of(fake_slack, post.id) == [post.message_ts]
    assert fake_slack.count("chat.postMessage") == 2  # the clip's message, then the card in its thread
    assert ("card", "adopted") in [(a, o) for _, a, o, _ in audit_details(app, post.id)]
    assert_publish_works(app, slack, fake_slack, post.id, remote["id"])


def test_a_slack_consistently_slower_than_the_timeout_still_gets_one_card(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    # Every post of the card is stored, but only answered after the client has given up.
    fake_slack.lose_answer_next("chat.postMessage", how="slow", seconds=2.5, times=10)  # the clip's message too
    remote = fake_choppity.add_post("tiktok")
    app.choppity_event("post.draft.created", {"post_id": remote["id"]})
    wait_until(lambda: card_ts(app, remote["id"]) is not None, timeout=30, message="card adopted")
    post = db_post(app, remote["id"])
    assert post.id is not None
    app.drain()
    assert len(cards_of(fake_slack, post.id)) == 1 and len(clip_messages(fake_slack)) == 1
    assert fake_slack.count("chat.postMessage") == 2


def test_a_slack_that_stores_the_card_later_than_we_looked_ends_with_one_card(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    # The first post is processed 5 s after it arrived (client timeout 1 s, settle 1.5 s): the
    # look-up misses it, a second card is posted, and the later check removes the extra one.
    fake_slack.delay("chat.postMessage", 5.0)
    remote = fake_choppity.add_post("linkedin")
    app.choppity_event("post.draft.created", {"post_id": remote["id"]})
    wait_until(lambda: fake_slack.count("chat.postMessage") >= 2, timeout=20, message="second attempt")
    fake_slack.delay("chat.postMessage", 0)
    post = db_post(app, remote["id"])
    assert post.id is not None
    wait_until(lambda: card_ts(app, remote["id"]) is not None, timeout=30, message="card")
    wait_until(lambda: len(cards_of(fake_slack, post.id or 0)) == 1 and fake_slack.count("chat.delete") >= 1,
               timeout=40, message="one card left")
    app.drain()
    assert cards_of(fake_slack, post.id) == [db_post(app, remote["id"]).message_ts]
    assert len(clip_messages(fake_slack)) == 1
    assert_publish_works(app, slack, fake_slack, post.id, remote["id"])


@pytest.mark.parametrize("error", ["message_not_found", "channel_not_found"])
def test_a_transient_not_found_on_update_never_makes_a_second_card(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity, error: str
) -> None:
    post_id, remote = card_up(app, fake_choppity, "instagram")
    first_ts = db_post(app, remote["id"]).message_ts
    fake_slack.fail_next("chat.update", error, times=2)
    assert_publish_works(app, slack, fake_slack, post_id, remote["id"])
    assert db_post(app, remote["id"]).message_ts == first_ts
    assert fake_slack.count("chat.postMessage") == 2 + len(replies_about(fake_slack, db_post(app, remote["id"])))


def test_a_card_really_deleted_in_slack_is_posted_again_once(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    post_id, remote = card_up(app, fake_choppity, "youtube")
    old_ts = db_post(app, remote["id"]).message_ts
    WebClient(token=fake_slack.token, base_url=fake_slack.url).chat_delete(channel=CHANNEL, ts=old_ts)
    assert cards_of(fake_slack, post_id) == []
    assert_publish_works(app, slack, fake_slack, post_id, remote["id"])
    assert db_post(app, remote["id"]).message_ts != old_ts


def test_a_thread_reply_whose_answer_is_lost_is_not_posted_twice(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    post_id, remote = card_up(app, fake_choppity, "youtube")
    fake_slack.lose_answer_next("chat.postMessage", how="500")
    slack.click(ActionId.PUBLISH, post_id)
    app.drain()
    replies = thread(fake_slack, app, remote["id"])
    assert len([r for r in replies if "approved" in r]) == 1, replies


# -- actions whose outcome is unknown are re-read, never blindly repeated ---------------------------------


def _cancel(app: Greenlight, slack: SlackDriver, post_id: int, reason: str) -> None:
    slack.click(ActionId.CANCEL, post_id, user="U_BOB")
    slack.submit(slack.latest_view(ViewId.CANCEL), user="U_BOB",
                 values={FieldId.REASON.value: {"type": "plain_text_input", "value": reason}})


@pytest.mark.parametrize("fault", ["drop", "hang"])
def test_a_cancel_whose_answer_is_lost_is_confirmed_not_repeated(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity, fault: str
) -> None:
    post_id, remote = card_up(app, fake_choppity, "tiktok")
    if fault == "drop":
        fake_choppity.drop_connection_next("DELETE", r"/v1/posts/")
    else:
        fake_choppity.hang_after_processing("DELETE", r"/v1/posts/", 5.0)  # longer than the client waits
    _cancel(app, slack, post_id, "Wrong account")
    app.drain()
    assert fake_choppity.count("DELETE", r"/v1/posts/") == 1
    post = db_post(app, remote["id"])
    assert post.status == "cancelled" and post.cancelled_by == "U_BOB" and post.cancel_reason == "Wrong account"
    assert not [e for e in fake_slack.ephemerals("U_BOB") if "Couldn't" in e.text]
    replies = [text_of(r) for r in replies_about(fake_slack, post)]
    assert any("cancelled this post. Reason: Wrong account" in r for r in replies)
    rows = audit_details(app, post_id)
    assert ("U_BOB", "cancel", "unknown") == rows[-2][:3]
    assert rows[-1][:3] == ("U_BOB", "cancel", "ok") and "Wrong account" in (rows[-1][3] or "")
    assert buttons(card(fake_slack, app, remote["id"])) == []


def test_an_edit_whose_answer_is_lost_is_confirmed_not_repeated(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    post_id, remote = card_up(app, fake_choppity, "linkedin")
    fake_choppity.drop_connection_next("PUT", r"/v1/posts/")
    slack.click(ActionId.EDIT, post_id)
    slack.submit(slack.latest_view(ViewId.EDIT),
                 values={FieldId.CAPTION.value: {"type": "plain_text_input", "value": "A better caption"}})
    app.drain()
    assert fake_choppity.count("PUT", r"/v1/posts/") == 1
    assert fake_choppity.post(remote["id"])["caption"] == "A better caption"
    post = db_post(app, remote["id"])
    assert post.content["caption"] == "A better caption" and post.last_editor == "U_ANA" and post.content_version == 2
    assert [r[:3] for r in audit_details(app, post_id)][-2:] == [("U_ANA", "edit", "unknown"), ("U_ANA", "edit", "ok")]
    assert not [e for e in fake_slack.ephemerals("U_ANA") if "Couldn't" in e.text]


def test_a_schedule_whose_answer_is_lost_is_confirmed_not_repeated(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    import time

    post_id, remote = card_up(app, fake_choppity, "youtube")
    fake_choppity.drop_connection_next("POST", r"/publish$")
    slack.click(ActionId.SCHEDULE, post_id)
    when = int(time.time()) + 7200
    slack.submit(slack.latest_view(ViewId.SCHEDULE),
                 values={FieldId.WHEN.value: {"type": "datetimepicker", "selected_date_time": when}})
    app.drain()
    assert fake_choppity.count("POST", r"/publish$") == 1
    assert fake_choppity.post(remote["id"])["status"] == "scheduled"
    assert db_post(app, remote["id"]).status == "scheduled"
    assert [r[:3] for r in audit_details(app, post_id)][-2:] == [("U_ANA", "schedule", "unknown"), ("U_ANA", "schedule", "ok")]


def test_a_publish_choppity_applies_after_the_client_gave_up_is_not_sent_again(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    post_id, remote = card_up(app, fake_choppity, "youtube")
    # Choppity starts on the request 4 s after it arrived: the client (3 s timeout) has given up.
    fake_choppity.delay_next("POST", r"/publish$", 4.0)
    slack.click(ActionId.PUBLISH, post_id)
    app.drain()
    assert fake_choppity.count("POST", r"/publish$") == 1
    assert db_post(app, remote["id"]).status == "queued"
    assert "Queued" in text_of(card(fake_slack, app, remote["id"]))


# -- one runner per job ----------------------------------------------------------------------------------


def test_a_job_slower_than_its_lease_has_exactly_one_runner(
    fake_slack: FakeSlack, fake_choppity: FakeChoppity, database_url: str
) -> None:
    env = base_env(fake_slack, fake_choppity, database_url, JOB_LEASE_SECONDS="1", HTTP_TIMEOUT_SECONDS="10",
                   WORKER_THREADS="4")
    # Two runtimes on one database, each with its own workers: a lapsed lease would let the
    # other one take the job over while Choppity is still working on it.
    first, second = Greenlight(env).start(), Greenlight(env).start()
    try:
        slack = SlackDriver(first, fake_slack)
        post_id, remote = card_up(first, fake_choppity, "youtube")
        fake_choppity.delay_next("POST", r"/publish$", 4.0)  # four leases long
        slack.click(ActionId.PUBLISH, post_id)
        first.drain()
        assert fake_choppity.count("POST", r"/publish$") == 1
        replies = [text_of(r) for r in replies_about(fake_slack, db_post(first, remote["id"]))]
        assert len([r for r in replies if "approved" in r]) == 1
        assert not [r for r in replies if "couldn't" in r.lower()]
        with Session(first.services.engine) as session:
            jobs = session.exec(select(Job).where(Job.kind == "post_action")).all()
            assert [(j.status, j.attempts) for j in jobs] == [("done", 1)]
    finally:
        first.stop()
        second.stop()


def test_the_configuration_refuses_a_lease_too_short_to_keep_alive() -> None:
    from bot.config import ConfigError, Settings

    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "SLACK_CHANNEL_ID": "C123",
           "CHOPPITY_API_KEY": "k", "CHOPPITY_WEBHOOK_SECRET": "w", "JOB_LEASE_SECONDS": "0.5"}
    with pytest.raises(ConfigError, match="JOB_LEASE_SECONDS"):
        Settings.from_env(env)
