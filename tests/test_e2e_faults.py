"""Fault injection over real processes: SIGKILL at each step of posting a card, cancelling, editing
and scheduling, then a fresh process on the same database, on SQLite and on PostgreSQL.

Every case asserts the exactly-once outcome: how many cards Slack holds, how many calls Choppity
received, what the person was told, and what the audit records. docs/faults.md has the table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from bot.domain.forms import FieldId
from bot.models import Clip
from bot.slack.ids import ActionId, ViewId
from tests.fakes.choppity import FakeChoppity
from tests.fakes.slack import FakeSlack
from tests.harness import (
    SlackDriver,
    audit_details,
    base_env,
    cards_in_channel,
    cards_of,
    clip_messages,
    wait_until,
)
from tests.test_e2e_processes import (  # noqa: F401 - `launch` is a fixture
    LEASE_SECONDS,
    AppProcess,
    _card_text,
    _engine,
    _failed_jobs,
    _post,
    _settle,
    launch,
)


@pytest.mark.parametrize("stage", ["card_post_started", "card_post_answered"])
def test_sigkill_while_posting_a_card_then_restart_leaves_exactly_one_card(
    stage: str, database_url: str, fake_slack: FakeSlack, fake_choppity: FakeChoppity,
    launch: Callable[[dict[str, str]], AppProcess],  # noqa: F811
) -> None:
    env = base_env(fake_slack, fake_choppity, database_url, JOB_LEASE_SECONDS=LEASE_SECONDS, LOG_LEVEL="INFO")
    engine = _engine(env)
    try:
        first = launch({**env, "GREENLIGHT_FAILPOINTS": stage})
        remote = fake_choppity.add_post("youtube")
        first.webhook("post.draft.created", {"post_id": remote["id"]})
        first.wait_killed()
        crashed = _post(engine, remote["id"])
        assert crashed is not None and crashed.id is not None
        assert crashed.message_ts is None and crashed.card_attempted_at is not None
        expected_posts = 1 if stage == "card_post_answered" else 0
        # The clip's message went out first; the card's post is where the process died.
        assert fake_slack.count("chat.postMessage") == 1 + expected_posts

        launch(env)
        wait_until(lambda: (p := _post(engine, remote["id"])) is not None and p.message_ts is not None,
                   timeout=60, message="card on record after restart")
        _settle(engine, timeout=60)
        assert cards_of(fake_slack, crashed.id) == [_post(engine, remote["id"]).message_ts]  # type: ignore[union-attr]
        assert fake_slack.count("chat.postMessage") == 2 and len(clip_messages(fake_slack)) == 1
        adopted = [r for r in audit_details(engine, crashed.id) if r[1] == "card" and r[2] == "adopted"]
        assert len(adopted) == expected_posts
        assert _failed_jobs(engine) == []
    finally:
        engine.dispose()


@pytest.mark.parametrize("stage", ["clip_post_started", "clip_post_answered"])
def test_sigkill_while_posting_a_clip_message_then_restart_leaves_exactly_one(
    stage: str, database_url: str, fake_slack: FakeSlack, fake_choppity: FakeChoppity,
    launch: Callable[[dict[str, str]], AppProcess],  # noqa: F811
) -> None:
    env = base_env(fake_slack, fake_choppity, database_url, JOB_LEASE_SECONDS=LEASE_SECONDS, LOG_LEVEL="INFO")
    engine = _engine(env)
    try:
        first = launch({**env, "GREENLIGHT_FAILPOINTS": stage})
        clip = fake_choppity.add_clip(platforms=("youtube", "tiktok"))
        first.webhook("post.draft.created", {"clip_id": clip})
        first.wait_killed()
        assert fake_slack.count("chat.postMessage") == (1 if stage == "clip_post_answered" else 0)
        with Session(engine) as session:
            row = session.exec(select(Clip).where(Clip.ref == clip)).one()
            assert row.message_ts is None and row.message_attempted_at is not None

        launch(env)
        wait_until(lambda: len(cards_in_channel(fake_slack)) == 2, timeout=60, message="both cards after restart")
        _settle(engine, timeout=60)
        [top] = clip_messages(fake_slack)
        assert {c.thread_ts for c in cards_in_channel(fake_slack)} == {top.ts}
        with Session(engine) as session:
            assert session.exec(select(Clip).where(Clip.ref == clip)).one().message_ts == top.ts
        assert _failed_jobs(engine) == []
    finally:
        engine.dispose()


def _start_action(action: str, driver: SlackDriver, fake_slack: FakeSlack, post_id: int) -> dict[str, Any]:
    """Press the button (and submit the modal) for `action`; returns what the person asked for."""
    if action == "cancel":
        driver.click(ActionId.CANCEL, post_id, user="U_BOB")
        view = driver.latest_view(ViewId.CANCEL, post_id=post_id)
        values = {FieldId.REASON.value: {"type": "plain_text_input", "value": "Off-brand"}}
    elif action == "edit":
        driver.click(ActionId.EDIT, post_id, user="U_BOB")
        view = driver.latest_view(ViewId.EDIT, post_id=post_id)
        values = {FieldId.CAPTION.value: {"type": "plain_text_input", "value": "Edited after a crash"}}
    else:
        driver.click(ActionId.SCHEDULE, post_id, user="U_BOB")
        view = driver.latest_view(ViewId.SCHEDULE, post_id=post_id)
        values = {FieldId.WHEN.value: {"type": "datetimepicker", "selected_date_time": int(time.time()) + 7200}}
    try:
        driver.submit(view, user="U_BOB", values=values)
    except httpx.TransportError:
        pass  # the job may kill the process before the 200 is on the wire; the click was stored first
    return values


UPSTREAM = {"cancel": ("DELETE", r"/v1/posts/[^/]+$"), "edit": ("PUT", r"/v1/posts/[^/]+$"),
            "schedule": ("POST", r"/publish$")}
FINAL_STATUS = {"cancel": "cancelled", "edit": "draft", "schedule": "scheduled"}


@pytest.mark.parametrize("stage", ["before_provider_call", "after_provider_call"])
@pytest.mark.parametrize("action", ["cancel", "edit", "schedule"])
def test_sigkill_around_the_provider_call_then_restart_does_the_action_once(
    action: str, stage: str, database_url: str, fake_slack: FakeSlack, fake_choppity: FakeChoppity,
    launch: Callable[[dict[str, str]], AppProcess],  # noqa: F811
) -> None:
    env = base_env(fake_slack, fake_choppity, database_url, JOB_LEASE_SECONDS=LEASE_SECONDS, LOG_LEVEL="INFO")
    engine = _engine(env)
    try:
        plain = launch(env)
        remote = fake_choppity.add_post("linkedin")
        plain.webhook("post.draft.created", {"post_id": remote["id"]})
        wait_until(lambda: (p := _post(engine, remote["id"])) is not None and p.message_ts is not None,
                   timeout=30, message="card")
        post = _post(engine, remote["id"])
        assert post is not None and post.id is not None
        plain.stop()

        first = launch({**env, "GREENLIGHT_FAILPOINTS": stage})
        _start_action(action, SlackDriver(first, fake_slack), fake_slack, post.id)  # type: ignore[arg-type]
        first.wait_killed()
        method, path = UPSTREAM[action]
        sent = fake_choppity.count(method, path)
        assert sent == (1 if stage == "after_provider_call" else 0)

        launch(env)
        wait_until(lambda: (p := _post(engine, remote["id"])) is not None and p.pending_action is None,
                   timeout=60, message="action finished after restart")
        _settle(engine, timeout=60)

        assert fake_choppity.count(method, path) == 1  # never repeated
        final = _post(engine, remote["id"])
        assert final is not None and final.status == FINAL_STATUS[action]
        assert fake_choppity.post(remote["id"])["status"] == FINAL_STATUS[action]
        rows = audit_details(engine, post.id)
        done = [r for r in rows if r[0] == "U_BOB" and r[1] == action and r[2] == "ok"]
        assert len(done) == 1, rows
        assert not [r for r in rows if r[1] == action and r[2] == "failed"]
        if action == "cancel":
            assert final.cancelled_by == "U_BOB" and final.cancel_reason == "Off-brand"
            assert "Off-brand" in (done[0][3] or "")
        if action == "edit":
            assert final.content["caption"] == "Edited after a crash" and final.last_editor == "U_BOB"
        assert not [e for e in fake_slack.ephemerals("U_BOB") if "Couldn't" in e.text]
        assert len(cards_of(fake_slack, post.id)) == 1
        assert _failed_jobs(engine) == []
        word = {"cancel": "Cancelled", "edit": "Edited by", "schedule": "Scheduled"}[action]
        wait_until(lambda: word in _card_text(fake_slack, engine, remote["id"]), timeout=30, message="card updated")
    finally:
        engine.dispose()

