"""Where a `RateBudget` keeps its moving window: in this process, or shared by every replica.

- `MemoryWindow`: the `limits` library's in-memory moving window. One process only (SQLite
  deployments, tests). The default, and the fastest.
- `RedisWindow`: `limits`' Redis storage (`RATE_LIMIT_STORAGE_URL=redis://…`): the moving window is
  a Lua script, atomic across every replica using the same Redis.
- `bot.services.budgets.PostgresWindow`: the same in PostgreSQL (it needs the database, so it lives
  with the services).

Shared windows also share what the provider said: when one replica learns from `Retry-After` or
`X-RateLimit-Remaining: 0` that the provider's budget is spent, every replica waits (`block`).

A shared window that fails (Redis or the database unreachable) does not stop provider calls:
`Resilient` falls back to an in-memory window, logs a warning, and tries the shared one again
after a few seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

log = logging.getLogger(__name__)

# Shortest wait handed back when no slot is free, so callers never spin.
MIN_WAIT = 0.05


class WindowStorage(ABC):
    """A moving window of hits per key: at most `limit` in any `window` seconds."""

    #: Whether several processes see the same window.
    shared = False

    @abstractmethod
    def take(self, key: str, *, limit: int, window: int, keep: int) -> float:
        """Record a hit if more than `keep` slots are free (and no shared block is in force).

        Returns 0.0 when the hit was recorded, else roughly how many seconds until trying again
        may succeed (at least MIN_WAIT).
        """

    @abstractmethod
    def remaining(self, key: str, *, limit: int, window: int) -> int:
        """Free slots in the current window."""

    def block(self, key: str, until: float) -> None:  # noqa: B027 - optional for a store
        """Share "the provider says: no calls before `until` (unix time)" with every replica."""


class _LimitsWindow(WindowStorage):
    """A moving window in one of the `limits` library's storages."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._limiter = MovingWindowRateLimiter(storage)
        self._items: dict[tuple[int, int], RateLimitItem] = {}

    def _item(self, limit: int, window: int) -> RateLimitItem:
        item = self._items.get((limit, window))
        if item is None:
            item = self._items[(limit, window)] = RateLimitItemPerSecond(limit, window)
        return item

    def take(self, key: str, *, limit: int, window: int, keep: int) -> float:
        item = self._item(limit, window)
        stats = self._limiter.get_window_stats(item, key)
        if stats.remaining > keep and self._limiter.hit(item, key):
            return 0.0
        # limits stamps its entries with time.time().
        return max(MIN_WAIT, stats.reset_time - time.time())

    def remaining(self, key: str, *, limit: int, window: int) -> int:
        return int(self._limiter.get_window_stats(self._item(limit, window), key).remaining)

    def record(self, key: str, *, limit: int, window: int) -> None:
        """Count a hit made elsewhere (a no-op when the window is full)."""
        self._limiter.hit(self._item(limit, window), key)


class MemoryWindow(_LimitsWindow):
    """This process only (what every replica had before windows could be shared)."""

    def __init__(self) -> None:
        super().__init__(MemoryStorage())


# Keeps the later of two block times; expires with it.
_BLOCK_SCRIPT = """
local current = tonumber(redis.call('get', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then
  redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 0
"""


class RedisWindow(_LimitsWindow):
    """`limits`' Redis storage: the window is one sorted list per key, updated by a Lua script."""

    shared = True

    def __init__(self, url: str) -> None:
        # wrap_exceptions: connection problems surface as limits.errors.StorageError.
        redis_storage = RedisStorage(url, key_prefix="greenlight", wrap_exceptions=True)
        super().__init__(redis_storage)
        self._redis: Any = redis_storage.storage
        self._block_script = self._redis.register_script(_BLOCK_SCRIPT)

    @staticmethod
    def _block_key(key: str) -> str:
        return f"greenlight/blocked/{key}"

    def take(self, key: str, *, limit: int, window: int, keep: int) -> float:
        raw = self._redis.get(self._block_key(key))
        if raw is not None:
            wait = float(raw) - time.time()
            if wait > 0:
                return max(MIN_WAIT, wait)
        return super().take(key, limit=limit, window=window, keep=keep)

    def block(self, key: str, until: float) -> None:
        ttl_ms = int((until - time.time()) * 1000)
        if ttl_ms > 0:
            self._block_script(keys=[self._block_key(key)], args=[repr(until), ttl_ms])


class Resilient(WindowStorage):
    """A shared window that falls back to this process's own window while the shared one fails."""

    def __init__(
        self, shared: WindowStorage, *, retry_after: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.inner = shared
        self.shared = shared.shared
        self._local = MemoryWindow()
        self._retry_after = retry_after
        self._clock = clock
        self._failed_until = 0.0
        self._lock = threading.Lock()

    def _down(self) -> bool:
        return self._clock() < self._failed_until

    def _failed(self, what: str, exc: Exception) -> None:
        with self._lock:
            first = self._failed_until == 0.0 or not self._down()
            self._failed_until = self._clock() + self._retry_after
        if first:
            log.warning(
                "shared rate-limit window unavailable (%s: %s); using this process's own window for %g s",
                what,
                type(exc).__name__,
                self._retry_after,
            )

    def take(self, key: str, *, limit: int, window: int, keep: int) -> float:
        if not self._down():
            try:
                wait = self.inner.take(key, limit=limit, window=window, keep=keep)
            except Exception as exc:  # noqa: BLE001 - any storage failure means "use the local window"
                self._failed("take", exc)
            else:
                if wait == 0.0:
                    # Mirror the hit, so a later fall-back starts from a realistic window.
                    self._local.record(key, limit=limit, window=window)
                return wait
        return self._local.take(key, limit=limit, window=window, keep=keep)

    def remaining(self, key: str, *, limit: int, window: int) -> int:
        if not self._down():
            try:
                return self.inner.remaining(key, limit=limit, window=window)
            except Exception as exc:  # noqa: BLE001
                self._failed("remaining", exc)
        return self._local.remaining(key, limit=limit, window=window)

    def block(self, key: str, until: float) -> None:
        if self._down():
            return
        try:
            self.inner.block(key, until)
        except Exception as exc:  # noqa: BLE001
            self._failed("block", exc)
