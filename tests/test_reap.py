"""Reap as the second provider, end to end: the real app over HTTP against fake Slack and fake Reap.

Drafts come from completed projects (command or webhook), edits stay local and are validated per
target platform, Publish hands the clip to Reap once and polls the outcome, Schedule is held by
Greenlight until a durable job hands it over (once, across restarts), Cancel works only before
the hand-off, and every Reap call goes through one per-minute budget.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select

from bot.db import session_scope
from bot.domain import FieldId, Platform, utf16_length
from bot.jobs import enqueue
from bot.models import Job, Post, WebhookEvent, utcnow
from bot.providers.budget import BudgetExhausted, Priority, RateBudget
from bot.providers.errors import ApiBadRequest, ApiNotFound, ApiRateLimited, ApiUnauthorized, ApiUnavailable
from bot.providers.reap.client import ReapClient
from bot.providers.reap.draft import CANCEL_NOTE, Account, ReapDraft, description_limit, field_errors
from bot.providers.reap.form import parse_tags
from bot.providers.reap.provider import ReapProvider
from bot.services.actions import HAND_OFF
from bot.services.intake import IMPORT
from bot.services.outcomes import REFRESH_POST
from bot.services.review import POST_ACTION
from bot.slack.ids import ActionId, ViewId
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
    count_rows,
    jobs,
    live_markup_problems,
    text_of,
    thread,
    wait_until,
)

WEBHOOK_TOKEN = "reap-hook-7f3a9c2e5b8d4f1a"
ANA = "U_ANA"
TITLE, DESCRIPTION, TAGS, TARGETS = FieldId.TITLE, FieldId.CAPTION, FieldId.TAGS, FieldId.TARGETS


def typed(value: str) -> dict[str, Any]:
    return {"type": "plain_text_input", "value": value}


def checked(*values: str) -> dict[str, Any]:
    return {"type": "checkboxes", "selected_options": [{"value": v} for v in values]}


def chosen(value: str) -> dict[str, Any]:
    return {"type": "static_select", "selected_option": {"value": value}}


def saved(response: httpx.Response) -> None:
    assert response.status_code == 200 and response.text in ("", "{}"), response.text


@dataclass
class Reap:
    """One Greenlight serving Reap drafts, the fakes it talks to, and what a test reads from them."""

    app: Greenlight
    fake_slack: FakeSlack
    fake_reap: FakeReap

    def __post_init__(self) -> None:
        self.slack = SlackDriver(self.app, self.fake_slack)
        self.tune()

    @property
    def provider(self) -> ReapProvider:
        provider = self.app.services.providers["reap"]
        assert isinstance(provider, ReapProvider)
        return provider

    def tune(self, poll_seconds: float = 0.5) -> None:
        """Poll Reap every `poll_seconds` (45 s in production): fast for tests, slow enough for the budget."""
        caps = self.provider.capabilities
        every = timedelta(seconds=poll_seconds)
        self.provider.capabilities = replace(caps, polling=replace(caps.polling, every=every))

    def restart(self, *, clock: Callable[[], datetime] | None = None,
                while_down: Callable[[], None] | None = None) -> None:
        """A brand-new process on the same database (with `clock` as its time), tuned like the first."""
        self.app.stop()
        if while_down is not None:
            while_down()
        self.app.clock = clock or self.app.clock
        self.app.start()
        self.tune()

    # -- Slack ------------------------------------------------------------------------------------

    def command(self, text: str) -> str:
        """Run `/greenlight <text>` and return what the app answered through the response URL."""
        response, url = self.slack.command(text)
        assert response.status_code == 200
        wait_until(lambda: bool(self.fake_slack.responses(url)), message=f"an answer to /greenlight {text}")
        return str(self.fake_slack.responses(url)[-1].get("text", ""))

    def carded(self, clips: int | list[dict[str, Any]] = 1) -> tuple[str, list[int]]:
        """A completed project imported through the command; returns (project id, our post ids)."""
        project_id = self.fake_reap.add_project("completed", clips=clips)
        assert "Posted" in self.command(f"reap {project_id}")
        self.app.settle()
        ids = [p.id for p in self.posts() if p.project_id == project_id and p.id is not None]
        assert len(ids) == (clips if isinstance(clips, int) else len(clips))
        return project_id, ids

    def open_edit(self, post_id: int) -> dict[str, Any]:
        self.slack.click(ActionId.EDIT, post_id)
        return self.slack.latest_view(ViewId.EDIT, post_id=post_id)

    def schedule(self, post_id: int, when: int) -> None:
        self.slack.click(ActionId.SCHEDULE, post_id)
        view = self.slack.latest_view(ViewId.SCHEDULE, post_id=post_id)
        picked = {"type": "datetimepicker", "selected_date_time": when}
        saved(self.slack.submit(view, values={FieldId.WHEN: picked}))

    def card(self, post_id: int) -> Message:
        return card(self.fake_slack, self.app, self.row(post_id).external_id)

    def card_text(self, post_id: int) -> str:
        return text_of(self.card(post_id))

    def thread(self, post_id: int) -> str:
        return "\n".join(thread(self.fake_slack, self.app, self.row(post_id).external_id))

    def told(self, words: str) -> bool:
        """Whether U_ANA was told `words` in an ephemeral message."""
        return any(words in e.text for e in self.fake_slack.ephemerals(ANA))

    # -- the database -----------------------------------------------------------------------------

    def posts(self) -> list[Post]:
        return self._all(select(Post).where(Post.provider == "reap").order_by(col(Post.id)))

    def _all(self, query: Any) -> list[Any]:
        with Session(self.app.services.engine) as session:
            found = list(session.exec(query).all())
            for item in found:
                session.expunge(item)
            return found

    def row(self, post_id: int) -> Post:
        (post,) = self._all(select(Post).where(col(Post.id) == post_id))
        return post  # type: ignore[no-any-return]

    def draft(self, post_id: int) -> ReapDraft:
        """What Greenlight holds for the post: targets, tags, settings, then Reap's post and results."""
        return ReapDraft.load(self.row(post_id).extra)

    def status(self, post_id: int) -> str:
        return self.row(post_id).status

    def fast_forward(self, kind: str) -> None:
        """Make pending jobs of `kind` due now (time passing, without waiting for it)."""
        with session_scope(self.app.services.engine) as session:
            session.execute(update(Job).where(col(Job.kind) == kind, col(Job.status) == "pending")
                            .values(run_at=utcnow()).execution_options(synchronize_session=False))
        self.app.services.runner.wake()


Start = Callable[..., Reap]
Drafted = tuple[Reap, int]


@pytest.fixture
def fake_reap() -> Iterator[FakeReap]:
    """A fake Reap with a roomy budget (tests that are about the limit lower it)."""
    with FakeReap(rate_limit_per_minute=100) as fake:
        yield fake


@pytest.fixture
def start(fake_slack: FakeSlack, fake_reap: FakeReap, database_url: str) -> Iterator[Start]:
    """Start Greenlight with only Reap enabled: `start(REAP_INTEGRATIONS="...")`."""
    started: list[Greenlight] = []

    def run(**overrides: str) -> Reap:
        env = base_env(fake_slack, None, database_url, **{
            "REAP_API_KEY": fake_reap.api_key, "REAP_API_URL": fake_reap.url,
            "REAP_WEBHOOK_TOKEN": WEBHOOK_TOKEN, "REAP_REQUESTS_PER_MINUTE": "100", **overrides})
        started.append(Greenlight(env).start())
        return Reap(started[-1], fake_slack, fake_reap)

    yield run
    for app in started:
        app.stop()


@pytest.fixture
def one_draft(start: Start, fake_reap: FakeReap) -> Drafted:
    """A running Greenlight with one YouTube account and one carded draft."""
    fake_reap.add_integration("youtube", "My Channel")
    reap = start()
    _, (post_id,) = reap.carded()
    return reap, post_id


# -- drafts -----------------------------------------------------------------------------------------


def test_completed_project_becomes_one_card_per_clip_and_only_once(start: Start, fake_reap: FakeReap) -> None:
    yt = fake_reap.add_integration("youtube", "My Channel")
    tt = fake_reap.add_integration("tiktok", "Greenlight TT")
    fake_reap.add_integration("instagram", "Old IG", active=False)
    project_id = fake_reap.add_project("completed", clips=[
        {"title": "Why cold brew wins", "caption": "Cold brew, explained in 40 seconds #coffee"},
        {"title": "Grinder myths", "caption": "Burr vs blade: the truth"},
        {"title": "Water matters", "caption": "Your water is half your coffee"},
    ])
    fake_reap.max_page_size = 2  # the clips come in two pages
    reap = start()

    answer = reap.command(f"reap {project_id}")
    targets = "YouTube · My Channel, TikTok · Greenlight TT"
    assert f"Posted 3 drafts for the Reap project `{project_id}` ({targets})" in answer, answer
    reap.app.settle()
    assert fake_reap.count("GET", "get-project-clips") == 2

    posts = reap.posts()
    assert [p.external_id for p in posts] == [f"{project_id}:{c}" for c in fake_reap.clip_ids(project_id)]
    first = posts[0]
    assert first.id is not None
    assert first.status == "draft" and first.platform == "youtube" and first.project_id == project_id
    assert first.content == {"caption": "Cold brew, explained in 40 seconds #coffee", "title": "Why cold brew wins"}
    draft = reap.draft(first.id)
    assert draft.targets == [yt, tt] and [a.id for a in draft.integrations] == [yt, tt]  # not the inactive one
    assert [a.label for a in draft.target_accounts()] == ["YouTube · My Channel", "TikTok · Greenlight TT"]
    assert draft.tags == [] and set(draft.settings) == {"youtube", "tiktok"} and draft.reap_post_id is None

    assert len(cards_in_channel(reap.fake_slack)) == 3
    shown = reap.card_text(first.id)
    for expected in ("YouTube · My Channel", "TikTok · Greenlight TT", "Why cold brew wins",
                     "Cold brew, explained in 40 seconds #coffee", "No tags",
                     "YouTube: Public · not made for kids", "TikTok: Everyone · comments on", CANCEL_NOTE):
        assert expected in shown, expected
    assert "Old IG" not in shown  # inactive accounts are not targets
    assert "Category" not in shown and "Edit before publishing" not in shown
    assert fake_reap.calls("POST") == []  # nothing is sent to Reap until someone publishes

    assert "Nothing new" in reap.command(f"reap {project_id}")
    reap.app.settle()
    assert len(cards_in_channel(reap.fake_slack)) == 3 and len(reap.posts()) == 3


def test_processing_project_is_refused_then_carded_once_it_completes(
    start: Start, fake_reap: FakeReap
) -> None:
    fake_reap.add_integration("youtube", "My Channel")
    project_id = fake_reap.add_project("processing", clips=2)
    reap = start()

    assert "still processing" in reap.command(f"reap {project_id}")
    reap.app.settle()
    assert reap.posts() == [] and cards_in_channel(reap.fake_slack) == []
    assert fake_reap.count("GET", "get-project-clips") == 0
    (recheck,) = jobs(reap.app, IMPORT)
    assert recheck.status == "pending" and recheck.payload["ref"] == project_id

    # Greenlight keeps checking; once Reap has finished, the next check cards the clips.
    fake_reap.set_project_status(project_id, "completed")
    reap.fast_forward(IMPORT)
    wait_until(lambda: len(reap.posts()) == 2, message="clips carded after completion")
    reap.app.settle()
    assert len(cards_in_channel(reap.fake_slack)) == 2 and [j.status for j in jobs(reap.app, IMPORT)] == ["done"]

    failed = fake_reap.add_project("failed", clips=0)
    assert "is failed, so it has no drafts" in reap.command(f"reap {failed}")


def test_reap_integrations_setting_picks_the_targets(start: Start, fake_reap: FakeReap) -> None:
    fake_reap.add_integration("youtube", "My Channel")
    li = fake_reap.add_integration("linkedin", "Acme Inc")
    reap = start(REAP_INTEGRATIONS=f"{li},not-an-integration")
    project_id = fake_reap.add_project("completed", clips=1)
    answer = reap.command(f"reap {project_id}")
    assert "(LinkedIn · Acme Inc)" in answer
    assert "REAP_INTEGRATIONS lists not-an-integration, which isn't an active Reap integration" in answer
    reap.app.settle()
    (post,) = reap.posts()
    assert post.id is not None and post.platform == "linkedin"
    draft = reap.draft(post.id)
    assert draft.targets == [li]
    # Every active account is still offered in the edit modal.
    assert {a.platform for a in draft.integrations} == {Platform.YOUTUBE, Platform.LINKEDIN}


# -- webhook ----------------------------------------------------------------------------------------


def test_webhook_needs_the_token_and_is_only_a_hint(start: Start, fake_reap: FakeReap) -> None:
    fake_reap.add_integration("youtube", "My Channel")
    project_id = fake_reap.add_project("completed", clips=2)
    reap = start()
    body = json.dumps({"projectId": project_id, "projectType": "clipping", "source": "Upload",
                       "status": "completed"}).encode()

    def deliver(token: str, payload: bytes) -> httpx.Response:
        return httpx.post(f"{reap.app.url}/webhooks/reap/{token}", content=payload,
                          headers={"content-type": "application/json"}, timeout=10)

    for wrong in ("wrong-token-0000000000", WEBHOOK_TOKEN[:-1], WEBHOOK_TOKEN + "x", WEBHOOK_TOKEN.upper()):
        assert deliver(wrong, body).status_code == 404
    reap.app.settle()
    assert count_rows(reap.app, WebhookEvent) == 0
    assert fake_reap.calls() == [] and reap.posts() == []

    # Reap's creation-time validation: a dummy payload must get 200 with an empty body.
    ping = deliver(WEBHOOK_TOKEN, b'{"test": true}')
    assert ping.status_code == 200 and ping.content == b""

    fake_reap.delay_next("GET", "get-project-status", 1.0)
    response = deliver(WEBHOOK_TOKEN, body)
    assert response.status_code == 200 and response.content == b""
    assert reap.posts() == []  # answered before the work: the import runs as a job
    wait_until(lambda: len(reap.posts()) == 2, message="clips carded from the webhook")
    reap.app.settle()
    assert len(cards_in_channel(reap.fake_slack)) == 2
    assert fake_reap.count("GET", "get-project-status") == 1

    # A redelivery changes nothing and costs no Reap request.
    assert deliver(WEBHOOK_TOKEN, body).status_code == 200
    reap.app.settle()
    assert fake_reap.count("GET", "get-project-status") == 1 and len(reap.posts()) == 2

    # The body is never trusted: Reap says this project is still processing, so nothing is carded.
    liar = fake_reap.add_project("processing", clips=1)
    forged = json.dumps({"projectId": liar, "status": "completed"}).encode()
    assert deliver(WEBHOOK_TOKEN, forged).status_code == 200
    wait_until(lambda: fake_reap.count("GET", "get-project-status") >= 2, message="status confirmed")
    reap.app.settle()
    assert [p for p in reap.posts() if p.project_id == liar] == []
    assert fake_reap.count("GET", "get-project-clips") == 1


# -- edit -------------------------------------------------------------------------------------------


def test_edit_is_validated_for_the_chosen_targets_and_stays_local(start: Start, fake_reap: FakeReap) -> None:
    yt = fake_reap.add_integration("youtube", "My Channel")
    tt = fake_reap.add_integration("tiktok", "Greenlight TT")
    li = fake_reap.add_integration("linkedin", "Acme Inc")
    xx = fake_reap.add_integration("x", "Acme on X")
    reap = start(REAP_INTEGRATIONS=f"{yt},{tt}")
    _, (post_id,) = reap.carded()
    calls_after_import = len(fake_reap.calls())

    view = reap.open_edit(post_id)
    offered = json.dumps(view)
    assert "Acme on X" in offered and "Greenlight TT" in offered  # every active account is offered

    def errors(values: dict[str, Any]) -> dict[str, str]:
        body = reap.slack.submit(view, values=values).json()
        assert body["response_action"] == "errors", body
        return dict(body["errors"])

    long_title = "A" * 150
    # YouTube is a target: 100 characters for the title.
    assert "YouTube allows 100" in errors({TITLE: typed(long_title)})[TITLE]
    # Reap's own limits apply whatever the targets.
    assert "Reap allows 250" in errors({TITLE: typed("B" * 251), TARGETS: checked(tt)})[TITLE]
    assert "Reap allows 1,000" in errors({DESCRIPTION: typed("d" * 1001)})[DESCRIPTION]
    # An X target brings its 280-character limit; TikTok counts emoji twice.
    assert "X allows 280" in errors({DESCRIPTION: typed("d" * 281), TARGETS: checked(xx)})[DESCRIPTION]
    emoji = errors({DESCRIPTION: typed("🎉" * 501), TARGETS: checked(tt)})[DESCRIPTION]
    assert "1,002" in emoji and "emoji" in emoji
    assert "10 tags" in errors({TAGS: typed(", ".join(f"t{i}" for i in range(11)))})[TAGS]
    assert "at least one" in errors({TARGETS: checked()})[TARGETS]
    assert "title is required" in errors({TITLE: typed("")})[TITLE]
    reap.app.settle()
    assert reap.row(post_id).content_version == 1  # nothing changed

    # Without YouTube the long title is fine; settings for the new targets are taken from the form.
    saved(reap.slack.submit(view, values={
        TITLE: typed(long_title), DESCRIPTION: typed("New description 🎬"),
        TAGS: typed("coffee, Brew , coffee,  "), TARGETS: checked(tt, li), FieldId.PRIVACY: chosen("friends"),
        FieldId.TOGGLES: checked("disableDuet"), FieldId.LI_PRIVACY: chosen("connections"),
    }))
    reap.app.settle()
    post, draft = reap.row(post_id), reap.draft(post_id)
    assert post.content == {"caption": "New description 🎬", "title": long_title}
    assert draft.tags == ["coffee", "Brew"] and draft.targets == [tt, li]
    tiktok = draft.settings["tiktok"]
    assert tiktok["privacy"] == "friends" and tiktok["disableDuet"] is True and tiktok["disableStitch"] is False
    assert draft.settings["linkedin"] == {"privacy": "connections"}
    assert post.platform == "tiktok" and post.content_version == 2 and post.last_editor == ANA
    shown = reap.card_text(post_id)
    for expected in ("Tags: coffee · Brew", "TikTok: Friends · comments on · duet off",
                     "LinkedIn: Connections only", "TikTok · Greenlight TT", "LinkedIn · Acme Inc",
                     "Edited by <@U_ANA>"):
        assert expected in shown, expected
    assert "YouTube · My Channel" not in shown
    assert len(fake_reap.calls()) == calls_after_import  # edits never reach Reap

    # A settings-only edit is recorded like any other edit.
    reap.fake_slack.close_view(view["id"])
    saved(reap.slack.submit(reap.open_edit(post_id), values={TAGS: typed("coffee")}))
    reap.app.settle()
    assert reap.draft(post_id).tags == ["coffee"] and reap.row(post_id).content_version == 3
    assert "edited tags" in reap.thread(post_id)
    assert len(fake_reap.calls()) == calls_after_import


def test_edit_ignores_accounts_it_did_not_offer(start: Start, fake_reap: FakeReap) -> None:
    li = fake_reap.add_integration("linkedin", "Acme Inc")
    reap = start()
    _, (post_id,) = reap.carded()
    saved(reap.slack.submit(reap.open_edit(post_id), values={
        TITLE: typed(""), DESCRIPTION: typed("hello"), TARGETS: checked(li, "forged-integration"),
        FieldId.LI_PRIVACY: chosen("connections"),
    }))
    reap.app.settle()
    draft = reap.draft(post_id)
    assert draft.targets == [li] and draft.settings["linkedin"]["privacy"] == "connections"
    assert reap.row(post_id).content["caption"] == "hello"
    assert "forged-integration" not in json.dumps(reap.row(post_id).extra)


# -- publish and outcome ----------------------------------------------------------------------------


def test_publish_hands_over_once_and_polls_until_published(start: Start, fake_reap: FakeReap) -> None:
    yt = fake_reap.add_integration("youtube", "My Channel")
    tt = fake_reap.add_integration("tiktok", "Greenlight TT")
    fake_reap.add_integration("instagram", "Acme IG")  # offered, but not a default target
    reap = start(REAP_INTEGRATIONS=f"{yt},{tt}")
    project_id, (post_id,) = reap.carded()
    post = reap.row(post_id)

    reap.slack.click(ActionId.PUBLISH, post_id)
    wait_until(lambda: reap.status(post_id) == "queued", message="post queued")
    (call,) = fake_reap.calls("POST", "publish-clip")
    assert call.json == {
        "projectId": project_id, "clipId": post.clip_id, "integrations": [yt, tt],
        "title": post.content["title"], "description": post.content["caption"],
        # Only the platforms being published to (Reap's rule), with Reap's defaults.
        "platformSettings": {
            "youtube": {"privacy": "public", "embeddable": True, "publicStats": True, "madeForKids": False},
            "tiktok": {"privacy": "public", "disableComments": False, "disableDuet": False,
                       "disableStitch": False, "brandContent": False, "brandOrganic": False},
        },
    }
    reap_post_id = reap.draft(post_id).reap_post_id
    assert reap_post_id is not None and [p["id"] for p in fake_reap.posts()] == [reap_post_id]
    wait_until(lambda: "Queued" in reap.card_text(post_id), message="card shows queued")
    wait_until(lambda: fake_reap.count("GET", "get-post-details") >= 2, message="polling")
    assert reap.status(post_id) == "queued"

    fake_reap.finish_post(reap_post_id, urls={"youtube": "https://youtube.com/shorts/abc123",
                                              "tiktok": "https://www.tiktok.com/@gl/video/42"})
    reap.fast_forward(REFRESH_POST)
    wait_until(lambda: reap.status(post_id) == "published", message="published")
    reap.app.settle()
    post = reap.row(post_id)
    assert post.published_url == "https://youtube.com/shorts/abc123"
    assert post.extra["results"] == {
        "youtube": {"ok": True, "url": "https://youtube.com/shorts/abc123"},
        "tiktok": {"ok": True, "url": "https://www.tiktok.com/@gl/video/42"},
    }
    shown = reap.card_text(post_id)
    assert "✅ YouTube: <https://youtube.com/shorts/abc123|published>" in shown
    assert "✅ TikTok: <https://www.tiktok.com/@gl/video/42|published>" in shown
    assert CANCEL_NOTE not in shown
    replies = reap.thread(post_id)
    assert "Published on every account:" in replies and "https://www.tiktok.com/@gl/video/42" in replies
    polls = fake_reap.count("GET", "get-post-details")
    reap.app.settle()
    assert all(j.status == "done" for j in jobs(reap.app, REFRESH_POST))  # polling stopped
    assert fake_reap.count("GET", "get-post-details") == polls
    assert fake_reap.count("POST", "publish-clip") == 1


def test_partial_success_and_total_failure(start: Start, fake_reap: FakeReap) -> None:
    fake_reap.add_integration("youtube", "My Channel")
    fake_reap.add_integration("tiktok", "Greenlight TT")
    reap = start()
    _, (partial_id, failed_id) = reap.carded(clips=2)
    for post_id in (partial_id, failed_id):
        reap.slack.click(ActionId.PUBLISH, post_id)
    wait_until(lambda: all(reap.draft(i).reap_post_id for i in (partial_id, failed_id)), message="hand-offs")

    fake_reap.finish_post(reap.draft(partial_id).reap_post_id or "", failed=["tiktok"])
    fake_reap.finish_post(reap.draft(failed_id).reap_post_id or "", failed=["youtube", "tiktok"])
    reap.fast_forward(REFRESH_POST)
    wait_until(lambda: reap.status(partial_id) == "published" and reap.status(failed_id) == "failed",
               message="outcomes recorded")
    reap.app.settle()

    partial = reap.draft(partial_id)
    assert partial.reap_status == "unresolved"
    assert partial.results["youtube"].ok is True and partial.results["tiktok"].ok is False
    shown = reap.card_text(partial_id)
    assert "❌ TikTok failed" in shown and "Partly published: TikTok failed" in shown and "✅ YouTube:" in shown
    assert "⚠️ Published only in part:" in reap.thread(partial_id)

    error = reap.row(failed_id).error
    assert error is not None and "YouTube, TikTok" in error and "Reap dashboard" in error
    shown = reap.card_text(failed_id)
    assert "Failed" in shown and "❌ YouTube failed" in shown and "❌ TikTok failed" in shown
    assert "Publishing failed on every account:" in reap.thread(failed_id)
    assert fake_reap.count("POST", "publish-clip") == 2


def test_a_lost_publish_answer_is_reported_and_never_resent(one_draft: Drafted, fake_reap: FakeReap) -> None:
    reap, post_id = one_draft
    fake_reap.drop_connection_next("POST", "publish-clip")  # Reap publishes, the answer never arrives
    reap.slack.click(ActionId.PUBLISH, post_id)
    wait_until(lambda: reap.status(post_id) == "failed", message="reported as unknown")
    reap.app.settle()
    assert "may or may not" in (reap.row(post_id).error or "")
    assert reap.told("may or may not") and "may or may not" in reap.card_text(post_id)
    reap.restart()
    reap.app.settle()
    assert fake_reap.count("POST", "publish-clip") == 1
    assert len(fake_reap.posts()) == 1 and reap.status(post_id) == "failed"


def test_a_rejected_publish_leaves_the_draft_and_says_why(one_draft: Drafted, fake_reap: FakeReap) -> None:
    reap, post_id = one_draft
    (yt,) = reap.draft(post_id).targets
    fake_reap.set_integration_active(yt, False)  # disconnected in Reap after the card was posted
    reap.slack.click(ActionId.PUBLISH, post_id)
    wait_until(lambda: reap.told("not active"), message="refusal")
    reap.app.settle()
    post = reap.row(post_id)
    assert post.status == "draft" and post.pending_action is None and reap.draft(post_id).reap_post_id is None
    assert "Reap said: Integration" in reap.fake_slack.ephemerals(ANA)[-1].text
    assert fake_reap.posts() == []

    # Nothing was handed over, so once the account is back, publishing works and happens once: a
    # 429 on the way is a definite "not processed", so the hand-off is sent again when Reap allows.
    fake_reap.set_integration_active(yt, True)
    fake_reap.fail_next("POST", "publish-clip", 429, message="Too many requests", retry_after=1)
    reap.slack.click(ActionId.PUBLISH, post_id)
    wait_until(lambda: reap.status(post_id) == "queued", message="handed over after reconnecting")
    assert fake_reap.count("POST", "publish-clip") == 3 and len(fake_reap.posts()) == 1


def test_a_draft_that_cannot_go_out_says_so_and_is_never_sent(start: Start, fake_reap: FakeReap) -> None:
    fake_reap.add_integration("youtube", "My Channel")
    reap = start()
    _, (post_id,) = reap.carded([{"title": "T" * 120, "caption": "fine"}])
    assert "Edit before publishing: Title is 120 characters; YouTube allows 100." in reap.card_text(post_id)
    reap.slack.click(ActionId.PUBLISH, post_id)
    wait_until(lambda: reap.told("YouTube allows 100"), message="refusal")
    reap.app.settle()
    assert fake_reap.calls("POST") == [] and reap.status(post_id) == "draft"

    # A schedule is refused now, not at its time.
    refusals = len(reap.fake_slack.ephemerals(ANA))
    reap.schedule(post_id, int(time.time()) + 3600)
    wait_until(lambda: len(reap.fake_slack.ephemerals(ANA)) > refusals, message="schedule refused")
    reap.app.settle()
    assert "YouTube allows 100" in reap.fake_slack.ephemerals(ANA)[-1].text
    assert reap.status(post_id) == "draft" and jobs(reap.app, HAND_OFF) == []

    saved(reap.slack.submit(reap.open_edit(post_id), values={TITLE: typed("Short title")}))
    reap.app.settle()
    assert "Edit before publishing" not in reap.card_text(post_id) and fake_reap.calls("POST") == []


# -- schedule and cancel ----------------------------------------------------------------------------


def test_a_greenlight_held_schedule_fires_once_across_restarts(
    one_draft: Drafted, fake_reap: FakeReap
) -> None:
    reap, post_id = one_draft
    when = int(time.time()) + 2 * 86400  # the day after tomorrow: polling starts from the hand-off, not now
    reap.schedule(post_id, when)
    reap.app.settle()
    post = reap.row(post_id)
    assert post.status == "scheduled" and post.scheduled_at is not None
    assert int(post.scheduled_at.timestamp()) == when
    assert fake_reap.calls("POST") == []
    (handoff,) = jobs(reap.app, HAND_OFF)
    assert handoff.status == "pending" and abs(handoff.run_at.timestamp() - when) < 2
    assert f"<!date^{when}^" in json.dumps(reap.card(post_id).blocks)
    assert ActionId.CANCEL in buttons(reap.card(post_id))  # Greenlight still holds it

    # The process restarts before the time; the new one hands the post over when the time comes.
    shifted = timedelta(seconds=when - time.time() + 1)
    reap.restart(clock=lambda: utcnow() + shifted)
    wait_until(lambda: reap.status(post_id) == "queued", message="handed over at the scheduled time")
    assert fake_reap.count("POST", "publish-clip") == 1

    reap.restart()
    fake_reap.finish_post(reap.draft(post_id).reap_post_id or "")
    reap.fast_forward(REFRESH_POST)
    wait_until(lambda: reap.status(post_id) == "published", message="published")
    reap.app.settle()
    assert fake_reap.count("POST", "publish-clip") == 1
    assert [j.status for j in jobs(reap.app, HAND_OFF)] == ["done"] and "in progress after" not in reap.thread(post_id)
    assert [j.status for j in jobs(reap.app, POST_ACTION)] == ["done", "done"]  # the schedule, then the hand-off


def test_a_hand_off_that_died_mid_call_is_reported_not_resent(
    one_draft: Drafted, fake_reap: FakeReap
) -> None:
    reap, post_id = one_draft
    when = int(time.time()) + 3600
    reap.schedule(post_id, when)
    reap.app.settle()

    def crashed_mid_call() -> None:
        # What a process killed while publish-clip was in flight leaves behind: the hand-off claimed
        # the post, and its publish job marked the call as sent before making it.
        with session_scope(reap.app.services.engine) as session:
            post = session.get(Post, post_id)
            assert post is not None
            post.pending_action, post.pending_by, post.pending_since = "publish", ANA, utcnow()
            session.execute(update(Job).where(col(Job.kind) == HAND_OFF)
                            .values(status="done", finished_at=utcnow()).execution_options(synchronize_session=False))
            session.add(Job(kind=POST_ACTION, post_id=post_id, priority=3, status="running", attempts=1,
                            locked_by="dead-worker", locked_until=utcnow() - timedelta(seconds=1),
                            payload={"action": "publish", "user": ANA, "channel": CHANNEL, "hand_off": True,
                                     "sent_at": utcnow().isoformat()}))

    shifted = timedelta(seconds=when - time.time() + 1)
    reap.restart(clock=lambda: utcnow() + shifted, while_down=crashed_mid_call)
    wait_until(lambda: reap.status(post_id) == "failed", message="reported")
    reap.app.settle()
    assert fake_reap.calls("POST") == []
    assert "may or may not" in reap.thread(post_id) and "may or may not" in (reap.row(post_id).error or "")
    assert reap.row(post_id).pending_action is None


def test_cancel_before_the_hand_off_is_local(one_draft: Drafted, fake_reap: FakeReap) -> None:
    reap, post_id = one_draft
    reap.schedule(post_id, int(time.time()) + 3600)
    reap.app.settle()
    calls_before = len(fake_reap.calls())

    reap.slack.click(ActionId.CANCEL, post_id, user="U_BOB")
    saved(reap.slack.submit(reap.slack.latest_view(ViewId.CANCEL), user="U_BOB"))
    reap.app.settle()
    assert reap.status(post_id) == "cancelled" and "Cancelled by <@U_BOB>" in reap.card_text(post_id)
    assert len(fake_reap.calls()) == calls_before  # no API call

    # The hand-off job still fires at the time, sees the cancel, and does nothing.
    reap.fast_forward(HAND_OFF)
    reap.app.settle()
    assert [j.status for j in jobs(reap.app, HAND_OFF)] == ["done"]
    assert fake_reap.calls("POST") == [] and reap.status(post_id) == "cancelled"


def test_cancel_after_the_hand_off_is_refused_with_directions(one_draft: Drafted) -> None:
    reap, post_id = one_draft
    assert ActionId.CANCEL in buttons(reap.card(post_id))
    reap.slack.click(ActionId.PUBLISH, post_id)
    wait_until(lambda: reap.status(post_id) == "queued", message="queued")
    wait_until(lambda: ActionId.CANCEL not in buttons(reap.card(post_id)), message="no Cancel on the card")

    # A stale card's click is refused before any modal opens.
    reap.slack.click(ActionId.CANCEL, post_id)
    wait_until(lambda: reap.told("Reap's dashboard"), message="refusal")
    assert "can no longer be changed or cancelled from Slack" in reap.fake_slack.ephemerals(ANA)[-1].text
    assert not [v for v in reap.fake_slack.open_views() if v.get("callback_id") == ViewId.CANCEL]
    assert reap.row(post_id).pending_action is None and reap.status(post_id) == "queued"


# -- rate limiting ----------------------------------------------------------------------------------


def _seed_polls(reap: Reap, count: int) -> None:
    """`count` posts already handed to Reap and being polled (no budget spent to get there)."""
    yt = reap.fake_reap.add_integration("youtube", "My Channel")
    project_id = reap.fake_reap.add_project("completed", clips=count)
    with session_scope(reap.app.services.engine) as session:
        for clip_id in reap.fake_reap.clip_ids(project_id):
            draft = ReapDraft(integrations=[Account(id=yt, platform=Platform.YOUTUBE, label="YouTube · x")],
                              targets=[yt], reap_post_id=reap.fake_reap.add_post(project_id, clip_id, [yt]),
                              reap_status="processing", handed_off_at=utcnow())
            post = Post(provider="reap", external_id=f"{project_id}:{clip_id}", clip_id=clip_id,
                        project_id=project_id, platform="youtube", status="queued",
                        content={"caption": "c", "title": "t"}, extra=draft.dump(), channel_id=CHANNEL)
            session.add(post)
            session.flush()
            enqueue(session, REFRESH_POST, post_id=post.id, payload={"source": "poll"},
                    dedupe_key=f"refresh:{post.id}")
    reap.app.services.runner.wake()


def test_polling_load_never_exceeds_the_per_minute_budget(start: Start, fake_reap: FakeReap) -> None:
    fake_reap.rate_limit_per_minute = 4
    reap = start(REAP_REQUESTS_PER_MINUTE="4")
    reap.tune(poll_seconds=0.05)
    _seed_polls(reap, 8)
    # Background work may use 3 of the 4 slots; one stays free for a click.
    wait_until(lambda: fake_reap.count("GET", "get-post-details") == 3, message="first polls")
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:  # eight polls every 50 ms would be ~240 requests
        assert len(fake_reap.calls()) <= 4
        time.sleep(0.05)
    assert fake_reap.rate_limited_count == 0 and len(fake_reap.calls()) == 3
    assert reap.provider.client.budget.remaining() == 1
    assert all(j.status == "pending" for j in jobs(reap.app, REFRESH_POST))  # waiting, not failed


def test_a_server_side_limit_is_honoured_without_hammering(start: Start, fake_reap: FakeReap) -> None:
    # Another client shares the key: Reap's window fills before ours does.
    fake_reap.rate_limit_per_minute = 3
    reap = start(REAP_REQUESTS_PER_MINUTE="60")
    reap.tune(poll_seconds=0.05)
    _seed_polls(reap, 8)
    wait_until(lambda: fake_reap.count("GET", "get-post-details") >= 3, message="first polls")
    time.sleep(1.5)
    # X-RateLimit-Remaining: 0 / Retry-After stop every worker until the window resets.
    workers = reap.app.settings.worker_threads
    assert fake_reap.rate_limited_count <= workers and len(fake_reap.calls()) <= 3 + workers
    assert all(j.status == "pending" for j in jobs(reap.app, REFRESH_POST))


# -- client and form units --------------------------------------------------------------------------


def _client(fake: FakeReap, per_minute: int = 100, key: str | None = None) -> ReapClient:
    return ReapClient.build(base_url=fake.url, api_key=key or fake.api_key,
                            budget=RateBudget(per_minute, key="reap-test"), timeout=2.0)


def test_client_reads_pages_and_explains_errors(fake_reap: FakeReap) -> None:
    fake_reap.max_page_size = 2
    project_id = fake_reap.add_project("completed", clips=5)
    clip_id = fake_reap.clip_ids(project_id)[0]
    client = _client(fake_reap)
    assert [c.id for c in client.get_project_clips(project_id)] == fake_reap.clip_ids(project_id)
    assert fake_reap.count("GET", "get-project-clips") == 3
    assert all(c.headers["authorization"] == f"Bearer {fake_reap.api_key}" for c in fake_reap.calls())

    with pytest.raises(ApiNotFound) as missing:
        client.get_project_status("nope")
    assert missing.value.status == 404 and "Project not found" in missing.value.user_message

    with pytest.raises(ApiUnauthorized) as denied:
        _client(fake_reap, key="wrong").get_integrations()
    assert "401" in denied.value.user_message and "REAP_API_KEY" in denied.value.user_message
    assert "wrong" not in denied.value.user_message

    fake_reap.fail_next("GET", "get-project-status", 503, message="x" * 5000)
    assert client.get_project_status(project_id) == "completed"  # reads are retried

    fake_reap.add_integration("youtube")
    fake_reap.fail_next("POST", "publish-clip", 502)
    with pytest.raises(ApiUnavailable) as unknown:
        client.publish_clip(project_id=project_id, clip_id=clip_id, integrations=["x"], title=None,
                            description="d", tags=[], platform_settings={})
    assert unknown.value.sent and fake_reap.count("POST", "publish-clip") == 1  # never blindly retried

    with pytest.raises(ApiBadRequest) as bad:
        client.publish_clip(project_id=project_id, clip_id=clip_id, integrations=["missing"], title="t" * 251,
                            description="d", tags=[], platform_settings={})
    assert bad.value.status == 400 and bad.value.user_message.startswith("Reap said: ")
    client.close()


def test_client_honours_retry_after_and_rate_limit_reset(fake_reap: FakeReap) -> None:
    project_id = fake_reap.add_project("completed", clips=1)
    client = _client(fake_reap)
    fake_reap.fail_next("GET", "get-project-status", 429, message="slow down", retry_after=17)
    with pytest.raises(ApiRateLimited) as limited:
        client.get_project_status(project_id, priority=Priority.BACKGROUND)
    assert limited.value.retry_after == 17 and fake_reap.count("GET", "get-project-status") == 1
    # Every later call waits for Reap's window too, without sending anything.
    with pytest.raises(BudgetExhausted) as paused:
        client.get_project_status(project_id, priority=Priority.BACKGROUND)
    assert 15 <= paused.value.retry_after <= 17 and fake_reap.count("GET", "get-project-status") == 1

    request = httpx.Request("GET", f"{fake_reap.url}/get-project-status")
    reset = client.error_for(httpx.Response(429, headers={"X-RateLimit-Reset": str(int(time.time()) + 30)},
                                            request=request))
    assert isinstance(reset, ApiRateLimited) and 25 <= reset.retry_after <= 31
    long_text = client.error_for(httpx.Response(500, request=request, text="boom " * 200))
    assert isinstance(long_text, ApiUnavailable) and long_text.user_message.endswith("…)")
    assert len(long_text.user_message) < 400
    client.close()


def test_background_calls_never_wait_for_the_budget(fake_reap: FakeReap) -> None:
    project_id = fake_reap.add_project("completed", clips=1)
    client = _client(fake_reap, per_minute=4)
    for _ in range(3):
        client.get_project_status(project_id, priority=Priority.BACKGROUND)
    began = time.monotonic()
    with pytest.raises(BudgetExhausted):
        client.get_project_status(project_id, priority=Priority.BACKGROUND)
    assert time.monotonic() - began < 1.0
    assert client.get_project_status(project_id, priority=Priority.INTERACTIVE) == "completed"  # the reserve
    assert fake_reap.count("GET", "get-project-status") == 4
    client.close()


def test_shared_field_limits_follow_the_strictest_target() -> None:
    assert description_limit({Platform.YOUTUBE, Platform.TIKTOK}) == (1000, "Reap")
    assert description_limit({Platform.X, Platform.YOUTUBE}) == (280, "X")
    assert field_errors("t", "ok", [], {Platform.INSTAGRAM}) == {}
    assert TITLE in field_errors("<b>", "ok", [], {Platform.YOUTUBE})
    assert TITLE not in field_errors("<b>", "ok", [], {Platform.LINKEDIN})
    assert TAGS in field_errors("t", "ok", ["x" * 300, "y" * 300], {Platform.YOUTUBE})
    assert parse_tags(" a, B ,, b,c ") == ["a", "B", "c"]
    assert utf16_length("🎉") == 2


# -- untrusted text --------------------------------------------------------------------------------


def test_reap_account_names_and_outcomes_reach_slack_only_as_text(start: Start, fake_reap: FakeReap) -> None:
    hostile = "<!channel> <@U_EVIL> <!subteam^S0EVIL> & <https://evil.example|log in>"
    fake_reap.add_integration("youtube", f"Channel {hostile}")
    fake_reap.add_integration("tiktok", f"TT {hostile}")
    reap = start()
    _, (post_id, other_id) = reap.carded([{"title": "Title & more", "caption": "Caption & more"},
                                          {"title": f"T {hostile}"[:90], "caption": f"C {hostile}"}])
    shown = reap.card_text(other_id)
    for expected in (f"Channel {hostile}", f"TT {hostile}", f"T {hostile}"[:90], f"C {hostile}"):
        assert expected in shown  # readable, as text
    reap.open_edit(other_id)

    # Outcomes too: a hostile refusal, then per-account results with a hostile URL.
    fake_reap.fail_next("POST", "publish-clip", 400, message=f"Refused {hostile}")
    reap.slack.click(ActionId.PUBLISH, post_id)
    wait_until(lambda: reap.told("Refused"), message="refusal")
    reap.slack.click(ActionId.PUBLISH, post_id)
    wait_until(lambda: bool(reap.draft(post_id).reap_post_id), message="handed over")
    fake_reap.finish_post(reap.draft(post_id).reap_post_id or "", failed=["tiktok"],
                          urls={"youtube": "https://youtube.com/shorts/<!channel>"})
    reap.fast_forward(REFRESH_POST)
    wait_until(lambda: reap.status(post_id) == "published", message="published")
    reap.app.settle()
    assert "TikTok failed" in reap.card_text(post_id)
    assert live_markup_problems(reap.fake_slack) == []
