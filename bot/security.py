"""Slack request-signature verification, and the one redaction of secrets used everywhere.

`verify_slack_request` exists because Bolt's built-in verifier turns a non-numeric or very long
`X-Slack-Request-Timestamp` into a 500 (int() raises); ours answers False for any input instead.

`redact()` is applied to every log record (via `SecretRedactingFilter`) and to every piece of
outside text shown in Slack (via `bot.slack.mrkdwn`): the configured secrets, plus anything shaped
like a credential (Slack tokens, `Bearer …`/`Key …` values, webhook secrets), so a provider error
that echoes an API key never reaches a log line or a Slack thread.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import threading
from collections.abc import Iterable, Sequence

SLACK_SIGNATURE_VERSION = "v0"
DEFAULT_TOLERANCE_SECONDS = 300
REDACTED = "[REDACTED]"
# Shorter strings are skipped: redacting e.g. "abc" would mangle ordinary log text, and a secret
# that short offers no protection anyway.
MIN_REDACTABLE_LENGTH = 6
# Bounds the work an attacker can make us do on a header before it is rejected.
_MAX_SIGNATURE_LENGTH = 512

# ASCII digits only, fullmatch: `\d` accepts non-ASCII digits, `$` a trailing newline, and more
# than 4300 digits would make int() raise.
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")

_log = logging.getLogger(__name__)

# Shapes of credentials, redacted even when they are not (or no longer) configured here. Slack and
# webhook secrets have unmistakable prefixes; nothing in ordinary text looks like them.
_TOKEN_SHAPES = re.compile(r"xox[abposr]-[A-Za-z0-9-]{6,}|xapp-[A-Za-z0-9-]{6,}|whsec_[A-Za-z0-9+/=_-]{6,}")
# An Authorization value echoed back ("Key 9f8e…-team_abc", "Bearer eyJ…"). Only applied to logs and
# provider error texts: in a caption or a title "Key takeaways-2024" is ordinary text.
_AUTH_VALUES = re.compile(r"\b(?:Bearer|Key|bearer|key)\s+[A-Za-z0-9._~+/=-]*[0-9][A-Za-z0-9._~+/=-]*")

# Every secret this process knows (all runtimes built in it); the redaction of logs and of text
# shown in Slack both read it.
_known_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_sorted_secrets: tuple[str, ...] = ()


def register_secrets(secrets: Iterable[str]) -> None:
    """Add secrets to the process-wide redaction list (short values are ignored)."""
    global _sorted_secrets
    with _secrets_lock:
        _known_secrets.update(s for s in secrets if isinstance(s, str) and len(s) >= MIN_REDACTABLE_LENGTH)
        # Longest first, so a secret that contains another one is removed whole, not half.
        _sorted_secrets = tuple(sorted(_known_secrets, key=len, reverse=True))


def redact(text: str, extra: Sequence[str] = (), *, auth_values: bool = False) -> str:
    """`text` with every registered secret (and `extra`) and every token-shaped string replaced.

    `auth_values=True` also replaces `Key …`/`Bearer …` credentials (for logs and provider errors).
    """
    for secret in (*extra, *_sorted_secrets):
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    text = _TOKEN_SHAPES.sub(REDACTED, text)
    if auth_values:
        text = _AUTH_VALUES.sub(REDACTED, text)
    return text


def verify_slack_request(
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    signing_secret: str,
    now: float,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """True only if `signature` is Slack's v0 HMAC of `v0:{timestamp}:{body}` and the timestamp is fresh."""
    if not isinstance(signing_secret, str) or not signing_secret:
        # Fail closed: without a secret nothing can be authenticated.
        return False
    if not isinstance(timestamp, str) or not _TIMESTAMP_RE.fullmatch(timestamp):
        return False
    if not isinstance(signature, str) or len(signature) > _MAX_SIGNATURE_LENGTH:
        return False
    if not signature.isascii():
        # compare_digest raises TypeError on non-ASCII str; such a header can never match anyway.
        return False
    if not isinstance(body, bytes | bytearray | memoryview):
        return False
    # "not <=" so that a NaN clock rejects rather than accepts.
    if not abs(now - int(timestamp)) <= tolerance:
        return False
    try:
        key = signing_secret.encode("utf-8")
    except UnicodeEncodeError:
        return False

    mac = hmac.new(key, f"{SLACK_SIGNATURE_VERSION}:{timestamp}:".encode("ascii"), hashlib.sha256)
    mac.update(body)
    expected = f"{SLACK_SIGNATURE_VERSION}={mac.hexdigest()}".encode("ascii")
    # Lower-casing tolerates upper-case hex; the "v0=" prefix is lower-case in both forms.
    return hmac.compare_digest(expected, signature.lower().encode("ascii"))


def _safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception:
        # A broken __repr__ must not stop the record from being emitted (and redacted).
        return f"<unrepresentable {type(value).__name__}>"


class SecretRedactingFilter(logging.Filter):
    """Replace every configured secret in a record's message, traceback and stack with [REDACTED].

    The record is rewritten in place (formatted message into `msg`, `args` cleared, traceback moved
    into `exc_text`), so every handler that sees it afterwards gets the redacted text. Custom
    attributes passed via `extra=` are not inspected.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        usable = {s for s in secrets if isinstance(s, str) and len(s) >= MIN_REDACTABLE_LENGTH}
        self._secrets: tuple[str, ...] = tuple(sorted(usable, key=len, reverse=True))

    def redact(self, text: str) -> str:
        """Return `text` with this filter's secrets and every registered one replaced by [REDACTED]."""
        return redact(text, self._secrets, auth_values=True)

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place; never drops it."""
        try:
            message = record.getMessage()
        except Exception:
            # Mismatched format/args: logging would later print msg and args raw via handleError,
            # possibly with a secret in them, so render a safe version here instead.
            message = f"{_safe_repr(record.msg)} args={_safe_repr(record.args)}"
        record.msg = self.redact(message)
        record.args = None

        if record.exc_info and record.exc_info[0] is not None:
            if not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            # Clearing exc_info stops formatters re-rendering the unredacted traceback; they
            # append exc_text instead.
            record.exc_info = None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def install_redaction(secrets: Sequence[str]) -> None:
    """Attach a SecretRedactingFilter to every root-logger handler; call after logging is configured.

    Filters sit on handlers rather than loggers because logger filters do not run for records
    propagated from child loggers (httpx, slack_bolt, ...). Handlers added later, or attached to
    non-propagating loggers, are not covered. Calling again replaces the previous filter.
    """
    root = logging.getLogger()
    if not root.handlers:
        _log.warning("install_redaction called before any root handler exists; nothing redacted")
        return
    redactor = SecretRedactingFilter(secrets)
    for handler in root.handlers:
        for existing in list(handler.filters):
            if isinstance(existing, SecretRedactingFilter):
                handler.removeFilter(existing)
        handler.addFilter(redactor)
