"""Health that tells the truth: liveness vs readiness, and what people and senders get during a fault.

Faults are made for real: the SQLite file is moved away, made immutable, or locked by another
connection; the schema is put behind; the job workers are not running; Slack revokes the token.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from bot.domain.forms import FieldId
from bot.slack.ids import ActionId, ViewId
from tests.fakes.choppity import FakeChoppity
from tests.fakes.slack import FakeSlack
from tests.harness import Greenlight, SlackDriver, base_env, card_up, db_post, wait_until

CANT_SAVE = "Greenlight can't save right now, so nothing was changed"


@pytest.fixture
def sqlite_app(fake_slack: FakeSlack, fake_choppity: FakeChoppity, tmp_path: Path) -> Iterator[tuple[Greenlight, Path]]:
    path = tmp_path / "health.db"
    app = Greenlight(base_env(fake_slack, fake_choppity, f"sqlite:///{path}")).start()
    yield app, path
    app.stop()


def readiness(app: Greenlight) -> httpx.Response:
    return httpx.get(f"{app.url}/readyz", timeout=5)


def wait_unready(app: Greenlight, words: str) -> dict[str, object]:
    wait_until(lambda: readiness(app).status_code == 503, timeout=10, message="readiness 503")
    body: dict[str, object] = readiness(app).json()
    assert words in " ".join(str(p) for p in body["problems"]), body  # type: ignore[attr-defined]
    assert httpx.get(f"{app.url}/livez", timeout=5).status_code == 200
    return body


def assert_refused_cleanly(app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity,
                           post_id: int) -> None:
    """While the database can't save: a click gets the ephemeral, a command and a modal their own answer,
    a webhook a fast 503, and nothing upstream happens."""
    before = len(fake_slack.ephemerals("U_ANA"))
    assert slack.click(ActionId.PUBLISH, post_id).status_code == 200
    wait_until(lambda: len(fake_slack.ephemerals("U_ANA")) > before, message="ephemeral")
    assert CANT_SAVE in fake_slack.ephemerals("U_ANA")[-1].text
    response, _ = slack.command("queue")
    assert response.status_code == 200 and CANT_SAVE in response.json()["text"]
    webhook = app.choppity_event("post.published", {"post_id": "anything"})
    assert webhook.status_code == 503 and webhook.headers.get("retry-after")
    assert fake_choppity.calls("POST", "/publish") == []


def test_a_moved_database_file_is_noticed_and_nothing_is_lost(
    sqlite_app: tuple[Greenlight, Path], fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app, path = sqlite_app
    slack = SlackDriver(app, fake_slack)
    post_id, remote = card_up(app, fake_choppity, "youtube")
    assert readiness(app).status_code == 200
    moved = [(p, p.with_name(p.name + ".moved")) for p in path.parent.glob("health.db*")]
    for src, dst in moved:
        os.rename(src, dst)
    try:
        body = wait_unready(app, "database missing")
        assert body["database"] == "missing (the database file was deleted or moved)"
        assert_refused_cleanly(app, slack, fake_slack, fake_choppity, post_id)
    finally:
        for src, dst in moved:
            os.rename(dst, src)
    wait_until(lambda: readiness(app).status_code == 200, timeout=10, message="ready again")
    slack.click(ActionId.PUBLISH, post_id)
    app.settle()
    assert db_post(app, remote["id"]).status == "queued"


def test_a_locked_database_is_noticed_and_a_modal_keeps_what_was_typed(
    sqlite_app: tuple[Greenlight, Path], fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app, path = sqlite_app
    slack = SlackDriver(app, fake_slack)
    post_id, _ = card_up(app, fake_choppity, "linkedin")
    slack.click(ActionId.EDIT, post_id)
    view = slack.latest_view(ViewId.EDIT)
    holder = sqlite3.connect(path, isolation_level=None, timeout=5)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        wait_unready(app, "database locked")
        assert_refused_cleanly(app, slack, fake_slack, fake_choppity, post_id)
        answer = slack.submit(view, values={FieldId.CAPTION.value: {"type": "plain_text_input", "value": "typed text"}})
        assert answer.status_code == 200
        assert answer.json()["response_action"] == "errors"
        assert CANT_SAVE in " ".join(answer.json()["errors"].values())
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    wait_until(lambda: readiness(app).status_code == 200, timeout=10, message="ready again")


def test_a_read_only_database_is_noticed(
    sqlite_app: tuple[Greenlight, Path], fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app, path = sqlite_app
    slack = SlackDriver(app, fake_slack)
    post_id, _ = card_up(app, fake_choppity, "tiktok")
    # The tests run as root, for whom chmod means nothing: the immutable flag binds root too.
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("read-only test needs `chattr +i` (e2fsprogs, a filesystem that supports it, and root)")
    try:
        body = wait_unready(app, "database read-only")
        assert body["database"] == "read-only"
        assert_refused_cleanly(app, slack, fake_slack, fake_choppity, post_id)
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    wait_until(lambda: readiness(app).status_code == 200, timeout=10, message="ready again")


def test_migrations_behind_the_build_make_it_unready(
    sqlite_app: tuple[Greenlight, Path], fake_slack: FakeSlack
) -> None:
    app, _ = sqlite_app
    with app.services.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    body = wait_unready(app, "migrations behind")
    assert "greenlight migrate" in str(body["migrations"])


def test_a_stalled_job_queue_makes_it_unready(
    fake_slack: FakeSlack, fake_choppity: FakeChoppity, database_url: str
) -> None:
    from datetime import timedelta

    from bot.db import session_scope
    from bot.jobs import enqueue
    from bot.models import Job, utcnow

    app = Greenlight(base_env(fake_slack, fake_choppity, database_url)).start(workers=False)
    try:
        app.services.health.start()  # type: ignore[union-attr]
        with session_scope(app.services.engine) as session:
            enqueue(session, "sync_card", post_id=None)
        with app.services.engine.begin() as conn:
            conn.execute(Job.__table__.update().values(run_at=utcnow() - timedelta(minutes=10)))  # type: ignore[attr-defined]
        wait_unready(app, "job queue stalled")
    finally:
        app.services.health.stop()  # type: ignore[union-attr]
        app.stop()


def test_a_revoked_slack_token_is_reported_once_and_slack_is_not_hammered(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_slack.revoke_token("token_revoked")
    for _ in range(3):
        remote = fake_choppity.add_post("youtube")
        app.choppity_event("post.draft.created", {"post_id": remote["id"]})
    body = wait_unready(app, "Slack refuses the bot token (token_revoked)")
    assert body["slack_token"] == "refused (token_revoked)"
    app.settle()
    posts_tried = fake_slack.count("chat.postMessage")
    assert posts_tried <= 3  # each card tried once, then paused
    errors = [r for r in caplog.records if "Slack refused Greenlight's bot token" in r.getMessage()]
    assert len(errors) == 1 and "SLACK_BOT_TOKEN" in errors[0].getMessage()
    assert fake_slack.token not in caplog.text
    # Webhooks are still taken (they only need the database): nothing is lost while Slack says no.
    assert app.choppity_event("post.published", {"post_id": "x"}).status_code == 200

