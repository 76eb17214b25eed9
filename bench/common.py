"""Shared plumbing: run sizes, the app process, the load-generator process, database seeding, stats."""

from __future__ import annotations

import json
import math
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import Engine, func, insert
from sqlmodel import Session
from sqlmodel import select as sql_select

from bot.db import make_engine, migrate
from bot.models import AuditEvent, Job, Post, utcnow
from bot.providers.choppity.client import parse_post
from tests.fakes.choppity import FakeChoppity
from tests.fakes.slack import FakeSlack
from tests.harness import CHANNEL, SIGNING_SECRET, WEBHOOK_SECRET, base_env

ROOT = Path(__file__).resolve().parent.parent

# Settings the test suite shortens for speed; the benchmark runs with the production defaults.
TEST_ONLY_SETTINGS = ("WORKER_POLL_SECONDS", "RECONCILE_INTERVAL_SECONDS", "REMIND_AFTER_HOURS", "HTTP_TIMEOUT_SECONDS",
                      "SLACK_TIMEOUT_SECONDS")


@dataclass(frozen=True)
class Size:
    """How much work each section does."""

    name: str
    # 1. clicks
    clicks_per_kind: int
    click_rate: float
    naive_interval: float
    choppity_latency: float
    # 2. webhooks
    webhook_rates: tuple[int, ...]
    webhook_seconds: float
    max_throughput_seconds: float
    # 3. burst
    burst_drafts: int
    slack_per_second: float
    slack_burst: int
    burst_timeout: float
    # 3b. one clip of four drafts at Slack's posting limit
    clip_rounds: int
    # 4. cost growth
    cost_sizes: tuple[int, ...]
    cost_clicks_per_kind: int
    # 6. upstream budget
    approved_posts: int
    edited_posts: int
    tracked_posts: int
    reconcile_interval: float
    reconcile_window: float
    stressed_interval: float
    stressed_window: float
    # 7. Home tab at scale
    home_posts: int
    home_users: int
    home_opens: int
    home_slack_latency: float
    # 8. peak memory under a huge body
    huge_body_bytes: int
    # 8b. peak memory uploading a clip's video into its thread
    preview_bytes: int
    # 9. two replicas on PostgreSQL sharing one Choppity budget
    replica_drafts: int
    replica_timeout: float
    # 10. ack latency with metrics on and off
    metrics_clicks_per_kind: int
    # Smoke runs: every section at once (fast, figures meaningless); else one after the other, and the
    # side-by-side apps are started one at a time so their start-up is timed on a quiet machine.
    concurrent_sections: bool = False


SIZES = {
    "tiny": Size(
        name="tiny", clicks_per_kind=4, click_rate=20.0, naive_interval=0.3, choppity_latency=0.5,
        webhook_rates=(50, 100, 200), webhook_seconds=0.2, max_throughput_seconds=0.2,
        burst_drafts=8, slack_per_second=4.0, slack_burst=3, burst_timeout=60.0, clip_rounds=1,
        cost_sizes=(10, 100, 1000), cost_clicks_per_kind=3,
        approved_posts=2, edited_posts=1, tracked_posts=30,
        reconcile_interval=0.5, reconcile_window=2.5, stressed_interval=0.2, stressed_window=2.5,
        home_posts=50, home_users=3, home_opens=3, home_slack_latency=0.2,
        huge_body_bytes=20 * 2**20,
        preview_bytes=8 * 2**20,
        replica_drafts=12, replica_timeout=60.0,
        metrics_clicks_per_kind=4,
        concurrent_sections=True,
    ),
    "full": Size(
        name="full", clicks_per_kind=200, click_rate=8.0, naive_interval=2.5, choppity_latency=2.0,
        webhook_rates=(50, 100, 200), webhook_seconds=10.0, max_throughput_seconds=4.0,
        burst_drafts=200, slack_per_second=1.0, slack_burst=3, burst_timeout=900.0, clip_rounds=5,
        cost_sizes=(100, 10_000, 100_000), cost_clicks_per_kind=60,
        approved_posts=10, edited_posts=4, tracked_posts=1000,
        reconcile_interval=60.0, reconcile_window=185.0, stressed_interval=5.0, stressed_window=125.0,
        home_posts=500, home_users=5, home_opens=20, home_slack_latency=0.2,
        huge_body_bytes=300 * 2**20,
        preview_bytes=200 * 2**20,
        replica_drafts=100, replica_timeout=400.0,
        metrics_clicks_per_kind=150,
    ),
}


# -- statistics -------------------------------------------------------------------------------------


def percentile(values: Iterable[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100); None without data."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(values: list[float]) -> dict[str, Any]:
    """n, p50, p95, p99, max (ms)."""
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values) if values else None,
    }


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing or b is 0."""
    if a is None or b is None or b == 0:
        return None
    return a / b


# -- the app under test -------------------------------------------------------------------------------


def app_env(slack: FakeSlack, choppity: FakeChoppity, database_url: str, **overrides: str) -> dict[str, str]:
    """Production settings pointed at the fakes (the test suite's shortened timers removed)."""
    env = base_env(slack, choppity, database_url)
    for name in TEST_ONLY_SETTINGS:
        env.pop(name, None)
    env["LOG_LEVEL"] = "INFO"
    env.update(overrides)
    return env


class AppProcess:
    """`python -m bench.serve` as a child process; start-up is timed until /healthz answers 200."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.startup_seconds = 0.0
        self._log: IO[str] | None = None

    def start(self, timeout: float = 60.0) -> AppProcess:
        child_env = {"PATH": os.environ.get("PATH", ""), "PYTHONUNBUFFERED": "1", "HOME": os.environ.get("HOME", "/tmp")}
        child_env.update(self.env)
        self._log = self.log_path.open("w")
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.serve"], cwd=ROOT, env=child_env,
            stdout=subprocess.PIPE, stderr=self._log, text=True,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"app did not start; see {self.log_path}:\n{self.log_tail()}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"
        deadline = started + timeout
        with httpx.Client(timeout=2) as client:
            while True:
                try:
                    if client.get(f"{self.url}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.perf_counter() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"app never became healthy; see {self.log_path}:\n{self.log_tail()}")
                time.sleep(0.005)
        self.startup_seconds = time.perf_counter() - started
        return self

    def memory(self) -> dict[str, float]:
        """Resident set size now and its peak so far, in MiB (Linux /proc)."""
        assert self.proc is not None
        values: dict[str, float] = {}
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values["rss_mib" if key == "VmRSS" else "peak_rss_mib"] = int(rest.split()[0]) / 1024
        except OSError:
            pass
        return values

    @property
    def pid(self) -> int:
        """The app process's id."""
        assert self.proc is not None
        return self.proc.pid

    def log_tail(self, lines: int = 30) -> str:
        """The last lines the app logged."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit (only this child, by its pid)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None


class LoadGen:
    """The `python -m bench.loadgen` child process, one JSON job per line."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.loadgen"], cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")},
        )
        self.run({"op": "ping"})

    def __enter__(self) -> LoadGen:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, job: dict[str, Any]) -> dict[str, Any]:
        """Send a job and wait for its result."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the load generator exited")
        answer = json.loads(line)
        if not answer["ok"]:
            raise RuntimeError(f"load generator failed: {answer['error']}")
        result: dict[str, Any] = answer["result"]
        return result

    def close(self) -> None:
        """Close stdin (the child exits) and wait."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@contextmanager
def fakes(*, choppity_limit: int | None = 60) -> Iterator[tuple[FakeSlack, FakeChoppity]]:
    """A fresh fake Slack and fake Choppity (on loopback, in this process)."""
    with FakeSlack() as slack, FakeChoppity(rate_limit_per_minute=choppity_limit) as choppity:
        yield slack, choppity


_migrations = threading.Lock()


def new_database(workdir: Path, name: str) -> tuple[str, Engine]:
    """A fresh SQLite file, migrated, and an engine on it for seeding and checks."""
    url = f"sqlite:///{workdir / f'{name}.db'}"
    engine = make_engine(url)
    with _migrations:  # Alembic keeps its context in module globals: one migration at a time
        migrate(engine)
    return url, engine


# -- seeding --------------------------------------------------------------------------------------------


def post_row(remote: dict[str, Any], *, status: str | None = None, message_ts: str | None = None,
             age: timedelta = timedelta(0), **extra: Any) -> dict[str, Any]:
    """A `post` row for a fake Choppity post, as Greenlight would have stored it."""
    parsed = parse_post(remote)
    when = utcnow() - age
    row = {
        "provider": "choppity",
        "external_id": parsed.id,
        "clip_id": parsed.clip_id,
        "platform": parsed.platform.value,
        "status": status or parsed.status.value,
        "content": parsed.content.to_dict(),
        "extra": {},
        "content_version": 1,
        "channel_id": CHANNEL,
        "message_ts": message_ts,
        "scheduled_at": parsed.scheduled_at,
        "remote_checked_at": when,
        "created_at": when,
        "updated_at": when,
    }
    row.update(extra)
    return row


def insert_rows(engine: Engine, table: Any, rows: list[dict[str, Any]], chunk: int = 5000) -> None:
    """Bulk insert in chunks (one transaction each, so the running app is never locked out long)."""
    for start in range(0, len(rows), chunk):
        with Session(engine) as session:
            session.execute(insert(table), rows[start : start + chunk])
            session.commit()


def insert_history(engine: Engine, count: int, template: dict[str, Any]) -> None:
    """`count` decided posts with one audit row and one finished job each: an old deployment."""
    statuses = ["published"] * 17 + ["cancelled"] * 2 + ["failed"]
    done = 0
    while done < count:
        n = min(5000, count - done)
        now = utcnow()
        posts = []
        for i in range(n):
            age = timedelta(minutes=(done + i) % 500_000)
            row = dict(template)
            row.update(
                external_id=str(uuid.uuid4()), clip_id=str(uuid.uuid4()), status=statuses[(done + i) % len(statuses)],
                message_ts=f"{1_600_000_000 + done + i}.000100", created_at=now - age, updated_at=now - age,
                remote_checked_at=now - age, approved_by="U_ANA", approved_at=now - age,
            )
            posts.append(row)
        with Session(engine) as session:
            session.execute(insert(Post), posts)
            first_id = session.execute(sql_select(func.max(Post.id))).scalar_one() - n + 1
            session.execute(insert(AuditEvent), [
                {"post_id": first_id + i, "actor": "U_ANA", "action": "publish", "outcome": "ok", "detail": "queued",
                 "created_at": now} for i in range(n)
            ])
            session.execute(insert(Job), [
                {"kind": "sync_card", "post_id": first_id + i, "payload": {}, "status": "done", "priority": 2,
                 "dedupe_key": f"card:{first_id + i}", "run_at": now, "attempts": 1, "created_at": now,
                 "finished_at": now} for i in range(n)
            ])
            session.commit()
        done += n


def count_posts(engine: Engine) -> int:
    """Rows in `post`."""
    with Session(engine) as session:
        return int(session.execute(sql_select(func.count()).select_from(Post)).scalar_one())


# -- huge bodies (also used by tests/test_e2e_memory.py) ------------------------------------------------


def peak_rss_kib(pid: int) -> int:
    """A process's peak resident set size so far (VmHWM, Linux), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for process {pid}")


def huge_chunks(total: int, size: int = 1 << 20) -> Iterator[bytes]:
    """`total` bytes of `{`, in chunks of `size` (a streamed body, never held in memory whole)."""
    block = b"{" * size
    sent = 0
    while sent < total:
        yield block[: min(size, total - sent)]
        sent += size


def status_of_announced(base_url: str, path: str, length: int) -> int:
    """Send only the headers of a POST announcing `length` bytes; the status the server answers."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {length}\r\n\r\n".encode())
        return int(sock.recv(4096).decode("latin-1").split(" ", 2)[1])


def status_of_streamed(base_url: str, path: str, length: int) -> int:
    """POST `length` bytes chunked, with no Content-Length; the status, or 0 if the server cut it off."""
    try:
        response = httpx.post(f"{base_url}{path}", content=huge_chunks(length), timeout=60,
                              headers={"content-type": "application/json"})
        return response.status_code
    except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
        return 0  # the server answered and closed the connection; the rest was never read


def send_huge_bodies(base_url: str, routes: Iterable[str], size: int) -> list[int]:
    """POST `size` bytes to each route, announced then streamed; the statuses in that order (0: cut off)."""
    statuses: list[int] = []
    for path in routes:
        statuses.append(status_of_announced(base_url, path, size))
        statuses.append(status_of_streamed(base_url, path, size))
    return statuses


# -- Slack request bodies ---------------------------------------------------------------------------


def click_body(slack: FakeSlack, action_id: str, post_id: int, user: str = "U_ANA", message_ts: str = "1.0") -> str:
    """The form body of a card button click, as Slack sends it (same shape as tests.harness)."""
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": "T1"},
        "api_app_id": "A1",
        "team": {"id": "T1", "domain": "acme"},
        "container": {"type": "message", "message_ts": message_ts, "channel_id": CHANNEL, "is_ephemeral": False},
        "trigger_id": slack.issue_trigger(),
        "channel": {"id": CHANNEL, "name": "review"},
        "response_url": slack.response_url(),
        "actions": [
            {"action_id": action_id, "block_id": f"card_actions_{post_id}", "type": "button",
             "value": str(post_id), "action_ts": str(time.time())}
        ],
    }
    return urlencode({"payload": json.dumps(payload)})


__all__ = [
    "CHANNEL", "SIGNING_SECRET", "WEBHOOK_SECRET", "AppProcess", "LoadGen", "SIZES", "Size", "app_env",
    "click_body", "count_posts", "fakes", "huge_chunks", "insert_history", "insert_rows", "new_database",
    "peak_rss_kib", "percentile", "post_row", "ratio", "send_huge_bodies", "status_of_announced",
    "status_of_streamed", "summary",
]
