"""What every provider client shares: construction, the rate budget, one request, the mapping of
HTTP answers onto the error tree, and one retry policy.

The policy: reads and other idempotent calls are retried on connection errors, 5xx and short 429s
with jittered exponential backoff (tenacity), within a deadline; a non-idempotent call (publish,
cancel, edit) only when the request provably never left (a refused connection), so nothing is ever
done twice by the client. Anything longer goes back to the job queue, which asks `next_delay` when to
try again; the services re-read a post before repeating a call whose outcome is unknown.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, stop_after_delay
from tenacity.wait import wait_exponential_jitter

from bot import metrics
from bot.providers.budget import Priority, RateBudget, parse_retry_after
from bot.providers.errors import (
    ApiBadRequest,
    ApiError,
    ApiNotFound,
    ApiOutcomeUnknown,
    ApiRateLimited,
    ApiRejected,
    ApiUnauthorized,
    ApiUnavailable,
    BudgetExhausted,
)
from bot.security import register_secrets

log = logging.getLogger(__name__)

T = TypeVar("T")

# Longest Retry-After slept through inside one call; longer waits go back to the job queue so a
# worker thread is not parked for minutes.
MAX_INLINE_RETRY_AFTER = 5.0
# How long an interactive call may wait for a budget slot; background calls never wait in a worker.
INTERACTIVE_MAX_WAIT = 20.0
ERROR_SNIPPET = 300


def next_delay(error: BaseException, attempt: int) -> float | None:
    """The one retry policy of the job queue: seconds until the next attempt, or None to give up.

    Rate limits (the provider's or our own budget) wait exactly as long as they say; an outage or a
    lost answer backs off exponentially with jitter (1.5 s, 3 s, 6 s ... capped at 5 minutes); a
    refusal is final.
    """
    if isinstance(error, ApiRateLimited):
        # Jitter spreads a crowd of waiting jobs so they don't stampede the next free slot.
        return float(max(0.5, error.retry_after) + random.uniform(0.0, 1.0))
    if isinstance(error, ApiUnavailable):
        return float(min(300.0, 1.5 * 2.0 ** max(0, attempt - 1)) * random.uniform(0.8, 1.2))
    return None


def unavailable(provider: str, message: str, *, sent: bool, status: int | None = None) -> ApiUnavailable:
    """The right ApiUnavailable subclass: no answer after sending means the outcome is unknown."""
    cls = ApiOutcomeUnknown if sent and status is None else ApiUnavailable
    return cls(message, provider=provider, status=status, sent=sent)


def with_retries(
    fn: Callable[[], T],
    *,
    idempotent: bool,
    retry_rate_limits: bool,
    attempts: int,
    deadline: float,
    sleep: Callable[[float], None] | None = None,
) -> T:
    """Run `fn` under the in-call retry policy (see the module docstring)."""

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


class BaseClient:
    """One httpx client, one rate budget and one way of calling, for a provider's API.

    A subclass says who it is (`label`), how it authenticates (`auth_header`), and how its error
    bodies read (`error_text`); everything else is here.
    """

    label: ClassVar[str] = "Provider"
    # Interactive calls retry short rate limits in the call; background ones hand them to the queue.
    retry_background_rate_limits: ClassVar[bool] = True
    attempts: ClassVar[int] = 4

    def __init__(
        self,
        http: httpx.Client,
        budget: RateBudget,
        *,
        retry_deadline: float = 20.0,
        interactive_max_wait: float = INTERACTIVE_MAX_WAIT,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self._http = http
        self.budget = budget
        self._retry_deadline = retry_deadline
        self._interactive_max_wait = interactive_max_wait
        self._sleep = sleep
        self.calls = 0

    @property
    def provider(self) -> str:
        """The provider's slug, as errors carry it."""
        return self.label.lower()

    @classmethod
    def auth_header(cls, api_key: str) -> str:
        """The Authorization header value for `api_key`."""
        raise NotImplementedError

    @classmethod
    def http_client(cls, *, base_url: str, api_key: str, timeout: float, max_connections: int = 10) -> httpx.Client:
        """An httpx client with explicit timeouts and the key in a header (never in a URL or a log)."""
        register_secrets([api_key])
        return httpx.Client(
            base_url=base_url,
            headers={
                "Authorization": cls.auth_header(api_key),
                "Accept": "application/json",
                "User-Agent": "greenlight/0.1",
            },
            timeout=httpx.Timeout(connect=min(3.0, timeout), read=timeout, write=timeout, pool=min(5.0, timeout)),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections // 2),
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # -- calling ---------------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        priority: Priority,
        idempotent: bool = True,
        endpoint: str | None = None,
    ) -> dict[str, Any]:
        """One API call under the retry policy; the decoded JSON object (or {} for an empty body).

        `endpoint` names the call in metrics: the path's template when the path holds an id
        ("/v1/posts/{id}"), so no id ever becomes a label; a path without ids names itself.
        """
        interactive = priority is Priority.INTERACTIVE
        label = f"{method} {endpoint or path}"
        return with_retries(
            lambda: self._once(method, path, params, json, priority, label),
            idempotent=idempotent,
            retry_rate_limits=(interactive or self.retry_background_rate_limits) and idempotent,
            attempts=self.attempts,
            deadline=self._retry_deadline,
            sleep=self._sleep,
        )

    def _once(
        self, method: str, path: str, params: dict[str, Any] | None, json: Any, priority: Priority, endpoint: str
    ) -> dict[str, Any]:
        # Background work must not park a worker thread on the budget: BudgetExhausted goes back
        # to the job queue with the exact wait.
        max_wait = self._interactive_max_wait if priority is Priority.INTERACTIVE else 0.0
        self.budget.acquire(priority, max_wait=max_wait)
        self.calls += 1
        try:
            response = self._send(method, path, params=params, json=json)
        except ApiUnavailable as exc:
            metrics.provider_call(self.provider, endpoint, _failure(exc))
            raise
        metrics.provider_call(self.provider, endpoint, str(response.status_code))
        self.budget.observe(response.headers, response.status_code)
        log.debug("%s %s %s -> %s", self.provider, method, path, response.status_code)
        if response.status_code < 300:
            if not response.content:
                return {}
            try:
                body = response.json()
            except ValueError as exc:
                raise unavailable(self.provider, f"{self.label} returned a response that is not JSON",
                                  sent=True, status=response.status_code) from exc
            return body if isinstance(body, dict) else {}
        raise self.error_for(response)

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One HTTP request, with transport failures mapped onto the ApiError tree."""
        label, provider = self.label, self.provider
        try:
            return self._http.request(method, path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise unavailable(provider, f"Couldn't reach {label} ({type(exc).__name__})", sent=False) from exc
        except httpx.TimeoutException as exc:
            raise unavailable(provider, f"{label} didn't answer in time", sent=True) from exc
        except httpx.TransportError as exc:
            raise unavailable(provider, f"The connection to {label} broke ({type(exc).__name__})", sent=True) from exc

    # -- errors ----------------------------------------------------------------------------------

    def error_text(self, response: httpx.Response) -> tuple[str, str | None]:
        """The error's message (and code) as this provider words it; the raw text by default."""
        return response.text, None

    def error_for(self, response: httpx.Response) -> ApiError:
        """The ApiError for a non-2xx answer: status decides the kind, the body gives the words."""
        status, label, provider = response.status_code, self.label, self.provider
        try:
            raw, code = self.error_text(response)
        except ValueError:
            raw, code = response.text, None
        message = " ".join(str(raw).split())
        if len(message) > ERROR_SNIPPET:
            message = message[: ERROR_SNIPPET - 1] + "…"
        message = message or response.reason_phrase or f"HTTP {status}"
        if status == 429:
            wait = retry_after_of(response)
            return ApiRateLimited(f"{label} is rate limiting Greenlight; try again in {max(1, round(wait))} s.",
                                  retry_after=wait, provider=provider, code=code)
        if status in (401, 403):
            return ApiUnauthorized(
                f"{label} refused Greenlight's credentials ({status}: {message}). An admin needs to check "
                f"{provider.upper()}_API_KEY.", provider=provider, status=status, code=code)
        if status == 404:
            return ApiNotFound(f"{label} couldn't find it: {message}", provider=provider, status=status, code=code)
        if 400 <= status < 500:
            return ApiBadRequest(f"{label} said: {message}", provider=provider, status=status, code=code)
        if status >= 500:
            return unavailable(provider, f"{label} had a problem ({status}: {message})", sent=True, status=status)
        return ApiRejected(f"{label} answered {status}: {message}", provider=provider, status=status, code=code)


def _failure(exc: ApiUnavailable) -> str:
    """The metrics' word for a request that got no HTTP answer."""
    if not exc.sent:
        return "connect_error"
    return "timeout" if isinstance(exc.__cause__, httpx.TimeoutException) else "transport_error"


def retry_after_of(response: httpx.Response) -> float:
    """Seconds to wait after a 429: Retry-After, else X-RateLimit-Reset, else one second."""
    now = time.time()
    raw = response.headers.get("retry-after")
    if raw:
        return parse_retry_after(raw, now)
    reset = response.headers.get("x-ratelimit-reset")
    if reset:
        try:
            return max(0.0, float(reset) - now)
        except ValueError:
            return 1.0
    return 1.0
