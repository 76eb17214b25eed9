"""The whole Choppity post lifecycle, end to end, against a fake that walks posts through it.

Real Choppity posts go draft → queued → processing → uploading → published | failed, and a status
Greenlight doesn't know may appear one day. The fake Choppity here walks each published post
through those stages on its own clock (advanced by the test, so nothing depends on wall-clock
speed) and sends signed webhooks to the app, as the real one does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from bot.slack.ids import ActionId, ViewId
from tests.fakes.choppity import FakeChoppity, Lifecycle
from tests.fakes.slack import FakeSlack, Message
from tests.harness import (
    WEBHOOK_SECRET,
    Greenlight,
    SlackDriver,
    base_env,
    buttons,
    card,
    card_up,
    cards_in_channel,
    db_post,
    replies_about,
    text_of,
    thread,
    wait_until,
)


class Clock:
    """The fake Choppity's clock: real time plus what the test has moved it on by."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


STAGE = 10.0  # fake-clock seconds a post dwells in each in-flight stage


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def walking_choppity(clock: Clock) -> Iterator[FakeChoppity]:
    with FakeChoppity(clock=clock, lifecycle=Lifecycle(queued=STAGE, processing=STAGE, uploading=STAGE)) as fake:
        yield fake


@pytest.fixture
def walking_app(
    fake_slack: FakeSlack, walking_choppity: FakeChoppity, database_url: str
) -> Iterator[tuple[Greenlight, SlackDriver]]:
    # The reconciler re-reads posts with no outcome three passes after the hand-off: here about a
    # second, so the card follows the stages the fake walks through.
    env = base_env(fake_slack, walking_choppity, database_url, RECONCILE_INTERVAL_SECONDS="0.3")
    app = Greenlight(env).start()
    walking_choppity.deliver_webhooks(f"{app.url}/webhooks/choppity", WEBHOOK_SECRET)
    yield app, SlackDriver(app, fake_slack)
    walking_choppity.stop_webhooks()
    app.stop()


def versions(message: Message) -> list[tuple[str, list[str]]]:
    """Every version of a card Slack held: (its text, its buttons), oldest first."""
    out = []
    for old in message.history:
        shown = Message(channel=message.channel, ts=message.ts, text=old["text"], blocks=old["blocks"])
        out.append((text_of(shown), buttons(shown)))
    out.append((text_of(message), buttons(message)))
    return out


def test_publish_walks_every_stage_and_the_card_follows(
    walking_app: tuple[Greenlight, SlackDriver], fake_slack: FakeSlack, walking_choppity: FakeChoppity, clock: Clock
) -> None:
    app, slack = walking_app
    post_id, remote = card_up(app, walking_choppity, "youtube")
    slack.click(ActionId.PUBLISH, post_id)
    wait_until(lambda: db_post(app, remote["id"]).status == "queued", message="queued")

    for stage in ("processing", "uploading"):
        clock.advance(STAGE)
        wait_until(lambda stage=stage: db_post(app, remote["id"]).status == stage, message=stage)
        app.settle()
        shown = card(fake_slack, app, remote["id"])
        assert "Publishing is under way" in text_of(shown)
        assert buttons(shown) == []  # Choppity can't pull a post back once it is processing

    clock.advance(STAGE)
    wait_until(lambda: db_post(app, remote["id"]).status == "published", message="published")
    app.settle()
    final = card(fake_slack, app, remote["id"])
    url = walking_choppity.post(remote["id"])["published_url"]
    assert "Published" in text_of(final) and "View on YouTube" in text_of(final)
    assert url in str(final.blocks)
    assert [t.to_status for t in walking_choppity.transitions(remote["id"])] == [
        "draft", "queued", "processing", "uploading", "published"]
    seen = [text for text, _ in versions(final)]
    assert any("Queued" in t for t in seen) and any("Publishing is under way" in t for t in seen)
    replies = thread(fake_slack, app, remote["id"])
    assert any("Published on YouTube" in r for r in replies)
    assert not walking_choppity.calls("DELETE")


def test_cancel_after_the_platform_took_over_is_refused_and_the_card_corrected(
    walking_app: tuple[Greenlight, SlackDriver], fake_slack: FakeSlack, walking_choppity: FakeChoppity, clock: Clock
) -> None:
    app, slack = walking_app
    post_id, remote = card_up(app, walking_choppity, "tiktok")
    slack.click(ActionId.PUBLISH, post_id)
    wait_until(lambda: db_post(app, remote["id"]).status == "queued", message="queued")
    app.settle()
    assert buttons(card(fake_slack, app, remote["id"])) == [ActionId.CANCEL]

    # Choppity moves on, and the card still offers Cancel when someone presses it.
    clock.advance(STAGE)
    walking_choppity.tick()
    assert walking_choppity.post(remote["id"])["status"] == "processing"
    slack.click(ActionId.CANCEL, post_id, user="U_BOB")
    slack.submit(slack.latest_view(ViewId.CANCEL), user="U_BOB")
    wait_until(lambda: any("Couldn't cancel" in e.text for e in fake_slack.ephemerals("U_BOB")), message="refusal")
    app.settle()
    told = fake_slack.ephemerals("U_BOB")[-1].text
    assert "It is now processing on Choppity" in told
    post = db_post(app, remote["id"])
    assert post.status == "processing" and post.pending_action is None and post.cancelled_by is None
    shown = card(fake_slack, app, remote["id"])
    assert buttons(shown) == [] and "Publishing is under way" in text_of(shown)
    assert walking_choppity.post(remote["id"])["status"] == "processing"


def test_a_walk_that_ends_in_failure_shows_the_reason(
    walking_app: tuple[Greenlight, SlackDriver], fake_slack: FakeSlack, walking_choppity: FakeChoppity, clock: Clock
) -> None:
    app, slack = walking_app
    post_id, remote = card_up(app, walking_choppity, "instagram")
    walking_choppity.plan_outcome(remote["id"], "failed", error="Instagram rejected the video: aspect ratio 1:3")
    slack.click(ActionId.PUBLISH, post_id)
    wait_until(lambda: db_post(app, remote["id"]).status == "queued", message="queued")
    clock.advance(3 * STAGE)
    wait_until(lambda: db_post(app, remote["id"]).status == "failed", message="failed")
    app.settle()
    shown = text_of(card(fake_slack, app, remote["id"]))
    assert "Failed:* Instagram rejected the video: aspect ratio 1:3" in shown
    replies = [text_of(r) for r in replies_about(fake_slack, db_post(app, remote["id"]))]
    assert any("Publishing to Instagram failed: Instagram rejected the video" in r and "<@U_ANA>" in r for r in replies)


def test_a_clip_pull_cards_its_drafts_beside_in_flight_unknown_and_unreadable_posts(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    clip = fake_choppity.add_clip(["youtube", "tiktok"])
    fake_choppity.add_post("instagram", clip_id=clip, status="processing")
    archived = fake_choppity.add_post("linkedin", clip_id=clip)
    fake_choppity.force_status(archived["id"], "archived")
    odd = fake_choppity.add_post("linkedin", clip_id=clip)
    fake_choppity.force_status(odd["id"], "draft", platform="myspace")

    _, url = slack.command(f"clip {clip}")
    wait_until(lambda: bool(fake_slack.responses(url)), message="summary")
    summary = fake_slack.responses(url)[-1]["text"]
    assert "Posted 2 drafts" in summary
    assert "Instagram: processing (not a draft, no card)" in summary
    assert "LinkedIn: archived (not a draft, no card)" in summary
    assert "Skipped post" in summary and "platform Greenlight doesn't support" in summary
    assert len(cards_in_channel(fake_slack)) == 2


def test_an_unknown_status_is_shown_as_is_and_never_blocks_the_others(
    make_app: Callable[..., Greenlight], fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app = make_app(RECONCILE_INTERVAL_SECONDS="0.2")
    slack = SlackDriver(app, fake_slack)
    first_id, first = card_up(app, fake_choppity, "youtube")
    second_id, second = card_up(app, fake_choppity, "tiktok")
    for post_id in (first_id, second_id):
        slack.click(ActionId.PUBLISH, post_id)
    app.settle()
    fake_choppity.force_status(first["id"], "under_review")
    fake_choppity.complete_publish(second["id"])
    # No webhooks: the reconciler finds both on its own, the odd one does not stop the other.
    wait_until(lambda: db_post(app, second["id"]).status == "published", message="sibling published")
    wait_until(lambda: db_post(app, first["id"]).status == "unknown", message="unknown status seen")
    app.settle()
    odd = db_post(app, first["id"])
    assert odd.remote_status == "under_review"
    shown = card(fake_slack, app, first["id"])
    assert "“under_review”" in text_of(shown) and buttons(shown) == []
    # The webhook path meets it too, and answers 200.
    assert app.choppity_event("post.published", {"post_id": first["id"]}).status_code == 200
    app.settle()
    assert db_post(app, first["id"]).status == "unknown"

    # When Choppity moves it on to a status Greenlight knows, the card follows.
    fake_choppity.force_status(first["id"], "published", published_url="https://youtu.be/abc", published_at=1)
    app.choppity_event("post.published", {"post_id": first["id"]})
    wait_until(lambda: db_post(app, first["id"]).status == "published", message="published at last")
