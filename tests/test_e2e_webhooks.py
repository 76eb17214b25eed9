"""End to end: Choppity webhooks over HTTP (issue 3).

Every test runs the real app over HTTP against the fake Slack and fake Choppity servers, sends
signed (or forged) deliveries to POST /webhooks/choppity and asserts on what Slack received, what
Choppity received and what the database holds.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update
from sqlmodel import Session, col

from bot.models import Job, Post, WebhookEvent, utcnow
from bot.providers.budget import BudgetExhausted, Priority
from bot.services.outcomes import PROVIDER_EVENT, REFRESH_POST, Reconciler
from bot.slack.ids import ActionId
from bot.slack.mrkdwn import unescape as unescape_mrkdwn
from tests.fakes.choppity import FakeChoppity, make_event, sign_choppity, webhook_headers
from tests.fakes.slack import FakeSlack
from tests.fakes.slack import text_of as raw_text_of
from tests.harness import (
    CHANNEL,
    WEBHOOK_SECRET,
    Greenlight,
    SlackDriver,
    base_env,
    buttons,
    card,
    card_up,
    cards_in_channel,
    count_rows,
    db_post,
    jobs,
    publish_calls,
    text_of,
    thread,
    wait_until,
)

NEW_SECRET = "whsec_rotation_new_7f3a9c"
OLD_SECRET = "whsec_rotation_old_1b2e4d"
SIG = "choppity-signature-256"


# -- helpers ----------------------------------------------------------------------------------------


@pytest.fixture
def wire(app: Greenlight) -> Iterator[httpx.Client]:
    """One keep-alive HTTP client to the running app for tests that make many requests."""
    with httpx.Client(base_url=app.url, timeout=10) as client:
        yield client


def ok_updates(fake_slack: FakeSlack) -> int:
    """chat.update calls of cards that Slack accepted (clip messages are updated alongside)."""
    cards = {m.ts for m in cards_in_channel(fake_slack)}
    return len([c for c in fake_slack.calls("chat.update") if c.error is None and c.args.get("ts") in cards])


def card_posts(fake_slack: FakeSlack) -> list[Any]:
    """The cards posted (each in its clip's thread)."""
    return cards_in_channel(fake_slack)


class SideEffects:
    """Snapshot of everything a webhook could touch, to prove a rejection touched nothing."""

    def __init__(self, app: Greenlight, fake_slack: FakeSlack, fake_choppity: FakeChoppity) -> None:
        self.app, self.fake_slack, self.fake_choppity = app, fake_slack, fake_choppity
        self.before = self._now()

    def _now(self) -> tuple[int, int, int, int]:
        return (
            count_rows(self.app, WebhookEvent),
            count_rows(self.app, Job),
            len(self.fake_slack.calls()),
            len(self.fake_choppity.calls()),
        )

    def assert_none(self) -> None:
        events, job_rows, slack_calls, choppity_calls = self._now()
        assert events == self.before[0], "a webhook_event row was written"
        assert job_rows == self.before[1], "a job was queued"
        assert slack_calls == self.before[2], "Slack was called"
        assert choppity_calls == self.before[3], "Choppity was called"


def published_via_click(app: Greenlight, slack: SlackDriver, fake_choppity: FakeChoppity,
                        user: str = "U_BOB", **post_fields: Any) -> tuple[int, dict[str, Any]]:
    """A carded draft that `user` published from Slack: Choppity has it queued."""
    post_id, remote = card_up(app, fake_choppity, **post_fields)
    assert slack.click(ActionId.PUBLISH, post_id, user=user).status_code == 200
    app.settle()
    assert db_post(app, remote["id"]).status == "queued"
    return post_id, remote


def backdate(app: Greenlight, external_id: str, **fields: Any) -> None:
    """Pretend time passed: move timestamps of one post row into the past."""
    with Session(app.services.engine) as session:
        session.execute(update(Post).where(col(Post.external_id) == external_id).values(**fields))
        session.commit()


# -- 1. signatures over HTTP ------------------------------------------------------------------------


def test_valid_signatures_are_accepted_and_recorded(
    app: Greenlight, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    remote = fake_choppity.add_post("youtube")
    response = app.choppity_event("post.draft.created", {"post_id": remote["id"]}, event_id="evt-valid-1")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "duplicate": False}

    # Decoys around one valid v1 entry (rotation-style headers) are fine; so is upper-case hex.
    body = make_event("asset.analysis.started", {"asset_id": "a1"}, event_id="evt-valid-2")
    t = int(time.time())
    mac = sign_choppity(body, WEBHOOK_SECRET, t).split("v1=", 1)[1]
    header = f"t={t},v1={'0' * 64},v2={mac},v1={mac.upper()}, v0=zzz"
    assert app.post_webhook(body, {SIG: header, "content-type": "application/json"}).status_code == 200

    app.settle()
    assert count_rows(app, WebhookEvent) == 2
    assert len(card_posts(fake_slack)) == 1


def test_forged_stale_or_tampered_webhooks_get_401_and_change_nothing(
    app: Greenlight, wire: httpx.Client, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    remote = fake_choppity.add_post("tiktok")
    effects = SideEffects(app, fake_slack, fake_choppity)
    body = make_event("post.draft.created", {"post_id": remote["id"], "clip_id": remote["clip_id"]})
    now = int(time.time())

    def status(payload: bytes, headers: dict[str, str]) -> int:
        return wire.post("/webhooks/choppity", content=payload, headers=headers).status_code

    assert status(body, webhook_headers(body, "whsec_not_the_secret", now)) == 401
    # Any single byte changed after signing.
    signed = webhook_headers(body, WEBHOOK_SECRET, now)
    # (tests/test_webhook_verify.py flips every byte; over HTTP a spread of positions is enough.)
    for i in sorted({*range(0, len(body), max(1, len(body) // 25)), len(body) - 1}):
        tampered = bytearray(body)
        tampered[i] ^= 0x01
        assert status(bytes(tampered), signed) == 401, f"byte {i} changed but accepted"
    assert status(body + b" ", signed) == 401
    # The signed timestamp changed (the same signature replayed under another t).
    mac = signed[SIG].split("v1=", 1)[1]
    assert status(body, {SIG: f"t={now + 1},v1={mac}"}) == 401
    # Outside the ±300 s window, in either direction.
    assert status(body, webhook_headers(body, WEBHOOK_SECRET, int(time.time()) - 301)) == 401
    assert status(body, webhook_headers(body, WEBHOOK_SECRET, math.ceil(time.time()) + 301)) == 401
    # The legacy header carries the raw secret; on its own it proves nothing.
    assert status(body, {"choppity-signature": WEBHOOK_SECRET, "content-type": "application/json"}) == 401
    # A correct MAC under a version we do not trust.
    assert status(body, {SIG: f"t={now},v2={mac}"}) == 401
    # Verification is over the raw bytes: the same JSON re-serialised with spaces does not verify.
    spaced = json.dumps(json.loads(body)).encode()
    assert spaced != body
    assert status(spaced, signed) == 401
    effects.assert_none()
    assert card_posts(fake_slack) == []


def test_malformed_signature_headers_get_4xx_and_change_nothing(
    app: Greenlight, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    effects = SideEffects(app, fake_slack, fake_choppity)
    body = make_event("post.published", {"post_id": "p1"})
    now = int(time.time())
    mac = sign_choppity(body, WEBHOOK_SECRET, now).split("v1=", 1)[1]
    headers: list[dict[str, str] | dict[str, bytes]] = [
        {},
        {SIG: ""},
        {SIG: f"t=abc,v1={mac}"},
        {SIG: f"t={now}"},
        {SIG: f"t={'9' * 5000},v1={mac}"},
        {SIG: f"t={'1' * 20},v1={mac}"},
        {SIG: f"t={now}.0,v1={mac}"},
        {SIG: f"t=-{now},v1={mac}"},
        {SIG: f"v1={mac}"},
        {SIG: f"t={now},v1"},
        {SIG: f"t={now},,v1={mac}"},
        {SIG: f"t={now},v1={mac},"},
        {SIG: f"t={now},t={now},v1={mac}"},
        {SIG: f"t={now};v1={mac}"},
        {SIG: f"t={now}  v1={mac}"},
        {SIG: f"t={now},v1={mac}é".encode("latin-1")},
        {SIG: "\xff\xfe".encode("latin-1") * 20},
        {SIG: "=,=,="},
        {SIG: f"t={now},v1={mac}," + "x=" + "a" * 5000},
        {"choppity-signature": f"t={now},v1={mac}"},
    ]
    for header in headers:
        response = app.post_webhook(body, header)  # type: ignore[arg-type]
        assert response.status_code in (400, 401), (header, response.status_code, response.text)
        assert mac not in response.text and WEBHOOK_SECRET not in response.text
    effects.assert_none()


def test_secret_rotation_accepts_old_and_new(
    make_app: Callable[..., Greenlight], fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app = make_app(CHOPPITY_WEBHOOK_SECRET=f"{NEW_SECRET},{OLD_SECRET}")
    remote = fake_choppity.add_post("linkedin")
    data = {"post_id": remote["id"]}
    assert app.choppity_event("post.draft.created", data, secret=NEW_SECRET).status_code == 200
    assert app.choppity_event("post.draft.created", data, secret=OLD_SECRET).status_code == 200
    # A sender signing with both secrets during rotation.
    body = make_event("post.draft.created", data)
    t = int(time.time())
    both = f"{sign_choppity(body, OLD_SECRET, t)},v1={sign_choppity(body, NEW_SECRET, t).split('v1=')[1]}"
    assert app.post_webhook(body, {SIG: both}).status_code == 200
    assert app.choppity_event("post.draft.created", data, secret="whsec_some_third_secret").status_code == 401
    app.settle()
    assert count_rows(app, WebhookEvent) == 3
    assert len(card_posts(fake_slack)) == 1


def test_removed_secret_is_refused(
    make_app: Callable[..., Greenlight], fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app = make_app(CHOPPITY_WEBHOOK_SECRET=NEW_SECRET)
    remote = fake_choppity.add_post("youtube")
    effects = SideEffects(app, fake_slack, fake_choppity)
    response = app.choppity_event("post.draft.created", {"post_id": remote["id"]}, secret=OLD_SECRET)
    assert response.status_code == 401
    effects.assert_none()
    assert app.choppity_event("post.draft.created", {"post_id": remote["id"]}, secret=NEW_SECRET).status_code == 200


# -- 2. fuzz: nothing a sender can put on the wire yields a 5xx ------------------------------------

# Header values httpx/h11 can actually put on the wire: visible latin-1, inner spaces, no CR/LF.
_wire_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=200
).map(lambda s: s.strip(" "))
_digits = st.one_of(st.integers(min_value=0, max_value=10**15).map(str), st.just("9" * 5000), _wire_text)
_hexish = st.one_of(st.text(alphabet="0123456789abcdefABCDEF", max_size=80), _wire_text)
_structured = st.builds(
    lambda t, v, extra: f"t={t},v1={v}{extra}",
    _digits,
    _hexish,
    st.sampled_from(["", ",", ",v1=", ",t=1", ",,", " ,v0=x", ",v2=" + "a" * 64]),
)
_header_value = st.one_of(_wire_text, _structured).map(lambda s: s.encode("latin-1"))
_headers = st.dictionaries(
    keys=st.sampled_from([b"choppity-signature-256", b"choppity-signature", b"content-type", b"content-encoding"]),
    values=_header_value,
    max_size=4,
)
_FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_FUZZ
@given(headers=_headers, body=st.binary(max_size=2048))
def test_fuzzed_headers_and_bodies_never_get_5xx(
    app: Greenlight, wire: httpx.Client, headers: dict[bytes, bytes], body: bytes
) -> None:
    response = wire.post("/webhooks/choppity", content=body, headers=headers)
    assert response.status_code in (400, 401, 413), (headers, response.status_code, response.text)
    assert count_rows(app, WebhookEvent) == 0


_json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
)
_json = st.recursive(
    _json_scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12,
)
_event_value = st.one_of(st.text(max_size=300), _json)
_envelope = st.fixed_dictionaries(
    {},
    optional={
        "id": _event_value,
        "type": st.one_of(
            st.sampled_from(["post.draft.created", "post.published", "post.failed", "post.scheduled", "x"]),
            _event_value,
        ),
        "created": _json,
        "data": st.one_of(
            st.fixed_dictionaries({}, optional={"post_id": _event_value, "clip_id": _event_value, "id": _event_value}),
            _json,
        ),
    },
)
_signed_body = st.one_of(
    st.binary(max_size=512),
    _json.map(lambda v: json.dumps(v).encode()),
    _envelope.map(lambda v: json.dumps(v).encode()),
    _envelope.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")),
)


@_FUZZ
@given(body=_signed_body)
def test_validly_signed_odd_bodies_never_get_5xx(app: Greenlight, wire: httpx.Client, body: bytes) -> None:
    response = wire.post("/webhooks/choppity", content=body, headers=webhook_headers(body, WEBHOOK_SECRET))
    assert response.status_code in (200, 400), (body, response.status_code, response.text)
    if response.status_code == 200:
        assert response.json()["ok"] is True


@pytest.mark.parametrize(
    "body",
    [
        b'{"id":"\\u0000","type":"post.published"}',
        b'{"id":"e-nul-type","type":"post.\\u0000"}',
        b'{"id":"e-long-type","type":"' + b"t" * 100 + b'"}',
        b'{"id":"e-nan","type":"post.published","data":{"post_id":"p","x":NaN,"y":-Infinity}}',
        b'{"id":"e-nul-data","type":"post.published","data":{"post_id":"p\\u0000","note":"\\u0000"}}',
        b'{"id":"e-surrogate","type":"post.published","data":{"post_id":"\\ud800","note":"\\udfff"}}',
        b'{"id":"e-bigint","type":"post.published","created":' + b"9" * 4000 + b"}",
    ],
)
def test_signed_bodies_the_database_might_choke_on_never_get_5xx(app: Greenlight, body: bytes) -> None:
    response = app.post_webhook(body, webhook_headers(body, WEBHOOK_SECRET))
    assert response.status_code in (200, 400), (response.status_code, response.text)
    app.settle()
    assert count_rows(app, Job, col(Job.status) != "done") == 0


def test_signed_non_json_non_object_and_idless_bodies_get_400(app: Greenlight, fake_slack: FakeSlack,
                                                              fake_choppity: FakeChoppity) -> None:
    effects = SideEffects(app, fake_slack, fake_choppity)
    for body in [b"", b"not json", b"\xff\xfe", b"[1,2]", b'"x"', b"null", b'{"type":"post.published"}',
                 b'{"id":"","type":"x"}', b'{"id":5,"type":"x"}', b'{"id":"e","type":"x","data":[]}',
                 b"[" * 100_000 + b"]" * 100_000]:
        response = app.post_webhook(body, webhook_headers(body, WEBHOOK_SECRET))
        assert response.status_code == 400, (body[:40], response.status_code)
    effects.assert_none()


# -- 3. duplicate delivery -----------------------------------------------------------------------


def test_redelivered_event_is_applied_once(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    _, remote = published_via_click(app, slack, fake_choppity)
    fake_choppity.complete_publish(remote["id"], url="https://youtu.be/dup0000001")
    updates, replies = ok_updates(fake_slack), len(thread(fake_slack, app, remote["id"]))
    gets = len(fake_choppity.calls("GET", rf"/v1/posts/{remote['id']}$"))
    data = {"post_id": remote["id"], "published_url": "https://youtu.be/dup0000001"}

    first = app.choppity_event("post.published", data, event_id="evt-dup-1")
    assert first.status_code == 200 and first.json() == {"ok": True, "duplicate": False}
    app.settle()
    # The retry carries a fresh timestamp and signature but the same id.
    second = app.choppity_event("post.published", data, event_id="evt-dup-1", t=int(time.time()) + 5)
    assert second.status_code == 200 and second.json() == {"ok": True, "duplicate": True}
    app.settle()

    assert ok_updates(fake_slack) == updates + 1
    assert len(thread(fake_slack, app, remote["id"])) == replies + 1
    assert len(fake_choppity.calls("GET", rf"/v1/posts/{remote['id']}$")) == gets + 1
    assert count_rows(app, WebhookEvent, col(WebhookEvent.id).contains("evt-dup-1")) == 1
    assert [j.payload["event_id"] for j in jobs(app, PROVIDER_EVENT)].count("evt-dup-1") == 1
    assert db_post(app, remote["id"]).status == "published"


def test_dedupe_outlives_choppity_retry_span_despite_pruning(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    _, remote = published_via_click(app, slack, fake_choppity)
    fake_choppity.complete_publish(remote["id"])
    assert app.choppity_event("post.published", {"post_id": remote["id"]}, event_id="evt-late-1").status_code == 200
    assert app.choppity_event("asset.analysis.started", {}, event_id="evt-ancient-1").status_code == 200
    app.settle()
    updates = ok_updates(fake_slack)
    # Four days on (longer than the ~75 h retry schedules senders use), a reconcile pass prunes.
    with Session(app.services.engine) as session:
        session.execute(update(WebhookEvent).values(received_at=utcnow() - timedelta(days=4)))
        session.execute(update(WebhookEvent).where(col(WebhookEvent.id).contains("evt-ancient-1"))
                        .values(received_at=utcnow() - timedelta(days=30)))
        session.commit()
    app.services.reconciler.run_once()  # type: ignore[union-attr]
    assert count_rows(app, WebhookEvent, col(WebhookEvent.id).contains("evt-ancient-1")) == 0  # pruning ran
    late = app.choppity_event("post.published", {"post_id": remote["id"]}, event_id="evt-late-1")
    assert late.status_code == 200 and late.json()["duplicate"] is True
    app.settle()
    assert ok_updates(fake_slack) == updates


# -- 4. drafts -------------------------------------------------------------------------------------


def test_draft_created_cards_once_per_post(
    app: Greenlight, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    remote = fake_choppity.add_post("youtube", title="Webhook draft")
    data = {"post_id": remote["id"], "clip_id": remote["clip_id"]}
    assert app.choppity_event("post.draft.created", data, event_id="evt-draft-1").status_code == 200
    app.settle()
    assert len(card_posts(fake_slack)) == 1
    assert "Webhook draft" in text_of(card(fake_slack, app, remote["id"]))
    assert buttons(card(fake_slack, app, remote["id"])) == [
        ActionId.EDIT, ActionId.PUBLISH, ActionId.SCHEDULE, ActionId.REQUEST_CHANGES, ActionId.CANCEL
    ]
    # Another delivery about the same post (a different event id): still one card, untouched.
    updates = ok_updates(fake_slack)
    assert app.choppity_event("post.draft.created", data, event_id="evt-draft-2").json()["duplicate"] is False
    app.settle()
    assert len(card_posts(fake_slack)) == 1
    assert ok_updates(fake_slack) == updates
    assert count_rows(app, Post) == 1


def test_draft_created_with_only_a_clip_id_cards_the_clips_drafts(
    app: Greenlight, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    clip = fake_choppity.add_clip(platforms=("tiktok", "instagram"))
    fake_choppity.add_post("linkedin", clip_id=clip, status="published")
    assert app.choppity_event("post.draft.created", {"clip_id": clip}).status_code == 200
    app.settle()
    assert len(card_posts(fake_slack)) == 2
    # One event per platform arrives; each names only the clip. Nothing is carded twice.
    assert app.choppity_event("post.draft.created", {"clip_id": clip}).status_code == 200
    app.settle()
    assert len(card_posts(fake_slack)) == 2
    assert {p["platform"] for p in fake_choppity.posts(clip) if p["status"] == "draft"} == {"tiktok", "instagram"}
    assert count_rows(app, Post) == 2


# -- 5. outcomes ----------------------------------------------------------------------------------


def test_published_event_shows_link_and_approver_and_drops_buttons(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    _, remote = published_via_click(app, slack, fake_choppity, user="U_BOB")
    url = "https://youtu.be/pub00000001"
    fake_choppity.complete_publish(remote["id"], url=url)
    response = app.choppity_event("post.published", {"post_id": remote["id"], "published_url": url})
    assert response.status_code == 200
    app.settle()
    message = card(fake_slack, app, remote["id"])
    shown = text_of(message)
    assert "Published" in shown
    assert f"<{url}|View on YouTube>" in shown
    assert "approved by <@U_BOB>" in shown
    assert buttons(message) == []
    assert any(url in reply and "Published" in reply for reply in thread(fake_slack, app, remote["id"]))
    post = db_post(app, remote["id"])
    assert post.status == "published" and post.published_url == url and post.published_at is not None


def test_failed_event_shows_the_reason_and_pings_the_approver(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    _, remote = published_via_click(app, slack, fake_choppity, "U_CAROL", platform="tiktok")
    reason = "TikTok rejected the video: duration exceeds 10 minutes"
    fake_choppity.fail_post(remote["id"], reason)
    assert app.choppity_event("post.failed", {"post_id": remote["id"], "error": reason}).status_code == 200
    app.settle()
    message = card(fake_slack, app, remote["id"])
    # Prominent: right under the header, in the status line.
    status_line = block_text(message.blocks[1])
    assert "Failed" in status_line and reason in status_line
    assert buttons(message) == []
    replies = thread(fake_slack, app, remote["id"])
    assert any(reason in r and "<@U_CAROL>" in r for r in replies)
    assert db_post(app, remote["id"]).error == reason


def block_text(block: dict[str, Any]) -> str:
    """What a person sees in one block (Slack escapes undone)."""
    return unescape_mrkdwn(raw_text_of([block]))


def test_scheduled_event_shows_the_time_and_only_cancel(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    _, remote = card_up(app, fake_choppity, "linkedin")
    when = int(time.time()) + 3 * 3600
    # Scheduled in Choppity's dashboard, not from Slack.
    fake_choppity.set_status(remote["id"], "scheduled", scheduled_at=when * 1000)
    assert app.choppity_event("post.scheduled", {"post_id": remote["id"], "scheduled_at": when * 1000}).status_code == 200
    app.settle()
    message = card(fake_slack, app, remote["id"])
    assert f"<!date^{when}^" in json.dumps(message.blocks)
    assert "Scheduled" in text_of(message)
    assert buttons(message) == [ActionId.CANCEL]
    assert any(f"<!date^{when}^" in r for r in thread(fake_slack, app, remote["id"]))
    assert db_post(app, remote["id"]).status == "scheduled"


# -- 6. out of order --------------------------------------------------------------------------------


def test_late_events_never_move_a_final_post_back(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    _, remote = published_via_click(app, slack, fake_choppity)
    url = "https://youtu.be/ooo00000001"
    fake_choppity.complete_publish(remote["id"], url=url)
    app.choppity_event("post.published", {"post_id": remote["id"], "published_url": url})
    app.settle()
    updates, replies = ok_updates(fake_slack), len(thread(fake_slack, app, remote["id"]))

    # post.scheduled delivered late; Choppity says published: nothing changes.
    assert app.choppity_event("post.scheduled", {"post_id": remote["id"]}).status_code == 200
    app.settle()
    # Choppity later reports something else (a bug on their side, a replayed state): still final.
    fake_choppity.set_status(remote["id"], "queued")
    assert app.choppity_event("post.scheduled", {"post_id": remote["id"]}).status_code == 200
    fake_choppity.set_status(remote["id"], "failed", error="late failure report")
    assert app.choppity_event("post.failed", {"post_id": remote["id"], "error": "late failure report"}).status_code == 200
    app.settle()

    post = db_post(app, remote["id"])
    assert post.status == "published" and post.published_url == url and post.error is None
    assert ok_updates(fake_slack) == updates
    assert len(thread(fake_slack, app, remote["id"])) == replies
    message = card(fake_slack, app, remote["id"])
    assert "Published" in text_of(message) and buttons(message) == []


def test_event_ahead_of_choppity_leaves_the_draft_alone(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    post_id, remote = card_up(app, fake_choppity, "instagram")
    # The event claims published, but Choppity (the truth) still has a draft.
    assert app.choppity_event("post.published", {"post_id": remote["id"], "published_url": "https://x.test/1"}).status_code == 200
    app.settle()
    assert db_post(app, remote["id"]).status == "draft"
    message = card(fake_slack, app, remote["id"])
    assert "Draft" in text_of(message)
    assert ActionId.PUBLISH in buttons(message)
    assert ok_updates(fake_slack) == 0
    assert thread(fake_slack, app, remote["id"]) == []


def test_webhook_before_our_publish_answer_still_ends_published(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    post_id, remote = card_up(app, fake_choppity)
    # Choppity queues the post at once but its answer to our POST is slow; meanwhile it publishes
    # and the webhook arrives before our own call has returned.
    fake_choppity.hang_after_processing("POST", r"/publish$", 2.0)
    slack.click(ActionId.PUBLISH, post_id, user="U_ANA")
    fake_choppity.wait_for(lambda: fake_choppity.post(remote["id"])["status"] == "queued", message="queued")
    fake_choppity.complete_publish(remote["id"], url="https://youtu.be/race0000001")
    assert app.choppity_event("post.published", {"post_id": remote["id"]}).status_code == 200
    app.settle()
    wait_until(lambda: db_post(app, remote["id"]).pending_action is None, message="publish finished")
    app.settle()
    post = db_post(app, remote["id"])
    assert post.status == "published" and post.approved_by == "U_ANA"
    assert len(publish_calls(fake_choppity, remote["id"])) == 1
    message = card(fake_slack, app, remote["id"])
    assert "Published" in text_of(message) and buttons(message) == []


# -- 7. unknown types and posts ---------------------------------------------------------------------


def test_unknown_types_and_posts_are_acknowledged_and_logged(
    app: Greenlight, fake_slack: FakeSlack, fake_choppity: FakeChoppity, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.services.outcomes")
    sent = {
        "evt-unknown-type": ("asset.analysis.succeeded", {"asset_id": "a", "job_id": "j"}),
        "evt-future-type": ("post.deleted", {"post_id": "whatever"}),
        "evt-unknown-post": ("post.published", {"post_id": "11111111-aaaa-bbbb-cccc-000000000000"}),
        "evt-unknown-draft": ("post.draft.created", {"post_id": "22222222-aaaa-bbbb-cccc-000000000000"}),
        "evt-unknown-clip": ("post.draft.created", {"clip_id": "33333333-aaaa-bbbb-cccc-000000000000"}),
        "evt-no-ids": ("post.failed", {"error": "boom"}),
    }
    for event_id, (event_type, data) in sent.items():
        response = app.choppity_event(event_type, data, event_id=event_id)
        assert response.status_code == 200 and response.json()["ok"] is True
    app.settle()
    assert card_posts(fake_slack) == [] and fake_slack.calls("chat.postMessage") == []
    assert count_rows(app, Post) == 0
    # Every event is recorded; only those naming a post or a clip need a job, and each job ran.
    assert count_rows(app, WebhookEvent) == len(sent)
    actionable = {"evt-unknown-post", "evt-unknown-draft", "evt-unknown-clip"}
    assert {(j.payload["event_id"], j.status) for j in jobs(app, PROVIDER_EVENT)} == {(e, "done") for e in actionable}
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for event_id in sent:
        assert event_id in logged, f"{event_id} was not logged"


# -- 8. crash between answering and processing -------------------------------------------------------


def test_event_answered_then_process_died_is_applied_after_restart(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    _, remote = published_via_click(app, slack, fake_choppity)
    url = "https://youtu.be/crash000001"
    fake_choppity.complete_publish(remote["id"], url=url)
    app.stop()
    slack_calls, updates = len(fake_slack.calls()), ok_updates(fake_slack)

    crashed = Greenlight(app.env).start(workers=False)
    try:
        response = crashed.choppity_event("post.published", {"post_id": remote["id"]}, event_id="evt-crash-1")
        assert response.status_code == 200
        assert count_rows(crashed, WebhookEvent, col(WebhookEvent.id).contains("evt-crash-1")) == 1
        pending = [j for j in jobs(crashed, PROVIDER_EVENT) if j.status != "done"]
        assert [(j.status, j.payload["event_id"]) for j in pending] == [("pending", "evt-crash-1")]
        assert len(fake_slack.calls()) == slack_calls
    finally:
        crashed.stop()

    fresh = Greenlight(app.env).start()
    try:
        fresh.settle()
        assert ok_updates(fake_slack) == updates + 1
        assert db_post(fresh, remote["id"]).status == "published"
        message = card(fake_slack, fresh, remote["id"])
        assert "Published" in text_of(message) and url in text_of(message)
        assert sum(url in r for r in thread(fake_slack, fresh, remote["id"])) == 1
        assert {j.status for j in jobs(fresh, PROVIDER_EVENT)} == {"done"}
    finally:
        fresh.stop()


# -- 9. slow or broken neighbours ------------------------------------------------------------------


def test_slow_choppity_does_not_delay_the_answer(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    _, remote = published_via_click(app, slack, fake_choppity)
    fake_choppity.complete_publish(remote["id"], url="https://youtu.be/slow0000001")
    # Longer than Greenlight's 3 s read timeout: the first GET times out, a retry succeeds.
    fake_choppity.delay_next("GET", rf"/v1/posts/{remote['id']}$", 4.0)
    response = app.choppity_event("post.published", {"post_id": remote["id"]})
    assert response.status_code == 200
    # Answered while the GET is still hanging: nothing has been applied yet.
    assert db_post(app, remote["id"]).status == "queued"
    wait_until(lambda: db_post(app, remote["id"]).status == "published", timeout=30, message="published")
    app.settle()
    assert "Published" in text_of(card(fake_slack, app, remote["id"]))


def test_choppity_and_slack_errors_never_fail_the_webhook(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    _, remote = published_via_click(app, slack, fake_choppity)
    url = "https://youtu.be/down0000001"
    fake_choppity.complete_publish(remote["id"], url=url)
    fake_choppity.fail_next("GET", rf"/v1/posts/{remote['id']}$", 503, message="upstream down", times=4)
    fake_slack.fail_next("chat.update", "internal_error", status=500)
    fake_slack.fail_next("chat.postMessage", "ratelimited", retry_after=1)
    response = app.choppity_event("post.published", {"post_id": remote["id"]})
    assert response.status_code == 200 and response.json()["ok"] is True
    wait_until(lambda: "Published" in text_of(card(fake_slack, app, remote["id"])), timeout=40,
               message="card published despite the failures")
    wait_until(lambda: any(url in r for r in thread(fake_slack, app, remote["id"])), timeout=20,
               message="thread reply")
    app.settle()
    assert sum(url in r for r in thread(fake_slack, app, remote["id"])) == 1
    assert [c.status for c in fake_choppity.calls("GET", rf"/v1/posts/{remote['id']}$")][-1] == 200
    assert any(c.error == "internal_error" for c in fake_slack.calls("chat.update"))


def test_webhook_answers_while_the_database_is_the_only_dependency(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    """With Slack and Choppity both hanging, deliveries are still stored and acknowledged."""
    _, remote = published_via_click(app, slack, fake_choppity)
    fake_choppity.complete_publish(remote["id"])
    fake_slack.delay("chat.update", 2.0)
    fake_choppity.delay_next("GET", r"/v1/posts/", 2.0, times=3)
    stored = count_rows(app, WebhookEvent)
    answers = [app.choppity_event("post.published", {"post_id": remote["id"]}).status_code for _ in range(5)]
    assert answers == [200] * 5
    assert count_rows(app, WebhookEvent) == stored + 5
    wait_until(lambda: "Published" in text_of(card(fake_slack, app, remote["id"])), timeout=30, message="published")
    fake_slack.delay("chat.update", 0)
    app.settle()


# -- 10. reconciler ----------------------------------------------------------------------------------


def test_reconciler_finds_a_publish_no_webhook_reported(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    _, remote = published_via_click(app, slack, fake_choppity, user="U_BOB")
    url = "https://youtu.be/recon000001"
    fake_choppity.complete_publish(remote["id"], url=url)
    reconciler = app.services.reconciler  # type: ignore[union-attr]
    # Within the grace period nothing is re-read.
    assert reconciler.run_once() == 0
    # Hours later (longer than a reconcile interval), still no webhook.
    long_ago = utcnow() - timedelta(hours=2)
    backdate(app, remote["id"], updated_at=long_ago, remote_checked_at=long_ago)
    assert reconciler.run_once() == 1
    refresh = jobs(app, REFRESH_POST)
    assert refresh[-1].payload == {"source": "reconcile"}  # re-read at background priority
    app.settle()
    post = db_post(app, remote["id"])
    assert post.status == "published" and post.published_url == url
    message = card(fake_slack, app, remote["id"])
    assert "Published" in text_of(message) and "approved by <@U_BOB>" in text_of(message)
    assert buttons(message) == []
    assert any(url in r for r in thread(fake_slack, app, remote["id"]))
    # The next pass has nothing left to do.
    assert reconciler.run_once() == 0


def test_reconciler_finds_a_scheduled_post_past_its_time(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    _, remote = card_up(app, fake_choppity, "tiktok")
    when = int(time.time()) + 3600
    fake_choppity.set_status(remote["id"], "scheduled", scheduled_at=when * 1000)
    app.choppity_event("post.scheduled", {"post_id": remote["id"]})
    app.settle()
    assert db_post(app, remote["id"]).status == "scheduled"
    fake_choppity.fail_post(remote["id"], "TikTok account disconnected")
    reconciler = app.services.reconciler  # type: ignore[union-attr]
    assert reconciler.run_once() == 0  # not due yet
    past = utcnow() - timedelta(hours=2)
    backdate(app, remote["id"], scheduled_at=past, remote_checked_at=past)
    assert reconciler.run_once() == 1
    app.settle()
    assert db_post(app, remote["id"]).status == "failed"
    assert "TikTok account disconnected" in text_of(card(fake_slack, app, remote["id"]))


def test_reconciler_batches_dedupes_and_holds_its_lease(
    fake_slack: FakeSlack, fake_choppity: FakeChoppity, database_url: str
) -> None:
    gl = Greenlight(base_env(fake_slack, fake_choppity, database_url)).start(workers=False)
    try:
        engine = gl.services.engine
        old = utcnow() - timedelta(minutes=30)
        with Session(engine) as session:
            for _ in range(30):
                remote = fake_choppity.add_post("youtube", status="queued")
                session.add(Post(provider="choppity", external_id=remote["id"], clip_id=remote["clip_id"],
                                 platform="youtube", status="queued", content={"caption": "c"},
                                 channel_id=CHANNEL, updated_at=old, created_at=old))
            session.commit()
        first = Reconciler(engine, gl.settings, holder="replica-a", batch=20)
        other = Reconciler(engine, gl.settings, holder="replica-b", batch=20)

        queued = first.run_once()
        assert 0 < queued <= 20
        # Same holder, same interval: the lease is renewed but nothing is queued twice.
        again = first.run_once()
        assert queued + again <= 30
        # Another replica does not get the lease at all.
        assert other.run_once() == 0
        assert other.take_lease() is False

        refresh = jobs(gl, REFRESH_POST)
        per_post = [j.post_id for j in refresh]
        assert len(per_post) == len(set(per_post)) == queued + again
        assert all(j.status == "pending" for j in refresh)
        assert fake_choppity.calls() == []  # only queued: the reads happen in background jobs
    finally:
        gl.stop()


def test_reconciler_refreshes_yield_to_a_publish_click_when_budget_is_low(
    make_app: Callable[..., Greenlight], fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app = make_app(CHOPPITY_REQUESTS_PER_MINUTE="8")
    slack = SlackDriver(app, fake_slack)
    _, stuck = published_via_click(app, slack, fake_choppity)
    fake_choppity.complete_publish(stuck["id"])
    waiting_id, waiting = card_up(app, fake_choppity, "linkedin")

    budget = app.services.providers["choppity"].client.budget
    # Use every slot background work may take; the reserve stays for people.
    while True:
        try:
            budget.acquire(Priority.BACKGROUND, max_wait=0)
        except BudgetExhausted:
            break
    reserve = budget.remaining()
    assert reserve > 0
    gets_before = len(fake_choppity.calls("GET"))

    long_ago = utcnow() - timedelta(hours=2)
    backdate(app, stuck["id"], updated_at=long_ago, remote_checked_at=long_ago)
    assert app.services.reconciler.run_once() == 1  # type: ignore[union-attr]
    wait_until(lambda: (lambda j: j.attempts >= 1 and j.status == "pending")(jobs(app, REFRESH_POST)[-1]),
               message="refresh attempted and put back")
    refresh = jobs(app, REFRESH_POST)[-1]
    assert refresh.status == "pending" and refresh.run_at > utcnow()  # waiting for budget
    assert len(fake_choppity.calls("GET")) == gets_before
    assert budget.remaining() == reserve

    # A person clicking Publish still gets through.
    assert slack.click(ActionId.PUBLISH, waiting_id, user="U_BOB").status_code == 200
    wait_until(lambda: db_post(app, waiting["id"]).status == "queued", message="click went through")
    assert len(publish_calls(fake_choppity, waiting["id"])) == 1
    assert jobs(app, REFRESH_POST)[-1].status == "pending"
    assert db_post(app, stuck["id"]).status == "queued"
    assert len(fake_choppity.calls("GET")) == gets_before
