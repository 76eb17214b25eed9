"""Decoding raw request bodies into typed payloads, or a 4xx `InboundRejected`."""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl

from pydantic import (
    BaseModel,
    ValidationError,
)

from bot.slack.inbound.payloads import (
    INTERACTIVE,
    JSON_ENVELOPES,
    Inbound,
    SlackPayload,
    SlashCommand,
    SslCheck,
)
from bot.slack.inbound.policy import DEFAULT_POLICY, FORM, JSON, InboundPolicy, InboundRejected, SlackModel


def _media_type(content_type: str | None) -> str:
    if not isinstance(content_type, str) or len(content_type) > 256:
        raise InboundRejected(415, "unsupported content type")
    media, _, params = content_type.partition(";")
    media = media.strip().lower()
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise InboundRejected(415, "unsupported charset")
    if media not in (FORM, JSON):
        raise InboundRejected(415, "unsupported content type")
    return media


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")
    return result


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("non-finite number")
    return value


def _reject_constant(_name: str) -> Any:
    raise ValueError("NaN and Infinity are not JSON")


def _check_shape(value: object, policy: InboundPolicy) -> None:
    """Depth and node caps over a decoded JSON value, iteratively (no recursion to exhaust).

    The top-level object is depth 1; a container deeper than `max_depth` is refused.
    """
    stack: list[tuple[object, int]] = [(value, 1)]
    nodes = 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > policy.max_nodes:
            raise InboundRejected(413, "JSON has too many values")
        if isinstance(node, dict):
            if depth > policy.max_depth:
                raise InboundRejected(400, "JSON nested too deeply")
            if not all(isinstance(key, str) for key in node):
                raise InboundRejected(400, "payload holds a non-string key")
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            if depth > policy.max_depth:
                raise InboundRejected(400, "JSON nested too deeply")
            stack.extend((child, depth + 1) for child in node)
        elif not (node is None or isinstance(node, str | int | float)):  # bool is an int
            raise InboundRejected(400, "payload holds a non-JSON value")


def load_json(text: str, policy: InboundPolicy) -> object:
    try:
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_float=_finite_float,
            parse_constant=_reject_constant,
        )
    except RecursionError:
        # The C decoder gives up around 1000 levels; our own cap below is far lower.
        raise InboundRejected(400, "JSON nested too deeply") from None
    except ValueError:
        # Includes JSONDecodeError and integers over 4300 digits. The message may quote the body.
        raise InboundRejected(400, "body is not valid JSON") from None
    _check_shape(value, policy)
    return value


def _decode_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        raise InboundRejected(400, "body is not UTF-8") from None


def _parse_form(text: str, policy: InboundPolicy) -> dict[str, str]:
    try:
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=policy.max_form_fields,
            separator="&",
        )
    except ValueError:
        # Bad field, too many fields, or percent-escapes that are not UTF-8.
        raise InboundRejected(400, "malformed form body") from None
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise InboundRejected(400, "duplicate form field")
    return fields


_LOC_PART = re.compile(r"[a-z_]{1,40}")


@functools.cache
def _field_names() -> frozenset[str]:
    names: set[str] = {"app_home_opened", "other"}  # the event union's tags
    pending: list[type[BaseModel]] = [SlackModel]
    while pending:
        model = pending.pop()
        names.update(model.model_fields)
        pending.extend(model.__subclasses__())
    return frozenset(names)


def _validation_reason(kind: str, error: ValidationError) -> str:
    """'invalid block_actions payload: user.id (string_pattern_mismatch)' without any input."""
    details = error.errors(include_url=False, include_context=False, include_input=False)
    if not details:
        return f"invalid {kind} payload"
    first = details[0]
    # Keys from the payload (block ids...) are the sender's text: only our field names are shown.
    known = _field_names()
    path = ".".join(str(p) if isinstance(p, int) else (p if p in known else "*") for p in first["loc"])
    kind_of_error = first["type"] if _LOC_PART.fullmatch(first["type"]) else "invalid"
    return f"invalid {kind} payload: {path or '(root)'} ({kind_of_error})"


M = TypeVar("M", bound=SlackModel)


def _validate(model: type[M], kind: str, data: Mapping[str, Any], policy: InboundPolicy) -> M:
    try:
        return model.model_validate(data, context={"policy": policy})
    except ValidationError as error:
        raise InboundRejected(400, _validation_reason(kind, error)) from None


def _interactive(data: object, policy: InboundPolicy) -> Inbound:
    if not isinstance(data, dict):
        raise InboundRejected(400, "payload is not a JSON object")
    kind = data.get("type")
    model = INTERACTIVE.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise InboundRejected(400, "unsupported interaction type")
    return Inbound(cast(SlackPayload, _validate(model, str(kind), data, policy)), data)


def _envelope(data: object, policy: InboundPolicy) -> Inbound:
    if not isinstance(data, dict):
        raise InboundRejected(400, "body is not a JSON object")
    kind = data.get("type")
    model = JSON_ENVELOPES.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise InboundRejected(400, "unsupported event envelope type")
    return Inbound(cast(SlackPayload, _validate(model, str(kind), data, policy)), data)


def _form_kind(fields: dict[str, str], policy: InboundPolicy) -> Inbound:
    if "payload" in fields:
        if len(fields) != 1:
            raise InboundRejected(400, "an interactive payload must be the only form field")
        return _interactive(load_json(fields["payload"], policy), policy)
    if "ssl_check" in fields:
        # Checked before `command`: Bolt's SslCheck middleware answers these before any listener.
        return Inbound(_validate(SslCheck, "ssl_check", fields, policy), dict(fields))
    if "command" in fields:
        return Inbound(_validate(SlashCommand, "slash_command", fields, policy), dict(fields))
    raise InboundRejected(400, "form body is neither a command nor an interaction")


def parse_slack_body(
    raw: bytes, content_type: str | None, *, policy: InboundPolicy = DEFAULT_POLICY
) -> Inbound:
    """Decode and validate a signature-verified Slack request body, or raise InboundRejected.

    application/json -> an Events API envelope (event_callback, url_verification,
    app_rate_limited); application/x-www-form-urlencoded -> exactly one `payload` field (an
    interaction), or a `command` field (a slash command), or `ssl_check`. UTF-8 only.
    """
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise InboundRejected(400, "body is not bytes")
    if len(raw) > policy.max_body_bytes:
        raise InboundRejected(413, "body too large")
    media = _media_type(content_type)
    text = _decode_text(bytes(raw))
    if media == JSON:
        return _envelope(load_json(text, policy), policy)
    return _form_kind(_parse_form(text, policy), policy)


def validate_payload(body: object, *, policy: InboundPolicy = DEFAULT_POLICY) -> Inbound:
    """The same models for an already-decoded payload (Socket Mode hands Bolt dicts).

    The kind is read from structure: `type` names an interaction or an Events API envelope;
    otherwise a `command` field makes a slash command.
    """
    if not isinstance(body, dict):
        raise InboundRejected(400, "payload is not a JSON object")
    _check_shape(body, policy)  # iterative: a dict nested 10,000 deep is refused, not recursed into
    kind = body.get("type")
    if isinstance(kind, str) and kind in INTERACTIVE:
        return _interactive(body, policy)
    if isinstance(kind, str) and kind in JSON_ENVELOPES:
        return _envelope(body, policy)
    if "type" not in body and "command" in body:
        return Inbound(_validate(SlashCommand, "slash_command", body, policy), body)
    raise InboundRejected(400, "unsupported payload")
