"""Reap as a provider behind the same boundary as Choppity (apis.md Part B).

Reap has no server-side drafts, no cancel endpoint and no post webhooks, so Greenlight holds the
draft itself and only hands it to Reap at the moment of publishing:

- Drafts: one `Post` per clip of a completed project (`import_project`, the `/greenlight reap`
  command, or the project webhook via a `reap_project` job that first confirms the status).
- Edit: applied to our row only (`update_post`); nothing is sent to Reap until publishing.
- Publish: one `publish-clip` call, guarded by a `handoff_started` marker written *before* the
  call, so a crash or a lost answer is detected and reported instead of re-sent (Reap has no
  idempotency key and no way to list posts). The outcome is polled (`reap_poll` job).
- Schedule: Greenlight holds the schedule; a durable `reap_handoff` job publishes at that time,
  once, across restarts. Cancel before the hand-off is local; after it, Reap offers no cancel.

`ReapService` is both the `PostProvider` PostService calls and the `services.reap` importer.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App
from slack_sdk.models.views import View
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.config import Settings
from bot.db import add_audit, find_post, get_post, insert_post_if_new, record_webhook, session_scope
from bot.domain import (
    Activity,
    ActivityKind,
    ClipListing,
    PendingAction,
    Platform,
    PostContent,
    PostStatus,
    Provider,
    RemotePost,
)
from bot.jobs import Retry, enqueue
from bot.models import Job, Post, utcnow
from bot.providers.budget import BudgetExhausted, Priority
from bot.providers.budget_storage import budget_for
from bot.providers.errors import (
    ApiBadRequest,
    ApiError,
    ApiNotFound,
    ApiRateLimited,
    ApiRejected,
    ApiUnavailable,
)
from bot.providers.reap.client import (
    POST_CANCELLED,
    POST_COMPLETED,
    POST_FAILED,
    POST_PARTIAL,
    PROJECT_DONE,
    PROJECT_FAILED,
    ReapClient,
    ReapClip,
    ReapIntegration,
    ReapPost,
)
from bot.providers.reap.webhook import parse_project_hint, token_matches
from bot.services.cards import request_card_sync, request_thread_reply
from bot.services.posts import PostService
from bot.slack import notices
from bot.slack.ids import Field, ViewId
from bot.slack.inbound import unstorable_text_errors
from bot.slack.mrkdwn import Mrkdwn, code, escape, fmt
from bot.slack.reap import (
    choices_of,
    default_settings,
    field_errors,
    parse_reap_edit,
    post_id_of,
    reap_edit_modal,
    settings_line,
)

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)

REAP = Provider.REAP.value
REAP_PROJECT = "reap_project"
REAP_HANDOFF = "reap_handoff"
REAP_POLL = "reap_poll"

CANCEL_NOTE = "Reap: once handed to Reap, a post can't be cancelled from Slack."
NOT_CANCELLABLE = "Once handed to Reap a post can't be cancelled from Slack; cancel it in the Reap dashboard."
UNKNOWN_OUTCOME = (
    "Greenlight lost Reap's answer while handing this post over, so it may or may not be publishing. "
    "Check the Reap dashboard; Greenlight won't send it again."
)
NO_REASON = "Reap gives no reason; check the Reap dashboard"
# Key in an edit job's provider_changes naming who edited (PostService's provider API has no user).
EDITOR_KEY = "edited_by"

INTEGRATIONS_TTL = 600.0
POLL_SECONDS = 45.0
SLOW_POLL_AFTER = timedelta(hours=1)
SLOW_POLL_SECONDS = 300.0
GIVE_UP_AFTER = timedelta(hours=24)
PROJECT_RECHECK_SECONDS = 300.0
PROJECT_MAX_CHECKS = 36  # three hours of five-minute checks; Reap processing takes 5-15 min
LATE_HANDOFF = timedelta(minutes=5)


class HandoffUnknown(ApiBadRequest):
    """publish-clip may have reached Reap but its answer was lost: never send it again."""


# -- row <-> RemotePost ---------------------------------------------------------------------------


def _iso(when: datetime) -> str:
    return when.isoformat()


def target_platforms(extra: dict[str, Any]) -> list[Platform]:
    """Distinct platforms of the post's target integrations, in target order."""
    by_id = {c.id: c.platform for c in choices_of(extra)}
    out: list[Platform] = []
    for target in extra.get("targets") or []:
        platform = by_id.get(str(target))
        if platform is not None and platform not in out:
            out.append(platform)
    return out


def compose_notes(extra: dict[str, Any]) -> list[str]:
    """The card's extra lines: tags, per-platform settings, results, status notes."""
    lines: list[str] = []
    tags = [str(t) for t in extra.get("tags") or []]
    lines.append("🏷 Tags: " + ", ".join(tags) if tags else "🏷 No tags")
    settings: dict[str, Any] = extra.get("settings") or {}
    for platform in target_platforms(extra):
        line = settings_line(platform.value, settings.get(platform.value) or {})
        if line:
            lines.append(line)
    results: dict[str, Any] = extra.get("results") or {}
    for name, result in results.items():
        label = _label(name)
        ok = result.get("ok") if isinstance(result, dict) else None
        url = result.get("url") if isinstance(result, dict) else None
        if ok is True:
            lines.append(f"✅ {label}: {url}" if url else f"✅ {label}: published")
        elif ok is False:
            lines.append(f"❌ {label} failed")
        else:
            lines.append(f"❔ {label}: Reap reported no result")
    lines.extend(str(n) for n in extra.get("status_notes") or [])
    open_draft = not extra.get("final") and not extra.get("handoff_unknown") and not extra.get("cancelled")
    problems = [str(p) for p in extra.get("problems") or []]
    if problems and open_draft and not extra.get("reap_post_id"):
        lines.append("⚠️ Edit before publishing: " + " ".join(problems))
    if open_draft:
        lines.append(CANCEL_NOTE)
    return lines


def draft_problems(content: PostContent, extra: dict[str, Any]) -> list[str]:
    """What would stop this draft from publishing to its targets (e.g. an AI title too long for YouTube)."""
    tags = [str(t) for t in extra.get("tags") or []]
    return list(field_errors(content.title or "", content.caption, tags, set(target_platforms(extra))).values())


def _label(platform: str) -> str:
    try:
        return Platform(platform).label
    except ValueError:
        return platform


def remote_of(post: Post) -> RemotePost:
    """Our row as a RemotePost: for Reap, Greenlight's database *is* the draft's truth."""
    extra = post.extra or {}
    status = PostStatus.parse(post.status)
    error = post.error
    if not status.is_terminal:
        if extra.get("handoff_unknown"):
            status, error = PostStatus.FAILED, UNKNOWN_OUTCOME
        elif extra.get("reap_post_id") and status in (PostStatus.DRAFT, PostStatus.SCHEDULED):
            # Handed over, but PostService hasn't recorded it yet (e.g. a crash in between).
            status = PostStatus.QUEUED
    return RemotePost(
        id=post.external_id,
        clip_id=post.clip_id,
        platform=Platform(post.platform),
        status=status,
        content=PostContent.from_dict(post.content),
        scheduled_at=post.scheduled_at,
        published_at=post.published_at,
        published_url=post.published_url,
        error=error,
    )


def _locked(session: Session, *, external_id: str | None = None, post_id: int | None = None) -> Post:
    """The row, locked for this transaction (FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE)."""
    query = select(Post).where(Post.provider == REAP)
    if external_id is not None:
        query = query.where(Post.external_id == external_id)
    else:
        query = query.where(col(Post.id) == post_id)
    post = session.exec(query.with_for_update()).first()
    if post is None:
        raise ApiNotFound(f"Greenlight has no Reap draft {external_id or post_id}.", provider=REAP, status=404)
    return post


@dataclass
class ProjectImport:
    """Outcome of importing one Reap project."""

    project_id: str
    status: str
    clips: int = 0
    created: int = 0
    already: int = 0
    targets: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    no_targets: bool = False

    @property
    def running(self) -> bool:
        """Reap is still working on the project."""
        return self.status != PROJECT_DONE and self.status not in PROJECT_FAILED

    def text(self) -> Mrkdwn:
        """The ephemeral summary for whoever ran `/greenlight reap` (account names are text)."""
        pid = code(self.project_id)
        if self.status in PROJECT_FAILED:
            lines = [fmt("Reap project {pid} is {status}, so it has no clips to review.", pid=pid, status=self.status)]
        elif self.running:
            lines = [fmt("Reap project {pid} is still {status}. Greenlight will post its clips once Reap reports it "
                         "completed (it checks again every few minutes).", pid=pid, status=self.status)]
        elif self.no_targets:
            lines = [fmt("Reap project {pid} is completed, but Reap has no active account to publish to (connect one "
                         "in Reap, or check REAP_INTEGRATIONS). No drafts were posted.", pid=pid)]
        elif self.clips == 0:
            lines = [fmt("Reap project {pid} is completed but has no clips.", pid=pid)]
        elif self.created:
            lines = [fmt("Posted {n} draft{s} for Reap project {pid} (publishing to {targets}).", n=self.created,
                         s="s" if self.created != 1 else "", pid=pid, targets=", ".join(self.targets))]
            if self.already:
                lines.append(fmt("{n} clip(s) already had a card.", n=self.already))
        else:
            lines = [fmt("Nothing new for Reap project {pid}: every clip already has a card.", pid=pid)]
        for integration in self.skipped:
            lines.append(fmt("⚠️ REAP_INTEGRATIONS lists {i}, which isn't an active Reap integration; skipped.",
                             i=code(integration)))
        return Mrkdwn("\n").join(lines)


class ReapService:
    """Reap drafts, hand-off, polling and webhook; also the PostProvider for `provider == "reap"`."""

    provider = REAP
    # Greenlight holds drafts and schedules until the hand-off, so it can cancel them; once Reap
    # has a post there is no cancel endpoint.
    cancellable = frozenset({PostStatus.DRAFT, PostStatus.SCHEDULED})

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        client: ReapClient,
        posts: PostService,
        *,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.client = client
        self.posts = posts
        self.wake = wake
        # Tunable (tests shorten them); the defaults keep polling well inside 10 requests/minute.
        self.poll_seconds = POLL_SECONDS
        self.slow_poll_seconds = SLOW_POLL_SECONDS
        self.project_recheck_seconds = PROJECT_RECHECK_SECONDS
        # What time it is for the hand-off's early/late checks (tests move it forward).
        self.clock: Callable[[], datetime] = utcnow
        self._integrations: tuple[float, list[ReapIntegration]] | None = None
        self._lock = threading.Lock()

    def handlers(self) -> dict[str, Callable[[Job], None]]:
        """Job kind -> handler."""
        return {REAP_PROJECT: self.run_project, REAP_HANDOFF: self.run_handoff, REAP_POLL: self.run_poll}

    def close(self) -> None:
        """Close the HTTP client (Runtime.stop calls this on every provider)."""
        self.client.close()

    # -- drafts --------------------------------------------------------------------------------

    def import_project(self, project_id: str, *, actor: str | None = None) -> str:
        """Card every clip of a completed project (idempotent); the summary for the command."""
        try:
            outcome = self._import(project_id, actor=actor, priority=Priority.INTERACTIVE)
        except BudgetExhausted as exc:
            raise ApiRateLimited(
                f"Greenlight is pacing its Reap calls (Reap allows {self.settings.reap_requests_per_minute} "
                f"per minute); try again in {max(1, round(exc.wait))} s.",
                retry_after=exc.wait,
                provider=REAP,
                status=None,
            ) from exc
        if outcome.running:
            # Keep watching without the webhook (it may not be registered); one pending check per project.
            with session_scope(self.engine) as session:
                enqueue(
                    session, REAP_PROJECT, payload={"project_id": project_id, "source": "command"},
                    dedupe_key=f"reap-project:{project_id}", delay=self.project_recheck_seconds, priority=8,
                )
            self.wake()
        return outcome.text()

    def _import(self, project_id: str, *, actor: str | None, priority: Priority) -> ProjectImport:
        status = self.client.get_project_status(project_id, priority=priority)
        outcome = ProjectImport(project_id=project_id, status=status)
        if status != PROJECT_DONE:
            return outcome
        choices = [i for i in self._get_integrations(priority) if i.is_active]
        targets, outcome.skipped = self._default_targets(choices)
        if not targets:
            outcome.no_targets = True
            return outcome
        outcome.targets = [t.label for t in targets]
        clips = self.client.get_project_clips(project_id, priority=priority)
        outcome.clips = len(clips)
        outcome.created, outcome.already = self._card_clips(project_id, clips, targets, choices, actor)
        return outcome

    def _get_integrations(self, priority: Priority) -> list[ReapIntegration]:
        """Reap's integrations, cached briefly: each call costs one of ten requests a minute."""
        with self._lock:
            cached = self._integrations
        if cached is not None and time.monotonic() - cached[0] < INTEGRATIONS_TTL:
            return cached[1]
        fresh = self.client.get_integrations(priority=priority)
        with self._lock:
            self._integrations = (time.monotonic(), fresh)
        return fresh

    def _default_targets(self, active: list[ReapIntegration]) -> tuple[list[ReapIntegration], list[str]]:
        """REAP_INTEGRATIONS (in its order) when set, else every active integration."""
        wanted = self.settings.reap_integrations
        if not wanted:
            return list(active), []
        by_id = {i.id: i for i in active}
        return [by_id[w] for w in wanted if w in by_id], [w for w in wanted if w not in by_id]

    def _card_clips(
        self,
        project_id: str,
        clips: list[ReapClip],
        targets: list[ReapIntegration],
        choices: list[ReapIntegration],
        actor: str | None,
    ) -> tuple[int, int]:
        created = already = 0
        platforms = list(dict.fromkeys(c.platform.value for c in choices))
        with session_scope(self.engine) as session:
            for clip in clips:
                external_id = f"{project_id}:{clip.id}"
                if find_post(session, provider=REAP, external_id=external_id) is not None:
                    already += 1
                    continue
                extra: dict[str, Any] = {
                    "targets": [t.id for t in targets],
                    "target_labels": [t.label for t in targets],
                    "integrations": [{"id": c.id, "platform": c.platform.value, "label": c.label} for c in choices],
                    "tags": [],
                    "settings": {p: default_settings(p) for p in platforms if default_settings(p)},
                }
                content = PostContent(caption=clip.caption, title=clip.title)
                extra["problems"] = draft_problems(content, extra)
                extra["notes"] = compose_notes(extra)
                row = Post(
                    provider=REAP,
                    external_id=external_id,
                    clip_id=clip.id,
                    project_id=project_id,
                    platform=targets[0].platform.value,
                    status=PostStatus.DRAFT.value,
                    content=content.to_dict(),
                    extra=extra,
                    channel_id=self.settings.slack_channel_id,
                    remote_checked_at=utcnow(),
                )
                if insert_post_if_new(session, row):
                    assert row.id is not None
                    add_audit(session, post_id=row.id, actor=actor, action="carded", outcome="ok", detail=external_id)
                    request_card_sync(session, row.id)
                    created += 1
                else:
                    already += 1
        self.wake()
        return created, already

    def run_project(self, job: Job) -> None:
        """Job: confirm a project's status with Reap (webhooks are only hints) and import it."""
        project_id = str(job.payload["project_id"])
        try:
            outcome = self._import(project_id, actor=None, priority=Priority.BACKGROUND)
        except BudgetExhausted as exc:
            raise Retry("reap budget exhausted", exc.wait + random.uniform(0.0, 1.0)) from exc
        except ApiRateLimited as exc:
            raise Retry("reap rate limited", max(1.0, exc.retry_after)) from exc
        except ApiUnavailable as exc:
            raise Retry(exc.user_message, min(300.0, 15.0 * job.attempts)) from exc
        except ApiRejected as exc:
            log.warning("Reap project %s can't be imported: %s", project_id, exc.user_message)
            return
        if outcome.running and job.attempts < PROJECT_MAX_CHECKS:
            raise Retry(f"project still {outcome.status}", self.project_recheck_seconds)
        log.info("Reap project %s: %s", project_id, outcome.text().splitlines()[0])

    # -- the webhook ---------------------------------------------------------------------------

    def webhook(self, token: str, body: bytes) -> int:
        """POST /webhooks/reap/<token>: 404 unless the token matches; else record a hint, answer 200."""
        if not token_matches(token, self.settings.reap_webhook_token):
            return 404
        hint = parse_project_hint(body)
        if hint is None:
            # Reap's creation-time validation sends a dummy payload; it must get 200 too.
            return 200
        status = hint.status or "unknown"
        try:
            with session_scope(self.engine) as session:
                if record_webhook(
                    session,
                    event_id=f"{hint.project_id}:{status}",
                    provider=REAP,
                    type_=f"project.{status}"[:64],
                    payload={"projectId": hint.project_id, "status": hint.status},
                ):
                    enqueue(session, REAP_PROJECT, payload={"project_id": hint.project_id, "source": "webhook"}, priority=4)
        except Exception:  # noqa: BLE001 - a non-200 makes Reap count a failed delivery; log and say so
            log.exception("could not record a Reap webhook for project %s", hint.project_id)
            return 503
        self.wake()
        return 200

    # -- PostProvider: what PostService calls ----------------------------------------------------

    def list_clip_posts(self, clip_id: str, *, priority: Priority = Priority.INTERACTIVE) -> ClipListing:
        """Our drafts of a clip (Reap has no posts until we publish)."""
        with session_scope(self.engine) as session:
            rows = session.exec(select(Post).where(Post.provider == REAP, Post.clip_id == clip_id)).all()
            return ClipListing(clip_id=clip_id, posts=[remote_of(r) for r in rows])

    def get_post(self, post_id: str, *, priority: Priority = Priority.INTERACTIVE) -> RemotePost:
        """The draft as Greenlight holds it (no API call)."""
        with session_scope(self.engine) as session:
            post = find_post(session, provider=REAP, external_id=post_id)
            if post is None:
                raise ApiNotFound(f"Greenlight has no Reap draft {post_id}.", provider=REAP, status=404)
            return remote_of(post)

    def update_post(self, post_id: str, changes: dict[str, Any]) -> RemotePost:
        """Apply an edit to our row only: nothing reaches Reap until the post is published."""
        with session_scope(self.engine) as session:
            post = _locked(session, external_id=post_id)
            remote = remote_of(post)
            if remote.status != PostStatus.DRAFT:
                raise ApiBadRequest(f"Only drafts can be edited; this post is {remote.status.value}.", provider=REAP)
            old_content = PostContent.from_dict(post.content)
            content = old_content
            if "caption" in changes:
                content = content.with_changes(caption=str(changes["caption"]))
            if "title" in changes:
                content = content.with_changes(title=str(changes["title"]))
            extra = dict(post.extra or {})
            changed: list[str] = []
            if "tags" in changes:
                tags = [str(t) for t in changes["tags"] or []]
                if tags != extra.get("tags"):
                    extra["tags"] = tags
                    changed.append("tags")
            if "targets" in changes:
                choices = {c.id: c for c in choices_of(extra)}
                targets = [str(t) for t in changes["targets"] or []]
                unknown = [t for t in targets if t not in choices]
                if not targets or unknown:
                    raise ApiBadRequest("Pick at least one of the offered Reap accounts.", provider=REAP)
                if targets != extra.get("targets"):
                    extra["targets"] = targets
                    extra["target_labels"] = [choices[t].label for t in targets]
                    changed.append("targets")
            if "settings" in changes and isinstance(changes["settings"], dict):
                merged = dict(extra.get("settings") or {})
                for platform, values in changes["settings"].items():
                    if isinstance(values, dict):
                        merged[str(platform)] = {**merged.get(str(platform), {}), **values}
                if merged != extra.get("settings"):
                    extra["settings"] = merged
                    changed.append("platform settings")
            platforms = target_platforms(extra)
            # The modal checked this already; this is the last line before anything reaches Reap.
            problems = field_errors(content.title or "", content.caption, list(extra.get("tags") or []), set(platforms))
            if problems:
                raise ApiBadRequest(" ".join(problems.values()), provider=REAP)
            extra["problems"] = []
            extra["notes"] = compose_notes(extra)
            post.extra = extra  # reassigned, never mutated: the JSON column doesn't track in-place changes
            post.content = content.to_dict()
            if platforms:
                post.platform = platforms[0].value
            editor = changes.get(EDITOR_KEY)
            editor = str(editor) if isinstance(editor, str) and editor else None
            if changed:
                assert post.id is not None
                add_audit(session, post_id=post.id, actor=editor, action="reap_settings", outcome="ok", detail=", ".join(changed))
                if content == old_content:
                    # PostService only notices content changes: record this edit the way it would,
                    # including invalidating approvals given to the previous version.
                    post.content_version += 1
                    post.updated_at = utcnow()
                    if editor:
                        post.last_editor = editor
                        post.activity = Activity(ActivityKind.EDITED, actor=editor).to_dict()
                    request_thread_reply(session, post.id, notices.edited(editor, ", ".join(changed), approvals_reset=False))
            return remote_of(post)

    def publish_post(self, post_id: str, scheduled_at: datetime | None = None) -> RemotePost:
        """Publish now (hand to Reap) or schedule (Greenlight holds it and hands it over at that time)."""
        if scheduled_at is not None:
            return self._schedule(post_id, scheduled_at)
        return self._hand_off(post_id, expect=PostStatus.DRAFT)

    def cancel_post(self, post_id: str) -> RemotePost:
        """Cancel while Greenlight still holds the post; once Reap has it, refuse and say where to go."""
        with session_scope(self.engine) as session:
            post = _locked(session, external_id=post_id)
            extra = dict(post.extra or {})
            if extra.get("reap_post_id") or extra.get("handoff_started") or extra.get("handoff_unknown"):
                raise ApiBadRequest(NOT_CANCELLABLE, provider=REAP)
            if PostStatus.parse(post.status).is_terminal:
                return remote_of(post)
            post.status = PostStatus.CANCELLED.value
            post.updated_at = utcnow()
            extra["cancelled"] = True
            extra["notes"] = compose_notes(extra)
            post.extra = extra
            # A pending reap_handoff job finds the post cancelled and does nothing.
            return remote_of(post)

    # -- schedule and hand-off -------------------------------------------------------------------

    def _schedule(self, post_id: str, when: datetime) -> RemotePost:
        with session_scope(self.engine) as session:
            post = _locked(session, external_id=post_id)
            if post.status != PostStatus.DRAFT.value or (post.extra or {}).get("handoff_started"):
                return remote_of(post)  # an earlier attempt of this job already did it
            self._publish_request(post)  # refuse now, not at the scheduled time, if it can't go out
            assert post.id is not None
            post.status = PostStatus.SCHEDULED.value
            post.scheduled_at = when
            post.updated_at = utcnow()
            enqueue(
                session,
                REAP_HANDOFF,
                post_id=post.id,
                payload={"scheduled_at": int(when.timestamp())},
                dedupe_key=f"reap-handoff:{post.id}",
                delay=max(0.0, (when - utcnow()).total_seconds()),
                priority=3,
            )
            return remote_of(post)

    def _publish_request(self, post: Post) -> dict[str, Any]:
        """The publish-clip arguments for a row, or ApiBadRequest saying what to fix."""
        extra = post.extra or {}
        targets = [str(t) for t in extra.get("targets") or []]
        if not targets:
            raise ApiBadRequest("This draft has no Reap account to publish to; pick one with Edit.", provider=REAP)
        content = PostContent.from_dict(post.content)
        tags = [str(t) for t in extra.get("tags") or []]
        platforms = target_platforms(extra)
        problems = field_errors(content.title or "", content.caption, tags, set(platforms))
        if problems:
            raise ApiBadRequest("Edit the draft first: " + " ".join(problems.values()), provider=REAP)
        stored: dict[str, Any] = extra.get("settings") or {}
        # Reap: "only include platforms you're publishing to".
        settings = {
            p.value: {**default_settings(p.value), **(stored.get(p.value) or {})}
            for p in platforms
            if default_settings(p.value)
        }
        project_id = post.project_id or post.external_id.split(":", 1)[0]
        return {
            "project_id": project_id,
            "clip_id": post.clip_id,
            "integrations": targets,
            "title": content.title or None,
            "description": content.caption,
            "tags": tags,
            "platform_settings": settings,
        }

    def _hand_off(self, external_id: str, *, expect: PostStatus) -> RemotePost:
        """Call publish-clip at most once per post, with a marker committed before the call."""
        with session_scope(self.engine) as session:
            post = _locked(session, external_id=external_id)
            extra = dict(post.extra or {})
            if extra.get("reap_post_id") or extra.get("handoff_unknown") or post.status != expect.value:
                return remote_of(post)
            if expect is PostStatus.SCHEDULED and post.pending_action == PendingAction.CANCEL.value:
                # Someone pressed Cancel before the hand-off: let that win.
                raise Retry("a cancel is in progress", 1.0)
            row_id = post.id
            assert row_id is not None
            if extra.get("handoff_started"):
                # An earlier attempt died between sending and recording Reap's answer.
                unknown = True
            else:
                unknown = False
                request = self._publish_request(post)
                extra["handoff_started"] = _iso(utcnow())
                post.extra = extra
        if unknown:
            self._mark_unknown(row_id)
            raise HandoffUnknown(UNKNOWN_OUTCOME, provider=REAP)
        try:
            reap_post = self.client.publish_clip(**request)
        except ApiUnavailable as exc:
            if exc.sent:
                self._mark_unknown(row_id)
                raise HandoffUnknown(UNKNOWN_OUTCOME, provider=REAP) from exc
            self._clear_started(row_id)
            raise
        except (ApiError, BudgetExhausted):
            # A definite answer (4xx, 429) or no slot: Reap did not publish, so it may be retried.
            self._clear_started(row_id)
            raise
        return self._record_handoff(row_id, reap_post)

    def _record_handoff(self, row_id: int, reap_post: ReapPost) -> RemotePost:
        with session_scope(self.engine) as session:
            post = _locked(session, post_id=row_id)
            extra = dict(post.extra or {})
            extra.update(reap_post_id=reap_post.id, reap_status=reap_post.status, handed_off_at=_iso(utcnow()))
            extra["notes"] = compose_notes(extra)
            post.extra = extra
            enqueue(session, REAP_POLL, post_id=row_id, dedupe_key=f"reap-poll:{row_id}", delay=self.poll_seconds, priority=7)
            return remote_of(post)

    def _mark_unknown(self, row_id: int) -> None:
        with session_scope(self.engine) as session:
            post = _locked(session, post_id=row_id)
            extra = dict(post.extra or {})
            extra["handoff_unknown"] = True
            extra["notes"] = compose_notes(extra)
            post.extra = extra
            add_audit(session, post_id=row_id, actor=None, action="reap_handoff", outcome="unknown", detail=UNKNOWN_OUTCOME)

    def _clear_started(self, row_id: int) -> None:
        with session_scope(self.engine) as session:
            post = _locked(session, post_id=row_id)
            extra = dict(post.extra or {})
            extra.pop("handoff_started", None)
            post.extra = extra

    def run_handoff(self, job: Job) -> None:
        """Job: at the scheduled time, hand the post to Reap (exactly once; survives restarts)."""
        assert job.post_id is not None
        with session_scope(self.engine) as session:
            post = get_post(session, job.post_id)
            if post is None or post.status != PostStatus.SCHEDULED.value or post.scheduled_at is None:
                return  # cancelled, failed or already handed over
            external_id, when = post.external_id, post.scheduled_at
        wanted = job.payload.get("scheduled_at")
        if isinstance(wanted, int) and abs(wanted - int(when.timestamp())) > 1:
            return  # a stale job for an earlier schedule of this post
        early = (when - self.clock()).total_seconds()
        if early > 1.0:
            raise Retry("not time yet", early)
        try:
            remote = self._hand_off(external_id, expect=PostStatus.SCHEDULED)
        except HandoffUnknown:
            remote = self.get_post(external_id)
        except BudgetExhausted as exc:
            raise Retry("reap budget exhausted", exc.wait) from exc
        except ApiRateLimited as exc:
            raise Retry("reap rate limited", max(1.0, exc.retry_after)) from exc
        except ApiUnavailable as exc:
            raise Retry(exc.user_message, min(60.0, 2.0 ** job.attempts)) from exc
        except ApiRejected as exc:
            remote = RemotePost(
                id=external_id, clip_id="", platform=Platform.YOUTUBE, status=PostStatus.FAILED,
                content=PostContent(caption=""), error=f"Reap refused the scheduled post: {exc.user_message}",
            )
            remote = self._with_row(job.post_id, remote)
        self.posts.apply_remote_update(job.post_id, remote, source="reap_handoff")
        late = self.clock() - when
        if remote.status == PostStatus.QUEUED and late > LATE_HANDOFF:
            with session_scope(self.engine) as session:
                minutes = int(late.total_seconds() // 60)
                request_thread_reply(session, job.post_id, notices.handed_over_late("Reap", minutes))
            self.wake()

    def _with_row(self, row_id: int, remote: RemotePost) -> RemotePost:
        """Fill a synthetic RemotePost's platform/content from our row."""
        with session_scope(self.engine) as session:
            post = get_post(session, row_id)
            if post is None:
                return remote
            base = remote_of(post)
        return RemotePost(
            id=base.id, clip_id=base.clip_id, platform=base.platform, status=remote.status, content=base.content,
            scheduled_at=base.scheduled_at, published_at=remote.published_at, published_url=remote.published_url,
            error=remote.error,
        )

    # -- outcome polling -----------------------------------------------------------------------

    def run_poll(self, job: Job) -> None:
        """Job: ask Reap how the publish went, until it is decided (Reap sends no post webhooks)."""
        assert job.post_id is not None
        with session_scope(self.engine) as session:
            post = get_post(session, job.post_id)
            if post is None or PostStatus.parse(post.status).is_terminal:
                return
            extra = dict(post.extra or {})
        reap_post_id = extra.get("reap_post_id")
        if not reap_post_id:
            return
        handed = extra.get("handed_off_at")
        age = utcnow() - datetime.fromisoformat(handed) if isinstance(handed, str) else timedelta(0)
        interval = self.poll_seconds if age < SLOW_POLL_AFTER else self.slow_poll_seconds
        try:
            reap_post = self.client.get_post_details(str(reap_post_id), priority=Priority.BACKGROUND)
        except BudgetExhausted as exc:
            # Spread the retries so a crowd of polls doesn't stampede the next free slot.
            raise Retry("reap budget exhausted", exc.wait + random.uniform(0.0, 2.0)) from exc
        except ApiRateLimited as exc:
            raise Retry("reap rate limited", max(1.0, exc.retry_after) + random.uniform(0.0, 2.0)) from exc
        except ApiNotFound:
            remote = self._with_row(job.post_id, RemotePost(
                id="", clip_id="", platform=Platform.YOUTUBE, status=PostStatus.FAILED, content=PostContent(caption=""),
                error=f"Reap no longer knows post {reap_post_id}; check the Reap dashboard.",
            ))
            self.posts.apply_remote_update(job.post_id, remote, source="reap_poll")
            return
        except ApiError as exc:
            log.warning("polling Reap post %s failed: %s", reap_post_id, exc.user_message)
            raise Retry(exc.user_message, interval * 2) from exc
        if reap_post.status in (POST_COMPLETED, POST_FAILED, POST_PARTIAL, POST_CANCELLED):
            self._finish(job.post_id, reap_post)
            return
        if age > GIVE_UP_AFTER:
            self._note(job.post_id, "⚠️ Reap still reports this post as processing after 24 hours; check the Reap dashboard.")
            return
        if reap_post.status != extra.get("reap_status"):
            with session_scope(self.engine) as session:
                row = _locked(session, post_id=job.post_id)
                row.extra = {**(row.extra or {}), "reap_status": reap_post.status}
        raise Retry(f"reap post {reap_post.status}", interval)

    def _note(self, row_id: int, note: str) -> None:
        with session_scope(self.engine) as session:
            post = _locked(session, post_id=row_id)
            extra = dict(post.extra or {})
            extra["status_notes"] = [*(extra.get("status_notes") or []), note]
            extra["notes"] = compose_notes(extra)
            post.extra = extra
            request_thread_reply(session, row_id, escape(note))
            request_card_sync(session, row_id)
        self.wake()

    def _finish(self, row_id: int, reap_post: ReapPost) -> None:
        """Record Reap's final answer: per-platform results on the card, status via PostService."""
        with session_scope(self.engine) as session:
            post = _locked(session, post_id=row_id)
            extra = dict(post.extra or {})
            platforms = [p.value for p in target_platforms(extra)] or list(reap_post.platforms)
            results: dict[str, dict[str, Any]] = {}
            for name in platforms:
                if name in reap_post.success_platforms:
                    ok: bool | None = True
                elif name in reap_post.failed_platforms:
                    ok = False
                elif reap_post.status == POST_COMPLETED:
                    ok = True
                elif reap_post.status == POST_FAILED:
                    ok = False
                else:
                    ok = None
                results[name] = {"ok": ok, "url": reap_post.urls.get(name)}
            succeeded = [n for n, r in results.items() if r["ok"] is True]
            failed = [n for n, r in results.items() if r["ok"] is not True]
            error: str | None = None
            notes: list[str] = []
            if reap_post.status == POST_CANCELLED:
                status = PostStatus.CANCELLED
                notes.append("🚫 Cancelled in the Reap dashboard.")
            elif succeeded:
                status = PostStatus.PUBLISHED
                if failed:
                    names = ", ".join(_label(n) for n in failed)
                    notes.append(f"⚠️ Partly published: {names} failed ({NO_REASON}).")
            else:
                status = PostStatus.FAILED
                error = f"Reap couldn't publish to {', '.join(_label(n) for n in failed) or 'any account'} ({NO_REASON})."
            extra.update(results=results, reap_status=reap_post.status, final=True)
            extra["status_notes"] = [*(extra.get("status_notes") or []), *notes]
            extra["notes"] = compose_notes(extra)
            post.extra = extra
            url = (results.get(post.platform) or {}).get("url") or next(
                (r["url"] for r in results.values() if r.get("url")), None
            )
        remote = self._with_row(row_id, RemotePost(
            id="", clip_id="", platform=Platform.YOUTUBE, status=status, content=PostContent(caption=""),
            published_at=(reap_post.publish_date or utcnow()) if status == PostStatus.PUBLISHED else None,
            published_url=url, error=error,
        ))
        self.posts.apply_remote_update(row_id, remote, source="reap_poll")
        if status == PostStatus.PUBLISHED and (failed or len(results) > 1):
            rows = [(_label(n), r["ok"] is True, r.get("url")) for n, r in results.items()]
            with session_scope(self.engine) as session:
                request_thread_reply(session, row_id, notices.partial_results(rows, partly=bool(failed)))
            self.wake()

    # -- Slack: the edit modal -----------------------------------------------------------------

    def register_listeners(self, app: App) -> None:
        """Registrar: the Reap edit modal's submission listener."""
        app.view(ViewId.REAP_EDIT.value)(self._save_edit)

    def _save_edit(self, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        """Reap edit modal submitted: validate for the chosen targets, then queue the edit."""
        post_id, user = post_id_of(view), str(body["user"]["id"])
        if bad := unstorable_text_errors(view.get("state", {}).get("values", {})):
            ack(response_action="errors", errors=bad)
            return
        with session_scope(self.engine) as session:
            post = get_post(session, post_id) if post_id is not None else None
            if post is None or post_id is None or post.provider != REAP:
                ack(response_action="errors", errors={Field.DESCRIPTION.value: notices.unknown_post().plain})
                return
            extra = dict(post.extra or {})
            old = PostContent.from_dict(post.content)
            channel = post.channel_id or self.settings.slack_channel_id
        form = parse_reap_edit(view["state"]["values"], extra)
        if isinstance(form, dict):
            ack(response_action="errors", errors=form)
            return
        new = old.with_changes(caption=form.description, title=form.title if (form.title or old.title) else old.title)
        provider_changes: dict[str, Any] = {}
        if form.tags != list(extra.get("tags") or []):
            provider_changes["tags"] = form.tags
        if form.targets != list(extra.get("targets") or []):
            provider_changes["targets"] = form.targets
        if form.settings != (extra.get("settings") or {}):
            provider_changes["settings"] = form.settings
        if not new.changes_from(old) and not provider_changes:
            ack()
            return
        if provider_changes:
            provider_changes[EDITOR_KEY] = user
        result = self.posts.request(
            post_id, user, PendingAction.EDIT, channel=channel,
            payload={"content": new.to_dict(), "provider_changes": provider_changes},
        )
        if not result.accepted:
            ack(response_action="errors", errors={Field.DESCRIPTION.value: result.message.plain if result.message else ""})
            return
        ack()


def edit_modal_for(post: Post) -> View:
    """services.edit_modals["reap"]: the modal for a Reap row."""
    assert post.id is not None
    content = PostContent.from_dict(post.content)
    return reap_edit_modal(post.id, title=content.title, description=content.caption, extra=dict(post.extra or {}))


def install_reap(services: Services, *, holder: str) -> list[Any]:
    """Wire Reap into a runtime: provider, jobs, edit modal, listener, webhook and importer."""
    settings = services.settings
    assert settings.reap_api_key, "install_reap needs REAP_API_KEY"
    # One budget for every Reap call this process makes: Reap's limit is per key, not per endpoint.
    budget = budget_for(settings, services.engine, "reap", settings.reap_requests_per_minute)
    client = ReapClient.build(
        base_url=settings.reap_api_url, api_key=settings.reap_api_key, budget=budget,
        timeout=settings.http_timeout_seconds,
    )
    service = ReapService(services.engine, settings, client, services.posts, wake=services.runner.wake)
    services.posts.providers[REAP] = service
    services.reap = service
    services.edit_modals[REAP] = edit_modal_for
    services.registrars.append(service.register_listeners)
    services.extra["reap_webhook"] = service.webhook
    services.extra["reap_service"] = service
    services.runner.handlers.update(service.handlers())
    log.info("Reap enabled (%s, %s requests/minute, holder %s)", settings.reap_api_url, settings.reap_requests_per_minute, holder)
    # Hand-offs and polls are durable jobs, so there is no background loop to run.
    return []
