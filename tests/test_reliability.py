"""Reliability and secrecy of the running app (in-process, real HTTP, fake Slack and Choppity).

* Slack 429s on `chat.update` are honoured (Retry-After), the card still ends in the right state,
  and several changes made while Slack is rate limiting collapse into fewer updates.
* A DEBUG-level capture of a whole flow never contains a token, API key or secret; neither do the
  texts shown to people, /healthz or `repr(settings)`.
* A malformed `X-Slack-Request-Timestamp` is a 401 (not a 500) and the body is never logged.
* Every outbound HTTP client has explicit connect/read/write/pool timeouts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlmodel import Session, select

from bot.domain.forms import FieldId
from bot.models import Job
from bot.slack.ids import ActionId, ViewId
from tests.fakes.choppity import FakeChoppity, webhook_headers
from tests.fakes.slack import FakeSlack, text_of
from tests.harness import CHANNEL, Greenlight, SlackDriver, card, card_up, db_post, thread, wait_until

DEBUG_LOGGERS = ("httpx", "httpcore", "slack_bolt", "slack_sdk", "uvicorn", "bot")


def no_failed_jobs(app: Greenlight) -> list[tuple[str, str | None]]:
    with Session(app.services.engine) as session:
        return [(j.kind, j.last_error) for j in session.exec(select(Job).where(Job.status == "failed")).all()]


# -- Slack rate limits ---------------------------------------------------------------------------------


def test_card_update_rate_limited_is_retried_after_retry_after_and_not_dropped(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    post_id, remote = card_up(app, fake_choppity)
    ts = db_post(app, remote["id"]).message_ts
    fake_slack.fail_next("chat.update", "ratelimited", retry_after=1, times=2, where=lambda a: a.get("ts") == ts)
    assert slack.click(ActionId.PUBLISH, post_id, user="U_BOB").status_code == 200
    wait_until(lambda: "Queued" in text_of(card(fake_slack, app, remote["id"])), timeout=20,
               message="card shows Queued after the rate limit")
    app.settle()
    updates = [c for c in fake_slack.calls("chat.update") if c.args.get("ts") == ts]  # the card's, not the clip's
    assert [c.http_status for c in updates[:2]] == [429, 429]
    assert updates[-1].http_status == 200 and updates[-1].error is None
    # Each retry waited for Slack's Retry-After.
    for before, after in zip(updates, updates[1:], strict=False):
        if before.http_status == 429:
            assert after.at - before.at >= 0.9
    shown = text_of(card(fake_slack, app, remote["id"]))
    assert "Queued" in shown and "<@U_BOB>" in shown
    assert db_post(app, remote["id"]).status == "queued"
    assert no_failed_jobs(app) == []


def test_changes_made_while_slack_rate_limits_collapse_into_fewer_updates(
    make_app: Callable[..., Greenlight], fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app = make_app(REQUIRED_APPROVALS="3")
    slack = SlackDriver(app, fake_slack)
    post_id, remote = card_up(app, fake_choppity)
    ts = db_post(app, remote["id"]).message_ts
    fake_slack.fail_next("chat.update", "ratelimited", retry_after=1, times=2, where=lambda a: a.get("ts") == ts)
    before = len(fake_slack.calls("chat.update"))

    changes = 0
    for user in ("U_ANA", "U_BOB", "U_CAROL"):
        assert slack.click(ActionId.APPROVE, post_id, user=user).status_code == 200
        changes += 1
    assert slack.click(ActionId.PUBLISH, post_id, user="U_ANA").status_code == 200
    changes += 2  # "publishing…", then "queued"
    wait_until(lambda: db_post(app, remote["id"]).status == "queued", timeout=20, message="queued")
    fake_choppity.complete_publish(remote["id"], url="https://youtu.be/collapsed")
    assert app.choppity_event("post.published", {"post_id": remote["id"]}).status_code == 200
    changes += 1
    wait_until(lambda: db_post(app, remote["id"]).status == "published", timeout=20, message="published")

    wait_until(lambda: "Published" in text_of(card(fake_slack, app, remote["id"])), timeout=20,
               message="card shows the final state")
    app.settle()
    updates = [c for c in fake_slack.calls("chat.update")[before:] if c.args.get("ts") == ts]
    assert sum(1 for c in updates if c.http_status == 429) == 2
    assert len(updates) < changes
    shown = text_of(card(fake_slack, app, remote["id"]))
    assert "Published" in shown and "youtu.be/collapsed" in shown
    # Nothing else was lost: every thread reply went out too.
    replies = " ".join(thread(fake_slack, app, remote["id"]))
    assert "U_CAROL" in replies and "Published" in replies
    assert no_failed_jobs(app) == []


# -- secrets in logs, messages, health and repr ----------------------------------------------------------


class _Capture(logging.Handler):
    """Keeps every formatted record (message, traceback and stack)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is kept raw
            self.lines.append(f"{record.msg!r} {record.args!r}")

    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def debug_logs() -> Iterator[_Capture]:
    """Every record at DEBUG from every logger (including httpx, httpcore, Bolt and the Slack SDK).

    Request this fixture before starting the app: Bolt sets its loggers' levels when it is built.
    """
    capture = _Capture()
    root = logging.getLogger()
    saved = {name: logging.getLogger(name).level for name in DEBUG_LOGGERS}
    saved_root = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    for name in DEBUG_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        root.setLevel(saved_root)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def _assert_no_secret(where: str, text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text, f"a secret ({secret[:4]}…) appears in {where}"


def test_no_secret_reaches_debug_logs_messages_healthz_or_repr(
    debug_logs: _Capture, make_app: Callable[..., Greenlight], fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app = make_app()
    slack = SlackDriver(app, fake_slack)
    secrets = app.settings.secrets()
    assert {app.settings.slack_bot_token, app.settings.slack_signing_secret, app.settings.choppity_api_key,
            *app.settings.choppity_webhook_secrets} <= set(secrets)

    # Card via webhook, Edit, Publish, then Choppity reports it published.
    post_id, remote = card_up(app, fake_choppity)
    slack.click(ActionId.EDIT, post_id)
    view = slack.latest_view(ViewId.EDIT)
    slack.submit(view, values={FieldId.TITLE: {"type": "plain_text_input", "value": "Edited title"}})
    app.settle()
    slack.click(ActionId.PUBLISH, post_id, user="U_BOB")  # four eyes: not the editor
    app.settle()
    fake_choppity.complete_publish(remote["id"])
    app.choppity_event("post.published", {"post_id": remote["id"]})
    app.settle()
    assert db_post(app, remote["id"]).status == "published"

    # Choppity refuses our key (401) on a click and on a command.
    other_id, _ = card_up(app, fake_choppity, "tiktok")
    fake_choppity.fail_next("POST", r"/publish$", 401, code="UNAUTHORIZED", message="Authentication required")
    slack.click(ActionId.PUBLISH, other_id, user="U_BOB")
    app.settle()
    wait_until(lambda: bool(fake_slack.ephemerals("U_BOB")), message="401 explained to the clicker")
    fake_choppity.fail_next("GET", r"/posts$", 401, code="UNAUTHORIZED", message="Authentication required")
    _, response_url = slack.command(f"clip {fake_choppity.add_clip(platforms=('linkedin',))}")
    wait_until(lambda: bool(fake_slack.responses(response_url)), message="401 reply to the command")

    # A forged Slack request and a forged webhook.
    forged = httpx.post(f"{app.url}/slack/events", content=b"command=%2Fgreenlight&text=forged", headers={
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": str(int(time.time())), "x-slack-signature": "v0=" + "0" * 64})
    assert forged.status_code == 401
    body = b'{"id":"evt-forged","type":"post.published","created":1,"data":{"post_id":"x"}}'
    bad_hook = app.post_webhook(body, webhook_headers(body, "whsec_not_the_right_secret"))
    assert bad_hook.status_code in (400, 401)
    app.settle()

    assert len(debug_logs.lines) > 50, "the capture saw too little to prove anything"
    assert any(line.startswith("DEBUG") for line in debug_logs.lines)
    _assert_no_secret("the DEBUG logs", debug_logs.text(), secrets)

    shown = [e.text for e in fake_slack.ephemerals()] + [str(r) for r in fake_slack.responses()]
    assert any("CHOPPITY_API_KEY" in text for text in shown)  # the error is explained ...
    _assert_no_secret("messages shown to people", "\n".join(shown), secrets)  # ... without the key
    _assert_no_secret("Slack messages", "\n".join(text_of(m) for m in fake_slack.all_messages(CHANNEL)), secrets)

    health = httpx.get(f"{app.url}/healthz")
    assert health.status_code == 200
    _assert_no_secret("/healthz", health.text, secrets)
    _assert_no_secret("repr(settings)", repr(app.settings), secrets)
    _assert_no_secret("repr(settings)", repr(app.settings), [app.settings.database_url])


@pytest.mark.parametrize("timestamp", ["abc", "9" * 5000, "１２３", "1.5", ""])
def test_malformed_slack_timestamp_is_401_and_the_body_is_not_logged(
    timestamp: str, debug_logs: _Capture, make_app: Callable[..., Greenlight]
) -> None:
    app = make_app()
    marker = "tell-no-one-4f1c9e"
    body = f"command=%2Fgreenlight&text={marker}&user_id=U_ANA"
    response = httpx.post(f"{app.url}/slack/events", content=body.encode(), headers={
        b"content-type": b"application/x-www-form-urlencoded",
        b"x-slack-request-timestamp": timestamp.encode(), b"x-slack-signature": b"v0=" + b"0" * 64})
    assert response.status_code == 401
    assert marker not in debug_logs.text()
    assert any("rejected a Slack request" in line for line in debug_logs.lines)


def test_every_http_client_has_explicit_timeouts(app: Greenlight) -> None:
    timeout = app.services.providers["choppity"].client._http.timeout
    assert isinstance(timeout, httpx.Timeout)
    for part in ("connect", "read", "write", "pool"):
        value = getattr(timeout, part)
        assert value is not None and 0 < value <= app.settings.http_timeout_seconds, part
    assert app.services.slack.timeout and app.services.slack.timeout > 0
    assert app.runtime is not None and app.runtime.bolt.client.timeout > 0
