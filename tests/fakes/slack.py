"""A small, strict, stateful fake of the Slack Web API for end-to-end tests.

Point ``slack_sdk.WebClient(token=fake.token, base_url=fake.url)`` (or a Bolt ``App`` built with such a
client) at a running :class:`FakeSlack`. The fake keeps the messages, views and ephemerals the bot
creates, validates Block Kit with ``slack_sdk.models`` and answers like Slack does
(``{"ok": false, "error": ...}`` on HTTP 200), so tests can assert on what a human would see.

It is deliberately stricter than Slack in one place: ``text`` is required whenever ``blocks`` are sent
(``missing_fallback_text``), because the notification/accessibility fallback is easy to forget. Where
Slack's limits are fuzzy it takes the strict side (4,000-char ``text`` on chat.update, 12,000 characters
of block text per message).

Beyond messages and views it models what makes real Slack awkward: granted scopes (``missing_scope``),
channel membership (``not_in_channel``, ``conversations.join``), a revoked token, ``conversations.history``
with cursor pagination, the three-step external file upload (bytes streamed, never buffered), and answers
that are lost after the call took effect (HTTP 500/503, a dropped socket, an answer slower than the
client's timeout).
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import itertools
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from tests.fakes._api import BodyStream, FakeHost, Reply, StreamRoute

__all__ = [
    "DEFAULT_SCOPES",
    "Call",
    "Ephemeral",
    "FakeSlack",
    "FileUpload",
    "Message",
    "text_of",
]

BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
TEAM_ID = "T1"
TEAM_NAME = "Acme"
APP_ID = "A0GREENLIGHT"
# auth.test's `url` without the trailing slash; permalinks are built on it exactly as Slack builds them.
PERMALINK_BASE = "https://acme.slack.com"

# Everything Greenlight asks for in its manifest (and what conversations.history/join, uploads need).
DEFAULT_SCOPES: frozenset[str] = frozenset(
    {
        "chat:write",
        "chat:write.public",
        "commands",
        "users:read",
        "usergroups:read",
        "channels:history",
        "groups:history",
        "channels:join",
        "channels:read",
        "groups:read",
        "files:write",
    }
)
TOKEN_ERRORS = frozenset({"token_revoked", "invalid_auth", "account_inactive", "token_expired"})
LOST_ANSWERS = frozenset({"500", "503", "drop", "slow"})

# Scope each method needs; methods not listed (views.*, auth.test, chat.getPermalink) need none.
_METHOD_SCOPES: dict[str, str] = {
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.delete": "chat:write",
    "chat.postEphemeral": "chat:write",
    "conversations.join": "channels:join",
    "users.info": "users:read",
    "usergroups.users.list": "usergroups:read",
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
}
# (public channel scope, private channel scope) for methods whose scope depends on the channel type.
_CHANNEL_TYPE_SCOPES: dict[str, tuple[str, str]] = {
    "conversations.history": ("channels:history", "groups:history"),
    "conversations.replies": ("channels:history", "groups:history"),
    "conversations.info": ("channels:read", "groups:read"),
}

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_TEXT = 40_000
MAX_VIEW_BYTES = 250_000
RESPONSE_URL_MAX_USES = 5

# Arguments that slack_sdk (or a form-encoded caller) may send as JSON strings.
_JSON_ARGS = frozenset({"blocks", "attachments", "view", "metadata", "files"})

_TZ_LABELS = {
    "CET": "Central European Time",
    "CEST": "Central European Summer Time",
    "EST": "Eastern Standard Time",
    "EDT": "Eastern Daylight Time",
    "CST": "Central Standard Time",
    "CDT": "Central Daylight Time",
    "PST": "Pacific Standard Time",
    "PDT": "Pacific Daylight Time",
    "IST": "India Standard Time",
    "GMT": "Greenwich Mean Time",
    "BST": "British Summer Time",
    "UTC": "Coordinated Universal Time",
    "JST": "Japan Standard Time",
}


# --------------------------------------------------------------------------------------------------
# Public records
# --------------------------------------------------------------------------------------------------


@dataclass
class Call:
    """One Web API request as the fake received it (JSON-string arguments already decoded)."""

    method: str
    args: dict[str, Any]
    at: float
    http_status: int = 200
    error: str | None = None
    lost: str | None = None  # set when the call was applied but its answer was lost (lose_answer_next)
    answered_at: float | None = None  # time.monotonic() when the answer was ready (after any latency)


@dataclass
class Message:
    """A channel message (top-level or thread reply) as currently stored."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None
    metadata: dict[str, Any] | None = None
    updates: int = 0
    user: str = BOT_USER_ID
    reply_broadcast: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_reply(self) -> bool:
        """True for a thread reply (not the parent)."""
        return self.thread_ts is not None and self.thread_ts != self.ts


@dataclass
class Ephemeral:
    """An ephemeral message shown to one user (never part of channel history)."""

    channel: str
    user: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None


@dataclass
class FileUpload:
    """A file started with files.getUploadURLExternal, as far as it got.

    ``length`` is what the caller announced; ``size``/``sha256`` describe the accepted upload (None until
    one arrived whole); ``uploaded_bytes`` counts what the last upload attempt actually sent.
    """

    id: str
    filename: str
    length: int
    title: str | None = None
    alt_txt: str | None = None
    snippet_type: str | None = None
    size: int | None = None
    sha256: str | None = None
    uploaded_bytes: int = 0
    upload_attempts: int = 0
    completed: bool = False
    channel: str | None = None
    thread_ts: str | None = None
    message_ts: str | None = None
    initial_comment: str | None = None

    @property
    def uploaded(self) -> bool:
        """True once a complete upload of exactly ``length`` bytes arrived."""
        return self.size is not None


@dataclass
class _ResponseUrl:
    channel: str | None
    message_ts: str | None
    user: str | None
    uses: int = 0


@dataclass
class _FailRule:
    error: str
    status: int
    retry_after: float | None
    times: int
    where: Callable[[dict[str, Any]], bool] | None = None


@dataclass
class _LostRule:
    how: str
    seconds: float
    times: int
    where: Callable[[dict[str, Any]], bool] | None = None


@dataclass
class _UploadFailRule:
    status: int
    drop_after_bytes: int | None
    times: int


class _SlackError(Exception):
    def __init__(self, error: str, detail: str | None = None, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.detail = detail
        self.extra = extra  # further top-level fields of the error body (missing_scope's needed/provided)


class _MultipartError(Exception):
    """The upload's multipart body is malformed or carries no file part."""


_Reply = Reply


# --------------------------------------------------------------------------------------------------
# Rendering helper
# --------------------------------------------------------------------------------------------------

_SKIP_KEYS = frozenset({"options", "option_groups", "confirm", "placeholder", "initial_options"})


def _collect_text(node: Any, out: list[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _collect_text(item, out)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    text = node.get("text")
    if kind in ("plain_text", "mrkdwn", "markdown", "text") and isinstance(text, str):
        out.append(text)
    elif kind == "link" and isinstance(node.get("url"), str):
        out.append(text if isinstance(text, str) else node["url"])
    elif kind == "user" and isinstance(node.get("user_id"), str):
        out.append(f"<@{node['user_id']}>")
    elif kind == "channel" and isinstance(node.get("channel_id"), str):
        out.append(f"<#{node['channel_id']}>")
    elif kind == "emoji" and isinstance(node.get("name"), str):
        out.append(f":{node['name']}:")
    for key, value in node.items():
        if key in _SKIP_KEYS or (key == "text" and isinstance(value, str)):
            continue
        if isinstance(value, dict | list):
            _collect_text(value, out)


def text_of(obj: Message | Ephemeral | dict[str, Any] | list[dict[str, Any]] | None) -> str:
    """All human-visible text of a message/view/response body's blocks, newline-joined.

    Walks section text and fields, headers, context elements, button labels, rich text, markdown
    blocks and (for views) title/submit/close. Select options, confirm dialogs and placeholders are
    skipped. Falls back to the plain ``text`` when there are no blocks.
    """
    if obj is None:
        return ""
    if isinstance(obj, list):
        parts: list[str] = []
        _collect_text(obj, parts)
        return "\n".join(parts)
    if isinstance(obj, Message | Ephemeral):
        blocks: Any = obj.blocks
        fallback = obj.text
        extra: list[Any] = []
    else:
        blocks = obj.get("blocks") or []
        raw_text = obj.get("text")
        fallback = raw_text if isinstance(raw_text, str) else ""
        extra = [obj[k] for k in ("title", "submit", "close") if isinstance(obj.get(k), dict)]
    parts = []
    _collect_text(extra, parts)
    _collect_text(blocks, parts)
    if not blocks and fallback:
        parts.append(fallback)
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------------


def _validate_blocks(blocks: Any, limit: int, error: str) -> list[dict[str, Any]]:
    """Validate a list of Block Kit blocks; raise _SlackError(error, detail) on the first problem."""
    if not isinstance(blocks, list):
        raise _SlackError(error, "blocks must be a JSON array")
    if len(blocks) > limit:
        raise _SlackError(error, f"no more than {limit} blocks allowed (got {len(blocks)})")
    block_ids: set[str] = set()
    for index, raw in enumerate(blocks):
        where = f"blocks[{index}]"
        if not isinstance(raw, dict):
            raise _SlackError(error, f"{where} must be an object")
        kind = raw.get("type")
        try:
            parsed = Block.parse(copy.deepcopy(raw))
            if parsed is None:
                raise _SlackError(error, f"{where}: unknown block type {kind!r}")
            normalised = parsed.to_dict()
        except SlackObjectFormationError as exc:
            raise _SlackError(error, f"{where} ({kind}): {exc}") from exc
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise _SlackError(error, f"{where} ({kind}): malformed block: {exc!r}") from exc
        raw_elements = raw.get("elements")
        parsed_elements = normalised.get("elements")
        if isinstance(raw_elements, list) and (
            not isinstance(parsed_elements, list)
            or len(raw_elements) != len(parsed_elements)
            or any(e is None for e in parsed_elements)
        ):
            raise _SlackError(error, f"{where} ({kind}): unknown or invalid element type")
        for key in ("accessory", "element"):
            if raw.get(key) is not None and not isinstance(normalised.get(key), dict):
                raise _SlackError(error, f"{where} ({kind}): unknown or invalid {key} type")
        block_id = raw.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or not block_id:
                raise _SlackError(error, f"{where}: block_id must be a non-empty string")
            if block_id in block_ids:
                raise _SlackError(error, f"{where}: duplicate block_id {block_id!r}")
            block_ids.add(block_id)
        action_ids: set[str] = set()
        elements = list(raw_elements) if isinstance(raw_elements, list) else []
        for key in ("accessory", "element"):
            if isinstance(raw.get(key), dict):
                elements.append(raw[key])
        for element in elements:
            action_id = element.get("action_id") if isinstance(element, dict) else None
            if action_id is None:
                continue
            if action_id in action_ids:
                raise _SlackError(error, f"{where}: duplicate action_id {action_id!r}")
            action_ids.add(action_id)
    return copy.deepcopy(blocks)


def _validate_text(
    args: dict[str, Any], blocks_given: bool, *, required: bool = True, limit: int = MAX_TEXT
) -> str | None:
    text = args.get("text")
    if text is not None and not isinstance(text, str):
        raise _SlackError("invalid_arguments", "text must be a string")
    if blocks_given and not text:
        raise _SlackError("missing_fallback_text", "text is required alongside blocks (fake's rule)")
    if required and not text and not blocks_given:
        raise _SlackError("no_text")
    if text is not None and len(text) > limit:
        raise _SlackError("msg_too_long", f"text exceeds {limit} characters")
    return text


def _blocks_text_length(node: Any) -> int:
    """Characters of every text string in blocks, options and confirm dialogs included (the strict count)."""
    if isinstance(node, list):
        return sum(_blocks_text_length(item) for item in node)
    if not isinstance(node, dict):
        return 0
    total = len(node["text"]) if isinstance(node.get("text"), str) else 0
    return total + sum(_blocks_text_length(v) for v in node.values() if isinstance(v, dict | list))


def _check_blocks_text(blocks: list[dict[str, Any]], limit: int) -> None:
    # Slack's undocumented cumulative limit (bolt-js #2509, #2867): every block can be within its own
    # limit and the message still fails once all of its text together passes ~12k characters.
    total = _blocks_text_length(blocks)
    if total > limit:
        raise _SlackError("msg_blocks_too_long", f"blocks carry {total} characters of text (limit {limit})")


def _truthy(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True")


def _parse_ts(value: Any, error: str) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        parsed = Decimal(str(value))
    except InvalidOperation as exc:
        raise _SlackError(error, f"not a timestamp: {value!r}") from exc
    if not parsed.is_finite() or parsed < 0:
        raise _SlackError(error, f"not a timestamp: {value!r}")
    return parsed


def _encode_cursor(ts: str) -> str:
    # Slack's history cursors are base64 of "next_ts:<ts without dot>"; ours keep the dot for simplicity.
    return base64.b64encode(f"next_ts:{ts}".encode()).decode()


def _decode_cursor(cursor: str) -> Decimal:
    try:
        kind, _, ts = base64.b64decode(cursor, validate=True).decode().partition(":")
        if kind != "next_ts":
            raise ValueError(kind)
        return Decimal(ts)
    except (binascii.Error, UnicodeDecodeError, ValueError, InvalidOperation) as exc:
        raise _SlackError("invalid_cursor", f"cannot decode cursor {cursor!r}") from exc


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        number = int(str(value))
    except ValueError:
        return None
    return number if number > 0 else None


_DISPOSITION_NAME = re.compile(r'\bname="?([^";]*)"?', re.IGNORECASE)


def _is_file_part(head: str) -> bool:
    for line in head.split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-disposition":
            found = _DISPOSITION_NAME.search(value)
            return "filename=" in value.lower() or (found is not None and found.group(1) == "file")
    return False


def _multipart_file(pieces: Iterator[bytes], boundary: bytes) -> Iterator[bytes]:
    """The bytes of the first file part of a multipart body, streamed; raises _MultipartError.

    Only one incoming piece plus a boundary's length is ever buffered, so a large file costs no memory.
    """
    delimiter = b"--" + boundary
    marker = b"\r\n" + delimiter
    buf = bytearray()

    def fill() -> bool:
        piece = next(pieces, None)
        if piece is None:
            return False
        buf.extend(piece)
        return True

    while (start := buf.find(delimiter)) < 0:
        del buf[: max(0, len(buf) - len(delimiter))]  # preamble
        if not fill():
            raise _MultipartError("no multipart boundary in the body")
    del buf[: start + len(delimiter)]
    found = False
    while True:
        while len(buf) < 2:
            if not fill():
                raise _MultipartError("multipart body ends without a closing boundary")
        if buf[:2] == b"--":
            break
        while (end := buf.find(b"\r\n\r\n")) < 0:
            if len(buf) > 16_384 or not fill():
                raise _MultipartError("malformed multipart part headers")
        wanted = not found and _is_file_part(bytes(buf[:end]).decode("latin-1"))
        del buf[: end + 4]
        while (stop := buf.find(marker)) < 0:
            spare = len(buf) - (len(marker) - 1)  # a boundary may straddle two pieces
            if spare > 0:
                if wanted:
                    yield bytes(buf[:spare])
                del buf[:spare]
            if not fill():
                raise _MultipartError("multipart body ends inside a part")
        if wanted and stop:
            yield bytes(buf[:stop])
        del buf[: stop + len(marker)]
        found = found or wanted
    if not found:
        raise _MultipartError("multipart body has no file part")


def _validate_metadata(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _SlackError("invalid_metadata_format", "metadata must be an object")
    if raw == {}:
        return {}
    if not isinstance(raw.get("event_type"), str) or not raw["event_type"]:
        raise _SlackError("invalid_metadata_format", "metadata.event_type must be a non-empty string")
    if not isinstance(raw.get("event_payload"), dict):
        raise _SlackError("invalid_metadata_format", "metadata.event_payload must be an object")
    return copy.deepcopy(raw)


def _validate_view(raw: Any, *, allowed_types: Iterable[str]) -> dict[str, Any]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise _SlackError("invalid_arguments", f"view is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise _SlackError("invalid_arguments", "view must be an object")
    kinds = tuple(allowed_types)
    if raw.get("type") not in kinds:
        raise _SlackError("invalid_arguments", f"view.type must be one of {kinds}, got {raw.get('type')!r}")
    if len(json.dumps(raw)) > MAX_VIEW_BYTES:
        raise _SlackError("view_too_large")
    try:
        View(**copy.deepcopy(raw)).to_dict()
    except SlackObjectFormationError as exc:
        raise _SlackError("invalid_arguments", f"view: {exc}") from exc
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise _SlackError("invalid_arguments", f"view: malformed: {exc!r}") from exc
    blocks = raw.get("blocks")
    _validate_blocks(blocks if blocks is not None else [], MAX_VIEW_BLOCKS, "invalid_arguments")
    if raw["type"] == "modal":
        if not isinstance(raw.get("title"), dict):
            raise _SlackError("invalid_arguments", "modal view needs a title")
        has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks or [])
        if has_input and not raw.get("submit"):
            raise _SlackError("invalid_arguments", "must define submit to use input block")
    return copy.deepcopy(raw)


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _tz_fields(tz: str) -> dict[str, Any]:
    now = datetime.now(ZoneInfo(tz))
    offset = now.utcoffset()
    abbr = now.tzname() or tz
    return {
        "tz": tz,
        "tz_label": _TZ_LABELS.get(abbr, abbr),
        "tz_offset": int(offset.total_seconds()) if offset is not None else 0,
    }


# --------------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------------------------------


class FakeSlack(FakeHost):
    """Stateful fake Slack Web API on 127.0.0.1 (random port); see module docstring."""

    # Text limits, strict side of Slack (instances or subclasses may lower them for a test).
    MAX_POST_TEXT = MAX_TEXT  # chat.postMessage / postEphemeral `text`
    MAX_UPDATE_TEXT = 4_000  # chat.update `text`: its msg_too_long error documents 4,000
    MAX_BLOCKS_TEXT = 12_000  # all text in one message's blocks (undocumented msg_blocks_too_long)
    HISTORY_DEFAULT_LIMIT = 100
    HISTORY_MAX_LIMIT = 999
    SLOW_ANSWER_SECONDS = 35.0  # lose_answer_next(how="slow") default: past WebClient's 30 s timeout

    def __init__(self, token: str = "xoxb-test-token") -> None:
        super().__init__()
        self.token = token
        self.trigger_ttl: float = 3.0
        self.ratelimited_count = 0
        self._lock = threading.RLock()
        self._channels: dict[str, dict[str, Any]] = {}
        self._users: dict[str, dict[str, Any]] = {}
        self._usergroups: dict[str, list[str]] = {}
        self._scopes: set[str] = set(DEFAULT_SCOPES)
        self._reset_runtime_state()
        self.add_channel("C0REVIEW", name="greenlight-review")
        self.add_user("U_ANA", name="ana", tz="Europe/Berlin")
        self.add_user("U_BOB", name="bob", tz="America/New_York")
        self.add_user("U_CAROL", name="carol", tz="Asia/Kolkata")

    def _reset_runtime_state(self) -> None:
        self._calls: list[Call] = []
        self._messages: dict[tuple[str, str], Message] = {}
        self._ephemerals: list[Ephemeral] = []
        self._views: dict[str, dict[str, Any]] = {}
        self._closed_views: set[str] = set()
        self._external_ids: dict[str, str] = {}
        self._home: dict[str, str] = {}
        self._triggers: dict[str, tuple[float, bool]] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._responses: list[tuple[str, dict[str, Any]]] = []
        self._fail_rules: dict[str, list[_FailRule]] = {}
        self._delays: dict[str, float] = {}
        self._drops: dict[str, list[bool]] = {}
        self._post_rate: tuple[float, float] | None = None
        self._buckets: dict[str, tuple[float, float]] = {}
        self._ts_counter = itertools.count(1)
        self._last_ts_micros = 0
        self._view_counter = itertools.count(1)
        self._trigger_counter = itertools.count(1)
        self._hash_counter = itertools.count(1)
        self.ratelimited_count = 0
        self._token_error: str | None = None
        self._latency = 0.0
        self._lost: dict[str, list[_LostRule]] = {}
        self._files: dict[str, FileUpload] = {}
        self._file_counter = itertools.count(1)
        self._upload_faults: list[_UploadFailRule] = []

    # ---- lifecycle (start/stop/with: FakeHost) --------------------------------------------------------

    url_suffix = "/api/"  # `url` is the base URL for ``WebClient(base_url=...)``

    def reset(self) -> None:
        """Forget calls, messages, views, files, triggers, responses, faults, latency and a revoked token.

        Keeps the directory: channels (and the bot's membership), users, groups and granted scopes.
        """
        with self._lock:
            self._reset_runtime_state()

    # ---- directory setup -------------------------------------------------------------------------

    def add_channel(
        self, channel_id: str, name: str | None = None, *, is_private: bool = False, bot_member: bool = True
    ) -> None:
        """Make a channel known (chat.* into unknown channels fail with channel_not_found).

        With ``bot_member=False`` the bot is not in it: history reads answer ``not_in_channel`` and posts
        need ``chat:write.public`` (public channels) or an invite (private ones, see set_bot_member).
        """
        with self._lock:
            self._channels[channel_id] = {
                "id": channel_id,
                "name": name or channel_id.lower(),
                "is_channel": not is_private,
                "is_group": is_private,
                "is_private": is_private,
                "is_im": False,
                "is_archived": False,
                "is_member": bot_member,
            }

    def set_bot_member(self, channel_id: str, member: bool = True) -> None:
        """Invite the bot to a channel, or remove it (a kick, or someone leaving it for the bot)."""
        with self._lock:
            self._channels[channel_id]["is_member"] = member

    def is_bot_member(self, channel_id: str) -> bool:
        """Whether the bot is currently in the channel."""
        with self._lock:
            return bool(self._channels[channel_id]["is_member"])

    def add_user(
        self,
        user_id: str,
        name: str | None = None,
        tz: str = "Europe/Berlin",
        *,
        real_name: str | None = None,
        is_bot: bool = False,
        deleted: bool = False,
        team_id: str = TEAM_ID,
    ) -> None:
        """Make a user known to users.info; tz is an IANA zone (validated now).

        A ``team_id`` other than the workspace's (``T1``) makes a Slack Connect user from another org.
        """
        ZoneInfo(tz)
        handle = name or user_id.lower().removeprefix("u_")
        with self._lock:
            self._users[user_id] = {
                "id": user_id,
                "name": handle,
                "real_name": real_name or handle.capitalize(),
                "tz": tz,
                "is_bot": is_bot,
                "deleted": deleted,
                "team_id": team_id,
            }

    def add_message(
        self,
        channel: str,
        text: str,
        *,
        user: str = "U_ANA",
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
    ) -> str:
        """Post a message as a human (so history has more than the bot's); returns its ts."""
        with self._lock:
            if channel not in self._channels:
                raise KeyError(channel)
            parent = self._check_thread(channel, thread_ts)
            ts = self._next_ts()
            self._messages[(channel, ts)] = Message(
                channel=channel, ts=ts, text=text, thread_ts=parent, user=user,
                reply_broadcast=reply_broadcast,
            )
            return ts

    # ---- scopes & token --------------------------------------------------------------------------

    def set_scopes(self, scopes: Iterable[str]) -> None:
        """Grant exactly these bot scopes (initially DEFAULT_SCOPES); other methods get missing_scope."""
        with self._lock:
            self._scopes = set(scopes)

    @property
    def scopes(self) -> frozenset[str]:
        """The currently granted bot scopes."""
        with self._lock:
            return frozenset(self._scopes)

    def revoke_token(self, error: str = "token_revoked") -> None:
        """Every Web API call (auth.test included) answers `error` until restore_token()."""
        if error not in TOKEN_ERRORS:
            raise ValueError(f"error must be one of {sorted(TOKEN_ERRORS)}, not {error!r}")
        with self._lock:
            self._token_error = error

    def restore_token(self) -> None:
        """Undo revoke_token()."""
        with self._lock:
            self._token_error = None

    def add_usergroup(self, usergroup_id: str, users: Iterable[str]) -> None:
        """Define a user group for usergroups.users.list."""
        with self._lock:
            self._usergroups[usergroup_id] = list(users)

    # ---- fault injection -------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        error: str = "ratelimited",
        status: int = 200,
        retry_after: float | None = None,
        times: int = 1,
        where: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        """Answer the next `times` calls of `method` (those whose arguments satisfy `where`, when
        given) with an error and no side effect.

        With ``retry_after`` set (and status left at 200) the answer is HTTP 429 with ``Retry-After``.
        """
        if retry_after is not None and status == 200:
            status = 429
        with self._lock:
            self._fail_rules.setdefault(method, []).append(_FailRule(error, status, retry_after, times, where))

    def delay(self, method: str, seconds: float) -> None:
        """Sleep `seconds` before processing every call of `method`; 0 clears it."""
        with self._lock:
            if seconds > 0:
                self._delays[method] = seconds
            else:
                self._delays.pop(method, None)

    def drop_connection_next(self, method: str, times: int = 1, *, after_processing: bool = False) -> None:
        """Close the socket without answering the next `times` calls of `method`.

        With ``after_processing=True`` the call takes effect first (e.g. the message IS posted),
        which is how a retried chat.postMessage ends up posting twice.
        """
        with self._lock:
            self._drops.setdefault(method, []).extend([after_processing] * times)

    def set_post_rate_limit(self, per_second: float | None = 1.0, burst: int = 3) -> None:
        """Token-bucket limit for chat.postMessage per channel; None disables."""
        with self._lock:
            self._post_rate = None if per_second is None else (float(per_second), float(burst))
            self._buckets.clear()

    def latency(self, seconds: float) -> None:
        """Make every Web API call take `seconds` longer (before it is processed); 0 clears it.

        Calls sleep outside the fake's lock, so concurrent calls overlap as they would against Slack.
        """
        with self._lock:
            self._latency = max(0.0, float(seconds))

    def lose_answer_next(
        self, method: str, times: int = 1, how: str = "500", seconds: float | None = None,
        where: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        """Apply the next `times` calls of `method`, then lose the answer; the caller never learns.

        ``how``: ``"500"``/``"503"`` answer that HTTP status with a Slack-like error body; ``"drop"`` closes
        the socket without answering; ``"slow"`` sends the real answer only after ``seconds`` (default
        SLOW_ANSWER_SECONDS, meant to be longer than the client's timeout).
        """
        if how not in LOST_ANSWERS:
            raise ValueError(f"how must be one of {sorted(LOST_ANSWERS)}, not {how!r}")
        wait = self.SLOW_ANSWER_SECONDS if seconds is None else float(seconds)
        with self._lock:
            self._lost.setdefault(method, []).append(_LostRule(how, wait, times, where))

    def fail_upload_next(
        self, status: int = 500, *, times: int = 1, drop_after_bytes: int | None = None
    ) -> None:
        """Make the next `times` uploads to an upload_url fail without storing anything.

        They answer HTTP `status`, or with ``drop_after_bytes`` the socket closes after that many bytes.
        """
        with self._lock:
            self._upload_faults.append(_UploadFailRule(status, drop_after_bytes, times))

    # ---- triggers & response urls ----------------------------------------------------------------

    def issue_trigger(self) -> str:
        """A fresh trigger_id, valid once for views.open/views.push within ``trigger_ttl`` seconds."""
        trigger = f"{next(self._trigger_counter)}.{secrets.token_hex(8)}"
        with self._lock:
            self._triggers[trigger] = (time.monotonic(), False)
        return trigger

    def response_url(
        self, channel: str | None = None, message_ts: str | None = None, user: str | None = None
    ) -> str:
        """Issue a response_url sink; bound to a message it honours replace_original/delete_original."""
        hook = secrets.token_hex(8)
        with self._lock:
            self._response_urls[hook] = _ResponseUrl(channel, message_ts, user)
        return f"{self._root()}/response/{hook}"

    def close_view(self, view_id: str) -> None:
        """Mark a modal as closed by the user (it disappears from open_views())."""
        with self._lock:
            if view_id not in self._views:
                raise KeyError(view_id)
            self._closed_views.add(view_id)

    # ---- inspection ------------------------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[Call]:
        """Copies of received Web API calls, optionally only one method."""
        with self._lock:
            return [copy.deepcopy(c) for c in self._calls if method is None or c.method == method]

    def count(self, method: str, *, ok: bool | None = None) -> int:
        """How many calls of `method` arrived; ``ok=True``/``False`` counts only successes/failures."""
        with self._lock:
            return sum(
                1 for c in self._calls if c.method == method and (ok is None or (c.error is None) == ok)
            )

    def files(self) -> list[FileUpload]:
        """Copies of every file started with files.getUploadURLExternal, oldest first."""
        with self._lock:
            return [copy.deepcopy(f) for f in self._files.values()]

    def file(self, file_id: str) -> FileUpload | None:
        """One file record or None."""
        with self._lock:
            found = self._files.get(file_id)
            return copy.deepcopy(found) if found is not None else None

    def permalink(self, channel: str, ts: str) -> str:
        """The permalink chat.getPermalink gives for a message (Slack's format: p + ts without the dot)."""
        with self._lock:
            msg = self._messages.get((channel, ts))
            if msg is None:
                raise KeyError((channel, ts))
            return self._permalink(msg)

    def messages(self, channel: str = "C0REVIEW") -> list[Message]:
        """Top-level messages of a channel, oldest first."""
        with self._lock:
            return [
                copy.deepcopy(m) for m in self._messages.values() if m.channel == channel and not m.is_reply
            ]

    def all_messages(self, channel: str = "C0REVIEW") -> list[Message]:
        """Every message of a channel, thread replies included, oldest first."""
        with self._lock:
            found = [copy.deepcopy(m) for m in self._messages.values() if m.channel == channel]
        return sorted(found, key=lambda m: float(m.ts))

    def message(self, channel: str, ts: str) -> Message | None:
        """One message (top-level or reply) or None."""
        with self._lock:
            found = self._messages.get((channel, ts))
            return copy.deepcopy(found) if found is not None else None

    def replies(self, channel: str, ts: str) -> list[Message]:
        """Thread replies under the parent `ts`, oldest first."""
        with self._lock:
            return [
                copy.deepcopy(m)
                for m in self._messages.values()
                if m.channel == channel and m.thread_ts == ts and m.is_reply
            ]

    def ephemerals(self, user: str | None = None) -> list[Ephemeral]:
        """Ephemeral messages, optionally only those shown to `user`."""
        with self._lock:
            return [copy.deepcopy(e) for e in self._ephemerals if user is None or e.user == user]

    def view(self, view_id: str) -> dict[str, Any] | None:
        """The current version of a view (modal or home) by id."""
        with self._lock:
            found = self._views.get(view_id)
            return copy.deepcopy(found) if found is not None else None

    def open_views(self) -> list[dict[str, Any]]:
        """Modals opened/pushed and not closed via close_view(), oldest first."""
        with self._lock:
            return [
                copy.deepcopy(v)
                for vid, v in self._views.items()
                if v.get("type") == "modal" and vid not in self._closed_views
            ]

    def home_view(self, user_id: str) -> dict[str, Any] | None:
        """The App Home view last published for a user."""
        with self._lock:
            view_id = self._home.get(user_id)
            return copy.deepcopy(self._views[view_id]) if view_id is not None else None

    def responses(self, url: str | None = None) -> list[dict[str, Any]]:
        """Bodies posted to response URLs (optionally to one URL), oldest first."""
        hook = url.rstrip("/").rsplit("/", 1)[-1] if url else None
        with self._lock:
            return [copy.deepcopy(body) for h, body in self._responses if hook is None or h == hook]

    def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 10.0, message: str | None = None
    ) -> None:
        """Poll `predicate` every 20 ms until true; AssertionError with context on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        with self._lock:
            recent = [f"{c.method}{'!' + c.error if c.error else ''}" for c in self._calls[-15:]]
            summary = [f"{m.channel}/{m.ts}: {text_of(m)[:80]!r}" for m in list(self._messages.values())[-5:]]
        what = message or getattr(predicate, "__name__", "predicate")
        raise AssertionError(
            f"FakeSlack.wait_for timed out after {timeout}s waiting for {what}; "
            f"recent calls: {recent}; recent messages: {summary}"
        )

    # ---- request handling ------------------------------------------------------------------------

    def _fault(self, status: int, code: str, message: str) -> Reply:
        return Reply(status, {"ok": False, "error": "fake_internal_error", "detail": message})

    def _handle(self, http_method: str, raw_path: str, headers: dict[str, str], body: bytes) -> _Reply:
        parts = urlsplit(raw_path)
        if parts.path.startswith("/response/"):
            return self._handle_response_url(parts.path.removeprefix("/response/").strip("/"), body)
        if not parts.path.startswith("/api/"):
            return _Reply(404, {"ok": False, "error": "unknown_method"})
        method = parts.path.removeprefix("/api/").strip("/")
        try:
            args = self._parse_args(http_method, parts.query, headers, body)
        except _SlackError as exc:
            return self._record(method, {}, _Reply(200, self._error_body(exc)))
        call = Call(method=method, args=args, at=time.monotonic())
        with self._lock:
            self._calls.append(call)
            latency = self._latency
        if latency > 0:  # network + Slack's own time, for every answer; outside the lock so calls overlap
            self._wait(latency)

        auth = headers.get("authorization", "")
        if not auth:
            return self._finish(call, _Reply(200, {"ok": False, "error": "not_authed"}), scoped=False)
        if auth != f"Bearer {self.token}":
            return self._finish(call, _Reply(200, {"ok": False, "error": "invalid_auth"}), scoped=False)
        with self._lock:
            token_error = self._token_error
            delay = self._delays.get(method, 0.0)
        if token_error is not None:
            return self._finish(call, _Reply(200, {"ok": False, "error": token_error}), scoped=False)
        if delay > 0:
            self._wait(delay)

        with self._lock:
            rules = [r for r in self._fail_rules.get(method) or [] if r.where is None or r.where(args)]
            if rules:
                rule = rules[0]
                rule.times -= 1
                if rule.times <= 0:
                    self._fail_rules[method].remove(rule)
                extra = {"Retry-After": _seconds(rule.retry_after)} if rule.retry_after is not None else {}
                if rule.status == 429:
                    self.ratelimited_count += 1
                return self._finish(call, _Reply(rule.status, {"ok": False, "error": rule.error}, extra))
            drops = self._drops.get(method)
            drop_after: bool | None = drops.pop(0) if drops else None
            if drop_after is False:
                return self._finish(call, _Reply(0, {}, drop=True))
            if method == "chat.postMessage" and not self._take_post_token(args.get("channel")):
                self.ratelimited_count += 1
                reply = _Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"})
                return self._finish(call, reply)
            handler = _METHODS.get(method)
            if handler is None:
                reply = _Reply(200, {"ok": False, "error": "unknown_method"})
            else:
                accepted = self._accepted_scopes(method, args)
                try:
                    if accepted and not any(scope in self._scopes for scope in accepted):
                        raise _SlackError(
                            "missing_scope",
                            needed=",".join(accepted),
                            provided=",".join(sorted(self._scopes)),
                        )
                    reply = _Reply(200, {"ok": True, **handler(self, args)})
                except _SlackError as exc:
                    reply = _Reply(200, self._error_body(exc))
                if accepted:
                    reply.headers["x-accepted-oauth-scopes"] = ",".join(accepted)
            lost = self._take_lost(method, args)
            if lost is not None:
                call.lost = lost.how
                reply = self._lose(reply, lost)
            if drop_after:
                reply = _Reply(0, reply.body, drop=True)
            return self._finish(call, reply)

    def _accepted_scopes(self, method: str, args: dict[str, Any]) -> tuple[str, ...]:
        """Scopes of which the call needs one; empty when it needs none (lock held)."""
        if method in _CHANNEL_TYPE_SCOPES:
            public, private = _CHANNEL_TYPE_SCOPES[method]
            info = self._channels.get(str(args.get("channel")))
            if info is None:  # unknown channel: either scope lets the call reach channel_not_found
                return (public, private)
            return (private,) if info["is_private"] else (public,)
        if method in _METHOD_SCOPES:
            return (_METHOD_SCOPES[method],)
        return ()

    def _take_lost(self, method: str, args: dict[str, Any]) -> _LostRule | None:
        rules = [r for r in self._lost.get(method) or [] if r.where is None or r.where(args)]
        if not rules:
            return None
        rule = rules[0]
        rule.times -= 1
        if rule.times <= 0:
            self._lost[method].remove(rule)
        return rule

    @staticmethod
    def _lose(reply: _Reply, rule: _LostRule) -> _Reply:
        if rule.how == "500":
            return _Reply(500, {"ok": False, "error": "internal_error"}, reply.headers)
        if rule.how == "503":
            return _Reply(503, {"ok": False, "error": "service_unavailable"}, reply.headers)
        if rule.how == "drop":
            return _Reply(0, reply.body, drop=True)
        reply.hang = rule.seconds  # "slow": the real answer, sent after the client gave up
        return reply

    def _record(self, method: str, args: dict[str, Any], reply: _Reply) -> _Reply:
        call = Call(method=method, args=args, at=time.monotonic())
        with self._lock:
            self._calls.append(call)
        return self._finish(call, reply)

    def _finish(self, call: Call, reply: _Reply, *, scoped: bool = True) -> _Reply:
        with self._lock:
            call.answered_at = time.monotonic()
            call.http_status = reply.status
            if reply.drop:
                call.error = "connection_dropped"
            elif not reply.body.get("ok", False):
                call.error = str(reply.body.get("error"))
            if scoped:  # Slack names the token's scopes on every answer it could authenticate
                reply.headers["x-oauth-scopes"] = ",".join(sorted(self._scopes))
        return reply

    @staticmethod
    def _error_body(exc: _SlackError) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error": exc.error, **exc.extra}
        if exc.detail:
            body["detail"] = exc.detail
        return body

    @staticmethod
    def _parse_args(http_method: str, query: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        args: dict[str, Any] = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if body:
            if content_type == "application/json":
                try:
                    decoded = json.loads(body)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise _SlackError("invalid_json", str(exc)) from exc
                if not isinstance(decoded, dict):
                    raise _SlackError("invalid_json", "JSON body must be an object")
                args.update(decoded)
            elif content_type == "application/x-www-form-urlencoded":
                form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
                args.update({k: v[-1] for k, v in form.items()})
            else:
                raise _SlackError("invalid_form_data", f"unsupported content-type {content_type!r}")
        for key in _JSON_ARGS:
            value = args.get(key)
            if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
                try:
                    args[key] = json.loads(value)
                except json.JSONDecodeError:
                    pass
        return args

    def _take_post_token(self, channel: Any) -> bool:
        if self._post_rate is None or not isinstance(channel, str):
            return True
        per_second, burst = self._post_rate
        now = time.monotonic()
        tokens, last = self._buckets.get(channel, (burst, now))
        tokens = min(burst, tokens + (now - last) * per_second)
        if tokens < 1.0:
            self._buckets[channel] = (tokens, now)
            return False
        self._buckets[channel] = (tokens - 1.0, now)
        return True

    def _handle_response_url(self, hook: str, body: bytes) -> _Reply:
        try:
            payload = json.loads(body) if body else {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _Reply(400, {"ok": False, "error": "invalid_payload"})
        if not isinstance(payload, dict):
            return _Reply(400, {"ok": False, "error": "invalid_payload"})
        with self._lock:
            entry = self._response_urls.get(hook)
            if entry is None:
                return _Reply(404, {"ok": False, "error": "invalid_url"})
            if entry.uses >= RESPONSE_URL_MAX_USES:
                return _Reply(404, {"ok": False, "error": "used_url"})
            blocks_given = payload.get("blocks") is not None
            try:
                blocks = (
                    _validate_blocks(payload["blocks"], MAX_MESSAGE_BLOCKS, "invalid_blocks")
                    if blocks_given
                    else []
                )
                _validate_text(
                    payload,
                    blocks_given,
                    required=not payload.get("delete_original"),
                    limit=self.MAX_POST_TEXT,
                )
                _check_blocks_text(blocks, self.MAX_BLOCKS_TEXT)
            except _SlackError as exc:
                return _Reply(400, self._error_body(exc))
            entry.uses += 1
            self._responses.append((hook, copy.deepcopy(payload)))
            target = None
            if entry.channel and entry.message_ts:
                target = self._messages.get((entry.channel, entry.message_ts))
            if target is not None and payload.get("delete_original"):
                del self._messages[(target.channel, target.ts)]
            elif target is not None and payload.get("replace_original"):
                self._apply_update(target, payload.get("text") or "", blocks)
        return _Reply(200, {"ok": True})

    # ---- state helpers (lock held) ---------------------------------------------------------------

    def _next_ts(self) -> str:
        # Like Slack: the time the message was stored, in microseconds, unique within the workspace
        # (so `oldest`/`latest` in conversations.history mean what they mean in real Slack).
        micros = max(int(time.time() * 1_000_000), self._last_ts_micros + 1)
        self._last_ts_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _require_channel(self, args: dict[str, Any]) -> str:
        channel = args.get("channel")
        if not isinstance(channel, str) or channel not in self._channels:
            raise _SlackError("channel_not_found", f"unknown channel {channel!r}")
        return channel

    def _require_post_access(self, channel: str) -> None:
        """Posting needs membership, or chat:write.public for a public channel (lock held)."""
        info = self._channels[channel]
        if info["is_member"]:
            return
        if info["is_private"] or "chat:write.public" not in self._scopes:
            raise _SlackError("not_in_channel", f"the bot is not a member of {channel}")

    def _require_member(self, channel: str) -> None:
        # Reading history needs membership even where chat:write.public lets the bot post.
        if not self._channels[channel]["is_member"]:
            raise _SlackError("not_in_channel", f"the bot is not a member of {channel}")

    def _message_blocks(self, args: dict[str, Any]) -> tuple[bool, list[dict[str, Any]]]:
        blocks_given = args.get("blocks") is not None
        if not blocks_given:
            return False, []
        blocks = _validate_blocks(args["blocks"], MAX_MESSAGE_BLOCKS, "invalid_blocks")
        _check_blocks_text(blocks, self.MAX_BLOCKS_TEXT)
        return True, blocks

    def _permalink(self, msg: Message) -> str:
        link = f"{PERMALINK_BASE}/archives/{msg.channel}/p{msg.ts.replace('.', '')}"
        if msg.is_reply:
            link += f"?thread_ts={msg.thread_ts}&cid={msg.channel}"
        return link

    def _check_thread(self, channel: str, thread_ts: Any) -> str | None:
        if thread_ts in (None, ""):
            return None
        parent = self._messages.get((channel, str(thread_ts)))
        if parent is None or parent.is_reply:
            raise _SlackError("thread_not_found", f"no top-level message {thread_ts!r} in {channel}")
        return parent.ts

    def _apply_update(self, msg: Message, text: str, blocks: list[dict[str, Any]]) -> None:
        msg.history.append({"text": msg.text, "blocks": copy.deepcopy(msg.blocks), "metadata": msg.metadata})
        msg.text = text
        msg.blocks = blocks
        msg.updates += 1

    def _message_dict(self, msg: Message) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "message", "user": msg.user}
        if msg.user == BOT_USER_ID:
            out.update({"bot_id": BOT_ID, "app_id": APP_ID})
        user = self._users.get(msg.user)
        out["team"] = user["team_id"] if user is not None else TEAM_ID
        out.update({"text": msg.text, "ts": msg.ts})
        if msg.blocks:
            out["blocks"] = copy.deepcopy(msg.blocks)
        elif msg.user == BOT_USER_ID:
            out["blocks"] = []
        if msg.files:
            out["files"] = copy.deepcopy(msg.files)
            out["upload"] = False
        if msg.thread_ts is not None:
            out["thread_ts"] = msg.thread_ts
        if msg.metadata:
            out["metadata"] = copy.deepcopy(msg.metadata)
        if msg.updates:
            out["edited"] = {"user": msg.user, "ts": msg.ts}
        return out

    def _history_dict(self, msg: Message, with_metadata: bool) -> dict[str, Any]:
        out = self._message_dict(msg)
        if not with_metadata:
            out.pop("metadata", None)
        if msg.is_reply:  # only broadcast replies reach the channel's history
            out["subtype"] = "thread_broadcast"
            return out
        replies = [
            m for m in self._messages.values() if m.channel == msg.channel and m.thread_ts == msg.ts and m.is_reply
        ]
        if replies:
            users = list(dict.fromkeys(m.user for m in replies))
            out.update(
                {
                    "thread_ts": msg.ts,
                    "reply_count": len(replies),
                    "reply_users_count": len(users),
                    "reply_users": users,
                    "latest_reply": replies[-1].ts,
                }
            )
        return out

    def _public_view(
        self, view: dict[str, Any], view_id: str, previous: dict[str, Any] | None
    ) -> dict[str, Any]:
        out = copy.deepcopy(view)
        out.update(
            {
                "id": view_id,
                "hash": f"{next(self._hash_counter)}.{secrets.token_hex(6)}",
                "team_id": TEAM_ID,
                "app_id": APP_ID,
                "bot_id": BOT_ID,
                "private_metadata": view.get("private_metadata", ""),
                "callback_id": view.get("callback_id", ""),
                "external_id": view.get("external_id", ""),
                "state": copy.deepcopy(previous["state"]) if previous else {"values": {}},
                "root_view_id": previous.get("root_view_id", view_id) if previous else view_id,
                "previous_view_id": previous.get("previous_view_id") if previous else None,
            }
        )
        return out

    def _consume_trigger(self, args: dict[str, Any]) -> None:
        trigger = args.get("trigger_id")
        if not isinstance(trigger, str) or not trigger:
            raise _SlackError("invalid_arguments", "trigger_id is required")
        issued = self._triggers.get(trigger)
        if issued is None:
            raise _SlackError("invalid_trigger_id")
        at, used = issued
        if used:
            raise _SlackError("exchanged_trigger_id")
        if time.monotonic() - at >= self.trigger_ttl:
            raise _SlackError("expired_trigger_id")
        self._triggers[trigger] = (at, True)

    def _store_view(self, view: dict[str, Any], previous: dict[str, Any] | None = None) -> dict[str, Any]:
        view_id = previous["id"] if previous else f"V{next(self._view_counter):09d}"
        external_id = view.get("external_id") or ""
        owner = self._external_ids.get(external_id) if external_id else None
        if owner is not None and owner != view_id:
            raise _SlackError("duplicate_external_id")
        stored = self._public_view(view, view_id, previous)
        old_external = previous.get("external_id") if previous else None
        if old_external and old_external != external_id:
            self._external_ids.pop(old_external, None)
        if external_id:
            self._external_ids[external_id] = view_id
        self._views[view_id] = stored
        return copy.deepcopy(stored)

    # ---- Web API methods (lock held; validate fully before mutating) -----------------------------

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"{PERMALINK_BASE}/",
            "team": TEAM_NAME,
            "user": "greenlight",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._require_channel(args)
        self._require_post_access(channel)
        blocks_given, blocks = self._message_blocks(args)
        text = _validate_text(args, blocks_given, limit=self.MAX_POST_TEXT) or ""
        metadata = _validate_metadata(args["metadata"]) if args.get("metadata") is not None else None
        thread_ts = self._check_thread(channel, args.get("thread_ts"))
        broadcast = args.get("reply_broadcast") in (True, "true", "1", 1)
        ts = self._next_ts()
        msg = Message(
            channel=channel,
            ts=ts,
            text=text,
            blocks=blocks,
            thread_ts=thread_ts,
            metadata=metadata or None,
            reply_broadcast=broadcast,
        )
        self._messages[(channel, ts)] = msg
        return {"channel": channel, "ts": ts, "message": self._message_dict(msg)}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._require_channel(args)
        ts = args.get("ts")
        msg = self._messages.get((channel, str(ts)))
        if msg is None or msg.user != BOT_USER_ID:
            raise _SlackError("message_not_found", f"no bot message {ts!r} in {channel}")
        blocks_given, blocks = self._message_blocks(args)
        text = _validate_text(args, blocks_given, limit=self.MAX_UPDATE_TEXT)
        metadata = _validate_metadata(args["metadata"]) if args.get("metadata") is not None else msg.metadata
        # Slack: text without blocks removes the blocks; blocks replace them.
        self._apply_update(msg, text or "", blocks)
        msg.metadata = metadata or None
        return {"channel": channel, "ts": msg.ts, "text": msg.text, "message": self._message_dict(msg)}

    def _chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._require_channel(args)
        ts = args.get("ts")
        msg = self._messages.get((channel, str(ts)))
        if msg is None:
            raise _SlackError("message_not_found")
        if msg.user != BOT_USER_ID:
            raise _SlackError("cant_delete_message")
        del self._messages[(channel, msg.ts)]
        return {"channel": channel, "ts": msg.ts}

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._require_channel(args)
        user = args.get("user")
        if not isinstance(user, str) or user not in self._users:
            raise _SlackError("user_not_in_channel", f"unknown user {user!r}")
        self._require_post_access(channel)
        blocks_given, blocks = self._message_blocks(args)
        text = _validate_text(args, blocks_given, limit=self.MAX_POST_TEXT) or ""
        thread_ts = self._check_thread(channel, args.get("thread_ts"))
        ts = self._next_ts()
        self._ephemerals.append(Ephemeral(channel, user, ts, text, blocks, thread_ts))
        return {"message_ts": ts}

    def _chat_get_permalink(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._require_channel(args)
        ts = args.get("message_ts")
        msg = self._messages.get((channel, str(ts)))
        if msg is None:
            raise _SlackError("message_not_found")
        return {"channel": channel, "permalink": self._permalink(msg)}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        view = _validate_view(args.get("view"), allowed_types=("modal",))
        self._consume_trigger(args)
        return {"view": self._store_view(view)}

    def _views_push(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._views_open(args)

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view_id = args.get("view_id")
        external_id = args.get("external_id")
        if not view_id and not external_id:
            raise _SlackError("invalid_arguments", "view_id or external_id is required")
        if not view_id:
            view_id = self._external_ids.get(str(external_id))
        current = self._views.get(str(view_id)) if view_id else None
        if current is None:
            raise _SlackError("not_found", f"no view {view_id or external_id!r}")
        view = _validate_view(args.get("view"), allowed_types=(current["type"],))
        if args.get("hash") not in (None, "") and args["hash"] != current["hash"]:
            raise _SlackError("hash_conflict")
        return {"view": self._store_view(view, previous=current)}

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = args.get("user_id")
        if not isinstance(user_id, str) or user_id not in self._users:
            raise _SlackError("user_not_found", f"unknown user {user_id!r}")
        view = _validate_view(args.get("view"), allowed_types=("home",))
        current = self._views.get(self._home[user_id]) if user_id in self._home else None
        if current is not None and args.get("hash") not in (None, "") and args["hash"] != current["hash"]:
            raise _SlackError("hash_conflict")
        stored = self._store_view(view, previous=current)
        self._home[user_id] = stored["id"]
        return {"view": stored}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = args.get("user")
        user = self._users.get(str(user_id))
        if user is None:
            raise _SlackError("user_not_found", f"unknown user {user_id!r}")
        info = {k: v for k, v in user.items() if k != "tz"}
        info.update(_tz_fields(user["tz"]))
        info["profile"] = {
            "real_name": user["real_name"],
            "display_name": user["name"],
            "team": user["team_id"],
        }
        return {"user": info}

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = args.get("usergroup")
        if str(group) not in self._usergroups:
            raise _SlackError("no_such_subteam", f"unknown usergroup {group!r}")
        return {"users": list(self._usergroups[str(group)])}

    def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._require_channel(args)
        return {"channel": copy.deepcopy(self._channels[channel])}

    def _conversations_join(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._require_channel(args)
        info = self._channels[channel]
        if info["is_private"]:
            raise _SlackError("method_not_supported_for_channel_type", "private channels need an invite")
        if info["is_archived"]:
            raise _SlackError("is_archived")
        already = bool(info["is_member"])
        info["is_member"] = True
        out: dict[str, Any] = {"channel": copy.deepcopy(info)}
        if already:
            out["warning"] = "already_in_channel"
            out["response_metadata"] = {"warnings": ["already_in_channel"]}
        return out

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._require_channel(args)
        self._require_member(channel)
        oldest = _parse_ts(args.get("oldest"), "invalid_ts_oldest")
        latest = _parse_ts(args.get("latest"), "invalid_ts_latest")
        inclusive = _truthy(args.get("inclusive"))
        raw_limit = args.get("limit")
        limit = self.HISTORY_DEFAULT_LIMIT
        if raw_limit not in (None, "", 0, "0"):
            parsed_limit = _positive_int(raw_limit)
            if parsed_limit is None:
                raise _SlackError("invalid_limit", f"limit must be a positive integer, got {raw_limit!r}")
            limit = min(parsed_limit, self.HISTORY_MAX_LIMIT)  # Slack caps rather than refuses
        cursor = args.get("cursor")
        start = _decode_cursor(str(cursor)) if cursor not in (None, "") else None

        def wanted(ts: Decimal) -> bool:
            if oldest is not None and (ts < oldest or (ts == oldest and not inclusive)):
                return False
            if latest is not None and (ts > latest or (ts == latest and not inclusive)):
                return False
            return start is None or ts <= start

        visible = [
            m
            for m in self._messages.values()
            if m.channel == channel and (not m.is_reply or m.reply_broadcast) and wanted(Decimal(m.ts))
        ]
        visible.sort(key=lambda m: Decimal(m.ts), reverse=True)
        page = visible[:limit]
        with_metadata = _truthy(args.get("include_all_metadata"))
        out: dict[str, Any] = {
            "messages": [self._history_dict(m, with_metadata) for m in page],
            "has_more": len(visible) > limit,
            "pin_count": 0,
            "channel_actions_ts": None,
            "channel_actions_count": 0,
        }
        if len(visible) > limit:
            out["response_metadata"] = {"next_cursor": _encode_cursor(visible[limit].ts)}
        return out

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        """The parent message and its replies, oldest first (Slack's order for this method)."""
        channel = self._require_channel(args)
        self._require_member(channel)
        ts = args.get("ts")
        parent = self._messages.get((channel, str(ts)))
        if parent is None:
            raise _SlackError("thread_not_found", f"no message {ts!r} in {channel}")
        oldest = _parse_ts(args.get("oldest"), "invalid_ts_oldest")
        with_metadata = _truthy(args.get("include_all_metadata"))
        thread = [parent] + sorted(
            (m for m in self._messages.values() if m.channel == channel and m.thread_ts == parent.ts and m.is_reply),
            key=lambda m: Decimal(m.ts),
        )
        thread = [m for m in thread if m is parent or oldest is None or Decimal(m.ts) >= oldest]
        return {"messages": [self._history_dict(m, with_metadata) for m in thread], "has_more": False}

    # ---- external file uploads -------------------------------------------------------------------

    def _file_dict(self, record: FileUpload) -> dict[str, Any]:
        return {
            "id": record.id,
            "name": record.filename,
            "title": record.title or record.filename,
            "filetype": record.filename.rsplit(".", 1)[-1].lower() if "." in record.filename else "",
            "size": record.size,
            "user": BOT_USER_ID,
            "permalink": f"{PERMALINK_BASE}/files/{BOT_USER_ID}/{record.id}/{record.filename}",
        }

    def _files_get_upload_url_external(self, args: dict[str, Any]) -> dict[str, Any]:
        filename = args.get("filename")
        if not isinstance(filename, str) or not filename.strip():
            raise _SlackError("invalid_arguments", "filename is required")
        length = _positive_int(args.get("length"))
        if length is None:
            raise _SlackError("invalid_arguments", f"length must be a positive integer: {args.get('length')!r}")
        file_id = f"F{next(self._file_counter):010d}"
        self._files[file_id] = FileUpload(
            id=file_id,
            filename=filename,
            length=length,
            alt_txt=args.get("alt_txt") or None,
            snippet_type=args.get("snippet_type") or None,
        )
        return {"upload_url": f"{self._root()}/upload/{file_id}", "file_id": file_id}

    def _files_complete_upload_external(self, args: dict[str, Any]) -> dict[str, Any]:
        items = args.get("files")
        if not isinstance(items, list) or not items:
            raise _SlackError("invalid_arguments", "files must be a non-empty array of {id, title}")
        records: list[tuple[FileUpload, dict[str, Any]]] = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                raise _SlackError("invalid_arguments", "every entry of files needs an id")
            record = self._files.get(item["id"])
            if record is None:
                raise _SlackError("file_not_found", f"no upload started for {item['id']!r}")
            if record.completed:
                raise _SlackError("file_not_found", f"{record.id} was already completed")
            if not record.uploaded:
                raise _SlackError("file_not_found", f"{record.id}: no complete upload of {record.length} bytes")
            records.append((record, item))
        targets = [c for c in str(args.get("channels") or "").split(",") if c]
        if args.get("channel_id"):
            targets = [str(args["channel_id"])]
        if len(targets) > 1:
            raise _SlackError("invalid_arguments", "the fake shares into one channel only")
        channel = targets[0] if targets else None
        thread_ts = None
        if channel is not None:
            if channel not in self._channels:
                raise _SlackError("channel_not_found", f"unknown channel {channel!r}")
            self._require_member(channel)  # there is no files:write.public
            thread_ts = self._check_thread(channel, args.get("thread_ts"))
        comment = _validate_text(
            {"text": args.get("initial_comment")}, False, required=False, limit=self.MAX_POST_TEXT
        )
        for record, item in records:
            record.title = item.get("title") or record.filename
            record.completed = True
            record.channel = channel
            record.thread_ts = thread_ts
            record.initial_comment = comment
        if channel is not None:
            ts = self._next_ts()
            self._messages[(channel, ts)] = Message(
                channel=channel,
                ts=ts,
                text=comment or "",
                thread_ts=thread_ts,
                files=[self._file_dict(record) for record, _ in records],
            )
            for record, _ in records:
                record.message_ts = ts
        return {"files": [{"id": record.id, "title": record.title} for record, _ in records]}

    def _stream_route(self, http_method: str, raw_path: str, headers: dict[str, str]) -> StreamRoute | None:
        """Upload URLs get the body as a stream (files can be large); every other route gets bytes."""
        path = urlsplit(raw_path).path
        if not path.startswith("/upload/"):
            return None
        file_id = path.removeprefix("/upload/").strip("/")
        return lambda body: self._handle_upload(http_method, file_id, headers, body)

    def _handle_upload(
        self, http_method: str, file_id: str, headers: dict[str, str], body: BodyStream
    ) -> _Reply:
        if http_method != "POST":
            body.drain()
            return _Reply(405, "method not allowed", text=True)
        with self._lock:
            record = self._files.get(file_id)
            fault = self._upload_faults[0] if self._upload_faults else None
            if fault is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self._upload_faults.pop(0)
            if record is not None:
                record.upload_attempts += 1
        if record is None or record.completed:
            body.drain()
            return _Reply(404, "invalid upload url", text=True)
        if fault is not None and fault.drop_after_bytes is not None:
            for _ in body.chunks():
                if body.received >= fault.drop_after_bytes:
                    break
            return _Reply(0, "", text=True, drop=True)
        if fault is not None:
            body.drain()
            return _Reply(fault.status, f"upload failed (HTTP {fault.status})", text=True)

        content_type = headers.get("content-type", "")
        digest = hashlib.sha256()
        count = 0
        try:
            if content_type.split(";")[0].strip().lower() == "multipart/form-data":
                found = re.search(r'boundary="?([^";]+)"?', content_type)
                if found is None:
                    raise _MultipartError("multipart/form-data without a boundary")
                pieces = _multipart_file(body.chunks(), found.group(1).encode("latin-1"))
            else:
                pieces = body.chunks()
            for piece in pieces:  # count and hash as the bytes arrive; nothing is kept
                digest.update(piece)
                count += len(piece)
        except _MultipartError as exc:
            body.drain()
            return _Reply(400, f"invalid multipart body: {exc}", text=True)
        body.drain()
        with self._lock:
            record.uploaded_bytes = count
            if not body.complete:
                return _Reply(400, "upload body ended early", text=True)
            if count != record.length:
                mismatch = f"length mismatch: announced {record.length} bytes, received {count}"
                return _Reply(400, mismatch, text=True)
            record.size = count
            record.sha256 = digest.hexdigest()
        return _Reply(200, f"OK - {count}", text=True)


_METHODS: dict[str, Callable[[FakeSlack, dict[str, Any]], dict[str, Any]]] = {
    "auth.test": FakeSlack._auth_test,
    "chat.postMessage": FakeSlack._chat_post_message,
    "chat.update": FakeSlack._chat_update,
    "chat.delete": FakeSlack._chat_delete,
    "chat.postEphemeral": FakeSlack._chat_post_ephemeral,
    "chat.getPermalink": FakeSlack._chat_get_permalink,
    "views.open": FakeSlack._views_open,
    "views.push": FakeSlack._views_push,
    "views.update": FakeSlack._views_update,
    "views.publish": FakeSlack._views_publish,
    "users.info": FakeSlack._users_info,
    "usergroups.users.list": FakeSlack._usergroups_users_list,
    "conversations.info": FakeSlack._conversations_info,
    "conversations.join": FakeSlack._conversations_join,
    "conversations.history": FakeSlack._conversations_history,
    "conversations.replies": FakeSlack._conversations_replies,
    "files.getUploadURLExternal": FakeSlack._files_get_upload_url_external,
    "files.completeUploadExternal": FakeSlack._files_complete_upload_external,
}
