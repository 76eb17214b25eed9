"""Run the real Greenlight over real HTTP, and drive it the way Slack and Choppity would.

`Greenlight` starts the ASGI app under uvicorn on a loopback port with its job workers, pointed at
the fake Slack and fake Choppity servers. `SlackDriver` sends signed Slack requests (button clicks,
view submissions built from the modal the app actually opened, slash commands, events).
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import uvicorn
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from bot.app import Runtime, create_runtime
from bot.config import Settings
from bot.models import AuditEvent, Job, Post
from tests.fakes.choppity import FakeChoppity, make_event, webhook_headers
from tests.fakes.slack import Ephemeral, FakeSlack, Message
from tests.fakes.slack import text_of as raw_text_of

SIGNING_SECRET = "test-signing-secret-0123456789"
WEBHOOK_SECRET = "whsec_choppity_test_secret_42"
BOT_TOKEN = "xoxb-test-token"
CHANNEL = "C0REVIEW"


def base_env(slack: FakeSlack, choppity: FakeChoppity | None, database_url: str, **overrides: str) -> dict[str, str]:
    """The environment a test deployment runs with."""
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_CHANNEL_ID": CHANNEL,
        "SLACK_API_URL": slack.url,
        "DATABASE_URL": database_url,
        "WORKER_POLL_SECONDS": "0.05",
        "RECONCILE_INTERVAL_SECONDS": "3600",
        "REMIND_AFTER_HOURS": "0",
        "HTTP_TIMEOUT_SECONDS": "3",
        "SLACK_TIMEOUT_SECONDS": "1",
        "LOG_LEVEL": "DEBUG",
        # Video previews have their own tests (test_e2e_previews); elsewhere they would only add
        # render polls to every clip and change the provider call counts tests assert on.
        "CLIP_PREVIEW": "off",
    }
    if choppity is not None:
        env.update(
            {
                "CHOPPITY_API_KEY": choppity.api_key,
                "CHOPPITY_API_URL": choppity.url,
                "CHOPPITY_WEBHOOK_SECRET": WEBHOOK_SECRET,
            }
        )
    env.update(overrides)
    return env


class Greenlight:
    """One running Greenlight process (in this test process) serving on a loopback port."""

    def __init__(self, env: dict[str, str], *, clock: Callable[[], datetime] | None = None) -> None:
        self.env = env
        self.settings = Settings.from_env(env)
        # What time it is for the app's due dates and schedules (tests move it instead of rows).
        self.clock = clock
        self.runtime: Runtime | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self, *, workers: bool = True) -> Greenlight:
        """Build the runtime from settings and serve it."""
        self.runtime = create_runtime(self.settings, clock=self.clock) if self.clock else create_runtime(self.settings)
        if workers:
            self.runtime.start()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # asyncio only sets TCP_NODELAY on sockets it creates; without it every response waits
        # ~40 ms on a delayed ACK.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(self.runtime.asgi, log_config=None, access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("Greenlight did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and stop the workers (like a process exiting)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        if self.runtime is not None:
            self.runtime.stop()
            self.runtime.services.engine.dispose()

    def restart(self) -> Greenlight:
        """A brand-new process on the same database."""
        self.stop()
        return self.start()

    @property
    def services(self) -> Any:
        """The runtime's services (for assertions on the database)."""
        assert self.runtime is not None
        return self.runtime.services

    def drain(self, timeout: float = 40.0, horizon: float = 30.0) -> None:
        """Wait until no job is running or due within `horizon` seconds (retries included)."""
        from datetime import timedelta

        from sqlmodel import Session, col, select

        from bot.models import Job, utcnow

        def idle() -> bool:
            with Session(self.services.engine) as session:
                return session.exec(
                    select(Job.id).where(col(Job.status).in_(("pending", "running")),
                                         Job.run_at <= utcnow() + timedelta(seconds=horizon))
                ).first() is None

        wait_until(idle, timeout=timeout, message="jobs and their retries finished")
        self.settle()

    def settle(self, timeout: float = 15.0) -> None:
        """Wait until no job is due or running (the app has finished reacting)."""
        from datetime import timedelta

        from sqlmodel import Session, col, select

        from bot.models import Job, utcnow

        deadline = time.monotonic() + timeout
        engine = self.services.engine
        idle_seen = 0
        while True:
            with Session(engine) as session:
                # A job due within half a second is part of the reaction (a card waiting a moment
                # for its clip's message goes back to the queue briefly).
                busy = session.exec(
                    select(Job.id).where(
                        col(Job.status).in_(("pending", "running")),
                        Job.run_at <= utcnow() + timedelta(seconds=0.5),
                    )
                ).first()
            if busy is None:
                idle_seen += 1
                # Twice in a row: a job finishing may be about to commit its follow-up job.
                if idle_seen >= 2:
                    return
                time.sleep(0.05)
                continue
            idle_seen = 0
            if time.monotonic() > deadline:
                raise AssertionError(f"jobs still pending after {timeout}s")
            time.sleep(0.03)

    def post_webhook(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        """POST raw bytes to the Choppity webhook route."""
        return httpx.post(f"{self.url}/webhooks/choppity", content=body, headers=headers, timeout=10)

    def choppity_event(self, event_type: str, data: dict[str, Any], *, event_id: str | None = None,
                       secret: str = WEBHOOK_SECRET, t: int | None = None) -> httpx.Response:
        """Send a correctly signed Choppity event."""
        body = make_event(event_type, data, event_id=event_id)
        return self.post_webhook(body, webhook_headers(body, secret, t))


class SlackDriver:
    """Sends what Slack would send: signed, form-encoded, to POST /slack/events."""

    def __init__(self, app: Greenlight, slack: FakeSlack, secret: str = SIGNING_SECRET) -> None:
        self.app = app
        self.slack = slack
        self.verifier = SignatureVerifier(secret)
        # Modals that were open before the latest click: latest_view() waits for a newer one, so a
        # test never picks up the previous click's modal while the new one is still being opened.
        self._views_before_click: set[str] = set()

    def _post(self, body: str, *, timestamp: str | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
        ts = timestamp or str(int(time.time()))
        signature = self.verifier.generate_signature(timestamp=ts, body=body)
        all_headers = {
            "content-type": "application/x-www-form-urlencoded",
            "x-slack-request-timestamp": ts,
            "x-slack-signature": signature,
        }
        all_headers.update(headers or {})
        return httpx.post(f"{self.app.url}/slack/events", content=body.encode(), headers=all_headers, timeout=10)

    def _interaction(self, payload: dict[str, Any]) -> httpx.Response:
        return self._post(urlencode({"payload": json.dumps(payload)}))

    def click(self, action_id: str, post_id: int, *, user: str = "U_ANA", message_ts: str | None = None,
              team: str = "T1", user_team: str | None = None, enterprise: dict[str, str] | None = None) -> httpx.Response:
        """Click a card button. `user_team` (default `team`) is the clicker's home team: another
        organisation's for a Slack Connect partner; `enterprise` ({"id", "name"}) an Enterprise org."""
        self._views_before_click = {str(v.get("id")) for v in self.slack.open_views()}
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "team_id": user_team or team},
            "api_app_id": "A1",
            "team": _team(team, enterprise),
            "container": {"type": "message", "message_ts": message_ts or "1.0", "channel_id": CHANNEL, "is_ephemeral": False},
            "trigger_id": self.slack.issue_trigger(),
            "channel": {"id": CHANNEL, "name": "review"},
            "response_url": self.slack.response_url(),
            "actions": [
                {"action_id": action_id, "block_id": f"card_actions_{post_id}", "type": "button",
                 "value": str(post_id), "action_ts": str(time.time())}
            ],
        }
        if enterprise is not None:
            payload["enterprise"] = enterprise
            payload["is_enterprise_install"] = False
        return self._interaction(payload)

    def submit(self, view: dict[str, Any], *, user: str = "U_ANA", values: dict[str, Any] | None = None,
               team: str = "T1", user_team: str | None = None,
               enterprise: dict[str, str] | None = None) -> httpx.Response:
        """Submit an opened modal: its initial values, with `values` ({block_id: element state}) on top."""
        state = state_from_view(view)
        for block_id, element_state in (values or {}).items():
            state[block_id] = {block_id: element_state}
        payload: dict[str, Any] = {
            "type": "view_submission",
            "team": _team(team, enterprise),
            "user": {"id": user, "username": user.lower(), "team_id": user_team or team},
            "api_app_id": "A1",
            "trigger_id": self.slack.issue_trigger(),
            "view": {
                "id": view.get("id", "V1"),
                "team_id": "T1",
                "type": "modal",
                "callback_id": view["callback_id"],
                "private_metadata": view.get("private_metadata", ""),
                "state": {"values": state},
                "hash": view.get("hash", "h"),
                "title": view.get("title"),
                "app_installed_team_id": "T1",
                "bot_id": "BBOT",
            },
            "response_urls": [],
        }
        if enterprise is not None:
            payload["enterprise"] = enterprise
            payload["is_enterprise_install"] = False
        return self._interaction(payload)

    def command(self, text: str, *, user: str = "U_ANA", team: str = "T1") -> tuple[httpx.Response, str]:
        """Run `/greenlight <text>`; returns the response and the response_url given to the app."""
        response_url = self.slack.response_url()
        form = {
            "token": "deprecated", "team_id": team, "team_domain": "acme", "channel_id": CHANNEL,
            "channel_name": "review", "user_id": user, "user_name": user.lower(), "command": "/greenlight",
            "text": text, "api_app_id": "A1", "is_enterprise_install": "false",
            "response_url": response_url, "trigger_id": self.slack.issue_trigger(),
        }
        return self._post(urlencode(form)), response_url

    def event(self, event: dict[str, Any]) -> httpx.Response:
        """Deliver an Events API event."""
        body = json.dumps({
            "token": "deprecated", "team_id": "T1", "api_app_id": "A1", "event": event,
            "type": "event_callback", "event_id": f"Ev{uuid.uuid4().hex[:10]}", "event_time": int(time.time()),
        })
        return self._post(body, headers={"content-type": "application/json"})

    def latest_view(self, callback_id: str | None = None, *, post_id: int | None = None) -> dict[str, Any]:
        """The newest modal the app opened (and filled in), optionally for one post; waits for it."""
        def find() -> dict[str, Any] | None:
            views = [v for v in self.slack.open_views() if v.get("callback_id") != "greenlight_loading_modal"
                     or callback_id == "greenlight_loading_modal"]
            views = [v for v in views if str(v.get("id")) not in self._views_before_click]
            if callback_id:
                views = [v for v in views if v.get("callback_id") == callback_id]
            if post_id is not None:
                views = [v for v in views if json.loads(v.get("private_metadata") or "{}").get("post_id") == post_id]
            return views[-1] if views else None

        self.slack.wait_for(lambda: find() is not None, timeout=10, message=f"no modal {callback_id!r} opened")
        view = find()
        assert view is not None
        return view


def _team(team: str, enterprise: dict[str, str] | None) -> dict[str, str]:
    """A payload's `team`: with an Enterprise org, its id and name ride along (as Slack sends them)."""
    found = {"id": team, "domain": "acme" if team == "T1" else team.lower()}
    if enterprise is not None:
        found.update(enterprise_id=enterprise["id"], enterprise_name=enterprise.get("name", "Org"))
    return found


def state_from_view(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What Slack would submit for a modal nobody changed: each input's initial value."""
    state: dict[str, dict[str, Any]] = {}
    for block in view.get("blocks", []):
        if block.get("type") != "input":
            continue
        element = block["element"]
        etype = element["type"]
        value: dict[str, Any] = {"type": etype}
        if etype == "plain_text_input":
            value["value"] = element.get("initial_value")
        elif etype in ("static_select", "radio_buttons"):
            value["selected_option"] = element.get("initial_option")
        elif etype == "checkboxes":
            value["selected_options"] = element.get("initial_options", [])
        elif etype == "datetimepicker":
            value["selected_date_time"] = element.get("initial_date_time")
        state[block["block_id"]] = {element["action_id"]: value}
    return state


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, message: str = "condition") -> None:
    """Poll until `predicate()` is true (no fixed sleeps in tests)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(0.02)


@contextmanager
def postgres_schema(base_url: str) -> Iterator[str]:
    """A throwaway schema on the test PostgreSQL server; yields a DATABASE_URL using it."""
    import sqlalchemy as sa

    name = f"t_{uuid.uuid4().hex[:12]}"
    url = base_url.replace("postgresql://", "postgresql+psycopg://", 1) if base_url.startswith("postgresql://") else base_url
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options=-csearch_path%3D{name}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
        engine.dispose()


def test_database_url() -> str | None:
    """TEST_DATABASE_URL, when the environment provides a PostgreSQL server."""
    return os.environ.get("TEST_DATABASE_URL") or None


# -- what reached Slack ------------------------------------------------------------------------------

# Markup Greenlight itself may produce in mrkdwn: mentions of the test users and of the approver
# group the tests configure (S_LEADS), date tokens, and links to http(s) addresses. Anything else in
# `<…>` (a channel ping, another user-group ping, a link someone smuggled in) is live markup that
# came from outside.
_OWN_MARKUP = re.compile(
    r"<@U_(?:ANA|BOB|CAROL|DAN|ERIN|PARTNER)>"
    r"|<!subteam\^S_LEADS>"
    r"|<!date\^\d+\^[^|<>]*\|[^<>]*>"
    r"|<https?://(?!evil\.example)[^|<>\s]+\|[^<>]*>"
)
_TOKEN = re.compile(r"<[^<>]*>")
_BARE_AMPERSAND = re.compile(r"&(?!amp;|lt;|gt;)")


def mrkdwn_strings(node: Any, *, in_mrkdwn: bool = False) -> Iterator[str]:
    """Every string Slack will read as mrkdwn inside a Web API argument or a response body."""
    if isinstance(node, dict):
        kind = node.get("type")
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                if kind == "mrkdwn" or (kind is None and in_mrkdwn):
                    yield value
            elif key in ("errors",):
                continue  # modal errors are plain text
            else:
                yield from mrkdwn_strings(value, in_mrkdwn=False)
    elif isinstance(node, list):
        for item in node:
            yield from mrkdwn_strings(item, in_mrkdwn=in_mrkdwn)


def live_markup_problems(fake_slack: FakeSlack, *, secrets: tuple[str, ...] = ()) -> list[str]:
    """Markup that came from outside, unescaped ampersands and secrets, in anything sent to Slack."""
    problems: list[str] = []
    texts: list[str] = []
    for call in fake_slack.calls():
        args = call.args
        if isinstance(args.get("text"), str):
            texts.append(args["text"])  # message text (fallback, thread replies, ephemerals) is mrkdwn
        for key in ("blocks", "view", "attachments"):
            if key in args:
                texts.extend(mrkdwn_strings(args[key]))
    for response in fake_slack.responses():
        if isinstance(response.get("text"), str):
            texts.append(response["text"])
        texts.extend(mrkdwn_strings(response.get("blocks") or []))
    for text in texts:
        for token in _TOKEN.findall(text):
            if not _OWN_MARKUP.fullmatch(token):
                problems.append(f"live markup {token!r} in {text[:120]!r}")
        if _BARE_AMPERSAND.search(_TOKEN.sub("", text)):
            problems.append(f"unescaped & in {text[:120]!r}")
        for secret in secrets:
            if secret in text:
                problems.append(f"a secret reached Slack in {text[:80]!r}")
    return problems


# -- reading what happened: the one vocabulary every test uses -------------------------------------


def text_of(obj: Message | Ephemeral | dict[str, Any] | list[dict[str, Any]] | None) -> str:
    """What a person sees: every text of a message or blocks, with Slack's &amp;/&lt;/&gt; undone."""
    return raw_text_of(obj).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _engine(source: Greenlight | Engine) -> Engine:
    return source.services.engine if isinstance(source, Greenlight) else source


def db_post(app: Greenlight | Engine, external_id: str) -> Post:
    """Greenlight's row for the provider post `external_id` (detached, safe to read after)."""
    with Session(_engine(app)) as session:
        post = session.exec(select(Post).where(Post.external_id == external_id)).one()
        session.expunge(post)
        return post


def card(fake_slack: FakeSlack, app: Greenlight, external_id: str) -> Message:
    """The card of provider post `external_id`, as the fake Slack holds it now."""
    post = db_post(app, external_id)
    assert post.message_ts, "card was never posted"
    message = fake_slack.message(CHANNEL, post.message_ts)
    assert message is not None
    return message


CARD_EVENT, CLIP_EVENT, REPLY_EVENT = "greenlight_post", "greenlight_clip", "greenlight_reply"


def _is(message: Message, event_type: str, **payload: Any) -> bool:
    metadata = message.metadata or {}
    found = metadata.get("event_payload") or {}
    return metadata.get("event_type") == event_type and all(found.get(k) == v for k, v in payload.items())


def cards_in_channel(fake_slack: FakeSlack) -> list[Message]:
    """Every card Greenlight posted (in clip threads, or top-level from before clips), oldest first."""
    return [m for m in fake_slack.all_messages(CHANNEL) if _is(m, CARD_EVENT)]


def clip_messages(fake_slack: FakeSlack) -> list[Message]:
    """The clip messages in the review channel (one per clip), oldest first."""
    return [m for m in fake_slack.messages(CHANNEL) if _is(m, CLIP_EVENT)]


def cards_of(fake_slack: FakeSlack, post_id: int) -> list[str]:
    """Every card whose metadata names `post_id` (exactly-once checks)."""
    return [m.ts for m in fake_slack.all_messages(CHANNEL) if _is(m, CARD_EVENT, post_id=post_id)]


def buttons(message: Message) -> list[str]:
    """The action ids of a message's buttons, in order."""
    return [element["action_id"] for block in message.blocks if block["type"] == "actions"
            for element in block["elements"]]


def thread(fake_slack: FakeSlack, app: Greenlight | Engine, external_id: str) -> list[str]:
    """The texts of the thread replies about one post (in its clip's thread, among the other platforms')."""
    return [text_of(m) for m in replies_about(fake_slack, db_post(app, external_id))]


def replies_about(fake_slack: FakeSlack, post: Post) -> list[Message]:
    """The thread replies about `post`, oldest first."""
    parent = post.thread_ts or post.message_ts
    assert parent is not None, "card was never posted"
    return [m for m in fake_slack.replies(CHANNEL, parent) if _is(m, REPLY_EVENT, post_id=post.id)]


def card_up(app: Greenlight, fake_choppity: FakeChoppity, platform: str = "youtube",
            **post_fields: Any) -> tuple[int, dict[str, Any]]:
    """One Choppity draft, carded through the webhook: (our post id, Choppity's post)."""
    remote = fake_choppity.add_post(platform, **post_fields)
    response = app.choppity_event("post.draft.created", {"post_id": remote["id"], "clip_id": remote["clip_id"]})
    assert response.status_code == 200
    app.settle()
    post_id = db_post(app, remote["id"]).id
    assert post_id is not None
    return post_id, remote


def publish_calls(fake_choppity: FakeChoppity, post_id: str) -> list[Any]:
    """Publish requests the fake Choppity received for `post_id`."""
    return fake_choppity.calls("POST", rf"/v1/posts/{post_id}/publish$")


def count_rows(app: Greenlight | Engine, model: Any, *where: Any) -> int:
    """How many rows of `model` match `where`."""
    with Session(_engine(app)) as session:
        return int(session.exec(select(func.count()).select_from(model).where(*where)).one())


def jobs(app: Greenlight | Engine, kind: str) -> list[Job]:
    """Every job of `kind`, oldest first (detached)."""
    with Session(_engine(app)) as session:
        rows = list(session.exec(select(Job).where(Job.kind == kind).order_by(col(Job.id))).all())
        for row in rows:
            session.expunge(row)
        return rows


def audit_rows(app: Greenlight | Engine, post_id: int | None = None) -> list[AuditEvent]:
    """The audit log (of one post, when given), oldest first (detached)."""
    with Session(_engine(app)) as session:
        query = select(AuditEvent).order_by(col(AuditEvent.id))
        if post_id is not None:
            query = query.where(AuditEvent.post_id == post_id)
        rows = list(session.exec(query).all())
        for row in rows:
            session.expunge(row)
        return rows


def audit(app: Greenlight | Engine, post_id: int) -> list[tuple[str | None, str, str]]:
    """(actor, action, outcome) of each audit row of a post."""
    return [(r.actor, r.action, r.outcome) for r in audit_rows(app, post_id)]


def audit_details(app: Greenlight | Engine, post_id: int) -> list[tuple[str | None, str, str, str | None]]:
    """(actor, action, outcome, detail) of each audit row of a post."""
    return [(r.actor, r.action, r.outcome, r.detail) for r in audit_rows(app, post_id)]


def is_card(args: dict[str, Any]) -> bool:
    """For fake Slack fault rules: the call posts or updates a post's card (not a clip message or a reply)."""
    metadata = args.get("metadata")
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    return isinstance(metadata, dict) and metadata.get("event_type") == CARD_EVENT


def free_port() -> int:
    """A loopback port nobody listens on right now (for a `python -m bot` child process)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
