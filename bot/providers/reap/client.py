"""The Reap (reap.video) automation API: typed results, on the shared client plumbing.

Every call draws from one shared budget (Reap allows 10 requests per minute per key for all
endpoints together): clicks at INTERACTIVE priority, polling at BACKGROUND, which never waits
inside a worker thread but hands the wait back to the job queue. `publish-clip` has no idempotency
key and Reap offers no way to list posts, so it is never retried once it may have been sent. Error
bodies are undocumented: we show the status and a truncated copy of whatever came back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx

from bot.domain import Platform
from bot.providers.budget import Priority, RateBudget
from bot.providers.errors import ApiUnavailable
from bot.providers.http import BaseClient, unavailable

log = logging.getLogger(__name__)

PROVIDER = "reap"
PAGE_SIZE = 100  # Reap's maximum
MAX_PAGES = 100  # 10,000 clips: far beyond any real project, but bounds a looping server

# Project statuses after which nothing changes any more (Reap API docs: get-project-status).
PROJECT_DONE = "completed"
PROJECT_FAILED = frozenset({"failed", "cancelled", "invalid", "expired", "error"})

# Post statuses (Reap API docs: the post object).
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
    duration: float | None = None
    virality_score: float | None = None  # Reap's 0–10
    # A direct download of the clip's video (burned-in captions when enabled); lifetime undocumented.
    clip_url: str | None = None


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
        duration=_number(data.get("duration")),
        virality_score=_number(data.get("viralityScore")),
        clip_url=_https_url(data.get("clipUrl")),
    )


def _number(value: Any) -> float | None:
    """A finite JSON number, or None (booleans and strings are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value or abs(value) == float("inf"):
        return None
    return float(value)


def _https_url(value: Any) -> str | None:
    """An absolute http(s) URL, or None."""
    if isinstance(value, str) and value.startswith(("https://", "http://")) and len(value) <= 4000:
        return value
    return None


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


class ReapClient(BaseClient):
    """Typed access to the Reap automation API."""

    label: ClassVar[str] = "Reap"
    # Polling gives a 429's wait back to the job queue instead of sleeping in a worker.
    retry_background_rate_limits: ClassVar[bool] = False
    attempts: ClassVar[int] = 3

    @classmethod
    def auth_header(cls, api_key: str) -> str:
        """Reap's scheme: a bearer key."""
        return f"Bearer {api_key}"

    @classmethod
    def build(cls, *, base_url: str, api_key: str, budget: RateBudget, timeout: float = 10.0) -> ReapClient:
        """A client for the automation API (paths are relative: `publish-clip`, `get-post-details`...)."""
        http = cls.http_client(base_url=base_url.rstrip("/") + "/", api_key=api_key, timeout=timeout)
        # Reap lists Content-Type: application/json as required on every request, GETs included.
        http.headers["Content-Type"] = "application/json"
        return cls(http, budget)

    def error_text(self, response: httpx.Response) -> tuple[str, str | None]:
        """Reap's error bodies are undocumented: a `message`/`error`/`detail` if there is one."""
        try:
            body = response.json()
        except ValueError:
            return response.text, None
        if isinstance(body, dict):
            for key in ("message", "error", "detail"):
                value = body.get(key)
                if isinstance(value, str) and value.strip():
                    return value, None
                if isinstance(value, dict) and isinstance(value.get("message"), str):
                    return str(value["message"]), None
        return response.text, None

    # -- public API -------------------------------------------------------------------------

    def get_integrations(self, *, priority: Priority = Priority.INTERACTIVE) -> list[ReapIntegration]:
        """Every integration Reap knows (inactive ones included, flagged)."""
        body = self.call("GET", "get-integrations", priority=priority)
        items = body.get("integrations")
        if not isinstance(items, list):
            raise ApiUnavailable("Reap returned an unexpected answer for the integrations", provider=PROVIDER)
        parsed = (parse_integration(i) for i in items if isinstance(i, dict))
        return [i for i in parsed if i is not None]

    def get_project_status(self, project_id: str, *, priority: Priority = Priority.INTERACTIVE) -> str:
        """The project's status, lower-cased (e.g. "processing", "completed")."""
        body = self.call("GET", "get-project-status", params={"projectId": project_id}, priority=priority)
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
            body = self.call(
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

    def get_clip_details(self, project_id: str, clip_id: str, *,
                         priority: Priority = Priority.BACKGROUND) -> ReapClip:
        """One clip of a project (its `clipUrl` is read fresh: its lifetime is undocumented)."""
        body = self.call("GET", "get-clip-details", params={"projectId": project_id, "clipId": clip_id},
                         priority=priority)
        if not isinstance(body, dict) or not body.get("id"):
            raise ApiUnavailable("Reap returned an unexpected answer for the clip", provider=PROVIDER)
        return parse_clip(body, project_id)

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
        body = self.call("POST", "publish-clip", json=payload, priority=Priority.INTERACTIVE, idempotent=False)
        return self._post_of(body)

    def get_post_details(self, post_id: str, *, priority: Priority = Priority.BACKGROUND) -> ReapPost:
        """One Reap post as Reap has it now (the only way to learn a publish outcome)."""
        return self._post_of(self.call("GET", "get-post-details", params={"postId": post_id}, priority=priority))

    @staticmethod
    def _post_of(body: dict[str, Any]) -> ReapPost:
        data = body.get("post") if isinstance(body.get("post"), dict) else body
        if not isinstance(data, dict) or not data.get("id"):
            raise unavailable(PROVIDER, "Reap returned an unexpected answer for the post", sent=True, status=200)
        return parse_post(data)
