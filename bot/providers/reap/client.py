"""Reap (reap.video) automation API client (apis.md Part B): one httpx client, typed results.

Every call draws from one shared `RateBudget` (Reap allows 10 requests per minute per key for all
endpoints together): clicks at INTERACTIVE priority, polling at BACKGROUND, which never waits
inside a worker thread but hands the wait back to the job queue. Reads are retried (tenacity) on
connection errors, 5xx and short 429s. `publish-clip` has no idempotency key and Reap offers no way
to list posts, so it is retried only when the request provably never left (connect errors).
Error bodies are undocumented: we show the status and a truncated copy of whatever came back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from bot.domain import Platform
from bot.providers.budget import Priority, RateBudget, parse_retry_after
from bot.providers.errors import (
    ApiBadRequest,
    ApiError,
    ApiNotFound,
    ApiRateLimited,
    ApiRejected,
    ApiUnauthorized,
    ApiUnavailable,
)
from bot.providers.http import send, unavailable, with_retries

log = logging.getLogger(__name__)

PROVIDER = "reap"
# How long an interactive call may wait for a budget slot; background calls never wait.
INTERACTIVE_MAX_WAIT = 20.0
PAGE_SIZE = 100  # Reap's maximum
MAX_PAGES = 100  # 10,000 clips: far beyond any real project, but bounds a looping server
ERROR_SNIPPET = 200

# Project statuses after which nothing changes any more (apis.md B.3 get-project-status).
PROJECT_DONE = "completed"
PROJECT_FAILED = frozenset({"failed", "cancelled", "invalid", "expired", "error"})

# Post statuses (apis.md B.4).
POST_PENDING = frozenset({"processing", "draft", "scheduled"})
POST_COMPLETED = "completed"
POST_FAILED = "failed"
POST_PARTIAL = "unresolved"
POST_CANCELLED = "cancelled"


@dataclass(frozen=True)
class ReapIntegration:
    """A connected social account in Reap."""

    id: str
    platform: Platform
    name: str
    username: str | None = None
    is_active: bool = True

    @property
    def label(self) -> str:
        """What the card shows, e.g. "YouTube · My Channel"."""
        return f"{self.platform.label} · {self.name or self.username or self.id}"


@dataclass(frozen=True)
class ReapClip:
    """One clip of a project, with Reap's AI title and caption (description)."""

    id: str
    project_id: str
    title: str | None
    caption: str


@dataclass(frozen=True)
class ReapPost:
    """A Reap publish (one clip to one or more integrations) as Reap reports it."""

    id: str
    status: str
    platforms: tuple[str, ...] = ()
    success_platforms: tuple[str, ...] = ()
    failed_platforms: tuple[str, ...] = ()
    urls: dict[str, str] = field(default_factory=dict)
    publish_date: datetime | None = None


def unix_to_datetime(value: Any) -> datetime | None:
    """Reap says "Unix timestamp" without a unit (Q-R1): values past 10^11 are read as milliseconds."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = value / 1000 if abs(value) > 1e11 else value
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(str(v).strip().lower() for v in value if isinstance(v, str) and v.strip())


def parse_integration(data: dict[str, Any]) -> ReapIntegration | None:
    """An integration, or None for a platform Greenlight doesn't know (logged, then ignored)."""
    try:
        platform = Platform(str(data.get("platform", "")).strip().lower())
    except ValueError:
        log.info("ignoring Reap integration %s on unsupported platform %r", data.get("id"), data.get("platform"))
        return None
    if not data.get("id"):
        return None
    username = data.get("username")
    return ReapIntegration(
        id=str(data["id"]),
        platform=platform,
        name=str(data.get("name") or ""),
        username=str(username) if username else None,
        # Missing means active: only an explicit false takes an account out of the list.
        is_active=data.get("isActive") is not False,
    )


def parse_clip(data: dict[str, Any], project_id: str) -> ReapClip:
    """A clip from get-project-clips / get-clip-details."""
    title = data.get("title")
    return ReapClip(
        id=str(data["id"]),
        project_id=str(data.get("projectId") or project_id),
        title=str(title) if title else None,
        caption=str(data.get("caption") or ""),
    )


def parse_post(data: dict[str, Any]) -> ReapPost:
    """A Reap post object (B.4); unknown fields are ignored."""
    urls_raw = data.get("urls")
    urls = (
        {str(k).lower(): str(v) for k, v in urls_raw.items() if isinstance(v, str) and v}
        if isinstance(urls_raw, dict)
        else {}
    )
    return ReapPost(
        id=str(data["id"]),
        status=str(data.get("status") or "").strip().lower(),
        platforms=_names(data.get("platforms")),
        success_platforms=_names(data.get("successPlatforms")),
        failed_platforms=_names(data.get("failedPlatforms")),
        urls=urls,
        publish_date=unix_to_datetime(data.get("publishDate")),
    )


def _snippet(response: httpx.Response) -> str:
    """Status-safe text for Slack: the body's message if it has one, else the raw text, truncated."""
    text = ""
    try:
        body = response.json()
        if isinstance(body, dict):
            for key in ("message", "error", "detail"):
                value = body.get(key)
                if isinstance(value, str) and value.strip():
                    text = value
                    break
                if isinstance(value, dict) and isinstance(value.get("message"), str):
                    text = value["message"]
                    break
    except ValueError:
        pass
    if not text:
        text = response.text
    text = " ".join(text.split())
    if len(text) > ERROR_SNIPPET:
        text = text[: ERROR_SNIPPET - 1] + "…"
    return text or response.reason_phrase or "no details"


class ReapClient:
    """Typed access to the Reap automation API."""

    provider = PROVIDER

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

    @classmethod
    def build(cls, *, base_url: str, api_key: str, budget: RateBudget, timeout: float = 10.0) -> ReapClient:
        """A client with explicit timeouts and the key in a header (never in a URL or a log)."""
        http = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            headers={
                "Authorization": f"Bearer {api_key}",
                "Accept": "application/json",
                "Content-Type": "application/json",
                "User-Agent": "greenlight/0.1",
            },
            timeout=httpx.Timeout(connect=min(3.0, timeout), read=timeout, write=timeout, pool=min(5.0, timeout)),
            limits=httpx.Limits(max_connections=10, max_keepalive_connections=5),
        )
        return cls(http, budget)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # -- public API -------------------------------------------------------------------------

    def get_integrations(self, *, priority: Priority = Priority.INTERACTIVE) -> list[ReapIntegration]:
        """Every integration Reap knows (inactive ones included, flagged)."""
        body = self._call("GET", "get-integrations", priority=priority)
        items = body.get("integrations")
        if not isinstance(items, list):
            raise ApiUnavailable("Reap returned an unexpected answer for the integrations", provider=PROVIDER)
        parsed = (parse_integration(i) for i in items if isinstance(i, dict))
        return [i for i in parsed if i is not None]

    def get_project_status(self, project_id: str, *, priority: Priority = Priority.INTERACTIVE) -> str:
        """The project's status, lower-cased (e.g. "processing", "completed")."""
        body = self._call("GET", "get-project-status", params={"projectId": project_id}, priority=priority)
        status = body.get("status")
        if not isinstance(status, str) or not status:
            raise ApiUnavailable("Reap returned an unexpected answer for the project status", provider=PROVIDER)
        return status.strip().lower()

    def get_project_clips(self, project_id: str, *, priority: Priority = Priority.INTERACTIVE) -> list[ReapClip]:
        """Every clip of a project, reading all pages."""
        clips: list[ReapClip] = []
        seen: set[str] = set()
        page = 1
        while page <= MAX_PAGES:
            body = self._call(
                "GET",
                "get-project-clips",
                params={"projectId": project_id, "page": page, "pageSize": PAGE_SIZE},
                priority=priority,
            )
            items = body.get("clips")
            if not isinstance(items, list):
                raise ApiUnavailable("Reap returned an unexpected answer for the project's clips", provider=PROVIDER)
            for item in items:
                if isinstance(item, dict) and item.get("id") and str(item["id"]) not in seen:
                    seen.add(str(item["id"]))
                    clips.append(parse_clip(item, project_id))
            total_pages = body.get("totalPages")
            if not items or not isinstance(total_pages, int) or page >= total_pages:
                break
            page += 1
        return clips

    def get_clip_details(
        self, project_id: str, clip_id: str, *, priority: Priority = Priority.INTERACTIVE
    ) -> ReapClip:
        """One clip."""
        body = self._call(
            "GET", "get-clip-details", params={"projectId": project_id, "clipId": clip_id}, priority=priority
        )
        nested = body.get("clip")
        data: dict[str, Any] = nested if isinstance(nested, dict) else body
        if not data.get("id"):
            raise ApiUnavailable("Reap returned an unexpected answer for the clip", provider=PROVIDER)
        return parse_clip(data, project_id)

    def publish_clip(
        self,
        *,
        project_id: str,
        clip_id: str,
        integrations: list[str],
        title: str | None,
        description: str | None,
        tags: list[str],
        platform_settings: dict[str, dict[str, Any]],
    ) -> ReapPost:
        """Hand a clip to Reap for publishing now. Never blindly retried (no idempotency key)."""
        payload: dict[str, Any] = {"projectId": project_id, "clipId": clip_id, "integrations": integrations}
        if title:
            payload["title"] = title
        if description:
            payload["description"] = description
        if tags:
            payload["tags"] = tags
        if platform_settings:
            payload["platformSettings"] = platform_settings
        body = self._call("POST", "publish-clip", json=payload, priority=Priority.INTERACTIVE, idempotent=False)
        return self._post_of(body)

    def get_post_details(self, post_id: str, *, priority: Priority = Priority.BACKGROUND) -> ReapPost:
        """One Reap post as Reap has it now (the only way to learn a publish outcome)."""
        return self._post_of(self._call("GET", "get-post-details", params={"postId": post_id}, priority=priority))

    # -- plumbing ---------------------------------------------------------------------------

    @staticmethod
    def _post_of(body: dict[str, Any]) -> ReapPost:
        data = body.get("post") if isinstance(body.get("post"), dict) else body
        if not isinstance(data, dict) or not data.get("id"):
            raise unavailable(PROVIDER, "Reap returned an unexpected answer for the post", sent=True, status=200)
        return parse_post(data)

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        priority: Priority,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        return with_retries(
            lambda: self._once(method, path, params, json, priority),
            idempotent=idempotent,
            # Background callers give a 429's wait back to the job queue instead of sleeping here.
            retry_rate_limits=priority is Priority.INTERACTIVE and idempotent,
            attempts=3,
            deadline=self._retry_deadline,
            sleep=self._sleep,
        )

    def _once(
        self, method: str, path: str, params: dict[str, Any] | None, json: Any, priority: Priority
    ) -> dict[str, Any]:
        # Background work must not park a worker thread on the budget: BudgetExhausted goes back
        # to the job as a Retry with the exact wait.
        max_wait = self._interactive_max_wait if priority is Priority.INTERACTIVE else 0.0
        self.budget.acquire(priority, max_wait=max_wait)
        self.calls += 1
        response = send(self._http, "Reap", method, path, params=params, json=json)
        self.budget.observe(response.headers, response.status_code)
        log.debug("reap %s %s -> %s", method, path, response.status_code)
        if response.status_code < 300:
            if not response.content:
                return {}
            try:
                body = response.json()
            except ValueError as exc:
                raise unavailable(
                    PROVIDER, "Reap returned a response that is not JSON", sent=True, status=response.status_code
                ) from exc
            return body if isinstance(body, dict) else {}
        raise error_for(response)


def error_for(response: httpx.Response) -> ApiError:
    """The ApiError for a non-2xx Reap answer (its body is undocumented: status + truncated text)."""
    status = response.status_code
    text = _snippet(response)
    if status == 429:
        now = time.time()
        retry_after = 1.0
        raw_retry = response.headers.get("retry-after")
        reset = response.headers.get("x-ratelimit-reset")
        if raw_retry:
            retry_after = parse_retry_after(raw_retry, now)
        elif reset:
            try:
                retry_after = max(0.0, float(reset) - now)
            except ValueError:
                retry_after = 1.0
        return ApiRateLimited(
            f"Reap is rate limiting Greenlight (10 requests per minute); try again in {max(1, round(retry_after))} s.",
            retry_after=retry_after,
            provider=PROVIDER,
        )
    if status in (401, 403):
        return ApiUnauthorized(
            f"Reap refused Greenlight's credentials ({status}: {text}). An admin needs to check REAP_API_KEY.",
            provider=PROVIDER,
            status=status,
        )
    if status == 404:
        return ApiNotFound(f"Reap couldn't find it ({status}: {text}).", provider=PROVIDER, status=status)
    if 400 <= status < 500:
        return ApiBadRequest(f"Reap said ({status}): {text}", provider=PROVIDER, status=status)
    if status >= 500:
        return unavailable(PROVIDER, f"Reap had a problem ({status}: {text})", sent=True, status=status)
    return ApiRejected(f"Reap answered {status}: {text}", provider=PROVIDER, status=status)
