"""Choppity posts API client (apis.md Part A): one httpx client, typed results, one error tree.

Reads, edits and cancels are retried (tenacity) on connection errors, 5xx and 429, honouring
`Retry-After`, within a deadline. Publishing is not idempotent on Choppity's side, so it is only
retried when the request provably never left (connect errors) or was refused with 429; any other
failure surfaces as `ApiUnavailable(sent=True)` / `ApiOutcomeUnknown` for the caller to reconcile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from bot.domain import ClipListing, Platform, PostContent, PostStatus, RemotePost, is_external_id, status_word
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
from bot.security import register_secrets

log = logging.getLogger(__name__)

PROVIDER = "Choppity"


def ms_to_datetime(value: Any) -> datetime | None:
    """Choppity timestamps are Unix milliseconds."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


class UnreadablePost(ValueError):
    """A post in Choppity's answer that Greenlight can't use (bad id, unknown platform)."""


def parse_post(data: dict[str, Any]) -> RemotePost:
    """Translate Choppity's post JSON into a RemotePost; unknown fields are ignored.

    A status Greenlight doesn't know yet becomes UNKNOWN (with Choppity's word kept for display);
    a post without a usable id or on a platform Greenlight can't show raises UnreadablePost.
    """
    post_id = data.get("id")
    if not is_external_id(post_id):
        raise UnreadablePost("a post without a usable id")
    try:
        platform = Platform(str(data.get("platform", "")).lower())
    except ValueError:
        raise UnreadablePost(f"post {post_id} is for a platform Greenlight doesn't support") from None
    raw_status = data.get("status")
    status = PostStatus.parse(raw_status)
    error = data.get("error")
    if isinstance(error, dict):
        error = error.get("message")
    clip_id = data.get("clip_id")
    url = data.get("published_url")
    return RemotePost(
        id=str(post_id),
        clip_id=str(clip_id) if is_external_id(clip_id) else "",
        platform=platform,
        status=status,
        content=PostContent.from_dict(data),
        scheduled_at=ms_to_datetime(data.get("scheduled_at")),
        published_at=ms_to_datetime(data.get("published_at")),
        published_url=url if isinstance(url, str) and url else None,
        error=str(error) if error else None,
        raw_status=status_word(raw_status) if status is PostStatus.UNKNOWN else None,
    )


class ChoppityClient:
    """Typed access to the Choppity v1 posts API."""

    provider = "choppity"
    # "Cancels a post in draft, scheduled, or queued status. Once a post moves to processing we can
    # no longer pull it back." (Posts API, DELETE /v1/posts/:postId)
    cancellable = frozenset({PostStatus.DRAFT, PostStatus.SCHEDULED, PostStatus.QUEUED})

    def __init__(
        self,
        http: httpx.Client,
        budget: RateBudget,
        *,
        retry_deadline: float = 20.0,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self._http = http
        self.budget = budget
        self._retry_deadline = retry_deadline
        self._sleep = sleep
        self.calls = 0

    @classmethod
    def build(cls, *, base_url: str, api_key: str, budget: RateBudget, timeout: float = 10.0) -> ChoppityClient:
        """A client with explicit timeouts and the key in a header (never in a URL)."""
        register_secrets([api_key])
        http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Key {api_key}", "Accept": "application/json", "User-Agent": "greenlight/0.1"},
            timeout=httpx.Timeout(connect=min(3.0, timeout), read=timeout, write=timeout, pool=min(5.0, timeout)),
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
        )
        return cls(http, budget)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # -- public API -------------------------------------------------------------------------

    def list_clip_posts(self, clip_id: str, *, priority: Priority = Priority.INTERACTIVE) -> ClipListing:
        """Every post of a clip, in any state; one unreadable post never hides its siblings."""
        body = self._call("GET", f"/v1/clips/{_seg(clip_id)}/posts", priority=priority)
        posts = body.get("posts")
        if not isinstance(posts, list):
            raise ApiUnavailable("Choppity returned an unexpected answer for the clip's posts", provider="choppity")
        listing = ClipListing(clip_id=clip_id)
        for item in posts:
            try:
                if not isinstance(item, dict):
                    raise UnreadablePost("an entry that is not a post")
                listing.posts.append(parse_post(item))
            except UnreadablePost as exc:
                log.warning("clip %s: skipping %s", clip_id, exc)
                listing.unreadable.append(str(exc))
        return listing

    def get_post(self, post_id: str, *, priority: Priority = Priority.INTERACTIVE) -> RemotePost:
        """One post as Choppity has it now."""
        return self._post_of(self._call("GET", f"/v1/posts/{_seg(post_id)}", priority=priority), post_id)

    def update_post(self, post_id: str, changes: dict[str, Any]) -> RemotePost:
        """PUT only the changed fields; returns the updated post."""
        # Not retried blindly: the service re-reads the post when an answer is lost.
        body = self._call("PUT", f"/v1/posts/{_seg(post_id)}", json=changes, priority=Priority.INTERACTIVE,
                          idempotent=False)
        if "post" not in body:
            return self.get_post(post_id)
        return self._post_of(body, post_id)

    def publish_post(self, post_id: str, scheduled_at: datetime | None = None) -> RemotePost:
        """Publish now, or schedule when `scheduled_at` is given. Never blindly retried."""
        payload: dict[str, Any] = {}
        if scheduled_at is not None:
            payload["scheduled_at"] = int(scheduled_at.timestamp() * 1000)
        body = self._call(
            "POST", f"/v1/posts/{_seg(post_id)}/publish", json=payload, priority=Priority.INTERACTIVE, idempotent=False
        )
        if "post" not in body:
            return self.get_post(post_id)
        return self._post_of(body, post_id)

    def cancel_post(self, post_id: str) -> RemotePost:
        """DELETE (cancel) a draft, scheduled or queued post; returns its new state."""
        # A second DELETE after a lost answer would be refused ("can no longer be cancelled"): the
        # service re-reads instead.
        body = self._call("DELETE", f"/v1/posts/{_seg(post_id)}", priority=Priority.INTERACTIVE, idempotent=False)
        if "post" not in body:
            return self.get_post(post_id)
        return self._post_of(body, post_id)

    # -- plumbing ---------------------------------------------------------------------------

    def _post_of(self, body: dict[str, Any], post_id: str) -> RemotePost:
        post = body.get("post")
        if not isinstance(post, dict):
            raise ApiUnavailable("Choppity returned an unexpected answer for the post", provider="choppity")
        post.setdefault("id", post_id)
        try:
            return parse_post(post)
        except UnreadablePost as exc:
            raise ApiUnavailable(f"Choppity returned a post Greenlight can't read ({exc})", provider="choppity") from exc

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        priority: Priority,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        return with_retries(
            lambda: self._once(method, path, json, priority),
            idempotent=idempotent,
            retry_rate_limits=True,
            attempts=4,
            deadline=self._retry_deadline,
            sleep=self._sleep,
        )

    def _once(self, method: str, path: str, json: Any, priority: Priority) -> dict[str, Any]:
        self.budget.acquire(priority)
        self.calls += 1
        response = send(self._http, "Choppity", method, path, json=json)
        self.budget.observe(response.headers, response.status_code)
        log.debug("choppity %s %s -> %s", method, path, response.status_code)
        if response.status_code < 300:
            if not response.content:
                return {}
            try:
                body = response.json()
            except ValueError as exc:
                raise unavailable(
                    "choppity", "Choppity returned a response that is not JSON", sent=True, status=response.status_code
                ) from exc
            return body if isinstance(body, dict) else {}
        raise self._error_for(response)

    def _error_for(self, response: httpx.Response) -> ApiError:
        status = response.status_code
        code: str | None = None
        message = ""
        try:
            body = response.json()
            err = body.get("error") if isinstance(body, dict) else None
            if isinstance(err, dict):
                code = str(err.get("code") or "") or None
                message = str(err.get("message") or "")
            elif isinstance(err, str):
                message = err
        except ValueError:
            message = response.text[:200]
        message = " ".join(message.split())[:300] or response.reason_phrase or f"HTTP {status}"
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("retry-after", ""), time.time())
            reset = response.headers.get("x-ratelimit-reset")
            if "retry-after" not in response.headers and reset:
                try:
                    retry_after = max(0.0, float(reset) - time.time())
                except ValueError:
                    retry_after = 1.0
            return ApiRateLimited(
                f"Choppity is rate limiting Greenlight; try again in {max(1, round(retry_after))} s.",
                retry_after=retry_after,
                provider="choppity",
                code=code,
            )
        if status in (401, 403):
            return ApiUnauthorized(
                f"Choppity refused Greenlight's credentials ({status}: {message}). An admin needs to check CHOPPITY_API_KEY.",
                provider="choppity",
                status=status,
                code=code,
            )
        if status == 404:
            return ApiNotFound(f"Choppity couldn't find it: {message}", provider="choppity", status=status, code=code)
        if 400 <= status < 500:
            return ApiBadRequest(f"Choppity said: {message}", provider="choppity", status=status, code=code)
        if status >= 500:
            return unavailable("choppity", f"Choppity had a problem ({status}: {message})", sent=True, status=status)
        return ApiRejected(f"Choppity answered {status}: {message}", provider="choppity", status=status, code=code)


def _seg(value: str) -> str:
    """An id checked and quoted as one path segment (ids come from users, webhooks and providers).

    Quoting alone is not enough: `..` quotes to itself and httpx would resolve it, turning
    `/v1/posts/..` into `/v1`.
    """
    if not is_external_id(value):
        raise ApiBadRequest(f"{value[:40]!r} is not a valid Choppity id.", provider="choppity")
    return quote(value, safe="")
