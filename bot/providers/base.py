"""The one shape every provider has. The core (services, job queue, reconciler, Slack side) only ever
talks to this, and decides by `capabilities`, never by a provider's name.

A provider says:
- who it is and how people bring its drafts in: `slug`, `title`, the `/greenlight <command> <ref>`
  it answers, `import_drafts`, and its inbound webhook (`webhook_route`, `webhook_authorized`,
  `parse_webhook`: verified and turned into provider-neutral events);
- what its drafts' edit form holds and how a submission is validated: `edit_form`, `parse_edit`;
- how to act on a post, each action with the person who asked: `read`, `publish`, `cancel`,
  `update`, and what would stop a publish (`publish_problems`);
- what its cards show beyond the caption: `card_details`; where a clip's video is: `video`;
- what it can do: `capabilities` (where drafts live, what can still be cancelled, whether a
  schedule is held by Greenlight, how outcomes are learned, its rate budget).

docs/providers.md walks through adding one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from bot.domain import (
    Capabilities,
    CardDetails,
    Change,
    EditForm,
    FormErrors,
    FormValues,
    Import,
    InboundEvent,
    ProviderPost,
    RemotePost,
    Video,
)
from bot.providers.budget import Priority
from bot.providers.errors import ApiBadRequest


class WebhookRejected(Exception):
    """A delivery we refuse; `status` is the HTTP code to answer, `reason` is safe to log."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class WebhookRoute:
    """Where a provider's webhook is served, and how it must be answered."""

    path: str
    # Some senders count anything but "200 with an empty body" as a failed delivery.
    empty_reply: bool = False


@dataclass(frozen=True)
class ProbeDelivery:
    """A webhook delivery `greenlight doctor` sends to the public URL: authenticated exactly as the
    provider would authenticate it, answered 200 by the route, and changing nothing."""

    # The route's path with its parameters filled in: it may hold a secret token, so never print it.
    path: str
    body: bytes
    headers: dict[str, str]


class Provider(ABC):
    """Base class of every provider (one subclass per vendor, in its own package)."""

    slug: ClassVar[str]
    title: ClassVar[str]
    # `/greenlight <command> <ref>` brings a <noun>'s drafts in, e.g. "clip" / "the clip".
    command: ClassVar[str]
    noun: ClassVar[str]
    webhook_route: ClassVar[WebhookRoute | None] = None

    def __init__(self, capabilities: Capabilities) -> None:
        self.capabilities = capabilities

    def close(self) -> None:  # noqa: B027 - most providers hold nothing to close
        """Release connections (called once at shutdown)."""

    # -- drafts arrive -----------------------------------------------------------------------------

    @abstractmethod
    def import_drafts(self, ref: str, *, post_id: str | None = None, priority: Priority) -> Import:
        """What `ref` (a clip, a project) holds: its drafts to card, its other posts, or why nothing."""

    def webhook_authorized(self, path_params: Mapping[str, str]) -> bool:
        """Whether a delivery may be read at all (checked before a byte of the body is)."""
        return True

    def parse_webhook(self, body: bytes, headers: Mapping[str, str], now: float) -> list[InboundEvent]:
        """Verify one delivery and reduce it to events; raise WebhookRejected to refuse it."""
        raise WebhookRejected(404, f"{self.title} has no webhook")

    # -- `greenlight doctor` -------------------------------------------------------------------------

    def check_access(self) -> str | None:
        """One cheap authenticated read proving the API key works: a short, secret-free description of
        the account (raises an ApiError), or None when the provider offers no such read."""
        return None

    def probe_delivery(self, now: float) -> ProbeDelivery | None:
        """A delivery the webhook route accepts and does nothing with, or None when none can be made
        (no webhook, or no secret or token configured to authenticate it)."""
        return None

    # -- the clip's video ----------------------------------------------------------------------------

    def video(self, ref: str, *, project_id: str | None) -> Video:
        """Where clip `ref`'s video file stands: a download URL, a wait (e.g. a render under way; the
        first call may start one), or why there will be none. Called from a background job."""
        return Video(unavailable=f"{self.title} offers no video file for its clips")

    # -- the edit form -----------------------------------------------------------------------------

    @abstractmethod
    def edit_form(self, post: ProviderPost) -> EditForm:
        """The fields of this draft's edit form, prefilled."""

    @abstractmethod
    def parse_edit(self, post: ProviderPost, values: FormValues) -> Change | FormErrors:
        """A submitted form: the change to make, or errors keyed by field id."""

    # -- actions -------------------------------------------------------------------------------------

    @abstractmethod
    def read(self, post: ProviderPost, *, priority: Priority) -> RemotePost:
        """The post as the provider has it now."""

    @abstractmethod
    def publish(self, post: ProviderPost, *, at: datetime | None, actor: str) -> RemotePost:
        """Publish now, or schedule for `at` (never called with `at` when the schedule is held locally)."""

    def cancel(self, post: ProviderPost, *, actor: str) -> RemotePost:
        """Cancel at the provider (only called in a status the capabilities say is cancellable there)."""
        raise ApiBadRequest(f"{self.title} offers no way to cancel a post.", provider=self.slug)

    @abstractmethod
    def update(self, post: ProviderPost, change: Change, *, actor: str) -> RemotePost:
        """Apply an accepted edit (at the provider, or to the draft Greenlight holds for it)."""

    def publish_problems(self, post: ProviderPost) -> list[str]:
        """What would stop this draft from going out as it is (checked before publish and schedule)."""
        return []

    # -- presentation data ---------------------------------------------------------------------------

    def card_details(self, post: ProviderPost) -> CardDetails:
        """What the card shows beyond title and caption: accounts, settings, results, notes."""
        return CardDetails()
