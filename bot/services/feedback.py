"""What happens to a post between versions: each version kept, change requests opened and resolved.

- Versions: `post_version` holds every version's content (append-only). Version 1 (what the
  provider drafted) is written when it is first replaced; each new version is written with the
  change that made it, whether the edit came through Greenlight or was seen at the provider. (A
  post edited before versions were kept gets the version it had then, with no editor recorded.) The
  audit log keeps who did what; the versions keep what the words were, so an edit's diff is always
  against the version it replaced, and a compliance export can show exactly what was approved.
- Change requests live on the post (one open at a time) and are cleared by the next new version:
  the audit log records both the request and its resolution.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import object_session
from sqlmodel import Session, col, select

from bot.db import add_audit
from bot.domain import ChangeReason, ChangeRequest, PostStatus
from bot.models import AuditEvent, Post, PostVersion

log = logging.getLogger(__name__)

SOURCE_PROVIDER = "provider"
SOURCE_SLACK = "slack"
# The audit action of an import (bot.services.intake records who brought each draft in).
CARDED = "carded"


def _record(session: Session, post_id: int, version: int, content: dict[str, Any], state: dict[str, Any], *,
            editor: str | None, source: str, summary: str | None) -> None:
    """Write one version unless it is already there (a retried job must not fail on it)."""
    exists = session.exec(
        select(PostVersion.id).where(PostVersion.post_id == post_id, PostVersion.version == version)
    ).first()
    if exists is not None:
        return
    try:
        with session.begin_nested():
            session.add(PostVersion(post_id=post_id, version=version, content=dict(content), state=dict(state),
                                    editor=editor, source=source, summary=summary))
            session.flush()
    except IntegrityError:
        log.info("version %s of post %s was recorded concurrently", version, post_id)


def record_new_version(session: Session, post: Post, *, before: dict[str, Any], before_state: dict[str, Any],
                       editor: str | None, source: str, summary: str | None) -> None:
    """Keep the version an edit replaced (if it isn't kept yet) and the post's new current version.

    Call after `post.content_version` was raised and `post.content` holds the new content.
    """
    assert post.id is not None
    if post.content_version > 1:
        _record(session, post.id, post.content_version - 1, before, before_state, editor=None,
                source=SOURCE_PROVIDER, summary=None)
    _record(session, post.id, post.content_version, post.content, post.extra or {}, editor=editor, source=source,
            summary=summary)


def seen_at_provider(post: Post, before: dict[str, Any], before_state: dict[str, Any]) -> None:
    """The provider's copy of a draft changed (someone edited it there): a new version.

    Called by `bot.services.state.apply_remote` on a row of an open session; the AI-draft mark goes
    when the caption changed, and an open change request is resolved (the draft was edited).
    """
    if before.get("caption") != post.content.get("caption"):
        post.caption_by_ai = False
    session = object_session(post)
    if not isinstance(session, Session) or post.id is None:
        return
    record_new_version(session, post, before=before, before_state=before_state, editor=None,
                       source=SOURCE_PROVIDER, summary="edited at the provider")
    resolve_change_request(session, post, by=None)


# -- change requests ------------------------------------------------------------------------------


def change_request_of(post: Post) -> ChangeRequest | None:
    """The post's open change request, if any."""
    if not post.changes_requested_by:
        return None
    reason = ChangeReason.parse(post.change_reason) or ChangeReason.OTHER
    return ChangeRequest(by=post.changes_requested_by, reason=reason, note=post.change_note,
                         at=post.changes_requested_at)


def claim_change_request(session: Session, post_id: int, request: ChangeRequest, at: datetime) -> bool:
    """Put a change request on a draft nobody is acting on and nobody has asked changes of, in one
    compare-and-set UPDATE (two reviewers clicking at once: one wins). True when this call did."""
    result = session.execute(
        update(Post)
        .where(col(Post.id) == post_id, col(Post.status) == PostStatus.DRAFT.value,
               col(Post.pending_action).is_(None), col(Post.changes_requested_by).is_(None))
        .values(changes_requested_by=request.by, change_reason=request.reason.value, change_note=request.note,
                changes_requested_at=at, updated_at=at)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def resolve_change_request(session: Session, post: Post, *, by: str | None) -> ChangeRequest | None:
    """A new version resolves the open change request (audited); returns the request it resolved."""
    request = change_request_of(post)
    if request is None:
        return None
    post.changes_requested_by = post.change_reason = post.change_note = None
    post.changes_requested_at = None
    add_audit(session, post_id=post.id, actor=by, action="request_changes", outcome="resolved",
              detail=f"v{post.content_version}")
    return request


def importer_of(session: Session, post_id: int) -> str | None:
    """Who brought the draft in (`/greenlight <command> <ref>`); None when a webhook did."""
    return session.exec(
        select(AuditEvent.actor).where(AuditEvent.post_id == post_id, AuditEvent.action == CARDED)
        .order_by(col(AuditEvent.id))
    ).first()


def who_should_edit(session: Session, post: Post) -> str | None:
    """The person a change request is addressed to: the last editor, else whoever imported the draft."""
    if post.last_editor:
        return post.last_editor
    return importer_of(session, post.id) if post.id is not None else None
