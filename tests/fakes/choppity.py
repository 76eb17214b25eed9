"""A strict, stateful fake of the Choppity v1 API (plus webhook signing helpers) for tests.

Implements what the bot uses (as its public docs describe it; the Posts page in
reference/seeds/choppity-posts-api.txt wins where they differ): ping; clip jobs; renders and their
signed, streamed output file; list a clip's posts; get / edit / publish / cancel a post.

Posts follow the documented lifecycle: draft → (scheduled →) queued → processing → uploading →
published | failed; only drafts are edited or published; only draft / scheduled / queued posts can be
cancelled. By default nothing moves by itself (tests drive Choppity's side with ``complete_publish``,
``fail_post``, ``advance``). With a ``Lifecycle`` the fake walks posts through the in-flight states on
its ``clock``; with ``deliver_webhooks`` it sends signed, at-least-once, unordered webhooks. Faults
(errors, slow answers, answers lost after the side effect, dropped connections, downloads cut
midway) can be injected per method + path regex.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import heapq
import hmac
import itertools
import json
import random
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Self, TypeGuard

import httpx

from tests.fakes._api import Call, FakeApi, FakeApiError, Reply, Rule

__all__ = [
    "Call",
    "Delivery",
    "Download",
    "FakeChoppity",
    "Lifecycle",
    "Transition",
    "make_event",
    "render_bytes",
    "render_digest",
    "sign_choppity",
    "webhook_headers",
]

PLATFORMS = ("youtube", "tiktok", "instagram", "linkedin")
STATUSES = ("draft", "scheduled", "queued", "processing", "uploading", "published", "failed", "cancelled")
IN_FLIGHT = ("queued", "processing", "uploading")
CANCELLABLE = ("draft", "scheduled", "queued")
OUTCOMES = ("published", "failed")
POST_EVENTS = ("post.draft.created", "post.scheduled", "post.published", "post.failed")
JOB_STATUSES = ("queued", "processing", "done")
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
# Destination-platform caption limits (docs/providers.md); enforced when strict_captions is on.
CAPTION_LIMITS = {"youtube": 5000, "tiktok": 2200, "instagram": 2200, "linkedin": 3000}
# Fields the docs promise only in one status; a post leaving that status loses them, so the app
# cannot come to rely on them anywhere else.
STATUS_FIELDS = {"scheduled_at": "scheduled", "published_at": "published", "published_url": "published", "error": "failed"}
RENDER_URL_TTL = 3600  # seconds a render's output_url stays valid (Choppity docs: renders)
# The served file is made of blocks this long (a prime, so they never line up with a client's
# power-of-two reads), each stamped with its index: a lost or repeated block changes the digest.
RENDER_BLOCK = 65521
DEFAULT_RENDER_SIZE = 4 * 1024 * 1024
REORDER_WINDOW = 0.1  # seconds the courier gathers a burst of events before sending it newest first

DEFAULT_CAPTIONS = {
    "youtube": "We tried the 5-second editing trick everyone talks about. Worth it? #shorts #editing",
    "tiktok": "wait for the last cut 😳 #fyp #videoediting #creator",
    "instagram": "Behind the scenes of our fastest edit yet ✂️ Save this for your next reel. #reels #creator",
    "linkedin": "Three things we learned cutting 40 hours of footage into one minute. What would you add?",
}
DEFAULT_TITLE = "The 5-second editing trick (does it work?)"
DEFAULT_ERRORS = {
    "youtube": "YouTube rejected the upload: the channel has reached its daily upload limit",
    "tiktok": "TikTok access token expired; reconnect the account in Choppity",
    "instagram": "Instagram could not process the video (unsupported aspect ratio)",
    "linkedin": "LinkedIn returned an internal error while publishing",
}
DEFAULT_RENDER_ERROR = "Render failed: the source video could not be decoded"
DEFAULT_CLIP = {"title": "The 5-second editing trick", "duration": 42.5, "score": 0.87}


# --------------------------------------------------------------------------------------------------
# Public records
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lifecycle:
    """Fake-clock seconds a published post dwells in each in-flight stage before the next one.

    ``None`` skips processing or uploading (Choppity docs: either may be skipped). ``queued`` cannot be
    skipped: the publish answer itself says queued. A dwell of 0 moves on at the next tick.
    """

    queued: float = 0.2
    processing: float | None = 0.2
    uploading: float | None = 0.2

    def __post_init__(self) -> None:
        if self.queued is None:
            raise ValueError("queued cannot be skipped: an immediate publish answers status queued")
        for name in IN_FLIGHT:
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} dwell must be >= 0 or None")

    def after(self, status: str) -> str | None:
        """The in-flight stage that follows `status` (None: the outcome comes next)."""
        if status == "scheduled":
            return "queued"
        if status not in IN_FLIGHT:
            return None
        for stage in IN_FLIGHT[IN_FLIGHT.index(status) + 1 :]:
            if getattr(self, stage) is not None:
                return stage
        return None

    def dwell(self, status: str) -> float:
        """Seconds spent in an in-flight `status` (a skipped stage reached by force: 0)."""
        value = getattr(self, status) if status in IN_FLIGHT else None
        return float(value or 0.0)


@dataclass(frozen=True)
class Transition:
    """A post's status change; `from_status` is None at creation; `at` is fake-clock unix seconds.

    For lifecycle steps `at` is when the stage was due, so a clock jumped forward still yields one
    transition per stage, each at its own time.
    """

    post_id: str
    from_status: str | None
    to_status: str
    at: float


@dataclass(frozen=True)
class Delivery:
    """One webhook delivery attempt: HTTP status, or the connection error / timeout it met."""

    event_id: str
    type: str
    attempt: int  # 1 for the first try of this copy; retries count up
    status: int | None
    error: str | None
    duplicate: bool  # a deliberate second copy of the event (same id)
    at: float  # time.monotonic() when the attempt finished

    @property
    def ok(self) -> bool:
        """Whether the receiver answered 2xx."""
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Download:
    """One request for a render's output file, and how far it got."""

    render_id: str
    status: int
    start: int
    length: int
    bytes_sent: int = 0
    complete: bool = False


@dataclass
class _Plan:
    outcome: str
    error: str | None = None
    url: str | None = None
    from_stage: str | None = None


@dataclass
class _Render:
    render_id: str
    started: float
    queued_s: float
    processing_s: float
    size: int
    error: str | None
    starts: int
    had_output: bool  # an earlier render finished: the object at render/{id}.mp4 already exists


@dataclass(frozen=True)
class _Pending:
    event_id: str
    type: str
    body: bytes
    attempt: int = 1
    duplicate: bool = False


@dataclass(frozen=True)
class _Hooks:
    url: str
    secret: str
    events: frozenset[str]
    retries: int
    backoff: float
    timeout: float
    duplicate_rate: float
    reorder: bool


@functools.lru_cache(maxsize=32)
def _render_seed(render_id: str) -> bytes:
    out = bytearray()
    digest = hashlib.sha256(render_id.encode("utf-8")).digest()
    while len(out) < RENDER_BLOCK:
        out += digest
        digest = hashlib.sha256(digest).digest()
    return bytes(out[:RENDER_BLOCK])


def render_bytes(render_id: str, size: int, start: int = 0, end: int | None = None) -> Iterator[bytes]:
    """Bytes ``[start, end)`` of a render's ``size``-byte file, in pieces of at most RENDER_BLOCK.

    Deterministic: per-render pseudo-random blocks, each starting with its 8-byte big-endian index.
    """
    stop = size if end is None else min(end, size)
    seed = _render_seed(render_id)
    pos = start
    while pos < stop:
        index, offset = divmod(pos, RENDER_BLOCK)
        block = index.to_bytes(8, "big") + seed[8:]
        piece = block[offset : min(RENDER_BLOCK, offset + stop - pos)]
        yield piece
        pos += len(piece)


def render_digest(render_id: str, size: int) -> str:
    """sha256 hex of the whole file the fake serves for a render of ``size`` bytes."""
    digest = hashlib.sha256()
    for piece in render_bytes(render_id, size):
        digest.update(piece)
    return digest.hexdigest()


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


def _s3_error(status: int, code: str, message: str) -> Reply:
    # Render files live on S3 in reality, so their errors are S3's XML, not Choppity's JSON.
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return Reply(status, body, content_type="application/xml")


def _number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(r"^/v1/ping$"), "_ping"),
    ("GET", re.compile(r"^/v1/clips/(?P<id>[^/]+)$"), "_get_job"),
    ("GET", re.compile(r"^/v1/clips/(?P<id>[^/]+)/posts$"), "_list_posts"),
    ("POST", re.compile(r"^/v1/clips/(?P<id>[^/]+)/renders$"), "_start_render"),
    ("GET", re.compile(r"^/v1/renders/(?P<id>[^/]+)$"), "_get_render"),
    ("GET", re.compile(r"^/v1/posts/(?P<id>[^/]+)$"), "_get_post"),
    ("PUT", re.compile(r"^/v1/posts/(?P<id>[^/]+)$"), "_put_post"),
    ("POST", re.compile(r"^/v1/posts/(?P<id>[^/]+)/publish$"), "_publish_post"),
    ("DELETE", re.compile(r"^/v1/posts/(?P<id>[^/]+)$"), "_delete_post"),
]
_FILE_PATH = re.compile(r"^/files/render/(?P<id>[^/]+)\.mp4$")
_RANGE = re.compile(r"^bytes=(?P<start>\d*)-(?P<end>\d*)$")
_EVENT_FOR = {"scheduled": "post.scheduled", "published": "post.published", "failed": "post.failed"}


# --------------------------------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------------------------------


class FakeChoppity(FakeApi):
    """Stateful fake Choppity API on 127.0.0.1 (random port); see module docstring.

    ``clock`` returns unix seconds; it drives timestamps, the scheduling lead-time check, the
    lifecycle walk, render progress, file-URL expiry and the rate-limit window (default: the real
    clock). ``url`` has no version: the client adds ``/v1/...``.
    """

    def __init__(
        self,
        api_key: str = "ck-secret-team_abc",
        *,
        team_id: str | None = None,
        rate_limit_per_minute: int | None = 60,
        strict_captions: bool = True,
        clock: Callable[[], float] = time.time,
        lifecycle: Lifecycle | None = None,
        tick_interval: float | None = 0.02,
        render_timing: tuple[float, float] = (0.5, 2.0),
        render_size: int = DEFAULT_RENDER_SIZE,
        seed: int = 0,
    ) -> None:
        super().__init__(api_key, rate_limit_per_minute=rate_limit_per_minute, window_seconds=WINDOW_SECONDS, clock=clock)
        self.team_id = team_id or api_key.rsplit("-", 1)[-1]
        self.strict_captions = strict_captions
        self.lifecycle = lifecycle
        self.tick_interval = tick_interval  # real seconds between background ticks; None: no ticker
        self.render_timing = render_timing  # fake-clock seconds (queued, processing) of new renders
        self.render_size = render_size  # bytes of the output file of renders started from now on
        self.download_rate: float | None = None  # bytes/s cap on file downloads; None: as fast as possible
        self._posts: dict[str, dict[str, Any]] = {}
        self._clips: dict[str, list[str]] = {}
        self._since: dict[str, float] = {}  # post id -> fake-clock time it entered its status
        self._plans: dict[str, _Plan] = {}
        self._publish_failures: list[str | None] = []
        self._transitions: list[Transition] = []
        self._jobs: dict[str, dict[str, Any]] = {}
        self._job_platforms: dict[str, tuple[str, ...]] = {}
        self._renders: dict[str, _Render] = {}
        self._render_failures: list[str] = []
        self._render_polls: dict[str, list[float]] = {}
        self._url_key = secrets.token_bytes(32)
        self._cuts: list[int] = []
        self._downloads: list[Download] = []
        # Webhooks: the outbox has its own lock, taken after (never around) the fake's lock, and the
        # courier never holds it while sending.
        self._hooks: _Hooks | None = None
        self._events: list[dict[str, Any]] = []
        self._outbox: list[tuple[float, int, _Pending]] = []
        self._outbox_cv = threading.Condition()
        self._inflight = 0
        self._deliveries: list[Delivery] = []
        self._duplicates_due = 0
        self._rng = random.Random(seed)
        self._seq = itertools.count()
        self._halt = threading.Event()
        self._ticker: threading.Thread | None = None
        self._courier: threading.Thread | None = None

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

    # ---- lifecycle of the fake itself ------------------------------------------------------------

    def start(self) -> Self:
        """Start serving, plus the lifecycle ticker and webhook courier if they are configured."""
        super().start()
        self._halt.clear()
        self._ensure_threads()
        return self

    def stop(self) -> None:
        """Stop the ticker and the courier (undelivered webhooks are dropped), then the server."""
        self._halt.set()
        with self._outbox_cv:
            self._outbox_cv.notify_all()
        for thread in (self._ticker, self._courier):
            if thread is not None:
                thread.join(timeout=5)
        self._ticker = self._courier = None
        super().stop()

    def _ensure_threads(self) -> None:
        if self._server is None or self._halt.is_set():
            return
        if self._ticker is None and self.lifecycle is not None and self.tick_interval is not None:
            self._ticker = threading.Thread(target=self._tick_loop, name="FakeChoppity-ticker", daemon=True)
            self._ticker.start()
        if self._courier is None and self._hooks is not None:
            self._courier = threading.Thread(target=self._courier_loop, name="FakeChoppity-courier", daemon=True)
            self._courier.start()

    def _tick_loop(self) -> None:
        while not self._halt.wait(self.tick_interval or 0.02):
            if self.lifecycle is not None:
                self.tick()

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
        """Create a post (uuid4 id) with platform defaults; `extra` fields are merged in. Returns a copy.

        A draft emits ``post.draft.created`` when webhook delivery is on.
        """
        if platform not in PLATFORMS:
            raise ValueError(f"unknown platform {platform!r}")
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        now = self.clock()
        post: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "clip_id": clip_id or str(uuid.uuid4()),
            "platform": platform,
            "status": status,
            "caption": caption if caption is not None else DEFAULT_CAPTIONS[platform],
            "created_at": int(now * 1000),
            "updated_at": int(now * 1000),
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
            self._since[post["id"]] = now
            self._transitions.append(Transition(post["id"], None, status, now))
            if status == "draft":
                self._emit("post.draft.created", post, now)
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
        """A copy of the stored post as of the fake clock (KeyError if unknown)."""
        with self._lock:
            self._catch_up(self.clock())
            return copy.deepcopy(self._posts[post_id])

    def posts(self, clip_id: str | None = None) -> list[dict[str, Any]]:
        """Copies of all posts (or one clip's), in creation order."""
        with self._lock:
            self._catch_up(self.clock())
            ids = self._clips.get(clip_id, []) if clip_id is not None else list(self._posts)
            return [copy.deepcopy(self._posts[i]) for i in ids]

    def complete_publish(self, post_id: str, url: str | None = None) -> dict[str, Any]:
        """Choppity finished publishing a scheduled/in-flight post: status published (+ time, url)."""
        with self._lock:
            now = self.clock()
            self._catch_up(now)
            post = self._posts[post_id]
            if post["status"] not in ("scheduled", *IN_FLIGHT):
                raise ValueError(f"post {post_id} is {post['status']}; use set_status() to force it")
            self._plans.pop(post_id, None)
            self._move(
                post,
                "published",
                now,
                published_at=int(now * 1000),
                published_url=url or _default_url(post["platform"]),
            )
            return copy.deepcopy(post)

    def fail_post(self, post_id: str, error: str) -> dict[str, Any]:
        """Choppity's publish attempt failed permanently: status failed + error."""
        with self._lock:
            now = self.clock()
            self._catch_up(now)
            post = self._posts[post_id]
            if post["status"] not in ("scheduled", *IN_FLIGHT):
                raise ValueError(f"post {post_id} is {post['status']}; use set_status() to force it")
            self._plans.pop(post_id, None)
            self._move(post, "failed", now, error=error)
            return copy.deepcopy(post)

    def set_status(self, post_id: str, status: str, **fields: Any) -> dict[str, Any]:
        """Force any known status (and extra fields) without lifecycle checks or webhooks."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        return self.force_status(post_id, status, **fields)

    def force_status(self, post_id: str, status: str, **fields: Any) -> dict[str, Any]:
        """Force any status string at all (e.g. a future ``archived``): no validation, no webhooks."""
        with self._lock:
            post = self._posts[post_id]
            self._move(post, status, self.clock(), emit=False, tidy=False, **fields)
            return copy.deepcopy(post)

    # ---- the lifecycle walk ----------------------------------------------------------------------

    def walk(self, lifecycle: Lifecycle | None) -> None:
        """Turn the automatic walk on (with these dwell times) or off (None)."""
        with self._lock:
            self.lifecycle = lifecycle
        self._ensure_threads()

    def tick(self) -> list[Transition]:
        """Advance, now, every post whose next stage is due on the fake clock; returns the steps made."""
        with self._lock:
            return self._catch_up(self.clock())

    def advance(self, post_id: str) -> dict[str, Any]:
        """Take one lifecycle step for a post now, dwell or not (works with the walk off too)."""
        with self._lock:
            now = self.clock()
            self._catch_up(now)
            post = self._posts[post_id]
            if post["status"] not in ("scheduled", *IN_FLIGHT):
                raise ValueError(f"post {post_id} is {post['status']}; nothing to advance")
            self._step(post, now)
            return copy.deepcopy(post)

    def plan_outcome(
        self,
        post_id: str,
        outcome: str,
        *,
        error: str | None = None,
        url: str | None = None,
        from_stage: str | None = None,
    ) -> None:
        """How a post's walk ends: ``published`` (optional url) or ``failed`` (optional error).

        `from_stage` makes a failure happen on leaving that stage (scheduled/queued/processing/
        uploading) instead of at the end of the walk.
        """
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}")
        if from_stage is not None and (outcome != "failed" or from_stage not in ("scheduled", *IN_FLIGHT)):
            raise ValueError("from_stage only applies to a failure, from scheduled or an in-flight stage")
        with self._lock:
            if post_id not in self._posts:
                raise KeyError(post_id)
            self._plans[post_id] = _Plan(outcome, error, url, from_stage)

    def fail_next_publish(self, error: str | None = None) -> None:
        """The next post accepted by POST /publish (now or scheduled) ends its walk failed."""
        with self._lock:
            self._publish_failures.append(error)

    def transitions(self, post_id: str | None = None) -> list[Transition]:
        """Recorded status changes (all posts, or one), oldest first."""
        with self._lock:
            return [t for t in self._transitions if post_id is None or t.post_id == post_id]

    def _due(self, post: dict[str, Any], life: Lifecycle) -> float | None:
        since = self._since.get(post["id"], self.clock())
        if post["status"] == "scheduled":
            at = post.get("scheduled_at")
            return max(since, at / 1000) if _number(at) else None
        if post["status"] in IN_FLIGHT:
            return since + life.dwell(post["status"])
        return None

    def _catch_up(self, now: float) -> list[Transition]:
        """Walk every due post up to `now`, in due-time order across posts (lock held)."""
        life = self.lifecycle
        if life is None:
            return []
        heap: list[tuple[float, int, str]] = []
        for order, (post_id, post) in enumerate(self._posts.items()):
            due = self._due(post, life)
            if due is not None and due <= now:
                heap.append((due, order, post_id))
        heapq.heapify(heap)
        made: list[Transition] = []
        while heap:
            due, order, post_id = heapq.heappop(heap)
            post = self._posts[post_id]
            made.append(self._step(post, due))
            following = self._due(post, life)
            if following is not None and following <= now:
                heapq.heappush(heap, (following, order, post_id))
        return made

    def _step(self, post: dict[str, Any], at: float) -> Transition:
        life = self.lifecycle or Lifecycle()
        status = post["status"]
        plan = self._plans.get(post["id"])
        if plan is not None and plan.outcome == "failed" and plan.from_stage == status:
            target = "failed"
        else:
            target = life.after(status) or (plan.outcome if plan is not None else "published")
        fields: dict[str, Any] = {}
        if target == "published":
            fields = {
                "published_at": int(at * 1000),
                "published_url": (plan.url if plan is not None else None) or _default_url(post["platform"]),
            }
        elif target == "failed":
            fields = {"error": (plan.error if plan is not None else None) or DEFAULT_ERRORS[post["platform"]]}
        if target in OUTCOMES:
            self._plans.pop(post["id"], None)
        return self._move(post, target, at, **fields)

    def _move(self, post: dict[str, Any], to: str, at: float, *, emit: bool = True, tidy: bool = True, **fields: Any) -> Transition:
        """Change a post's status (lock held): record it, drop stale fields, emit its webhook."""
        before = post["status"]
        post["status"] = to
        post.update(copy.deepcopy(fields))
        if tidy:
            for key, owner in STATUS_FIELDS.items():
                if to != owner:
                    post.pop(key, None)
        post["updated_at"] = int(at * 1000)
        self._since[post["id"]] = at
        transition = Transition(post["id"], before, to, at)
        self._transitions.append(transition)
        if emit and to in _EVENT_FOR:
            self._emit(_EVENT_FOR[to], post, at)
        return transition

    # ---- clip jobs -------------------------------------------------------------------------------

    def add_job(
        self,
        clips: Iterable[dict[str, Any]] | None = None,
        *,
        platforms: Iterable[str] = (),
        status: str = "done",
    ) -> dict[str, Any]:
        """Create a clip job (default: one clip, already done). Returns it with every clip's id.

        Each clip is ``{title, duration (s), score (0-1)}``. When the job is done its clips exist and
        get one draft per platform in `platforms`; a queued/processing job shows no clips until
        ``finish_job``.
        """
        if status not in JOB_STATUSES:
            raise ValueError(f"job status must be one of {JOB_STATUSES}")
        specs = list(clips) if clips is not None else [dict(DEFAULT_CLIP)]
        made: list[dict[str, Any]] = []
        for spec in specs:
            title, duration, score = spec.get("title"), spec.get("duration"), spec.get("score")
            if not isinstance(title, str) or not title.strip():
                raise ValueError("clip title must be a non-empty string")
            if not _number(duration) or duration <= 0:
                raise ValueError("clip duration must be a positive number of seconds")
            if not _number(score) or not 0 <= score <= 1:
                raise ValueError("clip score must be a number from 0 to 1")
            clip_id = str(uuid.uuid4())
            made.append(
                {
                    "id": clip_id,
                    "title": title,
                    "duration": float(duration),
                    "score": float(score),
                    "preview_url": f"https://choppity-media.s3.amazonaws.com/preview/{clip_id}.mp4",
                }
            )
        job: dict[str, Any] = {"job_id": str(uuid.uuid4()), "status": status, "created_at": self._now_ms(), "clips": made}
        with self._lock:
            self._jobs[job["job_id"]] = job
            self._job_platforms[job["job_id"]] = tuple(platforms)
            if status == "done":
                self._job_done(job)
            return copy.deepcopy(job)

    def finish_job(self, job_id: str) -> dict[str, Any]:
        """A queued/processing job is done: its clips appear, with their drafts."""
        with self._lock:
            job = self._jobs[job_id]
            if job["status"] == "done":
                raise ValueError(f"job {job_id} is already done")
            job["status"] = "done"
            self._job_done(job)
            return copy.deepcopy(job)

    def _job_done(self, job: dict[str, Any]) -> None:
        for clip in job["clips"]:
            self._clips.setdefault(clip["id"], [])
            for platform in self._job_platforms[job["job_id"]]:
                self.add_post(platform, clip_id=clip["id"])

    # ---- renders ---------------------------------------------------------------------------------

    def fail_next_render(self, error: str = DEFAULT_RENDER_ERROR) -> None:
        """The next render started ends in status error with this message."""
        with self._lock:
            self._render_failures.append(error)

    def render(self, render_id: str) -> dict[str, Any]:
        """What GET /v1/renders/:id would answer now, plus ``starts`` (renders begun for the clip)."""
        with self._lock:
            record = self._renders[render_id]
            return {**self._render_view(record, self.clock()), "starts": record.starts}

    def render_polls(self, render_id: str) -> list[float]:
        """Fake-clock times of every GET /v1/renders/:id that reached the fake for this id."""
        with self._lock:
            return list(self._render_polls.get(render_id, []))

    def cut_next_download(self, after_bytes: int, times: int = 1) -> None:
        """The next `times` file downloads stop after `after_bytes` body bytes and close the connection."""
        with self._lock:
            self._cuts.extend([after_bytes] * times)

    def downloads(self, render_id: str | None = None) -> list[Download]:
        """Copies of the file download records (all, or one render's), oldest first."""
        with self._lock:
            return [copy.copy(d) for d in self._downloads if render_id is None or d.render_id == render_id]

    def _render_state(self, record: _Render, now: float) -> str:
        if now < record.started + record.queued_s:
            return "queued"
        if now < record.started + record.queued_s + record.processing_s:
            return "processing"
        return "error" if record.error is not None else "done"

    def _render_view(self, record: _Render, now: float) -> dict[str, Any]:
        state = self._render_state(record, now)
        view: dict[str, Any] = {"render_id": record.render_id, "status": state}
        if state == "processing":
            elapsed = now - record.started - record.queued_s
            view["progress"] = round(min(1.0, max(0.0, elapsed / record.processing_s)), 3)
        elif state == "done":
            view["output_url"] = self._signed_url(record.render_id, now)
        elif state == "error":
            view["error"] = record.error
        return view

    def _signature(self, render_id: str, expires: int) -> str:
        return hmac.new(self._url_key, f"{render_id}.{expires}".encode(), hashlib.sha256).hexdigest()

    def _signed_url(self, render_id: str, now: float) -> str:
        expires = int(now) + RENDER_URL_TTL
        return f"{self.url}/files/render/{render_id}.mp4?exp={expires}&sig={self._signature(render_id, expires)}"

    def _start_render(self, body: Any, id: str) -> tuple[int, dict[str, Any]]:
        if id not in self._clips:
            raise _ApiError(404, "NOT_FOUND", f"Clip {id} not found")
        if body is not None and not isinstance(body, dict):
            raise _bad("Request body must be a JSON object")
        now = self.clock()
        current = self._renders.get(id)
        if current is not None:
            state = self._render_state(current, now)
            if state in ("queued", "processing"):
                return 202, {"render_id": id, "status": state}  # one render at a time per clip
        queued_s, processing_s = self.render_timing
        self._renders[id] = _Render(
            render_id=id,
            started=now,
            queued_s=queued_s,
            processing_s=processing_s,
            size=self.render_size,
            error=self._render_failures.pop(0) if self._render_failures else None,
            starts=(current.starts if current is not None else 0) + 1,
            had_output=current is not None and (current.had_output or current.error is None),
        )
        return 202, {"render_id": id, "status": "queued"}

    def _get_render(self, body: Any, id: str) -> tuple[int, dict[str, Any]]:
        now = self.clock()
        self._render_polls.setdefault(id, []).append(now)
        record = self._renders.get(id)
        if record is None:
            raise _ApiError(404, "NOT_FOUND", f"Render {id} not found")
        return 200, self._render_view(record, now)

    # ---- the render file (S3 in reality: no auth header, no rate limit, signed URL) --------------

    def _public(self, http_method: str, path: str) -> bool:
        return path.startswith("/files/")

    def _serve_public(self, http_method: str, path: str, query: dict[str, str], headers: dict[str, str]) -> Reply:
        match = _FILE_PATH.match(path)
        if http_method != "GET":
            return _s3_error(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
        if match is None:
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
        render_id = match["id"]
        expires, sig = query.get("exp", ""), query.get("sig", "")
        if not expires.isdigit() or not hmac.compare_digest(sig, self._signature(render_id, int(expires))):
            return _s3_error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match.")
        if self.clock() > int(expires):
            return _s3_error(403, "AccessDenied", "Request has expired")
        record = self._renders.get(render_id)
        if record is None or not (record.had_output or self._render_state(record, self.clock()) == "done"):
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
        size = record.size
        start, end, status = 0, size, 200
        out_headers = {"Accept-Ranges": "bytes"}
        wanted = headers.get("range")
        if wanted:
            parsed = _RANGE.match(wanted.strip())
            if parsed is None or (not parsed["start"] and not parsed["end"]):
                return _s3_error(416, "InvalidRange", "The requested range is not satisfiable")
            if parsed["start"]:
                start = int(parsed["start"])
                end = min(size, int(parsed["end"]) + 1) if parsed["end"] else size
            else:  # suffix range: the last N bytes
                start = max(0, size - int(parsed["end"]))
            if start >= size or start >= end:
                return _s3_error(416, "InvalidRange", "The requested range is not satisfiable")
            status = 206
            out_headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        out_headers["Content-Length"] = str(end - start)
        out_headers["ETag"] = f'"{hashlib.md5(f"{render_id}:{size}".encode()).hexdigest()}"'
        record_dl = Download(render_id, status, start, end - start)
        self._downloads.append(record_dl)
        cut = self._cuts.pop(0) if self._cuts else None
        stream = self._stream(record_dl, render_id, size, start, end, cut)
        return Reply(status, None, out_headers, content_type="video/mp4", stream=stream)

    def _stream(
        self, record: Download, render_id: str, size: int, start: int, end: int, cut: int | None
    ) -> Generator[bytes, None, None]:
        # Runs in the HTTP handler thread after the fake's lock is released: take it only to record.
        sent = 0
        for piece in render_bytes(render_id, size, start, end):
            if self._stopping.is_set():
                return
            if cut is not None and sent + len(piece) >= cut:
                piece = piece[: cut - sent]
                with self._lock:
                    record.bytes_sent = sent + len(piece)
                if piece:
                    yield piece
                return
            sent += len(piece)
            with self._lock:
                record.bytes_sent = sent
                record.complete = sent == record.length
            yield piece
            if self.download_rate:
                self._wait(len(piece) / self.download_rate)

    # ---- webhooks --------------------------------------------------------------------------------

    def deliver_webhooks(
        self,
        url: str,
        secret: str,
        *,
        events: Iterable[str] = POST_EVENTS,
        retries: int = 5,
        backoff: float = 0.05,
        timeout: float = 2.0,
        duplicate_rate: float = 0.0,
        reorder: bool = False,
    ) -> None:
        """Send signed webhooks for these post events to `url` from now on (until stop_webhooks).

        At least once: non-2xx, connection errors and timeouts (`timeout` s) are retried up to
        `retries` times, waiting backoff·2^n real seconds. `duplicate_rate` (0-1, seeded) sends an
        event twice; `reorder` sends each burst of events newest first. Signed with the fake clock.
        """
        wanted = frozenset(events)
        unknown = wanted - set(POST_EVENTS)
        if unknown:
            raise ValueError(f"unknown event types {sorted(unknown)}")
        if not 0 <= duplicate_rate <= 1:
            raise ValueError("duplicate_rate must be within 0..1")
        with self._lock:
            self._hooks = _Hooks(url, secret, wanted, retries, backoff, timeout, duplicate_rate, reorder)
        self._ensure_threads()

    def stop_webhooks(self) -> None:
        """Stop emitting webhooks and forget undelivered ones."""
        with self._lock:
            self._hooks = None
            with self._outbox_cv:
                self._outbox.clear()
                self._outbox_cv.notify_all()

    def duplicate_next(self, n: int = 1) -> None:
        """Deliver each of the next `n` events twice (same id, each copy signed afresh)."""
        with self._outbox_cv:
            self._duplicates_due += n

    def events(self, type: str | None = None) -> list[dict[str, Any]]:
        """Envelopes of the events emitted so far (delivered or not), oldest first."""
        with self._outbox_cv:
            return [copy.deepcopy(e) for e in self._events if type is None or e["type"] == type]

    def deliveries(self, event_id: str | None = None) -> list[Delivery]:
        """Every delivery attempt so far (all, or one event's), in the order they finished."""
        with self._outbox_cv:
            return [d for d in self._deliveries if event_id is None or d.event_id == event_id]

    def wait_for_deliveries(self, timeout: float = 10.0) -> None:
        """Block until nothing is queued, waiting to be retried or in flight (AssertionError on timeout)."""
        deadline = time.monotonic() + timeout
        with self._outbox_cv:
            while self._outbox or self._inflight:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"FakeChoppity: {len(self._outbox)} webhook deliveries still pending after {timeout}s"
                    )
                self._outbox_cv.wait(min(left, 0.05))

    def _emit(self, event_type: str, post: dict[str, Any], at: float) -> None:
        """Queue a post event for delivery (lock held; sending happens on the courier thread)."""
        hooks = self._hooks
        if hooks is None or event_type not in hooks.events:
            return
        data: dict[str, Any] = {
            "post_id": post["id"],
            "clip_id": post["clip_id"],
            "platform": post["platform"],
            "team_id": self.team_id,
            "status": post["status"],
        }
        for key in ("published_url", "error", "scheduled_at"):
            if key in post:
                data[key] = post[key]
        event_id = str(uuid.uuid4())
        body = make_event(event_type, data, event_id=event_id, created_ms=int(at * 1000))
        with self._outbox_cv:
            self._events.append(json.loads(body))
            copies = 1
            if self._duplicates_due > 0:
                self._duplicates_due -= 1
                copies = 2
            elif hooks.duplicate_rate and self._rng.random() < hooks.duplicate_rate:
                copies = 2
            due = time.monotonic()
            for n in range(copies):
                pending = _Pending(event_id, event_type, body, duplicate=n > 0)
                heapq.heappush(self._outbox, (due, next(self._seq), pending))
            self._outbox_cv.notify_all()

    def _next_batch(self) -> list[_Pending] | None:
        """Wait (outbox lock held) for the next due delivery, or a burst of them when reordering."""
        while not self._halt.is_set():
            if not self._outbox:
                self._outbox_cv.wait()
                continue
            wait = self._outbox[0][0] - time.monotonic()
            if wait > 0:
                self._outbox_cv.wait(wait)
                continue
            hooks = self._hooks
            if hooks is None or not hooks.reorder:
                return [heapq.heappop(self._outbox)[2]]
            # Let the rest of the burst arrive, then send it newest first: no ordering guarantee.
            deadline = time.monotonic() + REORDER_WINDOW
            while (left := deadline - time.monotonic()) > 0 and not self._halt.is_set():
                self._outbox_cv.wait(left)
            now = time.monotonic()
            batch: list[_Pending] = []
            while self._outbox and self._outbox[0][0] <= now:
                batch.append(heapq.heappop(self._outbox)[2])
            batch.reverse()
            return batch
        return None

    def _courier_loop(self) -> None:
        with httpx.Client() as client:
            while True:
                with self._outbox_cv:
                    batch = self._next_batch()
                    if batch is None:
                        return
                    self._inflight += len(batch)
                try:
                    for pending in batch:
                        self._attempt(client, pending)
                finally:
                    with self._outbox_cv:
                        self._inflight -= len(batch)
                        self._outbox_cv.notify_all()

    def _attempt(self, client: httpx.Client, pending: _Pending) -> None:
        """One delivery attempt, sent with no lock held; a failure is re-queued with backoff."""
        hooks = self._hooks
        if hooks is None or self._halt.is_set():
            return
        headers = webhook_headers(pending.body, hooks.secret, t=int(self.clock()))
        status: int | None = None
        error: str | None = None
        try:
            status = client.post(hooks.url, content=pending.body, headers=headers, timeout=hooks.timeout).status_code
        except Exception as exc:  # connection refused, reset, timeout, bad URL: all mean "try again"
            error = f"{type(exc).__name__}: {exc}"
        delivery = Delivery(pending.event_id, pending.type, pending.attempt, status, error, pending.duplicate, time.monotonic())
        with self._outbox_cv:
            self._deliveries.append(delivery)
            if not delivery.ok and pending.attempt <= hooks.retries and self._hooks is not None:
                due = time.monotonic() + hooks.backoff * 2 ** (pending.attempt - 1)
                retry = replace(pending, attempt=pending.attempt + 1)
                heapq.heappush(self._outbox, (due, next(self._seq), retry))

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
        # Every answer reflects the fake clock, whether or not the ticker has run yet.
        self._catch_up(self.clock())
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

    def _get_job(self, body: Any, id: str) -> tuple[int, dict[str, Any]]:
        job = self._jobs.get(id)
        if job is None:
            raise _ApiError(404, "NOT_FOUND", f"Job {id} not found")
        view = copy.deepcopy(job)
        if view["status"] != "done":
            view["clips"] = []  # clips appear only once the job is done
        return 200, view

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
        now = self.clock()
        if scheduled_at is not None:
            if not isinstance(scheduled_at, int) or isinstance(scheduled_at, bool):
                raise _bad("scheduled_at must be an integer (unix milliseconds)")
            if scheduled_at < int(now * 1000) + MIN_SCHEDULE_LEAD_MS:
                raise _bad("scheduled_at must be at least 5 minutes in the future")
            self._move(post, "scheduled", now, scheduled_at=scheduled_at)
        else:
            self._move(post, "queued", now)
        if self._publish_failures and id not in self._plans:
            self._plans[id] = _Plan("failed", self._publish_failures.pop(0))
        return 202, {"post": copy.deepcopy(post)}

    def _delete_post(self, body: Any, id: str) -> tuple[int, dict[str, Any]]:
        post = self._get(id)
        status = post["status"]
        if status in ("processing", "uploading"):
            raise _bad(
                f"Post is {status} and can no longer be cancelled: once a post moves to processing "
                "it cannot be pulled back"
            )
        if status not in CANCELLABLE:
            raise _bad(f"Post is {status} and can no longer be cancelled")
        self._plans.pop(id, None)
        self._move(post, "cancelled", self.clock())
        return 200, {"post": copy.deepcopy(post)}
