"""The provider contract: what every provider's drafts do in Slack, whoever made them.

Each test runs once per provider (ids "choppity" and "reap"), end to end: signed Slack requests in,
the fake Slack Web API and the provider's fake server out, the real app in between on an injected
clock. A test only talks to the provider through its `Driver` (how to make drafts in the fake, the
command that imports them, how the provider reports an outcome, how its publish calls are counted
and failed), so the assertions are the same for every provider. Where providers differ by a declared
capability (`bot.domain.Capabilities`), the test reads the capability, never the provider's name.

A contract test a provider is known to fail is named in its Driver's `known_bugs` and runs as a
strict xfail, so fixing the bug makes the suite say so. Adding a provider (docs/providers.md, step 8):
write its Driver and add it to DRIVERS.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

import pytest
from sqlmodel import Session, col, select

from bot.domain import Capabilities, DraftHome
from bot.domain.forms import FieldId
from bot.models import Clip, Post, PostVersion, utcnow
from bot.providers.base import Provider
from bot.slack.ids import ActionId, ViewId
from bot.slack.mrkdwn import unescape
from tests.fakes.choppity import FakeChoppity
from tests.fakes.reap import FakeReap
from tests.fakes.slack import FakeSlack
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
    mrkdwn_strings,
    replies_about,
    text_of,
    wait_until,
)

# -- the injected clock ------------------------------------------------------------------------------


class Clock:
    """What time it is for the app: real time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, app: Greenlight, delta: timedelta) -> None:
        """Move time forward while the app is idle (so no running job's lease lapses), then wake it."""
        app.settle()
        self.offset += delta
        app.services.runner.wake()


# -- one driver per provider ---------------------------------------------------------------------------


class Driver:
    """Everything a contract test knows about one provider: its fake, and how to drive it."""

    slug: ClassVar[str]
    # How many drafts `make_drafts` creates (one card each).
    drafts: ClassVar[int] = 2
    # Contract tests this provider is known to fail (test name -> the bug), run as strict xfails.
    known_bugs: ClassVar[dict[str, str]] = {}

    def env(self, slack: FakeSlack, database_url: str) -> dict[str, str]:
        """Greenlight's settings with only this provider configured."""
        raise NotImplementedError

    def make_drafts(self, captions: list[str] | None = None) -> str:
        """Create `drafts` drafts in the fake (with these captions, if given); returns the ref to import.

        The first draft is bound for YouTube (among other platforms, perhaps).
        """
        raise NotImplementedError

    def import_command(self, ref: str) -> str:
        """The `/greenlight` text that imports `ref`."""
        raise NotImplementedError

    def unknown_ref(self) -> str:
        """A well-formed id the provider has never heard of."""
        raise NotImplementedError

    def report_published(self, app: Greenlight, clock: Clock, post: Post) -> str:
        """The provider finishes publishing `post` and Greenlight is told (or finds out); returns the link."""
        raise NotImplementedError

    def report_failed(self, app: Greenlight, clock: Clock, post: Post) -> str:
        """The provider fails to publish `post`, and Greenlight learns it; returns the reason the card must show."""
        raise NotImplementedError

    def publish_calls(self, post: Post, *, accepted_only: bool = False) -> int:
        """Requests that asked the provider to publish `post` right away (optionally only the accepted ones)."""
        raise NotImplementedError

    def write_calls(self) -> int:
        """Requests that could have changed anything at the provider (everything but reads)."""
        raise NotImplementedError

    def fail_next_publish(self, status: int) -> None:
        """The provider's next publish call answers `status` (5xx or 429), with no side effect."""
        raise NotImplementedError

    def provider_caption(self, post: Post) -> str:
        """The caption of `post` as the provider holds it (only for providers that hold drafts)."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop the fake."""
        raise NotImplementedError


class ChoppityDriver(Driver):
    """Choppity: a clip's drafts live at Choppity (one per platform); outcomes arrive as signed webhooks."""

    slug = "choppity"
    PLATFORMS = ("youtube", "tiktok")

    def __init__(self) -> None:
        self.fake = FakeChoppity().start()

    def env(self, slack: FakeSlack, database_url: str) -> dict[str, str]:
        return base_env(slack, self.fake, database_url)

    def make_drafts(self, captions: list[str] | None = None) -> str:
        if captions is None:
            return self.fake.add_clip(platforms=self.PLATFORMS)
        clip = self.fake.add_clip(platforms=())
        for platform, caption in zip(self.PLATFORMS, captions, strict=True):
            self.fake.add_post(platform, clip_id=clip, caption=caption)
        return clip

    def import_command(self, ref: str) -> str:
        return f"clip {ref}"

    def unknown_ref(self) -> str:
        return secrets.token_hex(16)

    def report_published(self, app: Greenlight, clock: Clock, post: Post) -> str:
        url = f"https://youtu.be/{secrets.token_hex(5)}"
        self.fake.complete_publish(post.external_id, url=url)
        response = app.choppity_event("post.published", {"post_id": post.external_id, "published_url": url})
        assert response.status_code == 200
        return url

    def report_failed(self, app: Greenlight, clock: Clock, post: Post) -> str:
        reason = "YouTube rejected the upload: the channel has reached its daily upload limit"
        self.fake.fail_post(post.external_id, reason)
        response = app.choppity_event("post.failed", {"post_id": post.external_id, "error": reason})
        assert response.status_code == 200
        return reason

    def publish_calls(self, post: Post, *, accepted_only: bool = False) -> int:
        calls = self.fake.calls("POST", rf"/v1/posts/{re.escape(post.external_id)}/publish$")
        now = [c for c in calls if not (c.json or {}).get("scheduled_at")]
        return len([c for c in now if 200 <= c.status < 300] if accepted_only else now)

    def write_calls(self) -> int:
        return len([c for c in self.fake.calls() if c.method != "GET"])

    def fail_next_publish(self, status: int) -> None:
        if status == 429:
            self.fake.fail_next("POST", r"/publish$", 429, code="RATE_LIMITED", message="Slow down", retry_after=1)
        else:
            self.fake.fail_next("POST", r"/publish$", status, code="INTERNAL", message="upstream down")

    def provider_caption(self, post: Post) -> str:
        return str(self.fake.post(post.external_id)["caption"])

    def close(self) -> None:
        self.fake.stop()


class ReapDriver(Driver):
    """Reap: one draft per clip of a completed project, held by Greenlight; outcomes are polled."""

    slug = "reap"
    WEBHOOK_TOKEN = "reap-hook-contract-9c2e5b8d4f1a7f3a"

    def __init__(self) -> None:
        # A roomy budget: these tests are not about Reap's 10 requests a minute.
        self.fake = FakeReap(rate_limit_per_minute=100).start()
        self.fake.add_integration("youtube", "My Channel")
        self.fake.add_integration("tiktok", "Greenlight TT")

    def env(self, slack: FakeSlack, database_url: str) -> dict[str, str]:
        return base_env(
            slack, None, database_url,
            REAP_API_KEY=self.fake.api_key, REAP_API_URL=self.fake.url, REAP_WEBHOOK_TOKEN=self.WEBHOOK_TOKEN,
            REAP_REQUESTS_PER_MINUTE="100",
        )

    def make_drafts(self, captions: list[str] | None = None) -> str:
        if captions is None:
            return self.fake.add_project("completed", clips=self.drafts)
        assert len(captions) == self.drafts
        return self.fake.add_project("completed", clips=[{"caption": c} for c in captions])

    def import_command(self, ref: str) -> str:
        return f"reap {ref}"

    def unknown_ref(self) -> str:
        return secrets.token_hex(12)

    def _reap_post(self, post: Post) -> dict[str, Any]:
        (found,) = [p for p in self.fake.posts() if p["clipId"] == post.clip_id]
        return found

    def _poll(self, app: Greenlight, clock: Clock) -> None:
        # Reap never says: Greenlight's next poll (45 s after the hand-off) has to come round.
        clock.advance(app, timedelta(minutes=2))

    def report_published(self, app: Greenlight, clock: Clock, post: Post) -> str:
        reap_post = self._reap_post(post)
        urls = {p: f"https://example.test/{p}/{secrets.token_hex(5)}" for p in reap_post["platforms"]}
        self.fake.finish_post(reap_post["id"], urls=urls)
        self._poll(app, clock)
        return urls[post.platform]

    def report_failed(self, app: Greenlight, clock: Clock, post: Post) -> str:
        reap_post = self._reap_post(post)
        self.fake.finish_post(reap_post["id"], failed=reap_post["platforms"])
        self._poll(app, clock)
        # Reap reports which accounts failed, and no reason beyond that.
        return "couldn't publish to YouTube, TikTok"

    def publish_calls(self, post: Post, *, accepted_only: bool = False) -> int:
        calls = [c for c in self.fake.calls("POST", r"/publish-clip$") if (c.json or {}).get("clipId") == post.clip_id]
        return len([c for c in calls if 200 <= c.status < 300] if accepted_only else calls)

    def write_calls(self) -> int:
        return len([c for c in self.fake.calls() if c.method != "GET"])

    def fail_next_publish(self, status: int) -> None:
        self.fake.fail_next("POST", r"/publish-clip$", status, message="upstream down",
                            retry_after=1 if status == 429 else None)

    def provider_caption(self, post: Post) -> str:
        raise AssertionError("Reap holds no drafts")

    def close(self) -> None:
        self.fake.stop()


DRIVERS: dict[str, type[Driver]] = {"choppity": ChoppityDriver, "reap": ReapDriver}


# -- fixtures ------------------------------------------------------------------------------------------


@dataclass
class World:
    """One provider's fake, a running Greenlight configured for it, and Slack around them."""

    app: Greenlight
    slack: SlackDriver
    fake_slack: FakeSlack
    driver: Driver
    clock: Clock

    @property
    def capabilities(self) -> Capabilities:
        """What the provider under test declares it can do."""
        provider: Provider = self.app.services.providers[self.driver.slug]
        return provider.capabilities

    def command(self, text: str) -> dict[str, Any]:
        """Run `/greenlight <text>`; the app's answer through the response URL (waited for)."""
        response, url = self.slack.command(text)
        assert response.status_code == 200
        wait_until(lambda: bool(self.fake_slack.responses(url)), message=f"an answer to /greenlight {text}")
        return self.fake_slack.responses(url)[-1]

    def import_drafts(self, captions: list[str] | None = None) -> list[Post]:
        """Drafts made in the provider and imported with the slash command; their rows, oldest first."""
        ref = self.driver.make_drafts(captions)
        answer = self.command(self.driver.import_command(ref))
        assert f"Posted {self.driver.drafts} drafts" in answer["text"], answer["text"]
        self.app.settle()
        return rows(self.app)

    def card_text(self, post: Post) -> str:
        return text_of(card(self.fake_slack, self.app, post.external_id))

    def row(self, post: Post) -> Post:
        return db_post(self.app, post.external_id)

    def ephemerals(self, user: str = "U_ANA") -> list[str]:
        return [e.text for e in self.fake_slack.ephemerals(user)]


@pytest.fixture(params=list(DRIVERS))
def driver(request: pytest.FixtureRequest) -> Iterator[Driver]:
    bug = DRIVERS[request.param].known_bugs.get(request.node.originalname)
    if bug is not None:
        request.applymarker(pytest.mark.xfail(strict=True, reason=bug))
    made = DRIVERS[request.param]()
    yield made
    made.close()


@pytest.fixture
def world(driver: Driver, fake_slack: FakeSlack, database_url: str) -> Iterator[World]:
    clock = Clock()
    app = Greenlight(driver.env(fake_slack, database_url), clock=clock).start()
    try:
        assert list(app.services.providers) == [driver.slug]  # the other provider is not configured
        yield World(app, SlackDriver(app, fake_slack), fake_slack, driver, clock)
    finally:
        app.stop()


# -- helpers -------------------------------------------------------------------------------------------


def rows(app: Greenlight) -> list[Post]:
    with Session(app.services.engine) as session:
        found = list(session.exec(select(Post).order_by(col(Post.id))).all())
        for post in found:
            session.expunge(post)
        return found


def post_id(post: Post) -> int:
    assert post.id is not None
    return post.id


def caption_block(view: dict[str, Any], caption: str) -> str:
    """The block id of the modal's text input prefilled with `caption` (whatever the form calls it)."""
    found = [
        b["block_id"] for b in view.get("blocks", [])
        if b.get("type") == "input" and b["element"].get("type") == "plain_text_input"
        and b["element"].get("initial_value") == caption
    ]
    assert len(found) == 1, f"no single input prefilled with {caption!r} in {json.dumps(view)[:2000]}"
    return str(found[0])


def modal_answer(response: Any) -> dict[str, Any]:
    """What the app answered a view submission: {} when it simply closed the modal."""
    assert response.status_code == 200, response.text
    return dict(response.json()) if response.text.strip() not in ("", "{}") else {}


def typed(value: str) -> dict[str, Any]:
    return {"type": "plain_text_input", "value": value}


def picked(when: datetime) -> dict[str, Any]:
    return {"type": "datetimepicker", "selected_date_time": int(when.timestamp())}


def status_line(text: str, word: str) -> str:
    lines = [line for line in text.splitlines() if word in line]
    assert lines, f"no {word!r} line on the card:\n{text}"
    return lines[0]


def publish_and_settle(world: World, post: Post, user: str = "U_ANA") -> None:
    assert world.slack.click(ActionId.PUBLISH, post_id(post), user=user).status_code == 200
    world.app.drain()


# -- 1. import ------------------------------------------------------------------------------------------


def test_import_cards_each_draft_once_and_answers_ephemerally(world: World) -> None:
    captions = [f"Draft number {i} caption #contract" for i in range(world.driver.drafts)]
    ref = world.driver.make_drafts(captions)
    response, url = world.slack.command(world.driver.import_command(ref))
    assert response.status_code == 200 and "Looking up" in response.text
    wait_until(lambda: bool(world.fake_slack.responses(url)), message="the import summary")
    summary = world.fake_slack.responses(url)[-1]
    assert summary.get("response_type") == "ephemeral"
    assert f"Posted {world.driver.drafts} drafts" in summary["text"]
    world.app.settle()

    posts = rows(world.app)
    messages = cards_in_channel(world.fake_slack)
    assert len(posts) == len(messages) == world.driver.drafts
    assert {p.provider for p in posts} == {world.driver.slug}
    assert {p.status for p in posts} == {"draft"}
    assert sorted(p.message_ts or "" for p in posts) == sorted(m.ts for m in messages)
    assert sorted(p.content["caption"] for p in posts) == sorted(captions)
    for post in posts:
        assert post.content["caption"] in world.card_text(post)
        assert ActionId.PUBLISH in buttons(card(world.fake_slack, world.app, post.external_id))

    again = world.command(world.driver.import_command(ref))
    assert again.get("response_type") == "ephemeral" and "Nothing new" in again["text"]
    world.app.settle()
    assert len(cards_in_channel(world.fake_slack)) == world.driver.drafts
    assert len(rows(world.app)) == world.driver.drafts
    assert world.fake_slack.count("chat.postMessage") == world.driver.drafts + len(clip_messages(world.fake_slack))


# -- 2. edit --------------------------------------------------------------------------------------------


def test_edit_is_prefilled_validated_inline_and_saved(world: World) -> None:
    post = world.import_drafts()[0]
    old = post.content["caption"]
    assert world.slack.click(ActionId.EDIT, post_id(post)).status_code == 200
    view = world.slack.latest_view(ViewId.EDIT, post_id=post_id(post))
    block = caption_block(view, old)
    writes = world.driver.write_calls()

    body = modal_answer(world.slack.submit(view, values={block: typed("x" * 5001)}))
    assert body["response_action"] == "errors" and block in body["errors"], body
    world.app.drain()
    assert world.driver.write_calls() == writes  # nothing reached the provider
    assert world.row(post).content == post.content and world.row(post).pending_action is None
    assert old in world.card_text(post)

    new = "A better caption, edited in Slack ✍️ #contract"
    assert modal_answer(world.slack.submit(view, values={block: typed(new)})) == {}
    world.app.drain()
    row = world.row(post)
    assert row.content["caption"] == new and row.status == "draft" and row.pending_action is None
    shown = world.card_text(post)
    assert new in shown and old not in shown
    assert "Edited by <@U_ANA>" in shown
    if world.capabilities.drafts is DraftHome.PROVIDER:
        assert world.driver.provider_caption(post) == new  # the draft lives there: the edit went there
    assert world.driver.publish_calls(post) == 0


def test_caption_the_platform_refuses_is_an_inline_error(world: World) -> None:
    post = world.import_drafts()[0]  # bound for YouTube, which allows no < or > in a description
    old = post.content["caption"]
    world.slack.click(ActionId.EDIT, post_id(post))
    view = world.slack.latest_view(ViewId.EDIT, post_id=post_id(post))
    block = caption_block(view, old)
    writes = world.driver.write_calls()
    body = modal_answer(world.slack.submit(view, values={block: typed("Tap the link -> it's <b>big</b>")}))
    assert body.get("response_action") == "errors" and "<" in body["errors"].get(block, ""), body
    world.app.drain()
    assert world.driver.write_calls() == writes
    assert world.row(post).content == post.content and world.ephemerals() == []


# -- 3. publish -----------------------------------------------------------------------------------------


def test_publish_reaches_the_provider_once_and_shows_the_link(world: World) -> None:
    post = world.import_drafts()[0]
    publish_and_settle(world, post, user="U_BOB")
    assert world.driver.publish_calls(post) == 1
    row = world.row(post)
    assert row.pending_action is None and row.status not in ("draft", "failed", "published")
    still_cancellable = [ActionId.CANCEL] if row.status in world.capabilities.cancellable else []
    assert buttons(card(world.fake_slack, world.app, post.external_id)) == still_cancellable

    url = world.driver.report_published(world.app, world.clock, row)
    wait_until(lambda: world.row(post).status == "published", timeout=15, message="published")
    world.app.settle()
    message = card(world.fake_slack, world.app, post.external_id)
    shown = text_of(message)
    assert url in status_line(shown, "*Published*")
    assert f"<{url}|" in shown
    assert "approved by <@U_BOB>" in shown
    assert buttons(message) == []
    row = world.row(post)
    assert row.status == "published" and row.published_url == url
    assert world.driver.publish_calls(post) == 1
    # The other draft was left alone.
    other = rows(world.app)[1]
    assert other.status == "draft" and world.driver.publish_calls(other) == 0


# -- 4. publish failure reported by the provider -----------------------------------------------------------


def test_failure_reported_by_the_provider_shows_on_the_card(world: World) -> None:
    post = world.import_drafts()[0]
    publish_and_settle(world, post, user="U_CAROL")
    reason = world.driver.report_failed(world.app, world.clock, world.row(post))
    wait_until(lambda: world.row(post).status == "failed", timeout=15, message="failed")
    world.app.settle()
    message = card(world.fake_slack, world.app, post.external_id)
    line = status_line(text_of(message), "*Failed:*")
    assert reason in line, line
    assert buttons(message) == []
    row = world.row(post)
    assert row.status == "failed" and reason in (row.error or "")
    replies = [text_of(m) for m in replies_about(world.fake_slack, row)]
    assert any("<@U_CAROL>" in r for r in replies), replies  # the approver is told
    assert world.driver.publish_calls(post) == 1


# -- 5. schedule ----------------------------------------------------------------------------------------------


def test_schedule_is_validated_held_until_its_time_and_handed_over_once(world: World) -> None:
    post = world.import_drafts()[0]
    world.slack.click(ActionId.SCHEDULE, post_id(post))
    view = world.slack.latest_view(ViewId.SCHEDULE, post_id=post_id(post))
    writes = world.driver.write_calls()

    body = modal_answer(world.slack.submit(view, values={FieldId.WHEN: picked(world.clock() + timedelta(minutes=3))}))
    assert body["response_action"] == "errors" and FieldId.WHEN in body["errors"], body
    world.app.drain()
    assert world.row(post).status == "draft" and world.driver.write_calls() == writes

    when = (world.clock() + timedelta(hours=2)).replace(microsecond=0)
    assert modal_answer(world.slack.submit(view, values={FieldId.WHEN: picked(when)})) == {}
    world.app.drain()
    row = world.row(post)
    assert row.status == "scheduled" and row.pending_action is None
    assert row.scheduled_at is not None and int(row.scheduled_at.timestamp()) == int(when.timestamp())
    message = card(world.fake_slack, world.app, post.external_id)
    assert "Scheduled for" in text_of(message)
    assert f"<!date^{int(when.timestamp())}^" in json.dumps(message.blocks)
    assert ActionId.PUBLISH not in buttons(message)
    assert world.driver.publish_calls(post) == 0  # nothing goes out now

    # Ten minutes before the time: still nothing.
    world.clock.advance(world.app, when - world.clock() - timedelta(minutes=10))
    world.app.drain()
    assert world.driver.publish_calls(post) == 0 and world.row(post).status == "scheduled"

    # The time passes: a schedule Greenlight holds is handed over, exactly once; one the provider
    # holds is the provider's to carry out.
    handed_over = 1 if world.capabilities.schedule_held_locally else 0
    world.clock.advance(world.app, timedelta(minutes=11))
    wait_until(lambda: world.driver.publish_calls(post) >= handed_over, timeout=15, message="the hand-off")
    world.app.drain()
    world.clock.advance(world.app, timedelta(minutes=30))
    world.app.drain()
    assert world.driver.publish_calls(post) == handed_over
    assert world.driver.publish_calls(post, accepted_only=True) == handed_over


# -- 6. cancel ---------------------------------------------------------------------------------------------------


def test_cancel_from_draft_is_confirmed_then_final(world: World) -> None:
    post = world.import_drafts()[0]
    writes = world.driver.write_calls()
    world.slack.click(ActionId.CANCEL, post_id(post), user="U_BOB")
    view = world.slack.latest_view(ViewId.CANCEL, post_id=post_id(post))
    world.app.drain()
    assert world.row(post).status == "draft" and world.driver.write_calls() == writes  # not until confirmed

    assert modal_answer(world.slack.submit(view, user="U_BOB", values={FieldId.REASON: typed("Off-brand")})) == {}
    world.app.drain()
    row = world.row(post)
    assert row.status == "cancelled" and row.cancel_reason == "Off-brand" and row.pending_action is None
    message = card(world.fake_slack, world.app, post.external_id)
    assert "Cancelled by <@U_BOB>" in text_of(message) and buttons(message) == []

    for action in (ActionId.PUBLISH, ActionId.SCHEDULE, ActionId.REQUEST_CHANGES, ActionId.CANCEL):
        before = len(world.ephemerals())
        assert world.slack.click(action, post_id(post)).status_code == 200
        wait_until(lambda: len(world.ephemerals()) > before, message=f"a refusal of {action}")  # noqa: B023
        assert "cancel" in world.ephemerals()[-1].lower(), world.ephemerals()[-1]
    world.app.drain()
    assert not [v for v in world.fake_slack.open_views() if v.get("callback_id") in (ViewId.SCHEDULE, ViewId.CANCEL)
                and v.get("id") != view.get("id")]
    assert world.row(post).status == "cancelled"
    assert world.driver.publish_calls(post) == 0


# -- 7. the provider fails the publish call ------------------------------------------------------------------------


def test_provider_5xx_on_publish_is_explained_and_never_published_twice(world: World) -> None:
    post = world.import_drafts()[0]
    world.driver.fail_next_publish(503)
    publish_and_settle(world, post)
    row = world.row(post)
    assert row.pending_action is None
    shown = world.card_text(post)
    if world.capabilities.publish_confirmable:
        # Greenlight re-reads the post, sees it still a draft, and publishes it: once.
        assert row.status not in ("draft", "failed", "published")
        assert world.driver.publish_calls(post) == 2
        assert "*Failed:*" not in shown
    else:
        # The provider may have taken it and can't be asked: reported, never re-sent.
        assert row.status == "failed" and row.error
        assert row.error in status_line(shown, "*Failed:*")
        told = [unescape(e) for e in world.ephemerals()]
        assert any(row.error in e for e in told), (row.error, told)
        assert world.driver.publish_calls(post) == 1
    # A second click never sends it again.
    before = len(world.ephemerals())
    world.slack.click(ActionId.PUBLISH, post_id(post))
    wait_until(lambda: len(world.ephemerals()) > before, message="the refusal of a second publish")
    world.app.drain()
    assert world.driver.publish_calls(post, accepted_only=True) == (1 if world.capabilities.publish_confirmable else 0)


def test_provider_429_on_publish_then_a_retry_publishes_exactly_once(world: World) -> None:
    post = world.import_drafts()[0]
    world.driver.fail_next_publish(429)
    publish_and_settle(world, post)
    row = world.row(post)
    assert row.pending_action is None
    if row.status == "draft":
        # Handed back to the person: they were told, and clicking again publishes.
        assert world.ephemerals(), "the clicker was never told the publish didn't happen"
        publish_and_settle(world, post)
        row = world.row(post)
    assert row.status not in ("draft", "failed"), (row.status, row.error)
    assert "*Failed:*" not in world.card_text(post)
    assert world.driver.publish_calls(post, accepted_only=True) == 1


# -- 8. unknown id ---------------------------------------------------------------------------------------------------


def test_importing_an_unknown_id_says_so_and_cards_nothing(world: World) -> None:
    ref = world.driver.unknown_ref()
    answer = world.command(world.driver.import_command(ref))
    assert answer.get("response_type") == "ephemeral"
    assert "couldn't find" in answer["text"].lower() and ref in answer["text"], answer["text"]
    world.app.drain()
    assert cards_in_channel(world.fake_slack) == []
    assert rows(world.app) == []


# -- 9. untrusted text -------------------------------------------------------------------------------------------------


def test_untrusted_caption_never_reaches_slack_as_live_markup(world: World) -> None:
    hostile = "Launch day <!channel> *bold* & <@U_EVIL> <https://evil.example|log in>"
    captions = [f"{hostile} #{i}" for i in range(world.driver.drafts)]
    posts = world.import_drafts(captions)
    assert [p.content["caption"] for p in posts] == captions
    for post in posts:
        assert post.content["caption"] in world.card_text(post)  # shown, as text

    # Through every surface the caption can reach: the edit modal, an edit (accepted, or refused with
    # the provider's words), a publish (carried out, or refused with the reason), thread and ephemerals.
    post = posts[0]
    world.slack.click(ActionId.EDIT, post_id(post))
    view = world.slack.latest_view(ViewId.EDIT, post_id=post_id(post))
    block = caption_block(view, captions[0])
    assert world.slack.submit(view, values={block: typed(f"{hostile} (edited)")}).status_code == 200
    world.app.drain()
    for post in posts:
        publish_and_settle(world, post)
    for post in posts:
        if world.row(post).status != "draft":  # went out: its outcome reaches the card and the thread too
            world.driver.report_published(world.app, world.clock, world.row(post))
            wait_until(lambda: world.row(post).status == "published", timeout=15, message="published")  # noqa: B023
    world.app.drain()
    assert world.fake_slack.count("chat.update") >= len(posts)

    assert live_markup_problems(world.fake_slack) == []
    # `*bold*` only ever goes out as plain text, never where Slack reads mrkdwn.
    for call in world.fake_slack.calls():
        texts = [call.args["text"]] if isinstance(call.args.get("text"), str) else []
        for key in ("blocks", "view", "attachments"):
            if key in call.args:
                texts.extend(mrkdwn_strings(call.args[key]))
        assert not [t for t in texts if "*bold*" in t], (call.method, texts)


# -- 10. review: changes requested, four eyes, what changed ---------------------------------------------------


def chosen(value: str) -> dict[str, Any]:
    return {"type": "radio_buttons", "selected_option": {"value": value}}


def edit_caption(world: World, post: Post, new: str, user: str = "U_ANA") -> None:
    """Edit the caption through the modal (whatever the provider's form calls the field)."""
    current = world.row(post).content["caption"]
    assert world.slack.click(ActionId.EDIT, post_id(post), user=user).status_code == 200
    view = world.slack.latest_view(ViewId.EDIT, post_id=post_id(post))
    assert modal_answer(world.slack.submit(view, user=user, values={caption_block(view, current): typed(new)})) == {}
    world.fake_slack.close_view(view["id"])
    world.app.drain()


def thread_of(world: World, post: Post) -> list[str]:
    return [text_of(m) for m in replies_about(world.fake_slack, world.row(post))]


def refusal_after(world: World, action: str, post: Post, user: str) -> str:
    before = len(world.ephemerals(user))
    assert world.slack.click(action, post_id(post), user=user).status_code == 200
    wait_until(lambda: len(world.ephemerals(user)) > before, message=f"a refusal of {action}")
    return unescape(world.ephemerals(user)[-1])


def test_request_changes_holds_the_draft_until_the_next_edit(world: World) -> None:
    post = world.import_drafts()[0]  # imported by U_ANA (the slash command)
    world.slack.click(ActionId.REQUEST_CHANGES, post_id(post), user="U_BOB")
    view = world.slack.latest_view(ViewId.REQUEST_CHANGES, post_id=post_id(post))
    writes = world.driver.write_calls()

    # A reason is required, and "Other" needs a note: inline errors, nothing recorded.
    body = modal_answer(world.slack.submit(view, user="U_BOB"))
    assert body["response_action"] == "errors" and FieldId.CHANGE_REASON in body["errors"], body
    body = modal_answer(world.slack.submit(view, user="U_BOB", values={FieldId.CHANGE_REASON: chosen("other")}))
    assert body["response_action"] == "errors" and FieldId.CHANGE_NOTE in body["errors"], body
    assert world.row(post).changes_requested_by is None

    note = "Is it really 10x faster? Source please."
    answer = world.slack.submit(view, user="U_BOB", values={FieldId.CHANGE_REASON: chosen("claim"),
                                                           FieldId.CHANGE_NOTE: typed(note)})
    assert modal_answer(answer) == {}
    world.fake_slack.close_view(view["id"])
    world.app.drain()
    row = world.row(post)
    assert (row.changes_requested_by, row.change_reason, row.change_note) == ("U_BOB", "claim", note)
    message = card(world.fake_slack, world.app, post.external_id)
    shown = text_of(message)
    assert f"Changes requested by <@U_BOB>:* Claim to check — {note}" in shown, shown
    assert "✋ Changes requested" in message.blocks[0]["text"]["text"]
    draft_cancellable = "draft" in {s.value for s in world.capabilities.cancellable}
    assert buttons(message) == [ActionId.EDIT] + ([ActionId.CANCEL] if draft_cancellable else [])
    asked = thread_of(world, post)[-1]
    assert "<@U_BOB> requested changes: Claim to check" in asked and "<@U_ANA>, please edit" in asked, asked

    # Nothing decides this version: a stale Publish is refused, no modal opens for Schedule.
    assert "asked for changes" in refusal_after(world, ActionId.PUBLISH, post, "U_CAROL")
    assert "asked for changes" in refusal_after(world, ActionId.SCHEDULE, post, "U_CAROL")
    world.app.drain()
    assert not [v for v in world.fake_slack.open_views() if v.get("callback_id") == ViewId.SCHEDULE]
    assert world.driver.write_calls() == writes and world.driver.publish_calls(post) == 0

    # The next edit resolves it (and says so), and the buttons come back.
    edit_caption(world, post, "Up to 10x faster in our benchmark (link in bio) #contract", user="U_CAROL")
    row = world.row(post)
    assert row.changes_requested_by is None and row.content_version == 2
    assert "This resolves the changes <@U_BOB> requested (Claim to check)" in thread_of(world, post)[-1]
    assert ActionId.PUBLISH in buttons(card(world.fake_slack, world.app, post.external_id))
    publish_and_settle(world, post, user="U_BOB")
    assert world.driver.publish_calls(post) == 1


def test_four_eyes_the_last_editor_cannot_publish_or_schedule_their_own_version(world: World) -> None:
    post = world.import_drafts()[0]
    edit_caption(world, post, "Rewritten by Ana before anyone else saw it #contract", user="U_ANA")
    shown = world.card_text(post)
    assert "Four eyes: <@U_ANA> made the last edit, so someone else must publish or schedule" in shown, shown

    told = refusal_after(world, ActionId.PUBLISH, post, "U_ANA")
    assert "You made the last edit" in told and "four eyes" in told, told
    assert "You made the last edit" in refusal_after(world, ActionId.SCHEDULE, post, "U_ANA")
    world.app.drain()
    assert not [v for v in world.fake_slack.open_views() if v.get("callback_id") == ViewId.SCHEDULE]
    assert world.driver.publish_calls(post) == 0 and world.row(post).status == "draft"

    publish_and_settle(world, post, user="U_BOB")  # another person decides
    assert world.driver.publish_calls(post) == 1


def test_an_edit_replies_with_a_word_diff_and_keeps_every_version(world: World) -> None:
    captions = [f"POV: you finally automate your Monday standup with robots #{i}" for i in range(world.driver.drafts)]
    post = world.import_drafts(captions)[0]
    assert "🤖 AI draft" in world.card_text(post)

    new = "POV: you now automate your Monday standup with *happy* robots #0"
    edit_caption(world, post, new)
    reply = thread_of(world, post)[-1]
    assert "<@U_ANA> edited" in reply
    assert "~finally~ *now*" in reply and "*∗happy∗*" in reply, reply  # the caption's own * can't format
    assert "🤖 AI draft" not in world.card_text(post)
    with Session(world.app.services.engine) as session:
        kept = session.exec(select(PostVersion).where(PostVersion.post_id == post_id(post))
                            .order_by(col(PostVersion.version))).all()
        assert [(v.version, v.source, v.editor, v.content["caption"]) for v in kept] == [
            (1, "provider", None, captions[0]), (2, "slack", "U_ANA", new)]
    assert live_markup_problems(world.fake_slack) == []


def test_each_clip_gets_its_video_in_its_thread_exactly_once(world: World, fake_slack: FakeSlack,
                                                             database_url: str) -> None:
    """Whatever the provider (a render to wait for, or a file at hand), each clip's video is uploaded once."""
    world.app.stop()  # this one runs with previews off; the same deployment with them on:
    app = Greenlight({**world.driver.env(fake_slack, database_url), "CLIP_PREVIEW": "upload"},
                     clock=world.clock).start()
    try:
        ref = world.driver.make_drafts()
        SlackDriver(app, fake_slack).command(world.driver.import_command(ref))
        wait_until(lambda: len(cards_in_channel(fake_slack)) == world.driver.drafts, message="the cards")
        with Session(app.services.engine) as session:
            clips = len(session.exec(select(Clip)).all())

        last_step = [0.0]

        def uploaded() -> bool:
            with Session(app.services.engine) as session:
                states = [c.preview_state for c in session.exec(select(Clip)).all()]
            if states and all(s == "uploaded" for s in states):
                return True
            if time.monotonic() - last_step[0] > 0.5:  # a render takes its time; polls wait 5 s
                world.clock.offset += timedelta(seconds=6)
                app.services.runner.wake()
                last_step[0] = time.monotonic()
            return False

        wait_until(uploaded, timeout=60, message="every clip's video")
        app.settle()
        with Session(app.services.engine) as session:
            threads = [c.message_ts for c in session.exec(select(Clip)).all()]
        videos = [[m for m in fake_slack.replies(CHANNEL, ts) if m.files] for ts in threads if ts]
        assert clips >= 1 and [len(v) for v in videos] == [1] * clips
        assert len(fake_slack.files()) == clips and all(f.completed and f.size for f in fake_slack.files())
    finally:
        app.stop()
