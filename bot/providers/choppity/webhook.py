"""Verify and parse Choppity webhook deliveries (`choppity-signature-256`, HMAC-SHA256 over `t.body`).

Everything here is pure: the route hands in the raw body bytes, the header value and the clock, and
gets back either an event or a `WebhookRejected` carrying the HTTP status to answer. No other
exception type escapes for any input, so attacker-controlled bytes can never turn into a 500.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.domain import DraftsReady, InboundEvent, PostChanged, is_external_id
from bot.providers.base import WebhookRejected

SIGNATURE_HEADER = "choppity-signature-256"
DEFAULT_TOLERANCE_SECONDS = 300
MAX_HEADER_LENGTH = 4096
MAX_EVENT_ID_LENGTH = 255
MAX_EVENT_TYPE_LENGTH = 64  # the webhook_event.type column; PostgreSQL refuses longer values

# Explicit ASCII classes with fullmatch: `\d` would accept other scripts' digits and `$` would accept
# a trailing newline. Twelve digits covers Unix seconds for the next ~30,000 years while keeping
# int() far below Python's 4300-digit conversion limit.
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
# Part separators are commas; only spaces/tabs around parts are tolerated, nothing else.
_PART_PADDING = " \t"


def _malformed(reason: str) -> WebhookRejected:
    return WebhookRejected(400, reason)


def _unauthorized(reason: str) -> WebhookRejected:
    return WebhookRejected(401, reason)


def _parse_header(header: str) -> tuple[str, list[bytes]]:
    """Split the header into its `t` string and the lower-cased ASCII bytes of every `v1` entry."""
    timestamp: str | None = None
    candidates: list[bytes] = []
    for raw_part in header.split(","):
        part = raw_part.strip(_PART_PADDING)
        if not part:
            # Empty entries ("a,,b", trailing comma) are never produced by a correct sender; being
            # strict here keeps the accepted grammar small and easy to reason about.
            raise _malformed("malformed signature header")
        key, sep, value = part.partition("=")
        if not sep:
            raise _malformed("malformed signature header")
        key = key.strip(_PART_PADDING)
        value = value.strip(_PART_PADDING)
        if key == "t":
            if timestamp is not None:
                # Two timestamps would leave it ambiguous which one was signed.
                raise _malformed("duplicate timestamp in signature header")
            timestamp = value
        elif key == "v1":
            # Lower-case so a sender emitting upper-case hex still matches our hexdigest(); the
            # header was already checked to be ASCII, so encoding cannot fail.
            candidates.append(value.lower().encode("ascii"))
        # Any other key (v0, future schemes) is ignored on purpose: only v1 is trusted.
    if timestamp is None:
        raise _malformed("signature header has no timestamp")
    if not _TIMESTAMP_RE.fullmatch(timestamp):
        raise _malformed("malformed timestamp in signature header")
    if not candidates:
        raise _unauthorized("no v1 signature")
    return timestamp, candidates


def _secret_keys(secrets: Sequence[str]) -> list[bytes]:
    keys: list[bytes] = []
    for secret in secrets:
        if not secret:
            # An empty key would let anyone compute a valid signature.
            continue
        try:
            keys.append(secret.encode("utf-8"))
        except UnicodeEncodeError:
            # A lone surrogate cannot be what the sender signed with; skip it rather than crash.
            continue
    return keys


def verify_signature(
    body: bytes,
    header: str | None,
    secrets: Sequence[str],
    now: float,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Raise WebhookRejected unless `header` carries a fresh v1 HMAC of `body` under any of `secrets`."""
    keys = _secret_keys(secrets)
    if not keys:
        # Fail closed: an unconfigured receiver must not accept unsigned traffic.
        raise _unauthorized("no signing secret configured")
    if not header:
        raise _unauthorized("missing signature header")
    if len(header) > MAX_HEADER_LENGTH:
        raise _malformed("signature header too long")
    if not header.isascii():
        # Servers decode header bytes as latin-1, so stray high bytes arrive as non-ASCII characters;
        # rejecting them here also keeps every later comparison on plain ASCII bytes.
        raise _malformed("non-ASCII signature header")

    timestamp, candidates = _parse_header(header)

    # Written as "not within" so a NaN clock also rejects instead of slipping through.
    if not abs(now - int(timestamp)) <= tolerance:
        raise _unauthorized("timestamp outside tolerance")

    # Sign the timestamp exactly as received (never a re-formatted int) followed by the raw bytes.
    prefix = f"{timestamp}.".encode("ascii")
    for key in keys:
        mac = hmac.new(key, prefix, hashlib.sha256)
        mac.update(body)
        expected = mac.hexdigest().encode("ascii")
        # Compare against every candidate (no early exit) so timing does not reveal which entry
        # or secret matched; compare_digest on bytes is constant-time and never raises for ASCII.
        matched = False
        for candidate in candidates:
            matched |= hmac.compare_digest(expected, candidate)
        if matched:
            return
    raise _unauthorized("signature mismatch")


def _usable_id(value: object) -> str | None:
    """`value` if it is an id Greenlight can put in a provider URL (see domain.is_external_id)."""
    return value if is_external_id(value) else None  # type: ignore[return-value]


def _usable_str(value: object) -> str | None:
    """Return `value` if it is a non-empty string that can be stored/sent as UTF-8, else None."""
    if not isinstance(value, str) or not value or "\x00" in value:
        # PostgreSQL text columns cannot hold NUL, which JSON can smuggle in as "\u0000".
        return None
    try:
        # JSON escapes can smuggle lone surrogates ("\ud800") that blow up later in DB or HTTP code.
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return value


@dataclass(frozen=True)
class ChoppityEvent:
    """One webhook envelope: dedupe on `id`; `data` is event-specific and only a hint."""

    id: str
    type: str
    created_ms: int | None
    data: dict[str, Any] = field(default_factory=dict)

    def _nested_post(self) -> dict[str, Any] | None:
        post = self.data.get("post")
        return post if isinstance(post, dict) else None

    @property
    def post_id(self) -> str | None:
        """The post this event is about, from `post_id`, `id` or `post.id`, if any is a string."""
        for value in (self.data.get("post_id"), self.data.get("id")):
            found = _usable_id(value)
            if found is not None:
                return found
        post = self._nested_post()
        return _usable_id(post.get("id")) if post is not None else None

    @property
    def clip_id(self) -> str | None:
        """The clip this event is about, from `clip_id` or `post.clip_id`, if either is a string."""
        found = _usable_id(self.data.get("clip_id"))
        if found is not None:
            return found
        post = self._nested_post()
        return _usable_id(post.get("clip_id")) if post is not None else None


def _required_str(envelope: dict[str, Any], key: str, max_length: int) -> str:
    value = _usable_str(envelope.get(key))
    if value is None:
        raise _malformed(f"event {key} missing or not a string")
    if len(value) > max_length:
        raise _malformed(f"event {key} too long")
    return value


def _reject_constant(name: str) -> Any:
    # NaN/Infinity are not JSON (RFC 8259) and PostgreSQL's json type rejects them on insert.
    raise ValueError(f"invalid JSON constant {name}")


def parse_event(body: bytes) -> ChoppityEvent:
    """Parse an already-verified body into a ChoppityEvent; raise WebhookRejected(400) if malformed."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _malformed("body is not UTF-8") from None
    try:
        envelope = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        # ValueError covers JSONDecodeError and over-long integer literals; RecursionError covers
        # deeply nested arrays/objects, which the stdlib parser handles by recursing.
        raise _malformed("body is not valid JSON") from None
    if not isinstance(envelope, dict):
        raise _malformed("body is not a JSON object")

    event_id = _required_str(envelope, "id", MAX_EVENT_ID_LENGTH)
    event_type = _required_str(envelope, "type", MAX_EVENT_TYPE_LENGTH)

    data = envelope.get("data", {})
    if not isinstance(data, dict):
        raise _malformed("event data is not an object")

    created = envelope.get("created")
    # `created` is informational only, so a wrong type is dropped rather than failing the delivery;
    # bool is excluded because it is an int subclass.
    created_ms = created if isinstance(created, int) and not isinstance(created, bool) else None

    return ChoppityEvent(id=event_id, type=event_type, created_ms=created_ms, data=data)


# Outcome events: the post moved on, re-read it. Any other type (asset.*, project.render.*) is
# recorded and acknowledged, and changes nothing.
OUTCOME_EVENTS = frozenset({"post.scheduled", "post.published", "post.failed"})
DRAFT_EVENT = "post.draft.created"


def inbound(event: ChoppityEvent) -> InboundEvent:
    """The neutral event for a Choppity delivery (treated as a hint: the post is always re-read)."""
    action: DraftsReady | PostChanged | None = None
    if event.type == DRAFT_EVENT and (event.clip_id or event.post_id):
        action = DraftsReady(ref=event.clip_id or "", post_id=event.post_id)
    elif event.type in OUTCOME_EVENTS and event.post_id:
        action = PostChanged(external_id=event.post_id)
    payload = {"id": event.id, "type": event.type, "created": event.created_ms, "data": event.data}
    return InboundEvent(id=event.id, type=event.type, action=action, payload=payload)


# `greenlight doctor`'s test delivery: a type Greenlight records and acknowledges without acting on.
PROBE_EVENT = "greenlight.doctor"


def sign(body: bytes, secret: str, t: int) -> str:
    """The `choppity-signature-256` header value Choppity would send for `body` at time `t`."""
    mac = hmac.new(secret.encode("utf-8"), f"{t}.".encode("ascii") + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def probe_body(now: float) -> bytes:
    """A delivery of PROBE_EVENT with a fresh id (so it is never taken for a redelivery)."""
    envelope = {"id": f"greenlight-doctor-{uuid.uuid4()}", "type": PROBE_EVENT, "created": int(now * 1000), "data": {}}
    return json.dumps(envelope, separators=(",", ":")).encode()
