"""LOG_FORMAT=text|json, the request/job/post ids in log context, and redaction in both formats.

Unit tests drive `bot.logs.make_handler` (the handler `configure_logging` installs) on a string
stream; the in-process test runs the real app (tests/harness.py) with that handler on the root
logger; the subprocess tests run `python -m bot` and parse what it writes to stderr.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from bot.config import ConfigError, Settings
from bot.db import make_engine
from bot.logs import (
    TEXT_FORMAT,
    ContextThreadPoolExecutor,
    LogContextFilter,
    accept_request_id,
    current_context,
    log_context,
    make_handler,
)
from bot.models import Post
from bot.slack.ids import ActionId
from tests.fakes.choppity import FakeChoppity, make_event, webhook_headers
from tests.fakes.slack import FakeSlack
from tests.harness import (
    WEBHOOK_SECRET,
    Greenlight,
    SlackDriver,
    base_env,
    cards_in_channel,
    free_port,
    wait_until,
)

ROOT = Path(__file__).resolve().parent.parent
REQUIRED_KEYS = ("ts", "level", "logger", "message")
TS_SHAPE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
TEXT_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+: .*")
HEX_ID = re.compile(r"[0-9a-f]{32}")

ENV = {
    "SLACK_BOT_TOKEN": "xoxb-111-222-log-test-token",
    "SLACK_SIGNING_SECRET": "signing-secret-for-log-tests-0042",
    "SLACK_CHANNEL_ID": "C0REVIEW",
    "CHOPPITY_API_KEY": "choppity-key-9f8e7d6c5b4a-team_x",
    "CHOPPITY_WEBHOOK_SECRET": "whsec_log_test_secret_77",
}
API_KEY = ENV["CHOPPITY_API_KEY"]
# Python's splitlines() breaks lines at these too; a JSON record must never contain them raw.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def _settings(**overrides: str) -> Settings:
    return Settings.from_env({**ENV, **overrides})


@pytest.fixture
def capture() -> Iterator[Any]:
    """`capture(fmt)` -> (logger, stream): a private logger writing through make_handler."""
    made: list[tuple[logging.Logger, logging.Handler]] = []

    def make(log_format: str) -> tuple[logging.Logger, io.StringIO]:
        stream = io.StringIO()
        handler = make_handler(_settings(LOG_FORMAT=log_format), stream)
        logger = logging.getLogger(f"greenlight.test_logs.{log_format}.{len(made)}")
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
        made.append((logger, handler))
        return logger, stream

    yield make
    for logger, handler in made:
        logger.removeHandler(handler)


def _json_lines(text: str) -> list[dict[str, Any]]:
    """Every line parsed; fails naming the first line that is not a JSON record with the required keys."""
    entries = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
        assert isinstance(entry, dict), line
        missing = [key for key in REQUIRED_KEYS if key not in entry]
        assert not missing, f"{missing} missing in {line!r}"
        assert TS_SHAPE.fullmatch(entry["ts"]), entry["ts"]
        entries.append(entry)
    return entries


# -- settings --------------------------------------------------------------------------------------

def test_log_format_defaults_to_text_and_is_validated() -> None:
    assert _settings().log_format == "text"
    assert _settings(LOG_FORMAT="json").log_format == "json"
    assert _settings(LOG_FORMAT=" JSON ").log_format == "json"
    assert _settings(LOG_FORMAT="").log_format == "text"
    with pytest.raises(ConfigError) as err:
        _settings(LOG_FORMAT="xml")
    assert any(problem.startswith("LOG_FORMAT must be one of text, json") for problem in err.value.problems)


# -- formats ---------------------------------------------------------------------------------------

def test_json_lines_carry_the_required_keys_and_the_context_ids(capture: Any) -> None:
    log, stream = capture("json")
    before = datetime.now(UTC) - timedelta(seconds=1)
    log.info("plain %s", "line")
    with log_context(job_id=12, job_kind="deliver_card", post_id=5):
        log.warning("in a job")
        with log_context(request_id="req-1", provider="choppity"):
            log.debug("nested")
    log.info("multi\nline\u2028text\x85 with ünïcödé")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")

    entries = _json_lines(stream.getvalue())
    assert [e["message"] for e in entries] == [
        "plain line", "in a job", "nested", "multi\nline\u2028text\x85 with ünïcödé", "failed",
    ]
    assert not any(ch in stream.getvalue().rstrip("\n") for ch in LINE_BREAKS.replace("\n", "")), "a raw line break"
    assert len(stream.getvalue().splitlines()) == len(entries) == 5
    assert "ünïcödé" in stream.getvalue()  # ensure_ascii=False
    plain, job, nested, _, failed = entries
    assert plain["level"] == "INFO" and plain["logger"] == log.name
    assert not {"request_id", "job_id", "job_kind", "post_id", "provider", "exc"} & plain.keys()
    assert (job["job_id"], job["job_kind"], job["post_id"], job["level"]) == (12, "deliver_card", 5, "WARNING")
    assert "request_id" not in job
    assert {k: nested[k] for k in ("request_id", "job_id", "job_kind", "post_id", "provider")} == {
        "request_id": "req-1", "job_id": 12, "job_kind": "deliver_card", "post_id": 5, "provider": "choppity"}
    assert failed["level"] == "ERROR"
    assert failed["exc"].startswith("Traceback (most recent call last):") and "ValueError: boom" in failed["exc"]
    stamp = datetime.fromisoformat(plain["ts"].replace("Z", "+00:00"))
    assert stamp.utcoffset() == timedelta(0)
    assert before <= stamp <= datetime.now(UTC) + timedelta(seconds=1)


def test_text_lines_read_as_before_and_add_ids_only_when_set(capture: Any) -> None:
    log, stream = capture("text")
    log.info("hello %s", "world")
    with log_context(request_id="abc", job_id=12, job_kind="deliver_card", post_id=5):
        log.info("with ids")
    plain, with_ids = stream.getvalue().splitlines()
    assert TEXT_LINE.fullmatch(plain) and plain.endswith(f" INFO {log.name}: hello world")
    # Byte for byte what the old `basicConfig(format=...)` printed for the same record.
    record = logging.LogRecord(log.name, logging.INFO, __file__, 1, "hello %s", ("world",), None)
    record.created = time.time()
    assert logging.Formatter(TEXT_FORMAT).format(record).split(" ", 2)[2] == plain.split(" ", 2)[2]
    assert with_ids.endswith(f"{log.name}: with ids [request=abc job=12 kind=deliver_card post=5]")


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_secrets_never_reach_either_format(capture: Any, log_format: str) -> None:
    log, stream = capture(log_format)
    settings = _settings()
    secrets = [*settings.secrets(), "xoxp-unconfigured-but-token-shaped-123"]
    log.info("calling with %s", API_KEY)
    log.info("header Authorization: Key 9f8e7d6c-abc1 sent")
    log.info("a detail", extra={"detail": f"echoed {API_KEY}", "nested": {"token": [settings.slack_bot_token]},
                                "post_id": settings.slack_signing_secret})
    with log_context(request_id=settings.slack_signing_secret):
        log.info("request id that is a secret")
    try:
        raise RuntimeError(f"provider said: bad key {API_KEY} / {secrets[-1]}")
    except RuntimeError:
        log.exception("call failed")
    log.warning("with stack", stack_info=True, extra={"token": settings.slack_bot_token})

    output = stream.getvalue()
    leaked = [s for s in [*secrets, "9f8e7d6c-abc1"] if s in output]
    assert not leaked, f"{leaked} in {output}"
    assert "calling with [REDACTED]" in output and "Authorization: [REDACTED] sent" in output
    if log_format == "json":
        entries = _json_lines(output)
        assert entries[2]["detail"] == "echoed [REDACTED]"
        assert entries[2]["nested"] == {"token": ["[REDACTED]"]}
        assert entries[2]["post_id"] == "[REDACTED]"
        assert entries[3]["request_id"] == "[REDACTED]"
        assert "RuntimeError: provider said: bad key [REDACTED] / [REDACTED]" in entries[4]["exc"]
        assert entries[5]["token"] == "[REDACTED]" and "stack" in entries[5]
    else:
        assert "RuntimeError: provider said: bad key [REDACTED] / [REDACTED]" in output
        assert "[request=[REDACTED]]" in output


# -- context ---------------------------------------------------------------------------------------

def test_log_context_nests_restores_and_rejects_unknown_ids() -> None:
    assert current_context() == {}
    with log_context(request_id="r1", post_id=None):
        assert current_context() == {"request_id": "r1"}
        with log_context(request_id="r2", job_id=3):
            assert current_context() == {"request_id": "r2", "job_id": 3}
        assert current_context() == {"request_id": "r1"}
        with pytest.raises(KeyError), log_context(post_id=9):
            assert current_context()["post_id"] == 9
            raise KeyError("leaves the block")
        assert current_context() == {"request_id": "r1"}
    assert current_context() == {}
    with pytest.raises(TypeError, match="user"), log_context(user="U1"):  # type: ignore[arg-type]
        pass


def test_context_filter_keeps_an_id_given_via_extra() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    record.post_id = 99
    with log_context(post_id=5, job_id=1):
        assert LogContextFilter().filter(record)
    assert (record.post_id, record.job_id) == (99, 1)


def test_context_executor_runs_tasks_in_the_submitters_context() -> None:
    with ContextThreadPoolExecutor(max_workers=2) as pool, ThreadPoolExecutor(max_workers=2) as plain:
        with log_context(request_id="r-1"):
            assert pool.submit(current_context).result() == {"request_id": "r-1"}
            # Why Bolt gets this executor: a plain pool runs tasks in the worker thread's context.
            assert plain.submit(current_context).result() == {}

            def inner() -> dict[str, Any]:
                with log_context(job_id=7):
                    return current_context()

            assert pool.submit(inner).result() == {"request_id": "r-1", "job_id": 7}
            assert current_context() == {"request_id": "r-1"}  # nothing leaks back


def test_incoming_request_ids_are_kept_only_when_short_and_safe() -> None:
    for good in ("abc", "lb-7f3a.01_x", "A" * 64, "0f8fad5b-d9cb-469f-a165-70867728950e"):
        assert accept_request_id(good) == good
    for bad in (None, "", "A" * 65, "has space", "semi;colon", "new\nline", "ünï", "<script>"):
        assert HEX_ID.fullmatch(accept_request_id(bad)), bad
    assert accept_request_id(None) != accept_request_id(None)


def test_caplog_sees_messages_unchanged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="greenlight.test_logs.caplog")
    with log_context(request_id="r-9", job_id=4):
        logging.getLogger("greenlight.test_logs.caplog").info("job %s done", 4)
    assert caplog.messages == ["job 4 done"]


# -- the running app, in process -------------------------------------------------------------------

class _Records(logging.Handler):
    """Keeps every record (after the context filter), to see which thread logged what."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.addFilter(LogContextFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def root_capture(app: Greenlight) -> Iterator[tuple[io.StringIO, _Records]]:
    """The app's records, through a JSON handler and a record collector on the root logger."""
    stream = io.StringIO()
    handler = make_handler(Settings.from_env({**app.env, "LOG_FORMAT": "json"}), stream)
    records = _Records()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.addHandler(records)
    root.setLevel(logging.DEBUG)
    try:
        yield stream, records
    finally:
        root.setLevel(level)
        root.removeHandler(handler)
        root.removeHandler(records)


def _card_a_draft(app: Greenlight, fake_choppity: FakeChoppity, fake_slack: FakeSlack) -> tuple[httpx.Response, int]:
    remote = fake_choppity.add_post("youtube")
    response = app.choppity_event("post.draft.created", {"post_id": remote["id"], "clip_id": remote["clip_id"]})
    assert response.status_code == 200, response.text
    fake_slack.wait_for(lambda: len(cards_in_channel(fake_slack)) == 1, timeout=15, message="card posted")
    with Session(app.services.engine) as session:
        post = session.exec(select(Post).where(Post.external_id == remote["id"])).one()
    assert post.id is not None
    return response, post.id


def test_app_logs_carry_request_ids_into_listener_threads_and_job_ids_into_jobs(
    app: Greenlight, slack: SlackDriver, fake_choppity: FakeChoppity, fake_slack: FakeSlack,
    root_capture: tuple[io.StringIO, _Records],
) -> None:
    stream, collected = root_capture
    webhook, post_id = _card_a_draft(app, fake_choppity, fake_slack)
    assert HEX_ID.fullmatch(webhook.headers["x-request-id"])
    app.settle()

    # A click on a button with an unusable post reference: the listener (in Bolt's pool) logs it
    # and tells the clicker with chat.postEphemeral.
    click = slack.click(ActionId.PUBLISH, 0)
    assert click.status_code == 200
    request_id = click.headers["x-request-id"]
    assert HEX_ID.fullmatch(request_id) and request_id != webhook.headers["x-request-id"]

    def listener_records() -> list[logging.LogRecord]:
        return [r for r in collected.records
                if getattr(r, "request_id", None) == request_id and r.threadName.startswith("greenlight-listener")]

    wait_until(lambda: any("unusable post reference" in r.getMessage() for r in listener_records()),
               message="the listener's log line with the request id")
    fake_slack.wait_for(lambda: any(c.method == "chat.postEphemeral" for c in fake_slack.calls()), timeout=10,
                        message="ephemeral sent")

    job_records = [r for r in collected.records if getattr(r, "job_id", None) is not None]
    assert job_records, "no log line from a job"
    assert all(r.threadName.startswith("greenlight-worker") for r in job_records)
    assert any(getattr(r, "post_id", None) == post_id and getattr(r, "job_kind", None) for r in job_records)
    assert not [r for r in job_records if getattr(r, "request_id", None)], "a request id leaked into a job"

    entries = _json_lines(stream.getvalue())
    assert any(e.get("request_id") == request_id and "unusable post reference" in e["message"] for e in entries)
    assert any(e.get("post_id") == post_id and isinstance(e.get("job_id"), int) and e.get("job_kind")
               for e in entries)
    secrets = app.settings.secrets()
    assert not [s for s in secrets if s in stream.getvalue()]


def test_the_server_echoes_a_safe_request_id_and_replaces_an_unsafe_one(app: Greenlight) -> None:
    kept = httpx.get(f"{app.url}/livez", headers={"X-Request-Id": "lb-7f3a.01"}, timeout=5)
    assert kept.status_code == 200 and kept.headers["x-request-id"] == "lb-7f3a.01"
    replaced = httpx.get(f"{app.url}/livez", headers={"X-Request-Id": "x" * 200}, timeout=5)
    assert HEX_ID.fullmatch(replaced.headers["x-request-id"])
    fresh = httpx.get(f"{app.url}/readyz", timeout=5)
    assert HEX_ID.fullmatch(fresh.headers["x-request-id"])
    assert len(fresh.headers.get_list("x-request-id")) == 1
    rejected = httpx.post(f"{app.url}/slack/events", content=b"{}", headers={"X-Request-Id": "unsigned-1"}, timeout=5)
    assert rejected.status_code == 401 and rejected.headers["x-request-id"] == "unsigned-1"


# -- python -m bot ---------------------------------------------------------------------------------

# Only what a Python process needs from the outer environment; never a stray Greenlight setting.
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "VIRTUAL_ENV")


def _process_env(env: dict[str, str]) -> dict[str, str]:
    full = {k: os.environ[k] for k in _INHERITED if k in os.environ}
    full.update(env, GREENLIGHT_ENV_FILE="/nonexistent", PYTHONUNBUFFERED="1")
    return full


@pytest.mark.parametrize("log_format", [None, "text", "json"])
def test_greenlight_check_logs_in_the_chosen_format(log_format: str | None, tmp_path: Path) -> None:
    env = {**ENV, "DATABASE_URL": f"sqlite:///{tmp_path / 'g.db'}"}
    if log_format:
        env["LOG_FORMAT"] = log_format
    done = subprocess.run([sys.executable, "-m", "bot", "check"], cwd=ROOT, env=_process_env(env),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines and done.stdout == ""
    if log_format == "json":
        entries = _json_lines(done.stderr)
        assert any(e["logger"] == "bot" and e["message"].startswith("settings are valid") for e in entries)
    else:
        assert all(TEXT_LINE.fullmatch(line) for line in lines), lines
        assert any(" INFO bot: settings are valid" in line for line in lines)
    assert not [s for s in _settings().secrets() if s in done.stderr]


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_an_uncaught_exception_is_logged_in_the_chosen_format(log_format: str, tmp_path: Path) -> None:
    # The database file's directory does not exist: `greenlight migrate` dies of an exception,
    # which goes through logging (JSON, redacted) instead of being printed raw by Python.
    env = {**ENV, "DATABASE_URL": f"sqlite:///{tmp_path / 'missing' / 'g.db'}", "LOG_FORMAT": log_format}
    done = subprocess.run([sys.executable, "-m", "bot", "migrate"], cwd=ROOT, env=_process_env(env),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert not [s for s in _settings().secrets() if s in done.stderr]
    if log_format == "json":
        last = _json_lines(done.stderr)[-1]
        assert (last["level"], last["logger"], last["message"]) == ("CRITICAL", "bot", "uncaught exception")
        assert "OperationalError" in last["exc"]
    else:
        assert " CRITICAL bot: uncaught exception\nTraceback (most recent call last):" in done.stderr


class _Process:
    """`python -m bot` serving on a loopback port; stderr and stdout kept apart."""

    def __init__(self, env: dict[str, str], directory: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stderr_path = directory / "stderr.log"
        self.stdout_path = directory / "stdout.log"
        full = _process_env({**env, "HOST": "127.0.0.1", "PORT": str(self.port)})
        with open(self.stderr_path, "wb") as err, open(self.stdout_path, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "bot"], cwd=ROOT, env=full,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=err)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, f"exited with {self.proc.returncode}:\n{self.stderr()}"
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"not ready in {timeout}s:\n{self.stderr()}"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


def test_python_m_bot_writes_json_lines_with_request_and_job_ids(
    fake_slack: FakeSlack, fake_choppity: FakeChoppity, tmp_path: Path,
) -> None:
    # LOG_LEVEL=DEBUG (base_env's default): the most verbose output, libraries included.
    env = base_env(fake_slack, fake_choppity, f"sqlite:///{tmp_path / 'greenlight.db'}", LOG_FORMAT="json")
    app = _Process(env, tmp_path)
    try:
        app.wait_ready()
        remote = fake_choppity.add_post("youtube")
        body = make_event("post.draft.created", {"post_id": remote["id"], "clip_id": remote["clip_id"]})
        webhook = httpx.post(f"{app.url}/webhooks/choppity", content=body, timeout=15,
                             headers={**webhook_headers(body, WEBHOOK_SECRET), "X-Request-Id": "webhook-delivery-1"})
        assert webhook.status_code == 200 and webhook.headers["x-request-id"] == "webhook-delivery-1"
        fake_slack.wait_for(lambda: len(cards_in_channel(fake_slack)) == 1, timeout=30, message="card posted")

        click = SlackDriver(app, fake_slack).click(ActionId.PUBLISH, 0)  # type: ignore[arg-type]
        assert click.status_code == 200
        click_id = click.headers["x-request-id"]
        assert HEX_ID.fullmatch(click_id)
        fake_slack.wait_for(lambda: any(c.method == "chat.postEphemeral" for c in fake_slack.calls()), timeout=15,
                            message="ephemeral sent")
        unsigned = httpx.post(f"{app.url}/slack/events", content=b"{}", headers={"X-Request-Id": "unsigned-7"},
                              timeout=5)
        assert unsigned.status_code == 401 and unsigned.headers["x-request-id"] == "unsigned-7"
        wait_until(lambda: "chat.postEphemeral" in app.stderr() and "invalid or expired signature" in app.stderr(),
                   timeout=15, message="the listener's and the rejection's log lines")
    finally:
        app.stop()

    output = app.stderr()
    entries = _json_lines(output)
    assert len(entries) > 20, output[-3000:]
    assert app.stdout_path.read_text() == ""
    assert {"DEBUG", "INFO"} <= {e["level"] for e in entries}
    assert any(e["logger"].startswith("uvicorn") for e in entries)

    engine = make_engine(env["DATABASE_URL"])
    try:
        with Session(engine) as session:
            post = session.exec(select(Post).where(Post.external_id == remote["id"])).one()
    finally:
        engine.dispose()
    job_lines = [e for e in entries if "job_id" in e]
    assert any(e.get("post_id") == post.id and e.get("job_kind") for e in job_lines), job_lines[:5]
    assert not [e for e in job_lines if "request_id" in e]
    # The click's listener ran in Bolt's thread pool and still logged with the click's request id.
    click_lines = [e for e in entries if e.get("request_id") == click_id]
    assert any("unusable post reference" in e["message"] for e in click_lines), click_lines
    assert any("chat.postEphemeral" in e["message"] for e in click_lines), click_lines
    assert any(e.get("request_id") == "unsigned-7" and "invalid or expired signature" in e["message"]
               for e in entries)
    secrets = Settings.from_env(env).secrets()
    assert not [s for s in secrets if s in output]

