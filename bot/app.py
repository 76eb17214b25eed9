"""Wiring: build every component from Settings. Nothing connects at import time.

`create_runtime(settings)` returns a `Runtime` holding the Bolt app, the ASGI app, the job workers
and the background loops; `Runtime.start()` starts the threads, `Runtime.stop()` stops them.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from slack_bolt import App, BoltContext, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler
from slack_sdk.models.views import View
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from bot import failpoints
from bot.config import Settings
from bot.db import make_engine, migrate
from bot.health import Health
from bot.jobs import JobRunner
from bot.listeners import guard, register_listeners
from bot.models import Post
from bot.providers.budget_storage import budget_for
from bot.providers.choppity.client import ChoppityClient
from bot.security import register_secrets
from bot.server import inbound_policy
from bot.services.access import Approvers
from bot.services.delivery import SlackDelivery
from bot.services.events import EventService, Reconciler
from bot.services.identity import SlackIdentity
from bot.services.overview import Overview
from bot.services.posts import PostProvider, PostService

log = logging.getLogger(__name__)


class ReapImporter(Protocol):
    """What the slash command needs from the Reap service."""

    def import_project(self, project_id: str, *, actor: str | None = None) -> str: ...


@dataclass
class Services:
    """Everything listeners and HTTP routes call into."""

    settings: Settings
    engine: Engine
    slack: WebClient
    identity: SlackIdentity
    posts: PostService
    events: EventService
    overview: Overview
    runner: JobRunner
    reap: ReapImporter | None = None
    # Provider-specific edit modals (provider -> builder taking the Post row); default: Choppity's.
    edit_modals: dict[str, Callable[[Post], View]] = field(default_factory=dict)
    # Extra listener registrations contributed by optional providers.
    registrars: list[Callable[[App], None]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Runtime:
    """A fully wired Greenlight process."""

    settings: Settings
    services: Services
    bolt: App
    reconciler: Reconciler
    health: Health
    background: list[Any] = field(default_factory=list)
    _started: bool = False

    @property
    def asgi(self) -> Any:
        """The Starlette app serving /slack/events, webhooks and /healthz."""
        from bot.server import build_asgi

        return build_asgi(self)

    def start(self) -> None:
        """Start job workers and background loops."""
        if self._started:
            return
        self._started = True
        self.services.identity.warm()
        self.health.start()
        self.services.runner.start()
        self.reconciler.start()
        for loop in self.background:
            loop.start()

    def stop(self) -> None:
        """Stop background threads and close HTTP clients."""
        if not self._started:
            return
        self._started = False
        self.health.stop()
        self.services.runner.stop()
        self.reconciler.stop()
        for loop in self.background:
            loop.stop()
        for provider in self.services.posts.providers.values():
            close = getattr(provider, "close", None)
            if close:
                close()


def make_slack_client(
    settings: Settings, *, timeout: float = 10, token: str | None | bool = True, retry_connection_errors: bool = True
) -> WebClient:
    """A WebClient for the configured (or fake) Slack API, with short timeouts.

    Rate limits are not retried here by sleeping: card updates go through the job queue, which
    re-runs them after Slack's Retry-After instead of blocking a thread.
    """
    return WebClient(
        token=settings.slack_bot_token if token is True else token or None,
        base_url=settings.slack_api_url,
        timeout=timeout,  # type: ignore[arg-type]  # slack_sdk annotates int; urllib takes a float
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=1)] if retry_connection_errors else [],
    )


def create_runtime(settings: Settings, *, engine: Engine | None = None) -> Runtime:
    """Build a Greenlight process from settings (migrating the database if configured)."""
    register_secrets(settings.secrets())
    engine = engine or make_engine(settings.database_url)
    if settings.auto_migrate:
        migrate(engine)

    slack = make_slack_client(settings)
    providers: dict[str, PostProvider] = {}
    if settings.choppity_api_key:
        budget = budget_for(settings, engine, "choppity", settings.choppity_requests_per_minute)
        providers["choppity"] = ChoppityClient.build(
            base_url=settings.choppity_api_url,
            api_key=settings.choppity_api_key,
            budget=budget,
            timeout=settings.http_timeout_seconds,
        )

    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    failpoints.configure(settings.failpoints)
    runner = JobRunner(
        engine,
        {},
        threads=settings.worker_threads,
        poll_seconds=settings.worker_poll_seconds,
        lease_seconds=settings.job_lease_seconds,
    )
    # Group lookups run before a click is acknowledged: keep them well inside Slack's 3 s.
    approvers = Approvers(settings.approvers, make_slack_client(settings, timeout=2))
    posts = PostService(engine, settings, providers, approvers, wake=runner.wake)
    events = EventService(engine, posts, wake=runner.wake)
    identity = SlackIdentity(slack, settings.slack_bot_token)
    delivery = SlackDelivery(
        engine,
        # No automatic retry of a reset connection: a chat.postMessage may have been stored, and
        # only the delivery protocol (look in the history first) may decide to post again.
        make_slack_client(settings, timeout=settings.slack_timeout_seconds, retry_connection_errors=False),
        settings,
        identity,
        cancellable=lambda name: posts.providers[name].cancellable if name in posts.providers else frozenset(),
        settle_seconds=1.5 * settings.slack_timeout_seconds,
    )
    overview = Overview(engine, settings, identity)
    runner.handlers.update(delivery.handlers())
    runner.handlers.update(posts.handlers())
    runner.handlers.update(events.handlers())
    runner.on_give_up = posts.give_up
    services = Services(
        settings=settings, engine=engine, slack=slack, identity=identity, posts=posts, events=events,
        overview=overview, runner=runner,
    )
    services.extra["delivery"] = delivery

    background: list[Any] = []
    from bot.services.reminders import Reminders

    background.append(Reminders(engine, settings, approvers, wake=runner.wake, holder=holder))
    if settings.reap_api_key:
        from bot.services.reap import install_reap

        # Registers the Reap provider, its job handlers, edit modal, listeners and webhook route.
        background.extend(install_reap(services, holder=holder))

    health = Health(engine, identity)
    bolt = create_bolt_app(settings, services, health)
    reconciler = Reconciler(engine, settings, wake=runner.wake, holder=holder)
    return Runtime(settings=settings, services=services, bolt=bolt, reconciler=reconciler, health=health,
                   background=background)


def create_bolt_app(settings: Settings, services: Services, health: Health) -> App:
    """The Bolt app with every listener registered."""
    def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        # A plain function: Bolt injects arguments by name and would trip over a bound method's self.
        return services.identity.authorize(enterprise_id, team_id)

    app = App(
        signing_secret=settings.slack_signing_secret,
        # No token here: Bolt gives each request's client the token `authorize` returns.
        client=make_slack_client(settings, token=None),
        # Never wait for auth.test before an ack: the identity is fetched once, in the background.
        authorize=authorize,
        # The server checks every HTTP request's signature itself and hands Bolt a parsed dict,
        # which Bolt could not verify anyway; Socket Mode requests are authenticated by the socket.
        request_verification_enabled=False,
        process_before_response=False,
        # Bolt's default pool has 5 threads; post-ack work must never keep the 6th click from
        # being acknowledged.
        listener_executor=ThreadPoolExecutor(max_workers=32, thread_name_prefix="greenlight-listener"),
        raise_error_for_unhandled_request=False,
    )
    guard.install(app, policy=inbound_policy(settings.slack_api_url), health=health)
    register_listeners(app, services)

    @app.error
    def on_error(error: Exception, body: dict[str, Any], context: BoltContext) -> BoltResponse | None:
        kind = body.get("type") or body.get("command") or "request"
        if isinstance(error, SQLAlchemyError):
            # The database failed under a listener (between two health probes): same answer as the
            # guard gives, so the person is told nothing was saved.
            log.error("database error while handling a Slack %s: %s", kind, type(error).__name__)
            return guard.cannot_save(context)
        log.error("unhandled error while handling a Slack %s: %s", kind, error, exc_info=error)
        return None

    return app

