"""Hostile input at the HTTP boundary: untrusted text, malformed signed payloads, odd ids, big bodies.

Everything here goes through the real server: signed Slack requests and signed webhooks in, the
fake Slack and fake Choppity out. What comes back must be a 4xx or a clear message in the right
place, never a 500, never an action on the wrong post, and never live markup in Slack.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.forms import FieldId
from bot.slack.ids import ActionId, ViewId
from tests.fakes.choppity import FakeChoppity, make_event, webhook_headers
from tests.fakes.slack import FakeSlack
from tests.harness import (
    CHANNEL,
    SIGNING_SECRET,
    WEBHOOK_SECRET,
    Greenlight,
    SlackDriver,
    audit,
    buttons,
    card,
    card_up,
    db_post,
    live_markup_problems,
    replies_about,
    text_of,
    wait_until,
)

# Everything that would be live markup if it went into mrkdwn unescaped.
HOSTILE = "<!channel> <!here> <@U_EVIL> <!subteam^S0EVIL> & < > <https://evil.example|log in> *bold*"


# -- text from people and providers is text ---------------------------------------------------------


def test_hostile_text_reaches_slack_only_as_text(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    # A title, a caption and a clip id from Choppity.
    yt_id, yt = card_up(app, fake_choppity, "youtube", title=f"Title {HOSTILE}"[:100], caption=f"Caption {HOSTILE}")
    # A cancel reason someone types.
    li_id, li = card_up(app, fake_choppity, "linkedin")
    slack.click(ActionId.CANCEL, li_id)
    slack.submit(slack.latest_view(ViewId.CANCEL), values={FieldId.REASON.value: {"type": "plain_text_input",
                                                                                 "value": f"Reason {HOSTILE}"}})
    # A failure reason from Choppity, and a published URL with markup characters in it.
    tt_id, tt = card_up(app, fake_choppity, "tiktok")
    ig_id, ig = card_up(app, fake_choppity, "instagram")
    for post_id in (tt_id, ig_id):
        slack.click(ActionId.PUBLISH, post_id)
    app.settle()
    fake_choppity.fail_post(tt["id"], f"Upload failed {HOSTILE}")
    fake_choppity.complete_publish(ig["id"], url="https://instagram.example/p/x>|<!channel>")
    app.choppity_event("post.failed", {"post_id": tt["id"]})
    app.choppity_event("post.published", {"post_id": ig["id"]})
    # A provider error that echoes the request, API key included.
    key = fake_choppity.api_key
    yt2_id, yt2 = card_up(app, fake_choppity, "youtube")
    fake_choppity.fail_next("POST", r"/publish$", 400, "BAD_REQUEST", f"Bad request {HOSTILE} (Authorization: Key {key})")
    slack.click(ActionId.PUBLISH, yt2_id)
    # A slash command with markup in it.
    slack.command(f"frobnicate {HOSTILE}")
    app.settle()

    wait_until(lambda: any("Couldn't publish" in e.text for e in fake_slack.ephemerals("U_ANA")), message="error note")
    problems = live_markup_problems(fake_slack, secrets=(key,))
    assert problems == []
    # ...and the text is still there for people to read, as text.
    assert "Reason <!channel>" in "\n".join(text_of(r) for r in replies_about(fake_slack, db_post(app, li["id"])))
    failed = text_of(card(fake_slack, app, tt["id"]))
    assert "Upload failed <!channel> <!here> <@U_EVIL>" in failed
    published = card(fake_slack, app, ig["id"])
    assert "View on Instagram" in text_of(published) and "instagram.example/p/x>" not in str(published.blocks)
    assert "Title <!channel>" in text_of(card(fake_slack, app, yt["id"]))
    assert "[REDACTED]" in fake_slack.ephemerals("U_ANA")[-1].text
    assert all(key not in (row[2] or "") for row in _audit_details(app))


def _audit_details(app: Greenlight) -> list[tuple[Any, Any, Any]]:
    from sqlmodel import Session, select

    from bot.models import AuditEvent

    with Session(app.services.engine) as session:
        return [(r.actor, r.action, r.detail) for r in session.exec(select(AuditEvent)).all()]


# -- every well-signed Slack request reaches its listener -------------------------------------------


@pytest.mark.parametrize("clip_id", ["payload-7f3a", "command", "type", "payload", "view_submission", "ssl_check"])
def test_commands_whose_text_bolt_would_misread_reach_the_listener(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity, clip_id: str
) -> None:
    response, url = slack.command(f"clip {clip_id}")
    assert response.status_code == 200, response.text
    assert f"Looking up the drafts of clip `{clip_id}`" in response.text
    wait_until(lambda: bool(fake_slack.responses(url)), message="answer")
    assert "Couldn't read clip" in fake_slack.responses(url)[-1]["text"]  # the fake knows no such clip


def test_clicks_submissions_and_events_with_such_words_reach_their_listeners(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    post_id, remote = card_up(app, fake_choppity, "linkedin")
    slack.click(ActionId.EDIT, post_id)
    view = slack.latest_view(ViewId.EDIT)
    caption = "payload=1&command=/greenlight&type=view_submission ssl_check=1 %41 ✨"
    response = slack.submit(view, values={FieldId.CAPTION.value: {"type": "plain_text_input", "value": caption}})
    assert response.status_code == 200 and response.content == b""
    app.settle()
    assert fake_choppity.post(remote["id"])["caption"] == caption
    assert slack.event({"type": "app_home_opened", "user": "U_BOB", "tab": "home", "channel": "D0PAYLOAD"}).status_code == 200
    wait_until(lambda: fake_slack.home_view("U_BOB") is not None, message="home published")


# -- signed but malformed payloads --------------------------------------------------------------------


def _signed(slack: SlackDriver, body: str | bytes, content_type: str = "application/x-www-form-urlencoded") -> httpx.Response:
    raw = body.encode() if isinstance(body, str) else body
    ts = str(int(time.time()))
    # Signed over the raw bytes (slack_sdk's helper would insist on UTF-8).
    signature = "v0=" + hmac.new(SIGNING_SECRET.encode(), f"v0:{ts}:".encode() + raw, hashlib.sha256).hexdigest()
    return httpx.post(f"{slack.app.url}/slack/events", content=raw, timeout=10, headers={
        "content-type": content_type, "x-slack-request-timestamp": ts, "x-slack-signature": signature})


def _click_payload(slack: SlackDriver, value: Any, **changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "block_actions", "user": {"id": "U_ANA", "team_id": "T1"}, "team": {"id": "T1"},
        "container": {"type": "message", "message_ts": "1.0", "channel_id": CHANNEL},
        "channel": {"id": CHANNEL}, "trigger_id": slack.slack.issue_trigger(),
        "actions": [{"action_id": ActionId.PUBLISH.value, "block_id": "b", "type": "button", "value": value}],
    }
    payload.update(changes)
    return payload


def test_malformed_signed_payloads_get_a_4xx_and_change_nothing(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    post_id, remote = card_up(app, fake_choppity, "youtube")
    deep = "[" * 5000 + "]" * 5000
    bodies: list[tuple[str, str]] = [
        ("payload=" + deep, "application/x-www-form-urlencoded"),
        ("payload=not json", "application/x-www-form-urlencoded"),
        ("payload=[1,2,3]", "application/x-www-form-urlencoded"),
        (urlencode({"payload": json.dumps({k: v for k, v in _click_payload(slack, "1").items() if k != "user"})}),
         "application/x-www-form-urlencoded"),
        (urlencode({"payload": json.dumps(_click_payload(slack, "1", user={"id": "U" + "A" * 200}))}),
         "application/x-www-form-urlencoded"),
        ('{"type": "event_callback", "event": ' + deep + "}", "application/json"),
        ("[]", "application/json"),
        ("", "application/x-www-form-urlencoded"),
        ("\xff\xfe", "application/x-www-form-urlencoded"),
        ("payload=%FF%FE", "application/x-www-form-urlencoded"),
        ("text=hello", "text/plain"),
    ]
    for body, content_type in bodies:
        response = _signed(slack, body, content_type)
        assert 400 <= response.status_code < 500, (body[:80], response.status_code, response.text)
    # A button value beyond any post id, or not a plain number: refused with a clear note, nothing done.
    for value in (str(2**63), "9" * 40, "1.9", "-1", "+1", " 1", "01", "１"):
        response = _signed(slack, urlencode({"payload": json.dumps(_click_payload(slack, value))}))
        assert response.status_code < 500
    app.settle()
    assert db_post(app, remote["id"]).status == "draft"
    assert fake_choppity.calls("POST", "/publish") == []
    notes = [e.text for e in fake_slack.ephemerals("U_ANA")]
    assert notes and all("doesn't know this post" in n for n in notes)


@pytest.mark.parametrize("metadata", ['{"post_id": true}', '{"post_id": 1.9}', '{"post_id": "1"}', "1.9", "[1]",
                                      '{"post_id": 99999999999999999999}', '{"post_id": 0}', "{}"])
def test_private_metadata_that_names_no_post_is_an_inline_error_and_edits_nothing(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity, metadata: str
) -> None:
    post_id, remote = card_up(app, fake_choppity, "linkedin")
    assert post_id == 1
    slack.click(ActionId.EDIT, post_id)
    view = dict(slack.latest_view(ViewId.EDIT))
    view["private_metadata"] = metadata
    response = slack.submit(view, values={FieldId.CAPTION.value: {"type": "plain_text_input", "value": "changed"}})
    assert response.status_code == 200
    assert response.json()["response_action"] == "errors"
    assert "doesn't know this post" in response.json()["errors"][FieldId.CAPTION.value]
    app.settle()
    assert fake_choppity.calls("PUT") == []
    assert db_post(app, remote["id"]).content["caption"] != "changed"


@pytest.mark.parametrize("value", [10**13, int("9" * 30), "9" * 30, 1.5, True, -1])
def test_schedule_time_out_of_any_range_is_an_inline_error(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity, value: Any
) -> None:
    post_id, _ = card_up(app, fake_choppity, "youtube")
    slack.click(ActionId.SCHEDULE, post_id)
    view = slack.latest_view(ViewId.SCHEDULE)
    response = slack.submit(view, values={FieldId.WHEN.value: {"type": "datetimepicker", "selected_date_time": value}})
    assert response.status_code in (200, 400), response.text
    if response.status_code == 200:
        assert response.json()["response_action"] == "errors"
    app.settle()
    assert fake_choppity.calls("POST", "/publish") == []


@pytest.mark.parametrize("bad", ["\ud800 lone surrogate", "NUL \x00 inside", "bell \x07"])
def test_text_that_cannot_be_stored_is_an_inline_error_not_a_failing_job(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity, bad: str
) -> None:
    post_id, remote = card_up(app, fake_choppity, "linkedin")
    slack.click(ActionId.EDIT, post_id)
    response = slack.submit(slack.latest_view(ViewId.EDIT),
                            values={FieldId.CAPTION.value: {"type": "plain_text_input", "value": bad}})
    assert response.status_code == 200
    assert response.json() == {"response_action": "errors",
                               "errors": {FieldId.CAPTION.value: "This text contains characters Slack can't store; please retype it."}}
    app.settle()
    post = db_post(app, remote["id"])
    assert post.pending_action is None and fake_choppity.calls("PUT") == []
    assert "Saving your edit" not in text_of(card(fake_slack, app, remote["id"]))


# -- ids from webhooks stay in their path segment -------------------------------------------------------


@pytest.mark.parametrize("post_id", ["..", ".", "../keys", "a/b", "x?y=1", "%2e%2e"])
def test_webhook_ids_never_leave_their_path_segment(
    app: Greenlight, fake_choppity: FakeChoppity, post_id: str
) -> None:
    response = app.choppity_event("post.draft.created", {"post_id": post_id, "clip_id": post_id})
    assert response.status_code == 200
    app.settle()
    paths = [c.path for c in fake_choppity.calls()]
    assert all(p.startswith(("/v1/posts/", "/v1/clips/")) and p.count("/") >= 3 for p in paths), paths
    assert "/v1" not in paths and "/v1/keys" not in paths


# -- bodies: size before anything else ----------------------------------------------------------------


def _chunks(total: int, size: int = 1 << 20) -> Iterator[bytes]:
    block = b"a" * size
    sent = 0
    while sent < total:
        yield block[: min(size, total - sent)]
        sent += size


@pytest.mark.parametrize("path", ["/slack/events", "/webhooks/choppity", "/webhooks/reap/whatever-token-123"])
def test_oversized_bodies_are_refused_while_streaming_and_by_content_length(app: Greenlight, path: str) -> None:
    # Announced: refused at once, before a byte of the body is sent.
    assert _status_of_announced(app.url, path, 300 * 2**20) in (404, 413)
    # Streamed without a length (chunked): refused once the limit is passed.
    try:
        streamed = httpx.post(f"{app.url}{path}", content=_chunks(300 * 2**20), timeout=30,
                              headers={"content-type": "application/json"})
        assert streamed.status_code in (404, 413)
    except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
        pass  # the server closed the connection after answering; it never read the rest


def _status_of_announced(base_url: str, path: str, length: int) -> int:
    """Send only the headers of a request announcing `length` bytes; the status the server answers."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {length}\r\n\r\n".encode())
        head = sock.recv(4096).decode("latin-1")
    return int(head.split(" ", 2)[1])


# -- hypothesis: generated signed requests never give a 5xx ---------------------------------------------

def _json_containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    _json_containers,
    max_leaves=20,
)


@st.composite
def _slack_bodies(draw: st.DrawFn) -> tuple[bytes, str]:
    kind = draw(st.sampled_from(["action", "submission", "command", "event", "raw"]))
    if kind == "raw":
        return draw(st.binary(max_size=300)), draw(st.sampled_from(["application/json", "application/x-www-form-urlencoded"]))
    if kind == "command":
        form = {"command": "/greenlight", "text": draw(st.text(max_size=60)), "user_id": draw(st.sampled_from(["U_ANA", "U" + "Z" * 40, ""])),
                "channel_id": CHANNEL, "team_id": "T1", "trigger_id": "1.2", "response_url": draw(st.sampled_from(
                    ["https://hooks.slack.com/commands/1", "http://169.254.169.254/", "x"]))}
        return urlencode(form).encode(), "application/x-www-form-urlencoded"
    if kind == "event":
        event = {"type": draw(st.sampled_from(["app_home_opened", "message", "x"])), "user": draw(st.text(max_size=12)),
                 "tab": draw(st.text(max_size=8))}
        return json.dumps({"type": "event_callback", "event": event, "event_id": "Ev1"}).encode(), "application/json"
    payload: dict[str, Any] = {
        "type": "block_actions" if kind == "action" else "view_submission",
        "user": draw(st.sampled_from([{"id": "U_ANA"}, {"id": 5}, {}, None, {"id": "U_" + "X" * 50}])),
        "trigger_id": "1.2",
        "actions": [{"action_id": draw(st.sampled_from([a.value for a in ActionId])), "type": "button",
                     "value": draw(st.one_of(st.text(max_size=25), st.integers().map(str)))}],
        "view": {"id": "V1", "callback_id": draw(st.sampled_from([v.value for v in ViewId])),
                 "private_metadata": draw(st.one_of(st.text(max_size=20), _json_values.map(json.dumps))),
                 "state": {"values": draw(st.dictionaries(st.sampled_from([f.value for f in FieldId]),
                                                          st.dictionaries(st.text(max_size=5), _json_values, max_size=2), max_size=3))}},
        "extra": draw(_json_values),
    }
    return urlencode({"payload": json.dumps(payload)}).encode(), "application/x-www-form-urlencoded"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_slack_bodies())
def test_generated_signed_slack_requests_never_get_a_5xx(app: Greenlight, slack: SlackDriver, body: tuple[bytes, str]) -> None:
    raw, content_type = body
    response = _signed(slack, raw, content_type)
    assert response.status_code < 500, (raw[:200], response.status_code, response.text[:200])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.dictionaries(st.sampled_from(["post_id", "clip_id", "id", "post", "error", "published_url"]),
                            _json_values, max_size=4),
       event_type=st.sampled_from(["post.draft.created", "post.published", "post.failed", "post.scheduled", "x"]))
def test_generated_signed_webhooks_never_get_a_5xx(app: Greenlight, data: dict[str, Any], event_type: str) -> None:
    body = make_event(event_type, data)
    response = app.post_webhook(body, webhook_headers(body, WEBHOOK_SECRET))
    assert response.status_code < 500


def test_after_the_storm_the_app_still_works(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    post_id, remote = card_up(app, fake_choppity, "youtube")
    _signed(slack, "payload=" + "[" * 5000)
    slack.click(ActionId.PUBLISH, post_id)
    app.settle()
    assert db_post(app, remote["id"]).status == "queued"
    assert buttons(card(fake_slack, app, remote["id"])) == [ActionId.CANCEL]
    assert ("U_ANA", "publish", "ok") in audit(app, post_id)
