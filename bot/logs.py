"""Logging: text (default) or JSON lines, with the ids of the request, job and post in context.

`configure_logging(settings)` installs one handler on the root logger. Every record it handles
first passes two filters, in this order:

* `LogContextFilter` copies the current `log_context()` ids (request_id, post_id, job_id,
  job_kind, provider) onto the record;
* `SecretRedactingFilter` (bot.security) rewrites the message, traceback and stack with every
  secret replaced, before any formatter sees them.

`LOG_FORMAT=text` prints `2025-01-01 12:00:00,123 INFO bot.jobs: message [job=12 kind=x post=5]`
(the bracket only when ids are set; without them a line reads exactly as before).
`LOG_FORMAT=json` prints one JSON object a line: `ts` (ISO 8601 UTC, milliseconds), `level`,
`logger`, `message`, the context ids that are set, any `extra=` fields, and `exc` (the formatted
traceback). The formatters redact every string they add themselves (context ids, extra fields), so
nothing a filter cannot see reaches the output unredacted either.

Python warnings and uncaught exceptions (main thread and other threads) are logged through the same
handler, so they are redacted too and JSON output stays one object a line.

Context lives in a `contextvars.ContextVar`, so it follows a request through `await`, through
Starlette's `run_in_threadpool` (anyio copies the context), and into Bolt's listener threads via
`ContextThreadPoolExecutor`. Threads started with `threading.Thread` begin with an empty context.
"""

from __future__ import annotations

import contextvars
import json
import logging
import math
import re
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TextIO, TypeVar

from bot.security import SecretRedactingFilter

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from bot.config import Settings

# The ids a log line may carry, in the order they are printed, with their label in text lines.
CONTEXT_KEYS = ("request_id", "job_id", "job_kind", "post_id", "provider")
_TEXT_LABELS = {"request_id": "request", "job_id": "job", "job_kind": "kind", "post_id": "post",
                "provider": "provider"}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

REQUEST_ID_HEADER = "X-Request-Id"
# An incoming X-Request-Id is kept only when it is a short token of these characters (it is echoed
# in a header and printed in logs); anything else is replaced by a fresh id.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

ContextValue = str | int
_context: contextvars.ContextVar[Mapping[str, ContextValue]] = contextvars.ContextVar(
    "greenlight_log_context", default=MappingProxyType({})
)


# -- context -------------------------------------------------------------------------------------

@contextmanager
def log_context(**ids: ContextValue | None) -> Iterator[None]:
    """Add ids (request_id, post_id, job_id, job_kind, provider) to every log line inside the block.

    Nested blocks add to (and may override) the outer ids; None values are ignored. The previous
    context is restored on exit, also when the block raises.
    """
    unknown = sorted(set(ids) - set(CONTEXT_KEYS))
    if unknown:
        raise TypeError(f"log_context() takes only {', '.join(CONTEXT_KEYS)}; got {', '.join(unknown)}")
    merged = dict(_context.get())
    merged.update({key: value for key, value in ids.items() if value is not None})
    token = _context.set(MappingProxyType(merged))
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, ContextValue]:
    """The ids set by the enclosing `log_context()` blocks."""
    return dict(_context.get())


class LogContextFilter(logging.Filter):
    """Copy the current context ids onto each record (an id passed via `extra=` is kept as is)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate the record; never drops it."""
        for key, value in _context.get().items():
            if key not in record.__dict__:
                setattr(record, key, value)
        return True


_P = ParamSpec("_P")
_T = TypeVar("_T")


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """A ThreadPoolExecutor whose tasks run in a copy of the submitter's context.

    Bolt runs listeners in its `listener_executor`; a plain pool would run them with the worker
    thread's (empty) context, so their log lines would lose the request id.
    """

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        """Schedule `fn(*args, **kwargs)` to run in a copy of the current context."""
        context = contextvars.copy_context()

        def run() -> _T:
            return context.run(fn, *args, **kwargs)

        return super().submit(run)


# -- request ids -----------------------------------------------------------------------------------

def accept_request_id(incoming: str | None) -> str:
    """The incoming X-Request-Id when it is a short safe token, otherwise a new random id."""
    if incoming is not None and _SAFE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """ASGI middleware: each HTTP request runs in `log_context(request_id=…)` and answers with it.

    The id is the caller's `X-Request-Id` when that is a short safe token, else a fresh one; the
    response carries it in `X-Request-Id` either way.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = REQUEST_ID_HEADER.lower().encode("ascii")
        incoming = next((value.decode("latin-1") for name, value in scope.get("headers", ())
                         if name.lower() == header), None)
        request_id = accept_request_id(incoming)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != header]
                headers.append((header, request_id.encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        with log_context(request_id=request_id):
            await self.app(scope, receive, send_with_id)


# -- formatters ------------------------------------------------------------------------------------

def _context_of(record: logging.LogRecord) -> dict[str, Any]:
    return {key: record.__dict__[key] for key in CONTEXT_KEYS if record.__dict__.get(key) is not None}


def _no_redaction(text: str) -> str:
    return text


class TextFormatter(logging.Formatter):
    """The classic text line, with the context ids appended in brackets when any are set."""

    def __init__(self, redact: Callable[[str], str] = _no_redaction) -> None:
        super().__init__(TEXT_FORMAT)
        self._redact = redact

    def formatMessage(self, record: logging.LogRecord) -> str:
        """The formatted first line (the traceback, if any, follows on the next lines)."""
        line = super().formatMessage(record)
        ids = _context_of(record)
        if not ids:
            return line
        suffix = " ".join(f"{_TEXT_LABELS[key]}={value}" for key, value in ids.items())
        return f"{line} [{self._redact(suffix)}]"


# Attributes every LogRecord has (plus those formatters add): anything else came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName",
    # uvicorn repeats each message, with ANSI colours and unformatted, for its own formatter.
    "color_message",
}
_JSON_KEYS = frozenset({"ts", "level", "logger", "message", "exc", "stack", *CONTEXT_KEYS})
_MAX_DEPTH = 4


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line; every string in it passes through `redact`."""

    def __init__(self, redact: Callable[[str], str] = _no_redaction) -> None:
        super().__init__()
        self._redact = redact

    def _value(self, value: Any, depth: int = 0) -> Any:
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else str(value)
        if isinstance(value, str):
            return self._redact(value)
        if depth < _MAX_DEPTH and isinstance(value, Mapping):
            return {self._redact(str(k)): self._value(v, depth + 1) for k, v in value.items()}
        if depth < _MAX_DEPTH and isinstance(value, list | tuple | set | frozenset):
            return [self._value(v, depth + 1) for v in value]
        try:
            text = str(value)
        except Exception:  # noqa: BLE001 - a broken __str__ must not lose the line
            text = f"<unprintable {type(value).__name__}>"
        return self._redact(text)

    def format(self, record: logging.LogRecord) -> str:
        """The record as a single line of JSON."""
        created = datetime.fromtimestamp(record.created, tz=UTC)
        entry: dict[str, Any] = {
            "ts": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": self._redact(record.getMessage()),
        }
        for key, value in _context_of(record).items():
            entry[key] = self._value(value)
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and key not in _JSON_KEYS and not key.startswith("_"):
                entry[key] = self._value(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = self._redact(record.exc_text)
        if record.stack_info:
            entry["stack"] = self._redact(self.formatStack(record.stack_info))
        line = json.dumps(entry, ensure_ascii=False, default=str)
        # JSON leaves these unescaped, but line-splitting readers (Python's splitlines included)
        # treat them as line breaks: escape them so one record stays one line.
        return line.replace("\x85", "\\u0085").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


# -- setup -----------------------------------------------------------------------------------------

def make_handler(settings: Settings, stream: TextIO) -> logging.Handler:
    """A stream handler in the configured format that adds the context ids and redacts secrets."""
    redactor = SecretRedactingFilter(settings.secrets())
    handler = logging.StreamHandler(stream)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter(redactor.redact))
    else:
        handler.setFormatter(TextFormatter(redactor.redact))
    handler.addFilter(LogContextFilter())
    # On the handler, not a logger: logger filters skip records propagated from child loggers.
    # Same filter `bot.security.install_redaction` attaches; it runs before the formatter.
    handler.addFilter(redactor)
    return handler


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """Send every log record (ours, uvicorn's, the libraries') to stderr in the configured format."""
    logging.basicConfig(
        level=settings.log_level,
        handlers=[make_handler(settings, stream if stream is not None else sys.stderr)],
        force=True,
    )
    # httpx logs every request URL at INFO; keep it at WARNING unless debugging (no secrets are in
    # URLs, but the noise drowns our own logs).
    if settings.log_level != "DEBUG":
        logging.getLogger("httpx").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # Warnings and uncaught exceptions would otherwise be printed raw: unredacted, and breaking
    # the one-JSON-object-a-line contract.
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _log_uncaught(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, tb)
        return
    logging.getLogger("bot").critical("uncaught exception", exc_info=(kind, value, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return  # what threading's own hook does
    name = args.thread.name if args.thread is not None else "?"
    exc_info = (args.exc_type, args.exc_value, args.exc_traceback) if args.exc_value is not None else None
    logging.getLogger("bot").error("uncaught exception in thread %s", name, exc_info=exc_info)
