"""End to end: a clip's video becomes playable in its thread, once, whatever goes wrong on the way.

Choppity renders the clip (`POST /v1/clips/:id/renders`, then `GET /v1/renders/:id` no more often
than every 5 s) and hands out a signed MP4 URL; Reap hands out the clip's `clipUrl`. Greenlight
streams the file through Slack's external upload flow into the clip's thread; over the size cap,
or when uploading keeps failing, the clip's message links the video instead and says why. Real
HTTP throughout: the fake Choppity/Reap serve real bytes, the fake Slack checks the upload's length
and hashes what arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bench.common import peak_rss_kib
from bot.domain import PreviewState
from bot.models import Clip
from bot.services.previews import PREVIEW_JOB
from tests.fakes.choppity import FakeChoppity, render_digest
from tests.fakes.reap import FakeReap
from tests.fakes.slack import FakeSlack, Message
from tests.harness import (
    CHANNEL,
    Greenlight,
    SlackDriver,
    base_env,
    cards_in_channel,
    jobs,
    text_of,
    wait_until,
)
from tests.test_e2e_processes import AppProcess, launch  # noqa: F401 - the fixture
from tests.test_e2e_review import Clock

PLATFORMS = ("youtube", "tiktok", "instagram", "linkedin")
MB = 2**20


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def choppity(clock: Clock) -> Iterator[FakeChoppity]:
    """A fake Choppity on the test's clock, whose renders take 9 s (1 queued, 8 processing)."""
    with FakeChoppity(clock=lambda: clock().timestamp(), render_timing=(1.0, 8.0), render_size=3 * MB) as fake:
        yield fake


Start = Callable[..., tuple[Greenlight, SlackDriver]]


@pytest.fixture
def start(fake_slack: FakeSlack, choppity: FakeChoppity, database_url: str, clock: Clock) -> Iterator[Start]:
    started: list[Greenlight] = []

    def run(**settings: str) -> tuple[Greenlight, SlackDriver]:
        env = base_env(fake_slack, choppity, database_url, **{"CLIP_PREVIEW": "upload", **settings})
        app = Greenlight(env, clock=clock).start()
        started.append(app)
        return app, SlackDriver(app, fake_slack)

    yield run
    for app in started:
        app.stop()


def clip_in(app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, choppity: FakeChoppity,
            platforms: tuple[str, ...] = PLATFORMS) -> str:
    before = len(cards_in_channel(fake_slack))
    ref = choppity.add_clip(platforms=platforms)
    slack.command(f"clip {ref}")
    wait_until(lambda: len(cards_in_channel(fake_slack)) == before + len(platforms), timeout=20, message="every card")
    return ref


def clip_row(app: Greenlight, ref: str) -> Clip:
    with Session(app.services.engine) as session:
        row = session.exec(select(Clip).where(Clip.ref == ref)).one()
        session.expunge(row)
        return row


def settled(app: Greenlight, ref: str, clock: Clock, *, step: float = 6.0, timeout: float = 60.0) -> Clip:
    """Move the app's clock on (renders take their time, retries wait) until the preview settles."""
    final = {PreviewState.UPLOADED, PreviewState.LINKED, PreviewState.FAILED, PreviewState.OFF}

    def done() -> bool:
        if PreviewState(clip_row(app, ref).preview_state) in final:
            return True
        clock.offset += timedelta(seconds=step)
        app.services.runner.wake()
        return False

    wait_until(done, timeout=timeout, message="the preview to settle")
    app.settle()
    return clip_row(app, ref)


def clip_message(fake_slack: FakeSlack, row: Clip) -> Message:
    assert row.message_ts is not None
    message = fake_slack.message(CHANNEL, row.message_ts)
    assert message is not None
    return message


def videos_in_thread(fake_slack: FakeSlack, row: Clip) -> list[Message]:
    assert row.message_ts is not None
    return [m for m in fake_slack.replies(CHANNEL, row.message_ts) if m.files]


# -- Choppity: render, then upload ---------------------------------------------------------------------


def test_a_choppity_clip_is_rendered_and_uploaded_into_its_thread_once(
    start: Start, fake_slack: FakeSlack, choppity: FakeChoppity, clock: Clock
) -> None:
    app, slack = start()
    ref = clip_in(app, slack, fake_slack, choppity)
    wait_until(lambda: bool(choppity.render_polls(ref)), message="the first render poll")
    row = settled(app, ref, clock)

    assert row.preview_state == PreviewState.UPLOADED.value
    [video] = videos_in_thread(fake_slack, row)
    [shared] = video.files
    upload = fake_slack.file(shared["id"])
    assert upload is not None and upload.completed and upload.thread_ts == row.message_ts
    # The bytes Choppity rendered, all of them, exactly once, even though the clip has four drafts.
    assert upload.size == 3 * MB and upload.sha256 == render_digest(ref, 3 * MB)
    assert len(fake_slack.files()) == 1 and fake_slack.count("files.completeUploadExternal", ok=True) == 1
    assert choppity.render(ref)["starts"] == 1
    assert "watch it before you decide" in text_of(clip_message(fake_slack, row))
    # Polled no more often than every 5 s (fake clock), and well inside the 60 requests a minute.
    polls = choppity.render_polls(ref)
    assert len(polls) >= 2 and all(b - a >= 5.0 for a, b in zip(polls, polls[1:], strict=False))
    assert [j.status for j in jobs(app, PREVIEW_JOB)] == ["done"]


@pytest.mark.parametrize("how", ["500", "drop"])
def test_a_lost_answer_to_the_completing_call_never_shows_the_video_twice(
    start: Start, fake_slack: FakeSlack, choppity: FakeChoppity, clock: Clock, how: str
) -> None:
    # Slack applies files.completeUploadExternal (the video appears) but the answer never arrives.
    fake_slack.lose_answer_next("files.completeUploadExternal", how=how)
    app, slack = start()
    ref = clip_in(app, slack, fake_slack, choppity, platforms=("youtube", "tiktok"))
    row = settled(app, ref, clock)

    assert row.preview_state == PreviewState.UPLOADED.value
    assert len(videos_in_thread(fake_slack, row)) == 1
    assert fake_slack.count("files.completeUploadExternal") == 1
    assert row.preview["file_id"] == videos_in_thread(fake_slack, row)[0].files[0]["id"]


def test_over_the_size_cap_the_clip_links_the_video_and_says_why(
    start: Start, fake_slack: FakeSlack, choppity: FakeChoppity, clock: Clock
) -> None:
    app, slack = start(CLIP_PREVIEW_MAX_MB="1")
    ref = clip_in(app, slack, fake_slack, choppity, platforms=("youtube",))
    row = settled(app, ref, clock)

    assert row.preview_state == PreviewState.LINKED.value
    assert fake_slack.files() == [] and fake_slack.count("files.getUploadURLExternal") == 0
    shown = text_of(clip_message(fake_slack, row))
    assert "Watch the video" in shown and "(3.0 MB) is over the 1 MB upload limit" in shown
    assert "link works until" in shown  # Choppity's URL is signed for an hour
    link = row.preview["link"]
    # Linked as is (only `&` escaped, as mrkdwn wants), never cut inside its markup.
    assert link.startswith(choppity.url.split("/v1")[0])
    assert f"<{link.replace('&', '&amp;')}|Watch the video>" in str(clip_message(fake_slack, row).blocks)


def test_uploads_that_keep_failing_end_in_a_link_with_the_reason(
    start: Start, fake_slack: FakeSlack, choppity: FakeChoppity, clock: Clock
) -> None:
    fake_slack.fail_upload_next(500, times=2)
    fake_slack.fail_upload_next(0, times=1, drop_after_bytes=100_000)
    app, slack = start()
    ref = clip_in(app, slack, fake_slack, choppity, platforms=("youtube",))
    row = settled(app, ref, clock)

    assert row.preview_state == PreviewState.LINKED.value
    assert fake_slack.count("files.completeUploadExternal") == 0 and videos_in_thread(fake_slack, row) == []
    assert "couldn't upload it to Slack" in text_of(clip_message(fake_slack, row))


def test_one_failed_upload_is_retried_and_the_video_still_arrives(
    start: Start, fake_slack: FakeSlack, choppity: FakeChoppity, clock: Clock
) -> None:
    fake_slack.fail_upload_next(503, times=1)
    choppity.cut_next_download(after_bytes=MB)  # and the first download breaks off midway
    app, slack = start()
    ref = clip_in(app, slack, fake_slack, choppity, platforms=("youtube",))
    row = settled(app, ref, clock)

    assert row.preview_state == PreviewState.UPLOADED.value
    [video] = videos_in_thread(fake_slack, row)
    upload = fake_slack.file(video.files[0]["id"])
    assert upload is not None and upload.sha256 == render_digest(ref, 3 * MB)


def test_a_failed_render_is_said_on_the_clip(
    start: Start, fake_slack: FakeSlack, choppity: FakeChoppity, clock: Clock
) -> None:
    choppity.fail_next_render("Render failed: <!channel> source missing")
    app, slack = start()
    ref = clip_in(app, slack, fake_slack, choppity, platforms=("youtube",))
    row = settled(app, ref, clock)

    assert row.preview_state == PreviewState.FAILED.value
    shown = text_of(clip_message(fake_slack, row))
    assert "No video preview: Choppity couldn't render the clip" in shown
    assert "<!channel>" not in str(clip_message(fake_slack, row).blocks)  # escaped, never a ping
    assert fake_slack.files() == []


def test_link_mode_links_without_uploading_and_off_mode_does_nothing(
    start: Start, fake_slack: FakeSlack, choppity: FakeChoppity, clock: Clock
) -> None:
    app, slack = start(CLIP_PREVIEW="link")
    ref = clip_in(app, slack, fake_slack, choppity, platforms=("youtube",))
    row = settled(app, ref, clock)
    assert row.preview_state == PreviewState.LINKED.value and fake_slack.files() == []
    assert "Watch the video" in text_of(clip_message(fake_slack, row))
    app.stop()

    app, slack = start(CLIP_PREVIEW="off")
    other = clip_in(app, slack, fake_slack, choppity, platforms=("youtube",))
    app.settle()
    row = clip_row(app, other)
    assert row.preview_state == PreviewState.OFF.value and len(jobs(app, PREVIEW_JOB)) == 1  # the first clip's
    assert choppity.render_polls(other) == [] and "🎞" not in text_of(clip_message(fake_slack, row))


def test_two_replicas_upload_one_video_per_clip(
    fake_slack: FakeSlack, choppity: FakeChoppity, database_url: str, clock: Clock
) -> None:
    env = base_env(fake_slack, choppity, database_url, CLIP_PREVIEW="upload")
    apps = [Greenlight(env, clock=clock).start(), Greenlight(env, clock=clock).start()]
    try:
        slack = SlackDriver(apps[0], fake_slack)
        ref = clip_in(apps[0], slack, fake_slack, choppity)

        def done() -> bool:
            if PreviewState(clip_row(apps[0], ref).preview_state) is PreviewState.UPLOADED:
                return True
            clock.offset += timedelta(seconds=6)
            for app in apps:
                app.services.runner.wake()
            return False

        wait_until(done, timeout=60, message="the video")
        for app in apps:
            app.settle()
        assert len(videos_in_thread(fake_slack, clip_row(apps[0], ref))) == 1
        assert len(fake_slack.files()) == 1 and choppity.render(ref)["starts"] == 1
    finally:
        for app in apps:
            app.stop()


# -- Reap: the clip's own file -------------------------------------------------------------------------


def test_a_reap_clip_uploads_its_clip_url(fake_slack: FakeSlack, database_url: str) -> None:
    with FakeReap(rate_limit_per_minute=100) as reap:
        reap.clip_size = 2 * MB
        account = reap.add_integration("youtube", name="Main channel")
        project = reap.add_project(status="completed", clips=1)
        [clip_id] = reap.clip_ids(project)
        env = base_env(fake_slack, None, database_url, REAP_API_KEY=reap.api_key, REAP_API_URL=reap.url,
                       REAP_INTEGRATIONS=account, CLIP_PREVIEW="upload")
        app = Greenlight(env).start()
        try:
            SlackDriver(app, fake_slack).command(f"reap {project}")
            wait_until(lambda: len(cards_in_channel(fake_slack)) == 1, timeout=20, message="the card")
            wait_until(lambda: PreviewState(clip_row(app, clip_id).preview_state) is PreviewState.UPLOADED,
                       timeout=30, message="the Reap clip's video")
            app.settle()
            row = clip_row(app, clip_id)
            [video] = videos_in_thread(fake_slack, row)
            upload = fake_slack.file(video.files[0]["id"])
            assert upload is not None and upload.sha256 == render_digest(clip_id, 2 * MB)
            assert reap.file_downloads == [clip_id]
        finally:
            app.stop()


# -- memory ---------------------------------------------------------------------------------------------


@pytest.mark.timeout(300)
def test_a_200_mb_video_is_streamed_not_held_in_memory(
    launch: Callable[[dict[str, str]], AppProcess],  # noqa: F811
    fake_slack: FakeSlack, tmp_path: Path,
) -> None:
    with FakeChoppity(render_timing=(0.0, 0.0), render_size=MB) as choppity:
        env = base_env(fake_slack, choppity, f"sqlite:///{tmp_path / 'preview.db'}", LOG_LEVEL="INFO",
                       CLIP_PREVIEW="upload")
        app = launch(env)

        def upload(size: int) -> None:
            choppity.render_size = size
            remote = choppity.add_post("youtube")
            done = len(fake_slack.files())
            response = app.webhook("post.draft.created", {"post_id": remote["id"], "clip_id": remote["clip_id"]})
            assert response.status_code == 200, response.text
            wait_until(lambda: len([f for f in fake_slack.files() if f.completed]) == done + 1, timeout=120,
                       message="the video uploaded")
            assert fake_slack.files()[-1].size == size

        upload(MB)  # warm up the whole path, so what is measured is the file's size
        before = peak_rss_kib(app.pid)
        upload(200 * MB)
        growth_mib = (peak_rss_kib(app.pid) - before) / 1024
        print(f"peak memory grew by {growth_mib:.1f} MiB uploading a 200 MB video")  # noqa: T201
        assert growth_mib < 30, f"peak memory grew by {growth_mib:.1f} MiB"


# -- upgrading ------------------------------------------------------------------------------------------


def test_clips_carded_before_previews_get_their_video_after_the_upgrade(
    fake_slack: FakeSlack, choppity: FakeChoppity, tmp_path: Path, clock: Clock
) -> None:
    """A clip row left "pending" by a release without previews gets its job from migration 0007."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from bot.db import MIGRATIONS_DIR, make_engine

    url = f"sqlite:///{tmp_path / 'upgrade.db'}"
    engine = make_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection_engine"] = engine
    command.upgrade(cfg, "0006")
    ref = choppity.add_clip(platforms=("youtube",))
    with engine.begin() as conn:  # what the earlier release left: a clip whose preview never starts
        conn.execute(text("INSERT INTO clip (provider, ref, preview_state, preview, created_at, updated_at) "
                          "VALUES ('choppity', :ref, 'pending', '{}', '2026-11-30 10:00:00', '2026-11-30 10:00:00')"),
                     {"ref": ref})
    engine.dispose()

    app = Greenlight(base_env(fake_slack, choppity, url, CLIP_PREVIEW="upload"), clock=clock).start()
    try:
        SlackDriver(app, fake_slack).command(f"clip {ref}")  # its draft is carded into the clip's thread
        wait_until(lambda: len(cards_in_channel(fake_slack)) == 1, message="the card")
        row = settled(app, ref, clock)
        assert row.preview_state == PreviewState.UPLOADED.value
        assert len(videos_in_thread(fake_slack, row)) == 1
    finally:
        app.stop()
