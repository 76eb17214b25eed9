"""Slack request-signature verification and log redaction of secrets.

`verify_slack_request` exists because Bolt's built-in verifier turns a non-numeric or very long
`X-Slack-Request-Timestamp` into a 500 (int() raises); ours answers False for any input instead.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
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
        # Longest first, so a secret that contains another one is removed whole, not half.
        self._secrets: tuple[str, ...] = tuple(sorted(usable, key=len, reverse=True))

    def redact(self, text: str) -> str:
        """Return `text` with every configured secret replaced by [REDACTED]."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

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
