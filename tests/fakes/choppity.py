"""A strict, stateful fake of the Choppity v1 posts API (plus webhook signing helpers) for tests.

Implements the subset the bot uses (see reference/apis.md Part A): ping, list a clip's posts, get /
edit / publish / cancel a post. Posts follow the documented lifecycle; helpers simulate Choppity's
side (``complete_publish``, ``fail_post``). Faults (errors, slow answers, answers lost after the side
effect, dropped connections) can be injected per method + path regex.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from tests.fakes._api import Call, FakeApi, FakeApiError, Reply, Rule

__all__ = [
    "Call",
    "FakeChoppity",
    "make_event",
    "sign_choppity",
    "webhook_headers",
]

PLATFORMS = ("youtube", "tiktok", "instagram", "linkedin")
STATUSES = ("draft", "queued", "scheduled", "published", "failed", "cancelled")
TIKTOK_PRIVACY = ("PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "FOLLOWER_OF_CREATOR", "SELF_ONLY")
TIKTOK_FLAGS = (
    "disable_comment",
    "disable_duet",
    "disable_stitch",
    "brand_content_toggle",
    "brand_organic_toggle",
)
MIN_SCHEDULE_LEAD_MS = 5 * 60 * 1000
WINDOW_SECONDS = 60
# Destination-platform caption limits (reference/apis.md Part C); enforced when strict_captions is on.
CAPTION_LIMITS = {"youtube": 5000, "tiktok": 2200, "instagram": 2200, "linkedin": 3000}

DEFAULT_CAPTIONS = {
    "youtube": "We tried the 5-second editing trick everyone talks about. Worth it? #shorts #editing",
    "tiktok": "wait for the last cut 😳 #fyp #videoediting #creator",
    "instagram": "Behind the scenes of our fastest edit yet ✂️ Save this for your next reel. #reels #creator",
    "linkedin": "Three things we learned cutting 40 hours of footage into one minute. What would you add?",
}
DEFAULT_TITLE = "The 5-second editing trick (does it work?)"


# --------------------------------------------------------------------------------------------------
# Webhook helpers
# --------------------------------------------------------------------------------------------------


def sign_choppity(body: bytes, secret: str, t: int) -> str:
    """Value of the ``choppity-signature-256`` header: ``t=<t>,v1=<hex hmac-sha256(secret, "t." + body)>``."""
    mac = hmac.new(secret.encode("utf-8"), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def make_event(
    event_type: str, data: dict[str, Any], event_id: str | None = None, created_ms: int | None = None
) -> bytes:
    """A webhook delivery body ``{"id", "type", "created", "data"}`` as compact JSON bytes."""
    envelope = {
        "id": event_id or str(uuid.uuid4()),
        "type": event_type,
        "created": created_ms if created_ms is not None else int(time.time() * 1000),
        "data": data,
    }
    return json.dumps(envelope, separators=(",", ":")).encode("utf-8")


def webhook_headers(body: bytes, secret: str, t: int | None = None) -> dict[str, str]:
    """Headers of a signed delivery (``t`` defaults to now, in unix seconds)."""
    stamp = int(time.time()) if t is None else t
    return {"content-type": "application/json", "choppity-signature-256": sign_choppity(body, secret, stamp)}


# --------------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------------


class _ApiError(FakeApiError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, message, code)


def _bad(message: str) -> _ApiError:
    return _ApiError(400, "BAD_REQUEST", message)


def _error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _short_id(n: int, alphabet: str = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789_-") -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _default_url(platform: str) -> str:
    if platform == "youtube":
        return f"https://youtu.be/{_short_id(11)}"
    if platform == "tiktok":
        return f"https://www.tiktok.com/@greenlight/video/{secrets.randbelow(10**18) + 7 * 10**18}"
    if platform == "instagram":
        return f"https://www.instagram.com/reel/{_short_id(11)}/"
    return f"https://www.linkedin.com/feed/update/urn:li:activity:{secrets.randbelow(10**18) + 7 * 10**18}/"


_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(r"^/v1/ping$"), "_ping"),
    ("GET", re.compile(r"^/v1/clips/(?P<id>[^/]+)/posts$"), "_list_posts"),
    ("GET", re.compile(r"^/v1/posts/(?P<id>[^/]+)$"), "_get_post"),
    ("PUT", re.compile(r"^/v1/posts/(?P<id>[^/]+)$"), "_put_post"),
    ("POST", re.compile(r"^/v1/posts/(?P<id>[^/]+)/publish$"), "_publish_post"),
    ("DELETE", re.compile(r"^/v1/posts/(?P<id>[^/]+)$"), "_delete_post"),
]


# --------------------------------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------------------------------


class FakeChoppity(FakeApi):
    """Stateful fake Choppity API on 127.0.0.1 (random port); see module docstring.

    ``clock`` returns unix seconds; it drives timestamps, the scheduling lead-time check and the
    rate-limit window (default: the real clock). ``url`` has no version: the client adds ``/v1/...``.
    """

    def __init__(
        self,
        api_key: str = "ck-secret-team_abc",
        *,
        team_id: str | None = None,
        rate_limit_per_minute: int | None = 60,
        strict_captions: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(api_key, rate_limit_per_minute=rate_limit_per_minute, window_seconds=WINDOW_SECONDS, clock=clock)
        self.team_id = team_id or api_key.rsplit("-", 1)[-1]
        self.strict_captions = strict_captions
        self._posts: dict[str, dict[str, Any]] = {}
        self._clips: dict[str, list[str]] = {}

    # ---- the vendor's shape ----------------------------------------------------------------------

    def _authorized(self, headers: dict[str, str]) -> bool:
        return headers.get("authorization") == f"Key {self.api_key}"

    def _unauthorized(self, now: float) -> Reply:
        return Reply(401, _error_body("UNAUTHORIZED", "Authentication required"), self._rate_headers(now))

    def _rate_limited(self, headers: dict[str, str]) -> Reply:
        return Reply(429, _error_body("RATE_LIMITED", "Rate limit exceeded"), headers)

    def _error(self, status: int, code: str, message: str) -> Reply:
        return Reply(status, _error_body(code, message))

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    # ---- state setup / Choppity-side simulation --------------------------------------------------

    def add_post(
        self,
        platform: str,
        clip_id: str | None = None,
        status: str = "draft",
        caption: str | None = None,
        title: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Create a post (uuid4 id) with platform defaults; `extra` fields are merged in. Returns a copy."""
        if platform not in PLATFORMS:
            raise ValueError(f"unknown platform {platform!r}")
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        now = self._now_ms()
        post: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "clip_id": clip_id or str(uuid.uuid4()),
            "platform": platform,
            "status": status,
            "caption": caption if caption is not None else DEFAULT_CAPTIONS[platform],
            "created_at": now,
            "updated_at": now,
        }
        if platform == "youtube":
            post["title"] = title if title is not None else DEFAULT_TITLE
            post["youtube"] = {"category_id": "22"}
        elif title is not None:
            raise ValueError("only YouTube posts have a title")
        if platform == "tiktok":
            post["tiktok"] = {
                "privacy_level": "PUBLIC_TO_EVERYONE",
                "disable_comment": False,
                "disable_duet": True,
                "disable_stitch": True,
                "brand_content_toggle": False,
                "brand_organic_toggle": False,
            }
        post.update(copy.deepcopy(extra))
        with self._lock:
            self._posts[post["id"]] = post
            self._clips.setdefault(post["clip_id"], []).append(post["id"])
            return copy.deepcopy(post)

    def add_clip(self, platforms: Iterable[str] = PLATFORMS) -> str:
        """Create a clip with one draft per platform; returns the clip id."""
        clip_id = str(uuid.uuid4())
        with self._lock:
            self._clips.setdefault(clip_id, [])
            for platform in platforms:
                self.add_post(platform, clip_id=clip_id)
        return clip_id

    def post(self, post_id: str) -> dict[str, Any]:
        """A copy of the stored post (KeyError if unknown)."""
        with self._lock:
            return copy.deepcopy(self._posts[post_id])

    def posts(self, clip_id: str | None = None) -> list[dict[str, Any]]:
        """Copies of all posts (or one clip's), in creation order."""
        with self._lock:
            ids = self._clips.get(clip_id, []) if clip_id is not None else list(self._posts)
            return [copy.deepcopy(self._posts[i]) for i in ids]

    def complete_publish(self, post_id: str, url: str | None = None) -> dict[str, Any]:
        """Choppity finished publishing a queued/scheduled post: status published (+ time, url)."""
        with self._lock:
            post = self._posts[post_id]
            if post["status"] not in ("queued", "scheduled"):
                raise ValueError(f"post {post_id} is {post['status']}; use set_status() to force it")
            post.update(
                status="published",
                published_at=self._now_ms(),
                published_url=url or _default_url(post["platform"]),
                updated_at=self._now_ms(),
            )
            return copy.deepcopy(post)

    def fail_post(self, post_id: str, error: str) -> dict[str, Any]:
        """Choppity's publish attempt failed permanently: status failed + error."""
        with self._lock:
            post = self._posts[post_id]
            if post["status"] not in ("queued", "scheduled"):
                raise ValueError(f"post {post_id} is {post['status']}; use set_status() to force it")
            post.update(status="failed", error=error, updated_at=self._now_ms())
            return copy.deepcopy(post)

    def set_status(self, post_id: str, status: str, **fields: Any) -> dict[str, Any]:
        """Force any status (and extra fields) without lifecycle checks."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        with self._lock:
            post = self._posts[post_id]
            post["status"] = status
            post.update(copy.deepcopy(fields))
            post["updated_at"] = self._now_ms()
            return copy.deepcopy(post)

    # ---- fault injection -------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        code: str = "INTERNAL",
        message: str = "Internal server error",
        times: int = 1,
        retry_after: int | None = None,
    ) -> None:
        """Answer the next `times` matching requests with an error envelope, without side effects."""
        self._add_fail(Rule(method.upper(), re.compile(path_regex), times, status, code, message, retry_after))

    # ---- routing ---------------------------------------------------------------------------------

    def _route(self, http_method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        for method, pattern, name in _ROUTES:
            match = pattern.match(path)
            if match is not None and method == http_method:
                handler: Callable[..., tuple[int, dict[str, Any]]] = getattr(self, name)
                return handler(body, **match.groupdict())
        raise _ApiError(404, "NOT_FOUND", f"No route for {http_method} {path}")

    def _get(self, post_id: str) -> dict[str, Any]:
        post = self._posts.get(post_id)
        if post is None:
            raise _ApiError(404, "NOT_FOUND", f"Post {post_id} not found")
        return post

    # ---- endpoints (lock held; validate fully before mutating) ------------------------------------

    def _ping(self, body: Any) -> tuple[int, dict[str, Any]]:
        return 200, {"pong": True, "team_id": self.team_id}

    def _list_posts(self, body: Any, id: str) -> tuple[int, dict[str, Any]]:
        if id not in self._clips:
            raise _ApiError(404, "NOT_FOUND", f"Clip {id} not found")
        return 200, {"posts": [copy.deepcopy(self._posts[i]) for i in self._clips[id]]}

    def _get_post(self, body: Any, id: str) -> tuple[int, dict[str, Any]]:
        return 200, {"post": copy.deepcopy(self._get(id))}

    def _put_post(self, body: Any, id: str) -> tuple[int, dict[str, Any]]:
        post = self._get(id)
        if post["status"] != "draft":
            raise _bad(f"Only draft posts can be edited (post is {post['status']})")
        if not isinstance(body, dict):
            raise _bad("Request body must be a JSON object")
        platform = post["platform"]
        changes: dict[str, Any] = {}
        for key, value in body.items():
            if key == "caption":
                changes["caption"] = self._check_caption(platform, value)
            elif key == "title":
                if platform != "youtube":
                    raise _bad(f"Field 'title' is only supported for YouTube posts (post is {platform})")
                changes["title"] = self._check_title(value)
            elif key == "youtube":
                if platform != "youtube":
                    raise _bad(f"Field 'youtube' is only supported for YouTube posts (post is {platform})")
                changes["youtube"] = self._check_youtube(value, post.get("youtube") or {})
            elif key == "tiktok":
                if platform != "tiktok":
                    raise _bad(f"Field 'tiktok' is only supported for TikTok posts (post is {platform})")
                changes["tiktok"] = self._check_tiktok(value, post.get("tiktok") or {})
            else:
                raise _bad(f"Field '{key}' cannot be edited")
        post.update(changes)
        post["updated_at"] = self._now_ms()
        return 200, {"post": copy.deepcopy(post)}

    def _check_caption(self, platform: str, value: Any) -> str:
        if not isinstance(value, str):
            raise _bad("Field 'caption' must be a string")
        if self.strict_captions:
            limit = CAPTION_LIMITS[platform]
            size = len(value.encode("utf-16-le")) // 2 if platform == "tiktok" else len(value)
            if size > limit:
                raise _bad(f"Field 'caption' must be at most {limit} characters for {platform}")
            if platform == "youtube" and ("<" in value or ">" in value):
                raise _bad("Field 'caption' must not contain '<' or '>' for youtube")
        return value

    @staticmethod
    def _check_title(value: Any) -> str:
        if not isinstance(value, str):
            raise _bad("Field 'title' must be a string")
        if not value.strip():
            raise _bad("Field 'title' must not be empty")
        if len(value) > 100:
            raise _bad("Field 'title' must be at most 100 characters")
        if "<" in value or ">" in value:
            raise _bad("Field 'title' must not contain '<' or '>'")
        return value

    @staticmethod
    def _check_youtube(value: Any, current: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _bad("Field 'youtube' must be an object")
        merged = dict(current)
        for key, item in value.items():
            if key != "category_id":
                raise _bad(f"Field 'youtube.{key}' cannot be edited")
            if not isinstance(item, str) or not item.isdigit():
                raise _bad("Field 'youtube.category_id' must be a numeric string")
            merged[key] = item
        return merged

    @staticmethod
    def _check_tiktok(value: Any, current: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _bad("Field 'tiktok' must be an object")
        merged = dict(current)
        for key, item in value.items():
            if key == "privacy_level":
                if item not in TIKTOK_PRIVACY:
                    raise _bad(f"Field 'tiktok.privacy_level' must be one of {', '.join(TIKTOK_PRIVACY)}")
            elif key in TIKTOK_FLAGS:
                if not isinstance(item, bool):
                    raise _bad(f"Field 'tiktok.{key}' must be a boolean")
            else:
                raise _bad(f"Field 'tiktok.{key}' cannot be edited")
            merged[key] = item
        return merged

    def _publish_post(self, body: Any, id: str) -> tuple[int, dict[str, Any]]:
        post = self._get(id)
        if post["status"] != "draft":
            raise _bad(f"Post is {post['status']}, only drafts can be published")
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise _bad("Request body must be a JSON object")
        unknown = sorted(set(body) - {"scheduled_at"})
        if unknown:
            raise _bad(f"Field '{unknown[0]}' is not allowed")
        scheduled_at = body.get("scheduled_at")
        if scheduled_at is None:
            post.update(status="queued", updated_at=self._now_ms())
            return 202, {"post": copy.deepcopy(post)}
        if not isinstance(scheduled_at, int) or isinstance(scheduled_at, bool):
            raise _bad("scheduled_at must be an integer (unix milliseconds)")
        if scheduled_at < self._now_ms() + MIN_SCHEDULE_LEAD_MS:
            raise _bad("scheduled_at must be at least 5 minutes in the future")
        post.update(status="scheduled", scheduled_at=scheduled_at, updated_at=self._now_ms())
        return 202, {"post": copy.deepcopy(post)}

    def _delete_post(self, body: Any, id: str) -> tuple[int, dict[str, Any]]:
        post = self._get(id)
        if post["status"] not in ("draft", "scheduled", "queued"):
            raise _bad(f"Post is {post['status']} and can no longer be cancelled")
        post.update(status="cancelled", updated_at=self._now_ms())
        return 200, {"post": copy.deepcopy(post)}
