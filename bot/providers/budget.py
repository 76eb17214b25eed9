"""Client-side request budget shared by everything that calls one provider account.

User actions, webhook processing and the reconciler all draw from one moving window (via the
`limits` library), so background work can never starve a click: background callers only take a
slot while more than `reserve` slots remain. The provider's own `X-RateLimit-*` headers are fed
back in, so replicas also back off when the server-side budget runs out.

Where the window lives is a `WindowStorage` (bot.providers.budget_storage): in this process by
default, or shared by every replica (Redis, PostgreSQL) so that together they stay within the
provider's limit. `bot.services.budgets.budget_for` picks it from the settings.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from enum import Enum

from bot import metrics
from bot.providers.budget_storage import MemoryWindow, WindowStorage
from bot.providers.errors import BudgetExhausted

__all__ = ["BudgetExhausted", "Priority", "RateBudget", "parse_retry_after"]


class Priority(Enum):
    """Who is asking: a person waiting, or a background job."""

    INTERACTIVE = "interactive"
    BACKGROUND = "background"


class RateBudget:
    """A per-minute request budget with a reserve kept for interactive calls.

    `storage` holds the moving window (default: this process's memory); `storage_key` names the
    window in it (default: `key`, which also names the provider in BudgetExhausted).
    """

    #: Length of the moving window, in seconds.
    window_seconds = 60

    def __init__(
        self,
        per_minute: int,
        *,
        key: str,
        reserve_fraction: float = 0.25,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        storage: WindowStorage | None = None,
        storage_key: str | None = None,
    ) -> None:
        self.per_minute = per_minute
        self.storage = storage if storage is not None else MemoryWindow()
        self._storage_key = storage_key or key
        self._key = key
        self._reserve = max(0, min(per_minute - 1, round(per_minute * reserve_fraction)))
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep
        self._server_blocked_until = 0.0
        self.acquired = 0

    def _try(self, priority: Priority) -> float:
        """Take a slot and return 0, or return how long to wait before trying again."""
        with self._lock:
            now = self._clock()
            if now < self._server_blocked_until:
                return self._server_blocked_until - now
            floor = self._reserve if priority is Priority.BACKGROUND else 0
            wait = self.storage.take(self._storage_key, limit=self.per_minute, window=self.window_seconds, keep=floor)
            if wait == 0.0:
                self.acquired += 1
            return wait

    def acquire(self, priority: Priority = Priority.INTERACTIVE, *, max_wait: float = 30.0) -> None:
        """Block until a slot is free; raise BudgetExhausted if that would take over `max_wait`."""
        deadline = self._clock() + max_wait
        waited = 0.0
        while True:
            wait = self._try(priority)
            if wait == 0.0:
                metrics.budget_waited(self._key, priority.value, waited)
                return
            if self._clock() + wait > deadline:
                metrics.budget_waited(self._key, priority.value, waited)
                metrics.budget_exhausted(self._key, priority.value)
                raise BudgetExhausted(wait, provider=self._key)
            self._sleep(min(wait, 1.0))
            waited += min(wait, 1.0)

    def remaining(self) -> int:
        """Slots left in the current window (for metrics and tests)."""
        with self._lock:
            return self.storage.remaining(self._storage_key, limit=self.per_minute, window=self.window_seconds)

    def observe(self, headers: Mapping[str, str], status: int) -> None:
        """Learn from the provider's rate-limit headers (and tell every replica, when shared)."""
        remaining = headers.get("x-ratelimit-remaining")
        reset = headers.get("x-ratelimit-reset")
        retry_after = headers.get("retry-after")
        now = self._clock()
        until = 0.0
        if status == 429 and retry_after is not None:
            until = now + parse_retry_after(retry_after, now)
        if remaining is not None and reset is not None and remaining.strip() == "0":
            try:
                until = max(until, float(reset))
            except ValueError:
                pass
        if status == 429 and until <= now:
            until = now + 1.0
        if until > now:
            # Cap at two minutes so a bogus header can't stall us for hours.
            until = min(until, now + 120.0)
            with self._lock:
                self._server_blocked_until = max(self._server_blocked_until, until)
            if self.storage.shared:
                self.storage.block(self._storage_key, until)


def parse_retry_after(value: str, now: float) -> float:
    """Seconds to wait from a Retry-After value (delay-seconds or HTTP-date), never negative."""
    value = value.strip()
    if value.isdigit() and len(value) < 10:
        return float(value)
    try:
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - now)
    except (TypeError, ValueError, IndexError, OverflowError):
        return 1.0
