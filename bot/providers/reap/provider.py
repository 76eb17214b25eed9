"""Reap as a provider: drafts held by Greenlight, a hand-off at publishing time, outcomes by polling.

Reap has no server-side drafts, no cancel endpoint, no post webhooks and no way to list posts
(Reap automation API docs), so:
- a draft is one per clip of a completed project, held by Greenlight (`ReapDraft` in the post's
  provider state) and edited locally;
- a schedule is held by Greenlight too, which hands the post over at the time (capability
  `schedule_held_locally`), so Cancel keeps working until then;
- publishing is one `publish-clip` call that can't be confirmed by re-reading if its answer is lost
  (`publish_confirmable=False`): such a hand-off is reported, never re-sent;
- outcomes are polled with `get-post-details` (capability `outcomes=POLLING`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from bot.domain import (
    Capabilities,
    CardDetails,
    Change,
    ClipInfo,
    DraftHome,
    DraftSpec,
    EditForm,
    FormErrors,
    FormValues,
    Import,
    ImportState,
    InboundEvent,
    Outcomes,
    Platform,
    PostContent,
    PostStatus,
    ProviderPost,
    RemotePost,
    Video,
    is_external_id,
)
from bot.providers.base import ProbeDelivery, Provider, WebhookRoute
from bot.providers.budget import Priority, RateBudget
from bot.providers.errors import ApiBadRequest
from bot.providers.reap import form
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
from bot.providers.reap.draft import (
    NO_REASON,
    Account,
    ReapDraft,
    Result,
    account_results,
    card_details,
    default_settings,
    problems,
)
from bot.providers.reap.webhook import inbound, parse_project_hint, token_matches

INTEGRATIONS_TTL = 600.0
PROJECT_RECHECK = timedelta(minutes=5)
# Every Reap post still in progress is "queued" for Greenlight: Reap has it and Slack can no longer
# change it, but it can still be stopped in Reap's dashboard (which the refusal says), unlike a post
# a platform is already uploading.
REAP_STATUS_MAP: dict[str, PostStatus] = {
    "processing": PostStatus.QUEUED,
    "draft": PostStatus.QUEUED,
    "scheduled": PostStatus.QUEUED,
}


class ReapProvider(Provider):
    """Reap (reap.video)."""

    slug: ClassVar[str] = "reap"
    title: ClassVar[str] = "Reap"
    command: ClassVar[str] = "reap"
    noun: ClassVar[str] = "Reap project"
    webhook_route: ClassVar[WebhookRoute | None] = WebhookRoute("/webhooks/reap/{token}", empty_reply=True)

    def __init__(
        self, client: ReapClient, *, webhook_token: str | None, integrations: Sequence[str], requests_per_minute: int
    ) -> None:
        super().__init__(Capabilities(
            drafts=DraftHome.GREENLIGHT,
            # Greenlight holds drafts and schedules until the hand-off, so it can cancel them; once
            # Reap has a post there is no cancel endpoint.
            cancellable=frozenset({PostStatus.DRAFT, PostStatus.SCHEDULED}),
            outcomes=Outcomes.POLLING,
            schedule_held_locally=True,
            publish_confirmable=False,
            requests_per_minute=requests_per_minute,
        ))
        self.client = client
        self._token = webhook_token
        self._wanted = tuple(integrations)
        self._integrations: tuple[float, list[ReapIntegration]] | None = None
        self._lock = threading.Lock()

    @classmethod
    def build(cls, *, base_url: str, api_key: str, webhook_token: str | None, integrations: Sequence[str],
              budget: RateBudget, timeout: float) -> ReapProvider:
        """A provider talking to `base_url` with `api_key`, within `budget`."""
        client = ReapClient.build(base_url=base_url, api_key=api_key, budget=budget, timeout=timeout)
        return cls(client, webhook_token=webhook_token, integrations=integrations,
                   requests_per_minute=budget.per_minute)

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()

    # -- drafts arrive -------------------------------------------------------------------------------

    def import_drafts(self, ref: str, *, post_id: str | None = None, priority: Priority) -> Import:
        """One draft per clip of a completed project, aimed at the default accounts."""
        if not is_external_id(ref):
            raise ApiBadRequest(f"{ref[:40]!r} is not a valid Reap project id.", provider=self.slug)
        status = self.client.get_project_status(ref, priority=priority)
        outcome = Import(ref=ref, state_word=status)
        if status in PROJECT_FAILED:
            outcome.state = ImportState.FAILED
            return outcome
        if status != PROJECT_DONE:
            outcome.state, outcome.recheck_after = ImportState.RUNNING, PROJECT_RECHECK
            return outcome
        choices = [i for i in self._get_integrations(priority) if i.is_active]
        targets, skipped = self._default_targets(choices)
        outcome.warnings = [f"REAP_INTEGRATIONS lists {s}, which isn't an active Reap integration; skipped." for s in skipped]
        if not targets:
            outcome.state = ImportState.NO_TARGETS
            return outcome
        outcome.targets = [t.label for t in targets]
        for clip in self.client.get_project_clips(ref, priority=priority):
            outcome.drafts.append(DraftSpec(self._draft(ref, clip, targets, choices), project_id=ref))
            outcome.clips[clip.id] = ClipInfo(title=clip.title, duration_seconds=clip.duration,
                                              score=clip.virality_score, scale=10.0)
        return outcome

    def _draft(self, project_id: str, clip: ReapClip, targets: list[ReapIntegration],
               choices: list[ReapIntegration]) -> RemotePost:
        platforms = list(dict.fromkeys(c.platform.value for c in choices))
        draft = ReapDraft(
            integrations=[Account(id=c.id, platform=c.platform, label=c.label) for c in choices],
            targets=[t.id for t in targets],
            settings={p: default_settings(p) for p in platforms if default_settings(p)},
        )
        return RemotePost(
            id=f"{project_id}:{clip.id}", clip_id=clip.id, platform=targets[0].platform, status=PostStatus.DRAFT,
            content=PostContent(caption=clip.caption, title=clip.title), state=draft.dump(),
        )

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
        if not self._wanted:
            return list(active), []
        by_id = {i.id: i for i in active}
        return [by_id[w] for w in self._wanted if w in by_id], [w for w in self._wanted if w not in by_id]

    # -- the clip's video ----------------------------------------------------------------------------

    def video(self, ref: str, *, project_id: str | None) -> Video:
        """The clip's `clipUrl`, read fresh from get-clip-details (its lifetime is undocumented)."""
        if not project_id or not is_external_id(project_id) or not is_external_id(ref):
            return Video(unavailable="Greenlight doesn't know which Reap project this clip is in")
        clip = self.client.get_clip_details(project_id, ref)
        if clip.clip_url is None:
            return Video(unavailable="Reap gave no video file for this clip")
        return Video(url=clip.clip_url)

    def webhook_authorized(self, path_params: Mapping[str, str]) -> bool:
        """Reap doesn't sign webhooks: the long random token in the path is what guards the route."""
        return token_matches(path_params.get("token", ""), self._token)

    def parse_webhook(self, body: bytes, headers: Mapping[str, str], now: float) -> list[InboundEvent]:
        """Only a hint naming a project; Reap's creation-time dummy payload yields nothing (and a 200)."""
        hint = parse_project_hint(body)
        return [inbound(hint)] if hint is not None else []

    def check_access(self) -> str | None:
        """get-integrations with the key: how many integrations it can publish to."""
        integrations = self.client.get_integrations()
        active = sum(1 for i in integrations if i.is_active)
        return f"{active} active integration{'s' if active != 1 else ''}"

    def probe_delivery(self, now: float) -> ProbeDelivery | None:
        """A body naming no project (like Reap's own test delivery): the route answers 200 and nothing
        happens. The token in the path is what authenticates it."""
        if not self._token:
            return None
        return ProbeDelivery(path=f"/webhooks/reap/{self._token}", body=b'{"greenlight":"doctor"}',
                             headers={"content-type": "application/json"})

    # -- the edit form -------------------------------------------------------------------------------

    def edit_form(self, post: ProviderPost) -> EditForm:
        """Shared fields, targets and per-platform settings."""
        return form.edit_form(post.post_id, post.content, ReapDraft.load(post.state))

    def parse_edit(self, post: ProviderPost, values: FormValues) -> Change | FormErrors:
        """Checked against the strictest of the targets chosen in the submission."""
        return form.parse_edit(post.content, ReapDraft.load(post.state), values)

    # -- actions ---------------------------------------------------------------------------------------

    def read(self, post: ProviderPost, *, priority: Priority) -> RemotePost:
        """The held draft as it is; after the hand-off, the post as Reap reports it."""
        draft = ReapDraft.load(post.state)
        if draft.reap_post_id is None:
            return self._local(post, draft)
        return self._outcome(post, draft, self.client.get_post_details(draft.reap_post_id, priority=priority))

    def publish(self, post: ProviderPost, *, at: datetime | None, actor: str) -> RemotePost:
        """Hand the clip to Reap now (`publish-clip`): one call, never repeated."""
        draft = ReapDraft.load(post.state)
        found = problems(post.content, draft)
        if found:
            raise ApiBadRequest("Edit the draft first: " + " ".join(found), provider=self.slug)
        project_id = post.project_id or post.external_id.split(":", 1)[0]
        reap_post = self.client.publish_clip(
            project_id=project_id, clip_id=post.clip_id, integrations=list(draft.targets),
            title=post.content.title or None, description=post.content.caption, tags=list(draft.tags),
            platform_settings=draft.publish_settings(),
        )
        handed = draft.model_copy(update={"reap_post_id": reap_post.id, "reap_status": reap_post.status,
                                          "handed_off_at": datetime.now(UTC)})
        return self._outcome(post, handed, reap_post)

    def update(self, post: ProviderPost, change: Change, *, actor: str) -> RemotePost:
        """Applied to the draft Greenlight holds; nothing reaches Reap until the hand-off."""
        draft = ReapDraft.load(change.state if change.state is not None else post.state)
        if draft.handed_off:
            raise ApiBadRequest("Reap already has this post; it can't be edited any more.", provider=self.slug)
        targets = draft.target_platforms()
        return RemotePost(
            id=post.external_id, clip_id=post.clip_id, platform=targets[0] if targets else post.platform,
            status=PostStatus.DRAFT, content=change.content, state=draft.dump(),
        )

    def publish_problems(self, post: ProviderPost) -> list[str]:
        """No target account, or fields too long for one of the targets."""
        return problems(post.content, ReapDraft.load(post.state))

    # -- presentation data -------------------------------------------------------------------------------

    def card_details(self, post: ProviderPost) -> CardDetails:
        """Targets, tags, per-platform settings, per-account results and notes, from the typed draft."""
        open_draft = post.status in (PostStatus.DRAFT, PostStatus.SCHEDULED)
        return card_details(post.content, ReapDraft.load(post.state), open_draft=open_draft)

    # -- reading Reap's answers --------------------------------------------------------------------------

    def _local(self, post: ProviderPost, draft: ReapDraft) -> RemotePost:
        return RemotePost(
            id=post.external_id, clip_id=post.clip_id, platform=post.platform, status=post.status,
            content=post.content, scheduled_at=post.scheduled_at, state=draft.dump(),
        )

    def _outcome(self, post: ProviderPost, draft: ReapDraft, reap_post: ReapPost) -> RemotePost:
        """A Reap post as our neutral post: status, per-platform results, the URL for the card."""
        status = reap_post.status
        draft = draft.model_copy(update={"reap_status": status})
        base = RemotePost(id=post.external_id, clip_id=post.clip_id, platform=post.platform, status=PostStatus.QUEUED,
                          content=post.content, scheduled_at=post.scheduled_at)
        if status not in (POST_COMPLETED, POST_FAILED, POST_PARTIAL, POST_CANCELLED):
            mapped = REAP_STATUS_MAP.get(status, PostStatus.UNKNOWN)
            return _with(base, status=mapped, state=draft.dump(),
                         raw_status=status if mapped is PostStatus.UNKNOWN else None)
        results = _results(draft, reap_post)
        draft = draft.model_copy(update={"results": results})
        succeeded = [n for n, r in results.items() if r.ok is True]
        failed = [n for n, r in results.items() if r.ok is not True]
        if status == POST_CANCELLED:
            return _with(base, status=PostStatus.CANCELLED, state=draft.dump(), results=account_results(draft))
        if succeeded:
            url = (results.get(post.platform.value) or Result()).url or next(
                (r.url for r in results.values() if r.url), None)
            return _with(base, status=PostStatus.PUBLISHED, published_at=reap_post.publish_date or datetime.now(UTC),
                         published_url=url, state=draft.dump(), results=account_results(draft))
        names = ", ".join(_label(n) for n in failed) or "any account"
        return _with(base, status=PostStatus.FAILED, error=f"Reap couldn't publish to {names} ({NO_REASON}).",
                     state=draft.dump(), results=account_results(draft))


def _results(draft: ReapDraft, reap_post: ReapPost) -> dict[str, Result]:
    platforms = [p.value for p in draft.target_platforms()] or list(reap_post.platforms)
    out: dict[str, Result] = {}
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
        out[name] = Result(ok=ok, url=reap_post.urls.get(name))
    return out


def _with(base: RemotePost, **changes: object) -> RemotePost:
    return replace(base, **changes)  # type: ignore[arg-type]


def _label(platform: str) -> str:
    try:
        return Platform(platform).label
    except ValueError:
        return platform

