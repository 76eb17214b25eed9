"""bot.slack.inbound: Slack bodies are typed at the boundary; anything else is a 4xx, never a 500.

Fixtures in tests/payloads/ are our own, shaped after bolt-python's scenario tests
(test_block_actions.py, test_view_submission.py, test_view_closed.py, test_slash_command.py,
test_events*.py, test_ssl_check.py) and python-slack-sdk's test_views.py::test_all_state_values.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_bolt import App, BoltRequest
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient

from bot.domain.forms import FieldId
from bot.slack.ids import COMMAND, ActionId, ViewId
from bot.slack.inbound import (
    INBOUND_CONTEXT_KEY,
    INVALID_DATETIME,
    UNKNOWN_POST,
    UNSTORABLE_TEXT,
    AppHomeOpened,
    AppRateLimited,
    BlockActions,
    EventCallback,
    Inbound,
    InboundPolicy,
    InboundRejected,
    InputError,
    InvalidReference,
    OtherEvent,
    PostMetadata,
    Reference,
    SlashCommand,
    SslCheck,
    UrlVerification,
    ViewClosed,
    ViewSubmission,
    origin_of,
    parse_metadata,
    parse_slack_body,
    post_ref_from_button,
    post_ref_from_metadata,
    selected_date_time,
    text_input,
    unstorable_text_errors,
    validate_payload,
)
from bot.slack.inbound.policy import MAX_POST_ID

PAYLOADS = Path(__file__).parent / "payloads"
FORM = "application/x-www-form-urlencoded"
JSON_TYPE = "application/json"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PAYLOADS / name).read_text(encoding="utf-8"))
    return data


def form_body(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def interaction(payload: object) -> bytes:
    """How Slack sends interactivity: one form field, `payload`, holding the JSON."""
    return urlencode({"payload": json.dumps(payload)}).encode()


def command_fields(text: str, **overrides: str) -> dict[str, str]:
    fields = dict(
        token="deprecated", team_id="T1", team_domain="acme", channel_id="C0REVIEW", channel_name="review",
        user_id="U_ANA", user_name="u_ana", command="/greenlight", text=text, api_app_id="A1",
        is_enterprise_install="false", response_url="https://hooks.slack.com/commands/T1/1/abc",
        trigger_id="1.0123456789abcdef",
    )
    fields.update(overrides)
    return fields


def rejected(raw: bytes, content_type: str | None = FORM, policy: InboundPolicy | None = None) -> InboundRejected:
    with pytest.raises(InboundRejected) as info:
        if policy is None:
            parse_slack_body(raw, content_type)
        else:
            parse_slack_body(raw, content_type, policy=policy)
    return info.value


# ---------------------------------------------------------------------------------------------
# Recorded shapes
# ---------------------------------------------------------------------------------------------


def test_card_button_click() -> None:
    inbound = parse_slack_body(interaction(load("block_actions_card_button.json")), FORM)
    assert inbound.kind == "block_actions"
    payload = inbound.payload
    assert isinstance(payload, BlockActions)
    assert payload.user.id == "U0427KQ2B" and payload.user.team_id == "T03HX9A1C"
    assert payload.action.action_id == ActionId.PUBLISH.value and payload.action.value == "42"
    assert payload.channel_id == "C05REVIEW9"
    assert payload.container is not None and payload.container.message_ts == "1718031442.118529"
    assert payload.response_url is not None and payload.response_url.startswith("https://hooks.slack.com/")
    # Bolt gets the whole decoded body, unknown fields (message, token...) included.
    assert inbound.body["message"]["ts"] == "1718031442.118529"
    assert inbound.body == load("block_actions_card_button.json")


def test_ephemeral_click_in_an_enterprise_private_channel() -> None:
    payload = parse_slack_body(interaction(load("block_actions_ephemeral_enterprise.json")), FORM).payload
    assert isinstance(payload, BlockActions)
    assert payload.user.id == "W012ORGUSR"
    assert payload.team is not None and payload.team.enterprise_id == "E01ACMEORG"
    assert payload.container is not None and payload.container.is_ephemeral is True
    assert payload.channel_id == "G01PRIVATE"


def test_home_tab_click_has_a_view_container_and_no_channel() -> None:
    payload = parse_slack_body(interaction(load("block_actions_home_tab.json")), FORM).payload
    assert isinstance(payload, BlockActions)
    assert payload.channel_id is None and payload.response_url is None
    assert payload.container is not None and payload.container.view_id == "V07HOME123"
    assert payload.view is not None and payload.view.type == "home"


def test_view_submission_with_every_element_state() -> None:
    inbound = parse_slack_body(interaction(load("view_submission_edit.json")), FORM)
    payload = inbound.payload
    assert isinstance(payload, ViewSubmission)
    assert payload.view.callback_id == ViewId.EDIT.value
    assert post_ref_from_metadata(payload.view.private_metadata) == 42
    values = payload.view.state.values
    assert values[FieldId.CAPTION.value][FieldId.CAPTION.value].value == "New caption 🎉\nline two\twith tab"
    assert values[FieldId.CATEGORY.value][FieldId.CATEGORY.value].selected_option is not None
    assert values[FieldId.PRIVACY.value][FieldId.PRIVACY.value].selected_option is None
    assert values[FieldId.WHEN.value][FieldId.WHEN.value].selected_date_time == 1718035200
    raw_values = inbound.body["view"]["state"]["values"]
    assert text_input(raw_values, FieldId.CAPTION) == "New caption 🎉\nline two\twith tab"
    assert text_input(raw_values, FieldId.TITLE) is None
    assert selected_date_time(raw_values, FieldId.WHEN) == 1718035200
    assert unstorable_text_errors(raw_values) == {}


def test_org_wide_view_submission_with_response_urls_and_no_state_values() -> None:
    payload = parse_slack_body(interaction(load("view_submission_response_urls.json")), FORM).payload
    assert isinstance(payload, ViewSubmission)
    assert payload.team is None and payload.user.team_id == "E01ACMEORG"
    assert payload.view.state.values == {}
    assert payload.view.app_installed_team_id == "T03HX9A1C"
    assert payload.response_urls[0].channel_id == "C05REVIEW9"
    assert post_ref_from_metadata(payload.view.private_metadata) == 9  # "tz" is ignored


def test_view_closed() -> None:
    payload = parse_slack_body(interaction(load("view_closed.json")), FORM).payload
    assert isinstance(payload, ViewClosed) and payload.is_cleared is False
    assert payload.view.callback_id == ViewId.LOADING.value


def test_slash_command_form() -> None:
    inbound = parse_slack_body(form_body("slash_command.form"), FORM)
    payload = inbound.payload
    assert isinstance(payload, SlashCommand)
    assert payload.command == COMMAND and payload.text == "clip payload-7f3a"
    assert payload.user_id == "U0427KQ2B" and payload.channel_id == "C05REVIEW9" and payload.team_id == "T03HX9A1C"
    assert payload.enterprise_id is None  # sent as an empty string
    assert inbound.body["command"] == "/greenlight" and inbound.body["text"] == "clip payload-7f3a"


def test_ssl_check() -> None:
    inbound = parse_slack_body(form_body("ssl_check.form"), FORM)
    assert isinstance(inbound.payload, SslCheck) and inbound.body["ssl_check"] == "1"


def test_app_home_opened() -> None:
    inbound = parse_slack_body(json.dumps(load("event_app_home_opened.json")).encode(), JSON_TYPE)
    payload = inbound.payload
    assert isinstance(payload, EventCallback)
    assert isinstance(payload.event, AppHomeOpened)
    assert payload.event.user == "U0427KQ2B" and payload.event.tab == "home" and payload.event.channel == "D07DMCHAN1"


def test_other_events_pass_with_their_type_checked() -> None:
    payload = parse_slack_body(json.dumps(load("event_app_mention.json")).encode(), JSON_TYPE).payload
    assert isinstance(payload, EventCallback) and isinstance(payload.event, OtherEvent)
    assert payload.event.type == "app_mention"


def test_url_verification_and_rate_limit_notices() -> None:
    payload = parse_slack_body(json.dumps(load("event_url_verification.json")).encode(), JSON_TYPE).payload
    assert isinstance(payload, UrlVerification) and payload.challenge == "k2T9xVq7LmZ4pR8sW1nB6yD3cF0gH5jA"
    limited = parse_slack_body(json.dumps(load("event_app_rate_limited.json")).encode(), "application/json; charset=UTF-8")
    assert isinstance(limited.payload, AppRateLimited)


def test_the_test_suites_readable_ids_are_accepted() -> None:
    payload = load("block_actions_card_button.json")
    payload["user"] = {"id": "U_ANA", "username": "u_ana", "team_id": "T1"}
    payload["container"]["channel_id"] = payload["channel"]["id"] = "C0REVIEW"
    payload["team"] = {"id": "T1", "domain": "acme"}
    parsed = parse_slack_body(interaction(payload), FORM).payload
    assert isinstance(parsed, BlockActions) and parsed.user.id == "U_ANA"


# ---------------------------------------------------------------------------------------------
# Bug 1: the kind comes from structure, not from substrings
# ---------------------------------------------------------------------------------------------

AWKWARD_TEXTS = [
    "clip payload-7f3a",
    "payload",
    "payload=",
    "payload={}",
    "clip command",
    "command=/other",
    "type=block_actions",
    '{"type": "view_submission"}',
    "100% & more = fun",
    "a&b=c&payload=x",
    "%2F%26%3D%25",
    "ssl_check=1",
    "héllo wörld — 🎉 日本語",
    "",
    "   ",
]


@pytest.mark.parametrize("text", AWKWARD_TEXTS)
def test_slash_command_text_is_never_mistaken_for_anything_else(text: str) -> None:
    inbound = parse_slack_body(urlencode(command_fields(text)).encode(), FORM)
    assert isinstance(inbound.payload, SlashCommand)
    assert inbound.payload.text == text
    assert inbound.body["text"] == text and inbound.body["command"] == "/greenlight"


@pytest.mark.parametrize("text", AWKWARD_TEXTS)
def test_user_names_and_other_fields_with_payload_in_them_are_fine(text: str) -> None:
    fields = command_fields("queue", user_name=text[:200] or "payload", channel_name="payload", team_domain="command")
    assert isinstance(parse_slack_body(urlencode(fields).encode(), FORM).payload, SlashCommand)


def test_an_interaction_can_carry_command_or_payload_words() -> None:
    payload = load("block_actions_card_button.json")
    payload["command"] = "/greenlight"  # a stray key is ignored; the kind is block_actions
    payload["message"]["text"] = "payload=command&type=event_callback"
    inbound = parse_slack_body(interaction(payload), FORM)
    assert isinstance(inbound.payload, BlockActions)


def test_a_payload_field_must_be_alone() -> None:
    raw = interaction(load("block_actions_card_button.json")) + b"&command=%2Fgreenlight"
    assert rejected(raw).reason == "an interactive payload must be the only form field"


def test_interactions_are_form_encoded_and_events_are_json() -> None:
    assert rejected(json.dumps(load("block_actions_card_button.json")).encode(), JSON_TYPE).reason == (
        "unsupported event envelope type"
    )
    assert rejected(interaction(load("event_app_home_opened.json"))).reason == "unsupported interaction type"
    assert rejected(urlencode({"payload": json.dumps({"type": "shortcut"})}).encode()).reason == (
        "unsupported interaction type"
    )
    assert rejected(b"text=help&user_id=U_ANA").reason == "form body is neither a command nor an interaction"


# ---------------------------------------------------------------------------------------------
# Bug 2: hostile but signed payloads
# ---------------------------------------------------------------------------------------------


def test_payload_nested_ten_thousand_deep_is_refused_quickly() -> None:
    deep = "[" * 10_000 + "]" * 10_000
    started = time.perf_counter()
    for raw, ctype in ((b"payload=" + quote(deep).encode(), FORM), (deep.encode(), JSON_TYPE),
                       (('{"a":' * 10_000 + "1" + "}" * 10_000).encode(), JSON_TYPE)):
        error = rejected(raw, ctype)
        assert error.status == 400 and error.reason == "JSON nested too deeply"
    assert time.perf_counter() - started < 1.0


def test_depth_cap_is_explicit_not_just_the_recursion_limit() -> None:
    payload = load("block_actions_card_button.json")

    def nest(levels: int) -> Any:
        value: Any = 1
        for _ in range(levels):
            value = [value]
        return value

    payload["message"]["deep"] = nest(62)  # body(1) + message(2) + 62 lists = depth 64
    assert isinstance(parse_slack_body(interaction(payload), FORM).payload, BlockActions)
    payload["message"]["deep"] = nest(63)
    assert rejected(interaction(payload)).reason == "JSON nested too deeply"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"payload=not+json", "body is not valid JSON"),
        (b"payload=", "body is not valid JSON"),
        (b"payload=%5B1%2C2%5D", "payload is not a JSON object"),  # [1,2]
        (b"payload=%22block_actions%22", "payload is not a JSON object"),
        (b"payload=null", "payload is not a JSON object"),
        (b"payload=%7B%22type%22%3A%22block_actions%22%2C%22type%22%3A%22view_closed%22%7D", "body is not valid JSON"),
        (b"payload=%7B%22a%22%3ANaN%7D", "body is not valid JSON"),
        (b"payload=%7B%22a%22%3A1e400%7D", "body is not valid JSON"),
        (b"payload=%7B%22a%22%3A" + b"9" * 5000 + b"%7D", "body is not valid JSON"),
        (b"payload=%ff", "malformed form body"),
        (b"payload", "malformed form body"),
        (b"command=%2Fgreenlight&&text=x", "malformed form body"),
        (b"command=%2Fgreenlight&command=%2Fother", "duplicate form field"),
        (b"", "form body is neither a command nor an interaction"),
        (b"\xff\xfe", "body is not UTF-8"),
    ],
)
def test_malformed_bodies_are_400(raw: bytes, reason: str) -> None:
    error = rejected(raw)
    assert (error.status, error.reason) == (400, reason)


def test_too_many_form_fields_is_400() -> None:
    fields = command_fields("help") | {f"x{i}": "1" for i in range(100)}
    assert rejected(urlencode(fields).encode()).reason == "malformed form body"


@pytest.mark.parametrize(
    ("content_type", "status"),
    [(None, 415), ("", 415), ("text/plain", 415), ("multipart/form-data", 415),
     ("application/x-www-form-urlencoded; charset=latin-1", 415), ("x" * 1000, 415)],
)
def test_unsupported_media_types_are_415(content_type: str | None, status: int) -> None:
    assert rejected(urlencode(command_fields("help")).encode(), content_type).status == status


def test_media_type_parameters_and_case_are_tolerated() -> None:
    raw = urlencode(command_fields("help")).encode()
    for content_type in ("Application/X-WWW-Form-Urlencoded", "application/x-www-form-urlencoded; charset=utf-8",
                         'application/x-www-form-urlencoded;charset="UTF-8"'):
        assert isinstance(parse_slack_body(raw, content_type).payload, SlashCommand)


def test_oversized_body_is_413() -> None:
    assert rejected(b"x" * 1_000_001).status == 413
    small = InboundPolicy(max_body_bytes=10)
    assert rejected(urlencode(command_fields("help")).encode(), policy=small).status == 413


def test_too_many_json_values_is_413() -> None:
    payload = load("block_actions_card_button.json")
    payload["message"]["many"] = [0] * 300_000
    assert rejected(interaction(payload)).status == 413


def block_actions(**changes: Any) -> dict[str, Any]:
    payload = load("block_actions_card_button.json")
    for dotted, value in changes.items():
        target = payload
        *path, last = dotted.split("__")
        for key in path:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if value is DELETE:
            del target[last]
        else:
            target[last] = value
    return payload


DELETE = object()


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"user": DELETE}, "user"),
        ({"user": None}, "user"),
        ({"user": "U0427KQ2B"}, "user"),
        ({"user__id": DELETE}, "user.id"),
        ({"user__id": "U" + "A" * 32}, "user.id"),  # 33 characters: over the 32-character column
        ({"user__id": "U" * 5000}, "user.id"),
        ({"user__id": "u0427kq2b"}, "user.id"),
        ({"user__id": "C05REVIEW9"}, "user.id"),  # a channel id where a user id belongs
        ({"user__id": "U0427KQ2B\n"}, "user.id"),
        ({"user__id": "U0427KQ2B\ud800"}, "user.id"),
        ({"user__id": 42}, "user.id"),
        ({"user__team_id": "T" + "1" * 40}, "user.team_id"),
        ({"actions": []}, "actions"),
        ({"actions": DELETE}, "actions"),
        ({"actions": {"0": {}}}, "actions"),
        ({"actions__0__action_id": ""}, "actions.0.action_id"),
        ({"actions__0__value": 2**63}, "actions.0.value"),  # a number where Slack sends a string
        ({"actions__0__value": "9" * 3000}, "actions.0.value"),
        ({"trigger_id": DELETE}, "trigger_id"),
        ({"trigger_id": "1.2 3"}, "trigger_id"),
        ({"container__channel_id": "#general"}, "container.channel_id"),
        ({"container__is_ephemeral": "false"}, "container.is_ephemeral"),
        ({"container__message_ts": "1e9"}, "container.message_ts"),
        ({"team__id": "T1; DROP TABLE"}, "team.id"),
        ({"response_url": "https://evil.example.com/actions/x"}, "response_url"),
        ({"response_url": "http://hooks.slack.com/actions/x"}, "response_url"),
        ({"response_url": "https://hooks.slack.com@evil.example.com/x"}, "response_url"),
        ({"response_url": "https://user:pw@hooks.slack.com/x"}, "response_url"),
        ({"response_url": "https://hooks.slack.com:8443/x"}, "response_url"),
        ({"response_url": "https://hooks.slack.com.evil.example.com/x"}, "response_url"),
        ({"response_url": "https://hooks.slack.com/\nx"}, "response_url"),
        ({"response_url": "javascript:alert(1)"}, "response_url"),
        ({"response_url": "file:///etc/passwd"}, "response_url"),
        ({"response_url": "https://[::1/x"}, "response_url"),
        ({"response_url": "https://hooks.slack.com:99999/x"}, "response_url"),
    ],
)
def test_bad_block_actions_are_400_with_a_safe_reason(changes: dict[str, Any], where: str) -> None:
    error = rejected(interaction(block_actions(**changes)))
    assert error.status == 400
    assert error.reason.startswith(f"invalid block_actions payload: {where} ("), error.reason
    for value in changes.values():
        if isinstance(value, str) and len(value) > 3:
            assert value not in error.reason


def test_reasons_never_echo_user_keys_or_values() -> None:
    marker = "SECRET_MARKER_6d1f"
    payload = load("view_submission_edit.json")
    payload["view"]["state"]["values"][marker] = {marker: {"type": 5}}
    error = rejected(interaction(payload))
    assert marker not in error.reason and marker.lower() not in error.reason
    assert error.reason == "invalid view_submission payload: view.state.values.*.*.type (string_type)"


def test_response_url_allowlist_can_be_extended_for_a_local_fake() -> None:
    local = "http://127.0.0.1:54321/response/abc"
    raw = interaction(block_actions(response_url=local))
    assert "response_url" in rejected(raw).reason
    policy = InboundPolicy.with_origins(origin_of("http://127.0.0.1:54321/api/"))
    assert isinstance(parse_slack_body(raw, FORM, policy=policy).payload, BlockActions)
    # hooks.slack.com still passes, and the fake's origin is exact: another port does not.
    assert isinstance(parse_slack_body(interaction(load("block_actions_card_button.json")), FORM, policy=policy).payload, BlockActions)
    other_port = interaction(block_actions(response_url="http://127.0.0.1:54322/response/abc"))
    assert "response_url" in rejected(other_port, policy=policy).reason
    other_host = interaction(block_actions(response_url="http://localhost:54321/response/abc"))
    assert "response_url" in rejected(other_host, policy=policy).reason
    assert origin_of("HTTPS://Hooks.Slack.com:443/x") == "https://hooks.slack.com"
    with pytest.raises(ValueError):
        origin_of("ftp://example.com")


def test_slash_command_response_url_and_ids_are_checked_too() -> None:
    for overrides, where in [
        ({"response_url": "https://evil.example.com/x"}, "response_url"),
        ({"user_id": "U" + "A" * 40}, "user_id"),
        ({"user_id": ""}, "user_id"),
        ({"channel_id": "general"}, "channel_id"),
        ({"command": "greenlight"}, "command"),
        ({"command": "/green light"}, "command"),
        ({"trigger_id": ""}, "trigger_id"),
        ({"enterprise_id": "E" * 50}, "enterprise_id"),
        ({"text": "x" * 8001}, "text"),
    ]:
        error = rejected(urlencode(command_fields("help") | overrides).encode())
        assert error.reason.startswith(f"invalid slash_command payload: {where} ("), (overrides, error.reason)
    missing = command_fields("help")
    del missing["user_id"]
    assert "user_id" in rejected(urlencode(missing).encode()).reason


def test_view_submission_limits() -> None:
    payload = load("view_submission_edit.json")
    payload["view"]["private_metadata"] = "x" * 3001
    assert "view.private_metadata" in rejected(interaction(payload)).reason
    payload = load("view_submission_edit.json")
    payload["view"]["state"]["values"] = {f"b{i}": {"a": {"type": "plain_text_input", "value": "x"}} for i in range(101)}
    assert "view.state.values" in rejected(interaction(payload)).reason
    payload = load("view_submission_edit.json")
    del payload["view"]
    assert "view" in rejected(interaction(payload)).reason
    payload = load("view_submission_edit.json")
    payload["view"]["state"]["values"]["greenlight_when"]["greenlight_when"]["selected_date_time"] = 1.5
    assert "selected_date_time" in rejected(interaction(payload)).reason


def test_bad_event_envelopes() -> None:
    event = load("event_app_home_opened.json")
    event["event"]["user"] = "U" * 40
    assert rejected(json.dumps(event).encode(), JSON_TYPE).reason.startswith("invalid event_callback payload: event.")
    event = load("event_app_home_opened.json")
    event["event"] = {"type": "Not An Event"}
    assert rejected(json.dumps(event).encode(), JSON_TYPE).status == 400
    event = load("event_app_home_opened.json")
    event["event_time"] = 10**13
    assert "event_time" in rejected(json.dumps(event).encode(), JSON_TYPE).reason
    challenge = {"type": "url_verification", "challenge": "a b"}
    assert "challenge" in rejected(json.dumps(challenge).encode(), JSON_TYPE).reason
    assert rejected(b"[]", JSON_TYPE).reason == "body is not a JSON object"
    assert rejected(b'{"type": 5}', JSON_TYPE).reason == "unsupported event envelope type"


# ---------------------------------------------------------------------------------------------
# Post references
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1", "42", "9223372036854775807"])
def test_button_values_that_name_a_post(value: str) -> None:
    assert post_ref_from_button(value) == int(value)


@pytest.mark.parametrize(
    "value",
    ["9223372036854775808", "99999999999999999999", "9" * 5000, "0", "00", "042", "-1", "+1", " 1", "1 ", "1\n",
     "1.0", "1e3", "١٢", "１２", "0x10", "", "1_000", None, 42, 1.0, True, b"1"],
)
def test_button_values_that_do_not(value: object) -> None:
    with pytest.raises(InvalidReference) as info:
        post_ref_from_button(value)
    assert info.value.user_message == UNKNOWN_POST


@pytest.mark.parametrize(
    ("raw", "expected"),
    [('{"post_id":42}', 42), ('{"post_id": 7, "tz": "Europe/Paris"}', 7), ('{"post_id":9223372036854775807}', MAX_POST_ID)],
)
def test_metadata_that_names_a_post(raw: str, expected: int) -> None:
    assert post_ref_from_metadata(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ['{"post_id": true}', '{"post_id": false}', '{"post_id": 1.9}', '{"post_id": 1.0}', '{"post_id": 1e0}',
     '{"post_id": "7"}', '{"post_id": 0}', '{"post_id": -1}', '{"post_id": 9223372036854775808}',
     '{"post_id": null}', '{"post_id": [1]}', '{"post_id": {"id": 1}}', '{"postid": 1}', "{}", "[1]", "1.9", "true",
     "42", '"42"', "null", "not json", "", None, 42, '{"post_id": 1, "post_id": 2}', '{"post_id": NaN}',
     '{"post_id": ' + "9" * 5000 + "}", "[" * 5000 + "]" * 5000, "x" * 3001],
)
def test_metadata_that_does_not(raw: object) -> None:
    with pytest.raises(InvalidReference) as info:
        post_ref_from_metadata(raw)
    assert info.value.user_message == UNKNOWN_POST
    if isinstance(raw, str) and raw:
        assert raw[:20] not in info.value.reason or raw[:20] in ("not json",)


def test_more_reference_kinds_can_be_added() -> None:
    class ClipMetadata(Reference):
        clip_id: str
        post_id: int | None = None

    ref = parse_metadata('{"clip_id": "9d8e7f6a", "extra": 1}', ClipMetadata)
    assert ref.clip_id == "9d8e7f6a" and ref.post_id is None
    with pytest.raises(InvalidReference):
        parse_metadata('{"clip_id": 5}', ClipMetadata)
    assert parse_metadata('{"post_id": 3}', PostMetadata).post_id == 3


# ---------------------------------------------------------------------------------------------
# Bug 3: modal text that can't be stored is an inline error
# ---------------------------------------------------------------------------------------------


def submission_with_caption(caption_json: str) -> bytes:
    """A view_submission whose caption value is the given JSON string literal (escapes kept)."""
    payload = load("view_submission_edit.json")
    payload["view"]["state"]["values"][FieldId.CAPTION.value][FieldId.CAPTION.value]["value"] = "__CAPTION__"
    text = json.dumps(payload).replace('"__CAPTION__"', caption_json)
    return urlencode({"payload": text}).encode()


@pytest.mark.parametrize(
    "caption_json",
    ['"lone \\ud800 high"', '"lone \\udfff low"', '"\\ude00\\ud83d reversed pair"', '"nul \\u0000 here"',
     '"escape \\u001b[31m"', '"bell \\u0007"', '"carriage\\r return"', '"\\u000b vertical tab"'],
)
def test_unstorable_text_arrives_intact_and_becomes_an_inline_error(caption_json: str) -> None:
    inbound = parse_slack_body(submission_with_caption(caption_json), FORM)  # not a 400
    values = inbound.body["view"]["state"]["values"]
    with pytest.raises(InputError) as info:
        text_input(values, FieldId.CAPTION)
    assert info.value.as_errors() == {FieldId.CAPTION.value: UNSTORABLE_TEXT}
    assert unstorable_text_errors(values) == {FieldId.CAPTION.value: UNSTORABLE_TEXT}
    # The typed model carries the same text, so either view of the payload can be checked.
    assert isinstance(inbound.payload, ViewSubmission)
    typed = {b: {a: v.model_dump() for a, v in e.items()} for b, e in inbound.payload.view.state.values.items()}
    assert unstorable_text_errors(typed) == {FieldId.CAPTION.value: UNSTORABLE_TEXT}


@pytest.mark.parametrize("caption_json", ['"tabs\\tand\\nnewlines"', '"emoji \\ud83c\\udf89 pair"', '"del \\u007f ok"', '"é"'])
def test_ordinary_text_passes(caption_json: str) -> None:
    values = parse_slack_body(submission_with_caption(caption_json), FORM).body["view"]["state"]["values"]
    assert text_input(values, FieldId.CAPTION) == json.loads(caption_json)
    assert unstorable_text_errors(values) == {}


def test_text_input_tolerates_odd_shapes() -> None:
    assert text_input({}, FieldId.CAPTION) is None
    assert text_input({FieldId.CAPTION.value: {}}, FieldId.CAPTION) is None
    assert text_input({FieldId.CAPTION.value: {"other_action": {"value": "x"}}}, FieldId.CAPTION) == "x"
    assert text_input({FieldId.CAPTION.value: {"a": {"value": 5}}}, FieldId.CAPTION) is None
    assert text_input({FieldId.CAPTION.value: "x"}, FieldId.CAPTION) is None
    assert unstorable_text_errors({"b": "x", "c": {"a": "y"}, "d": {"a": {"value": None}}}) == {}


def when(value: object) -> dict[str, Any]:
    return {FieldId.WHEN.value: {FieldId.WHEN.value: {"type": "datetimepicker", "selected_date_time": value}}}


@pytest.mark.parametrize(("value", "expected"), [(1718035200, 1718035200), ("1718035200", 1718035200), (0, 0),
                                                  (9_999_999_999, 9_999_999_999), (None, None)])
def test_datetime_values_in_range(value: object, expected: int | None) -> None:
    assert selected_date_time(when(value), FieldId.WHEN) == expected


@pytest.mark.parametrize("value", [10**13, 10**29, 10**30 - 1, 10_000_000_000, -1, "-1", " 1", "1718035200\n", "1e9",
                                   "12345678901", "", 1.5, float("nan"), True, False, [1], {"a": 1}, "١٢"])
def test_datetime_values_out_of_range_are_inline_errors(value: object) -> None:
    with pytest.raises(InputError) as info:
        selected_date_time(when(value), FieldId.WHEN)
    assert info.value.as_errors() == {FieldId.WHEN.value: INVALID_DATETIME}


@pytest.mark.parametrize("digits", ["10000000000000", "1" * 30])
def test_huge_schedule_times_pass_the_boundary_and_fail_inline(digits: str) -> None:
    payload = load("view_submission_edit.json")
    payload["view"]["state"]["values"][FieldId.WHEN.value][FieldId.WHEN.value]["selected_date_time"] = "__WHEN__"
    raw = urlencode({"payload": json.dumps(payload).replace('"__WHEN__"', digits)}).encode()
    values = parse_slack_body(raw, FORM).body["view"]["state"]["values"]
    with pytest.raises(InputError):
        selected_date_time(values, FieldId.WHEN)


# ---------------------------------------------------------------------------------------------
# Socket Mode dicts
# ---------------------------------------------------------------------------------------------


def test_validate_payload_reads_the_kind_from_structure() -> None:
    assert isinstance(validate_payload(load("block_actions_card_button.json")).payload, BlockActions)
    assert isinstance(validate_payload(load("view_submission_edit.json")).payload, ViewSubmission)
    assert isinstance(validate_payload(load("event_app_home_opened.json")).payload, EventCallback)
    assert isinstance(validate_payload(command_fields("clip payload-7f3a")).payload, SlashCommand)
    bad_payloads: list[object] = [[], "x", {"type": "shortcut"}, {"type": 3}, {"text": "payload"},
                                  {"type": "block_actions"}, {"command": "/greenlight", "type": "block_actions"}]
    for bad in bad_payloads:
        with pytest.raises(InboundRejected):
            validate_payload(bad)
    deep: Any = {}
    for _ in range(5000):
        deep = {"a": deep}
    payload = load("block_actions_card_button.json")
    payload["message"] = deep
    with pytest.raises(InboundRejected):
        validate_payload(payload)
    with pytest.raises(InboundRejected):
        validate_payload({"type": "block_actions", "x": object()})
    with pytest.raises(InboundRejected):
        validate_payload({"type": "block_actions", 1: "x"})


# ---------------------------------------------------------------------------------------------
# Bolt accepts the parsed dict for every kind (mode="socket_mode", verification off)
# ---------------------------------------------------------------------------------------------


def make_bolt() -> tuple[App, dict[str, Any], threading.Event]:
    seen: dict[str, Any] = {}
    event_seen = threading.Event()

    def authorize(**_kwargs: Any) -> AuthorizeResult:
        return AuthorizeResult(enterprise_id=None, team_id="T03HX9A1C", bot_token="xoxb-test",
                               bot_id="B06GRNBOT", bot_user_id="U06GRNBOT1")

    app = App(
        signing_secret="unused",
        client=WebClient(token="xoxb-test", base_url="http://127.0.0.1:9/"),
        authorize=authorize,
        request_verification_enabled=False,
        token_verification_enabled=False,
    )

    @app.action(ActionId.PUBLISH.value)
    def on_publish(ack: Any, body: dict[str, Any], context: Any) -> None:
        seen["action"] = (body["actions"][0]["value"], context[INBOUND_CONTEXT_KEY])
        ack()

    @app.view(ViewId.EDIT.value)
    def on_submit(ack: Any, view: dict[str, Any]) -> None:
        seen["view"] = view["private_metadata"]
        ack(response_action="errors", errors={FieldId.CAPTION.value: "checked"})

    @app.view_closed(ViewId.LOADING.value)
    def on_closed(ack: Any) -> None:
        seen["closed"] = True
        ack()

    @app.command(COMMAND)
    def on_command(ack: Any, command: dict[str, Any]) -> None:
        seen["command"] = command["text"]
        ack(f"got {command['text']}")

    @app.event("app_home_opened")
    def on_home(event: dict[str, Any]) -> None:
        seen["home"] = event["user"]
        event_seen.set()

    return app, seen, event_seen


def dispatch(app: App, inbound: Inbound) -> Any:
    request = BoltRequest(
        body=inbound.body,
        mode="socket_mode",
        headers={"content-type": FORM, "x-slack-signature": "v0=checked-by-the-server"},
        context={INBOUND_CONTEXT_KEY: inbound.payload},
    )
    return app.dispatch(request)


def test_bolt_dispatches_each_kind_from_the_parsed_dict() -> None:
    app, seen, event_seen = make_bolt()

    inbound = parse_slack_body(interaction(load("block_actions_card_button.json")), FORM)
    assert dispatch(app, inbound).status == 200
    value, typed = seen["action"]
    assert value == "42" and isinstance(typed, BlockActions)

    response = dispatch(app, parse_slack_body(interaction(load("view_submission_edit.json")), FORM))
    assert response.status == 200 and json.loads(response.body)["response_action"] == "errors"
    assert seen["view"] == '{"post_id":42}'

    assert dispatch(app, parse_slack_body(interaction(load("view_closed.json")), FORM)).status == 200
    assert seen["closed"] is True

    response = dispatch(app, parse_slack_body(form_body("slash_command.form"), FORM))
    assert response.status == 200 and "got clip payload-7f3a" in response.body
    assert seen["command"] == "clip payload-7f3a"

    assert dispatch(app, parse_slack_body(json.dumps(load("event_app_home_opened.json")).encode(), JSON_TYPE)).status == 200
    assert event_seen.wait(5) and seen["home"] == "U0427KQ2B"

    response = dispatch(app, parse_slack_body(json.dumps(load("event_url_verification.json")).encode(), JSON_TYPE))
    assert response.status == 200 and json.loads(response.body) == {"challenge": "k2T9xVq7LmZ4pR8sW1nB6yD3cF0gH5jA"}

    response = dispatch(app, parse_slack_body(form_body("ssl_check.form"), FORM))
    assert (response.status, response.body) == (200, "")


def test_a_dict_body_needs_a_non_http_mode() -> None:
    # Why the server passes mode="socket_mode": BoltRequest refuses a dict in mode="http".
    from slack_bolt.error import BoltError

    with pytest.raises(BoltError):
        BoltRequest(body={"type": "block_actions"}, mode="http")


# ---------------------------------------------------------------------------------------------
# Properties: a model or InboundRejected, nothing else
# ---------------------------------------------------------------------------------------------

CONTENT_TYPES = st.sampled_from([FORM, JSON_TYPE, None, "text/plain", "application/json; charset=utf-8",
                                 "application/x-www-form-urlencoded; charset=iso-8859-1"])

json_scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40)
)


def json_containers(children: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """Lists and objects of `children`."""
    return st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)


json_values = st.recursive(json_scalars, json_containers, max_leaves=25)
FIELD_NAMES = st.sampled_from(["payload", "command", "ssl_check", "text", "type", "user_id", "channel_id", "team_id",
                               "trigger_id", "response_url", "enterprise_id", "token"]) | st.text(max_size=10)


def only_model_or_rejection(raw: bytes, content_type: str | None) -> None:
    try:
        inbound = parse_slack_body(raw, content_type)
    except InboundRejected as error:
        assert error.status in (400, 413, 415)
        assert isinstance(error.reason, str) and len(error.reason) < 200
        return
    assert isinstance(inbound, Inbound) and isinstance(inbound.body, dict)


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=400), content_type=CONTENT_TYPES)
def test_arbitrary_bytes(raw: bytes, content_type: str | None) -> None:
    only_model_or_rejection(raw, content_type)


@settings(max_examples=300, deadline=None)
@given(value=json_values)
def test_arbitrary_json(value: object) -> None:
    text = json.dumps(value)
    only_model_or_rejection(text.encode(), JSON_TYPE)
    only_model_or_rejection(urlencode({"payload": text}).encode(), FORM)
    try:
        validate_payload(value)
    except InboundRejected:
        pass


@settings(max_examples=300, deadline=None)
@given(fields=st.dictionaries(FIELD_NAMES, st.text(max_size=60), max_size=8))
def test_arbitrary_form_fields(fields: dict[str, str]) -> None:
    only_model_or_rejection(urlencode(fields).encode(), FORM)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200), extra=st.dictionaries(FIELD_NAMES, st.text(max_size=30), max_size=3))
def test_any_command_text_is_a_command(text: str, extra: dict[str, str]) -> None:
    fields = command_fields(text)
    inbound = parse_slack_body(urlencode(fields).encode(), FORM)
    assert isinstance(inbound.payload, SlashCommand) and inbound.payload.text == text
    only_model_or_rejection(urlencode(fields | extra).encode(), FORM)


FIXTURES = ["block_actions_card_button.json", "block_actions_home_tab.json", "view_submission_edit.json",
            "view_submission_response_urls.json", "view_closed.json", "event_app_home_opened.json"]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), name=st.sampled_from(FIXTURES), replacement=json_values)
def test_mutated_real_payloads(data: st.DataObject, name: str, replacement: object) -> None:
    payload = copy.deepcopy(load(name))
    path = data.draw(st.sampled_from(_paths(payload)))
    target = payload
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = replacement
    text = json.dumps(payload)
    if name.startswith("event_"):
        only_model_or_rejection(text.encode(), JSON_TYPE)
    else:
        only_model_or_rejection(urlencode({"payload": text}).encode(), FORM)


@settings(max_examples=300, deadline=None)
@given(value=st.text(max_size=30) | st.integers().map(str))
def test_button_refs_are_an_int_in_range_or_invalid(value: str) -> None:
    try:
        post_id = post_ref_from_button(value)
    except InvalidReference:
        return
    assert 1 <= post_id <= MAX_POST_ID and str(post_id) == value


@settings(max_examples=300, deadline=None)
@given(value=json_values)
def test_metadata_refs_are_an_int_in_range_or_invalid(value: object) -> None:
    for raw in (json.dumps(value), json.dumps({"post_id": value})):
        try:
            post_id = post_ref_from_metadata(raw)
        except InvalidReference:
            continue
        assert type(post_id) is int and 1 <= post_id <= MAX_POST_ID


@settings(max_examples=300, deadline=None)
@given(value=json_values)
def test_datetime_is_in_range_or_an_inline_error(value: object) -> None:
    try:
        seconds = selected_date_time(when(value), FieldId.WHEN)
    except InputError as error:
        assert error.block_id == FieldId.WHEN.value
        return
    assert seconds is None or 0 <= seconds <= 9_999_999_999


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=30))
def test_text_input_flags_exactly_the_unstorable(text: str) -> None:
    values = {FieldId.CAPTION.value: {FieldId.CAPTION.value: {"type": "plain_text_input", "value": text}}}
    bad = any((ord(c) < 0x20 and c not in "\t\n") or 0xD800 <= ord(c) <= 0xDFFF for c in text)
    if bad:
        with pytest.raises(InputError):
            text_input(values, FieldId.CAPTION)
    else:
        assert text_input(values, FieldId.CAPTION) == text
