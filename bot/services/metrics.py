"""The metrics that need the database or Slack's client (the definitions are in `bot.metrics`).

- `DatabaseCollector` reads the job queue and the posts when Prometheus scrapes, with three small
  indexed GROUP BY queries (`job` by its (status, run_at) index, `post` by its status index), so
  the figures are the database's truth whichever replica is scraped, and nothing is kept in memory.
  On SQLite it reads through its own plain connection: the app's engine opens every transaction with
  BEGIN IMMEDIATE (the write lock), which a scrape must not take.
- `SlackCallObserver` is a slack_sdk retry handler that never retries: slack_sdk asks every retry
  handler about every answer (and every failure) of every Web API call, and Bolt copies the handlers
  into the per-request clients it makes, so installing it in `make_slack_client` counts each call
  of the app, its listeners and its jobs in one place.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from urllib.error import URLError

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from sqlalchemy import Connection, Engine, create_engine, func, select, text
from sqlalchemy.pool import NullPool
from sqlmodel import col

from bot import metrics
from bot.models import Job, Post

log = logging.getLogger(__name__)

# Job statuses worth a gauge ("done" rows are history).
_QUEUE_STATUSES = ("pending", "running", "failed")
# A scrape never waits long on a busy database: a missing sample is better than a hung scrape.
SCRAPE_TIMEOUT_SECONDS = 2.0


class DatabaseCollector(Collector):
    """Queue depth, the oldest due job's age and posts by status, read at scrape time."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.clock = clock
        self._sqlite = engine.dialect.name == "sqlite"
        self._reader: Engine | None = None

    def _connect(self) -> Connection:
        if not self._sqlite:
            return self.engine.connect()
        if self._reader is None:
            # No pool: nothing stays open between scrapes, and this engine is never the last one
            # to close the file (so its close never checkpoints the WAL).
            self._reader = create_engine(self.engine.url.render_as_string(hide_password=False),
                                         connect_args={"timeout": SCRAPE_TIMEOUT_SECONDS}, poolclass=NullPool)
        return self._reader.connect()

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "greenlight_jobs", "Jobs in the durable queue by kind and state: due (pending, due now), waiting "
            "(pending, due later: retries, delayed checks), running (claimed by a worker), failed (given up).",
            labels=["kind", "state"])
        oldest = GaugeMetricFamily(
            "greenlight_jobs_oldest_due_age_seconds",
            "How long the oldest due, unclaimed job has been due (0 when none is).")
        posts = GaugeMetricFamily("greenlight_posts", "Posts Greenlight tracks, by provider and status.",
                                  labels=["provider", "status"])
        up = GaugeMetricFamily("greenlight_database_scrape_ok",
                               "1 when this scrape could read the queue and posts from the database.")
        try:
            self._read(jobs, oldest, posts)
        except Exception as exc:  # noqa: BLE001 - a scrape must answer; the gauge says it failed
            log.warning("metrics: could not read the database (%s)", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield from (jobs, oldest, posts, up)

    def _read(self, jobs: GaugeMetricFamily, oldest: GaugeMetricFamily, posts: GaugeMetricFamily) -> None:
        now = self.clock()
        due_expr = (col(Job.run_at) <= now).label("due")
        with self._connect() as conn:
            if not self._sqlite:
                conn.execute(text(f"SET LOCAL statement_timeout = {int(SCRAPE_TIMEOUT_SECONDS * 1000)}"))
            queue = conn.execute(
                select(col(Job.kind), col(Job.status), due_expr, func.count())
                .where(col(Job.status).in_(_QUEUE_STATUSES))
                .group_by(col(Job.kind), col(Job.status), due_expr)
            ).all()
            first_due = conn.execute(
                select(func.min(Job.run_at)).where(col(Job.status) == "pending", col(Job.run_at) <= now)
            ).scalar()
            by_status = conn.execute(
                select(col(Post.provider), col(Post.status), func.count()).group_by(col(Post.provider), col(Post.status))
            ).all()
        counts: dict[tuple[str, str], int] = {}
        for kind, status, due, n in queue:
            state = ("due" if due else "waiting") if status == "pending" else str(status)
            counts[(str(kind), state)] = counts.get((str(kind), state), 0) + int(n)
        for (kind, state), n in sorted(counts.items()):
            jobs.add_metric([kind, state], n)
        oldest.add_metric([], max(0.0, (now - _aware(first_due, now)).total_seconds()) if first_due else 0.0)
        for provider, status, n in by_status:
            posts.add_metric([str(provider), str(status)], int(n))


def _aware(value: Any, now: datetime) -> datetime:
    """A datetime from a raw column (SQLite hands back text or naive datetimes) in `now`'s zone."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=now.tzinfo)
    assert isinstance(value, datetime)
    return value


class SlackCallObserver(RetryHandler):
    """Counts every Slack Web API attempt by method and outcome; never asks for a retry."""

    def __init__(self) -> None:
        super().__init__(max_retry_count=0)

    def can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        try:
            status, limited = _outcome(response, error)
            metrics.slack_call(_method(request.url), status, rate_limited=limited)
        except Exception:  # noqa: BLE001 - counting must never break a call
            log.debug("metrics: could not count a Slack call", exc_info=True)
        return False


def _method(url: str) -> str:
    """`chat.postMessage` from `https://slack.com/api/chat.postMessage?…`."""
    return url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "unknown"


def _outcome(response: HttpResponse | None, error: Exception | None) -> tuple[str, bool]:
    """("ok" | Slack's error code | "http_<status>" | a transport failure, whether it was a 429)."""
    if response is None:
        if isinstance(error, TimeoutError | socket.timeout) or (
                isinstance(error, URLError) and isinstance(error.reason, TimeoutError | socket.timeout)):
            return "timeout", False
        if isinstance(error, ConnectionError | URLError):
            return "connection_error", False
        return "error", False
    if response.status_code == 429:
        return "ratelimited", True
    if response.status_code != 200:
        return f"http_{response.status_code}", False
    body = response.body if isinstance(response.body, dict) else {}
    if body.get("ok"):
        return "ok", False
    return str(body.get("error") or "unknown_error"), body.get("error") == "ratelimited"
