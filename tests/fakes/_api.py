"""What the fake provider APIs (Choppity, Reap) share: the loopback HTTP server, request records,
one fixed-window rate limit per key, injected faults and inspection helpers.

A subclass supplies the vendor's shape: how it authenticates, what its error and 429 bodies look
like, and its routes (`_route`).
"""

from __future__ import annotations

import copy
import io
import json
import math
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Protocol, Self
from urllib.parse import parse_qs, urlsplit


@dataclass
class Call:
    """One HTTP request as received (``json`` is the parsed body or None; header names lower-case)."""

    method: str
    path: str
    json: Any
    headers: dict[str, str]
    at: float
    status: int = 0
    query: dict[str, str] = field(default_factory=dict)


@dataclass
class Rule:
    """An injected fault for the next `times` requests matching a method and a path regex."""

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
class Reply:
    """What the fake answers.

    `body` goes out as JSON, unless `text` (plain text) or `content_type` (``str(body)`` with that
    type) says otherwise. With `stream`, the chunks are written as they are produced instead (the
    route sets ``Content-Length`` in `headers`); a stream that ends early leaves the body short and
    the connection closed, which is how a download cut midway looks to a client.
    """

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    text: bool = False
    drop: bool = False
    hang: float = 0.0
    content_type: str | None = None
    stream: Generator[bytes, None, None] | None = None


class FakeApiError(Exception):
    """Raised by a route to answer with the vendor's error shape."""

    def __init__(self, status: int, message: str, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class BodyStream:
    """A request body read piece by piece, never held whole (Content-Length or chunked transfer coding).

    A fake that must not buffer a large body (an upload endpoint) gets one of these instead of bytes;
    `complete` tells whether the body ended where the client said it would.
    """

    CHUNK = 64 * 1024

    def __init__(self, rfile: io.BufferedIOBase, headers: dict[str, str]) -> None:
        self._rfile = rfile
        self.chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        declared = None if self.chunked else max(0, int(headers.get("content-length") or 0))
        self.declared_length: int | None = declared
        self.received = 0
        self.complete = False
        self._pieces: Iterator[bytes] | None = None

    def chunks(self, size: int = CHUNK) -> Iterator[bytes]:
        """The body in pieces of at most `size` bytes; every call continues the same single pass."""
        if self._pieces is None:
            source = self._chunked_pieces(size) if self.chunked else self._sized_pieces(size)
            self._pieces = self._counted(source)
        return self._pieces

    def _counted(self, source: Iterator[bytes]) -> Iterator[bytes]:
        for piece in source:
            self.received += len(piece)
            yield piece

    def drain(self) -> None:
        """Read and discard whatever is left, so the client can read our answer."""
        for _ in self.chunks():
            pass

    def read_all(self) -> bytes:
        """The whole body (only for routes whose bodies are small)."""
        return b"".join(self.chunks())

    def _sized_pieces(self, size: int) -> Iterator[bytes]:
        remaining = self.declared_length or 0
        while remaining > 0:
            piece = self._rfile.read(min(size, remaining))
            if not piece:  # the client closed before sending what it announced
                return
            remaining -= len(piece)
            yield piece
        self.complete = True

    def _chunked_pieces(self, size: int) -> Iterator[bytes]:
        while True:
            line = self._rfile.readline(1024)
            if not line:
                return
            try:
                chunk_size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                return  # malformed framing: treat as a body that never completed
            if chunk_size == 0:
                while self._rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                self.complete = True
                return
            left = chunk_size
            while left > 0:
                piece = self._rfile.read(min(size, left))
                if not piece:
                    return
                left -= len(piece)
                yield piece
            self._rfile.readline(1024)  # the CRLF closing each chunk


StreamRoute = Callable[[BodyStream], "Reply"]


class ServedFake(Protocol):
    """What the HTTP plumbing needs from a fake.

    A fake may also define ``_stream_route(http_method, raw_path, headers) -> StreamRoute | None``: when
    it returns a callable, that request's body is handed over as a `BodyStream` instead of being read.
    """

    def _handle(self, http_method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Reply: ...

    def _wait(self, seconds: float) -> None: ...

    def _fault(self, status: int, code: str, message: str) -> Reply: ...


class FakeServer(ThreadingHTTPServer):
    """A loopback HTTP server on a free port that hands every request to its fake."""

    daemon_threads = True

    def __init__(self, fake: ServedFake) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that went away (timeouts are part of the tests)."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: FakeServer
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
        """Handle PATCH (no fake routes it: 404)."""
        self._serve()

    def _serve(self) -> None:
        fake = self.server.fake
        headers = {k.lower(): v for k, v in self.headers.items()}
        body = BodyStream(self.rfile, headers)
        streamer: Callable[[str, str, dict[str, str]], StreamRoute | None] | None = getattr(
            fake, "_stream_route", None
        )
        try:
            route = streamer(self.command, self.path, headers) if streamer is not None else None
            if route is not None:
                reply = route(body)
            else:
                reply = fake._handle(self.command, self.path, headers, body.read_all())
        except Exception:  # report bugs in the fake loudly, but keep serving
            traceback.print_exc(file=sys.stderr)
            reply = fake._fault(500, "FAKE_INTERNAL", traceback.format_exc())
        if reply.hang > 0:
            fake._wait(reply.hang)
        if reply.drop:
            self.close_connection = True
            if reply.stream is not None:
                reply.stream.close()
            return
        if reply.stream is not None:
            self._send_stream(reply)
            return
        if reply.content_type is not None:
            payload = str(reply.body).encode("utf-8")
            content_type = reply.content_type
        elif reply.text:
            payload = str(reply.body).encode("utf-8")
            content_type = "text/plain; charset=utf-8"
        else:
            payload = json.dumps(reply.body).encode("utf-8")
            content_type = "application/json; charset=utf-8"
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (ConnectionError, TimeoutError):
            pass

    def _send_stream(self, reply: Reply) -> None:
        # Chunk by chunk, so a 200 MB body never sits in memory; the generator is closed whatever
        # happens so it can record how far it got.
        assert reply.stream is not None
        self.close_connection = True
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type or "application/octet-stream")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            for chunk in reply.stream:
                self.wfile.write(chunk)
        except (ConnectionError, TimeoutError):
            pass
        finally:
            reply.stream.close()


def _take(rules: list[Rule], method: str, path: str) -> Rule | None:
    for rule in rules:
        if rule.matches(method, path):
            rule.times -= 1
            if rule.times <= 0:
                rules.remove(rule)
            return rule
    return None


class FakeHost:
    """Serving a fake on a free loopback port from a daemon thread: the lifecycle every fake shares."""

    url_suffix = ""  # appended to http://127.0.0.1:PORT to form `url`

    def __init__(self) -> None:
        self._stopping = threading.Event()
        self._server: FakeServer | None = None
        self._thread: threading.Thread | None = None

    def _root(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not running; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def url(self) -> str:
        """Base URL of the fake (``http://127.0.0.1:PORT`` plus the vendor's base path)."""
        return f"{self._root()}{self.url_suffix}"

    def start(self) -> Self:
        """Start serving on a free port in a daemon thread."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = FakeServer(self)  # type: ignore[arg-type]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=type(self).__name__, daemon=True
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

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)


class FakeApi(FakeHost):
    """A stateful fake HTTP API on 127.0.0.1 (random port), serving from a daemon thread.

    ``clock`` returns unix seconds; it drives the rate-limit window (and the subclass's timestamps).
    """

    def __init__(
        self,
        api_key: str,
        *,
        rate_limit_per_minute: int | None,
        window_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.rate_limit_per_minute = rate_limit_per_minute
        self.window_seconds = window_seconds
        self.clock = clock
        self.rate_limited_count = 0
        self._lock = threading.RLock()
        self._calls: list[Call] = []
        self._fail: list[Rule] = []
        self._delay: list[Rule] = []
        self._hang: list[Rule] = []
        self._drop: list[Rule] = []
        self._window_start: float | None = None
        self._window_count = 0

    # ---- what a vendor supplies ------------------------------------------------------------------

    def _authorized(self, headers: dict[str, str]) -> bool:
        raise NotImplementedError

    def _unauthorized(self, now: float) -> Reply:
        raise NotImplementedError

    def _rate_limited(self, headers: dict[str, str]) -> Reply:
        raise NotImplementedError

    def _error(self, status: int, code: str, message: str) -> Reply:
        raise NotImplementedError

    def _fault(self, status: int, code: str, message: str) -> Reply:
        """An injected (or internal) error; by default the vendor's normal error shape."""
        return self._error(status, code, message)

    def _route(self, http_method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any] | Reply:
        """Answer an authenticated, rate-limited request (lock held): ``(status, json)`` or a Reply."""
        raise NotImplementedError

    def _public(self, http_method: str, path: str) -> bool:
        """Whether a path is served without auth or rate limit (e.g. a presigned file URL)."""
        return False

    def _serve_public(self, http_method: str, path: str, query: dict[str, str], headers: dict[str, str]) -> Reply:
        """Answer a public path (lock held; a streamed body must not need the lock while it runs)."""
        raise NotImplementedError


    # ---- fault injection -------------------------------------------------------------------------

    def _add_fail(self, rule: Rule) -> None:
        with self._lock:
            self._fail.append(rule)

    def delay_next(self, method: str, path_regex: str, seconds: float, times: int = 1) -> None:
        """Sleep `seconds` BEFORE processing the next `times` matching requests."""
        with self._lock:
            self._delay.append(Rule(method.upper(), re.compile(path_regex), times, seconds=seconds))

    def hang_after_processing(self, method: str, path_regex: str, seconds: float, times: int = 1) -> None:
        """Apply the next `times` matching requests, then sleep `seconds` before answering."""
        with self._lock:
            self._hang.append(Rule(method.upper(), re.compile(path_regex), times, seconds=seconds))

    def drop_connection_next(
        self, method: str, path_regex: str, times: int = 1, after_processing: bool = True
    ) -> None:
        """Close the socket without answering (after applying the request, unless told otherwise)."""
        rule = Rule(method.upper(), re.compile(path_regex), times, after_processing=after_processing)
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

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0, message: str | None = None) -> None:
        """Poll `predicate` every 20 ms until true; AssertionError with context on timeout."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                with self._lock:
                    recent = [f"{c.method} {c.path} -> {c.status}" for c in self._calls[-15:]]
                what = message or getattr(predicate, "__name__", "predicate")
                raise AssertionError(
                    f"{type(self).__name__}.wait_for timed out after {timeout}s waiting for {what}; {recent}"
                )
            time.sleep(0.02)

    # ---- request handling ------------------------------------------------------------------------

    def _rate_headers(self, now: float) -> dict[str, str]:
        limit = self.rate_limit_per_minute
        start = self._window_start if self._window_start is not None else now
        reset = str(int(math.ceil(start + self.window_seconds)))
        if limit is None:
            return {"X-RateLimit-Limit": "1000000", "X-RateLimit-Remaining": "1000000", "X-RateLimit-Reset": reset}
        remaining = max(0, limit - self._window_count)
        return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining), "X-RateLimit-Reset": reset}

    def _handle(self, http_method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Reply:
        parts = urlsplit(raw_path)
        path = parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
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
        call = Call(method=http_method, path=path, query=query, json=parsed, headers=dict(headers), at=time.monotonic())
        with self._lock:
            self._calls.append(call)
            public = self._public(http_method, path)
            if public:
                # Not the vendor's API (in reality: S3): no credential, not counted in the rate window.
                reply, delay_rule = None, _take(self._delay, http_method, path)
                delay = delay_rule.seconds if delay_rule is not None else 0.0
            else:
                reply, delay = self._admit(call, headers)
        if reply is not None:
            return self._finish(call, reply)
        if delay > 0:
            self._wait(delay)
        with self._lock:
            now = self.clock()
            fail = _take(self._fail, http_method, path)
            if fail is not None:
                if fail.status == 429:
                    self.rate_limited_count += 1
                reply = self._fault(fail.status, fail.code, fail.message)
                if fail.retry_after is not None:
                    reply.headers["Retry-After"] = str(fail.retry_after)
                return self._finish(call, reply)
            drop = _take(self._drop, http_method, path)
            if drop is not None and not drop.after_processing:
                return self._finish(call, Reply(0, {}, drop=True))
            try:
                if public:
                    reply = self._serve_public(http_method, path, query, headers)
                else:
                    if body_error is not None:
                        raise FakeApiError(400, body_error, "BAD_REQUEST")
                    result = self._route(http_method, path, query, parsed)
                    reply = result if isinstance(result, Reply) else Reply(*result)
            except FakeApiError as exc:
                reply = self._error(exc.status, exc.code, exc.message)
            if not public:
                reply.headers.update(self._rate_headers(now))
            if drop is not None:
                reply.drop = True
            hang = _take(self._hang, http_method, path)
            if hang is not None:
                reply.hang = hang.seconds
            return self._finish(call, reply)

    def _admit(self, call: Call, headers: dict[str, str]) -> tuple[Reply | None, float]:
        """Auth + rate limit (lock held). Returns an early reply or the pre-processing delay."""
        now = self.clock()
        if not self._authorized(headers):
            return self._unauthorized(now), 0.0
        if self._window_start is None or now >= self._window_start + self.window_seconds:
            self._window_start = now
            self._window_count = 0
        limit = self.rate_limit_per_minute
        if limit is not None and self._window_count >= limit:
            self.rate_limited_count += 1
            out = self._rate_headers(now)
            out["Retry-After"] = str(max(1, int(math.ceil(self._window_start + self.window_seconds - now))))
            return self._rate_limited(out), 0.0
        self._window_count += 1
        delay = _take(self._delay, call.method, call.path)
        return None, delay.seconds if delay is not None else 0.0

    def _finish(self, call: Call, reply: Reply) -> Reply:
        with self._lock:
            call.status = reply.status if not reply.drop else 0
        return reply
