"""Choppity signature verification and event parsing; Reap token and hint parsing."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.providers.choppity.webhook import (
    MAX_HEADER_LENGTH,
    ChoppityEvent,
    WebhookRejected,
    parse_event,
    verify_signature,
)
from bot.providers.reap.webhook import ReapProjectHint, parse_project_hint, token_matches

NOW = 1_745_800_000
SECRET = "whsec_choppity_current_0123456789"
OLD_SECRET = "whsec_choppity_previous_9876543210"
BODY = (
    b'{"id":"evt_123","type":"post.published","created":1745800000000,'
    b'"data":{"post_id":"post_abc","clip_id":"clip_1","published_url":"https://x.test/p/1"}}'
)


def sig_hex(body: bytes, secret: str, t: int | str) -> str:
    """Independent signer for fixtures: hex HMAC-SHA256 of `t.` + raw body."""
    return hmac.new(secret.encode("utf-8"), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def header_for(body: bytes, secret: str = SECRET, t: int = NOW) -> str:
    return f"t={t},v1={sig_hex(body, secret, t)}"


def assert_rejected(
    body: bytes, header: str | None, secrets: list[str] | None = None, status: int | None = None
) -> WebhookRejected:
    with pytest.raises(WebhookRejected) as info:
        verify_signature(body, header, [SECRET] if secrets is None else secrets, now=NOW)
    assert info.value.status in (400, 401)
    if status is not None:
        assert info.value.status == status
    return info.value


# --- verify_signature: happy path and integrity -------------------------------------------------


def test_valid_signature_accepted() -> None:
    verify_signature(BODY, header_for(BODY), [SECRET], now=NOW)


def test_uppercase_hex_and_padding_spaces_accepted() -> None:
    header = f" t={NOW} ,  v1={sig_hex(BODY, SECRET, NOW).upper()} "
    verify_signature(BODY, header, [SECRET], now=NOW)


def test_wrong_secret_rejected() -> None:
    err = assert_rejected(BODY, header_for(BODY, secret="not-the-secret"), status=401)
    assert err.reason == "signature mismatch"


def test_every_single_byte_change_in_body_rejected() -> None:
    header = header_for(BODY)
    for i in range(len(BODY)):
        tampered = bytearray(BODY)
        tampered[i] ^= 0x01
        assert_rejected(bytes(tampered), header, status=401)


def test_appended_or_truncated_body_rejected() -> None:
    header = header_for(BODY)
    assert_rejected(BODY + b" ", header, status=401)
    assert_rejected(BODY[:-1], header, status=401)
    assert_rejected(b"", header, status=401)


def test_changed_timestamp_rejected() -> None:
    # Signed for NOW but the header claims NOW + 1: the timestamp is part of the signed content.
    header = f"t={NOW + 1},v1={sig_hex(BODY, SECRET, NOW)}"
    assert_rejected(BODY, header, status=401)


def test_timestamp_with_leading_zero_is_signed_as_received() -> None:
    # The string is signed verbatim, so a re-formatted int() would not verify.
    t = f"0{NOW}"
    verify_signature(BODY, f"t={t},v1={sig_hex(BODY, SECRET, t)}", [SECRET], now=NOW)
    assert_rejected(BODY, f"t={t},v1={sig_hex(BODY, SECRET, NOW)}", status=401)


# --- replay window ------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [-301, 301, -10_000, 10_000])
def test_timestamp_outside_tolerance_rejected(offset: int) -> None:
    t = NOW + offset
    err = assert_rejected(BODY, header_for(BODY, t=t), status=401)
    assert err.reason == "timestamp outside tolerance"


@pytest.mark.parametrize("offset", [-299, 299, -300, 300, 0])
def test_timestamp_inside_tolerance_accepted(offset: int) -> None:
    verify_signature(BODY, header_for(BODY, t=NOW + offset), [SECRET], now=NOW)


def test_custom_tolerance_and_float_clock() -> None:
    header = header_for(BODY, t=NOW - 20)
    verify_signature(BODY, header, [SECRET], now=NOW + 0.5, tolerance=30)
    with pytest.raises(WebhookRejected):
        verify_signature(BODY, header, [SECRET], now=NOW, tolerance=10)


def test_nan_clock_rejects() -> None:
    with pytest.raises(WebhookRejected):
        verify_signature(BODY, header_for(BODY), [SECRET], now=float("nan"))


# --- rotation, decoys, versions -----------------------------------------------------------------


def test_rotation_either_secret_verifies() -> None:
    for signer in (SECRET, OLD_SECRET):
        verify_signature(BODY, header_for(BODY, secret=signer), [SECRET, OLD_SECRET], now=NOW)


def test_rotation_removed_secret_fails() -> None:
    assert_rejected(BODY, header_for(BODY, secret=OLD_SECRET), secrets=[SECRET], status=401)


def test_sender_signing_with_both_secrets_verifies_with_either() -> None:
    header = f"t={NOW},v1={sig_hex(BODY, OLD_SECRET, NOW)},v1={sig_hex(BODY, SECRET, NOW)}"
    verify_signature(BODY, header, [SECRET], now=NOW)
    verify_signature(BODY, header, [OLD_SECRET], now=NOW)


def test_decoys_plus_one_valid_v1_accepted() -> None:
    good = sig_hex(BODY, SECRET, NOW)
    wrong = sig_hex(BODY, "decoy-secret", NOW)
    header = f"t={NOW},v1={wrong},v0={good},v2={good},v1=zz-not-hex,v1={good},v1={wrong[:8]}"
    verify_signature(BODY, header, [SECRET], now=NOW)


def test_decoys_alone_rejected() -> None:
    wrong = sig_hex(BODY, "decoy-secret", NOW)
    assert_rejected(BODY, f"t={NOW},v1={wrong},v1={wrong[::-1]}", status=401)


def test_partial_signature_rejected() -> None:
    good = sig_hex(BODY, SECRET, NOW)
    assert_rejected(BODY, f"t={NOW},v1={good[:-1]}", status=401)
    assert_rejected(BODY, f"t={NOW},v1={good[:8]}", status=401)
    assert_rejected(BODY, f"t={NOW},v1=", status=401)
    assert_rejected(BODY, header_for(BODY)[:12])


@pytest.mark.parametrize("version", ["v0", "v2", "V1", "sha256"])
def test_correct_signature_under_other_version_rejected(version: str) -> None:
    assert_rejected(BODY, f"t={NOW},{version}={sig_hex(BODY, SECRET, NOW)}", status=401)


@pytest.mark.parametrize("secrets", [[], [""], ["", ""]])
def test_no_usable_secret_always_rejected(secrets: list[str]) -> None:
    # An empty key would make any "HMAC with empty key" header valid; must fail closed.
    header = f"t={NOW},v1={sig_hex(BODY, '', NOW)}"
    err = assert_rejected(BODY, header, secrets=secrets, status=401)
    assert SECRET not in err.reason


def test_surrogate_secret_is_skipped_not_crashing() -> None:
    verify_signature(BODY, header_for(BODY), ["\ud800bad", SECRET], now=NOW)
    assert_rejected(BODY, header_for(BODY), secrets=["\ud800bad"], status=401)


# --- malformed headers --------------------------------------------------------------------------

_GOOD = sig_hex(BODY, SECRET, NOW)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        " ",
        "garbage",
        "t=abc,v1=" + _GOOD,
        "t=1.5,v1=" + _GOOD,
        f"t={NOW}.0,v1={_GOOD}",
        f"t=+{NOW},v1={_GOOD}",
        f"t=-{NOW},v1={_GOOD}",
        f"t={NOW}\n,v1={_GOOD}",
        "t=" + "9" * 5000 + ",v1=" + _GOOD,
        "t=" + "1" * 13 + ",v1=" + _GOOD,
        "t=,v1=" + _GOOD,
        f"t={NOW}",
        f"t={NOW},v0={_GOOD}",
        f"v1={_GOOD}",
        f"t={NOW},v1",
        f"t={NOW},v1{_GOOD}",
        f"t={NOW},,v1={_GOOD}",
        f"t={NOW},v1={_GOOD},",
        f",t={NOW},v1={_GOOD}",
        f"t={NOW},v1={_GOOD},t={NOW}",
        f"t={NOW};v1={_GOOD}",
        f"t={NOW},v1={_GOOD}é",
        f"t={NOW},v1=ü{_GOOD}",
        f"t=١٧٤٥٨٠٠٠٠٠,v1={_GOOD}",  # Arabic-Indic digits are not ASCII digits
        f"t={NOW},v1={_GOOD}\x00",
        "t=\udcff,v1=" + _GOOD,  # lone surrogate, as a broken decoder might produce
        "\u00ff\u00fe" * 10,  # latin-1 decoded high bytes
        "=,=,=",
        "t==,v1==",
    ],
)
def test_malformed_headers_only_raise_webhook_rejected(header: str | None) -> None:
    err = assert_rejected(BODY, header)
    assert _GOOD not in err.reason and SECRET not in err.reason


def test_overlong_header_rejected_even_with_valid_signature() -> None:
    header = header_for(BODY) + ",x=" + "a" * MAX_HEADER_LENGTH
    err = assert_rejected(BODY, header, status=400)
    assert err.reason == "signature header too long"


def test_header_at_length_limit_still_parsed() -> None:
    base = header_for(BODY) + ",x="
    header = base + "a" * (MAX_HEADER_LENGTH - len(base))
    assert len(header) == MAX_HEADER_LENGTH
    verify_signature(BODY, header, [SECRET], now=NOW)


def test_rejection_messages_never_leak_body_or_signature() -> None:
    err = assert_rejected(BODY, header_for(BODY, secret="other"))
    assert "post_abc" not in str(err) and SECRET not in str(err)


# --- raw body -----------------------------------------------------------------------------------


def test_reserialised_json_fails_verification() -> None:
    raw = '{"id": "evt_9", "type": "post.failed", "data": {"post_id": "p1", "error": "caf\u00e9 \u2615"}}'.encode()
    header = header_for(raw)
    verify_signature(raw, header, [SECRET], now=NOW)

    parsed = json.loads(raw)
    for reserialised in (
        json.dumps(parsed).encode(),  # ASCII-escapes the non-ASCII text
        json.dumps(parsed, separators=(",", ":")).encode(),
        json.dumps(parsed, ensure_ascii=False, separators=(",", ":")).encode(),
        json.dumps(parsed, sort_keys=True, ensure_ascii=False).encode(),
    ):
        assert reserialised != raw
        assert_rejected(reserialised, header, status=401)


# --- property tests -----------------------------------------------------------------------------

_header_text = st.one_of(
    st.none(),
    st.text(max_size=200),
    st.text(max_size=5000),
    # Near-misses that get past the cheap checks and exercise the parser proper.
    st.builds(
        lambda t, rest: f"t={t},{rest}",
        st.one_of(st.integers(min_value=NOW - 400, max_value=NOW + 400).map(str), st.text(max_size=20)),
        st.lists(
            st.one_of(
                st.text(alphabet="tv01=, \t", max_size=10),
                st.text(alphabet="0123456789abcdefABCDEF", max_size=70).map(lambda h: f"v1={h}"),
                st.text(max_size=30),
            ),
            max_size=6,
        ).map(",".join),
    ),
)


@settings(max_examples=2000, deadline=None)
@given(header=_header_text, body=st.binary(max_size=512), secrets=st.lists(st.text(max_size=20), max_size=3))
def test_verify_signature_only_ever_raises_webhook_rejected(
    header: str | None, body: bytes, secrets: list[str]
) -> None:
    try:
        verify_signature(body, header, secrets or [SECRET], now=NOW)
    except WebhookRejected as err:
        assert err.status in (400, 401)


@settings(max_examples=500, deadline=None)
@given(body=st.binary(max_size=2048), offset=st.integers(min_value=-300, max_value=300))
def test_any_body_correctly_signed_verifies(body: bytes, offset: int) -> None:
    verify_signature(body, header_for(body, t=NOW + offset), [OLD_SECRET, SECRET], now=NOW)


@settings(max_examples=2000, deadline=None)
@given(body=st.one_of(st.binary(max_size=1024), st.text(max_size=300).map(str.encode)))
def test_parse_event_only_ever_raises_webhook_rejected(body: bytes) -> None:
    try:
        event = parse_event(body)
    except WebhookRejected as err:
        assert err.status == 400
    else:
        assert event.id and event.type and isinstance(event.data, dict)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=2000, deadline=None)
@given(
    envelope=st.dictionaries(
        st.sampled_from(["id", "type", "created", "data", "extra"]), _json_values, max_size=5
    )
)
def test_parse_event_on_arbitrary_json_objects(envelope: dict[str, object]) -> None:
    try:
        event = parse_event(json.dumps(envelope).encode())
    except WebhookRejected as err:
        assert err.status == 400
    else:
        # Accessors never raise and only ever return strings or None.
        assert event.post_id is None or isinstance(event.post_id, str)
        assert event.clip_id is None or isinstance(event.clip_id, str)


# --- parse_event --------------------------------------------------------------------------------


def test_parse_event_valid() -> None:
    event = parse_event(BODY)
    assert event == ChoppityEvent(
        id="evt_123",
        type="post.published",
        created_ms=1745800000000,
        data={"post_id": "post_abc", "clip_id": "clip_1", "published_url": "https://x.test/p/1"},
    )
    assert event.post_id == "post_abc"
    assert event.clip_id == "clip_1"


def test_parse_event_missing_data_and_created() -> None:
    event = parse_event(b'{"id":"e1","type":"asset.analysis.started"}')
    assert event.data == {} and event.created_ms is None
    assert event.post_id is None and event.clip_id is None


@pytest.mark.parametrize("created", ['"1745800000000"', "1.5", "true", "null", "[]"])
def test_parse_event_non_int_created_is_ignored(created: str) -> None:
    event = parse_event(f'{{"id":"e1","type":"t","created":{created}}}'.encode())
    assert event.created_ms is None


@pytest.mark.parametrize(
    ("data", "post_id", "clip_id"),
    [
        ({"post_id": "p1", "id": "p2", "post": {"id": "p3"}}, "p1", None),
        ({"id": "p2", "post": {"id": "p3", "clip_id": "c3"}}, "p2", "c3"),
        ({"post": {"id": "p3", "clip_id": "c3"}, "clip_id": "c1"}, "p3", "c1"),
        ({"post_id": 5, "id": ["x"], "post": {"id": "p3"}}, "p3", None),
        ({"post_id": "", "post": "not-an-object", "clip_id": 7}, None, None),
        ({"post": {"id": 9, "clip_id": None}}, None, None),
        ({"post_id": "\ud800"}, None, None),
    ],
)
def test_event_id_fallbacks(data: dict[str, object], post_id: str | None, clip_id: str | None) -> None:
    event = ChoppityEvent(id="e", type="post.published", created_ms=None, data=dict(data))
    assert event.post_id == post_id
    assert event.clip_id == clip_id


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe{}",
        b'{"id":"e1","type":"t"',
        b"",
        b"null",
        b"[]",
        b'"string"',
        b"42",
        b"{}",
        b'{"type":"t"}',
        b'{"id":"e1"}',
        b'{"id":"","type":"t"}',
        b'{"id":"e1","type":""}',
        b'{"id":7,"type":"t"}',
        b'{"id":"e1","type":["t"]}',
        b'{"id":null,"type":"t"}',
        b'{"id":"\\ud800","type":"t"}',
        b'{"id":"' + b"x" * 256 + b'","type":"t"}',
        b'{"id":"e1","type":"t","data":[]}',
        b'{"id":"e1","type":"t","data":"x"}',
        b'{"id":"e1","type":"t","data":null}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"id":"e1","type":"t","data":{"n":' + b"9" * 5000 + b"}}",
    ],
)
def test_parse_event_malformed_rejected_with_400(body: bytes) -> None:
    with pytest.raises(WebhookRejected) as info:
        parse_event(body)
    assert info.value.status == 400


def test_parse_event_id_length_limit() -> None:
    assert parse_event(b'{"id":"' + b"x" * 255 + b'","type":"t"}').id == "x" * 255


# --- Reap ---------------------------------------------------------------------------------------

TOKEN = "reap_url_token_Zq8w3n5Yb2"


def test_reap_token_match_and_mismatch() -> None:
    assert token_matches(TOKEN, TOKEN)
    assert not token_matches(TOKEN[:-1], TOKEN)
    assert not token_matches(TOKEN + "x", TOKEN)
    assert not token_matches("", TOKEN)
    assert not token_matches(TOKEN.upper(), TOKEN)


@pytest.mark.parametrize("expected", [None, ""])
def test_reap_token_unconfigured_never_matches(expected: str | None) -> None:
    assert not token_matches("", expected)
    assert not token_matches(TOKEN, expected)


def test_reap_token_non_ascii_safe() -> None:
    assert not token_matches("tökén", TOKEN)
    assert not token_matches(TOKEN, "tökén")
    assert token_matches("tökén☕", "tökén☕")
    assert not token_matches("\ud800", TOKEN)
    assert not token_matches(TOKEN, "\udcff")


@settings(max_examples=500, deadline=None)
@given(given_token=st.text(), expected=st.one_of(st.none(), st.text()))
def test_reap_token_never_raises(given_token: str, expected: str | None) -> None:
    assert token_matches(given_token, expected) == (bool(expected) and given_token == expected)


def test_reap_hint_valid() -> None:
    body = b'{"projectId":"65f1a2b3c4d5e6f7a8b9c0d1","projectType":"clipping","source":"Upload","status":"completed"}'
    assert parse_project_hint(body) == ReapProjectHint(
        project_id="65f1a2b3c4d5e6f7a8b9c0d1", status="completed"
    )


@pytest.mark.parametrize("status", ["null", "5", '""', '["completed"]', '"' + "x" * 65 + '"'])
def test_reap_hint_unusable_status_is_none(status: str) -> None:
    hint = parse_project_hint(f'{{"projectId":"p_1-A","status":{status}}}'.encode())
    assert hint == ReapProjectHint(project_id="p_1-A", status=None)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'"65f1a2b3"',
        b"null",
        b"{}",
        b'{"test": true}',
        b'{"projectId": null}',
        b'{"projectId": 12345}',
        b'{"projectId": ""}',
        b'{"projectId": "../../etc/passwd"}',
        b'{"projectId": "abc def"}',
        b'{"projectId": "abc\\n"}',
        b'{"projectId": "abc?x=1"}',
        '{"projectId": "pr\u00f6ject"}'.encode(),
        b'{"projectId": "' + b"a" * 101 + b'"}',
        b"[" * 100_000,
    ],
)
def test_reap_hint_garbage_returns_none(body: bytes) -> None:
    assert parse_project_hint(body) is None


def test_reap_hint_id_length_limit() -> None:
    hint = parse_project_hint(b'{"projectId":"' + b"a" * 100 + b'"}')
    assert hint is not None and hint.project_id == "a" * 100


@settings(max_examples=1000, deadline=None)
@given(body=st.one_of(st.binary(max_size=512), st.text(max_size=200).map(str.encode)))
def test_reap_hint_never_raises(body: bytes) -> None:
    hint = parse_project_hint(body)
    assert hint is None or (0 < len(hint.project_id) <= 100)
