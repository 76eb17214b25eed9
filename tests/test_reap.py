"""Reap as the second provider, end to end: the real app over HTTP against fake Slack and fake Reap.

Drafts come from completed projects (command or webhook), edits stay local and are validated per
target platform, Publish hands the clip to Reap once and polls the outcome, Schedule is held by
Greenlight until a durable job hands it over (once, across restarts), Cancel works only before
the hand-off, and every Reap call goes through one 10-per-minute budget.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select

from bot.db import session_scope
from bot.domain import Platform
from bot.jobs import enqueue
from bot.models import Job, Post, WebhookEvent, utcnow
from bot.providers.budget import Priority, RateBudget
from bot.providers.errors import ApiBadRequest, ApiNotFound, ApiRateLimited, ApiUnauthorized, ApiUnavailable
from bot.providers.reap.client import ReapClient, error_for
from bot.services.reap import CANCEL_NOTE, REAP_HANDOFF, REAP_POLL, REAP_PROJECT, ReapService
from bot.slack.forms import utf16_length
from bot.slack.ids import ActionId, Field, ViewId
from bot.slack.reap import description_limit, field_errors, parse_reap_edit, parse_tags
from tests.fakes.reap import FakeReap
from tests.fakes.slack import FakeSlack
from tests.fakes.slack import text_of as _raw_text_of
from tests.harness import CHANNEL, Greenlight, SlackDriver, base_env, wait_until

WEBHOOK_TOKEN = "reap-hook-7f3a9c2e5b8d4f1a"


# -- fixtures and helpers ------------------------------------------------------------------------


@pytest.fixture
def fake_reap() -> Iterator[FakeReap]:
    """A fake Reap with a roomy budget (tests that are about the limit lower it)."""
    with FakeReap(rate_limit_per_minute=100) as fake:
        yield fake


def tune(app: Greenlight, **attrs: Any) -> ReapService:
    """Shorten the Reap service's waits for tests (the defaults are tens of seconds)."""
    service: ReapService = app.services.extra["reap_service"]
    # Fast enough for tests, slow enough not to use up the per-minute budget while a test runs.
    service.poll_seconds = 0.5
    for name, value in attrs.items():
        setattr(service, name, value)
    return service


@pytest.fixture
def make_reap_app(
    fake_slack: FakeSlack, fake_reap: FakeReap, database_url: str
) -> Iterator[Callable[..., Greenlight]]:
    """Start Greenlight with only Reap enabled: `make_reap_app(REAP_INTEGRATIONS="...")`."""
    started: list[Greenlight] = []

    def start(**overrides: str) -> Greenlight:
        env = base_env(
            fake_slack, None, database_url,
            REAP_API_KEY=fake_reap.api_key, REAP_API_URL=fake_reap.url, REAP_WEBHOOK_TOKEN=WEBHOOK_TOKEN,
            REAP_REQUESTS_PER_MINUTE="100",
        )
        env.update(overrides)
        app = Greenlight(env).start()
        tune(app)
        started.append(app)
        return app

    yield start
    for app in started:
        app.stop()


def restart(app: Greenlight, **attrs: Any) -> Greenlight:
    """A brand-new process on the same database (tuned like the first)."""
    app.restart()
    tune(app, **attrs)
    return app


def text_of(obj: Any) -> str:
    """What a person sees, with Slack's &amp;/&lt;/&gt; escapes undone."""
    return _raw_text_of(obj).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def command(slack: SlackDriver, fake_slack: FakeSlack, text: str) -> str:
    """Run `/greenlight <text>` and return what the app answered through the response URL."""
    response, url = slack.command(text)
    assert response.status_code == 200
    wait_until(lambda: bool(fake_slack.responses(url)), message=f"an answer to /greenlight {text}")
    return str(fake_slack.responses(url)[-1].get("text", ""))


def reap_posts(app: Greenlight) -> list[Post]:
    with Session(app.services.engine) as session:
        rows = list(session.exec(select(Post).where(Post.provider == "reap").order_by(col(Post.id))).all())
        for row in rows:
            session.expunge(row)
        return rows


def row(app: Greenlight, post_id: int) -> Post:
    with Session(app.services.engine) as session:
        post = session.get(Post, post_id)
        assert post is not None
        session.expunge(post)
        return post


def card_text(app: Greenlight, fake_slack: FakeSlack, post_id: int) -> str:
    post = row(app, post_id)
    assert post.message_ts, "card was never posted"
    message = fake_slack.message(CHANNEL, post.message_ts)
    assert message is not None
    return text_of(message)


def thread(app: Greenlight, fake_slack: FakeSlack, post_id: int) -> list[str]:
    post = row(app, post_id)
    assert post.message_ts
    return [text_of(m) for m in fake_slack.replies(CHANNEL, post.message_ts)]


def jobs(app: Greenlight, kind: str) -> list[Job]:
    with Session(app.services.engine) as session:
        found = list(session.exec(select(Job).where(Job.kind == kind).order_by(col(Job.id))).all())
        for job in found:
            session.expunge(job)
        return found


def fast_forward(app: Greenlight, kind: str) -> None:
    """Make pending jobs of `kind` due now (time passing, without waiting for it)."""
    with session_scope(app.services.engine) as session:
        session.execute(
            update(Job)
            .where(col(Job.kind) == kind, col(Job.status) == "pending")
            .values(run_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    app.services.runner.wake()


def status_of(app: Greenlight, post_id: int) -> str:
    return row(app, post_id).status


def carded_project(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_reap: FakeReap, clips: int = 1
) -> tuple[str, list[int]]:
    """A completed project imported through the command; returns (project id, our post ids)."""
    project_id = fake_reap.add_project("completed", clips=clips)
    assert "Posted" in command(slack, fake_slack, f"reap {project_id}")
    app.settle()
    ids = [p.id for p in reap_posts(app) if p.project_id == project_id]
    assert len(ids) == clips
    return project_id, [i for i in ids if i is not None]


def schedule(slack: SlackDriver, post_id: int, when: int) -> None:
    slack.click(ActionId.SCHEDULE, post_id)
    view = slack.latest_view(ViewId.SCHEDULE, post_id=post_id)
    response = slack.submit(view, values={Field.WHEN: {"type": "datetimepicker", "selected_date_time": when}})
    assert response.status_code == 200 and response.text in ("", "{}"), response.text


def checked(*values: str) -> dict[str, Any]:
    return {"type": "checkboxes", "selected_options": [{"value": v} for v in values]}


def typed(value: str) -> dict[str, Any]:
    return {"type": "plain_text_input", "value": value}


def chosen(value: str) -> dict[str, Any]:
    return {"type": "static_select", "selected_option": {"value": value}}


# -- drafts -----------------------------------------------------------------------------------------


def test_completed_project_becomes_one_card_per_clip_and_only_once(
    make_reap_app: Callable[..., Greenlight], fake_reap: FakeReap, fake_slack: FakeSlack
) -> None:
    yt = fake_reap.add_integration("youtube", "My Channel")
    tt = fake_reap.add_integration("tiktok", "Greenlight TT")
    fake_reap.add_integration("instagram", "Old IG", active=False)
    project_id = fake_reap.add_project("completed", clips=[
        {"title": "Why cold brew wins", "caption": "Cold brew, explained in 40 seconds #coffee"},
        {"title": "Grinder myths", "caption": "Burr vs blade: the truth"},
        {"title": "Water matters", "caption": "Your water is half your coffee"},
    ])
    fake_reap.max_page_size = 2  # the clips come in two pages
    app = make_reap_app()
    slack = SlackDriver(app, fake_slack)

    answer = command(slack, fake_slack, f"reap {project_id}")
    assert "Posted 3 drafts" in answer and "YouTube · My Channel" in answer and "TikTok · Greenlight TT" in answer
    app.settle()
    assert fake_reap.count("GET", "get-project-clips") == 2

    posts = reap_posts(app)
    assert [p.external_id for p in posts] == [f"{project_id}:{c}" for c in fake_reap.clip_ids(project_id)]
    first = posts[0]
    assert first.status == "draft" and first.platform == "youtube" and first.project_id == project_id
    assert first.content == {"caption": "Cold brew, explained in 40 seconds #coffee", "title": "Why cold brew wins"}
    assert first.extra["targets"] == [yt, tt]
    assert first.extra["target_labels"] == ["YouTube · My Channel", "TikTok · Greenlight TT"]
    assert first.extra["tags"] == [] and set(first.extra["settings"]) == {"youtube", "tiktok"}

    assert len(fake_slack.messages(CHANNEL)) == 3
    assert first.id is not None
    shown = card_text(app, fake_slack, first.id)
    for expected in ("YouTube · My Channel", "TikTok · Greenlight TT", "Why cold brew wins",
                     "Cold brew, explained in 40 seconds #coffee", "No tags",
                     "YouTube: Public · not made for kids", "TikTok: Everyone · comments on", CANCEL_NOTE):
        assert expected in shown, expected
    assert "Old IG" not in shown  # inactive accounts are not targets
    assert "Category" not in shown and "Edit before publishing" not in shown
    assert fake_reap.calls("POST") == []  # nothing is sent to Reap until someone publishes

    again = command(slack, fake_slack, f"reap {project_id}")
    assert "Nothing new" in again
    app.settle()
    assert len(fake_slack.messages(CHANNEL)) == 3 and len(reap_posts(app)) == 3


def test_processing_project_is_refused_then_carded_once_it_completes(
    make_reap_app: Callable[..., Greenlight], fake_reap: FakeReap, fake_slack: FakeSlack
) -> None:
    fake_reap.add_integration("youtube", "My Channel")
    project_id = fake_reap.add_project("processing", clips=2)
    app = make_reap_app()
    slack = SlackDriver(app, fake_slack)

    answer = command(slack, fake_slack, f"reap {project_id}")
    assert "still processing" in answer
    app.settle()
    assert reap_posts(app) == [] and fake_slack.messages(CHANNEL) == []
    assert fake_reap.count("GET", "get-project-clips") == 0

    # Greenlight keeps checking; once Reap has finished, the next check cards the clips.
    fake_reap.set_project_status(project_id, "completed")
    fast_forward(app, REAP_PROJECT)
    wait_until(lambda: len(reap_posts(app)) == 2, message="clips carded after completion")
    app.settle()
    assert len(fake_slack.messages(CHANNEL)) == 2

    failed = fake_reap.add_project("failed", clips=0)
    assert "failed" in command(slack, fake_slack, f"reap {failed}")


def test_reap_integrations_setting_picks_the_targets(
    make_reap_app: Callable[..., Greenlight], fake_reap: FakeReap, fake_slack: FakeSlack
) -> None:
    fake_reap.add_integration("youtube", "My Channel")
    li = fake_reap.add_integration("linkedin", "Acme Inc")
    app = make_reap_app(REAP_INTEGRATIONS=f"{li},not-an-integration")
    slack = SlackDriver(app, fake_slack)
    project_id = fake_reap.add_project("completed", clips=1)
    answer = command(slack, fake_slack, f"reap {project_id}")
    assert "LinkedIn · Acme Inc" in answer and "`not-an-integration`" in answer
    app.settle()
    (post,) = reap_posts(app)
    assert post.extra["targets"] == [li] and post.platform == "linkedin"
    # Every active account is still offered in the edit modal.
    assert {i["platform"] for i in post.extra["integrations"]} == {"youtube", "linkedin"}


# -- webhook ----------------------------------------------------------------------------------------


def test_webhook_needs_the_token_and_is_only_a_hint(
    make_reap_app: Callable[..., Greenlight], fake_reap: FakeReap, fake_slack: FakeSlack
) -> None:
    fake_reap.add_integration("youtube", "My Channel")
    project_id = fake_reap.add_project("completed", clips=2)
    app = make_reap_app()
    body = json.dumps({"projectId": project_id, "projectType": "clipping", "source": "Upload",
                       "status": "completed"}).encode()

    def deliver(token: str, payload: bytes) -> httpx.Response:
        return httpx.post(f"{app.url}/webhooks/reap/{token}", content=payload,
                          headers={"content-type": "application/json"}, timeout=10)

    for wrong in ("wrong-token-0000000000", WEBHOOK_TOKEN[:-1], WEBHOOK_TOKEN + "x", WEBHOOK_TOKEN.upper()):
        assert deliver(wrong, body).status_code == 404
    app.settle()
    with Session(app.services.engine) as session:
        assert session.exec(select(WebhookEvent)).all() == []
    assert fake_reap.calls() == [] and reap_posts(app) == []

    # Reap's creation-time validation: a dummy payload must get 200 with an empty body.
    ping = deliver(WEBHOOK_TOKEN, b'{"test": true}')
    assert ping.status_code == 200 and ping.content == b""

    fake_reap.delay_next("GET", "get-project-status", 1.0)
    response = deliver(WEBHOOK_TOKEN, body)
    assert response.status_code == 200 and response.content == b""
    assert reap_posts(app) == []  # answered before the work: the import runs as a job
    wait_until(lambda: len(reap_posts(app)) == 2, message="clips carded from the webhook")
    app.settle()
    assert len(fake_slack.messages(CHANNEL)) == 2
    assert fake_reap.count("GET", "get-project-status") == 1

    # A redelivery changes nothing and costs no Reap request.
    assert deliver(WEBHOOK_TOKEN, body).status_code == 200
    app.settle()
    assert fake_reap.count("GET", "get-project-status") == 1 and len(reap_posts(app)) == 2

    # The body is never trusted: Reap says this project is still processing, so nothing is carded.
    liar = fake_reap.add_project("processing", clips=1)
    forged = json.dumps({"projectId": liar, "status": "completed"}).encode()
    assert deliver(WEBHOOK_TOKEN, forged).status_code == 200
    wait_until(lambda: fake_reap.count("GET", "get-project-status") >= 2, message="status confirmed")
    app.settle()
    assert [p for p in reap_posts(app) if p.project_id == liar] == []


# -- edit -------------------------------------------------------------------------------------------


def test_edit_is_validated_for_the_chosen_targets_and_stays_local(
    make_reap_app: Callable[..., Greenlight], fake_reap: FakeReap, fake_slack: FakeSlack
) -> None:
    yt = fake_reap.add_integration("youtube", "My Channel")
    tt = fake_reap.add_integration("tiktok", "Greenlight TT")
    li = fake_reap.add_integration("linkedin", "Acme Inc")
    xx = fake_reap.add_integration("x", "Acme on X")
    app = make_reap_app(REAP_INTEGRATIONS=f"{yt},{tt}")
    slack = SlackDriver(app, fake_slack)
    _, (post_id,) = carded_project(app, slack, fake_slack, fake_reap)
    calls_after_import = len(fake_reap.calls())

    slack.click(ActionId.EDIT, post_id)
    view = slack.latest_view(ViewId.REAP_EDIT, post_id=post_id)
    labels = json.dumps(view)
    assert "Acme on X" in labels and "Greenlight TT" in labels  # every active account is offered

    long_title = "A" * 150

    def errors(**values: dict[str, Any]) -> dict[str, str]:
        response = slack.submit(view, values={str(k): v for k, v in values.items()})
        body = response.json()
        assert body["response_action"] == "errors", body
        return dict(body["errors"])

    # YouTube is a target: 100 characters for the title.
    assert "YouTube allows 100" in errors(**{Field.TITLE: typed(long_title)})[Field.TITLE]
    # Reap's own limits apply whatever the targets.
    assert "Reap allows 250" in errors(**{Field.TITLE: typed("B" * 251), Field.TARGETS: checked(tt)})[Field.TITLE]
    assert "Reap allows 1,000" in errors(**{Field.DESCRIPTION: typed("d" * 1001)})[Field.DESCRIPTION]
    # An X target brings its 280-character limit; TikTok counts emoji twice.
    assert "X allows 280" in errors(**{Field.DESCRIPTION: typed("d" * 281), Field.TARGETS: checked(xx)})[Field.DESCRIPTION]
    emoji = errors(**{Field.DESCRIPTION: typed("🎉" * 501), Field.TARGETS: checked(tt)})[Field.DESCRIPTION]
    assert "1,002" in emoji and "emoji" in emoji
    assert "10 tags" in errors(**{Field.TAGS: typed(", ".join(f"t{i}" for i in range(11)))})[Field.TAGS]
    assert "at least one" in errors(**{Field.TARGETS: checked()})[Field.TARGETS]
    assert "title is required" in errors(**{Field.TITLE: typed("")})[Field.TITLE]
    app.settle()
    assert row(app, post_id).content_version == 1  # nothing changed

    # Without YouTube the long title is fine; settings for the new targets are taken from the form.
    response = slack.submit(view, values={
        Field.TITLE: typed(long_title),
        Field.DESCRIPTION: typed("New description 🎬"),
        Field.TAGS: typed("coffee, Brew , coffee,  "),
        Field.TARGETS: checked(tt, li),
        Field.PRIVACY: chosen("friends"),
        Field.TOGGLES: checked("disableDuet"),
        Field.LI_PRIVACY: chosen("connections"),
    })
    assert response.status_code == 200 and response.text in ("", "{}"), response.text
    app.settle()
    post = row(app, post_id)
    assert post.content == {"caption": "New description 🎬", "title": long_title}
    assert post.extra["tags"] == ["coffee", "Brew"] and post.extra["targets"] == [tt, li]
    assert post.extra["settings"]["tiktok"]["privacy"] == "friends"
    assert post.extra["settings"]["tiktok"]["disableDuet"] is True
    assert post.extra["settings"]["linkedin"] == {"privacy": "connections"}
    assert post.platform == "tiktok" and post.content_version == 2 and post.last_editor == "U_ANA"
    shown = card_text(app, fake_slack, post_id)
    for expected in ("Tags: coffee, Brew", "TikTok: Friends · comments on · duet off", "LinkedIn: Connections only",
                     "TikTok · Greenlight TT", "LinkedIn · Acme Inc", "Edited by <@U_ANA>"):
        assert expected in shown, expected
    assert "YouTube · My Channel" not in shown
    assert len(fake_reap.calls()) == calls_after_import  # edits never reach Reap

    # A settings-only edit is recorded like any other edit (and resets approvals).
    fake_slack.close_view(view["id"])
    slack.click(ActionId.EDIT, post_id)
    view = slack.latest_view(ViewId.REAP_EDIT, post_id=post_id)
    assert slack.submit(view, values={Field.TAGS: typed("coffee")}).status_code == 200
    app.settle()
    post = row(app, post_id)
    assert post.extra["tags"] == ["coffee"] and post.content_version == 3
    assert any("edited tags" in r for r in thread(app, fake_slack, post_id)), thread(app, fake_slack, post_id)


# -- publish and outcome ----------------------------------------------------------------------------


def test_publish_hands_over_once_and_polls_until_published(
    make_reap_app: Callable[..., Greenlight], fake_reap: FakeReap, fake_slack: FakeSlack
) -> None:
    yt = fake_reap.add_integration("youtube", "My Channel")
    tt = fake_reap.add_integration("tiktok", "Greenlight TT")
    fake_reap.add_integration("instagram", "Acme IG")  # offered, but not a default target
    app = make_reap_app(REAP_INTEGRATIONS=f"{yt},{tt}")
    slack = SlackDriver(app, fake_slack)
    project_id, (post_id,) = carded_project(app, slack, fake_slack, fake_reap)
    post = row(app, post_id)

    slack.click(ActionId.PUBLISH, post_id)
    wait_until(lambda: status_of(app, post_id) == "queued", message="post queued")
    (call,) = fake_reap.calls("POST", "publish-clip")
    assert call.json == {
        "projectId": project_id,
        "clipId": post.clip_id,
        "integrations": [yt, tt],
        "title": post.content["title"],
        "description": post.content["caption"],
        # Only the platforms being published to (Reap's rule), with Reap's defaults.
        "platformSettings": {
            "youtube": {"privacy": "public", "embeddable": True, "publicStats": True, "madeForKids": False},
            "tiktok": {"privacy": "public", "disableComments": False, "disableDuet": False, "disableStitch": False,
                       "brandContent": False, "brandOrganic": False},
        },
    }
    reap_post_id = row(app, post_id).extra["reap_post_id"]
    wait_until(lambda: "Queued" in card_text(app, fake_slack, post_id), message="card shows queued")
    wait_until(lambda: fake_reap.count("GET", "get-post-details") >= 2, message="polling")

    fake_reap.finish_post(reap_post_id, urls={"youtube": "https://youtube.com/shorts/abc123",
                                              "tiktok": "https://www.tiktok.com/@gl/video/42"})
    fast_forward(app, REAP_POLL)
    wait_until(lambda: status_of(app, post_id) == "published", message="published")
    app.settle()
    post = row(app, post_id)
    assert post.published_url == "https://youtube.com/shorts/abc123"
    assert post.extra["results"] == {
        "youtube": {"ok": True, "url": "https://youtube.com/shorts/abc123"},
        "tiktok": {"ok": True, "url": "https://www.tiktok.com/@gl/video/42"},
    }
    shown = card_text(app, fake_slack, post_id)
    assert "✅ YouTube: https://youtube.com/shorts/abc123" in shown
    assert "✅ TikTok: https://www.tiktok.com/@gl/video/42" in shown
    assert CANCEL_NOTE not in shown
    replies = "\n".join(thread(app, fake_slack, post_id))
    assert "Published on YouTube" in replies and "https://www.tiktok.com/@gl/video/42" in replies
    polls = fake_reap.count("GET", "get-post-details")
    app.settle()
    assert fake_reap.count("POST", "publish-clip") == 1
    assert fake_reap.count("GET", "get-post-details") == polls  # polling stopped


def test_partial_success_and_total_failure(
    make_reap_app: Callable[..., Greenlight], fake_reap: FakeReap, fake_slack: FakeSlack
) -> None:
    fake_reap.add_integration("youtube", "My Channel")
    fake_reap.add_integration("tiktok", "Greenlight TT")
    app = make_reap_app()
    slack = SlackDriver(app, fake_slack)
    _, (partial_id, failed_id) = carded_project(app, slack, fake_slack, fake_reap, clips=2)
    for post_id in (partial_id, failed_id):
        slack.click(ActionId.PUBLISH, post_id)
    wait_until(lambda: all("reap_post_id" in row(app, i).extra for i in (partial_id, failed_id)), message="handed over")

    fake_reap.finish_post(row(app, partial_id).extra["reap_post_id"], failed=["tiktok"])
    fake_reap.finish_post(row(app, failed_id).extra["reap_post_id"], failed=["youtube", "tiktok"])
    fast_forward(app, REAP_POLL)
    wait_until(lambda: status_of(app, partial_id) == "published" and status_of(app, failed_id) == "failed",
               message="outcomes recorded")
    app.settle()

    partial = row(app, partial_id)
    assert partial.extra["reap_status"] == "unresolved"
    assert partial.extra["results"]["youtube"]["ok"] is True and partial.extra["results"]["tiktok"]["ok"] is False
    shown = card_text(app, fake_slack, partial_id)
    assert "❌ TikTok failed" in shown and "Partly published: TikTok failed" in shown and "✅ YouTube:" in shown
    assert any("only in part" in r for r in thread(app, fake_slack, partial_id))

    failed = row(app, failed_id)
    assert failed.error is not None and "YouTube, TikTok" in failed.error and "Reap dashboard" in failed.error
    shown = card_text(app, fake_slack, failed_id)
    assert "Failed" in shown and "❌ YouTube failed" in shown and "❌ TikTok failed" in shown


def test_a_lost_publish_answer_is_reported_and_never_resent(
    make_reap_app: Callable[..., Greenlight], fake_reap: FakeReap, fake_slack: FakeSlack
) -> None:
    fake_reap.add_integration("youtube", "My Channel")
    app = make_reap_app()
    slack = SlackDriver(app, fake_slack)
    _, (post_id,) = carded_project(app, slack, fake_slack, fake_reap)

    fake_reap.drop_connection_next("POST", "publish-clip")  # Reap publishes, the answer never arrives
    slack.click(ActionId.PUBLISH, post_id)
    wait_until(lambda: status_of(app, post_id) == "failed", message="reported as unknown")
    app.settle()
    assert "may or may not" in (row(app, post_id).error or "")
    assert any("may or may not" in e.text for e in fake_slack.ephemerals("U_ANA"))
    restart(app)
    app.settle()
    assert fake_reap.count("POST", "publish-clip") == 1
    assert len(fake_reap.posts()) == 1


def test_a_rejected_publish_leaves_the_draft_and_says_why(
    make_reap_app: Callable[..., Greenlight], fake_reap: FakeReap, fake_slack: FakeSlack
) -> None:
    yt = fake_reap.add_integration("youtube", "My Channel")
    app = make_reap_app()
    slack = SlackDriver(app, fake_slack)
    _, (post_id,) = carded_project(app, slack, fake_slack, fake_reap)
    fake_reap.set_integration_active(yt, False)  # disconnected in Reap after the card was posted
    slack.click(ActionId.PUBLISH, post_id)
    wait_until(lambda: any("not active" in e.text for e in fake_slack.ephemerals("U_ANA")), message="refusal")
    app.settle()
    post = row(app, post_id)
    assert post.status == "draft" and post.pending_action is None and "handoff_started" not in post.extra
    assert "Reap said (400)" in fake_slack.ephemerals("U_ANA")[-1].text


def test_a_draft_that_cannot_go_out_says_so_and_is_never_sent(
    make_reap_app: Callable[..., Greenlight], fake_reap: FakeReap, fake_slack: FakeSlack
) -> None:
    fake_reap.add_integration("youtube", "My Channel")
    project_id = fake_reap.add_project("completed", clips=[{"title": "T" * 120, "caption": "fine"}])
    app = make_reap_app()
    slack = SlackDriver(app, fake_slack)
    command(slack, fake_slack, f"reap {project_id}")
    app.settle()
    (post,) = reap_posts(app)
    assert post.id is not None
    assert "Edit before publishing: Title is 120 characters; YouTube allows 100." in card_text(app, fake_slack, post.id)
    slack.click(ActionId.PUBLISH, post.id)
    wait_until(lambda: any("YouTube allows 100" in e.text for e in fake_slack.ephemerals("U_ANA")), message="refusal")
    app.settle()
    assert fake_reap.calls("POST") == [] and status_of(app, post.id) == "draft"

    slack.click(ActionId.EDIT, post.id)
    view = slack.latest_view(ViewId.REAP_EDIT, post_id=post.id)
    assert slack.submit(view, values={Field.TITLE: typed("Short title")}).status_code == 200
    app.settle()
    assert "Edit before publishing" not in card_text(app, fake_slack, post.id)


# -- schedule and cancel ----------------------------------------------------------------------------


def test_a_greenlight_held_schedule_fires_once_across_restarts(
    make_reap_app: Callable[..., Greenlight], fake_reap: FakeReap, fake_slack: FakeSlack
) -> None:
    fake_reap.add_integration("youtube", "My Channel")
    app = make_reap_app()
    slack = SlackDriver(app, fake_slack)
    _, (post_id,) = carded_project(app, slack, fake_slack, fake_reap)

    when = int(time.time()) + 3600  # inside Reap's 50-minute schedule-clips floor: Greenlight holds it
    schedule(slack, post_id, when)
    app.settle()
    post = row(app, post_id)
    assert post.status == "scheduled" and post.scheduled_at is not None and int(post.scheduled_at.timestamp()) == when
    assert fake_reap.calls("POST") == []
    (handoff,) = jobs(app, REAP_HANDOFF)
    assert handoff.status == "pending" and abs(handoff.run_at.timestamp() - when) < 2
    assert f"<!date^{when}^" in json.dumps(fake_slack.message(CHANNEL, post.message_ts or "").blocks)  # type: ignore[union-attr]

    # The process restarts before the time; the new one hands the post over when the time comes.
    shifted = timedelta(seconds=when - time.time() + 1)
    restart(app, clock=lambda: utcnow() + shifted)
    fast_forward(app, REAP_HANDOFF)
    wait_until(lambda: status_of(app, post_id) == "queued", message="handed over at the scheduled time")
    assert fake_reap.count("POST", "publish-clip") == 1

    restart(app, clock=lambda: utcnow() + shifted)
    fast_forward(app, REAP_HANDOFF)
    fake_reap.finish_post(row(app, post_id).extra["reap_post_id"])
    fast_forward(app, REAP_POLL)
    wait_until(lambda: status_of(app, post_id) == "published", message="published")
    app.settle()
    assert fake_reap.count("POST", "publish-clip") == 1
    assert [j.status for j in jobs(app, REAP_HANDOFF)] == ["done"]


def test_a_hand_off_that_died_mid_call_is_reported_not_resent(
    make_reap_app: Callable[..., Greenlight], fake_reap: FakeReap, fake_slack: FakeSlack
) -> None:
    fake_reap.add_integration("youtube", "My Channel")
    app = make_reap_app()
    slack = SlackDriver(app, fake_slack)
    _, (post_id,) = carded_project(app, slack, fake_slack, fake_reap)
    when = int(time.time()) + 3600
    schedule(slack, post_id, when)
    app.settle()
    # What a process that crashed while publish-clip was in flight leaves behind.
    with session_scope(app.services.engine) as session:
        post = session.get(Post, post_id)
        assert post is not None
        post.extra = {**post.extra, "handoff_started": utcnow().isoformat()}
    shifted = timedelta(seconds=when - time.time() + 1)
    restart(app, clock=lambda: utcnow() + shifted)
    fast_forward(app, REAP_HANDOFF)
    wait_until(lambda: status_of(app, post_id) == "failed", message="reported")
    app.settle()
    assert fake_reap.calls("POST") == []
    assert any("may or may not" in r for r in thread(app, fake_slack, post_id))


def test_cancel_before_the_hand_off_is_local(
    make_reap_app: Callable[..., Greenlight], fake_reap: FakeReap, fake_slack: FakeSlack
) -> None:
    fake_reap.add_integration("youtube", "My Channel")
    app = make_reap_app()
    slack = SlackDriver(app, fake_slack)
    _, (post_id,) = carded_project(app, slack, fake_slack, fake_reap)
    when = int(time.time()) + 3600
    schedule(slack, post_id, when)
    app.settle()
    calls_before = len(fake_reap.calls())

    slack.click(ActionId.CANCEL, post_id, user="U_BOB")
    slack.submit(slack.latest_view(ViewId.CANCEL), user="U_BOB")
    app.settle()
    assert status_of(app, post_id) == "cancelled"
    assert "Cancelled by <@U_BOB>" in card_text(app, fake_slack, post_id)
    assert len(fake_reap.calls()) == calls_before  # no API call

    # The hand-off job still fires at the time, sees the cancel, and does nothing.
    tune(app, clock=lambda: utcnow() + timedelta(seconds=when - time.time() + 1))
    fast_forward(app, REAP_HANDOFF)
    app.settle()
    assert fake_reap.calls("POST") == [] and status_of(app, post_id) == "cancelled"


def test_cancel_after_the_hand_off_is_refused_with_directions(
    make_reap_app: Callable[..., Greenlight], fake_reap: FakeReap, fake_slack: FakeSlack
) -> None:
    fake_reap.add_integration("youtube", "My Channel")
    app = make_reap_app()
    slack = SlackDriver(app, fake_slack)
    _, (post_id,) = carded_project(app, slack, fake_slack, fake_reap)
    slack.click(ActionId.PUBLISH, post_id)
    wait_until(lambda: status_of(app, post_id) == "queued", message="queued")

    # The card offers no Cancel any more; a stale card's click is refused before any modal opens.
    slack.click(ActionId.CANCEL, post_id)
    wait_until(lambda: any("Reap's dashboard" in e.text for e in fake_slack.ephemerals("U_ANA")), message="refusal")
    assert not [v for v in fake_slack.open_views() if v.get("callback_id") == ViewId.CANCEL]
    assert row(app, post_id).pending_action is None
    assert status_of(app, post_id) == "queued"
    assert "can no longer be changed or cancelled from Slack" in fake_slack.ephemerals("U_ANA")[-1].text


# -- rate limiting ----------------------------------------------------------------------------------


def _seed_polls(app: Greenlight, fake_reap: FakeReap, count: int) -> list[int]:
    """`count` posts already handed to Reap and being polled (no budget spent to get there)."""
    yt = fake_reap.add_integration("youtube", "My Channel")
    project_id = fake_reap.add_project("completed", clips=count)
    ids: list[int] = []
    with session_scope(app.services.engine) as session:
        for clip_id in fake_reap.clip_ids(project_id):
            reap_post_id = fake_reap.add_post(project_id, clip_id, [yt])
            post = Post(
                provider="reap", external_id=f"{project_id}:{clip_id}", clip_id=clip_id, project_id=project_id,
                platform="youtube", status="queued", content={"caption": "c", "title": "t"},
                extra={"targets": [yt], "integrations": [{"id": yt, "platform": "youtube", "label": "YouTube · x"}],
                       "reap_post_id": reap_post_id, "handed_off_at": utcnow().isoformat()},
                channel_id=CHANNEL,
            )
            session.add(post)
            session.flush()
            assert post.id is not None
            ids.append(post.id)
            enqueue(session, REAP_POLL, post_id=post.id, dedupe_key=f"reap-poll:{post.id}")
    app.services.runner.wake()
    return ids


def test_polling_load_never_exceeds_the_per_minute_budget(
    make_reap_app: Callable[..., Greenlight], fake_reap: FakeReap, fake_slack: FakeSlack
) -> None:
    fake_reap.rate_limit_per_minute = 4
    app = make_reap_app(REAP_REQUESTS_PER_MINUTE="4")
    service = tune(app, poll_seconds=0.05)
    _seed_polls(app, fake_reap, 8)
    # Background work may use 3 of the 4 slots; one stays free for a click.
    wait_until(lambda: fake_reap.count("GET", "get-post-details") == 3, message="first polls")
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:  # eight polls every 50 ms would be ~240 requests
        assert len(fake_reap.calls()) <= 4
        time.sleep(0.05)
    assert fake_reap.rate_limited_count == 0
    assert len(fake_reap.calls()) == 3
    assert service.client.budget.remaining() == 1
    assert all(j.status == "pending" for j in jobs(app, REAP_POLL))  # waiting, not failed


def test_a_server_side_limit_is_honoured_without_hammering(
    make_reap_app: Callable[..., Greenlight], fake_reap: FakeReap, fake_slack: FakeSlack
) -> None:
    # Another client shares the key: Reap's window fills before ours does.
    fake_reap.rate_limit_per_minute = 3
    app = make_reap_app(REAP_REQUESTS_PER_MINUTE="60")
    tune(app, poll_seconds=0.05)
    _seed_polls(app, fake_reap, 8)
    wait_until(lambda: fake_reap.count("GET", "get-post-details") >= 3, message="first polls")
    time.sleep(1.5)
    # X-RateLimit-Remaining: 0 / Retry-After stop every worker until the window resets.
    assert fake_reap.rate_limited_count <= app.settings.worker_threads
    assert len(fake_reap.calls()) <= 3 + app.settings.worker_threads


# -- client and form units --------------------------------------------------------------------------


def _client(fake: FakeReap, per_minute: int = 100, key: str | None = None) -> ReapClient:
    budget = RateBudget(per_minute, key="reap-test")
    client = ReapClient.build(base_url=fake.url, api_key=key or fake.api_key, budget=budget, timeout=2.0)
    client._sleep = lambda _s: None  # no real back-off sleeps in unit tests
    return client


def test_client_reads_pages_and_explains_errors(fake_reap: FakeReap) -> None:
    fake_reap.max_page_size = 2
    project_id = fake_reap.add_project("completed", clips=5)
    client = _client(fake_reap)
    assert [c.id for c in client.get_project_clips(project_id)] == fake_reap.clip_ids(project_id)
    assert fake_reap.count("GET", "get-project-clips") == 3
    assert all(c.headers["authorization"] == f"Bearer {fake_reap.api_key}" for c in fake_reap.calls())

    with pytest.raises(ApiNotFound) as missing:
        client.get_project_status("nope")
    assert "404" in missing.value.user_message and "Project not found" in missing.value.user_message

    with pytest.raises(ApiUnauthorized) as denied:
        _client(fake_reap, key="wrong").get_integrations()
    assert "401" in denied.value.user_message and "REAP_API_KEY" in denied.value.user_message
    assert "wrong" not in denied.value.user_message

    fake_reap.fail_next("GET", "get-project-status", 503, message="x" * 5000)
    assert client.get_project_status(project_id) == "completed"  # reads are retried

    fake_reap.add_integration("youtube")
    fake_reap.fail_next("POST", "publish-clip", 502)
    with pytest.raises(ApiUnavailable) as unknown:
        client.publish_clip(project_id=project_id, clip_id=fake_reap.clip_ids(project_id)[0],
                            integrations=["x"], title=None, description="d", tags=[], platform_settings={})
    assert unknown.value.sent and fake_reap.count("POST", "publish-clip") == 1  # never blindly retried

    with pytest.raises(ApiBadRequest) as bad:
        client.publish_clip(project_id=project_id, clip_id=fake_reap.clip_ids(project_id)[0],
                            integrations=["missing"], title="t" * 251, description="d", tags=[], platform_settings={})
    assert "Reap said (400)" in bad.value.user_message
    client.close()


def test_client_honours_retry_after_and_rate_limit_reset() -> None:
    now = time.time()
    request = httpx.Request("GET", "https://reap.test/get-project-status")
    limited = error_for(httpx.Response(429, headers={"Retry-After": "17"}, request=request, text="slow down"))
    assert isinstance(limited, ApiRateLimited) and limited.retry_after == 17
    reset = error_for(httpx.Response(429, headers={"X-RateLimit-Reset": str(int(now) + 30)}, request=request))
    assert isinstance(reset, ApiRateLimited) and 25 <= reset.retry_after <= 31
    long_text = error_for(httpx.Response(500, request=request, text="boom " * 200))
    assert isinstance(long_text, ApiUnavailable) and len(long_text.user_message) < 260


def test_background_calls_never_wait_for_the_budget(fake_reap: FakeReap) -> None:
    from bot.providers.budget import BudgetExhausted

    project_id = fake_reap.add_project("completed", clips=1)
    client = _client(fake_reap, per_minute=4)
    for _ in range(3):
        client.get_project_status(project_id, priority=Priority.BACKGROUND)
    with pytest.raises(BudgetExhausted):
        client.get_project_status(project_id, priority=Priority.BACKGROUND)
    assert client.get_project_status(project_id, priority=Priority.INTERACTIVE) == "completed"  # the reserve
    assert fake_reap.count("GET", "get-project-status") == 4
    client.close()


def test_shared_field_limits_follow_the_strictest_target() -> None:
    assert description_limit({Platform.YOUTUBE, Platform.TIKTOK}) == (1000, "Reap")
    assert description_limit({Platform.X, Platform.YOUTUBE}) == (280, "X")
    assert field_errors("t", "ok", [], {Platform.INSTAGRAM}) == {}
    assert Field.TITLE.value in field_errors("<b>", "ok", [], {Platform.YOUTUBE})
    assert Field.TITLE.value not in field_errors("<b>", "ok", [], {Platform.LINKEDIN})
    assert Field.TAGS.value in field_errors("t", "ok", ["x" * 300, "y" * 300], {Platform.YOUTUBE})
    assert parse_tags(" a, B ,, b,c ") == ["a", "B", "c"]
    assert utf16_length("🎉") == 2


def test_parse_reap_edit_ignores_accounts_it_did_not_offer() -> None:
    extra = {"integrations": [{"id": "i1", "platform": "linkedin", "label": "LinkedIn · A"}],
             "targets": ["i1"], "settings": {"linkedin": {"privacy": "public"}}}
    state = {
        Field.TITLE.value: {Field.TITLE.value: typed("")},
        Field.DESCRIPTION.value: {Field.DESCRIPTION.value: typed("hello")},
        Field.TARGETS.value: {Field.TARGETS.value: checked("i1", "forged")},
        Field.LI_PRIVACY.value: {Field.LI_PRIVACY.value: chosen("connections")},
    }
    form = parse_reap_edit(state, extra)
    assert not isinstance(form, dict)
    assert form.targets == ["i1"] and form.settings["linkedin"]["privacy"] == "connections"


# -- untrusted text --------------------------------------------------------------------------------


def test_reap_account_names_and_outcomes_reach_slack_only_as_text(
    make_reap_app: Callable[..., Greenlight], fake_reap: FakeReap, fake_slack: FakeSlack
) -> None:
    from tests.harness import live_markup_problems

    hostile = "<!channel> <@U_EVIL> <!subteam^S0EVIL> & <https://evil.example|log in>"
    fake_reap.add_integration("youtube", f"Channel {hostile}")
    app = make_reap_app()
    slack = SlackDriver(app, fake_slack)
    project_id = fake_reap.add_project("completed", clips=[{"title": f"Title {hostile}"[:90],
                                                           "caption": f"Caption {hostile}"}])
    assert "Posted" in command(slack, fake_slack, f"reap {project_id}")
    app.settle()
    (post,) = reap_posts(app)
    assert post.id is not None
    shown = card_text(app, fake_slack, post.id)
    assert f"Channel {hostile}" in shown  # readable, as text
    slack.click(ActionId.EDIT, post.id)
    slack.latest_view(ViewId.REAP_EDIT, post_id=post.id)
    assert live_markup_problems(fake_slack) == []
