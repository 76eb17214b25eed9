"""Drafts arriving: from `/greenlight <command> <ref>`, or a "drafts ready" webhook, for any provider.

The provider says what a clip or project holds; each draft becomes one row and one card, once (the
(provider, external id) pair is unique), and rows already known are refreshed. A project the
provider is still making is looked at again later by an `import` job, until it is ready or a few
hours have passed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlmodel import col, select

from bot.config import Settings
from bot.db import add_audit, find_post, insert_post_if_new, session_scope
from bot.domain import DraftSpec, Import, ImportState, PostStatus, RemotePost
from bot.jobs import Retry, enqueue
from bot.models import Job, Post, utcnow
from bot.providers.budget import Priority
from bot.providers.errors import ApiError, ApiRejected
from bot.providers.http import next_delay
from bot.providers.registry import Providers
from bot.services.cards import request_card_sync
from bot.services.clips import register_clip
from bot.services.state import apply_remote

log = logging.getLogger(__name__)

IMPORT = "import"
# A project still being made is checked again this many times (three hours of five-minute checks).
MAX_RECHECKS = 36


@dataclass
class Intake:
    """What one import did: the provider's findings plus what was carded."""

    provider_title: str
    noun: str
    found: Import
    carded: list[RemotePost] = field(default_factory=list)
    already: list[RemotePost] = field(default_factory=list)
    new_post_ids: list[int] = field(default_factory=list)


class IntakeService:
    """Imports drafts and cards them, whichever provider they come from."""

    def __init__(self, engine: Engine, settings: Settings, providers: Providers,
                 wake: Callable[[], None] = lambda: None) -> None:
        self.engine = engine
        self.settings = settings
        self.providers = providers
        self.wake = wake

    def handlers(self) -> dict[str, Callable[[Job], None]]:
        """Job kind -> handler."""
        return {IMPORT: self.run_import}

    def import_drafts(self, slug: str, ref: str, *, actor: str | None = None, post_id: str | None = None,
                      priority: Priority = Priority.INTERACTIVE) -> Intake:
        """Card every draft `ref` holds that has no card yet (idempotent); says what was done."""
        provider = self.providers[slug]
        found = provider.import_drafts(ref, post_id=post_id, priority=priority)
        intake = Intake(provider_title=provider.title, noun=provider.noun, found=found)
        self._card(slug, found, intake, actor)
        if found.state is ImportState.RUNNING and found.recheck_after is not None and priority is Priority.INTERACTIVE:
            # Keep watching without the webhook (it may not be registered); one pending check per ref.
            self.recheck_later(slug, found.ref, found.recheck_after.total_seconds())
        return intake

    def recheck_later(self, slug: str, ref: str, delay: float) -> None:
        """Look at `ref` again in `delay` seconds (one pending check per provider and ref)."""
        with session_scope(self.engine) as session:
            enqueue(session, IMPORT, payload={"provider": slug, "ref": ref}, dedupe_key=f"import:{slug}:{ref}",
                    delay=delay, priority=8)
        self.wake()

    def run_import(self, job: Job) -> None:
        """Job: import in the background (a webhook said drafts are ready, or a recheck came due)."""
        slug, ref = str(job.payload["provider"]), str(job.payload.get("ref") or "")
        if slug not in self.providers:
            log.warning("import for %s ignored: it is not configured", slug)
            return
        try:
            intake = self.import_drafts(slug, ref, post_id=job.payload.get("post_id"), priority=Priority.BACKGROUND)
        except ApiRejected as exc:
            log.warning("%s %s can't be imported: %s", slug, ref, exc.user_message)
            return
        except ApiError as exc:
            delay = next_delay(exc, job.attempts)
            if delay is None:
                raise
            raise Retry(exc.user_message, delay) from exc
        found = intake.found
        if found.state is ImportState.RUNNING and found.recheck_after is not None and job.attempts < MAX_RECHECKS:
            raise Retry(f"still {found.state_word}", found.recheck_after.total_seconds())
        log.info("%s %s: %s new draft(s), %s already carded", slug, found.ref, len(intake.carded), len(intake.already))

    def _card(self, slug: str, found: Import, intake: Intake, actor: str | None) -> None:
        """Rows and cards for the new drafts; rows we already track are refreshed."""
        with session_scope(self.engine) as session:
            for spec in found.drafts + [DraftSpec(p) for p in found.others]:
                remote = spec.remote
                existing = find_post(session, provider=slug, external_id=remote.id)
                if existing is not None:
                    if apply_remote(existing, remote):
                        request_card_sync(session, existing.id or 0)
                    if remote.status is PostStatus.DRAFT:
                        intake.already.append(remote)
                    continue
                if remote.status is not PostStatus.DRAFT:
                    continue
                row = self._row(slug, spec, found.ref)
                if insert_post_if_new(session, row):
                    assert row.id is not None
                    # The clip's message goes first: the card is posted in its thread.
                    register_clip(session, provider=slug, ref=row.clip_id, project_id=row.project_id,
                                  info=found.clips.get(row.clip_id),
                                  preview=self.settings.clip_preview != "off")
                    add_audit(session, post_id=row.id, actor=actor, action="carded", outcome="ok", detail=remote.id)
                    request_card_sync(session, row.id)
                    intake.carded.append(remote)
                    intake.new_post_ids.append(row.id)
                else:
                    intake.already.append(remote)
        self.wake()

    def _row(self, slug: str, spec: DraftSpec, ref: str) -> Post:
        remote = spec.remote
        return Post(
            provider=slug,
            external_id=remote.id,
            clip_id=remote.clip_id or ref,
            project_id=spec.project_id,
            platform=remote.platform.value,
            status=remote.status.value,
            content=remote.content.to_dict(),
            extra=dict(remote.state or {}),
            channel_id=self.settings.slack_channel_id,
            remote_checked_at=utcnow(),
        )

    def card_outcomes(self, post_ids: list[int]) -> tuple[int, int]:
        """How many of these posts have a card in Slack, and how many Slack refused outright."""
        if not post_ids:
            return 0, 0
        with session_scope(self.engine) as session:
            rows = session.exec(select(Post.message_ts, Post.card_error).where(col(Post.id).in_(post_ids))).all()
        shown = sum(1 for ts, _ in rows if ts is not None)
        failed = sum(1 for ts, error in rows if ts is None and error is not None)
        return shown, failed
