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

import functools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal, TypeVar, cast
from urllib.parse import parse_qsl, urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationError,
    ValidationInfo,
)

# ---------------------------------------------------------------------------------------------
# Limits and policy
# ---------------------------------------------------------------------------------------------

MAX_BODY_BYTES = 1_000_000
MAX_JSON_DEPTH = 64
MAX_JSON_NODES = 200_000
MAX_FORM_FIELDS = 64
# Slack's own bounds.
MAX_PRIVATE_METADATA = 3000
MAX_BUTTON_VALUE = 2000
MAX_BLOCK_OR_ACTION_ID = 255
MAX_DATETIME_SECONDS = 9_999_999_999  # slack_sdk's bound for datetimepicker values
# Post ids are BIGINT primary keys.
MAX_POST_ID = 2**63 - 1

# Only Slack's hooks host in production; tests add the fake's origin (see InboundPolicy).
SLACK_RESPONSE_URL_ORIGINS: frozenset[str] = frozenset({"https://hooks.slack.com"})

INBOUND_CONTEXT_KEY = "slack_inbound"

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


_DEFAULT_PORTS = {"http": 80, "https": 443}
_URL_CHARS = re.compile(r"[\x21-\x7e]{1,3000}")


def _origin(url: object) -> str | None:
    """"scheme://host[:port]" (port only when not the default) of an http(s) URL, else None."""
    # Printable ASCII only: urlsplit silently drops tabs and newlines, and IDNA is not needed.
    if not isinstance(url, str) or not _URL_CHARS.fullmatch(url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host or "@" in parts.netloc:
        return None
    return f"{scheme}://{host}" if port in (None, _DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"


def origin_of(url: str) -> str:
    """The origin of an http(s) URL in the form InboundPolicy.response_url_origins holds."""
    origin = _origin(url)
    if origin is None:
        raise ValueError("not an http(s) URL")
    return origin


@dataclass(frozen=True)
class InboundPolicy:
    """What parse_slack_body accepts beyond the fixed rules.

    `response_url_origins` holds origins ("scheme://host" or "scheme://host:port"); an entry
    without a port matches only the scheme's default port. Production keeps the default
    (https://hooks.slack.com); a test harness adds its fake, e.g.
    `InboundPolicy.with_origins(origin_of(settings.slack_api_url))`.
    """

    response_url_origins: frozenset[str] = SLACK_RESPONSE_URL_ORIGINS
    max_body_bytes: int = MAX_BODY_BYTES
    max_depth: int = MAX_JSON_DEPTH
    max_nodes: int = MAX_JSON_NODES
    max_form_fields: int = MAX_FORM_FIELDS

    def __post_init__(self) -> None:
        # Normalised once ("HTTPS://Host:443" -> "https://host") so lookups are exact.
        object.__setattr__(self, "response_url_origins", frozenset(origin_of(o) for o in self.response_url_origins))

    @classmethod
    def with_origins(cls, *origins: str) -> InboundPolicy:
        """The default policy plus the origins of `origins` (URLs or origins)."""
        return cls(response_url_origins=SLACK_RESPONSE_URL_ORIGINS | frozenset(origins))


DEFAULT_POLICY = InboundPolicy()


class InboundRejected(Exception):
    """A request body that is not a Slack payload Greenlight accepts. `reason` is safe to log."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


# ---------------------------------------------------------------------------------------------
# Field types
# ---------------------------------------------------------------------------------------------


# Real ids are uppercase alnum after a type prefix; the test suite's readable ids (U_ANA,
# C0REVIEW) add "_". 32 characters at most: user ids are stored in 32-character columns.
UserId = Annotated[str, StringConstraints(pattern=r"^[UW][A-Z0-9_]{1,31}$")]
EnterpriseId = Annotated[str, StringConstraints(pattern=r"^E[A-Z0-9_]{1,31}$")]
# Org-wide installs put an E id where a T id usually is.
TeamOrEnterpriseId = Annotated[str, StringConstraints(pattern=r"^[TE][A-Z0-9_]{1,31}$")]
ChannelId = Annotated[str, StringConstraints(pattern=r"^[CGD][A-Z0-9_]{1,31}$")]
ViewIdStr = Annotated[str, StringConstraints(pattern=r"^V[A-Z0-9_]{1,31}$")]
AppId = Annotated[str, StringConstraints(pattern=r"^A[A-Z0-9_]{1,31}$")]
BotId = Annotated[str, StringConstraints(pattern=r"^B[A-Z0-9_]{1,31}$")]

Name = Annotated[str, StringConstraints(max_length=255)]
Token = Annotated[str, StringConstraints(max_length=255)]
BlockOrActionId = Annotated[str, StringConstraints(max_length=MAX_BLOCK_OR_ACTION_ID)]
NonEmptyBlockOrActionId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_BLOCK_OR_ACTION_ID)]
ElementType = Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,64}$")]
EventType = Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,64}$")]
TriggerId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,255}$")]
ViewHash = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,255}$")]
Timestamp = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,20}(\.[0-9]{1,20})?$")]  # "1596530385.194939"
EventId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,128}$")]
Challenge = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,512}$")]
CommandName = Annotated[str, StringConstraints(pattern=r"^/[^\s\x00-\x1f/]{1,63}$")]
CommandText = Annotated[str, StringConstraints(max_length=8000)]
OptionValue = Annotated[str, StringConstraints(max_length=MAX_BUTTON_VALUE)]
ButtonValue = Annotated[str, StringConstraints(max_length=MAX_BUTTON_VALUE)]
PrivateMetadata = Annotated[str, StringConstraints(max_length=MAX_PRIVATE_METADATA)]


def _at_most(limit: int) -> AfterValidator:
    def check(value: str) -> str:
        if len(value) > limit:
            raise ValueError("text too long")
        return value

    return AfterValidator(check)


# Modal text stays exactly as sent, lone surrogates included, so the form code can answer with an
# inline error (pydantic's own string constraints would reject it as invalid Unicode: a 400).
InputText = Annotated[str, _at_most(100_000)]
ShortText = Annotated[str, StringConstraints(max_length=64)]


def _empty_to_none(value: object) -> object:
    # Slash commands send absent ids as empty strings.
    return None if value == "" else value


def _policy(info: ValidationInfo) -> InboundPolicy:
    context = info.context
    policy = context.get("policy") if isinstance(context, Mapping) else None
    return policy if isinstance(policy, InboundPolicy) else DEFAULT_POLICY


def _check_response_url(value: str, info: ValidationInfo) -> str:
    origin = _origin(value)
    if origin is None:
        raise ValueError("response_url is not an http(s) URL")
    if origin not in _policy(info).response_url_origins:
        raise ValueError("response_url host is not allowed")
    return value


ResponseUrl = Annotated[str, AfterValidator(_check_response_url)]


class _Model(BaseModel):
    # Slack adds fields over time: unknown ones are ignored. Strict: no "1" -> 1, no 1.9 -> 1.
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


# ---------------------------------------------------------------------------------------------
# Shared pieces
# ---------------------------------------------------------------------------------------------


class User(_Model):
    """The person who clicked or submitted."""

    id: UserId
    team_id: TeamOrEnterpriseId | None = None
    name: Name | None = None
    username: Name | None = None


class Team(_Model):
    id: TeamOrEnterpriseId
    domain: Name | None = None
    enterprise_id: EnterpriseId | None = None
    enterprise_name: Name | None = None


class Enterprise(_Model):
    id: EnterpriseId
    name: Name | None = None


class Channel(_Model):
    id: ChannelId
    name: Name | None = None


class Container(_Model):
    """Where a clicked element lives: a message (channel_id, message_ts) or a view (view_id)."""

    type: ElementType
    channel_id: ChannelId | None = None
    message_ts: Timestamp | None = None
    view_id: ViewIdStr | None = None
    is_ephemeral: bool | None = None


class Option(_Model):
    value: OptionValue


class StateValue(_Model):
    """One element's state in `view.state.values[block_id][action_id]`.

    Text is kept as sent (lone surrogates and control characters included) so the form code can
    answer with an inline error; `selected_date_time` is range-checked by `selected_date_time()`.
    """

    type: ElementType
    value: InputText | None = None
    selected_option: Option | None = None
    selected_options: Annotated[list[Option], Field(max_length=100)] | None = None
    selected_date_time: int | ShortText | None = None
    selected_date: ShortText | None = None
    selected_time: ShortText | None = None
    timezone: ShortText | None = None


StateValues = Annotated[
    dict[BlockOrActionId, Annotated[dict[BlockOrActionId, StateValue], Field(max_length=10)]],
    Field(max_length=100),  # Slack allows 100 blocks in a modal
]


class ViewState(_Model):
    values: StateValues = Field(default_factory=dict)


class View(_Model):
    """A modal (or the Home tab) as Slack echoes it back."""

    id: ViewIdStr
    # Required: Bolt reads body["view"]["type"] of every submission without checking it is there.
    type: ElementType
    callback_id: BlockOrActionId = ""
    private_metadata: PrivateMetadata = ""
    state: ViewState = Field(default_factory=ViewState)
    hash: ViewHash | None = None
    team_id: TeamOrEnterpriseId | None = None
    app_id: AppId | None = None
    bot_id: BotId | None = None
    app_installed_team_id: TeamOrEnterpriseId | None = None
    external_id: Name | None = None
    root_view_id: ViewIdStr | None = None
    previous_view_id: ViewIdStr | None = None


class Action(_Model):
    """One element of `block_actions.actions`."""

    action_id: NonEmptyBlockOrActionId
    block_id: BlockOrActionId | None = None
    type: ElementType
    value: ButtonValue | None = None
    action_ts: Timestamp | None = None
    selected_option: Option | None = None
    selected_options: Annotated[list[Option], Field(max_length=100)] | None = None


class ResponseUrlEntry(_Model):
    """`view_submission.response_urls[]` (conversation selects with response_url_enabled)."""

    block_id: BlockOrActionId
    action_id: BlockOrActionId
    channel_id: ChannelId
    response_url: ResponseUrl


# ---------------------------------------------------------------------------------------------
# Payload kinds
# ---------------------------------------------------------------------------------------------


class BlockActions(_Model):
    """A click on a card button or a Home-tab button (interactive payload, type block_actions)."""

    kind: ClassVar[str] = "block_actions"
    type: Literal["block_actions"]
    user: User
    team: Team | None = None
    enterprise: Enterprise | None = None
    api_app_id: AppId | None = None
    container: Container | None = None
    channel: Channel | None = None
    view: View | None = None
    trigger_id: TriggerId
    response_url: ResponseUrl | None = None
    actions: Annotated[list[Action], Field(min_length=1, max_length=25)]
    is_enterprise_install: bool | None = None

    @property
    def action(self) -> Action:
        """The element that was used (Slack sends exactly one)."""
        return self.actions[0]

    @property
    def channel_id(self) -> str | None:
        """The channel of the clicked message, if it was in a message."""
        if self.container is not None and self.container.channel_id:
            return self.container.channel_id
        return self.channel.id if self.channel is not None else None


class ViewSubmission(_Model):
    """A modal's submit button (type view_submission)."""

    kind: ClassVar[str] = "view_submission"
    type: Literal["view_submission"]
    user: User
    team: Team | None = None
    enterprise: Enterprise | None = None
    api_app_id: AppId | None = None
    trigger_id: TriggerId | None = None
    view: View
    response_urls: Annotated[list[ResponseUrlEntry], Field(max_length=10)] = Field(default_factory=list)
    is_enterprise_install: bool | None = None


class ViewClosed(_Model):
    """A modal closed with notify_on_close (type view_closed)."""

    kind: ClassVar[str] = "view_closed"
    type: Literal["view_closed"]
    user: User
    team: Team | None = None
    enterprise: Enterprise | None = None
    api_app_id: AppId | None = None
    view: View
    is_cleared: bool | None = None
    is_enterprise_install: bool | None = None


class SlashCommand(_Model):
    """A slash command (form fields, all strings)."""

    kind: ClassVar[str] = "slash_command"
    command: CommandName
    text: CommandText = ""
    user_id: UserId
    channel_id: ChannelId
    team_id: TeamOrEnterpriseId
    trigger_id: TriggerId
    response_url: ResponseUrl
    enterprise_id: Annotated[EnterpriseId | None, BeforeValidator(_empty_to_none)] = None
    api_app_id: Annotated[AppId | None, BeforeValidator(_empty_to_none)] = None
    user_name: Name | None = None
    team_domain: Name | None = None
    channel_name: Name | None = None
    enterprise_name: Name | None = None
    is_enterprise_install: Literal["true", "false"] | None = None


class AppHomeOpened(_Model):
    type: Literal["app_home_opened"]
    user: UserId
    channel: ChannelId | None = None
    tab: ShortText = "home"
    event_ts: Timestamp | None = None


class OtherEvent(_Model):
    """An event Greenlight has no model for: only its type is checked; Bolt answers it."""

    type: EventType


def _event_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, Mapping) else getattr(value, "type", None)
    return "app_home_opened" if kind == "app_home_opened" else "other"


Event = Annotated[
    Annotated[AppHomeOpened, Tag("app_home_opened")] | Annotated[OtherEvent, Tag("other")],
    Discriminator(_event_tag),
]


class Authorization(_Model):
    enterprise_id: EnterpriseId | None = None
    team_id: TeamOrEnterpriseId | None = None
    user_id: UserId | None = None
    is_bot: bool | None = None
    is_enterprise_install: bool | None = None


class EventCallback(_Model):
    """An Events API delivery (JSON, type event_callback)."""

    kind: ClassVar[str] = "event_callback"
    type: Literal["event_callback"]
    team_id: TeamOrEnterpriseId | None = None
    enterprise_id: EnterpriseId | None = None
    api_app_id: AppId | None = None
    event: Event
    event_id: EventId
    event_time: Annotated[int, Field(ge=0, le=MAX_DATETIME_SECONDS)]
    authorizations: Annotated[list[Authorization], Field(max_length=10)] | None = None
    is_ext_shared_channel: bool | None = None


class UrlVerification(_Model):
    """The Events API URL handshake; Bolt answers it with the challenge."""

    kind: ClassVar[str] = "url_verification"
    type: Literal["url_verification"]
    challenge: Challenge
    token: Token | None = None


class AppRateLimited(_Model):
    """Slack telling the app it dropped events this minute."""

    kind: ClassVar[str] = "app_rate_limited"
    type: Literal["app_rate_limited"]
    team_id: TeamOrEnterpriseId | None = None
    api_app_id: AppId | None = None
    minute_rate_limited: Annotated[int, Field(ge=0, le=MAX_DATETIME_SECONDS)]


class SslCheck(_Model):
    """Slack's periodic certificate probe for slash-command URLs; Bolt's SslCheck answers 200."""

    kind: ClassVar[str] = "ssl_check"
    ssl_check: Literal["1"]
    token: Token | None = None


SlackPayload = (
    BlockActions | ViewSubmission | ViewClosed | SlashCommand | EventCallback | UrlVerification | AppRateLimited | SslCheck
)

_INTERACTIVE: dict[str, type[_Model]] = {
    "block_actions": BlockActions,
    "view_submission": ViewSubmission,
    "view_closed": ViewClosed,
}
_JSON_ENVELOPES: dict[str, type[_Model]] = {
    "event_callback": EventCallback,
    "url_verification": UrlVerification,
    "app_rate_limited": AppRateLimited,
}


@dataclass(frozen=True)
class Inbound:
    """A validated Slack request: `payload` for our code, `body` (the decoded dict) for Bolt."""

    payload: SlackPayload
    body: dict[str, Any] = field(repr=False)

    @property
    def kind(self) -> str:
        """block_actions, view_submission, view_closed, slash_command, event_callback, ..."""
        return self.payload.kind


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------


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


def _load_json(text: str, policy: InboundPolicy) -> object:
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
    pending: list[type[BaseModel]] = [_Model]
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


M = TypeVar("M", bound=_Model)


def _validate(model: type[M], kind: str, data: Mapping[str, Any], policy: InboundPolicy) -> M:
    try:
        return model.model_validate(data, context={"policy": policy})
    except ValidationError as error:
        raise InboundRejected(400, _validation_reason(kind, error)) from None


def _interactive(data: object, policy: InboundPolicy) -> Inbound:
    if not isinstance(data, dict):
        raise InboundRejected(400, "payload is not a JSON object")
    kind = data.get("type")
    model = _INTERACTIVE.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise InboundRejected(400, "unsupported interaction type")
    return Inbound(cast(SlackPayload, _validate(model, str(kind), data, policy)), data)


def _envelope(data: object, policy: InboundPolicy) -> Inbound:
    if not isinstance(data, dict):
        raise InboundRejected(400, "body is not a JSON object")
    kind = data.get("type")
    model = _JSON_ENVELOPES.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise InboundRejected(400, "unsupported event envelope type")
    return Inbound(cast(SlackPayload, _validate(model, str(kind), data, policy)), data)


def _form_kind(fields: dict[str, str], policy: InboundPolicy) -> Inbound:
    if "payload" in fields:
        if len(fields) != 1:
            raise InboundRejected(400, "an interactive payload must be the only form field")
        return _interactive(_load_json(fields["payload"], policy), policy)
    if "ssl_check" in fields:
        # Checked before `command`: Bolt's SslCheck middleware answers these before any listener.
        return Inbound(_validate(SslCheck, "ssl_check", fields, policy), dict(fields))
    if "command" in fields:
        return Inbound(_validate(SlashCommand, "slash_command", fields, policy), dict(fields))
    raise InboundRejected(400, "form body is neither a command nor an interaction")


def parse_slack_body(raw: bytes, content_type: str | None, *, policy: InboundPolicy = DEFAULT_POLICY) -> Inbound:
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
        return _envelope(_load_json(text, policy), policy)
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
    if isinstance(kind, str) and kind in _INTERACTIVE:
        return _interactive(body, policy)
    if isinstance(kind, str) and kind in _JSON_ENVELOPES:
        return _envelope(body, policy)
    if "type" not in body and "command" in body:
        return Inbound(_validate(SlashCommand, "slash_command", body, policy), body)
    raise InboundRejected(400, "unsupported payload")


# ---------------------------------------------------------------------------------------------
# Post references (button values, private_metadata)
# ---------------------------------------------------------------------------------------------

UNKNOWN_POST = "Greenlight doesn't know this post any more."

PostId = Annotated[int, Field(ge=1, le=MAX_POST_ID)]


class InvalidReference(ValueError):
    """A button value or private_metadata that names no post. `reason` is safe to log;
    `user_message` is what to show (ephemeral for a click, inline error for a modal)."""

    user_message = UNKNOWN_POST

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Reference(_Model):
    """Base of the reference kinds: strict JSON types, unknown keys ignored."""


class PostButton(Reference):
    """A card button's value: the decimal post id, e.g. "42"."""

    post_id: PostId

    @classmethod
    def from_value(cls, value: object) -> PostButton:
        """Parse a button value; only ASCII digits, no sign, whitespace or leading zero."""
        if not isinstance(value, str) or not _DECIMAL_ID.fullmatch(value):
            raise InvalidReference("button value is not a post id")
        try:
            return cls(post_id=int(value))
        except ValidationError:
            raise InvalidReference("button value is out of range") from None


_DECIMAL_ID = re.compile(r"[1-9][0-9]{0,18}")


class PostMetadata(Reference):
    """A post modal's private_metadata: {"post_id": 42} (other keys, such as "tz", allowed)."""

    post_id: PostId


R = TypeVar("R", bound=Reference)


def parse_metadata(raw: object, model: type[R]) -> R:
    """Decode a view's private_metadata into `model`, or raise InvalidReference.

    New reference kinds (say a clip-level one) are a new Reference subclass passed here.
    """
    if not isinstance(raw, str) or not raw:
        raise InvalidReference("private_metadata is missing")
    if len(raw) > MAX_PRIVATE_METADATA:
        raise InvalidReference("private_metadata is too long")
    try:
        data = _load_json(raw, DEFAULT_POLICY)
    except InboundRejected:
        raise InvalidReference("private_metadata is not JSON") from None
    if not isinstance(data, dict):
        raise InvalidReference("private_metadata is not a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError:
        raise InvalidReference(f"private_metadata is not a valid {model.__name__}") from None


def post_ref_from_button(value: object) -> int:
    """The post id a card button points at (button values are `str(post_id)`)."""
    return PostButton.from_value(value).post_id


def post_ref_from_metadata(raw: object) -> int:
    """The post id in a post modal's private_metadata: a JSON integer in 1..2^63-1, nothing else
    (not true, not 1.9, not "7")."""
    return parse_metadata(raw, PostMetadata).post_id


# ---------------------------------------------------------------------------------------------
# Modal inputs
# ---------------------------------------------------------------------------------------------

UNSTORABLE_TEXT = "This text contains characters Slack can't store; please retype it."
INVALID_DATETIME = "That date and time isn't valid; please pick it again."

# C0 controls except \t and \n, and any surrogate code point (in a Python str decoded by json,
# a surrogate is always a lone one: valid pairs are combined into one character).
_UNSTORABLE = re.compile("[\x00-\x08\x0b-\x1f\ud800-\udfff]")


class InputError(ValueError):
    """A modal input that can't be accepted: answer `ack(response_action="errors",
    errors={block_id: message})`."""

    def __init__(self, block_id: str, message: str) -> None:
        super().__init__(message)
        self.block_id = block_id
        self.message = message

    def as_errors(self) -> dict[str, str]:
        """The mapping for ack(response_action="errors", errors=...)."""
        return {self.block_id: self.message}


def has_unstorable_characters(text: str) -> bool:
    """True for lone surrogates, NUL and other C0 controls except \\t and \\n."""
    return _UNSTORABLE.search(text) is not None


def _element(values: Mapping[str, Any], block_id: str) -> Mapping[str, Any]:
    block = values.get(block_id) if isinstance(values, Mapping) else None
    if not isinstance(block, Mapping) or not block:
        return {}
    element = block.get(block_id)
    if element is None:
        element = next(iter(block.values()))  # one element per input block
    return element if isinstance(element, Mapping) else {}


def text_input(values: Mapping[str, Any], block_id: str) -> str | None:
    """A plain_text_input's value (None when empty or absent); InputError if it has characters
    that can't be stored or sent back to Slack."""
    value = _element(values, block_id).get("value")
    if not isinstance(value, str):
        return None
    if has_unstorable_characters(value):
        raise InputError(block_id, UNSTORABLE_TEXT)
    return value


def unstorable_text_errors(values: Mapping[str, Any]) -> dict[str, str]:
    """{block_id: UNSTORABLE_TEXT} for every input in `view.state.values` whose text is unusable."""
    errors: dict[str, str] = {}
    if not isinstance(values, Mapping):
        return errors
    for block_id, block in values.items():
        if not isinstance(block, Mapping):
            continue
        for element in block.values():
            value = element.get("value") if isinstance(element, Mapping) else None
            if isinstance(value, str) and has_unstorable_characters(value):
                errors[str(block_id)] = UNSTORABLE_TEXT
    return errors


_DATETIME_DIGITS = re.compile(r"[0-9]{1,10}")


def selected_date_time(values: Mapping[str, Any], block_id: str) -> int | None:
    """A datetimepicker's UNIX seconds (None when nothing is picked); InputError when the value is
    not an integer in 0..9_999_999_999 (10^13, a 30-digit number, 1.5, true, "-1"...)."""
    raw = _element(values, block_id).get("selected_date_time")
    if raw is None:
        return None
    if isinstance(raw, str) and _DATETIME_DIGITS.fullmatch(raw):
        raw = int(raw)
    if not isinstance(raw, int) or isinstance(raw, bool) or not 0 <= raw <= MAX_DATETIME_SECONDS:
        raise InputError(block_id, INVALID_DATETIME)
    return raw


__all__ = [
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
