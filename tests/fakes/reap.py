"""A strict, stateful fake of the Reap automation API (as its public docs describe it) for tests.

Implements what Greenlight uses: get-integrations, get-project-status, get-project-clips (paged),
get-clip-details, publish-clip and get-post-details, under ``/api/v1/automation``. It enforces
Reap's rules: Bearer auth; one fixed-window budget of ``rate_limit_per_minute`` requests per key
for every endpoint (429 with ``Retry-After`` and ``X-RateLimit-*``); only ``completed`` projects
return clips or accept publish-clip; one shared title (≤250) / description (≤1000) / tags (≤10)
per publish; ``platformSettings`` only for platforms being published to. Reap's side of a publish
(processing → completed / failed / unresolved) is driven by ``finish_post``. Faults (errors, slow
answers, answers lost after the side effect, dropped connections) can be injected per method +
path regex. Error bodies are deliberately not one fixed shape, because Reap documents none.
"""

from __future__ import annotations

import copy
import math
import re
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

from tests.fakes._api import Call, FakeApi, FakeApiError, Reply, Rule
from tests.fakes.choppity import render_bytes

__all__ = ["Call", "FakeReap"]

BASE_PATH = "/api/v1/automation"
PLATFORMS = ("youtube", "tiktok", "instagram", "linkedin", "x")
PROJECT_STATUSES = ("queued", "processing", "completed", "failed", "cancelled", "invalid", "expired")
POST_STATUSES = ("processing", "draft", "scheduled", "completed", "failed", "unresolved", "cancelled")
TITLE_MAX = 250
DESCRIPTION_MAX = 1000
TAGS_MAX = 10
PAGE_SIZE_MAX = 100

SETTINGS_SCHEMA: dict[str, dict[str, tuple[str, ...] | type]] = {
    "youtube": {"privacy": ("public", "unlisted", "private"), "embeddable": bool, "publicStats": bool, "madeForKids": bool},
    "tiktok": {
        "privacy": ("public", "friends", "private"),
        "disableComments": bool,
        "disableDuet": bool,
        "disableStitch": bool,
        "brandContent": bool,
        "brandOrganic": bool,
    },
    "instagram": {"shareToFeed": bool},
    "linkedin": {"privacy": ("public", "connections")},
}


def _oid() -> str:
    """A Mongo-style 24-hex id, like Reap's."""
    return secrets.token_hex(12)


def _default_url(platform: str) -> str:
    if platform == "youtube":
        return f"https://youtube.com/shorts/{secrets.token_urlsafe(8)}"
    if platform == "tiktok":
        return f"https://www.tiktok.com/@greenlight/video/{secrets.randbelow(10**18) + 7 * 10**18}"
    if platform == "instagram":
        return f"https://www.instagram.com/reel/{secrets.token_urlsafe(8)}/"
    if platform == "linkedin":
        return f"https://www.linkedin.com/feed/update/urn:li:activity:{secrets.randbelow(10**18)}/"
    return f"https://x.com/greenlight/status/{secrets.randbelow(10**18)}"


_ApiError = FakeApiError  # Reap's errors carry no code


def _bad(message: str) -> _ApiError:
    return _ApiError(400, message)


_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "get-integrations"): "_get_integrations",
    ("GET", "get-project-status"): "_get_project_status",
    ("GET", "get-project-clips"): "_get_project_clips",
    ("GET", "get-clip-details"): "_get_clip_details",
    ("POST", "publish-clip"): "_publish_clip",
    ("GET", "get-post-details"): "_get_post_details",
}


class FakeReap(FakeApi):
    """Stateful fake Reap automation API on 127.0.0.1 (random port); see module docstring.

    ``clock`` returns unix seconds; it drives timestamps and the rate-limit window. ``url`` is the
    value for REAP_API_URL, e.g. ``http://127.0.0.1:PORT/api/v1/automation``.
    """

    url_suffix = BASE_PATH

    def __init__(
        self,
        api_key: str = "reap_test_key_0123456789",
        *,
        rate_limit_per_minute: int | None = 10,
        window_seconds: float = 60.0,
        max_page_size: int = PAGE_SIZE_MAX,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(api_key, rate_limit_per_minute=rate_limit_per_minute, window_seconds=window_seconds, clock=clock)
        self.max_page_size = max_page_size
        self._integrations: dict[str, dict[str, Any]] = {}
        self._projects: dict[str, dict[str, Any]] = {}
        self._clips: dict[str, list[dict[str, Any]]] = {}
        self._posts: dict[str, dict[str, Any]] = {}
        self.clip_size = 1024 * 1024  # bytes of the video file of clips added from now on
        self._files: dict[str, int] = {}  # clip id -> size of the file its clipUrl serves
        self.file_downloads: list[str] = []  # clip ids whose file was requested, in order

    # ---- the vendor's shape ----------------------------------------------------------------------

    def _authorized(self, headers: dict[str, str]) -> bool:
        return headers.get("authorization") == f"Bearer {self.api_key}"

    def _unauthorized(self, now: float) -> Reply:
        return Reply(401, "Unauthorized: invalid or missing API key", text=True)

    def _rate_limited(self, headers: dict[str, str]) -> Reply:
        return Reply(429, {"message": "Too many requests. Limit: 10 per minute."}, headers)

    def _error(self, status: int, code: str, message: str) -> Reply:
        # Reap documents no error body; vary it so clients can't come to rely on one shape.
        body = {"message": message} if status == 400 else {"error": message, "statusCode": status}
        return Reply(status, body)

    def _fault(self, status: int, code: str, message: str) -> Reply:
        return Reply(status, {"message": message})

    def _now(self) -> int:
        return int(self.clock())

    # ---- state setup / Reap-side simulation ------------------------------------------------------

    def add_integration(
        self, platform: str, name: str | None = None, *, username: str | None = None, active: bool = True
    ) -> str:
        """Connect an account; returns its integration id."""
        if platform not in PLATFORMS:
            raise ValueError(f"unknown platform {platform!r}")
        integration_id = _oid()
        with self._lock:
            self._integrations[integration_id] = {
                "id": integration_id,
                "platform": platform,
                "isActive": active,
                "name": name if name is not None else f"Greenlight {platform}",
                "username": username or f"@greenlight_{platform}",
                "profilePictureUrl": f"https://cdn.reap.test/{integration_id}.png",
            }
        return integration_id

    def set_integration_active(self, integration_id: str, active: bool) -> None:
        """Disconnect/reconnect an account."""
        with self._lock:
            self._integrations[integration_id]["isActive"] = active

    def add_project(
        self, status: str = "completed", clips: int | Iterable[dict[str, Any]] = 2, *, project_type: str = "clipping"
    ) -> str:
        """A project with clips (a count, or dicts with title/caption); returns its id."""
        if status not in PROJECT_STATUSES:
            raise ValueError(f"unknown project status {status!r}")
        project_id = _oid()
        now = self._now()
        with self._lock:
            self._projects[project_id] = {
                "id": project_id, "projectType": project_type, "source": "Upload", "status": status,
                "title": f"Project {project_id[:6]}", "createdAt": now, "updatedAt": now,
            }
            self._clips[project_id] = []
            specs = [{} for _ in range(clips)] if isinstance(clips, int) else list(clips)
            for spec in specs:
                self.add_clip(project_id, **spec)
        return project_id

    def add_clip(self, project_id: str, title: str | None = None, caption: str | None = None, **extra: Any) -> str:
        """Add a clip to a project; returns the clip id."""
        with self._lock:
            clips = self._clips[project_id]
            n = len(clips) + 1
            clip_id = _oid()
            now = self._now()
            # The clip's video is served by this fake (a CDN in reality: no auth, no rate limit).
            self._files[clip_id] = self.clip_size
            url = f"{self._root()}/files/{clip_id}.mp4" if self._server is not None else \
                f"https://cdn.reap.test/{project_id}/{clip_id}.mp4"
            clip = {
                "id": clip_id, "projectId": project_id,
                "clipUrl": url,
                "startTime": 10.0 * n, "endTime": 10.0 * n + 42.5, "duration": 42.5,
                "topic": f"Topic {n}",
                "title": title if title is not None else f"Clip {n}: the moment it clicked",
                "caption": caption if caption is not None else f"Clip {n} caption. Watch till the end #reap #clip{n}",
                "language": "en", "viralityScore": 7.5, "exportOrientation": "portrait", "exportResolution": 1080,
                "createdAt": now, "updatedAt": now,
            }
            clip.update(copy.deepcopy(extra))
            clips.append(clip)
            return clip_id

    # ---- clip files (a CDN in reality) --------------------------------------------------------------

    def _public(self, http_method: str, path: str) -> bool:
        return path.startswith("/files/")

    def _serve_public(self, http_method: str, path: str, query: dict[str, str], headers: dict[str, str]) -> Reply:
        match = re.match(r"^/files/(?P<id>[^/]+)\.mp4$", path)
        size = self._files.get(match["id"]) if match else None
        if http_method != "GET" or match is None or size is None:
            return Reply(404, {"message": "Not Found"})
        self.file_downloads.append(match["id"])
        return Reply(200, None, {"Content-Length": str(size)}, content_type="video/mp4",
                     stream=render_bytes(match["id"], size))

    def set_project_status(self, project_id: str, status: str) -> None:
        """Move a project to another status (e.g. processing → completed)."""
        if status not in PROJECT_STATUSES:
            raise ValueError(f"unknown project status {status!r}")
        with self._lock:
            self._projects[project_id].update(status=status, updatedAt=self._now())

    def clip_ids(self, project_id: str) -> list[str]:
        """A project's clip ids in order."""
        with self._lock:
            return [c["id"] for c in self._clips[project_id]]

    def add_post(self, project_id: str, clip_id: str, integrations: list[str], status: str = "processing") -> str:
        """Create a post directly (as if published earlier); returns its id."""
        with self._lock:
            return self._new_post(project_id, clip_id, integrations, {}, status)["id"]

    def post(self, post_id: str) -> dict[str, Any]:
        """A copy of a stored post (KeyError if unknown)."""
        with self._lock:
            return copy.deepcopy(self._posts[post_id])

    def posts(self) -> list[dict[str, Any]]:
        """Copies of every post, in creation order."""
        with self._lock:
            return [copy.deepcopy(p) for p in self._posts.values()]

    def finish_post(
        self, post_id: str, *, failed: Iterable[str] = (), urls: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """Reap finished publishing: platforms in `failed` failed, the rest succeeded (with URLs).

        The status follows Reap: completed (all ok), failed (none ok) or unresolved (some ok).
        """
        failed_set = set(failed)
        with self._lock:
            post = self._posts[post_id]
            if post["status"] not in ("processing", "scheduled"):
                raise ValueError(f"post {post_id} is {post['status']}; use set_post_status() to force it")
            unknown = failed_set - set(post["platforms"])
            if unknown:
                raise ValueError(f"post {post_id} doesn't target {sorted(unknown)}")
            ok = [p for p in post["platforms"] if p not in failed_set]
            bad = [p for p in post["platforms"] if p in failed_set]
            status = "completed" if not bad else "failed" if not ok else "unresolved"
            given = urls or {}
            post.update(
                status=status,
                successPlatforms=ok,
                failedPlatforms=bad,
                urls={p: given.get(p) or _default_url(p) for p in ok},
                publishDate=self._now() if ok else None,
                updatedAt=self._now(),
            )
            return copy.deepcopy(post)

    def set_post_status(self, post_id: str, status: str, **fields: Any) -> dict[str, Any]:
        """Force a post status (and fields) without lifecycle checks."""
        if status not in POST_STATUSES:
            raise ValueError(f"unknown post status {status!r}")
        with self._lock:
            post = self._posts[post_id]
            post["status"] = status
            post.update(copy.deepcopy(fields))
            post["updatedAt"] = self._now()
            return copy.deepcopy(post)

    # ---- fault injection -------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        message: str = "Internal server error",
        times: int = 1,
        retry_after: int | None = None,
    ) -> None:
        """Answer the next `times` matching requests with an error, without side effects."""
        self._add_fail(
            Rule(method.upper(), re.compile(path_regex), times, status=status, message=message, retry_after=retry_after)
        )

    # ---- routing ---------------------------------------------------------------------------------

    def _route(self, http_method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if path.startswith(BASE_PATH + "/"):
            verb = path[len(BASE_PATH) + 1 :]
            name = _ROUTES.get((http_method, verb))
            if name is not None:
                handler: Callable[[dict[str, str], Any], tuple[int, Any]] = getattr(self, name)
                return handler(query, body)
        raise _ApiError(404, f"Cannot {http_method} {path}")

    def _project(self, query: dict[str, str]) -> dict[str, Any]:
        project_id = query.get("projectId")
        if not project_id:
            raise _bad("projectId is required")
        project = self._projects.get(project_id)
        if project is None:
            raise _ApiError(404, "Project not found")
        return project

    # ---- endpoints (lock held; validate fully before mutating) ------------------------------------

    def _get_integrations(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        return 200, {"integrations": [copy.deepcopy(i) for i in self._integrations.values()]}

    def _get_project_status(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        p = self._project(query)
        return 200, {"projectId": p["id"], "projectType": p["projectType"], "source": p["source"], "status": p["status"]}

    def _get_project_clips(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        p = self._project(query)
        try:
            page = int(query.get("page", "1"))
            size = int(query.get("pageSize", "100"))
        except ValueError:
            raise _bad("page and pageSize must be integers") from None
        if page < 1 or size < 1 or size > PAGE_SIZE_MAX:
            raise _bad(f"page must be >= 1 and pageSize between 1 and {PAGE_SIZE_MAX}")
        size = min(size, self.max_page_size)
        clips = self._clips[p["id"]] if p["status"] == "completed" else []
        total_pages = max(1, math.ceil(len(clips) / size))
        chunk = clips[(page - 1) * size : page * size]
        return 200, {
            "clips": copy.deepcopy(chunk), "currentPage": page, "totalPages": total_pages, "totalClips": len(clips),
        }

    def _get_clip_details(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        p = self._project(query)
        clip = next((c for c in self._clips[p["id"]] if c["id"] == query.get("clipId")), None)
        if clip is None:
            raise _ApiError(404, "Clip not found")
        return 200, copy.deepcopy(clip)

    def _get_post_details(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        post = self._posts.get(query.get("postId", ""))
        if post is None:
            raise _ApiError(404, "Post not found")
        return 200, copy.deepcopy(post)

    def _publish_clip(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            raise _bad("Request body must be a JSON object")
        allowed = {"projectId", "clipId", "integrations", "title", "description", "tags", "platformSettings"}
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise _bad(f"Unknown field '{unknown[0]}'")
        project_id, clip_id = body.get("projectId"), body.get("clipId")
        if not isinstance(project_id, str) or not isinstance(clip_id, str):
            raise _bad("projectId and clipId are required strings")
        project = self._projects.get(project_id)
        if project is None:
            raise _ApiError(404, "Project not found")
        if project["status"] != "completed":
            raise _bad(f"Only clips of completed projects can be published (project is {project['status']})")
        if not any(c["id"] == clip_id for c in self._clips[project_id]):
            raise _ApiError(404, "Clip not found")
        integrations = body.get("integrations")
        if not isinstance(integrations, list) or not integrations or not all(isinstance(i, str) for i in integrations):
            raise _bad("integrations must be a non-empty array of integration ids")
        platforms: list[str] = []
        for integration_id in integrations:
            integration = self._integrations.get(integration_id)
            if integration is None:
                raise _bad(f"Integration {integration_id} not found")
            if not integration["isActive"]:
                raise _bad(f"Integration {integration_id} is not active; reconnect it in Reap")
            if integration["platform"] not in platforms:
                platforms.append(integration["platform"])
        title, description, tags = body.get("title"), body.get("description"), body.get("tags")
        if title is not None and (not isinstance(title, str) or len(title) > TITLE_MAX):
            raise _bad(f"title must be a string of at most {TITLE_MAX} characters")
        if description is not None and (not isinstance(description, str) or len(description) > DESCRIPTION_MAX):
            raise _bad(f"description must be a string of at most {DESCRIPTION_MAX} characters")
        if tags is not None and (
            not isinstance(tags, list) or len(tags) > TAGS_MAX or not all(isinstance(t, str) for t in tags)
        ):
            raise _bad(f"tags must be an array of at most {TAGS_MAX} strings")
        settings = body.get("platformSettings") or {}
        if not isinstance(settings, dict):
            raise _bad("platformSettings must be an object")
        for platform, values in settings.items():
            if platform not in platforms:
                raise _bad(f"platformSettings.{platform} given, but no {platform} integration is selected")
            schema = SETTINGS_SCHEMA.get(platform)
            if schema is None or not isinstance(values, dict):
                raise _bad(f"platformSettings.{platform} is not supported")
            for key, value in values.items():
                rule = schema.get(key)
                if rule is None:
                    raise _bad(f"platformSettings.{platform}.{key} is not a known setting")
                if rule is bool and not isinstance(value, bool):
                    raise _bad(f"platformSettings.{platform}.{key} must be a boolean")
                if isinstance(rule, tuple) and value not in rule:
                    raise _bad(f"platformSettings.{platform}.{key} must be one of {', '.join(rule)}")
        post = self._new_post(project_id, clip_id, integrations, body, "processing")
        return 200, copy.deepcopy(post)

    def _new_post(
        self, project_id: str, clip_id: str, integrations: list[str], body: dict[str, Any], status: str
    ) -> dict[str, Any]:
        now = self._now()
        platforms = list(dict.fromkeys(self._integrations[i]["platform"] for i in integrations))
        post = {
            "id": _oid(), "projectId": project_id, "clipId": clip_id,
            "platforms": platforms, "successPlatforms": [], "failedPlatforms": [],
            "integrations": list(integrations),
            "title": body.get("title") or "", "description": body.get("description") or "",
            "tags": list(body.get("tags") or []),
            "status": status, "scheduleType": "immediate", "scheduleDate": None, "publishDate": None,
            "urls": {}, "platformSettings": copy.deepcopy(body.get("platformSettings") or {}),
            "createdAt": now, "updatedAt": now,
        }
        self._posts[post["id"]] = post
        return post
