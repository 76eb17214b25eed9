"""Limits, the allowed response_url origins, and the field types every Slack payload model shares."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StringConstraints,
    ValidationInfo,
)

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
    """ "scheme://host[:port]" (port only when not the default) of an http(s) URL, else None."""
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
        object.__setattr__(
            self, "response_url_origins", frozenset(origin_of(o) for o in self.response_url_origins)
        )

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


def empty_to_none(value: object) -> object:
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


class SlackModel(BaseModel):
    # Slack adds fields over time: unknown ones are ignored. Strict: no "1" -> 1, no 1.9 -> 1.
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)
