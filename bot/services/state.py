"""Our copy of a post and the provider's: reading one into the other, in either direction."""

from __future__ import annotations

from typing import Any

from bot.domain import (
    Activity,
    ActivityKind,
    Platform,
    PostContent,
    PostStatus,
    ProviderPost,
    RemotePost,
)
from bot.models import Post, utcnow
from bot.services import feedback
from bot.slack import notices
from bot.slack.mrkdwn import Mrkdwn


def provider_post(post: Post) -> ProviderPost:
    """What a provider is handed about one of our rows."""
    assert post.id is not None
    return ProviderPost(
        post_id=post.id,
        external_id=post.external_id,
        clip_id=post.clip_id,
        project_id=post.project_id,
        platform=Platform(post.platform),
        status=PostStatus.parse(post.status),
        content=PostContent.from_dict(post.content),
        state=dict(post.extra or {}),
        scheduled_at=post.scheduled_at,
    )


def apply_remote(post: Post, remote: RemotePost, *, ours: bool = False) -> bool:
    """Copy the provider's view onto our row. True if anything changed.

    Terminal states never move back, and a re-read never moves a post backwards along the publish
    pipeline (a stale read can't turn "uploading" into "queued"); an UNKNOWN status is shown as the
    provider says it. Content that changed at the provider (someone edited the draft there) is a
    new version: the approvals given so far no longer apply. `ours=True` when the change is our
    own edit's result, which versions the content itself.
    """
    before = (post.status, post.remote_status, post.content, post.extra, post.platform, post.scheduled_at,
              post.published_url, post.error)
    current = PostStatus.parse(post.status)
    incoming = remote.status
    moves = not current.is_terminal and (
        current.rank is None or incoming.rank is None or incoming.rank >= current.rank
    )
    if moves:
        post.status = incoming.value
        post.remote_status = remote.raw_status if incoming is PostStatus.UNKNOWN else None
    edited_there: tuple[dict[str, Any], dict[str, Any]] | None = None
    if not current.is_terminal or current == incoming:
        new_content = remote.content.to_dict()
        if not ours and post.content and new_content != post.content and current == PostStatus.DRAFT:
            edited_there = (post.content, dict(post.extra or {}))
            post.content_version += 1
            post.last_editor = None
            post.activity = Activity(ActivityKind.EDITED_AT_PROVIDER).to_dict()
        post.content = new_content
        post.scheduled_at = remote.scheduled_at or post.scheduled_at
        post.published_at = remote.published_at or post.published_at
        post.published_url = remote.published_url or post.published_url
        post.error = remote.error or post.error
    if remote.state is not None:
        post.extra = dict(remote.state)  # reassigned, never mutated: JSON columns don't track edits
    if remote.platform.value != post.platform:
        post.platform = remote.platform.value  # a held draft's first target changed
    if edited_there is not None:
        feedback.seen_at_provider(post, *edited_there)
    post.remote_checked_at = utcnow()
    changed = before != (post.status, post.remote_status, post.content, post.extra, post.platform,
                         post.scheduled_at, post.published_url, post.error)
    if changed:
        post.updated_at = utcnow()
    return changed


def outcome_reply(post: Post, remote: RemotePost | None = None) -> Mrkdwn | None:
    """The thread line recording a terminal or scheduled outcome (with per-account results, if any)."""
    status = PostStatus.parse(post.status)
    platform = Platform(post.platform)
    results = remote.results if remote is not None else ()
    if status in (PostStatus.PUBLISHED, PostStatus.FAILED) and len(results) > 1:
        return notices.account_results(results)
    if status == PostStatus.PUBLISHED:
        return notices.published(platform, post.published_url)
    if status == PostStatus.FAILED:
        return notices.publish_failed(platform, post.error, post.approved_by)
    if status == PostStatus.SCHEDULED and post.scheduled_at:
        return notices.scheduled(post.scheduled_at, None)
    return None
