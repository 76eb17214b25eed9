"""Replicas share one provider budget (bot.providers.budget_storage, bot.services.budgets).

* Each storage (memory, Redis, PostgreSQL): hits are counted, the reserve is kept, and threads
  hammering it (on two separate connection pools, like two replicas) never get more than the limit
  into any window.
* What one replica learns from the provider (Retry-After, X-RateLimit-Remaining: 0) holds the others.
* A shared storage that fails falls back to this process's own window.
* Settings: RATE_LIMIT_STORAGE_URL is validated and its password never logged; `budget_for` picks
  the storage.
* The proof: two `python -m bot` processes on one PostgreSQL database card a burst of drafts that
  needs more Choppity reads than a minute allows. The fake Choppity (60 requests/min) never answers
  429, and every draft is carded. Once with the PostgreSQL window, once with Redis; and, as the
  control, with each process keeping its own window, which does bounce off the limit.

Tests that need Redis skip (saying why) when it is not reachable at TEST_REDIS_URL
(default redis://127.0.0.1:6379/0); those that need PostgreSQL skip when TEST_DATABASE_URL is unset.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from bot.config import ConfigError, Settings
from bot.db import make_engine, migrate
from bot.models import Post
from bot.providers.budget import BudgetExhausted, Priority, RateBudget
from bot.providers.budget_storage import MemoryWindow, RedisWindow, Resilient, WindowStorage
from bot.security import SecretRedactingFilter
from bot.services.budgets import PostgresWindow, budget_for, storage_for
from tests import harness
from tests.fakes.choppity import FakeChoppity
from tests.fakes.slack import FakeSlack
from tests.harness import base_env, postgres_schema, wait_until
from tests.test_e2e_processes import AppProcess, launch, pg_database_url  # noqa: F401 - fixtures

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_unreachable() -> str | None:
    """Why Redis can't be used here, or None when it answers."""
    try:
        import redis
    except ImportError:
        return "the redis package is not installed"
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)
        client.ping()
        client.close()
    except Exception as exc:  # noqa: BLE001 - any failure means "skip"
        return f"Redis is not reachable at {REDIS_URL} ({type(exc).__name__})"
    return None


@pytest.fixture
def redis_url() -> str:
    reason = redis_unreachable()
    if reason:
        pytest.skip(f"shared-budget test on Redis skipped: {reason}")
    return REDIS_URL


@pytest.fixture
def pg_engines() -> Iterator[tuple[Engine, Engine]]:
    """Two engines (two connection pools, like two replicas) on one fresh, migrated PostgreSQL schema."""
    base = harness.test_database_url()
    if not base:
        pytest.skip("PostgreSQL shared-budget test skipped: TEST_DATABASE_URL is not set (.ci/run sets it)")
    with postgres_schema(base) as url:
        first, second = make_engine(url), make_engine(url)
        migrate(first)
        yield first, second
        first.dispose()
        second.dispose()


STORAGES = ["memory", "redis", "postgres"]


@pytest.fixture(params=STORAGES)
def storages(request: pytest.FixtureRequest) -> tuple[WindowStorage, WindowStorage]:
    """Two handles on one window (for memory: the same object; it is one process's window)."""
    if request.param == "memory":
        memory = MemoryWindow()
        return memory, memory
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        return RedisWindow(url), RedisWindow(url)
    first, second = request.getfixturevalue("pg_engines")
    return PostgresWindow(first), PostgresWindow(second)


def _key() -> str:
    return f"test:{uuid.uuid4().hex}"


def test_counts_hits_and_keeps_the_reserve(storages: tuple[WindowStorage, WindowStorage]) -> None:
    a, b = storages
    key = _key()
    assert a.remaining(key, limit=4, window=60) == 4
    assert a.take(key, limit=4, window=60, keep=1) == 0.0
    assert b.take(key, limit=4, window=60, keep=1) == 0.0
    assert a.take(key, limit=4, window=60, keep=1) == 0.0
    wait = b.take(key, limit=4, window=60, keep=1)  # the last slot is kept for interactive calls
    assert 50 < wait <= 60
    assert a.remaining(key, limit=4, window=60) == 1
    assert b.take(key, limit=4, window=60, keep=0) == 0.0  # ... which may take it
    assert 50 < a.take(key, limit=4, window=60, keep=0) <= 60
    assert b.remaining(key, limit=4, window=60) == 0
    assert a.remaining(_key(), limit=4, window=60) == 4  # keys are separate windows


def test_slots_come_back_when_the_window_moves_on(storages: tuple[WindowStorage, WindowStorage]) -> None:
    a, b = storages
    key = _key()
    for _ in range(3):
        assert a.take(key, limit=3, window=1, keep=0) == 0.0
    wait = b.take(key, limit=3, window=1, keep=0)
    assert 0 < wait <= 1.0
    time.sleep(wait + 0.05)
    assert b.take(key, limit=3, window=1, keep=0) == 0.0


def test_concurrent_takers_never_exceed_the_limit_in_any_window(
    storages: tuple[WindowStorage, WindowStorage],
) -> None:
    limit, window, seconds, threads = 10, 2, 5.0, 8
    key = _key()
    hits: list[tuple[float, float]] = []  # (before the call, after it): the hit happened in between
    lock = threading.Lock()
    stop = time.time() + seconds

    def hammer(storage: WindowStorage) -> None:
        while time.time() < stop:
            before = time.time()
            wait = storage.take(key, limit=limit, window=window, keep=0)
            after = time.time()
            if wait == 0.0:
                with lock:
                    hits.append((before, after))
            else:
                time.sleep(min(wait, 0.05))

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(hammer, [storages[n % 2] for n in range(threads)]))

    assert len(hits) >= limit * 2  # the window moved on at least twice: real contention, not one burst
    ordered = sorted(hits)
    # Any limit+1 hits span at least one window: the last of them ended at least `window` after the
    # first began. (Client-side bounds can only make the span look longer, never shorter.)
    for i in range(len(ordered) - limit):
        group = ordered[i : i + limit + 1]
        span = max(after for _, after in group) - group[0][0]
        assert span >= window, f"{limit + 1} hits within {span:.3f} s (window {window} s)"
    # And the window was used: roughly limit per window over the run.
    assert len(hits) <= limit * (seconds / window + 1)


def test_what_one_replica_hears_from_the_provider_holds_the_others(
    storages: tuple[WindowStorage, WindowStorage],
) -> None:
    a_store, b_store = storages
    key = _key()
    a = RateBudget(60, key="choppity", storage=a_store, storage_key=key)
    b = RateBudget(60, key="choppity", storage=b_store, storage_key=key)
    a.observe({"retry-after": "30"}, 429)
    with pytest.raises(BudgetExhausted):
        a.acquire(Priority.INTERACTIVE, max_wait=1)
    if not a_store.shared:
        b.acquire(Priority.INTERACTIVE, max_wait=0)  # one process's window: nobody else hears
        return
    with pytest.raises(BudgetExhausted) as info:
        b.acquire(Priority.INTERACTIVE, max_wait=1)
    assert 25 < info.value.wait <= 30
    assert info.value.provider == "choppity"
    c = RateBudget(60, key="choppity", storage=b_store, storage_key=_key())  # another account: free
    c.acquire(Priority.INTERACTIVE, max_wait=0)


def test_budget_interface_is_unchanged_on_a_shared_storage(storages: tuple[WindowStorage, WindowStorage]) -> None:
    budget = RateBudget(4, key="choppity", storage=storages[0], storage_key=_key())
    assert budget.per_minute == 4 and budget.remaining() == 4
    for _ in range(3):
        budget.acquire(Priority.BACKGROUND, max_wait=0)
    with pytest.raises(BudgetExhausted):
        budget.acquire(Priority.BACKGROUND, max_wait=0)
    budget.acquire(Priority.INTERACTIVE, max_wait=0)
    assert budget.remaining() == 0 and budget.acquired == 4


class Broken(WindowStorage):
    """A shared storage whose server is down."""

    shared = True

    def __init__(self) -> None:
        self.calls = 0

    def take(self, key: str, *, limit: int, window: int, keep: int) -> float:
        self.calls += 1
        raise ConnectionError("connection refused")

    def remaining(self, key: str, *, limit: int, window: int) -> int:
        raise ConnectionError("connection refused")

    def block(self, key: str, until: float) -> None:
        raise ConnectionError("connection refused")


def test_a_failing_shared_storage_falls_back_to_this_process(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    broken = Broken()
    storage = Resilient(broken, retry_after=5.0, clock=lambda: now[0])
    budget = RateBudget(3, key="choppity", storage=storage, reserve_fraction=0, clock=lambda: now[0])
    for _ in range(3):
        budget.acquire(Priority.BACKGROUND, max_wait=0)
    with pytest.raises(BudgetExhausted):
        budget.acquire(Priority.BACKGROUND, max_wait=0)  # the local window still limits
    assert broken.calls == 1  # not retried on every call while down
    assert budget.remaining() == 0
    budget.observe({"retry-after": "1"}, 429)  # does not raise
    assert [r.levelname for r in caplog.records if "shared rate-limit window" in r.getMessage()] == ["WARNING"]
    now[0] += 6
    with pytest.raises(BudgetExhausted):
        budget.acquire(Priority.BACKGROUND, max_wait=0)
    assert broken.calls == 2  # tried again after retry_after


# -- settings ---------------------------------------------------------------------------------------------

REQUIRED = {
    "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s" * 10, "SLACK_CHANNEL_ID": "C0REVIEW",
    "CHOPPITY_API_KEY": "ck-test-key", "CHOPPITY_WEBHOOK_SECRET": "whsec_x",
}


@pytest.mark.parametrize("value", ["redis://127.0.0.1:6379/0", "rediss://:pw@cache.internal:6380/2",
                                   "redis+unix:///run/redis.sock", "memory://", "  "])
def test_rate_limit_storage_url_accepts(value: str) -> None:
    settings = Settings.from_env({**REQUIRED, "RATE_LIMIT_STORAGE_URL": value})
    assert settings.rate_limit_storage_url == (value.strip() or None)


@pytest.mark.parametrize("value", ["postgresql://u:hunter2secret@db/x", "http://cache", "redis://", "redis:6379",
                                   "redis://h:notaport/0", "memcached://h"])
def test_rate_limit_storage_url_refuses_naming_the_variable_without_the_password(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({**REQUIRED, "RATE_LIMIT_STORAGE_URL": value})
    [problem] = info.value.problems
    assert problem.startswith("RATE_LIMIT_STORAGE_URL ")
    assert "hunter2secret" not in str(info.value)


def test_the_storage_password_is_a_secret_and_never_logged() -> None:
    url = "redis://:s3cret-Redis-pass@cache.internal:6379/0"
    settings = Settings.from_env({**REQUIRED, "RATE_LIMIT_STORAGE_URL": url})
    assert "s3cret-Redis-pass" in settings.secrets()
    assert "s3cret" not in repr(settings)
    redactor = SecretRedactingFilter(settings.secrets())
    assert "s3cret" not in redactor.redact(f"connecting to {url} failed; password s3cret-Redis-pass")
    plain = Settings.from_env({**REQUIRED, "RATE_LIMIT_STORAGE_URL": "redis://127.0.0.1:6379/0"})
    assert plain.secrets() == Settings.from_env(REQUIRED).secrets()


def test_budget_for_picks_the_storage(tmp_path: Path) -> None:
    sqlite = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    settings = Settings.from_env(REQUIRED)
    assert type(storage_for(settings, sqlite)) is MemoryWindow
    assert type(storage_for(settings, None)) is MemoryWindow
    forced = Settings.from_env({**REQUIRED, "RATE_LIMIT_STORAGE_URL": "memory://"})
    assert type(storage_for(forced, sqlite)) is MemoryWindow
    on_redis = Settings.from_env({**REQUIRED, "RATE_LIMIT_STORAGE_URL": "redis://127.0.0.1:1/0"})
    wrapped = storage_for(on_redis, sqlite)
    assert isinstance(wrapped, Resilient) and isinstance(wrapped.inner, RedisWindow)
    budget = budget_for(settings, sqlite, "choppity", 60)
    assert budget.per_minute == 60 and type(budget.storage) is MemoryWindow
    # An unreachable Redis: calls still go through, on this process's window.
    unreachable = budget_for(on_redis, sqlite, "choppity", 60)
    unreachable.acquire(Priority.INTERACTIVE, max_wait=0)
    sqlite.dispose()


def test_budget_for_uses_postgresql_when_that_is_the_database(pg_engines: tuple[Engine, Engine]) -> None:
    engine = pg_engines[0]
    settings = Settings.from_env(REQUIRED)
    budget = budget_for(settings, engine, "choppity", 60)
    assert isinstance(budget.storage, Resilient) and isinstance(budget.storage.inner, PostgresWindow)
    other = budget_for(settings, pg_engines[1], "choppity", 60)
    budget.acquire(Priority.INTERACTIVE, max_wait=0)
    assert other.remaining() == 59  # one window for both "replicas"
    different_account = budget_for(Settings.from_env({**REQUIRED, "CHOPPITY_API_KEY": "ck-other"}), engine,
                                   "choppity", 60)
    assert different_account.remaining() == 60
    forced = budget_for(Settings.from_env({**REQUIRED, "RATE_LIMIT_STORAGE_URL": "memory://"}), engine, "choppity", 60)
    assert type(forced.storage) is MemoryWindow


# -- the proof: two processes, one PostgreSQL database, a burst beyond the provider's limit ---------------

DRAFTS = 80  # one Choppity read each: more than a minute's budget
BURST_TIMEOUT = 150.0


def _carded(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(Post).where(col(Post.message_ts).is_not(None))).one())


def _max_in_window(times: list[float], window: float = 60.0) -> int:
    ordered = sorted(times)
    best = j = 0
    for i, t in enumerate(ordered):
        while ordered[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


@contextmanager
def _burst(start: Callable[[dict[str, str]], AppProcess], database_url: str,
           **overrides: str) -> Iterator[tuple[FakeChoppity, Engine]]:
    """Two processes on one database, DRAFTS draft webhooks split across them (all acknowledged)."""
    # A fresh account per run: a shared window is per API key (and Redis outlives the test).
    api_key = f"ck-{uuid.uuid4().hex[:12]}-team_abc"
    with FakeSlack() as fake_slack, FakeChoppity(api_key=api_key, rate_limit_per_minute=60) as fake_choppity:
        env = base_env(fake_slack, fake_choppity, database_url, LOG_LEVEL="INFO", **overrides)
        engine = make_engine(Settings.from_env(env).database_url)
        try:
            a, b = start(env), start(env)
            platforms = ("youtube", "tiktok", "instagram", "linkedin")
            remotes = [fake_choppity.add_post(platforms[n % 4]) for n in range(DRAFTS)]

            def deliver(n: int) -> int:
                data = {"post_id": remotes[n]["id"], "clip_id": remotes[n]["clip_id"]}
                return (a, b)[n % 2].webhook("post.draft.created", data).status_code

            with ThreadPoolExecutor(8) as pool:
                assert list(pool.map(deliver, range(DRAFTS))) == [200] * DRAFTS
            yield fake_choppity, engine
            for app in (a, b):
                app.stop()  # before the fakes go away
        finally:
            engine.dispose()


@pytest.mark.timeout(240)
@pytest.mark.parametrize("storage", ["postgres", "redis"])
def test_two_processes_share_one_choppity_budget(
    storage: str, pg_database_url: str, launch: Callable[[dict[str, str]], AppProcess],  # noqa: F811
    request: pytest.FixtureRequest,
) -> None:
    overrides = {"RATE_LIMIT_STORAGE_URL": request.getfixturevalue("redis_url")} if storage == "redis" else {}
    with _burst(launch, pg_database_url, **overrides) as (fake_choppity, engine):
        wait_until(lambda: _carded(engine) == DRAFTS, timeout=BURST_TIMEOUT, message=f"{DRAFTS} cards")
        calls = [c.at for c in fake_choppity.calls()]
        assert fake_choppity.rate_limited_count == 0
        assert len(calls) >= DRAFTS
        busiest = _max_in_window(calls)
        # Background work may use 45 of the 60 slots a minute (15 are kept for clicks).
        assert busiest <= 60, f"{busiest} Choppity calls in one minute"
        assert busiest < len(calls)  # the burst really needed more than a minute


@pytest.mark.timeout(120)
def test_control_two_processes_with_their_own_windows_bounce_off_the_limit(
    pg_database_url: str, launch: Callable[[dict[str, str]], AppProcess],  # noqa: F811
) -> None:
    with _burst(launch, pg_database_url, RATE_LIMIT_STORAGE_URL="memory://") as (fake_choppity, _):
        # Each process allows itself 45 background reads a minute: 80 between them, at once.
        wait_until(lambda: fake_choppity.rate_limited_count > 0, timeout=30, message="a 429 from Choppity")
