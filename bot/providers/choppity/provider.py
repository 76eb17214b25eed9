"""Choppity as a provider: server-side drafts, signed webhooks, 60 requests per minute per team.

Drafts live at Choppity (one per connected platform, AI caption included); edits, publishing,
scheduling and cancelling are API calls; outcomes arrive as `post.*` webhooks, which are only hints:
the post is always re-read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from bot.domain import (
    TIKTOK_PRIVACY_LEVELS,
    TIKTOK_TOGGLES,
    YOUTUBE_CATEGORIES,
    Capabilities,
    CardDetails,
    Change,
    DetailLine,
    DraftHome,
    DraftSpec,
    EditForm,
    FormErrors,
    FormValues,
    Import,
    InboundEvent,
    Outcomes,
    Platform,
    PostContent,
    PostStatus,
    ProviderPost,
    RemotePost,
    TikTokSettings,
    Video,
)
from bot.providers.base import ProbeDelivery, Provider, WebhookRoute
from bot.providers.budget import Priority, RateBudget
from bot.providers.choppity import form
from bot.providers.choppity.client import ChoppityClient
from bot.providers.choppity.webhook import (
    SIGNATURE_HEADER,
    inbound,
    parse_event,
    probe_body,
    sign,
    verify_signature,
)
from bot.providers.errors import ApiNotFound

# "Cancels a post in draft, scheduled, or queued status. Once a post moves to processing we can no
# longer pull it back." (Posts API, DELETE /v1/posts/:postId)
# Choppity's docs suggest polling a render every 3–5 s; we take the gentle end of that, so a render
# costs a handful of the team's 60 requests a minute.
RENDER_POLL_SECONDS = 5.0
# A finished render's output_url is signed for one hour (Choppity docs: renders).
RENDER_URL_LIFETIME = timedelta(hours=1)
CANCELLABLE = frozenset({PostStatus.DRAFT, PostStatus.SCHEDULED, PostStatus.QUEUED})

# Card wording of the five TikTok toggles. The "disable_*" flags read inverted ("Comments: on" means
# disable_comment is False) because people think in what is allowed, not in what is disabled.
TIKTOK_TOGGLE_WORDS: dict[str, tuple[str, str, str]] = {
    # key: (label, word when the flag is True, word when it is False)
    "disable_comment": ("Comments", "off", "on"),
    "disable_duet": ("Duet", "off", "on"),
    "disable_stitch": ("Stitch", "off", "on"),
    "brand_content_toggle": ("Branded content", "yes", "no"),
    "brand_organic_toggle": ("Own brand promotion", "yes", "no"),
}


def category_name(category_id: str | None) -> str:
    """Category name by id: "22" gives People & Blogs, an unknown "99" gives "Category 99"."""
    if category_id is None:
        return "not set"
    return YOUTUBE_CATEGORIES.get(category_id, f"Category {category_id}")


class ChoppityProvider(Provider):
    """Choppity (choppity.com)."""

    slug: ClassVar[str] = "choppity"
    title: ClassVar[str] = "Choppity"
    command: ClassVar[str] = "clip"
    noun: ClassVar[str] = "clip"
    webhook_route: ClassVar[WebhookRoute | None] = WebhookRoute("/webhooks/choppity")

    def __init__(self, client: ChoppityClient, *, webhook_secrets: Sequence[str], requests_per_minute: int) -> None:
        super().__init__(Capabilities(
            drafts=DraftHome.PROVIDER, cancellable=CANCELLABLE, outcomes=Outcomes.WEBHOOK,
            requests_per_minute=requests_per_minute,
        ))
        self.client = client
        self._secrets = tuple(webhook_secrets)

    @classmethod
    def build(cls, *, base_url: str, api_key: str, webhook_secrets: Sequence[str], budget: RateBudget,
              timeout: float) -> ChoppityProvider:
        """A provider talking to `base_url` with `api_key`, within `budget`."""
        client = ChoppityClient.build(base_url=base_url, api_key=api_key, budget=budget, timeout=timeout)
        return cls(client, webhook_secrets=webhook_secrets, requests_per_minute=budget.per_minute)

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()

    # -- drafts arrive -------------------------------------------------------------------------------

    def import_drafts(self, ref: str, *, post_id: str | None = None, priority: Priority) -> Import:
        """A clip's posts (or just one post, when a webhook named it): drafts to card, the rest listed."""
        if post_id:
            try:
                posts = [self.client.get_post(post_id, priority=priority)]
            except ApiNotFound:
                return Import(ref=ref or post_id, warnings=[f"Choppity no longer knows post {post_id}."])
            ref = ref or posts[0].clip_id
            unreadable: list[str] = []
        else:
            listing = self.client.list_clip_posts(ref, priority=priority)
            posts, unreadable = listing.posts, listing.unreadable
        outcome = Import(ref=ref, unreadable=unreadable)
        for post in posts:
            if post.status is PostStatus.DRAFT:
                outcome.drafts.append(DraftSpec(post))
            else:
                outcome.others.append(post)
        return outcome

    # -- the clip's video ----------------------------------------------------------------------------

    def video(self, ref: str, *, project_id: str | None) -> Video:
        """The clip's full-quality render: started on first ask (its render id is the clip id), then
        polled no more often than every RENDER_POLL_SECONDS until Choppity has its signed MP4."""
        try:
            render = self.client.get_render(ref)
        except ApiNotFound:
            self.client.start_render(ref)
            return Video(wait_seconds=RENDER_POLL_SECONDS)
        if render.status == "done" and render.output_url:
            return Video(url=render.output_url, expires_at=datetime.now(UTC) + RENDER_URL_LIFETIME)
        if render.status == "error":
            return Video(unavailable=f"Choppity couldn't render the clip: {render.error or 'no reason given'}")
        return Video(wait_seconds=RENDER_POLL_SECONDS)

    def parse_webhook(self, body: bytes, headers: Mapping[str, str], now: float) -> list[InboundEvent]:
        """`choppity-signature-256` verified over the exact bytes, then the envelope parsed."""
        verify_signature(body, headers.get(SIGNATURE_HEADER), self._secrets, now)
        return [inbound(parse_event(body))]

    def check_access(self) -> str | None:
        """GET /v1/ping with the key: the team it belongs to."""
        return f"team id {self.client.ping()}"

    def probe_delivery(self, now: float) -> ProbeDelivery | None:
        """An event of a type Greenlight doesn't act on, signed with the current secret: the route
        records its id and answers 200, and nothing else happens."""
        if not self._secrets:
            return None
        body = probe_body(now)
        return ProbeDelivery(
            path="/webhooks/choppity", body=body,
            headers={"content-type": "application/json", SIGNATURE_HEADER: sign(body, self._secrets[0], int(now))},
        )

    # -- the edit form -------------------------------------------------------------------------------

    def edit_form(self, post: ProviderPost) -> EditForm:
        """Per platform: title, caption, category (YouTube); caption, privacy, toggles (TikTok)."""
        return form.edit_form(post.post_id, post.platform, post.content)

    def parse_edit(self, post: ProviderPost, values: FormValues) -> Change | FormErrors:
        """Checked against the destination platform's limits."""
        return form.parse_edit(post.platform, post.content, values)

    # -- actions ---------------------------------------------------------------------------------------

    def read(self, post: ProviderPost, *, priority: Priority) -> RemotePost:
        """GET /v1/posts/:id."""
        return self.client.get_post(post.external_id, priority=priority)

    def publish(self, post: ProviderPost, *, at: datetime | None, actor: str) -> RemotePost:
        """POST /v1/posts/:id/publish (with `scheduled_at` to schedule)."""
        return self.client.publish_post(post.external_id, at)

    def cancel(self, post: ProviderPost, *, actor: str) -> RemotePost:
        """DELETE /v1/posts/:id."""
        return self.client.cancel_post(post.external_id)

    def update(self, post: ProviderPost, change: Change, *, actor: str) -> RemotePost:
        """PUT only the fields that changed."""
        changes = change.content.changes_from(post.content)
        if not changes:
            return self.client.get_post(post.external_id)
        return self.client.update_post(post.external_id, changes)

    # -- presentation data -------------------------------------------------------------------------------

    def publish_problems(self, post: ProviderPost) -> list[str]:
        """Caption and title the platform would refuse (Choppity itself would answer 400)."""
        return form.content_problems(post.platform, post.content)

    def card_details(self, post: ProviderPost) -> CardDetails:
        """The platform settings: TikTok's privacy and toggles, YouTube's category."""
        return details(post.platform, post.content)


def details(platform: Platform, content: PostContent) -> CardDetails:
    """What a Choppity card shows beyond the caption: the platform's settings, in words."""
    if platform is Platform.TIKTOK:
        return CardDetails(lines=tuple(_tiktok_lines(content.tiktok)))
    if platform is Platform.YOUTUBE:
        cid = content.youtube.category_id if content.youtube else None
        name = category_name(cid)
        # "Category: Category 99" reads badly; an unknown id already names itself.
        line = DetailLine((name,)) if cid is not None and cid not in YOUTUBE_CATEGORIES else DetailLine(
            (name,), label="Category")
        return CardDetails(lines=(line,))
    return CardDetails()


def _tiktok_lines(settings: TikTokSettings | None) -> list[DetailLine]:
    if settings is None:
        return [DetailLine(("not set (TikTok's defaults apply)",), label="TikTok settings")]
    who = TIKTOK_PRIVACY_LEVELS.get(settings.privacy_level, settings.privacy_level)
    flags = settings.to_dict()
    words = []
    for key in TIKTOK_TOGGLES:
        label, when_true, when_false = TIKTOK_TOGGLE_WORDS[key]
        words.append(f"{label}: {when_true if flags[key] else when_false}")
    return [DetailLine((who,), label="Who can view"), DetailLine(tuple(words))]
