"""The Choppity v1 posts API: typed results, the shared client plumbing, one error tree.

Choppity's statuses (Posts API): draft · scheduled · queued · processing · uploading · published ·
failed · cancelled. A status not in that list (a future addition) is read as UNKNOWN with Choppity's
own word kept, and a post that can't be read at all is skipped by itself: one odd post never hides
its siblings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from bot.domain import Platform, PostContent, PostStatus, RemotePost, is_external_id, status_word
from bot.providers.budget import Priority, RateBudget
from bot.providers.errors import ApiBadRequest, ApiUnavailable
from bot.providers.http import BaseClient


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


@dataclass
class ClipListing:
    """A clip's posts as Choppity lists them; `unreadable` says what had to be skipped, and why."""

    clip_id: str
    posts: list[RemotePost] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


# The endpoint template of a post's URL, for metrics (never a raw id as a label).
_POST = "/v1/posts/{id}"


@dataclass(frozen=True)
class Render:
    """A render as GET /v1/renders/:id describes it (`queued · processing · done · error`)."""

    status: str
    output_url: str | None = None  # signed, valid for one hour, only when done
    error: str | None = None  # only when status is "error"


class ChoppityClient(BaseClient):
    """Typed access to the Choppity v1 posts API."""

    label: ClassVar[str] = "Choppity"

    @classmethod
    def auth_header(cls, api_key: str) -> str:
        """Choppity's scheme: `Key <secret>-<teamId>`."""
        return f"Key {api_key}"

    @classmethod
    def build(cls, *, base_url: str, api_key: str, budget: RateBudget, timeout: float = 10.0) -> ChoppityClient:
        """A client for `base_url` (no version: paths carry `/v1`)."""
        return cls(cls.http_client(base_url=base_url, api_key=api_key, timeout=timeout, max_connections=20), budget)

    def error_text(self, response: httpx.Response) -> tuple[str, str | None]:
        """Choppity's envelope: `{"error": {"code", "message"}}`."""
        body = response.json()
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict):
            return str(err.get("message") or ""), str(err.get("code") or "") or None
        return (err if isinstance(err, str) else response.text), None

    # -- the API -----------------------------------------------------------------------------------

    def ping(self) -> str:
        """GET /v1/ping: the cheapest authenticated read; the team the key belongs to."""
        body = self.call("GET", "/v1/ping", priority=Priority.INTERACTIVE)
        team = body.get("team_id")
        return str(team) if isinstance(team, str) and team else "unknown team"

    def list_clip_posts(self, clip_id: str, *, priority: Priority = Priority.INTERACTIVE) -> ClipListing:
        """Every post of a clip, in any state; one unreadable post never hides its siblings."""
        body = self.call("GET", f"/v1/clips/{_seg(clip_id)}/posts", priority=priority,
                         endpoint="/v1/clips/{id}/posts")
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
                listing.unreadable.append(str(exc))
        return listing

    def get_post(self, post_id: str, *, priority: Priority = Priority.INTERACTIVE) -> RemotePost:
        """One post as Choppity has it now."""
        body = self.call("GET", f"/v1/posts/{_seg(post_id)}", priority=priority, endpoint=_POST)
        return self._post_of(body, post_id, priority)

    def update_post(self, post_id: str, changes: dict[str, Any]) -> RemotePost:
        """PUT only the changed fields; returns the updated post. Not retried blindly: the services
        re-read the post when an answer is lost."""
        body = self.call("PUT", f"/v1/posts/{_seg(post_id)}", json=changes, priority=Priority.INTERACTIVE,
                         idempotent=False, endpoint=_POST)
        return self._post_of(body, post_id, Priority.INTERACTIVE)

    def publish_post(self, post_id: str, scheduled_at: datetime | None = None) -> RemotePost:
        """Publish now, or schedule when `scheduled_at` is given. Never blindly retried."""
        payload: dict[str, Any] = {}
        if scheduled_at is not None:
            payload["scheduled_at"] = int(scheduled_at.timestamp() * 1000)
        body = self.call("POST", f"/v1/posts/{_seg(post_id)}/publish", json=payload, priority=Priority.INTERACTIVE,
                         idempotent=False, endpoint=_POST + "/publish")
        return self._post_of(body, post_id, Priority.INTERACTIVE)

    def cancel_post(self, post_id: str) -> RemotePost:
        """DELETE (cancel) a draft, scheduled or queued post. A second DELETE after a lost answer would
        be refused ("can no longer be cancelled"), so it is never retried blindly."""
        body = self.call("DELETE", f"/v1/posts/{_seg(post_id)}", priority=Priority.INTERACTIVE, idempotent=False,
                         endpoint=_POST)
        return self._post_of(body, post_id, Priority.INTERACTIVE)

    def start_render(self, clip_id: str) -> None:
        """POST /v1/clips/:clipId/renders: ask for the clip's full-quality MP4 (render id = clip id)."""
        self.call("POST", f"/v1/clips/{_seg(clip_id)}/renders", priority=Priority.BACKGROUND,
                  endpoint="/v1/clips/{id}/renders")

    def get_render(self, render_id: str) -> Render:
        """GET /v1/renders/:renderId: the render's status, and its signed MP4 URL once done."""
        body = self.call("GET", f"/v1/renders/{_seg(render_id)}", priority=Priority.BACKGROUND,
                         endpoint="/v1/renders/{id}")
        status = body.get("status")
        if not isinstance(status, str):
            raise ApiUnavailable("Choppity returned an unexpected answer for the render", provider="choppity")
        url = body.get("output_url")
        error = body.get("error")
        return Render(status=status, output_url=url if isinstance(url, str) and url else None,
                      error=str(error)[:500] if error else None)

    def _post_of(self, body: dict[str, Any], post_id: str, priority: Priority) -> RemotePost:
        post = body.get("post")
        if post is None and not body:
            return self.get_post(post_id, priority=priority)  # an empty 2xx: read what happened
        if not isinstance(post, dict):
            raise ApiUnavailable("Choppity returned an unexpected answer for the post", provider="choppity")
        post.setdefault("id", post_id)
        try:
            return parse_post(post)
        except UnreadablePost as exc:
            raise ApiUnavailable(f"Choppity returned a post Greenlight can't read ({exc})", provider="choppity") from exc


def _seg(value: str) -> str:
    """An id checked and quoted as one path segment (ids come from users, webhooks and providers).

    Quoting alone is not enough: `..` quotes to itself and httpx would resolve it, turning
    `/v1/posts/..` into `/v1`.
    """
    if not is_external_id(value):
        raise ApiBadRequest(f"{value[:40]!r} is not a valid Choppity id.", provider="choppity")
    return quote(value, safe="")
