"""One exception tree for every provider call, so callers decide by kind, not by vendor.

    ApiError                      anything that went wrong talking to a provider
    ├── ApiUnavailable            worth retrying later: connection errors, timeouts, 5xx
    │   └── ApiOutcomeUnknown     the request was sent but no answer came back; a
    │                             non-idempotent call (publish) must be re-read, never re-sent
    ├── ApiRateLimited            429; `retry_after` seconds says when to try again
    │   └── BudgetExhausted       our own client-side budget has no slot before the caller's
    │                             deadline (nothing was sent); `retry_after` is the wait
    └── ApiRejected               the provider said no (4xx); retrying will not help
        ├── ApiUnauthorized       401/403: the API key is wrong or lacks permission
        ├── ApiNotFound           404: unknown id (or one owned by another team)
        └── ApiBadRequest         400/409/422: validation or an illegal state transition

Every error carries `user_message`: plain words safe to show in Slack. It often quotes the
provider's own error text, so it is passed through the same secret redaction as the logs here, once,
whoever raises it.
"""

from __future__ import annotations

from bot.security import redact


class ApiError(Exception):
    """Base class: a provider call failed."""

    def __init__(self, user_message: str, *, provider: str = "", status: int | None = None, code: str | None = None) -> None:
        user_message = redact(user_message, auth_values=True)
        super().__init__(user_message)
        self.user_message = user_message
        self.provider = provider
        self.status = status
        self.code = code


class ApiUnavailable(ApiError):
    """Transient: connection failure, timeout or 5xx. `sent` says whether the request may have
    reached the provider (False only for connect errors, where retrying any call is safe)."""

    def __init__(
        self, user_message: str, *, provider: str = "", status: int | None = None, code: str | None = None, sent: bool = True
    ) -> None:
        super().__init__(user_message, provider=provider, status=status, code=code)
        self.sent = sent


class ApiOutcomeUnknown(ApiUnavailable):
    """The request reached the wire but no answer arrived; the side effect may have happened."""


class ApiRateLimited(ApiError):
    """The provider answered 429."""

    def __init__(self, user_message: str, *, retry_after: float, provider: str = "", status: int | None = 429, code: str | None = None) -> None:
        super().__init__(user_message, provider=provider, status=status, code=code)
        self.retry_after = retry_after


class BudgetExhausted(ApiRateLimited):
    """No slot in Greenlight's own per-provider request budget before the caller's deadline."""

    def __init__(self, wait: float, *, provider: str = "") -> None:
        super().__init__(
            f"Greenlight is pacing its {provider.title() or 'provider'} calls to stay within the provider's "
            f"rate limit; try again in {max(1, round(wait))} s.",
            retry_after=wait,
            provider=provider,
            status=None,
        )
        self.wait = wait


class ApiRejected(ApiError):
    """The provider refused the request (4xx other than 429)."""


class ApiUnauthorized(ApiRejected):
    """401/403."""


class ApiNotFound(ApiRejected):
    """404."""


class ApiBadRequest(ApiRejected):
    """400/409/422."""
