"""The composition root: every component built from Settings. Nothing connects at import time.

`create_runtime(settings)` returns a `Runtime` holding the services, the Bolt app and the ASGI app;
`Runtime.start()` starts the job workers and the background loops, `Runtime.stop()` stops them.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_bolt import App, BoltContext, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler
from slack_sdk.http_retry.handler import RetryHandler
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from bot import failpoints, metrics
from bot.config import Settings
from bot.db import make_engine, migrate
from bot.jobs import JobRunner
from bot.listeners import guard, register_listeners
from bot.logs import ContextThreadPoolExecutor
from bot.models import utcnow
from bot.providers.registry import Providers, build_providers
from bot.security import register_secrets
from bot.server import build_asgi, inbound_policy
from bot.services.access import Approvers
from bot.services.actions import ActionRunner
from bot.services.budgets import budget_for
from bot.services.clips import ClipService
from bot.services.container import SERVICES_KEY, Services
from bot.services.delivery import SlackDelivery
from bot.services.health import Health
from bot.services.identity import SlackIdentity
from bot.services.intake import IntakeService
from bot.services.metrics import SlackCallObserver
from bot.services.outcomes import OutcomeService, Reconciler
from bot.services.overview import Overview
from bot.services.previews import Previews
from bot.services.reminders import Reminders
from bot.services.replies import SlackReplies
from bot.services.review import Review

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


@dataclass
class Runtime:
    """A fully wired Greenlight process."""

    settings: Settings
    services: Services
    bolt: App
    _started: bool = False

    @property
    def asgi(self) -> Any:
        """The Starlette app serving /slack/events, the providers' webhooks and the health routes."""
        return build_asgi(self.settings, self.services, self.bolt)

    def start(self) -> None:
        """Start job workers and background loops."""
        if self._started:
            return
        self._started = True
        services = self.services
        services.identity.warm()
        services.health.start()
        services.runner.start()
        services.reconciler.start()
        services.reminders.start()

    def stop(self) -> None:
        """Stop background threads and close HTTP clients."""
        if not self._started:
            return
        self._started = False
        services = self.services
        services.health.stop()
        services.runner.stop()
        services.reconciler.stop()
        services.reminders.stop()
        services.providers.close()
        services.previews.close()
        metrics.process_exited(os.getpid(), self.settings.prometheus_multiproc_dir)


def make_slack_client(
    settings: Settings, *, timeout: float = 10, token: str | None | bool = True, retry_connection_errors: bool = True
) -> WebClient:
    """A WebClient for the configured (or fake) Slack API, with short timeouts.

    Rate limits are not retried here by sleeping: card updates go through the job queue, which
    re-runs them after Slack's Retry-After instead of blocking a thread. Every call is counted for
    the metrics by a retry handler that never retries (Bolt copies it into its per-request clients).
    """
    handlers: list[RetryHandler] = [SlackCallObserver()] if settings.metrics_enabled else []
    if retry_connection_errors:
        handlers.append(ConnectionErrorRetryHandler(max_retry_count=1))
    return WebClient(
        token=settings.slack_bot_token if token is True else token or None,
        base_url=settings.slack_api_url,
        timeout=timeout,  # type: ignore[arg-type]  # slack_sdk annotates int; urllib takes a float
        retry_handlers=handlers,
    )


def create_runtime(settings: Settings, *, engine: Engine | None = None, clock: Clock = utcnow) -> Runtime:
    """Build a Greenlight process from settings (migrating the database if configured).

    `clock` is what time it is for due dates, schedules and ages (tests move it forward).
    """
    register_secrets(settings.secrets())
    metrics.configure(enabled=settings.metrics_enabled, multiproc_dir=settings.prometheus_multiproc_dir)
    engine = engine or make_engine(settings.database_url)
    if settings.auto_migrate:
        migrate(engine)
    failpoints.configure(settings.failpoints)
    services = build_services(settings, engine, clock=clock)
    return Runtime(settings=settings, services=services, bolt=create_bolt_app(settings, services))


def build_services(settings: Settings, engine: Engine, *, clock: Clock = utcnow) -> Services:
    """Every service, wired; nothing started."""
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    slack = make_slack_client(settings)
    providers: Providers = build_providers(
        settings, lambda key, per_minute: budget_for(settings, engine, key, per_minute)
    )
    runner = JobRunner(engine, {}, threads=settings.worker_threads, poll_seconds=settings.worker_poll_seconds,
                       lease_seconds=settings.job_lease_seconds, clock=clock)
    wake = runner.wake
    identity = SlackIdentity(slack, settings.slack_bot_token)
    # Group lookups run before a click is acknowledged: keep them well inside Slack's 3 s. Our own
    # team ids (auth.test) tell a Slack Connect partner from a colleague.
    approvers = Approvers(settings.approvers, make_slack_client(settings, timeout=2), home=identity.home_teams)
    intake = IntakeService(engine, settings, providers, wake=wake)
    actions = ActionRunner(engine, settings, providers, wake=wake, clock=clock)
    outcomes = OutcomeService(engine, providers, intake, wake=wake, clock=clock)
    review = Review(engine, settings, providers, approvers, wake=wake)
    clips = ClipService(engine, providers, review, wake=wake, clock=clock)
    settle = 1.5 * settings.slack_timeout_seconds
    delivery = SlackDelivery(
        engine,
        # No automatic retry of a reset connection: a chat.postMessage may have been stored, and
        # only the delivery protocol (look in the history first) may decide to post again.
        make_slack_client(settings, timeout=settings.slack_timeout_seconds, retry_connection_errors=False),
        settings, identity, providers, clips, settle_seconds=settle, clock=clock,
    )
    previews = Previews(engine, delivery.slack, settings, identity, providers, delivery.reader, clock=clock)
    replies = SlackReplies(engine, delivery.slack, identity, delivery.pacer, delivery.reader, settle_seconds=settle)
    for handlers in (delivery.handlers(), replies.handlers(), actions.handlers(), intake.handlers(),
                     outcomes.handlers(), previews.handlers()):
        runner.handlers.update(handlers)
    runner.on_give_up = actions.give_up
    return Services(
        settings=settings, engine=engine, slack=slack, identity=identity, providers=providers,
        review=review, clips=clips, actions=actions, intake=intake,
        outcomes=outcomes, delivery=delivery, previews=previews, overview=Overview(engine, settings, identity, clock=clock), runner=runner,
        reconciler=Reconciler(engine, settings, wake=wake, holder=holder, clock=clock),
        reminders=Reminders(engine, settings, approvers, wake=wake, holder=holder, clock=clock),
        health=Health(engine, identity),
        clock=clock,
    )


def create_bolt_app(settings: Settings, services: Services) -> App:
    """The Bolt app with every listener registered; listeners get the services from the context."""

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
        listener_executor=ContextThreadPoolExecutor(max_workers=32, thread_name_prefix="greenlight-listener"),
        raise_error_for_unhandled_request=False,
    )

    @app.middleware
    def provide_services(context: BoltContext, next: Callable[[], BoltResponse]) -> BoltResponse:
        # Dependencies reach listeners through the request context, as Bolt intends.
        context[SERVICES_KEY] = services
        return next()

    guard.install(app, policy=inbound_policy(settings.slack_api_url), health=services.health)
    register_listeners(app)

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
