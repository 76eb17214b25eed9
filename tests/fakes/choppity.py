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
import math
import re
import secrets
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

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


@dataclass
class Call:
    """One HTTP request as received (``json`` is the parsed body or None; header names lower-case)."""

    method: str
    path: str
    json: Any
    headers: dict[str, str]
    at: float
    status: int = 0


@dataclass
class _Rule:
    method: str
    pattern: re.Pattern[str]
    times: int
    status: int = 0
    code: str = ""
    message: str = ""
    retry_after: int | None = None
    seconds: float = 0.0
    after_processing: bool = True

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and self.pattern.search(path) is not None


@dataclass
class _Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    hang: float = 0.0


class _ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


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


# --------------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeChoppity) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that went away (timeouts are part of the tests)."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging."""

    def do_GET(self) -> None:
        """Handle GET."""
        self._serve()

    def do_POST(self) -> None:
        """Handle POST."""
        self._serve()

    def do_PUT(self) -> None:
        """Handle PUT."""
        self._serve()

    def do_DELETE(self) -> None:
        """Handle DELETE."""
        self._serve()

    def do_PATCH(self) -> None:
        """Handle PATCH (always 404)."""
        self._serve()

    def _serve(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            reply = fake._handle(self.command, self.path, headers, raw)
        except Exception:  # report bugs in the fake loudly, but keep serving
            traceback.print_exc(file=sys.stderr)
            reply = _Reply(500, _error_body("FAKE_INTERNAL", traceback.format_exc()))
        if reply.hang > 0:
            fake._wait(reply.hang)
        if reply.drop:
            self.close_connection = True
            return
        payload = json.dumps(reply.body).encode("utf-8")
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (ConnectionError, TimeoutError):
            pass


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


class FakeChoppity:
    """Stateful fake Choppity API on 127.0.0.1 (random port); see module docstring.

    ``clock`` returns unix seconds; it drives timestamps, the scheduling lead-time check and the
    rate-limit window (default: the real clock).
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
        self.api_key = api_key
        self.team_id = team_id or api_key.rsplit("-", 1)[-1]
        self.rate_limit_per_minute = rate_limit_per_minute
        self.strict_captions = strict_captions
        self.clock = clock
        self.rate_limited_count = 0
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._posts: dict[str, dict[str, Any]] = {}
        self._clips: dict[str, list[str]] = {}
        self._calls: list[Call] = []
        self._fail: list[_Rule] = []
        self._delay: list[_Rule] = []
        self._hang: list[_Rule] = []
        self._drop: list[_Rule] = []
        self._window_start: float | None = None
        self._window_count = 0

    # ---- lifecycle -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL without the version, e.g. ``http://127.0.0.1:PORT`` (the client adds ``/v1/...``)."""
        if self._server is None:
            raise RuntimeError("FakeChoppity is not running; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeChoppity:
        """Start serving on a free port in a daemon thread."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="FakeChoppity",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (wakes any injected delays/hangs)."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeChoppity:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)

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
        rule = _Rule(method.upper(), re.compile(path_regex), times, status, code, message, retry_after)
        with self._lock:
            self._fail.append(rule)

    def delay_next(self, method: str, path_regex: str, seconds: float, times: int = 1) -> None:
        """Sleep `seconds` BEFORE processing the next `times` matching requests."""
        with self._lock:
            self._delay.append(_Rule(method.upper(), re.compile(path_regex), times, seconds=seconds))

    def hang_after_processing(self, method: str, path_regex: str, seconds: float, times: int = 1) -> None:
        """Apply the next `times` matching requests, then sleep `seconds` before answering."""
        with self._lock:
            self._hang.append(_Rule(method.upper(), re.compile(path_regex), times, seconds=seconds))

    def drop_connection_next(
        self, method: str, path_regex: str, times: int = 1, after_processing: bool = True
    ) -> None:
        """Close the socket without answering (after applying the request, unless told otherwise)."""
        rule = _Rule(method.upper(), re.compile(path_regex), times, after_processing=after_processing)
        with self._lock:
            self._drop.append(rule)

    def clear_faults(self) -> None:
        """Forget every pending injected fault."""
        with self._lock:
            self._fail.clear()
            self._delay.clear()
            self._hang.clear()
            self._drop.clear()

    def reset_rate_limit(self) -> None:
        """Start a fresh rate-limit window."""
        with self._lock:
            self._window_start = None
            self._window_count = 0

    # ---- inspection ------------------------------------------------------------------------------

    def calls(self, method: str | None = None, path_regex: str | None = None) -> list[Call]:
        """Copies of received requests, optionally filtered by method and path regex."""
        pattern = re.compile(path_regex) if path_regex is not None else None
        with self._lock:
            return [
                copy.deepcopy(c)
                for c in self._calls
                if (method is None or c.method == method.upper())
                and (pattern is None or pattern.search(c.path) is not None)
            ]

    def count(self, method: str, path_regex: str) -> int:
        """How many matching requests were received."""
        return len(self.calls(method, path_regex))

    def reset_calls(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self._calls.clear()

    def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 10.0, message: str | None = None
    ) -> None:
        """Poll `predicate` every 20 ms until true; AssertionError with context on timeout."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                with self._lock:
                    recent = [f"{c.method} {c.path} -> {c.status}" for c in self._calls[-15:]]
                what = message or getattr(predicate, "__name__", "predicate")
                raise AssertionError(
                    f"FakeChoppity.wait_for timed out after {timeout}s waiting for {what}; {recent}"
                )
            time.sleep(0.02)

    # ---- request handling ------------------------------------------------------------------------

    @staticmethod
    def _take(rules: list[_Rule], method: str, path: str) -> _Rule | None:
        for rule in rules:
            if rule.matches(method, path):
                rule.times -= 1
                if rule.times <= 0:
                    rules.remove(rule)
                return rule
        return None

    def _rate_headers(self, now: float) -> dict[str, str]:
        limit = self.rate_limit_per_minute
        start = self._window_start if self._window_start is not None else now
        reset = int(math.ceil(start + WINDOW_SECONDS))
        if limit is None:
            return {
                "X-RateLimit-Limit": "1000000",
                "X-RateLimit-Remaining": "1000000",
                "X-RateLimit-Reset": str(reset),
            }
        remaining = max(0, limit - self._window_count)
        return {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(reset),
        }

    def _handle(self, http_method: str, raw_path: str, headers: dict[str, str], body: bytes) -> _Reply:
        path = urlsplit(raw_path).path
        parsed: Any = None
        body_error: str | None = None
        if body:
            try:
                parsed = json.loads(body)
            except (json.JSONDecodeError, UnicodeDecodeError):
                body_error = "Request body is not valid JSON"
            content_type = headers.get("content-type", "").split(";")[0].strip().lower()
            if body_error is None and content_type != "application/json":
                body_error = "Content-Type must be application/json"
        call = Call(method=http_method, path=path, json=parsed, headers=dict(headers), at=time.monotonic())
        with self._lock:
            self._calls.append(call)
            reply, delay = self._admit(call, headers)
        if reply is not None:
            return self._finish(call, reply)
        if delay > 0:
            self._wait(delay)
        with self._lock:
            now = self.clock()
            fail = self._take(self._fail, http_method, path)
            if fail is not None:
                extra = {"Retry-After": str(fail.retry_after)} if fail.retry_after is not None else {}
                if fail.status == 429:
                    self.rate_limited_count += 1
                reply = _Reply(fail.status, _error_body(fail.code, fail.message), extra)
                return self._finish(call, reply)
            drop = self._take(self._drop, http_method, path)
            if drop is not None and not drop.after_processing:
                return self._finish(call, _Reply(0, {}, drop=True))
            try:
                if body_error is not None:
                    raise _bad(body_error)
                status, payload = self._route(http_method, path, parsed)
                reply = _Reply(status, payload)
            except _ApiError as exc:
                reply = _Reply(exc.status, _error_body(exc.code, exc.message))
            reply.headers.update(self._rate_headers(now))
            if drop is not None:
                reply.drop = True
            hang = self._take(self._hang, http_method, path)
            if hang is not None:
                reply.hang = hang.seconds
            return self._finish(call, reply)

    def _admit(self, call: Call, headers: dict[str, str]) -> tuple[_Reply | None, float]:
        """Auth + rate limit (lock held). Returns an early reply or the pre-processing delay."""
        now = self.clock()
        if headers.get("authorization") != f"Key {self.api_key}":
            reply = _Reply(
                401, _error_body("UNAUTHORIZED", "Authentication required"), self._rate_headers(now)
            )
            return reply, 0.0
        if self._window_start is None or now >= self._window_start + WINDOW_SECONDS:
            self._window_start = now
            self._window_count = 0
        limit = self.rate_limit_per_minute
        if limit is not None and self._window_count >= limit:
            self.rate_limited_count += 1
            headers_out = self._rate_headers(now)
            headers_out["Retry-After"] = str(
                max(1, int(math.ceil(self._window_start + WINDOW_SECONDS - now)))
            )
            return _Reply(429, _error_body("RATE_LIMITED", "Rate limit exceeded"), headers_out), 0.0
        self._window_count += 1
        delay = self._take(self._delay, call.method, call.path)
        return None, delay.seconds if delay is not None else 0.0

    def _finish(self, call: Call, reply: _Reply) -> _Reply:
        with self._lock:
            call.status = reply.status if not reply.drop else 0
        return reply

    def _route(self, http_method: str, path: str, body: Any) -> tuple[int, dict[str, Any]]:
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
