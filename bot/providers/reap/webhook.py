"""Authenticate and read Reap webhook deliveries, which are unsigned and therefore only hints.

Reap documents no signature, secret or timestamp, so the route is protected by an unguessable token
we put in the registered URL, and the body is trusted for nothing beyond "which project to re-check";
the caller confirms the real state with `GET /get-project-status` before acting.
"""

from __future__ import annotations

import hmac
import json
import re
from dataclasses import dataclass

from bot.domain import DraftsReady, InboundEvent

MAX_PROJECT_ID_LENGTH = 100
MAX_STATUS_LENGTH = 64

# Explicit ASCII class + fullmatch: the id ends up in a query string and a log line, so nothing
# outside this alphabet (or a trailing newline, which `$` would allow) may pass.
_PROJECT_ID_RE = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_PROJECT_ID_LENGTH}}}")


def token_matches(given: str, expected: str | None) -> bool:
    """Constant-time check of the URL token; False when no token is configured or input is odd."""
    if not expected:
        # Fail closed: an unset token must not make the route open to everyone.
        return False
    try:
        # compare_digest raises TypeError on non-ASCII str, so compare UTF-8 bytes instead.
        given_bytes = given.encode("utf-8")
        expected_bytes = expected.encode("utf-8")
    except (UnicodeEncodeError, AttributeError):
        # Lone surrogates (or a non-str from a sloppy caller) can never equal a real token.
        return False
    return hmac.compare_digest(given_bytes, expected_bytes)


@dataclass(frozen=True)
class ReapProjectHint:
    """The only fields we read from a Reap delivery; `status` is advisory, never acted on directly."""

    project_id: str
    status: str | None


def parse_project_hint(body: bytes) -> ReapProjectHint | None:
    """Extract a project id (and status) from a Reap body, or None if the body is not usable."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        # Reap's creation-time validation sends a dummy payload, so garbage is expected, not an error.
        return None
    if not isinstance(payload, dict):
        return None
    project_id = payload.get("projectId")
    if not isinstance(project_id, str) or not _PROJECT_ID_RE.fullmatch(project_id):
        return None
    status = payload.get("status")
    usable_status = (
        status
        if isinstance(status, str) and 0 < len(status) <= MAX_STATUS_LENGTH and status.isascii()
        else None
    )
    return ReapProjectHint(project_id=project_id, status=usable_status)


def inbound(hint: ReapProjectHint) -> InboundEvent:
    """The neutral event: a project may have drafts now (confirmed with Reap before anything is carded).

    Reap sends no event id; project and status together de-duplicate redeliveries.
    """
    status = hint.status or "unknown"
    return InboundEvent(
        id=f"{hint.project_id}:{status}",
        type=f"project.{status}"[:64],
        action=DraftsReady(ref=hint.project_id),
        payload={"projectId": hint.project_id, "status": hint.status},
    )
