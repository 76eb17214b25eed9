"""Plumbing shared by the provider clients: one retry policy and one mapping of transport failures.

The policy is the one reliability.md asks for: retry reads and other idempotent calls on connection
errors, 5xx and short 429s with jittered exponential backoff (tenacity), within a deadline; retry a
non-idempotent call only when the request provably never left (connect errors), so a publish is
never sent twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, stop_after_delay
from tenacity.wait import wait_exponential_jitter

from bot.providers.errors import ApiOutcomeUnknown, ApiRateLimited, ApiUnavailable, BudgetExhausted

T = TypeVar("T")

# Longest Retry-After slept through inside one call; longer waits go back to the job queue so a
# worker thread is not parked for minutes.
MAX_INLINE_RETRY_AFTER = 5.0


def unavailable(provider: str, message: str, *, sent: bool, status: int | None = None) -> ApiUnavailable:
    """The right ApiUnavailable subclass: no answer after sending means the outcome is unknown."""
    cls = ApiOutcomeUnknown if sent and status is None else ApiUnavailable
    return cls(message, provider=provider, status=status, sent=sent)


def send(http: httpx.Client, label: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One HTTP request, with transport failures mapped onto the ApiError tree."""
    provider = label.lower()
    try:
        return http.request(method, path, **kwargs)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise unavailable(provider, f"Couldn't reach {label} ({type(exc).__name__})", sent=False) from exc
    except httpx.TimeoutException as exc:
        raise unavailable(provider, f"{label} didn't answer in time", sent=True) from exc
    except httpx.TransportError as exc:
        raise unavailable(provider, f"The connection to {label} broke ({type(exc).__name__})", sent=True) from exc


def with_retries(
    fn: Callable[[], T],
    *,
    idempotent: bool,
    retry_rate_limits: bool,
    attempts: int,
    deadline: float,
    sleep: Callable[[float], None] | None = None,
) -> T:
    """Run `fn` under the shared retry policy."""

    def retryable(exc: BaseException) -> bool:
        if isinstance(exc, BudgetExhausted):
            return False  # the budget already waited as long as this caller may
        if isinstance(exc, ApiRateLimited):
            # A 429 means the request was not processed, so even a publish may be re-sent.
            return retry_rate_limits and exc.retry_after <= MAX_INLINE_RETRY_AFTER
        if isinstance(exc, ApiUnavailable):
            return idempotent or not exc.sent
        return False

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        backoff = wait_exponential_jitter(initial=0.3, max=4.0)(state)
        if isinstance(exc, ApiRateLimited):
            return max(exc.retry_after, 0.0) + min(backoff, 0.5)
        return backoff

    kwargs: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
    retrying = Retrying(
        retry=retry_if_exception(retryable),
        wait=wait,
        stop=stop_after_attempt(attempts) | stop_after_delay(deadline),
        reraise=True,
        **kwargs,
    )
    return retrying(fn)
