"""Slack request bodies, validated at the boundary: typed models or a 4xx, never a 500.

Pure: no I/O, no Bolt. `parse_slack_body` turns the raw bytes of a *signature-verified* request
into an `Inbound` (a typed payload plus the decoded dict for Bolt), or raises `InboundRejected`
with a 400/413/415 and a reason that is safe to log (it never contains the body).

Why not Bolt's parser: `slack_bolt.request.internals.parse_body` treats a form body as an
interactive payload whenever the substring "payload" occurs anywhere in it, then finds no
`payload` field and returns {}; so `/greenlight clip payload-7f3a` was answered 404 "unhandled
request". Here the kind is decided from structure: the media type, then the form's field names.

How the server uses it (HTTP mode)::

    if not verify_slack_request(raw, ts, sig, secret, time.time()):      # always, first
        return JSONResponse({"error": "invalid request"}, status_code=401)
    try:
        inbound = parse_slack_body(raw, request.headers.get("content-type"), policy=policy)
    except InboundRejected as rejected:
        log.info("rejected a Slack request: %s", rejected.reason)
        return JSONResponse({"error": rejected.reason}, status_code=rejected.status)
    bolt_request = BoltRequest(
        body=inbound.body,               # a dict: Bolt does not parse anything itself
        mode="socket_mode",              # BoltRequest refuses a dict body in mode="http"
        query=request.url.query,
        headers=dict(request.headers),
        context={INBOUND_CONTEXT_KEY: inbound.payload},   # listeners: context["slack_inbound"]
    )

Bolt's own verification cannot work on a dict (it HMACs `raw_body`, which is "" for a dict), so
build the App with `request_verification_enabled=False`; with mode="socket_mode" Bolt skips it
anyway (RequestVerification._can_skip). The signature check above is then the only one, so it
must run for every HTTP request, in Socket Mode too. Bolt's SslCheck (`body["ssl_check"] == "1"`)
and UrlVerification (`body["type"] == "url_verification"`) read only `req.body`, so they keep
working with a dict body. Socket Mode payloads arrive as dicts already: `validate_payload` applies
the same models to them (e.g. from a global Bolt middleware).

Listeners read post references with `post_ref_from_button` / `post_ref_from_metadata`, and
modal inputs with `text_input` / `selected_date_time` (or `unstorable_text_errors` over the
whole state), each raising a typed error that maps to an ephemeral or an inline modal error.
"""

from __future__ import annotations

from bot.slack.inbound.parse import parse_slack_body, validate_payload
from bot.slack.inbound.payloads import (
    Action,
    AppHomeOpened,
    AppRateLimited,
    BlockActions,
    EventCallback,
    Inbound,
    OtherEvent,
    SlackPayload,
    SlashCommand,
    SslCheck,
    UrlVerification,
    ViewClosed,
    ViewSubmission,
)
from bot.slack.inbound.policy import (
    DEFAULT_POLICY,
    INBOUND_CONTEXT_KEY,
    InboundPolicy,
    InboundRejected,
    origin_of,
)
from bot.slack.inbound.references import (
    UNKNOWN_POST,
    ClipMetadata,
    InvalidReference,
    PostButton,
    PostMetadata,
    Reference,
    clip_metadata,
    clip_ref_from_button,
    parse_metadata,
    post_ref_from_button,
    post_ref_from_metadata,
)
from bot.slack.inbound.values import (
    INVALID_DATETIME,
    UNSTORABLE_TEXT,
    InputError,
    has_unstorable_characters,
    selected_date_time,
    text_input,
    unstorable_text_errors,
)

__all__ = [
    "ClipMetadata",
    "clip_metadata",
    "clip_ref_from_button",
    "DEFAULT_POLICY",
    "INBOUND_CONTEXT_KEY",
    "INVALID_DATETIME",
    "UNKNOWN_POST",
    "UNSTORABLE_TEXT",
    "Action",
    "AppHomeOpened",
    "AppRateLimited",
    "BlockActions",
    "EventCallback",
    "Inbound",
    "InboundPolicy",
    "InboundRejected",
    "InputError",
    "InvalidReference",
    "OtherEvent",
    "PostButton",
    "PostMetadata",
    "Reference",
    "SlackPayload",
    "SlashCommand",
    "SslCheck",
    "UrlVerification",
    "ViewClosed",
    "ViewSubmission",
    "has_unstorable_characters",
    "origin_of",
    "parse_metadata",
    "parse_slack_body",
    "post_ref_from_button",
    "post_ref_from_metadata",
    "selected_date_time",
    "text_input",
    "unstorable_text_errors",
    "validate_payload",
]
