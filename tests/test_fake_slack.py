"""FakeSlack must be as strict and as unreliable as real Slack: scopes, membership, history, uploads,
lost answers. Every test talks to the fake over real HTTP (slack_sdk's WebClient or httpx)."""

from __future__ import annotations

import hashlib
import threading
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.fakes.slack import DEFAULT_SCOPES, PERMALINK_BASE, FakeSlack

CHANNEL = "C0REVIEW"
MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "edit",
    "title": {"type": "plain_text", "text": "Edit post"},
    "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}],
}


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as slack:
        yield slack


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    # No retry handlers: each test sees exactly what the fake answered, not slack_sdk's retry of it.
    return WebClient(token=fake.token, base_url=fake.url, retry_handlers=[])


def slack_error(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as info:
        call(**kwargs)
    data: dict[str, Any] = info.value.response.data
    return data


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


# --------------------------------------------------------------------------------------------------
# conversations.history
# --------------------------------------------------------------------------------------------------


def test_history_is_newest_first_top_level_and_broadcast_replies(fake: FakeSlack, client: WebClient) -> None:
    card = client.chat_postMessage(
        channel=CHANNEL, text="card", metadata={"event_type": "post", "event_payload": {"id": 7}}
    )["ts"]
    client.chat_postMessage(channel=CHANNEL, text="quiet reply", thread_ts=card)
    loud = client.chat_postMessage(channel=CHANNEL, text="loud reply", thread_ts=card, reply_broadcast=True)["ts"]
    human = fake.add_message(CHANNEL, "nice one", user="U_ANA")

    history = client.conversations_history(channel=CHANNEL)
    messages = history["messages"]
    assert [m["text"] for m in messages] == ["nice one", "loud reply", "card"]
    assert history["has_more"] is False and "response_metadata" not in history.data
    by_ts = {m["ts"]: m for m in messages}
    assert by_ts[human]["user"] == "U_ANA" and "bot_id" not in by_ts[human]
    assert by_ts[loud]["subtype"] == "thread_broadcast" and by_ts[loud]["thread_ts"] == card
    parent = by_ts[card]
    assert parent["bot_id"] == "BBOT" and parent["reply_count"] == 2 and parent["latest_reply"] == loud
    assert "metadata" not in parent  # only with include_all_metadata

    with_meta = client.conversations_history(channel=CHANNEL, include_all_metadata=True)["messages"]
    assert with_meta[-1]["metadata"] == {"event_type": "post", "event_payload": {"id": 7}}


def test_history_paginates_with_cursor(fake: FakeSlack, client: WebClient) -> None:
    posted = [client.chat_postMessage(channel=CHANNEL, text=f"m{i}")["ts"] for i in range(5)]

    first = client.conversations_history(channel=CHANNEL, limit=2)
    assert [m["ts"] for m in first["messages"]] == posted[::-1][:2]
    assert first["has_more"] is True
    cursor = first["response_metadata"]["next_cursor"]
    second = client.conversations_history(channel=CHANNEL, limit=2, cursor=cursor)
    assert [m["ts"] for m in second["messages"]] == posted[::-1][2:4]

    # slack_sdk's own page iteration follows next_cursor to the end (it reuses one response object).
    pages = [dict(page.data) for page in client.conversations_history(channel=CHANNEL, limit=2)]
    assert [len(p["messages"]) for p in pages] == [2, 2, 1]
    assert [m["ts"] for p in pages for m in p["messages"]] == posted[::-1]
    assert pages[-1]["has_more"] is False

    assert slack_error(client.conversations_history, channel=CHANNEL, cursor="bm9wZQ==")["error"] == (
        "invalid_cursor"
    )


def test_history_limit_defaults_to_100_and_caps_at_999(fake: FakeSlack, client: WebClient) -> None:
    for i in range(1001):
        fake.add_message(CHANNEL, f"h{i}")
    assert len(client.conversations_history(channel=CHANNEL)["messages"]) == 100
    capped = client.conversations_history(channel=CHANNEL, limit=5000)
    assert len(capped["messages"]) == 999 and capped["has_more"] is True


def test_history_oldest_latest_inclusive(client: WebClient) -> None:
    ts = [client.chat_postMessage(channel=CHANNEL, text=f"m{i}")["ts"] for i in range(4)]

    def texts(**kwargs: Any) -> list[str]:
        return [m["text"] for m in client.conversations_history(channel=CHANNEL, **kwargs)["messages"]]

    assert texts(oldest=ts[1], latest=ts[3]) == ["m2"]
    assert texts(oldest=ts[1], latest=ts[3], inclusive=True) == ["m3", "m2", "m1"]
    assert texts(oldest=ts[2]) == ["m3"]
    assert texts(latest=ts[1]) == ["m0"]
    assert slack_error(client.conversations_history, channel=CHANNEL, oldest="soon")["error"] == "invalid_ts_oldest"


def test_history_needs_membership_even_where_the_bot_can_post(fake: FakeSlack, client: WebClient) -> None:
    fake.add_channel("C_PUBLIC", "general", bot_member=False)
    client.chat_postMessage(channel="C_PUBLIC", text="via chat:write.public")
    assert slack_error(client.conversations_history, channel="C_PUBLIC")["error"] == "not_in_channel"
    assert slack_error(client.conversations_history, channel="C_NOPE")["error"] == "channel_not_found"


# --------------------------------------------------------------------------------------------------
# Membership and conversations.join
# --------------------------------------------------------------------------------------------------


def test_join_public_channel_then_read_it(fake: FakeSlack, client: WebClient) -> None:
    fake.add_channel("C_PUBLIC", "general", bot_member=False)
    assert client.conversations_info(channel="C_PUBLIC")["channel"]["is_member"] is False

    joined = client.conversations_join(channel="C_PUBLIC")
    assert joined["channel"]["id"] == "C_PUBLIC" and joined["channel"]["is_member"] is True
    assert "warning" not in joined.data
    assert fake.is_bot_member("C_PUBLIC")
    assert client.conversations_history(channel="C_PUBLIC")["messages"] == []

    again = client.conversations_join(channel="C_PUBLIC")
    assert again["warning"] == "already_in_channel"


def test_join_refuses_private_and_unknown_channels(fake: FakeSlack, client: WebClient) -> None:
    fake.add_channel("G_SECRET", "secret", is_private=True, bot_member=False)
    assert slack_error(client.conversations_join, channel="G_SECRET")["error"] == (
        "method_not_supported_for_channel_type"
    )
    assert not fake.is_bot_member("G_SECRET")
    assert slack_error(client.conversations_join, channel="C_NOPE")["error"] == "channel_not_found"


def test_posting_outside_membership(fake: FakeSlack, client: WebClient) -> None:
    fake.add_channel("C_PUBLIC", "general", bot_member=False)
    fake.add_channel("G_SECRET", "secret", is_private=True, bot_member=False)

    client.chat_postMessage(channel="C_PUBLIC", text="allowed by chat:write.public")
    assert not fake.is_bot_member("C_PUBLIC")  # posting does not join
    assert slack_error(client.chat_postMessage, channel="G_SECRET", text="x")["error"] == "not_in_channel"
    assert slack_error(client.chat_postEphemeral, channel="G_SECRET", user="U_ANA", text="x")["error"] == (
        "not_in_channel"
    )

    fake.set_scopes(DEFAULT_SCOPES - {"chat:write.public"})
    assert slack_error(client.chat_postMessage, channel="C_PUBLIC", text="x")["error"] == "not_in_channel"
    assert [m.text for m in fake.messages("C_PUBLIC")] == ["allowed by chat:write.public"]
    assert fake.messages("G_SECRET") == []

    fake.set_bot_member("G_SECRET")  # invited
    client.chat_postMessage(channel="G_SECRET", text="hello")
    assert [m.text for m in fake.messages("G_SECRET")] == ["hello"]


# --------------------------------------------------------------------------------------------------
# Scopes
# --------------------------------------------------------------------------------------------------


def test_every_answer_names_the_granted_scopes(fake: FakeSlack) -> None:
    headers = {"Authorization": f"Bearer {fake.token}"}
    answer = httpx.post(f"{fake.url}chat.postMessage", json={"channel": CHANNEL, "text": "x"}, headers=headers)
    assert answer.json()["ok"] is True
    assert answer.headers["x-oauth-scopes"] == ",".join(sorted(DEFAULT_SCOPES))
    assert answer.headers["x-accepted-oauth-scopes"] == "chat:write"
    failed = httpx.post(f"{fake.url}chat.update", json={"channel": CHANNEL, "ts": "1.0", "text": "x"}, headers=headers)
    assert failed.json()["error"] == "message_not_found" and "x-oauth-scopes" in failed.headers

    fake.set_scopes(["chat:write", "commands"])
    assert httpx.post(f"{fake.url}auth.test", headers=headers).headers["x-oauth-scopes"] == "chat:write,commands"


def test_missing_scope_names_needed_and_provided(fake: FakeSlack, client: WebClient) -> None:
    fake.add_channel("G_SECRET", "secret", is_private=True)
    fake.set_scopes(["chat:write", "channels:history", "channels:read"])

    data = slack_error(client.users_info, user="U_ANA")
    assert data == {
        "ok": False,
        "error": "missing_scope",
        "needed": "users:read",
        "provided": "channels:history,channels:read,chat:write",
    }
    assert slack_error(client.usergroups_users_list, usergroup="S1")["needed"] == "usergroups:read"
    assert slack_error(client.conversations_join, channel=CHANNEL)["needed"] == "channels:join"
    assert slack_error(client.files_getUploadURLExternal, filename="a.txt", length=3)["needed"] == "files:write"
    # The history/info scope depends on the channel type.
    client.conversations_history(channel=CHANNEL)
    client.conversations_info(channel=CHANNEL)
    assert slack_error(client.conversations_history, channel="G_SECRET")["needed"] == "groups:history"
    assert slack_error(client.conversations_info, channel="G_SECRET")["needed"] == "groups:read"

    fake.set_scopes([])
    assert slack_error(client.chat_postMessage, channel=CHANNEL, text="x")["needed"] == "chat:write"
    assert fake.messages() == []
    # auth.test, views.* and chat.getPermalink need no scope at all.
    assert client.auth_test()["ok"] is True
    assert client.views_open(trigger_id=fake.issue_trigger(), view=MODAL)["ok"] is True
    fake.add_message(CHANNEL, "human")
    assert client.chat_getPermalink(channel=CHANNEL, message_ts=fake.messages()[0].ts)["ok"] is True


# --------------------------------------------------------------------------------------------------
# Token state
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("error", ["token_revoked", "invalid_auth", "account_inactive"])
def test_revoked_token_fails_every_call_until_restored(fake: FakeSlack, client: WebClient, error: str) -> None:
    fake.revoke_token(error)
    assert slack_error(client.auth_test)["error"] == error
    assert slack_error(client.chat_postMessage, channel=CHANNEL, text="x")["error"] == error
    assert slack_error(client.views_open, trigger_id=fake.issue_trigger(), view=MODAL)["error"] == error
    assert fake.messages() == [] and fake.open_views() == []

    fake.restore_token()
    assert client.auth_test()["ok"] is True
    client.chat_postMessage(channel=CHANNEL, text="back")
    assert len(fake.messages()) == 1


def test_revoke_token_rejects_unknown_errors(fake: FakeSlack) -> None:
    with pytest.raises(ValueError):
        fake.revoke_token("nope")


# --------------------------------------------------------------------------------------------------
# Lost and slow answers, latency
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("how", "status", "error"), [("500", 500, "internal_error"), ("503", 503, "service_unavailable")])
def test_lost_answer_5xx_after_the_call_took_effect(
    fake: FakeSlack, client: WebClient, how: str, status: int, error: str
) -> None:
    fake.lose_answer_next("chat.postMessage", how=how)
    with pytest.raises(SlackApiError) as info:
        client.chat_postMessage(channel=CHANNEL, text="posted anyway")
    assert info.value.response.status_code == status and info.value.response["error"] == error
    assert [m.text for m in fake.messages()] == ["posted anyway"]
    [call] = fake.calls("chat.postMessage")
    assert call.lost == how and call.http_status == status

    client.chat_postMessage(channel=CHANNEL, text="next one is answered")
    assert len(fake.messages()) == 2


def test_lost_answer_drop_closes_the_socket_after_applying(fake: FakeSlack, client: WebClient) -> None:
    ts = client.chat_postMessage(channel=CHANNEL, text="v1")["ts"]
    fake.lose_answer_next("chat.update", how="drop")
    with pytest.raises(Exception) as info:
        client.chat_update(channel=CHANNEL, ts=ts, text="v2")
    assert not isinstance(info.value, SlackApiError)  # no answer at all, not an error answer
    assert fake.message(CHANNEL, ts).text == "v2"  # type: ignore[union-attr]
    assert fake.calls("chat.update")[0].error == "connection_dropped"


def test_default_connection_retry_posts_twice_after_a_dropped_answer(fake: FakeSlack) -> None:
    retrying = WebClient(token=fake.token, base_url=fake.url)  # slack_sdk's default: one connection retry
    fake.lose_answer_next("chat.postMessage", how="drop")
    retrying.chat_postMessage(channel=CHANNEL, text="card")
    assert [m.text for m in fake.messages()] == ["card", "card"]


def test_slow_answer_outlives_the_client_timeout(fake: FakeSlack) -> None:
    impatient = WebClient(token=fake.token, base_url=fake.url, timeout=0.3, retry_handlers=[])  # type: ignore[arg-type]
    fake.lose_answer_next("chat.postMessage", how="slow", seconds=2.0)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        impatient.chat_postMessage(channel=CHANNEL, text="late")
    assert time.monotonic() - started < 1.5
    assert [m.text for m in fake.messages()] == ["late"]
    assert fake.calls("chat.postMessage")[0].lost == "slow"


def test_lose_answer_next_validates_how(fake: FakeSlack) -> None:
    with pytest.raises(ValueError):
        fake.lose_answer_next("chat.postMessage", how="explode")


def test_latency_applies_to_every_call_without_serialising_them(fake: FakeSlack, client: WebClient) -> None:
    fake.latency(0.4)
    took: list[float] = []

    def call() -> None:
        started = time.monotonic()
        client.chat_postMessage(channel=CHANNEL, text="x")
        took.append(time.monotonic() - started)

    threads = [threading.Thread(target=call) for _ in range(6)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert len(took) == 6 and min(took) >= 0.4
    assert elapsed < 1.2  # six calls of 0.4 s each overlapped instead of queueing (2.4 s)
    assert len(fake.messages()) == 6

    fake.latency(0)
    started = time.monotonic()
    client.auth_test()
    assert time.monotonic() - started < 0.3


# --------------------------------------------------------------------------------------------------
# Transient errors (fail_next)
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("error", ["channel_not_found", "message_not_found"])
def test_fail_next_on_update_has_no_side_effect(fake: FakeSlack, client: WebClient, error: str) -> None:
    ts = client.chat_postMessage(channel=CHANNEL, text="v1")["ts"]
    fake.fail_next("chat.update", error)
    assert slack_error(client.chat_update, channel=CHANNEL, ts=ts, text="v2")["error"] == error
    assert fake.message(CHANNEL, ts).text == "v1"  # type: ignore[union-attr]
    client.chat_update(channel=CHANNEL, ts=ts, text="v2")
    assert fake.message(CHANNEL, ts).text == "v2"  # type: ignore[union-attr]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_fail_next_with_server_error_status(fake: FakeSlack, client: WebClient, status: int) -> None:
    fake.fail_next("chat.postMessage", "internal_error", status=status)
    with pytest.raises(SlackApiError) as info:
        client.chat_postMessage(channel=CHANNEL, text="x")
    assert info.value.response.status_code == status
    assert fake.messages() == []
    assert fake.count("chat.postMessage") == 1 and fake.count("chat.postMessage", ok=False) == 1


# --------------------------------------------------------------------------------------------------
# Text limits
# --------------------------------------------------------------------------------------------------


def test_text_limits_on_post_and_update(fake: FakeSlack, client: WebClient) -> None:
    ts = client.chat_postMessage(channel=CHANNEL, text="x" * 4001)["ts"]  # fine for a new message
    assert slack_error(client.chat_postMessage, channel=CHANNEL, text="x" * 40_001)["error"] == "msg_too_long"
    assert slack_error(client.chat_update, channel=CHANNEL, ts=ts, text="y" * 4001)["error"] == "msg_too_long"
    assert fake.message(CHANNEL, ts).text == "x" * 4001  # type: ignore[union-attr]
    client.chat_update(channel=CHANNEL, ts=ts, text="y" * 4000)
    assert fake.message(CHANNEL, ts).text == "y" * 4000  # type: ignore[union-attr]


def test_cumulative_block_text_limit(fake: FakeSlack, client: WebClient) -> None:
    at_limit = [section("a" * 3000) for _ in range(4)]  # 12,000: every block and the total are allowed
    ts = client.chat_postMessage(channel=CHANNEL, text="card", blocks=at_limit)["ts"]
    over = [*at_limit, {"type": "context", "elements": [{"type": "mrkdwn", "text": "b"}]}]
    assert slack_error(client.chat_postMessage, channel=CHANNEL, text="card", blocks=over)["error"] == (
        "msg_blocks_too_long"
    )
    assert slack_error(client.chat_update, channel=CHANNEL, ts=ts, text="card", blocks=over)["error"] == (
        "msg_blocks_too_long"
    )
    assert fake.message(CHANNEL, ts).blocks == at_limit  # type: ignore[union-attr]
    assert slack_error(client.chat_postMessage, channel=CHANNEL, text="t", blocks=[section("c" * 3001)])["error"] == (
        "invalid_blocks"
    )
    assert slack_error(client.chat_postMessage, channel=CHANNEL, blocks=[section("c")])["error"] == (
        "missing_fallback_text"
    )

    fake.MAX_BLOCKS_TEXT = 100  # a test may lower the threshold on its instance
    assert slack_error(client.chat_postMessage, channel=CHANNEL, text="t", blocks=[section("d" * 101)])["error"] == (
        "msg_blocks_too_long"
    )
    assert len(fake.messages()) == 1


# --------------------------------------------------------------------------------------------------
# Permalinks and identity
# --------------------------------------------------------------------------------------------------


def test_permalinks_match_auth_test_url(fake: FakeSlack, client: WebClient) -> None:
    auth = client.auth_test()
    assert auth["url"] == "https://acme.slack.com/" and auth["team"] == "Acme"
    assert PERMALINK_BASE + "/" == auth["url"]

    parent = client.chat_postMessage(channel=CHANNEL, text="card")["ts"]
    reply = client.chat_postMessage(channel=CHANNEL, text="audit", thread_ts=parent)["ts"]
    link = client.chat_getPermalink(channel=CHANNEL, message_ts=parent)["permalink"]
    # What the app can compute locally from auth.test's url.
    assert link == f"{auth['url']}archives/{CHANNEL}/p{parent.replace('.', '')}"
    reply_link = client.chat_getPermalink(channel=CHANNEL, message_ts=reply)["permalink"]
    assert reply_link == f"{auth['url']}archives/{CHANNEL}/p{reply.replace('.', '')}?thread_ts={parent}&cid={CHANNEL}"
    assert fake.permalink(CHANNEL, parent) == link and fake.permalink(CHANNEL, reply) == reply_link
    assert slack_error(client.chat_getPermalink, channel=CHANNEL, message_ts="1.2")["error"] == "message_not_found"


def test_slack_connect_user_reports_its_own_team(fake: FakeSlack, client: WebClient) -> None:
    fake.add_user("U_EXT", "dana", tz="Europe/Paris", team_id="T2")
    user = client.users_info(user="U_EXT")["user"]
    assert user["team_id"] == "T2" and user["profile"]["team"] == "T2"
    assert client.users_info(user="U_ANA")["user"]["team_id"] == "T1"


# --------------------------------------------------------------------------------------------------
# External file uploads
# --------------------------------------------------------------------------------------------------


def test_files_upload_v2_shares_into_a_thread(fake: FakeSlack, client: WebClient) -> None:
    parent = client.chat_postMessage(channel=CHANNEL, text="card")["ts"]
    data = b"clip bytes " * 1000
    done = client.files_upload_v2(
        content=data, filename="clip.txt", title="The clip", channel=CHANNEL, thread_ts=parent,
        initial_comment="here it is",
    )
    file_id = done["file"]["id"]
    assert done["files"] == [{"id": file_id, "title": "The clip"}]

    [record] = fake.files()
    assert (record.id, record.filename, record.title) == (file_id, "clip.txt", "The clip")
    assert record.size == record.uploaded_bytes == len(data)
    assert record.sha256 == hashlib.sha256(data).hexdigest()
    assert (record.channel, record.thread_ts, record.completed) == (CHANNEL, parent, True)
    [reply] = fake.replies(CHANNEL, parent)
    assert reply.text == "here it is" and reply.files[0]["id"] == file_id
    assert record.message_ts == reply.ts


def test_upload_streams_chunked_bodies_without_buffering(fake: FakeSlack, client: WebClient) -> None:
    piece = bytes(range(256)) * 256  # 64 KiB
    pieces = 256  # 16 MiB in total
    total = len(piece) * pieces
    started = client.files_getUploadURLExternal(filename="big.bin", length=total)
    assert started["upload_url"] == f"{fake.url.removesuffix('/api/')}/upload/{started['file_id']}"

    def body() -> Iterator[bytes]:
        for _ in range(pieces):
            yield piece

    expected = hashlib.sha256()
    for _ in range(pieces):
        expected.update(piece)
    tracemalloc.start()
    try:
        answer = httpx.post(started["upload_url"], content=body(), timeout=30)  # chunked transfer coding
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert answer.status_code == 200 and answer.text == f"OK - {total}"
    assert peak < 4 * 1024 * 1024  # the fake kept a few chunks, never the 16 MiB body
    record = fake.file(started["file_id"])
    assert record is not None and record.size == total and record.sha256 == expected.hexdigest()

    client.files_completeUploadExternal(files=[{"id": started["file_id"], "title": "Big"}], channel_id=CHANNEL)
    [message] = fake.messages()
    assert message.files[0]["title"] == "Big" and message.files[0]["size"] == total


def test_upload_accepts_multipart_form(fake: FakeSlack, client: WebClient) -> None:
    data = b"--not-a-boundary\r\n" * 5000
    started = client.files_getUploadURLExternal(filename="form.bin", length=len(data))
    answer = httpx.post(
        started["upload_url"], data={"note": "ignored"}, files={"file": ("form.bin", data, "application/octet-stream")}
    )
    assert answer.status_code == 200, answer.text
    record = fake.file(started["file_id"])
    assert record is not None and record.sha256 == hashlib.sha256(data).hexdigest()

    no_file = client.files_getUploadURLExternal(filename="x.bin", length=3)
    refused = httpx.post(no_file["upload_url"], data={"note": "abc"}, files={"other": (None, b"abc")})
    assert refused.status_code == 400 and not fake.file(no_file["file_id"]).uploaded  # type: ignore[union-attr]


def test_upload_length_mismatch_and_unknown_files(fake: FakeSlack, client: WebClient) -> None:
    started = client.files_getUploadURLExternal(filename="a.txt", length=10)
    short = httpx.post(started["upload_url"], content=b"12345")
    assert short.status_code == 400 and "length mismatch" in short.text
    record = fake.file(started["file_id"])
    assert record is not None and not record.uploaded and record.uploaded_bytes == 5
    complete = client.files_completeUploadExternal
    assert slack_error(complete, files=[{"id": started["file_id"]}], channel_id=CHANNEL)["error"] == "file_not_found"
    assert slack_error(complete, files=[{"id": "F_NOPE"}], channel_id=CHANNEL)["error"] == "file_not_found"
    assert httpx.post(f"{fake.url.removesuffix('/api/')}/upload/F_NOPE", content=b"x").status_code == 404
    assert fake.messages() == []

    assert httpx.post(started["upload_url"], content=b"0123456789").status_code == 200  # a retry succeeds
    complete(files=[{"id": started["file_id"], "title": "A"}], channel_id=CHANNEL)
    assert slack_error(complete, files=[{"id": started["file_id"]}], channel_id=CHANNEL)["error"] == "file_not_found"
    assert httpx.post(started["upload_url"], content=b"0123456789").status_code == 404  # the URL is spent
    assert len(fake.messages()) == 1

    assert slack_error(client.files_getUploadURLExternal, filename="a.txt", length=0)["error"] == "invalid_arguments"


def test_complete_upload_checks_channel_membership(fake: FakeSlack, client: WebClient) -> None:
    fake.add_channel("C_PUBLIC", "general", bot_member=False)
    started = client.files_getUploadURLExternal(filename="a.txt", length=3)
    assert httpx.post(started["upload_url"], content=b"abc").status_code == 200
    files = [{"id": started["file_id"]}]
    assert slack_error(client.files_completeUploadExternal, files=files, channel_id="C_PUBLIC")["error"] == (
        "not_in_channel"
    )
    assert slack_error(client.files_completeUploadExternal, files=files, channel_id="C_NOPE")["error"] == (
        "channel_not_found"
    )
    private = client.files_completeUploadExternal(files=files)  # no channel: the file stays private
    assert private["files"][0]["id"] == started["file_id"]
    record = fake.file(started["file_id"])
    assert record is not None and record.completed and record.channel is None and record.title == "a.txt"
    assert fake.messages("C_PUBLIC") == [] and fake.messages() == []


def test_fail_upload_next(fake: FakeSlack, client: WebClient) -> None:
    started = client.files_getUploadURLExternal(filename="a.bin", length=200_000)
    data = b"z" * 200_000
    fake.fail_upload_next(503)
    assert httpx.post(started["upload_url"], content=data).status_code == 503
    assert not fake.file(started["file_id"]).uploaded  # type: ignore[union-attr]

    fake.fail_upload_next(drop_after_bytes=1000)
    with pytest.raises(httpx.TransportError):
        httpx.post(started["upload_url"], content=data)
    assert not fake.file(started["file_id"]).uploaded  # type: ignore[union-attr]

    assert httpx.post(started["upload_url"], content=data).status_code == 200
    record = fake.file(started["file_id"])
    assert record is not None and record.uploaded and record.upload_attempts == 3


# --------------------------------------------------------------------------------------------------
# Plumbing
# --------------------------------------------------------------------------------------------------


def test_chunked_json_bodies_reach_web_api_methods(fake: FakeSlack) -> None:
    def body() -> Iterator[bytes]:
        yield b'{"channel": "C0REVIEW", '
        yield b'"text": "sent in chunks"}'

    answer = httpx.post(
        f"{fake.url}chat.postMessage",
        content=body(),
        headers={"Authorization": f"Bearer {fake.token}", "Content-Type": "application/json"},
    )
    assert answer.json()["ok"] is True
    assert [m.text for m in fake.messages()] == ["sent in chunks"]


def test_reset_clears_files_faults_and_token_but_keeps_directory(fake: FakeSlack, client: WebClient) -> None:
    fake.add_channel("C_PUBLIC", bot_member=False)
    fake.set_scopes(["chat:write"])
    client.chat_postMessage(channel=CHANNEL, text="x")
    fake.revoke_token()
    fake.latency(5)
    fake.lose_answer_next("auth.test")
    fake.reset()
    assert client.auth_test()["ok"] is True  # no revoked token, latency or lost answer left
    assert fake.files() == [] and fake.messages() == [] and fake.calls() == fake.calls("auth.test")
    assert fake.scopes == frozenset({"chat:write"}) and not fake.is_bot_member("C_PUBLIC")
