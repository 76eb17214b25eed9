"""Surfaces that stay right at scale and under Slack's refusals: overviews, modals, oversized cards."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import insert

from bot.models import Post, utcnow
from bot.slack.ids import ActionId
from tests.fakes.choppity import FakeChoppity
from tests.fakes.slack import FakeSlack, text_of
from tests.harness import CHANNEL, Greenlight, SlackDriver, card, card_up, db_post, wait_until


def _seed_drafts(app: Greenlight, count: int, *, status: str = "draft") -> None:
    """`count` posts straight into the database (what hundreds of webhooks would have left)."""
    now = utcnow()
    rows = [
        {"provider": "choppity", "external_id": f"seed-{status}-{i}", "clip_id": f"clip-{i}", "platform": "youtube",
         "status": status, "content": {"caption": f"Seeded draft number {i}"}, "extra": {}, "content_version": 1,
         "channel_id": CHANNEL, "message_ts": f"1700000000.{i:06d}", "created_at": now, "updated_at": now,
         "card_compact": False}
        for i in range(count)
    ]
    with app.services.engine.begin() as conn:
        conn.execute(insert(Post), rows)


def test_queue_and_home_show_true_counts_and_how_many_more(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    _seed_drafts(app, 501)
    _, url = slack.command("queue")
    wait_until(lambda: bool(fake_slack.responses(url)), message="queue reply")
    reply = fake_slack.responses(url)[-1]
    shown = text_of(reply["blocks"])
    assert reply["text"].startswith("501 waiting for review")
    assert "Waiting for review (501)" in shown and "…and 481 more" in shown
    assert len(reply["blocks"]) <= 50

    slack.event({"type": "app_home_opened", "user": "U_BOB", "tab": "home", "channel": "D1"})
    wait_until(lambda: fake_slack.home_view("U_BOB") is not None, message="home")
    home = fake_slack.home_view("U_BOB")
    assert home is not None
    assert "Waiting for review (501)" in text_of(home) and "…and 486 more" in text_of(home)


def test_home_with_500_posts_and_a_slow_slack_takes_two_slack_calls_and_no_query_per_post(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    for status in ("draft", "scheduled", "published", "failed", "processing"):
        _seed_drafts(app, 100, status=status)
    fake_slack.latency(0.2)
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    from sqlalchemy import event

    event.listen(app.services.engine, "before_cursor_execute", count)
    try:
        slack.event({"type": "app_home_opened", "user": "U_BOB", "tab": "home", "channel": "D1"})
        wait_until(lambda: fake_slack.home_view("U_BOB") is not None, message="home")
    finally:
        event.remove(app.services.engine, "before_cursor_execute", count)
    assert fake_slack.count("chat.getPermalink") == 0
    assert fake_slack.count("auth.test") <= 1 and fake_slack.count("views.publish") == 1
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT") and "FROM job" not in s
               and "FROM lease" not in s]
    assert len(selects) <= 12, selects  # a count and a page per group, whatever the number of posts
    home = fake_slack.home_view("U_BOB")
    assert home is not None
    links = [b["accessory"]["url"] for b in home["blocks"] if "accessory" in b]
    assert links and all(link.startswith("https://acme.slack.com/archives/C0REVIEW/p") for link in links)


def test_a_modal_never_stays_loading(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    post_id, _ = card_up(app, fake_choppity, "youtube")
    for action, title in ((ActionId.EDIT, "Edit draft"), (ActionId.SCHEDULE, "Schedule post")):
        before = fake_slack.count("views.update", ok=True)
        fake_slack.fail_next("views.update", "invalid_arguments")
        slack.click(action, post_id)
        wait_until(lambda before=before: fake_slack.count("views.update", ok=True) > before, message="view replaced")
        view = slack.latest_view("greenlight_loading_modal")
        shown = text_of(view)
        assert "⏳ Loading" not in shown and "couldn't show this form (invalid_arguments)" in shown, shown
        assert title in shown

    # The provider is down: the modal says so.
    fake_choppity.fail_next("GET", r"/v1/posts/", 503, times=10)
    slack.click(ActionId.EDIT, post_id)
    wait_until(lambda: "Couldn't load the post" in text_of(slack.latest_view("greenlight_loading_modal")),
               message="provider error shown")


def test_a_card_slack_refuses_is_posted_compact_or_the_channel_is_told(
    make_app: Callable[..., Greenlight], fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app = make_app()
    slack = SlackDriver(app, fake_slack)
    fake_slack.MAX_BLOCKS_TEXT = 2000  # Slack's cumulative limit, made easy to reach
    clip = fake_choppity.add_clip(["linkedin", "instagram"])
    long_caption = ("A very long caption that goes on. " * 80)[:2200]
    for post in fake_choppity.posts(clip):
        fake_choppity.set_status(post["id"], "draft", caption=long_caption)
    _, url = slack.command(f"clip {clip}")
    wait_until(lambda: bool(fake_slack.responses(url)), message="summary")
    assert "Posted 2 drafts" in fake_slack.responses(url)[-1]["text"]
    for post in fake_choppity.posts(clip):
        row = db_post(app, post["id"])
        assert row.card_compact and row.message_ts
        shown = text_of(card(fake_slack, app, post["id"]))
        assert "Open *Edit* to see it all" in shown

    # So small that even the compact card can't be shown: the channel hears which draft is missing,
    # and the command counts only what was really posted.
    fake_slack.MAX_BLOCKS_TEXT = 300
    clip2 = fake_choppity.add_clip(["youtube"])
    _, url2 = slack.command(f"clip {clip2}")
    wait_until(lambda: bool(fake_slack.responses(url2)), message="second summary")
    summary = fake_slack.responses(url2)[-1]["text"]
    assert "Posted 0 of 1 drafts" in summary and "couldn't be shown in Slack" in summary
    note = fake_slack.messages(CHANNEL)[-1]
    assert "couldn't show the YouTube draft for clip" in note.text and clip2 in note.text
    row = db_post(app, fake_choppity.posts(clip2)[0]["id"])
    assert row.message_ts is None and row.card_error == "msg_blocks_too_long"
    app.settle()  # nothing keeps retrying
