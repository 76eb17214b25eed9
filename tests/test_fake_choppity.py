"""The fake Choppity must be as strict and as lively as the real one: every test drives it over HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.fakes.choppity import (
    STATUSES,
    FakeChoppity,
    Lifecycle,
    render_bytes,
    render_digest,
)

MIB = 1024 * 1024
SECRET = "whsec_test"


class Clock:
    """A fake clock the test moves by hand (unix seconds)."""

    def __init__(self, now: float = 1_745_800_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Receiver:
    """A loopback webhook endpoint: records every request, answers `script` statuses first, then 200."""

    def __init__(
        self,
        script: list[int] | None = None,
        delay: float = 0.0,
        on_body: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.script = list(script or [])
        self.delay = delay
        self.on_body = on_body
        self.received: list[tuple[dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def do_POST(self) -> None:
                """Record, then answer from the script."""
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    status = receiver.script.pop(0) if receiver.script else 200
                if receiver.on_body is not None:
                    receiver.on_body(json.loads(body))
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/webhooks/choppity"

    def bodies(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(body) for _, body in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def verify(headers: dict[str, str], body: bytes, secret: str = SECRET) -> int:
    """Check a delivery's signature the way the docs say; returns its `t`."""
    parts = dict(p.split("=", 1) for p in headers["choppity-signature-256"].split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    return int(parts["t"])


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def chop(clock: Clock) -> Iterator[FakeChoppity]:
    # No background ticker: every request (and post()) catches the walk up to the clock, deterministically.
    with FakeChoppity(clock=clock, tick_interval=None, lifecycle=Lifecycle(queued=1, processing=2, uploading=3)) as fake:
        yield fake


@pytest.fixture
def http(chop: FakeChoppity) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=chop.url, headers={"Authorization": f"Key {chop.api_key}"}) as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.close()


def status_of(http: httpx.Client, post_id: str) -> str:
    status: str = http.get(f"/v1/posts/{post_id}").json()["post"]["status"]
    return status


# --------------------------------------------------------------------------------------------------
# Statuses and the rules of the Posts page
# --------------------------------------------------------------------------------------------------


def test_eight_documented_statuses() -> None:
    assert STATUSES == ("draft", "scheduled", "queued", "processing", "uploading", "published", "failed", "cancelled")


@pytest.mark.parametrize("status", [s for s in STATUSES if s != "draft"])
def test_only_drafts_can_be_edited_or_published(chop: FakeChoppity, http: httpx.Client, status: str) -> None:
    chop.walk(None)
    post = chop.add_post("youtube", status=status)
    put = http.put(f"/v1/posts/{post['id']}", json={"caption": "late"})
    assert put.status_code == 400 and put.json()["error"]["code"] == "BAD_REQUEST"
    assert put.json()["error"]["message"] == f"Only draft posts can be edited (post is {status})"
    pub = http.post(f"/v1/posts/{post['id']}/publish", json={})
    assert pub.status_code == 400
    assert pub.json()["error"]["message"] == f"Post is {status}, only drafts can be published"
    assert chop.post(post["id"])["status"] == status and chop.post(post["id"])["caption"] != "late"


@pytest.mark.parametrize("status", ["draft", "scheduled", "queued"])
def test_cancel_allowed_up_to_queued(chop: FakeChoppity, http: httpx.Client, status: str) -> None:
    chop.walk(None)
    post = chop.add_post("tiktok", status=status)
    r = http.delete(f"/v1/posts/{post['id']}")
    assert r.status_code == 200 and r.json()["post"]["status"] == "cancelled"


@pytest.mark.parametrize("status", ["processing", "uploading"])
def test_cancel_refused_once_processing(chop: FakeChoppity, http: httpx.Client, status: str) -> None:
    chop.walk(None)
    post = chop.add_post("tiktok", status=status)
    r = http.delete(f"/v1/posts/{post['id']}")
    assert r.status_code == 400 and r.json()["error"]["code"] == "BAD_REQUEST"
    message = r.json()["error"]["message"]
    assert f"Post is {status} and can no longer be cancelled" in message and "pulled back" in message
    assert chop.post(post["id"])["status"] == status


@pytest.mark.parametrize("status", ["published", "failed", "cancelled"])
def test_cancel_refused_when_finished(chop: FakeChoppity, http: httpx.Client, status: str) -> None:
    post = chop.add_post("linkedin", status=status)
    r = http.delete(f"/v1/posts/{post['id']}")
    assert r.status_code == 400
    assert r.json()["error"]["message"] == f"Post is {status} and can no longer be cancelled"


def test_schedule_lead_time_and_type(chop: FakeChoppity, http: httpx.Client, clock: Clock) -> None:
    post = chop.add_post("youtube")
    now_ms = int(clock.now * 1000)
    for bad in (now_ms + 5 * 60_000 - 1, now_ms, "tomorrow", True, float(now_ms + 3_600_000)):
        r = http.post(f"/v1/posts/{post['id']}/publish", json={"scheduled_at": bad})
        assert r.status_code == 400, bad
    assert chop.post(post["id"])["status"] == "draft"
    r = http.post(f"/v1/posts/{post['id']}/publish", json={"scheduled_at": now_ms + 5 * 60_000})
    assert r.status_code == 202 and r.json()["post"]["status"] == "scheduled"


@pytest.mark.parametrize("status", ["processing", "uploading"])
def test_choppity_side_helpers_accept_in_flight_posts(chop: FakeChoppity, status: str) -> None:
    chop.walk(None)
    done = chop.add_post("youtube", status=status)
    assert chop.complete_publish(done["id"], url="https://youtu.be/abc")["published_url"] == "https://youtu.be/abc"
    failed = chop.add_post("tiktok", status=status)
    assert chop.fail_post(failed["id"], "Token expired")["error"] == "Token expired"
    with pytest.raises(ValueError):
        chop.complete_publish(chop.add_post("youtube")["id"])


# --------------------------------------------------------------------------------------------------
# The lifecycle walk
# --------------------------------------------------------------------------------------------------


def test_immediate_publish_walks_each_stage_on_the_clock(chop: FakeChoppity, http: httpx.Client, clock: Clock) -> None:
    post = chop.add_post("youtube")
    start = clock.now
    r = http.post(f"/v1/posts/{post['id']}/publish", json={})
    assert r.status_code == 202 and r.json()["post"]["status"] == "queued"
    seen = []
    for step in (0.5, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0):  # dwell: queued 1 s, processing 2 s, uploading 3 s
        clock.advance(step)
        seen.append(status_of(http, post["id"]))
    assert seen == ["queued", "processing", "processing", "uploading", "uploading", "uploading", "published"]
    final = http.get(f"/v1/posts/{post['id']}").json()["post"]
    assert final["published_at"] == int((start + 6) * 1000)
    assert final["published_url"].startswith("https://youtu.be/")
    steps = [(t.from_status, t.to_status, t.at - start) for t in chop.transitions(post["id"])]
    assert steps == [
        (None, "draft", 0),
        ("draft", "queued", 0),
        ("queued", "processing", 1),
        ("processing", "uploading", 3),
        ("uploading", "published", 6),
    ]


def test_clock_jump_walks_every_stage_at_its_own_time(chop: FakeChoppity, http: httpx.Client, clock: Clock) -> None:
    post = chop.add_post("instagram")
    http.post(f"/v1/posts/{post['id']}/publish", json={})
    start = clock.now
    clock.advance(3600)
    assert status_of(http, post["id"]) == "published"
    assert [t.at - start for t in chop.transitions(post["id"])[2:]] == [1, 3, 6]
    assert chop.post(post["id"])["published_at"] == int((start + 6) * 1000)


def test_scheduled_post_waits_for_its_time_then_walks(chop: FakeChoppity, http: httpx.Client, clock: Clock) -> None:
    post = chop.add_post("linkedin")
    when_ms = int(clock.now * 1000) + 10 * 60_000
    r = http.post(f"/v1/posts/{post['id']}/publish", json={"scheduled_at": when_ms})
    assert r.json()["post"]["scheduled_at"] == when_ms
    clock.advance(10 * 60 - 0.5)
    got = http.get(f"/v1/posts/{post['id']}").json()["post"]
    assert got["status"] == "scheduled" and got["scheduled_at"] == when_ms
    clock.advance(0.5)
    got = http.get(f"/v1/posts/{post['id']}").json()["post"]
    assert got["status"] == "queued" and "scheduled_at" not in got  # promised only while scheduled
    clock.advance(6)
    got = http.get(f"/v1/posts/{post['id']}").json()["post"]
    assert got["status"] == "published" and got["published_at"] == when_ms + 6000
    assert [t.to_status for t in chop.transitions(post["id"])] == [
        "draft",
        "scheduled",
        "queued",
        "processing",
        "uploading",
        "published",
    ]
    assert chop.transitions(post["id"])[2].at == when_ms / 1000


def test_skipped_stages(clock: Clock) -> None:
    with pytest.raises(ValueError):
        Lifecycle(queued=None)  # type: ignore[arg-type]
    with FakeChoppity(clock=clock, tick_interval=None, lifecycle=Lifecycle(1, None, 1)) as fake:
        no_processing = fake.add_post("tiktok")
        with httpx.Client(base_url=fake.url, headers={"Authorization": f"Key {fake.api_key}"}) as http:
            http.post(f"/v1/posts/{no_processing['id']}/publish", json={})
            fake.walk(Lifecycle(queued=0, processing=None, uploading=None))
            clock.advance(0.01)
            assert status_of(http, no_processing["id"]) == "published"
            assert [t.to_status for t in fake.transitions(no_processing["id"])][2:] == ["published"]
            fake.walk(Lifecycle(1, None, 1))
            other = fake.add_post("tiktok")
            http.post(f"/v1/posts/{other['id']}/publish", json={})
            clock.advance(1)
            assert status_of(http, other["id"]) == "uploading"


def test_tick_and_advance_step_by_hand(clock: Clock) -> None:
    with FakeChoppity(clock=clock, tick_interval=None) as fake:  # walk off: nothing moves by itself
        post = fake.add_post("youtube", status="queued")
        clock.advance(3600)
        assert fake.tick() == [] and fake.post(post["id"])["status"] == "queued"
        assert [fake.advance(post["id"])["status"] for _ in range(3)] == ["processing", "uploading", "published"]
        with pytest.raises(ValueError):
            fake.advance(post["id"])
        fake.walk(Lifecycle(queued=1, processing=1, uploading=1))
        walking = fake.add_post("youtube", status="queued")
        clock.advance(1.5)
        made = fake.tick()
        assert [(t.post_id, t.to_status) for t in made] == [(walking["id"], "processing")]


def test_background_ticker_walks_without_requests_and_stops() -> None:
    with FakeChoppity(lifecycle=Lifecycle(0.05, 0.05, 0.05)) as fake:
        post = fake.add_post("tiktok", status="queued")
        fake.wait_for(lambda: fake.transitions(post["id"])[-1].to_status == "published", timeout=3)
        assert fake.calls() == []
        assert any(t.name == "FakeChoppity-ticker" for t in threading.enumerate())
    assert not any(t.name == "FakeChoppity-ticker" for t in threading.enumerate())


def test_cancel_races_the_walk(chop: FakeChoppity, http: httpx.Client, clock: Clock) -> None:
    post = chop.add_post("youtube")
    http.post(f"/v1/posts/{post['id']}/publish", json={})
    clock.advance(1)  # queued dwell is over: Choppity has started processing
    r = http.delete(f"/v1/posts/{post['id']}")
    assert r.status_code == 400 and "processing" in r.json()["error"]["message"]
    early = chop.add_post("youtube")
    http.post(f"/v1/posts/{early['id']}/publish", json={})
    clock.advance(0.9)
    assert http.delete(f"/v1/posts/{early['id']}").json()["post"]["status"] == "cancelled"
    clock.advance(60)
    assert status_of(http, early["id"]) == "cancelled"


def test_planned_outcomes(chop: FakeChoppity, http: httpx.Client, clock: Clock) -> None:
    fails = chop.add_post("tiktok")
    chop.plan_outcome(fails["id"], "failed", error="Video too long for TikTok")
    early = chop.add_post("youtube")
    chop.plan_outcome(early["id"], "failed", error="Copyright claim", from_stage="processing")
    url = chop.add_post("instagram")
    chop.plan_outcome(url["id"], "published", url="https://www.instagram.com/reel/abc/")
    for post in (fails, early, url):
        http.post(f"/v1/posts/{post['id']}/publish", json={})
    clock.advance(60)
    failed = http.get(f"/v1/posts/{fails['id']}").json()["post"]
    assert failed["status"] == "failed" and failed["error"] == "Video too long for TikTok"
    assert "published_url" not in failed and "published_at" not in failed
    assert [t.to_status for t in chop.transitions(fails["id"])][-2:] == ["uploading", "failed"]
    assert [t.to_status for t in chop.transitions(early["id"])][-2:] == ["processing", "failed"]
    assert http.get(f"/v1/posts/{url['id']}").json()["post"]["published_url"] == "https://www.instagram.com/reel/abc/"
    with pytest.raises(ValueError):
        chop.plan_outcome(fails["id"], "archived")


def test_fail_next_publish_hits_only_the_next_accepted_publish(
    chop: FakeChoppity, http: httpx.Client, clock: Clock
) -> None:
    chop.fail_next_publish(error="YouTube quota exceeded")
    refused = chop.add_post("youtube", status="published")
    assert http.post(f"/v1/posts/{refused['id']}/publish", json={}).status_code == 400  # not accepted: no plan
    first, second = chop.add_post("youtube"), chop.add_post("youtube")
    http.post(f"/v1/posts/{first['id']}/publish", json={})
    http.post(f"/v1/posts/{second['id']}/publish", json={})
    clock.advance(60)
    assert http.get(f"/v1/posts/{first['id']}").json()["post"]["error"] == "YouTube quota exceeded"
    assert status_of(http, second["id"]) == "published"


def test_unknown_future_status_is_served_as_is(chop: FakeChoppity, http: httpx.Client) -> None:
    post = chop.add_post("youtube")
    with pytest.raises(ValueError):
        chop.set_status(post["id"], "archived")
    chop.force_status(post["id"], "archived", archived_reason="retention")
    got = http.get(f"/v1/posts/{post['id']}").json()["post"]
    assert got["status"] == "archived" and got["archived_reason"] == "retention"
    assert http.put(f"/v1/posts/{post['id']}", json={"caption": "x"}).status_code == 400
    assert http.post(f"/v1/posts/{post['id']}/publish", json={}).status_code == 400
    assert http.delete(f"/v1/posts/{post['id']}").status_code == 400
    assert chop.transitions(post["id"])[-1].to_status == "archived"


# --------------------------------------------------------------------------------------------------
# Webhooks
# --------------------------------------------------------------------------------------------------


def test_webhooks_signed_envelopes_for_the_whole_walk(
    chop: FakeChoppity, http: httpx.Client, clock: Clock, receiver: Receiver
) -> None:
    chop.deliver_webhooks(receiver.url, SECRET)
    clip = chop.add_clip(["youtube", "tiktok"])
    yt, tt = chop.posts(clip)
    chop.plan_outcome(tt["id"], "failed", error="TikTok said no")
    http.post(f"/v1/posts/{yt['id']}/publish", json={})
    when_ms = int(clock.now * 1000) + 6 * 60_000
    http.post(f"/v1/posts/{tt['id']}/publish", json={"scheduled_at": when_ms})
    clock.advance(60 * 60)
    chop.tick()
    chop.wait_for_deliveries()
    for headers, body in receiver.received:
        assert headers["content-type"] == "application/json"
        assert verify(headers, body) == int(clock.now)
    got = {(b["type"], b["data"]["post_id"]): b for b in receiver.bodies()}
    assert set(got) == {
        ("post.draft.created", yt["id"]),
        ("post.draft.created", tt["id"]),
        ("post.scheduled", tt["id"]),
        ("post.published", yt["id"]),
        ("post.failed", tt["id"]),
    }
    published = got[("post.published", yt["id"])]
    assert set(published) == {"id", "type", "created", "data"}
    assert published["data"] == {
        "post_id": yt["id"],
        "clip_id": clip,
        "platform": "youtube",
        "team_id": "team_abc",
        "status": "published",
        "published_url": chop.post(yt["id"])["published_url"],
    }
    assert published["created"] == chop.post(yt["id"])["published_at"]
    assert got[("post.scheduled", tt["id"])]["data"]["scheduled_at"] == when_ms
    assert got[("post.failed", tt["id"])]["data"]["error"] == "TikTok said no"
    assert got[("post.draft.created", yt["id"])]["data"]["status"] == "draft"
    assert len({b["id"] for b in receiver.bodies()}) == 5
    assert all(d.ok and d.attempt == 1 for d in chop.deliveries())


def test_webhooks_are_opt_in_and_filtered(chop: FakeChoppity, http: httpx.Client, receiver: Receiver) -> None:
    chop.add_clip(["youtube"])  # before delivery is on: no event
    chop.deliver_webhooks(receiver.url, SECRET, events=("post.published",))
    post = chop.add_post("youtube")
    chop.complete_publish(http.post(f"/v1/posts/{post['id']}/publish", json={}).json()["post"]["id"])
    chop.wait_for_deliveries()
    assert [b["type"] for b in receiver.bodies()] == ["post.published"]
    with pytest.raises(ValueError):
        chop.deliver_webhooks(receiver.url, SECRET, events=("post.cancelled",))


def test_webhooks_retry_non_2xx_then_succeed(chop: FakeChoppity) -> None:
    receiver = Receiver(script=[500, 404, 503])
    try:
        chop.deliver_webhooks(receiver.url, SECRET, backoff=0.01)
        post = chop.add_post("youtube")
        chop.wait_for_deliveries()
        attempts = chop.deliveries()
        assert [(d.attempt, d.status) for d in attempts] == [(1, 500), (2, 404), (3, 503), (4, 200)]
        assert {d.event_id for d in attempts} == {receiver.bodies()[0]["id"]}
        assert all(b["data"]["post_id"] == post["id"] for b in receiver.bodies())
    finally:
        receiver.close()


def test_webhooks_give_up_after_retries_on_connection_errors(chop: FakeChoppity) -> None:
    probe = Receiver()
    dead_url = probe.url
    probe.close()  # nothing listens there any more
    chop.deliver_webhooks(dead_url, SECRET, retries=2, backoff=0.01)
    chop.add_post("tiktok")
    chop.wait_for_deliveries()
    attempts = chop.deliveries()
    assert [d.attempt for d in attempts] == [1, 2, 3]
    assert all(d.status is None and d.error and "Connect" in d.error for d in attempts)


def test_webhooks_retry_timeouts(chop: FakeChoppity) -> None:
    receiver = Receiver(delay=0.3)
    try:
        chop.deliver_webhooks(receiver.url, SECRET, retries=1, backoff=0.01, timeout=0.1)
        chop.add_post("linkedin")
        chop.wait_for_deliveries()
        attempts = chop.deliveries()
        assert len(attempts) == 2 and all("Timeout" in (d.error or "") for d in attempts)
        assert len(receiver.received) == 2  # the receiver did get them: a timeout is not a loss
    finally:
        receiver.close()


def test_webhook_duplicates_share_the_event_id(chop: FakeChoppity, receiver: Receiver) -> None:
    chop.deliver_webhooks(receiver.url, SECRET)
    chop.duplicate_next(1)
    chop.add_post("youtube")
    chop.add_post("youtube")
    chop.wait_for_deliveries()
    ids = [b["id"] for b in receiver.bodies()]
    assert len(ids) == 3 and ids[0] == ids[1] != ids[2]
    assert [d.duplicate for d in chop.deliveries()] == [False, True, False]
    chop.deliver_webhooks(receiver.url, SECRET, duplicate_rate=1.0)
    chop.add_post("youtube")
    chop.wait_for_deliveries()
    assert len(receiver.received) == 5 and receiver.bodies()[3] == receiver.bodies()[4]


def test_webhook_burst_delivered_out_of_order(chop: FakeChoppity, receiver: Receiver) -> None:
    chop.deliver_webhooks(receiver.url, SECRET, reorder=True)
    clip = chop.add_clip()  # four drafts at once: one burst
    chop.wait_for_deliveries()
    emitted = [e["id"] for e in chop.events()]
    assert len(emitted) == 4
    assert [b["id"] for b in receiver.bodies()] == emitted[::-1]
    assert {b["data"]["clip_id"] for b in receiver.bodies()} == {clip}


def test_webhooks_sent_without_holding_the_fake(chop: FakeChoppity) -> None:
    # The receiver reads the post back from the fake while answering, like the app does.
    reads: list[int] = []
    holder: dict[str, FakeChoppity] = {"fake": chop}

    def read_back(body: dict[str, Any]) -> None:
        fake = holder["fake"]
        r = httpx.get(
            f"{fake.url}/v1/posts/{body['data']['post_id']}", headers={"Authorization": f"Key {fake.api_key}"}
        )
        reads.append(r.status_code)

    receiver = Receiver(on_body=read_back)
    try:
        chop.deliver_webhooks(receiver.url, SECRET, timeout=1.0)
        chop.add_post("youtube")
        chop.wait_for_deliveries()
        assert reads == [200] and chop.deliveries()[0].ok
    finally:
        receiver.close()


def test_webhooks_driven_by_the_background_ticker(receiver: Receiver) -> None:
    with FakeChoppity(lifecycle=Lifecycle(0.05, 0.05, 0.05)) as fake:
        fake.deliver_webhooks(receiver.url, SECRET, events=("post.published",))
        post = fake.add_post("tiktok")
        with httpx.Client(base_url=fake.url, headers={"Authorization": f"Key {fake.api_key}"}) as http:
            http.post(f"/v1/posts/{post['id']}/publish", json={})
        fake.wait_for(lambda: len(receiver.received) == 1, timeout=3)
        assert fake.count("GET", "") == 0
        body = receiver.bodies()[0]
        assert body["type"] == "post.published" and body["data"]["post_id"] == post["id"]


# --------------------------------------------------------------------------------------------------
# Clip jobs
# --------------------------------------------------------------------------------------------------


def test_clip_job_and_its_clips(chop: FakeChoppity, http: httpx.Client, clock: Clock) -> None:
    job = chop.add_job(
        clips=[{"title": "Hook", "duration": 31.5, "score": 0.93}, {"title": "Outro", "duration": 12, "score": 0.4}],
        platforms=("youtube", "tiktok"),
    )
    r = http.get(f"/v1/clips/{job['job_id']}")
    assert r.status_code == 200
    body = r.json()
    assert body["job_id"] == job["job_id"] and body["status"] == "done"
    assert body["created_at"] == int(clock.now * 1000)
    assert [(c["title"], c["duration"], c["score"]) for c in body["clips"]] == [("Hook", 31.5, 0.93), ("Outro", 12.0, 0.4)]
    assert all(set(c) == {"id", "title", "duration", "score", "preview_url"} for c in body["clips"])
    first = body["clips"][0]["id"]
    posts = http.get(f"/v1/clips/{first}/posts").json()["posts"]
    assert [p["platform"] for p in posts] == ["youtube", "tiktok"] and all(p["clip_id"] == first for p in posts)
    bare = chop.add_job()
    assert http.get(f"/v1/clips/{bare['clips'][0]['id']}/posts").json() == {"posts": []}
    missing = http.get("/v1/clips/no-such-job")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
    with pytest.raises(ValueError):
        chop.add_job(clips=[{"title": "x", "duration": 10, "score": 1.5}])


def test_running_job_shows_no_clips_until_done(chop: FakeChoppity, http: httpx.Client) -> None:
    job = chop.add_job(platforms=("linkedin",), status="processing")
    clip_id = job["clips"][0]["id"]
    assert http.get(f"/v1/clips/{job['job_id']}").json()["clips"] == []
    assert http.get(f"/v1/clips/{clip_id}/posts").status_code == 404
    chop.finish_job(job["job_id"])
    assert http.get(f"/v1/clips/{job['job_id']}").json()["status"] == "done"
    assert [p["platform"] for p in http.get(f"/v1/clips/{clip_id}/posts").json()["posts"]] == ["linkedin"]


# --------------------------------------------------------------------------------------------------
# Renders and their file
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def rendered(clock: Clock) -> Iterator[tuple[FakeChoppity, httpx.Client, str]]:
    with FakeChoppity(clock=clock, tick_interval=None, render_timing=(2, 10), render_size=3 * MIB + 17) as fake:
        with httpx.Client(base_url=fake.url, headers={"Authorization": f"Key {fake.api_key}"}) as http:
            yield fake, http, fake.add_clip(["youtube"])


def test_render_walks_queued_processing_done(rendered: tuple[FakeChoppity, httpx.Client, str], clock: Clock) -> None:
    fake, http, clip = rendered
    assert http.post("/v1/clips/nope/renders").status_code == 404
    r = http.post(f"/v1/clips/{clip}/renders")
    assert r.status_code == 202 and r.json() == {"render_id": clip, "status": "queued"}
    assert http.get(f"/v1/renders/{clip}").json() == {"render_id": clip, "status": "queued"}
    clock.advance(2)
    assert http.get(f"/v1/renders/{clip}").json() == {"render_id": clip, "status": "processing", "progress": 0.0}
    clock.advance(5)
    again = http.post(f"/v1/clips/{clip}/renders")  # still running: same render, not a new one
    assert again.status_code == 202 and again.json() == {"render_id": clip, "status": "processing"}
    assert http.get(f"/v1/renders/{clip}").json()["progress"] == 0.5
    clock.advance(5)
    done = http.get(f"/v1/renders/{clip}").json()
    assert set(done) == {"render_id", "status", "output_url"} and done["status"] == "done"
    assert done["output_url"].startswith(f"{fake.url}/files/render/{clip}.mp4?exp={int(clock.now) + 3600}&sig=")
    assert fake.render(clip)["starts"] == 1
    assert http.post(f"/v1/clips/{clip}/renders").json()["status"] == "queued"  # finished: a new render
    assert fake.render(clip)["starts"] == 2
    assert http.get("/v1/renders/nope").json()["error"]["code"] == "NOT_FOUND"


def test_render_failure(rendered: tuple[FakeChoppity, httpx.Client, str], clock: Clock) -> None:
    fake, http, clip = rendered
    fake.fail_next_render("Source video is corrupt")
    http.post(f"/v1/clips/{clip}/renders")
    clock.advance(12)
    assert http.get(f"/v1/renders/{clip}").json() == {
        "render_id": clip,
        "status": "error",
        "error": "Source video is corrupt",
    }


def test_render_polls_are_recorded_on_the_clock(rendered: tuple[FakeChoppity, httpx.Client, str], clock: Clock) -> None:
    fake, http, clip = rendered
    http.post(f"/v1/clips/{clip}/renders")
    start = clock.now
    for _ in range(3):
        http.get(f"/v1/renders/{clip}")
        clock.advance(5)
    polls = fake.render_polls(clip)
    assert [p - start for p in polls] == [0, 5, 10]
    assert min(b - a for a, b in zip(polls, polls[1:], strict=False)) >= 5


def test_file_download_is_signed_and_expires(rendered: tuple[FakeChoppity, httpx.Client, str], clock: Clock) -> None:
    fake, http, clip = rendered
    http.post(f"/v1/clips/{clip}/renders")
    clock.advance(12)
    url = http.get(f"/v1/renders/{clip}").json()["output_url"]
    ok = httpx.get(url)  # no Authorization: it is a presigned URL
    assert ok.status_code == 200 and ok.headers["content-type"] == "video/mp4"
    assert int(ok.headers["content-length"]) == 3 * MIB + 17 == len(ok.content)
    assert hashlib.sha256(ok.content).hexdigest() == render_digest(clip, 3 * MIB + 17)
    assert "x-ratelimit-limit" not in ok.headers
    tampered = url[:-1] + ("0" if url[-1] != "0" else "1")
    bad = httpx.get(tampered)
    assert bad.status_code == 403 and b"SignatureDoesNotMatch" in bad.content
    clock.advance(3601)
    expired = httpx.get(url)
    assert expired.status_code == 403 and b"expired" in expired.content
    fresh = http.get(f"/v1/renders/{clip}").json()["output_url"]
    assert fresh != url and httpx.get(fresh).status_code == 200


def test_download_cut_midway_then_resumed_with_range(rendered: tuple[FakeChoppity, httpx.Client, str], clock: Clock) -> None:
    fake, http, clip = rendered
    size = 3 * MIB + 17
    http.post(f"/v1/clips/{clip}/renders")
    clock.advance(12)
    url = http.get(f"/v1/renders/{clip}").json()["output_url"]
    fake.cut_next_download(MIB + 5)
    got = bytearray()
    with pytest.raises(httpx.RemoteProtocolError), httpx.stream("GET", url) as r:
        assert r.headers["content-length"] == str(size)
        for chunk in r.iter_bytes():
            got += chunk
    assert len(got) == MIB + 5
    rest = httpx.get(url, headers={"Range": f"bytes={len(got)}-"})
    assert rest.status_code == 206 and rest.headers["content-range"] == f"bytes {MIB + 5}-{size - 1}/{size}"
    assert hashlib.sha256(bytes(got) + rest.content).hexdigest() == render_digest(clip, size)
    assert [(d.status, d.bytes_sent, d.complete) for d in fake.downloads(clip)] == [
        (200, MIB + 5, False),
        (206, size - MIB - 5, True),
    ]
    assert httpx.get(url, headers={"Range": f"bytes={size}-"}).status_code == 416
    assert httpx.get(url, headers={"Range": "bytes=-10"}).content == b"".join(render_bytes(clip, size, size - 10))


def test_large_download_is_streamed_not_buffered(clock: Clock) -> None:
    size = 200 * MIB + 3
    with FakeChoppity(clock=clock, tick_interval=None, render_timing=(0, 0), render_size=size) as fake:
        clip = fake.add_clip(["youtube"])
        headers = {"Authorization": f"Key {fake.api_key}"}
        httpx.post(f"{fake.url}/v1/clips/{clip}/renders", headers=headers)
        url = httpx.get(f"{fake.url}/v1/renders/{clip}", headers=headers).json()["output_url"]
        digest, received = hashlib.sha256(), 0
        tracemalloc.start()
        try:
            with httpx.stream("GET", url) as r:
                assert r.headers["content-length"] == str(size)
                for chunk in r.iter_bytes():
                    digest.update(chunk)
                    received += len(chunk)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert received == size and digest.hexdigest() == render_digest(clip, size)
        assert peak < 16 * MIB  # server and client share this process: neither held the file


def test_renders_and_jobs_count_toward_the_rate_limit_downloads_do_not(clock: Clock) -> None:
    with FakeChoppity(clock=clock, tick_interval=None, rate_limit_per_minute=4, render_timing=(0, 0)) as fake:
        clip = fake.add_clip(["youtube"])
        job = fake.add_job()
        with httpx.Client(base_url=fake.url, headers={"Authorization": f"Key {fake.api_key}"}) as http:
            assert http.get(f"/v1/clips/{job['job_id']}").headers["x-ratelimit-remaining"] == "3"
            assert http.post(f"/v1/clips/{clip}/renders").headers["x-ratelimit-remaining"] == "2"
            polled = http.get(f"/v1/renders/{clip}")
            assert polled.headers["x-ratelimit-remaining"] == "1"
            for _ in range(5):
                assert httpx.get(polled.json()["output_url"]).status_code == 200
            assert http.get(f"/v1/renders/{clip}").headers["x-ratelimit-remaining"] == "0"
            limited = http.get(f"/v1/renders/{clip}")
            assert limited.status_code == 429 and limited.json()["error"]["code"] == "RATE_LIMITED"
            assert httpx.get(polled.json()["output_url"]).status_code == 200
