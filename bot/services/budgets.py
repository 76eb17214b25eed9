"""Provider request budgets for a deployment: in memory, or shared by every replica.

`budget_for(settings, engine, key, per_minute)` builds the `RateBudget` of one provider account. With
`RATE_LIMIT_STORAGE_URL` empty, a PostgreSQL deployment shares its windows through `PostgresWindow`
(limits has no PostgreSQL backend): one row per request in `rate_limit_hit`; each take runs in a
transaction holding `pg_advisory_xact_lock` on the key, so counting the last window and inserting
the new hit are atomic across processes. Old rows are pruned as it goes.
"""

from __future__ import annotations

import hashlib
import threading
from urllib.parse import urlsplit

from sqlalchemy import Engine, text

from bot.config import Settings
from bot.providers.budget import RateBudget
from bot.providers.budget_storage import MIN_WAIT, MemoryWindow, RedisWindow, Resilient, WindowStorage

# Namespace of Greenlight's advisory locks (the first half of pg_advisory_xact_lock(int, int)).
ADVISORY_LOCK_CLASS = 0x4E11


# One statement, run while holding the key's advisory lock: prune hits older than the window, count
# the rest, read any block, and insert a hit when there is room. All on the database's clock, so
# replicas on different hosts agree on what "the last 60 seconds" is.
_TAKE_SQL = text("""
WITH now AS (SELECT extract(epoch FROM clock_timestamp())::double precision AS t),
pruned AS (
    DELETE FROM rate_limit_hit WHERE key = :key AND at <= (SELECT t FROM now) - :window RETURNING 1
),
win AS (
    SELECT count(*) AS n, min(at) AS oldest FROM rate_limit_hit
    WHERE key = :key AND at > (SELECT t FROM now) - :window
),
blk AS (SELECT blocked_until FROM rate_limit_block WHERE key = :key),
hit AS (
    INSERT INTO rate_limit_hit (key, at)
    SELECT :key, now.t FROM now, win
    WHERE win.n < :allowed AND coalesce((SELECT blocked_until FROM blk), 0) <= now.t
    RETURNING at
)
SELECT now.t, win.n, win.oldest, (SELECT blocked_until FROM blk) AS blocked_until,
       (SELECT count(*) FROM hit) AS taken, (SELECT count(*) FROM pruned) AS pruned
FROM now, win
""")

_REMAINING_SQL = text("""
SELECT count(*) FROM rate_limit_hit
WHERE key = :key AND at > extract(epoch FROM clock_timestamp())::double precision - :window
""")

_BLOCK_SQL = text("""
INSERT INTO rate_limit_block (key, blocked_until) VALUES (:key, :until)
ON CONFLICT (key) DO UPDATE SET blocked_until = greatest(rate_limit_block.blocked_until, excluded.blocked_until)
""")


class PostgresWindow(WindowStorage):
    """A moving window in PostgreSQL (tables `rate_limit_hit` and `rate_limit_block`, migration 0004)."""

    shared = True

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("PostgresWindow needs a PostgreSQL engine")
        self._engine = engine

    def take(self, key: str, *, limit: int, window: int, keep: int) -> float:
        with self._engine.begin() as conn:
            conn.execute(
                text("SELECT pg_advisory_xact_lock(:cls, hashtext(:key))"),
                {"cls": ADVISORY_LOCK_CLASS, "key": key},
            )
            now, count, oldest, blocked, taken, _ = conn.execute(
                _TAKE_SQL, {"key": key, "window": float(window), "allowed": limit - keep}
            ).one()
        if taken:
            return 0.0
        if blocked is not None and blocked > now:
            return max(MIN_WAIT, float(blocked) - float(now))
        if oldest is None:  # keep >= limit: nothing will ever free up for this caller
            return float(window)
        return max(MIN_WAIT, float(oldest) + window - float(now))

    def remaining(self, key: str, *, limit: int, window: int) -> int:
        with self._engine.connect() as conn:
            used = conn.execute(_REMAINING_SQL, {"key": key, "window": float(window)}).scalar_one()
        return max(0, limit - int(used))

    def block(self, key: str, until: float) -> None:
        with self._engine.begin() as conn:
            conn.execute(_BLOCK_SQL, {"key": key, "until": until})


# -- building budgets from settings --------------------------------------------------------------------

_redis_windows: dict[str, RedisWindow] = {}
_redis_lock = threading.Lock()


def _redis_window(url: str) -> RedisWindow:
    """One RedisWindow (one connection pool) per URL in this process."""
    with _redis_lock:
        window = _redis_windows.get(url)
        if window is None:
            window = _redis_windows[url] = RedisWindow(url)
        return window


def storage_for(settings: Settings, engine: Engine | None) -> WindowStorage:
    """The window storage a deployment's settings ask for (see RATE_LIMIT_STORAGE_URL)."""
    url = settings.rate_limit_storage_url
    if not url:
        if engine is not None and engine.dialect.name == "postgresql":
            return Resilient(PostgresWindow(engine))
        return MemoryWindow()
    if urlsplit(url).scheme == "memory":
        return MemoryWindow()
    return Resilient(_redis_window(url))


def storage_key(settings: Settings, key: str) -> str:
    """The shared window's key: the provider and a fingerprint of its API key.

    A provider's limit is per account (API key), so deployments sharing a Redis share a window only
    when they use the same account, as they share its limit. The key itself never leaves the process.
    """
    api_key = {"choppity": settings.choppity_api_key, "reap": settings.reap_api_key}.get(key) or ""
    return f"{key}:{hashlib.sha256(api_key.encode()).hexdigest()[:16]}"


def budget_for(settings: Settings, engine: Engine | None, key: str, per_minute: int) -> RateBudget:
    """The RateBudget for one provider account: shared across replicas when the deployment allows."""
    storage = storage_for(settings, engine)
    if not storage.shared:
        return RateBudget(per_minute, key=key, storage=storage)
    return RateBudget(per_minute, key=key, storage=storage, storage_key=storage_key(settings, key))
