"""Slack request signing (vector V4) and secret redaction in logs."""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.security import SecretRedactingFilter, install_redaction, verify_slack_request

# Vector V4: Slack's documented example (reliability.md "Test vectors").
V4_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
V4_TIMESTAMP = "1531420618"
V4_NOW = 1531420618
V4_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
V4_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def slack_sign(body: bytes, timestamp: str, secret: str) -> str:
    """Independent signer for fixtures."""
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return f"v0={digest}"


# --- verify_slack_request -----------------------------------------------------------------------


def test_fixture_signer_reproduces_v4() -> None:
    assert slack_sign(V4_BODY, V4_TIMESTAMP, V4_SECRET) == V4_SIGNATURE


def test_v4_accepted_at_frozen_clock() -> None:
    assert verify_slack_request(V4_BODY, V4_TIMESTAMP, V4_SIGNATURE, V4_SECRET, now=V4_NOW)


@pytest.mark.parametrize("offset", [-300, -299, 299, 300])
def test_v4_accepted_inside_window(offset: int) -> None:
    assert verify_slack_request(V4_BODY, V4_TIMESTAMP, V4_SIGNATURE, V4_SECRET, now=V4_NOW + offset)


@pytest.mark.parametrize("offset", [301, -301, 10**9])
def test_v4_rejected_outside_window(offset: int) -> None:
    assert not verify_slack_request(V4_BODY, V4_TIMESTAMP, V4_SIGNATURE, V4_SECRET, now=V4_NOW + offset)


def test_v4_rejected_with_real_clock() -> None:
    import time

    assert not verify_slack_request(V4_BODY, V4_TIMESTAMP, V4_SIGNATURE, V4_SECRET, now=time.time())


def test_v4_uppercase_hex_accepted() -> None:
    upper = "v0=" + V4_SIGNATURE[3:].upper()
    assert verify_slack_request(V4_BODY, V4_TIMESTAMP, upper, V4_SECRET, now=V4_NOW)


def test_v4_tampered_inputs_rejected() -> None:
    assert not verify_slack_request(V4_BODY + b"&x=1", V4_TIMESTAMP, V4_SIGNATURE, V4_SECRET, now=V4_NOW)
    assert not verify_slack_request(V4_BODY, "1531420619", V4_SIGNATURE, V4_SECRET, now=V4_NOW)
    assert not verify_slack_request(V4_BODY, V4_TIMESTAMP, V4_SIGNATURE, V4_SECRET + "x", now=V4_NOW)
    assert not verify_slack_request(V4_BODY, V4_TIMESTAMP, V4_SIGNATURE[:-1] + "4", V4_SECRET, now=V4_NOW)
    assert not verify_slack_request(V4_BODY, V4_TIMESTAMP, "v1=" + V4_SIGNATURE[3:], V4_SECRET, now=V4_NOW)
    assert not verify_slack_request(V4_BODY, V4_TIMESTAMP, V4_SIGNATURE[3:], V4_SECRET, now=V4_NOW)


@pytest.mark.parametrize(
    "timestamp",
    [
        "9" * 5000,
        "1" * 13,
        "abc",
        "",
        " 1531420618",
        "1531420618\n",
        "1531420618.0",
        "+1531420618",
        "-1531420618",
        "1_531_420_618",
        "١٥٣١٤٢٠٦١٨",  # non-ASCII digits that int() would happily accept
        None,
    ],
)
def test_bad_timestamps_return_false(timestamp: str | None) -> None:
    assert not verify_slack_request(V4_BODY, timestamp, V4_SIGNATURE, V4_SECRET, now=V4_NOW)


@pytest.mark.parametrize(
    "signature",
    [None, "", "v0=", "v0=é" + V4_SIGNATURE[4:], "v0=\udcff", V4_SIGNATURE + "0" * 1000, "\x00" * 10],
)
def test_bad_signatures_return_false(signature: str | None) -> None:
    assert not verify_slack_request(V4_BODY, V4_TIMESTAMP, signature, V4_SECRET, now=V4_NOW)


def test_empty_signing_secret_never_verifies() -> None:
    assert not verify_slack_request(
        V4_BODY, V4_TIMESTAMP, slack_sign(V4_BODY, V4_TIMESTAMP, ""), "", now=V4_NOW
    )


def test_nan_clock_returns_false() -> None:
    assert not verify_slack_request(V4_BODY, V4_TIMESTAMP, V4_SIGNATURE, V4_SECRET, now=float("nan"))


@settings(max_examples=2000, deadline=None)
@given(
    body=st.binary(max_size=256),
    timestamp=st.one_of(st.none(), st.text(max_size=30), st.integers(0, 10**13).map(str)),
    signature=st.one_of(st.none(), st.text(max_size=80)),
    secret=st.text(max_size=40),
)
def test_verify_slack_request_never_raises(
    body: bytes, timestamp: str | None, signature: str | None, secret: str
) -> None:
    assert verify_slack_request(body, timestamp, signature, secret, now=V4_NOW) in (True, False)


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=512), offset=st.integers(-300, 300))
def test_any_correctly_signed_body_verifies(body: bytes, offset: int) -> None:
    ts = str(V4_NOW + offset)
    assert verify_slack_request(body, ts, slack_sign(body, ts, V4_SECRET), V4_SECRET, now=V4_NOW)


# --- redaction ----------------------------------------------------------------------------------

BOT_TOKEN = "xoxb-1234567890-abcdefSECRET"
API_KEY = "chp_live_0123456789abcdef"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A private logger writing through a redacting handler into a StringIO."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(SecretRedactingFilter([BOT_TOKEN, API_KEY, "", "short"]))
    logger = logging.getLogger("tests.security.redaction")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def test_redacts_secret_from_formatted_args(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.info("calling %s with Authorization: Bearer %s", "https://api.test", API_KEY)
    logger.debug("token=%(token)s user=%(user)s", {"token": BOT_TOKEN, "user": "U1"})
    logger.warning(f"inline {BOT_TOKEN} and again {BOT_TOKEN}")
    out = stream.getvalue()
    assert API_KEY not in out and BOT_TOKEN not in out
    assert "Bearer [REDACTED]" in out
    assert "token=[REDACTED] user=U1" in out
    assert "inline [REDACTED] and again [REDACTED]" in out


def test_redacts_secret_inside_object_args(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.info("headers=%r", {"Authorization": f"Bearer {BOT_TOKEN}"})
    assert BOT_TOKEN not in stream.getvalue()
    assert "[REDACTED]" in stream.getvalue()


def test_redacts_secret_from_exception_traceback(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured

    def fail(key: str) -> None:
        raise RuntimeError(f"upstream rejected key {key}")

    try:
        fail(API_KEY)
    except RuntimeError:
        logger.exception("publish failed for %s", BOT_TOKEN)
    out = stream.getvalue()
    assert "Traceback (most recent call last)" in out
    assert "RuntimeError: upstream rejected key [REDACTED]" in out
    assert API_KEY not in out and BOT_TOKEN not in out


def test_redacts_stack_info(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.info("where", stack_info=True)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None, sinfo=f"Stack {API_KEY}")
    assert SecretRedactingFilter([API_KEY]).filter(record)
    assert record.stack_info == "Stack [REDACTED]"
    assert "Stack (most recent call last)" in stream.getvalue()


def test_short_and_empty_secrets_are_ignored(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.info("a short message")
    assert "a short message" in stream.getvalue()


def test_overlapping_secrets_redacted_whole() -> None:
    flt = SecretRedactingFilter(["abcdef", "abcdef-ghijkl"])
    assert flt.redact("x abcdef-ghijkl y abcdef") == "x [REDACTED] y [REDACTED]"


def test_filter_always_returns_true_and_is_idempotent() -> None:
    flt = SecretRedactingFilter([API_KEY])
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "key %s", (API_KEY,), None)
    assert flt.filter(record) is True
    assert flt.filter(record) is True
    assert record.getMessage() == "key [REDACTED]"
    assert record.args is None


def test_unformattable_record_is_redacted_not_raised(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.info("two placeholders %s %s", API_KEY)  # wrong number of args
    out = stream.getvalue()
    assert API_KEY not in out
    assert "[REDACTED]" in out


def test_install_redaction_covers_root_handlers_and_child_loggers() -> None:
    root = logging.getLogger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        install_redaction([API_KEY])
        install_redaction([API_KEY, BOT_TOKEN])  # replaces, does not stack
        assert sum(isinstance(f, SecretRedactingFilter) for f in handler.filters) == 1
        logging.getLogger("greenlight_test.httpx_like").debug("GET https://api.test/?key=%s", API_KEY)
        logging.getLogger("greenlight_test.bolt_like").info("token %s", BOT_TOKEN)
        out = stream.getvalue()
        assert API_KEY not in out and BOT_TOKEN not in out
        assert out.count("[REDACTED]") == 2
    finally:
        root.setLevel(old_level)
        root.removeHandler(handler)
        for h in root.handlers:
            for f in list(h.filters):
                if isinstance(f, SecretRedactingFilter):
                    h.removeFilter(f)
