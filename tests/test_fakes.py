"""The fakes used by end-to-end tests must enforce the rules they claim to enforce."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.fakes.choppity import FakeChoppity, make_event, sign_choppity, webhook_headers
from tests.fakes.slack import FakeSlack, text_of

SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "*Draft* ready"}}
BUTTONS = {
    "type": "actions",
    "elements": [
        {
            "type": "button",
            "text": {"type": "plain_text", "text": "Publish"},
            "action_id": "pub",
            "style": "primary",
        }
    ],
}
MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "edit",
    "title": {"type": "plain_text", "text": "Edit post"},
    "submit": {"type": "plain_text", "text": "Save"},
    "blocks": [
        {
            "type": "input",
            "block_id": "caption",
            "label": {"type": "plain_text", "text": "Caption"},
            "element": {"type": "plain_text_input", "action_id": "caption", "multiline": True},
        }
    ],
}


# --------------------------------------------------------------------------------------------------
# Slack
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> WebClient:
    return WebClient(token=slack.token, base_url=slack.url)


def slack_error(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as info:
        call(**kwargs)
    data: dict[str, Any] = info.value.response.data
    return data


def test_auth_test_and_bad_token(slack: FakeSlack, client: WebClient) -> None:
    me = client.auth_test()
    assert (me["user_id"], me["bot_id"], me["team_id"]) == ("UBOT", "BBOT", "T1")
    bad = WebClient(token="xoxb-wrong", base_url=slack.url)
    assert slack_error(bad.auth_test)["error"] == "invalid_auth"


def test_post_message_returns_increasing_ts_and_stores_message(slack: FakeSlack, client: WebClient) -> None:
    first = client.chat_postMessage(channel="C0REVIEW", text="one", blocks=[SECTION, BUTTONS])
    second = client.chat_postMessage(channel="C0REVIEW", text="two")
    assert float(second["ts"]) > float(first["ts"])
    [card, plain] = slack.messages()
    assert card.ts == first["ts"] and card.blocks == [SECTION, BUTTONS] and card.user == "UBOT"
    assert plain.blocks == [] and plain.text == "two"
    assert text_of(card) == "*Draft* ready\nPublish"
    assert text_of(plain) == "two"


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_unknown_channel_and_missing_text(client: WebClient) -> None:
    assert slack_error(client.chat_postMessage, channel="C_NOPE", text="x")["error"] == "channel_not_found"
    assert slack_error(client.chat_postMessage, channel="C0REVIEW")["error"] == "no_text"


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_blocks_require_fallback_text(slack: FakeSlack, client: WebClient) -> None:
    data = slack_error(client.chat_postMessage, channel="C0REVIEW", blocks=[SECTION])
    assert data["error"] == "missing_fallback_text"
    assert slack.messages() == []


@pytest.mark.parametrize(
    "blocks",
    [
        [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}],
        [{"type": "no_such_block"}],
        [{"type": "actions", "elements": [{"type": "no_such_element"}]}],
        [{"type": "section"}],
        [{"type": "divider", "block_id": "a"}, {"type": "divider", "block_id": "a"}],
        [{"type": "divider"}] * 51,
        "not a list",
    ],
    ids=["section-too-long", "unknown-type", "unknown-element", "empty-section", "dup-block-id", "51", "str"],
)
def test_invalid_blocks_rejected(slack: FakeSlack, client: WebClient, blocks: Any) -> None:
    data = slack_error(client.chat_postMessage, channel="C0REVIEW", text="t", blocks=blocks)
    assert data["error"] == "invalid_blocks"
    assert data.get("detail")
    assert slack.messages() == []


def test_form_encoded_and_get_requests_are_understood(slack: FakeSlack, client: WebClient) -> None:
    posted = client.api_call(
        "chat.postMessage",
        params={"channel": "C0REVIEW", "text": "form", "blocks": json.dumps([SECTION])},
    )
    assert slack.message("C0REVIEW", posted["ts"]).blocks == [SECTION]  # type: ignore[union-attr]
    assert slack.calls("chat.postMessage")[0].args["blocks"] == [SECTION]
    info = client.api_call("users.info", http_verb="GET", params={"user": "U_BOB"})
    assert info["user"]["tz"] == "America/New_York"


def test_thread_replies_need_existing_parent(slack: FakeSlack, client: WebClient) -> None:
    parent = client.chat_postMessage(channel="C0REVIEW", text="card")["ts"]
    reply = client.chat_postMessage(channel="C0REVIEW", text="audit", thread_ts=parent)["ts"]
    assert [m.text for m in slack.replies("C0REVIEW", parent)] == ["audit"]
    assert [m.ts for m in slack.messages()] == [parent]
    assert slack_error(client.chat_postMessage, channel="C0REVIEW", text="x", thread_ts="1.2")["error"] == (
        "thread_not_found"
    )
    nested = slack_error(client.chat_postMessage, channel="C0REVIEW", text="x", thread_ts=reply)
    assert nested["error"] == "thread_not_found"


def test_update_unknown_ts_is_message_not_found(client: WebClient) -> None:
    data = slack_error(client.chat_update, channel="C0REVIEW", ts="1700000000.999999", text="x")
    assert data["error"] == "message_not_found"


def test_update_semantics(slack: FakeSlack, client: WebClient) -> None:
    ts = client.chat_postMessage(channel="C0REVIEW", text="card", blocks=[SECTION, BUTTONS])["ts"]
    new_section = {"type": "section", "text": {"type": "mrkdwn", "text": "Queued by <@U_ANA>"}}
    client.chat_update(channel="C0REVIEW", ts=ts, text="card", blocks=[new_section])
    msg = slack.message("C0REVIEW", ts)
    assert msg is not None and msg.blocks == [new_section] and msg.updates == 1
    assert "Queued" in text_of(msg)

    client.chat_update(channel="C0REVIEW", ts=ts, text="plain now")
    msg = slack.message("C0REVIEW", ts)
    assert msg is not None and msg.blocks == [] and msg.text == "plain now" and msg.updates == 2
    assert [h["blocks"] for h in msg.history] == [[SECTION, BUTTONS], [new_section]]

    bad = slack_error(client.chat_update, channel="C0REVIEW", ts=ts, text="x", blocks=[{"type": "bogus"}])
    assert bad["error"] == "invalid_blocks"
    assert slack.message("C0REVIEW", ts).updates == 2  # type: ignore[union-attr]


def test_ephemeral_permalink_and_response_url(slack: FakeSlack, client: WebClient) -> None:
    ts = client.chat_postMessage(channel="C0REVIEW", text="card", blocks=[SECTION])["ts"]
    eph = client.chat_postEphemeral(channel="C0REVIEW", user="U_ANA", text="only you")
    assert eph["message_ts"]
    assert [e.text for e in slack.ephemerals("U_ANA")] == ["only you"]
    assert len(slack.messages()) == 1
    assert slack_error(client.chat_update, channel="C0REVIEW", ts=eph["message_ts"], text="x")["error"] == (
        "message_not_found"
    )
    link = client.chat_getPermalink(channel="C0REVIEW", message_ts=ts)["permalink"]
    assert link == f"https://acme.slack.com/archives/C0REVIEW/p{ts.replace('.', '')}"

    url = slack.response_url(channel="C0REVIEW", message_ts=ts)
    assert httpx.post(url, json={"text": "done", "replace_original": True}).status_code == 200
    assert slack.responses() == [{"text": "done", "replace_original": True}]
    msg = slack.message("C0REVIEW", ts)
    assert msg is not None and msg.text == "done" and msg.blocks == []


def test_trigger_is_single_use_and_expires(slack: FakeSlack, client: WebClient) -> None:
    trigger = slack.issue_trigger()
    view = client.views_open(trigger_id=trigger, view=MODAL)["view"]
    assert view["id"].startswith("V") and view["hash"]
    assert [v["id"] for v in slack.open_views()] == [view["id"]]
    assert slack_error(client.views_open, trigger_id=trigger, view=MODAL)["error"] == "exchanged_trigger_id"
    assert slack_error(client.views_open, trigger_id="123.abc", view=MODAL)["error"] == "invalid_trigger_id"
    slack.trigger_ttl = 0.0
    expired = slack_error(client.views_open, trigger_id=slack.issue_trigger(), view=MODAL)
    assert expired["error"] == "expired_trigger_id"


def test_invalid_view_rejected(slack: FakeSlack, client: WebClient) -> None:
    no_submit = {k: v for k, v in MODAL.items() if k != "submit"}
    data = slack_error(client.views_open, trigger_id=slack.issue_trigger(), view=no_submit)
    assert data["error"] == "invalid_arguments"
    long_title = {**MODAL, "title": {"type": "plain_text", "text": "x" * 25}}
    data = slack_error(client.views_open, trigger_id=slack.issue_trigger(), view=long_title)
    assert data["error"] == "invalid_arguments" and "title" in data["detail"]


def test_views_update_hash_conflict(slack: FakeSlack, client: WebClient) -> None:
    view = client.views_open(trigger_id=slack.issue_trigger(), view=MODAL)["view"]
    updated = client.views_update(view_id=view["id"], hash=view["hash"], view=MODAL)["view"]
    assert updated["id"] == view["id"] and updated["hash"] != view["hash"]
    stale = slack_error(client.views_update, view_id=view["id"], hash=view["hash"], view=MODAL)
    assert stale["error"] == "hash_conflict"
    assert slack_error(client.views_update, view_id="V_NOPE", view=MODAL)["error"] == "not_found"


def test_views_publish_home(slack: FakeSlack, client: WebClient) -> None:
    home = {"type": "home", "blocks": [SECTION]}
    client.views_publish(user_id="U_ANA", view=home)
    assert text_of(slack.home_view("U_ANA")) == "*Draft* ready"
    assert slack_error(client.views_publish, user_id="U_ANA", view=MODAL)["error"] == "invalid_arguments"


def test_users_usergroups_and_conversations(slack: FakeSlack, client: WebClient) -> None:
    ana = client.users_info(user="U_ANA")["user"]
    assert ana["tz"] == "Europe/Berlin" and ana["tz_offset"] in (3600, 7200)
    assert ana["tz_label"] in ("Central European Time", "Central European Summer Time")
    assert client.users_info(user="U_CAROL")["user"]["tz_offset"] == 19800
    assert slack_error(client.users_info, user="U_NOBODY")["error"] == "user_not_found"
    slack.add_usergroup("S_EDITORS", ["U_ANA", "U_BOB"])
    assert client.usergroups_users_list(usergroup="S_EDITORS")["users"] == ["U_ANA", "U_BOB"]
    assert slack_error(client.usergroups_users_list, usergroup="S_X")["error"] == "no_such_subteam"
    assert client.conversations_info(channel="C0REVIEW")["channel"]["id"] == "C0REVIEW"
    assert slack_error(client.api_call, api_method="chat.meMessage")["error"] == "unknown_method"


def test_fail_next_has_no_side_effect(slack: FakeSlack, client: WebClient) -> None:
    slack.fail_next("chat.postMessage", retry_after=2)
    with pytest.raises(SlackApiError) as info:
        client.chat_postMessage(channel="C0REVIEW", text="x")
    assert info.value.response.status_code == 429
    assert info.value.response.headers["Retry-After"] == "2"
    assert slack.messages() == [] and slack.ratelimited_count == 1
    client.chat_postMessage(channel="C0REVIEW", text="x")
    assert len(slack.messages()) == 1


def test_post_rate_limit_per_channel(slack: FakeSlack, client: WebClient) -> None:
    slack.set_post_rate_limit(per_second=0.0, burst=2)
    for _ in range(2):
        client.chat_postMessage(channel="C0REVIEW", text="x")
    data = slack_error(client.chat_postMessage, channel="C0REVIEW", text="x")
    assert data["error"] == "ratelimited" and slack.ratelimited_count == 1
    assert len(slack.messages()) == 2
    slack.set_post_rate_limit(None)
    client.chat_postMessage(channel="C0REVIEW", text="x")


def test_wait_for_times_out_with_assertion(slack: FakeSlack) -> None:
    with pytest.raises(AssertionError, match="wait_for timed out"):
        slack.wait_for(lambda: False, timeout=0.05)


# --------------------------------------------------------------------------------------------------
# Choppity
# --------------------------------------------------------------------------------------------------


class FrozenClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def chop() -> Iterator[FakeChoppity]:
    with FakeChoppity() as fake:
        yield fake


@pytest.fixture
def http(chop: FakeChoppity) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=chop.url, headers={"Authorization": f"Key {chop.api_key}"}) as c:
        yield c


def test_choppity_auth(chop: FakeChoppity, http: httpx.Client) -> None:
    bad = httpx.get(f"{chop.url}/v1/ping", headers={"Authorization": "Bearer ck-secret-team_abc"})
    assert bad.status_code == 401
    assert bad.json() == {"error": {"code": "UNAUTHORIZED", "message": "Authentication required"}}
    assert httpx.get(f"{chop.url}/v1/ping").status_code == 401
    ok = http.get("/v1/ping")
    assert ok.json() == {"pong": True, "team_id": "team_abc"}
    assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= set(ok.headers)


def test_choppity_list_and_get(chop: FakeChoppity, http: httpx.Client) -> None:
    clip = chop.add_clip()
    posts = http.get(f"/v1/clips/{clip}/posts").json()["posts"]
    assert [p["platform"] for p in posts] == ["youtube", "tiktok", "instagram", "linkedin"]
    yt, tt, ig, _li = posts
    assert yt["title"] and yt["youtube"] == {"category_id": "22"}
    assert tt["tiktok"]["privacy_level"] == "PUBLIC_TO_EVERYONE" and "title" not in tt
    assert "tiktok" not in ig and "youtube" not in ig
    assert http.get(f"/v1/posts/{yt['id']}").json()["post"] == yt
    assert http.get("/v1/posts/nope").json()["error"]["code"] == "NOT_FOUND"
    assert http.get("/v1/clips/nope/posts").status_code == 404
    assert http.get("/v1/nothing").status_code == 404


def test_choppity_put_rules(chop: FakeChoppity, http: httpx.Client) -> None:
    tt = chop.add_post("tiktok")
    r = http.put(f"/v1/posts/{tt['id']}", json={"caption": "new", "tiktok": {"disable_duet": False}})
    assert r.status_code == 200
    assert r.json()["post"]["caption"] == "new" and r.json()["post"]["tiktok"]["disable_duet"] is False
    assert r.json()["post"]["tiktok"]["disable_stitch"] is True

    r = http.put(f"/v1/posts/{tt['id']}", json={"title": "nope"})
    assert r.status_code == 400 and "title" in r.json()["error"]["message"]
    r = http.put(f"/v1/posts/{tt['id']}", json={"tiktok": {"privacy_level": "EVERYONE"}})
    assert r.status_code == 400
    r = http.put(f"/v1/posts/{tt['id']}", json={"hashtags": []})
    assert r.status_code == 400 and "hashtags" in r.json()["error"]["message"]

    yt = chop.add_post("youtube")
    assert http.put(f"/v1/posts/{yt['id']}", json={"title": "x" * 101}).status_code == 400
    assert http.put(f"/v1/posts/{yt['id']}", json={"title": "a <b>"}).status_code == 400
    assert http.put(f"/v1/posts/{yt['id']}", json={"youtube": {"category_id": "27"}}).status_code == 200

    queued = chop.add_post("instagram", status="queued")
    r = http.put(f"/v1/posts/{queued['id']}", json={"caption": "late"})
    assert r.status_code == 400
    assert r.json()["error"] == {
        "code": "BAD_REQUEST",
        "message": "Only draft posts can be edited (post is queued)",
    }
    assert chop.post(queued["id"])["caption"] != "late"


def test_choppity_publish_and_schedule(chop: FakeChoppity, http: httpx.Client) -> None:
    now_ms = int(time.time() * 1000)
    post = chop.add_post("linkedin")
    r = http.post(f"/v1/posts/{post['id']}/publish", json={"scheduled_at": now_ms + 60_000})
    assert r.status_code == 400 and "5 minutes" in r.json()["error"]["message"]
    r = http.post(
        f"/v1/posts/{post['id']}/publish", json={"scheduled_at": (now_ms + 3_600_000) // 1000 * 1.0}
    )
    assert r.status_code == 400
    r = http.post(f"/v1/posts/{post['id']}/publish", json={"scheduled_at": now_ms + 3_600_000})
    assert r.status_code == 202
    assert (
        r.json()["post"]["status"] == "scheduled" and r.json()["post"]["scheduled_at"] == now_ms + 3_600_000
    )
    r = http.post(f"/v1/posts/{post['id']}/publish", json={})
    assert (
        r.status_code == 400
        and r.json()["error"]["message"] == "Post is scheduled, only drafts can be published"
    )

    now_post = chop.add_post("youtube")
    r = http.post(f"/v1/posts/{now_post['id']}/publish", json={})
    assert r.status_code == 202 and r.json()["post"]["status"] == "queued"
    done = chop.complete_publish(now_post["id"])
    assert done["status"] == "published" and done["published_url"].startswith("https://youtu.be/")


def test_choppity_delete(chop: FakeChoppity, http: httpx.Client) -> None:
    draft = chop.add_post("tiktok")
    r = http.delete(f"/v1/posts/{draft['id']}")
    assert r.status_code == 200 and r.json()["post"]["status"] == "cancelled"
    published = chop.add_post("youtube", status="published")
    r = http.delete(f"/v1/posts/{published['id']}")
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "Post is published and can no longer be cancelled"
    failed = chop.add_post("instagram", status="queued")
    chop.fail_post(failed["id"], "Token expired")
    assert chop.post(failed["id"])["error"] == "Token expired"


def test_choppity_rate_limit() -> None:
    clock = FrozenClock()
    with FakeChoppity(rate_limit_per_minute=3, clock=clock) as fake:
        headers = {"Authorization": f"Key {fake.api_key}"}
        with httpx.Client(base_url=fake.url, headers=headers) as c:
            remaining = [c.get("/v1/ping").headers["X-RateLimit-Remaining"] for _ in range(3)]
            assert remaining == ["2", "1", "0"]
            limited = c.get("/v1/ping")
            assert limited.status_code == 429 and limited.json()["error"]["code"] == "RATE_LIMITED"
            assert int(limited.headers["Retry-After"]) >= 1
            assert fake.rate_limited_count == 1
            clock.now += 61
            assert c.get("/v1/ping").status_code == 200


def test_choppity_fail_next_has_no_side_effect(chop: FakeChoppity, http: httpx.Client) -> None:
    post = chop.add_post("tiktok")
    chop.fail_next("POST", r"/publish$", 503, code="UNAVAILABLE", message="try later", retry_after=7)
    r = http.post(f"/v1/posts/{post['id']}/publish", json={})
    assert (
        r.status_code == 503
        and r.json()["error"]["code"] == "UNAVAILABLE"
        and r.headers["Retry-After"] == "7"
    )
    assert chop.post(post["id"])["status"] == "draft"
    assert http.post(f"/v1/posts/{post['id']}/publish", json={}).status_code == 202
    assert chop.count("POST", r"/publish$") == 2


def test_choppity_lost_answers_after_side_effect(chop: FakeChoppity, http: httpx.Client) -> None:
    hung = chop.add_post("youtube")
    chop.hang_after_processing("POST", r"/publish$", seconds=30)
    with pytest.raises(httpx.ReadTimeout):
        http.post(f"/v1/posts/{hung['id']}/publish", json={}, timeout=0.3)
    assert chop.post(hung["id"])["status"] == "queued"

    dropped = chop.add_post("tiktok")
    chop.drop_connection_next("DELETE", r"/v1/posts/")
    with pytest.raises(httpx.RemoteProtocolError):
        http.delete(f"/v1/posts/{dropped['id']}")
    assert chop.post(dropped["id"])["status"] == "cancelled"

    calls = chop.calls("DELETE")
    assert len(calls) == 1 and calls[0].headers["authorization"] == f"Key {chop.api_key}"


def test_sign_choppity_matches_manual_hmac() -> None:
    body = make_event("post.published", {"post_id": "p1"}, event_id="evt_1", created_ms=1745800000000)
    assert json.loads(body) == {
        "id": "evt_1",
        "type": "post.published",
        "created": 1745800000000,
        "data": {"post_id": "p1"},
    }
    expected = hmac.new(b"whsec", b"1745800000." + body, hashlib.sha256).hexdigest()
    assert sign_choppity(body, "whsec", 1745800000) == f"t=1745800000,v1={expected}"
    headers = webhook_headers(body, "whsec", t=1745800000)
    assert headers == {
        "content-type": "application/json",
        "choppity-signature-256": f"t=1745800000,v1={expected}",
    }
