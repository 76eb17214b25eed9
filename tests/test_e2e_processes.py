"""Greenlight as real OS processes (`python -m bot`): crashes and replicas.

* SIGKILL at every stage of a publish — right after the click was acknowledged, while Choppity is
  processing the call, just before the call, and after Choppity answered but before our commit —
  then a fresh process on the same database finishes the action exactly once.
* Two processes on one PostgreSQL database: concurrent clicks, duplicate webhook deliveries and a
  batch of new drafts split across both, with both processes' job workers running, each produce
  their side effect exactly once.

The fakes run in this test process on loopback; the app processes reach them over HTTP. Nothing here
asserts on wall-clock durations: waits are `wait_until` with generous timeouts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from bot.config import Settings
from bot.db import make_engine
from bot.models import AuditEvent, Job, Post, WebhookEvent
from bot.slack.ids import ActionId
from tests import harness
from tests.fakes.choppity import FakeChoppity, make_event, webhook_headers
from tests.fakes.slack import FakeSlack, Message, text_of
from tests.harness import (
    CHANNEL,
    WEBHOOK_SECRET,
    SlackDriver,
    base_env,
    cards_in_channel,
    free_port,
    postgres_schema,
    replies_about,
    wait_until,
)

ROOT = Path(__file__).resolve().parent.parent
# Short job leases so a restarted process takes over the killed one's jobs quickly.
LEASE_SECONDS = "2"
# Only what a Python process needs from the outer environment; never a stray Greenlight setting.
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "VIRTUAL_ENV")


class AppProcess:
    """One `python -m bot` process serving on a loopback port, its output in a log file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 30.0) -> AppProcess:
        """Spawn the process and wait until GET /healthz answers 200."""
        port = free_port()
        env = {k: os.environ[k] for k in _INHERITED if k in os.environ}
        env.update(self.env)
        env.update(HOST="127.0.0.1", PORT=str(port), GREENLIGHT_ENV_FILE="/nonexistent", PYTHONUNBUFFERED="1")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot"], cwd=ROOT, env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"Greenlight exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"Greenlight did not become healthy in {timeout}s:\n{self.log_tail()}")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a crash or an OOM kill."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def wait_killed(self, timeout: float = 30.0) -> None:
        """Wait for the process to die of SIGKILL (sent by an armed failpoint)."""
        assert self.proc is not None
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the failpoint never killed the process:\n{self.log_tail()}") from None
        assert self.proc.returncode == -signal.SIGKILL, self.log_tail()

    def stop(self) -> None:
        """SIGTERM (graceful), then SIGKILL if it does not exit."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def log_tail(self, chars: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def webhook(self, event_type: str, data: dict[str, Any], *, event_id: str | None = None,
                t: int | None = None) -> httpx.Response:
        """A correctly signed Choppity delivery to this process."""
        body = make_event(event_type, data, event_id=event_id)
        return httpx.post(f"{self.url}/webhooks/choppity", content=body,
                          headers=webhook_headers(body, WEBHOOK_SECRET, t), timeout=15)


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], AppProcess]]:
    """Start app processes; all are stopped (and their logs printed) at the end of the test."""
    started: list[AppProcess] = []

    def start(env: dict[str, str]) -> AppProcess:
        app = AppProcess(env, tmp_path / f"greenlight-{len(started) + 1}.log")
        started.append(app)
        return app.start()

    yield start
    for app in started:
        app.stop()
    for app in started:
        # Shown by pytest only when the test failed.
        print(f"===== {app.log_path.name} =====\n{app.log_tail(20000)}")  # noqa: T201


@pytest.fixture
def pg_database_url() -> Iterator[str]:
    """A fresh PostgreSQL schema: several replicas need PostgreSQL (SQLite is single-process)."""
    base = harness.test_database_url()
    if not base:
        pytest.skip("multi-process replica tests need PostgreSQL: TEST_DATABASE_URL is not set (.ci/run sets it)")
    with postgres_schema(base) as url:
        yield url


def _engine(env: dict[str, str]) -> Engine:
    return make_engine(Settings.from_env(env).database_url)


def _post(engine: Engine, external_id: str) -> Post | None:
    with Session(engine) as session:
        post = session.exec(select(Post).where(Post.external_id == external_id)).first()
        if post is not None:
            session.expunge(post)
        return post


def _card(fake_slack: FakeSlack, engine: Engine, external_id: str) -> Message | None:
    post = _post(engine, external_id)
    if post is None or post.message_ts is None:
        return None
    return fake_slack.message(CHANNEL, post.message_ts)


def _card_text(fake_slack: FakeSlack, engine: Engine, external_id: str) -> str:
    message = _card(fake_slack, engine, external_id)
    return text_of(message) if message is not None else ""


def _publish_calls(fake_choppity: FakeChoppity, external_id: str) -> list[Any]:
    return fake_choppity.calls("POST", rf"/v1/posts/{external_id}/publish$")


def _card_up(app: AppProcess, fake_choppity: FakeChoppity, fake_slack: FakeSlack, engine: Engine) -> tuple[int, str]:
    """A Choppity draft carded through a webhook to `app`; returns (our post id, Choppity's id)."""
    remote = fake_choppity.add_post("youtube")
    response = app.webhook("post.draft.created", {"post_id": remote["id"], "clip_id": remote["clip_id"]})
    assert response.status_code == 200, response.text
    wait_until(lambda: _card(fake_slack, engine, remote["id"]) is not None, timeout=30, message="card posted")
    post = _post(engine, remote["id"])
    assert post is not None and post.id is not None
    return post.id, remote["id"]


def _settle(engine: Engine, timeout: float = 40.0) -> None:
    """Wait until every job has finished (including jobs a killed process held a lease on)."""
    def idle() -> bool:
        with Session(engine) as session:
            return session.exec(select(Job.id).where(col(Job.status).in_(("pending", "running")))).first() is None

    wait_until(idle, timeout=timeout, message="every job finished")


def _failed_jobs(engine: Engine) -> list[tuple[str, str | None]]:
    with Session(engine) as session:
        return [(j.kind, j.last_error) for j in session.exec(select(Job).where(Job.status == "failed")).all()]


def _audit(engine: Engine, post_id: int) -> list[tuple[str | None, str, str]]:
    with Session(engine) as session:
        rows = session.exec(select(AuditEvent).where(AuditEvent.post_id == post_id).order_by(col(AuditEvent.id))).all()
        return [(r.actor, r.action, r.outcome) for r in rows]


# -- SIGKILL at every stage, then restart ---------------------------------------------------------

STAGES = ["after_ack", "during_choppity_call", "before_provider_call", "after_provider_call"]


@pytest.mark.parametrize("stage", STAGES)
def test_sigkill_at_any_stage_then_restart_publishes_exactly_once(
    stage: str, database_url: str, fake_slack: FakeSlack, fake_choppity: FakeChoppity,
    launch: Callable[[dict[str, str]], AppProcess],
) -> None:
    # LOG_LEVEL=DEBUG (base_env's default): the real process logs at its most verbose.
    env = base_env(fake_slack, fake_choppity, database_url, JOB_LEASE_SECONDS=LEASE_SECONDS)
    first_env = dict(env)
    if stage in ("before_provider_call", "after_provider_call"):
        first_env["GREENLIGHT_FAILPOINTS"] = stage
    engine = _engine(env)
    try:
        first = launch(first_env)
        post_id, external = _card_up(first, fake_choppity, fake_slack, engine)
        if stage == "after_ack":
            # Choppity is slow to start on the publish, so the kill lands before it has answered.
            fake_choppity.delay_next("POST", r"/publish$", 1.0)
        elif stage == "during_choppity_call":
            # Choppity queues the post, then holds the answer: the process dies waiting for it.
            fake_choppity.hang_after_processing("POST", r"/publish$", 10.0)

        driver = SlackDriver(first, fake_slack)  # type: ignore[arg-type]
        if stage in ("after_ack", "during_choppity_call"):
            assert driver.click(ActionId.PUBLISH, post_id, user="U_BOB").status_code == 200
        else:
            # The job starts as soon as the click is committed, so the failpoint may kill the
            # process before the 200 is on the wire; either way the click was stored first.
            try:
                assert driver.click(ActionId.PUBLISH, post_id, user="U_BOB").status_code == 200
            except httpx.TransportError:
                pass

        if stage == "after_ack":
            first.kill()
        elif stage == "during_choppity_call":
            wait_until(lambda: len(_publish_calls(fake_choppity, external)) == 1, timeout=20, message="publish sent")
            wait_until(lambda: fake_choppity.post(external)["status"] == "queued", timeout=20, message="Choppity queued it")
            first.kill()
        else:
            first.wait_killed()

        # The click was durably recorded before the ack; the crash left it in flight.
        crashed = _post(engine, external)
        assert crashed is not None and crashed.pending_action == "publish" and crashed.pending_by == "U_BOB"
        if stage in ("before_provider_call", "after_ack") and _publish_calls(fake_choppity, external) == []:
            assert fake_choppity.post(external)["status"] == "draft"
        if stage == "after_ack" and _publish_calls(fake_choppity, external):
            # The request left before the kill: Choppity still carries it out after its delay.
            wait_until(lambda: fake_choppity.post(external)["status"] == "queued", timeout=20, message="late publish")

        second = launch(env)  # a brand-new process on the same database, no failpoints
        wait_until(lambda: (p := _post(engine, external)) is not None and p.status == "queued"
                   and p.pending_action is None, timeout=40, message="post queued after restart")
        wait_until(lambda: "Queued" in _card_text(fake_slack, engine, external), timeout=40, message="card shows Queued")
        _settle(engine)

        assert len(_publish_calls(fake_choppity, external)) == 1
        assert fake_choppity.post(external)["status"] == "queued"
        final = _post(engine, external)
        assert final is not None and final.status == "queued" and final.approved_by == "U_BOB"
        assert "Queued" in _card_text(fake_slack, engine, external)
        assert len(cards_in_channel(fake_slack)) == 1  # the same card, updated in place
        assert _audit(engine, post_id).count(("U_BOB", "publish", "ok")) == 1
        assert _failed_jobs(engine) == []
        secrets = Settings.from_env(env).secrets()
        for app in (first, second):
            log_text = app.log_tail(10**9)
            assert "DEBUG" in log_text
            assert not [s for s in secrets if s in log_text], f"a secret is in {app.log_path.name}"
    finally:
        engine.dispose()


# -- two replicas on one PostgreSQL ----------------------------------------------------------------


def _two_processes(
    launch: Callable[[dict[str, str]], AppProcess], env: dict[str, str]
) -> tuple[AppProcess, AppProcess]:
    return launch(env), launch(env)


def test_two_processes_concurrent_publish_clicks_publish_once(
    pg_database_url: str, fake_slack: FakeSlack, fake_choppity: FakeChoppity,
    launch: Callable[[dict[str, str]], AppProcess],
) -> None:
    env = base_env(fake_slack, fake_choppity, pg_database_url, LOG_LEVEL="INFO")
    engine = _engine(env)
    try:
        a, b = _two_processes(launch, env)
        post_id, external = _card_up(a, fake_choppity, fake_slack, engine)
        drivers = [SlackDriver(a, fake_slack), SlackDriver(b, fake_slack)]  # type: ignore[arg-type]
        users = ["U_ANA", "U_BOB", "U_CAROL", "U_ANA", "U_BOB"] * 2
        barrier = threading.Barrier(len(users))
        statuses: list[int] = []

        def click(n: int) -> None:
            barrier.wait()
            statuses.append(drivers[n % 2].click(ActionId.PUBLISH, post_id, user=users[n]).status_code)

        threads = [threading.Thread(target=click, args=(n,)) for n in range(len(users))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert statuses == [200] * len(users)
        wait_until(lambda: (p := _post(engine, external)) is not None and p.status == "queued"
                   and p.pending_action is None, timeout=30, message="post queued")
        _settle(engine)
        assert len(_publish_calls(fake_choppity, external)) == 1
        requested = [row for row in _audit(engine, post_id) if row[1:] == ("publish", "requested")]
        assert len(requested) == 1
        wait_until(lambda: len(fake_slack.ephemerals()) >= len(users) - 1, timeout=20, message="ephemerals")
        assert len(fake_slack.ephemerals()) == len(users) - 1
        assert all("already" in e.text for e in fake_slack.ephemerals())
        assert "Queued" in _card_text(fake_slack, engine, external)
        assert len(cards_in_channel(fake_slack)) == 1
        assert _failed_jobs(engine) == []
    finally:
        engine.dispose()


def test_two_processes_duplicate_webhook_deliveries_update_the_card_once(
    pg_database_url: str, fake_slack: FakeSlack, fake_choppity: FakeChoppity,
    launch: Callable[[dict[str, str]], AppProcess],
) -> None:
    env = base_env(fake_slack, fake_choppity, pg_database_url, LOG_LEVEL="INFO")
    engine = _engine(env)
    try:
        a, b = _two_processes(launch, env)
        _, external = _card_up(a, fake_choppity, fake_slack, engine)
        _settle(engine)
        fake_choppity.set_status(external, "published", published_url="https://youtu.be/once",
                                 published_at=int(time.time() * 1000))
        updates_before = len(fake_slack.calls("chat.update"))
        gets_before = len(fake_choppity.calls("GET", rf"/v1/posts/{external}$"))
        deliveries = 12
        barrier = threading.Barrier(deliveries)
        now = int(time.time())

        def deliver(n: int) -> httpx.Response:
            barrier.wait()
            # Each redelivery has the same id but its own timestamp and signature.
            return (a, b)[n % 2].webhook("post.published", {"post_id": external}, event_id="evt-published-1", t=now - n)

        with ThreadPoolExecutor(deliveries) as pool:
            responses = list(pool.map(deliver, range(deliveries)))
        assert [r.status_code for r in responses] == [200] * deliveries
        assert sorted(r.json()["duplicate"] for r in responses) == [False] + [True] * (deliveries - 1)

        wait_until(lambda: (p := _post(engine, external)) is not None and p.status == "published",
                   timeout=30, message="post published")
        wait_until(lambda: "Published" in _card_text(fake_slack, engine, external), timeout=30, message="card updated")
        _settle(engine)
        card_ts = (_post(engine, external) or Post()).message_ts
        card_updates = [c for c in fake_slack.calls("chat.update")[updates_before:] if c.args.get("ts") == card_ts]
        assert len(card_updates) == 1  # the clip message is updated too, once
        assert len(fake_choppity.calls("GET", rf"/v1/posts/{external}$")) - gets_before == 1  # processed once
        with Session(engine) as session:
            stored = session.exec(select(func.count()).select_from(WebhookEvent)
                                  .where(col(WebhookEvent.id) == "choppity:evt-published-1")).one()
            assert stored == 1
        message = _card(fake_slack, engine, external)
        assert message is not None
        replies = [r for r in replies_about(fake_slack, _post(engine, external) or Post()) if "Published" in r.text]
        assert len(replies) == 1
        assert _failed_jobs(engine) == []
    finally:
        engine.dispose()


def test_two_processes_card_a_batch_of_drafts_exactly_once(
    pg_database_url: str, fake_slack: FakeSlack, fake_choppity: FakeChoppity,
    launch: Callable[[dict[str, str]], AppProcess],
) -> None:
    env = base_env(fake_slack, fake_choppity, pg_database_url, LOG_LEVEL="INFO")
    engine = _engine(env)
    try:
        a, b = _two_processes(launch, env)
        clips = [fake_choppity.add_clip() for _ in range(5)]  # 5 clips x 4 platforms = 20 drafts
        remotes = [post for clip in clips for post in fake_choppity.posts(clip)]
        assert len(remotes) == 20
        # Every draft is announced twice, to different processes: once on its own, once as part
        # of its clip (different event ids, so webhook dedupe does not hide the overlap).
        sends: list[tuple[AppProcess, dict[str, Any]]] = []
        for n, remote in enumerate(remotes):
            sends.append(((a, b)[n % 2], {"post_id": remote["id"], "clip_id": remote["clip_id"]}))
        for n, clip in enumerate(clips):
            sends.append(((b, a)[n % 2], {"clip_id": clip}))

        def deliver(item: tuple[AppProcess, dict[str, Any]]) -> int:
            app, data = item
            return app.webhook("post.draft.created", data).status_code

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(deliver, sends)) == [200] * len(sends)

        wait_until(lambda: len(cards_in_channel(fake_slack)) >= 20, timeout=40, message="20 cards")
        _settle(engine)
        posted = [c for c in fake_slack.calls("chat.postMessage") if c.error is None]
        cards = [c for c in posted if c.args["metadata"]["event_type"] == "greenlight_post"]
        clips = [c for c in posted if c.args["metadata"]["event_type"] == "greenlight_clip"]
        assert len(cards) == 20 and len(clips) == 5  # one message per clip, its four cards in the thread
        carded = {c.args["metadata"]["event_payload"]["post_id"] for c in cards}
        assert len(carded) == 20
        assert len(cards_in_channel(fake_slack)) == 20
        with Session(engine) as session:
            posts = session.exec(select(Post)).all()
            assert len(posts) == 20 and all(p.message_ts for p in posts)
            assert {p.external_id for p in posts} == {r["id"] for r in remotes}
            assert len({p.message_ts for p in posts}) == 20
        assert _failed_jobs(engine) == []
    finally:
        engine.dispose()
