"""Prometheus metrics: what Greenlight counts, and the text `GET /metrics` answers with.

Every metric is defined here, once, and docs/metrics.md describes each. Code that counts something
calls one of the small functions below (`observe_ack`, `provider_call`, ...): a one-line hook that
does nothing when metrics are turned off (`METRICS_ENABLED=false`). This module imports nothing but
prometheus-client, so every layer may use it (providers included); what needs the database (queue
depth, posts by status) is a collector in `bot.services.metrics`, read at scrape time.

Labels stay low-cardinality: request kinds, provider slugs, endpoint *templates* and Slack method
names come from a small vocabulary, and anything that arrives from outside (a webhook's event type)
passes `bounded()`, which keeps the first few dozen distinct values per label and reports the rest as
`other`.

Several processes on one host (PROMETHEUS_MULTIPROC_DIR set before the process starts): each writes
its samples to files in that directory and `/metrics` on any of them answers for all of them
(prometheus-client's multiprocess mode). The variable must be in the environment before
prometheus-client is imported; `greenlight` reads `.env` before that happens.
"""

from __future__ import annotations

import hmac
import re
import threading
from collections.abc import Iterable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import values as _values
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector

__all__ = ["CONTENT_TYPE", "configure", "enabled", "exposition", "token_matches"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
# No `<name>_created` series beside each counter and histogram: they double the series for no use here.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Slack wants an ack within 3 s; the buckets are dense where Greenlight lives (10-50 ms, Bolt's
# ack poll ticks every 10 ms) and reach past the limit.
ACK_BUCKETS = (0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
# Most distinct values one label may take in a process; later newcomers are counted as "other".
MAX_LABEL_VALUES = 50
OTHER = "other"
_LABEL_SHAPE = re.compile(r"[A-Za-z0-9_.:/{}\- ]{1,80}")

ACK_SECONDS = Histogram(
    "greenlight_slack_ack_seconds",
    "Time from receiving a Slack request on /slack/events to the ack response, by request kind.",
    ["kind"], buckets=ACK_BUCKETS,
)
WEBHOOK_DELIVERIES = Counter(
    "greenlight_webhook_deliveries",
    "Provider webhook deliveries by provider, event type, outcome and HTTP status answered.",
    ["provider", "type", "outcome", "status"],
)
PROVIDER_CALLS = Counter(
    "greenlight_provider_calls",
    "Provider API requests by provider, endpoint template and HTTP status (or transport failure).",
    ["provider", "endpoint", "status"],
)
PROVIDER_BUDGET_WAIT = Counter(
    "greenlight_provider_budget_wait_seconds",
    "Seconds spent waiting for a slot in the provider's client-side rate budget.",
    ["provider", "priority"],
)
PROVIDER_BUDGET_EXHAUSTED = Counter(
    "greenlight_provider_budget_exhausted",
    "Provider calls not made because the rate budget had no slot in time (background work goes back "
    "to the job queue; an interactive caller is told to try again).",
    ["provider", "priority"],
)
SLACK_CALLS = Counter(
    "greenlight_slack_calls",
    "Slack Web API requests (every attempt) by method and outcome: ok, Slack's error code, or a "
    "transport failure.",
    ["method", "status"],
)
SLACK_RATE_LIMITED = Counter(
    "greenlight_slack_rate_limited",
    "Slack Web API answers of HTTP 429, by method.",
    ["method"],
)
CARDS_POSTED = Counter("greenlight_cards_posted", "Review cards posted to Slack (new messages, reposts included).")
READY = Gauge(
    "greenlight_ready",
    "1 while the process is ready (/readyz would answer 200), else 0; with several processes on a "
    "host, the lowest of the live ones.",
    multiprocess_mode="livemin",
)

_enabled = True


def configure(*, enabled: bool, multiproc_dir: str | None) -> None:
    """Turn the hooks on or off (process-wide, like the registry), and check multiprocess mode is live.

    PROMETHEUS_MULTIPROC_DIR only works when it was in the environment before prometheus-client was
    imported; a process that got it later would silently report only itself.
    """
    global _enabled
    _enabled = enabled
    if enabled and multiproc_dir and not multiprocess_mode():
        raise RuntimeError(
            "PROMETHEUS_MULTIPROC_DIR is set but prometheus-client was imported before it was in the "
            "environment; set it in the process environment (or .env) before Greenlight starts"
        )


def enabled() -> bool:
    """Whether the hooks count."""
    return _enabled


def multiprocess_mode() -> bool:
    """Whether samples go to PROMETHEUS_MULTIPROC_DIR (decided by prometheus-client at import)."""
    return _values.ValueClass is not _values.MutexValue


# -- keeping labels small --------------------------------------------------------------------------------


class _Vocabulary:
    """The distinct values one label has taken, capped."""

    def __init__(self, limit: int = MAX_LABEL_VALUES) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if not _LABEL_SHAPE.fullmatch(value):
            return OTHER
        with self._lock:
            if len(self._seen) >= self.limit:
                return OTHER
            self._seen.add(value)
        return value


_vocabularies: dict[str, _Vocabulary] = {}
_vocabularies_lock = threading.Lock()


def bounded(label: str, value: str | None) -> str:
    """`value` while `label` has seen fewer than MAX_LABEL_VALUES distinct values, else "other"."""
    if not value:
        return "none"
    vocabulary = _vocabularies.get(label)
    if vocabulary is None:
        with _vocabularies_lock:
            vocabulary = _vocabularies.setdefault(label, _Vocabulary())
    return vocabulary(value)


# -- the hooks -------------------------------------------------------------------------------------------


def observe_ack(kind: str, seconds: float) -> None:
    """A Slack request of `kind` was acknowledged `seconds` after it arrived."""
    if _enabled:
        ACK_SECONDS.labels(bounded("ack_kind", kind)).observe(seconds)


def webhook_delivery(provider: str, event_type: str | None, outcome: str, status: int) -> None:
    """A webhook delivery was answered: accepted, duplicate, ignored, rejected or unavailable."""
    if _enabled:
        WEBHOOK_DELIVERIES.labels(provider, bounded(f"webhook_type:{provider}", event_type), outcome, str(status)).inc()


def provider_call(provider: str, endpoint: str, status: str) -> None:
    """One request to a provider's API (`endpoint` is a template like "GET /v1/posts/{id}")."""
    if _enabled:
        PROVIDER_CALLS.labels(provider, bounded(f"endpoint:{provider}", endpoint), status).inc()


def budget_waited(provider: str, priority: str, seconds: float) -> None:
    """A caller slept `seconds` for a slot in the provider's rate budget."""
    if _enabled and seconds > 0:
        PROVIDER_BUDGET_WAIT.labels(provider, priority).inc(seconds)


def budget_exhausted(provider: str, priority: str) -> None:
    """A call was not made: the rate budget had no slot within the caller's patience."""
    if _enabled:
        PROVIDER_BUDGET_EXHAUSTED.labels(provider, priority).inc()


def slack_call(method: str, status: str, *, rate_limited: bool = False) -> None:
    """One Slack Web API attempt and how it ended."""
    if _enabled:
        method = bounded("slack_method", method)
        SLACK_CALLS.labels(method, bounded("slack_status", status)).inc()
        if rate_limited:
            SLACK_RATE_LIMITED.labels(method).inc()


def card_posted() -> None:
    """A review card was posted as a new Slack message."""
    if _enabled:
        CARDS_POSTED.inc()


def set_ready(ready: bool) -> None:
    """This process's readiness, as /readyz reports it."""
    if _enabled:
        READY.set(1 if ready else 0)


# -- GET /metrics ----------------------------------------------------------------------------------------


class _ThisProcess(Collector):
    """The process-wide registry (single-process mode), as one collector of a per-scrape registry."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def exposition(collectors: Iterable[Collector] = ()) -> bytes:
    """The Prometheus text exposition: the counters (of every process on the host in multiprocess
    mode) plus `collectors` (read now, e.g. from the database)."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_mode():
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ThisProcess())
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry)


def token_matches(authorization: str | None, token: str) -> bool:
    """Whether an Authorization header carries `Bearer <token>` (constant-time compare)."""
    if not authorization:
        return False
    scheme, _, given = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    try:
        return hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8"))
    except UnicodeEncodeError:
        return False


def process_exited(pid: int, multiproc_dir: str | None) -> None:
    """Multiprocess mode: drop this process's live gauges (its counters stay in the totals)."""
    if multiproc_dir and multiprocess_mode():
        from prometheus_client.multiprocess import mark_process_dead

        mark_process_dead(pid, multiproc_dir)  # type: ignore[no-untyped-call]
