"""Accepting what reviewers ask for: who may, whether the post allows it now, and the durable intent.

A listener asks this service once per request and gets a typed answer (`Decision` for "may this
modal open", `ActionResult` for "was this accepted"). Accepting an action is one transaction: the
post flips into "<action> in progress" with a compare-and-set UPDATE and the job that will carry it
out is written beside it, before Slack is acknowledged. `bot.services.actions` runs the job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.config import Settings
from bot.db import add_audit, claim_post_action, get_post, session_scope
from bot.domain import (
    Activity,
    ActivityKind,
    Change,
    ChangeReason,
    ChangeRequest,
    EditForm,
    FormErrors,
    FormValues,
    PendingAction,
    PostContent,
    PostStatus,
)
from bot.jobs import enqueue
from bot.models import Approval, Post, utcnow
from bot.providers.base import Provider
from bot.providers.budget import Priority
from bot.providers.errors import ApiError
from bot.providers.registry import Providers
from bot.services.access import ApproverLookupFailed, Approvers
from bot.services.cards import approvals_for, request_card_sync, request_thread_reply
from bot.services.feedback import change_request_of, claim_change_request, who_should_edit
from bot.services.state import apply_remote, provider_post
from bot.slack import notices
from bot.slack.mrkdwn import Say

log = logging.getLogger(__name__)

POST_ACTION = "post_action"
# The audit action (and refusal wording key) of "Request changes".
REQUEST_CHANGES = "request_changes"
# Actions that decide on a version: four eyes and an open change request stop them.
DECISIONS = (PendingAction.PUBLISH, PendingAction.SCHEDULE)
# How a refusal words an action that isn't a plain verb ("Only approvers can request changes on posts").
ACTION_VERBS = {REQUEST_CHANGES: "request changes on"}
# How a refusal words a decision ("can't be approved yet").
VERB_ED = {"approve": "approved", PendingAction.PUBLISH.value: "published", PendingAction.SCHEDULE.value: "scheduled"}
# Publish, schedule and edit start only from a draft; what can still be cancelled is each
# provider's own rule (its capabilities).
DRAFT_ONLY: tuple[str, ...] = (PostStatus.DRAFT.value,)


@dataclass
class ActionResult:
    """Whether an action was accepted, and if not, what to tell the person who asked."""

    accepted: bool
    message: Say | None = None


@dataclass
class Decision:
    """May this person start this action on this post now? If so, what the modal needs."""

    allowed: bool
    refusal: Say | None = None
    post: Post | None = None
    form: EditForm | None = None


class Review:
    """Checks, approvals and accepted actions."""

    def __init__(
        self, engine: Engine, settings: Settings, providers: Providers, approvers: Approvers,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.providers = providers
        self.approvers = approvers
        self.wake = wake

    # -- rules ---------------------------------------------------------------------------------------

    def provider_of(self, post: Post) -> Provider | None:
        """The provider serving this post (None if it is no longer configured)."""
        return self.providers.get(post.provider)

    def cancellable(self, post: Post) -> frozenset[PostStatus]:
        """Statuses from which this post's provider can still cancel it."""
        provider = self.provider_of(post)
        return provider.capabilities.cancellable if provider is not None else frozenset()

    def allowed_from(self, post: Post, action: PendingAction) -> tuple[str, ...]:
        """Statuses in which `action` may start on this post."""
        if action is PendingAction.CANCEL:
            return tuple(sorted(s.value for s in self.cancellable(post)))
        return DRAFT_ONLY

    def can_start(self, post: Post, action: PendingAction) -> bool:
        """Whether `action` could start on this post now (no other action in flight, right status)."""
        return post.pending_action is None and post.status in self.allowed_from(post, action)

    def why_not(self, post: Post, action: PendingAction) -> Say:
        """Why `action` isn't possible on this post right now."""
        provider = self.provider_of(post)
        return notices.why_not(
            action,
            status=PostStatus.parse(post.status),
            pending=PendingAction(post.pending_action) if post.pending_action else None,
            pending_by=post.pending_by,
            error=post.error,
            raw_status=post.remote_status,
            can_cancel=PostStatus.parse(post.status) in self.cancellable(post),
            provider=provider.title if provider is not None else post.provider.title(),
        )

    def refuse_non_approver(self, post_id: int, user: str, action: str, *, team: str | None = None,
                            needs_approver: bool = True) -> Say | None:
        """Why `user` (whose home team is `team`) may not `action` this post (audited as denied), or
        None when they may. Without `needs_approver` (an edit EDITORS_CAN_EDIT allows), only people
        from another organisation are refused (see bot.services.access)."""
        try:
            refusal = self._who_refusal(user, action, team, needs_approver)
        except ApproverLookupFailed:
            refusal = notices.approver_check_failed()
        if refusal is None:
            return None
        with session_scope(self.engine) as session:
            add_audit(session, post_id=post_id, actor=user, action=str(action), outcome="denied", detail=refusal.plain[:500])
        return refusal

    def _who_refusal(self, user: str, action: str, team: str | None, needs_approver: bool) -> Say | None:
        if self.approvers.is_listed(user):
            return None
        verb = ACTION_VERBS.get(action, action)
        if self.approvers.is_outsider(team):
            return notices.outsider(verb)
        if not needs_approver or self.approvers.is_approver(user):
            return None
        return notices.not_an_approver(verb, self.approvers.describe())

    def outsider_refusal(self, user: str, team: object) -> Say | None:
        """Why someone from another organisation may not run `/greenlight` imports or see the queue
        (None for this organisation's people and listed approvers)."""
        try:
            if self.approvers.is_listed(user) or not self.approvers.is_outsider(team if isinstance(team, str) else None):
                return None
        except ApproverLookupFailed:
            return notices.approver_check_failed()
        return notices.outsider_command()

    def _needs_approver(self, action: PendingAction) -> bool:
        return action is not PendingAction.EDIT or not self.settings.editors_can_edit

    def blocked(self, session: Session, post: Post, user: str, verb: str) -> Say | None:
        """Why `user` may not approve, publish or schedule this draft's current version (audited as
        denied), or None: changes were requested and not yet made, or `user` made the last edit and
        four eyes apply (ALLOW_SELF_APPROVAL=false)."""
        found = self._block(post, user, verb)
        if found is None:
            return None
        refusal, detail = found
        add_audit(session, post_id=post.id, actor=user, action=verb, outcome="denied", detail=detail)
        return refusal

    def _block(self, post: Post, user: str, verb: str) -> tuple[Say, str] | None:
        request = change_request_of(post)
        if request is not None:
            return notices.changes_pending(request, VERB_ED.get(verb, verb)), "changes requested"
        if post.last_editor == user and not self.settings.allow_self_approval:
            refusal = notices.self_approval(verb, notices.who_else(self.settings.approvers, user))
            return refusal, "self-approval" if verb == "approve" else f"four eyes: {user} made the last edit"
        return None

    # -- one answer per listener -----------------------------------------------------------------------

    def check(self, post_id: int, user: str, action: PendingAction, *, team: str | None = None) -> Decision:
        """May `user` start `action` on the post now (for a modal about to open)? With the edit form."""
        if refusal := self.refuse_non_approver(post_id, user, action.value, team=team,
                                               needs_approver=self._needs_approver(action)):
            return Decision(False, refusal)
        with session_scope(self.engine) as session:
            post = get_post(session, post_id)
            if post is None:
                return Decision(False, notices.unknown_post())
            if action in DECISIONS and self.can_start(post, action) and (
                refusal := self.blocked(session, post, user, action.value)
            ):
                session.expunge(post)
                return Decision(False, refusal, post=post)
            session.expunge(post)
        if not self.can_start(post, action):
            return Decision(False, self.why_not(post, action), post=post)
        return Decision(True, post=post)

    def load_for_edit(self, post_id: int) -> Decision:
        """Re-read the post from its provider (never edit a stale copy), then its edit form, or why not."""
        with session_scope(self.engine) as session:
            post = get_post(session, post_id)
            if post is None:
                return Decision(False, notices.unknown_post())
            session.expunge(post)
        provider = self.provider_of(post)
        if provider is None:
            return Decision(False, notices.provider_gone(post.provider), post=post)
        try:
            remote = provider.read(provider_post(post), priority=Priority.INTERACTIVE)
        except ApiError as err:
            return Decision(False, notices.could_not_load(err.user_message), post=post)
        with session_scope(self.engine) as session:
            fresh = get_post(session, post_id)
            assert fresh is not None
            if apply_remote(fresh, remote):
                request_card_sync(session, post_id)
            session.flush()
            session.expunge(fresh)
        self.wake()
        return self.edit_form(fresh)

    @staticmethod
    def could_not_load() -> Decision:
        """The answer when loading a post for a modal failed unexpectedly."""
        return Decision(False, notices.could_not_load(None))

    def edit_form(self, post: Post) -> Decision:
        """The edit form of a post whose edit was allowed (and re-read from its provider)."""
        provider = self.provider_of(post)
        if provider is None:
            return Decision(False, notices.provider_gone(post.provider), post=post)
        if not self.can_start(post, PendingAction.EDIT):
            return Decision(False, self.why_not(post, PendingAction.EDIT), post=post)
        return Decision(True, post=post, form=provider.edit_form(provider_post(post)))

    def submit_edit(self, post_id: int, user: str, values: FormValues, *, channel: str,
                    team: str | None = None) -> ActionResult | FormErrors:
        """An edit form came back: inline errors, or the edit accepted (or refused) like any action."""
        with session_scope(self.engine) as session:
            post = get_post(session, post_id)
            if post is None:
                return ActionResult(False, notices.unknown_post())
            session.expunge(post)
        provider = self.provider_of(post)
        if provider is None:
            return ActionResult(False, notices.provider_gone(post.provider))
        parsed = provider.parse_edit(provider_post(post), values)
        if isinstance(parsed, dict):
            return parsed
        if parsed.content.to_dict() == post.content and parsed.state in (None, post.extra):
            return ActionResult(True)  # nothing changed: nothing to do
        return self.request(post_id, user, PendingAction.EDIT, channel=channel or post.channel_id or "",
                            payload={"change": change_payload(parsed)}, team=team)

    def refusal(self, post: Post, user: str, action: PendingAction, *, team: str | None = None) -> Say | None:
        """Why `user` can't start `action` on `post` now, or None: the same rules as `request`, with
        no side effects (Publish all / Schedule all list them before anything is done)."""
        try:
            if who := self._who_refusal(user, action.value, team, self._needs_approver(action)):
                return who
        except ApproverLookupFailed:
            return notices.approver_check_failed()
        if not self.can_start(post, action):
            return self.why_not(post, action)
        if action in DECISIONS:
            if (found := self._block(post, user, action.value)) is not None:
                return found[0]
            if self.settings.required_approvals > 1:
                with session_scope(self.engine) as session:
                    have = len(approvals_for(session, post))
                if have < self.settings.required_approvals:
                    return notices.needs_approvals(action, have, self.settings.required_approvals)
            provider = self.provider_of(post)
            problems = provider.publish_problems(provider_post(post)) if provider is not None else []
            if problems:
                return notices.edit_first(problems)
        return None

    def request(
        self, post_id: int, user: str, action: PendingAction, *, channel: str, payload: dict[str, Any] | None = None,
        team: str | None = None,
    ) -> ActionResult:
        """Accept (or refuse) a person's action; when accepted, the job is durably queued."""
        if refusal := self.refuse_non_approver(post_id, user, action.value, team=team,
                                               needs_approver=self._needs_approver(action)):
            return ActionResult(False, refusal)
        with session_scope(self.engine) as session:
            post = get_post(session, post_id)
            if post is None:
                return ActionResult(False, notices.unknown_post())
            if action in DECISIONS and self.can_start(post, action):
                if refusal := self.blocked(session, post, user, action.value):
                    return ActionResult(False, refusal)
                have = approvals_for(session, post)
                if self.settings.required_approvals > 1 and len(have) < self.settings.required_approvals:
                    return ActionResult(False, notices.needs_approvals(action, len(have), self.settings.required_approvals))
            if not claim_post_action(
                session, post_id=post_id, action=action.value, user=user, allowed_statuses=self.allowed_from(post, action),
                unless_changes_requested=action in DECISIONS,
            ):
                session.refresh(post)
                request_card_sync(session, post_id)  # the card may be showing stale buttons
                request = change_request_of(post) if action in DECISIONS and self.can_start(post, action) else None
                if request is not None:  # asked for meanwhile
                    return ActionResult(False, notices.changes_pending(request, VERB_ED[action.value]))
                return ActionResult(False, self.why_not(post, action))
            job_payload = {"action": action.value, "user": user, "channel": channel, **(payload or {})}
            enqueue(session, POST_ACTION, post_id=post_id, payload=job_payload, priority=3)
            add_audit(session, post_id=post_id, actor=user, action=action.value, outcome="requested")
            request_card_sync(session, post_id)
        self.wake()
        return ActionResult(True)

    def approve(self, post_id: int, user: str, *, channel: str, team: str | None = None) -> ActionResult:
        """Record one approval of the current version (several may be required)."""
        if refusal := self.refuse_non_approver(post_id, user, "approve", team=team):
            return ActionResult(False, refusal)
        with session_scope(self.engine) as session:
            post = get_post(session, post_id)
            if post is None:
                return ActionResult(False, notices.unknown_post())
            if post.status != PostStatus.DRAFT or post.pending_action is not None:
                return ActionResult(False, self.why_not(post, PendingAction.PUBLISH))
            if refusal := self.blocked(session, post, user, "approve"):
                return ActionResult(False, refusal)
            if user in approvals_for(session, post):
                return ActionResult(False, notices.already_approved())
            try:
                with session.begin_nested():
                    session.add(Approval(post_id=post_id, user_id=user, content_version=post.content_version))
                    session.flush()
            except IntegrityError:
                # A double-click raced us; the unique constraint counts each person once.
                return ActionResult(False, notices.already_approved())
            add_audit(session, post_id=post_id, actor=user, action="approve", outcome="ok", detail=f"v{post.content_version}")
            count = len(approvals_for(session, post))
            need = self.settings.required_approvals
            post.activity = Activity(ActivityKind.APPROVED, actor=user, count=count, of=need).to_dict()
            request_thread_reply(session, post_id, notices.approved(user, count, need))
            request_card_sync(session, post_id)
        self.wake()
        return ActionResult(True)

    # -- changes requested -------------------------------------------------------------------------------

    def _changes_refusal(self, post: Post) -> Say | None:
        """Why changes can't be requested on this post now (None: they can)."""
        if post.pending_action is not None:
            return self.why_not(post, PendingAction.EDIT)
        if post.status != PostStatus.DRAFT.value:
            return notices.changes_only_on_drafts(PostStatus.parse(post.status))
        request = change_request_of(post)
        return notices.changes_already_requested(request) if request is not None else None

    def check_request_changes(self, post_id: int, user: str, *, team: str | None = None) -> Decision:
        """May `user` ask for changes on this post now (before the modal opens)?"""
        if refusal := self.refuse_non_approver(post_id, user, REQUEST_CHANGES, team=team):
            return Decision(False, refusal)
        with session_scope(self.engine) as session:
            post = get_post(session, post_id)
            if post is None:
                return Decision(False, notices.unknown_post())
            session.expunge(post)
        refusal = self._changes_refusal(post)
        return Decision(refusal is None, refusal, post=post)

    def request_changes(self, post_id: int, user: str, reason: ChangeReason, note: str | None, *,
                        team: str | None = None) -> ActionResult:
        """Put a change request on a draft: Publish, Schedule and Approve wait for the next edit; the
        thread asks whoever should edit (the last editor, else whoever imported the draft)."""
        if refusal := self.refuse_non_approver(post_id, user, REQUEST_CHANGES, team=team):
            return ActionResult(False, refusal)
        with session_scope(self.engine) as session:
            post = get_post(session, post_id)
            if post is None:
                return ActionResult(False, notices.unknown_post())
            request = ChangeRequest(by=user, reason=reason, note=note)
            if not claim_change_request(session, post_id, request, utcnow()):
                session.refresh(post)
                request_card_sync(session, post_id)  # the card may be showing a stale button
                return ActionResult(False, self._changes_refusal(post) or notices.unknown_post())
            session.refresh(post)
            detail = f"{reason.value}: {note}" if note else reason.value
            add_audit(session, post_id=post_id, actor=user, action=REQUEST_CHANGES, outcome="ok",
                      detail=f"v{post.content_version} {detail}"[:1000])
            request_thread_reply(session, post_id, notices.changes_requested(request, who_should_edit(session, post)))
            request_card_sync(session, post_id)
        self.wake()
        return ActionResult(True)


def change_payload(change: Change) -> dict[str, Any]:
    """An accepted edit, as the job carries it."""
    return {"content": change.content.to_dict(), "state": change.state, "summary": change.summary}


def change_of(payload: dict[str, Any]) -> Change:
    """The edit a job carries (inverse of change_payload)."""
    data = payload["change"]
    return Change(content=PostContent.from_dict(data["content"]), summary=str(data.get("summary") or ""),
                  state=data.get("state"))
