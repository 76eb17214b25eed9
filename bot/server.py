"""The one HTTP server: Slack requests, provider webhooks, and health for load balancers.

Every route reads its body through `read_body`, which refuses anything over the limit by
Content-Length or while streaming, before a signature or a token is looked at: a 300 MB body costs
a few kilobytes, not 300 MB. Slack requests are then verified here (strict parser: a malformed
timestamp is a 401, never a 500), parsed into typed payloads (`bot.slack.inbound`), and dispatched
to Bolt in a worker thread so the event loop keeps serving while a listener runs. This is the only
signature check: Bolt gets the parsed dict, with its own verification turned off.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt import App
from slack_bolt.request import BoltRequest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot import metrics
from bot.config import DEFAULT_SLACK_API_URL, Settings
from bot.logs import RequestIdMiddleware
from bot.providers.base import Provider, WebhookRejected
from bot.security import verify_slack_request
from bot.services.container import Services
from bot.services.metrics import DatabaseCollector
from bot.slack.inbound import INBOUND_CONTEXT_KEY, InboundPolicy, InboundRejected, parse_slack_body

log = logging.getLogger(__name__)

MAX_BODY = 1_000_000


class BodyRejected(Exception):
    """The body can't be read: too large (413) or a malformed Content-Length (400)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason

    def response(self) -> Response:
        """The answer; the connection is closed so the rest of a huge body is never read."""
        return JSONResponse({"error": self.reason}, status_code=self.status, headers={"Connection": "close"})


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The request body, read at most `limit` bytes deep (by Content-Length first, then while streaming)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isascii() or not declared.isdigit() or len(declared) > 12:
            raise BodyRejected(400, "invalid Content-Length")
        if int(declared) > limit:
            raise BodyRejected(413, "request too large")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyRejected(413, "request too large")
            chunks.append(chunk)
    except ClientDisconnect:
        raise BodyRejected(400, "client went away") from None
    return b"".join(chunks)


def build_asgi(settings: Settings, services: Services, bolt: App) -> Starlette:
    """The ASGI app: Slack's route, one webhook route per provider that has one, and health."""
    policy = inbound_policy(settings.slack_api_url)

    async def slack_events(request: Request) -> Response:
        arrived = time.perf_counter()
        try:
            body = await read_body(request)
        except BodyRejected as rejected:
            return rejected.response()
        ok = verify_slack_request(
            body,
            request.headers.get("x-slack-request-timestamp"),
            request.headers.get("x-slack-signature"),
            settings.slack_signing_secret,
            time.time(),
        )
        if not ok:
            log.info("rejected a Slack request with an invalid or expired signature")
            return JSONResponse({"error": "invalid request"}, status_code=401)
        try:
            inbound = parse_slack_body(body, request.headers.get("content-type"), policy=policy)
        except InboundRejected as rejected:
            log.info("rejected a signed Slack request: %s", rejected.reason)
            return JSONResponse({"error": rejected.reason}, status_code=rejected.status)
        bolt_request = BoltRequest(
            # A dict body: Bolt parses nothing itself (its parser misreads commands whose text
            # contains "payload"). BoltRequest only takes a dict outside "http" mode; the mode
            # does nothing else here, since the signature was checked above.
            body=inbound.body,
            mode="socket_mode",
            query=request.url.query,
            headers={k: v for k, v in request.headers.items()},
            context={INBOUND_CONTEXT_KEY: inbound.payload},
        )
        bolt_response = await run_in_threadpool(bolt.dispatch, bolt_request)
        metrics.observe_ack(inbound.kind, time.perf_counter() - arrived)
        return Response(
            status_code=bolt_response.status,
            content=bolt_response.body,
            headers={k: v for k, v in bolt_response.first_headers_without_set_cookie().items() if k.lower() != "content-length"},
        )

    async def readyz(_request: Request) -> Response:
        report = await run_in_threadpool(services.health.report)
        body = {
            "status": "ok" if report.ready else "unavailable",
            **report.checks,
            "problems": list(report.problems),
            "slack_mode": "socket" if settings.socket_mode else "http",
            "providers": sorted(services.providers),
        }
        return JSONResponse(body, status_code=200 if report.ready else 503)

    async def livez(_request: Request) -> Response:
        # Liveness: the process and its event loop answer. Nothing external is checked, so a
        # database outage makes the instance unready, not restarted.
        return JSONResponse({"status": "ok"})

    routes = [
        Route("/slack/events", slack_events, methods=["POST"]),
        Route("/livez", livez, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        # The readiness route under the name earlier releases documented.
        Route("/healthz", readyz, methods=["GET"]),
    ]
    for provider in services.providers.values():
        if provider.webhook_route is not None:
            routes.append(Route(provider.webhook_route.path, webhook_endpoint(provider, services), methods=["POST"]))
    if settings.metrics_enabled:
        routes.append(Route("/metrics", metrics_endpoint(settings, services), methods=["GET"]))
    # Each request logs with a request id (the caller's X-Request-Id or a new one), echoed back.
    return Starlette(routes=routes, middleware=[Middleware(RequestIdMiddleware)])


def webhook_endpoint(provider: Provider, services: Services) -> Callable[[Request], Awaitable[Response]]:
    """The route of one provider's webhook: authorize, read (bounded), verify, record, answer."""
    route = provider.webhook_route
    assert route is not None

    def answer(status: int, payload: dict[str, Any]) -> Response:
        if route.empty_reply:
            # Some senders count anything but "200 with an empty body" as a failed delivery.
            return Response(status_code=status, content=b"")
        return JSONResponse(payload, status_code=status)

    async def handle(request: Request) -> tuple[Response, str | None, str]:
        """The answer, the delivery's event type (once known) and its outcome, for the metrics."""
        # A token in the path is checked before a byte of the body is read.
        if not provider.webhook_authorized(request.path_params):
            return Response(status_code=404), None, "rejected"
        try:
            body = await read_body(request)
        except BodyRejected as rejected:
            return rejected.response(), None, "rejected"
        if not services.health.database_ok():
            # The sender retries a 503; waiting on a broken database would only make it time out.
            return JSONResponse({"error": "temporarily unavailable"}, status_code=503,
                                headers={"Retry-After": "30"}), None, "unavailable"
        try:
            events = provider.parse_webhook(body, request.headers, time.time())
        except WebhookRejected as rejected:
            log.info("rejected a %s webhook: %s", provider.title, rejected.reason)
            return answer(rejected.status, {"error": rejected.reason}), None, "rejected"
        event_type = events[0].type if events else None
        try:
            new = await run_in_threadpool(services.outcomes.ingest, provider.slug, events)
        except Exception:  # noqa: BLE001 - a 503 makes the sender retry later; nothing is lost
            log.exception("could not store a %s webhook", provider.title)
            return answer(503, {"error": "temporarily unavailable"}), event_type, "unavailable"
        outcome = "ignored" if not events else "duplicate" if new == 0 else "accepted"
        return answer(200, {"ok": True, "duplicate": bool(events) and new == 0}), event_type, outcome

    async def endpoint(request: Request) -> Response:
        response, event_type, outcome = await handle(request)
        metrics.webhook_delivery(provider.slug, event_type, outcome, response.status_code)
        return response

    return endpoint


def metrics_endpoint(settings: Settings, services: Services) -> Callable[[Request], Awaitable[Response]]:
    """GET /metrics: Prometheus text, the database gauges read now; a bearer token when configured."""
    collector = DatabaseCollector(services.engine, services.clock)
    token = settings.metrics_token

    async def endpoint(request: Request) -> Response:
        if token is not None and not metrics.token_matches(request.headers.get("authorization"), token):
            return JSONResponse({"error": "unauthorized"}, status_code=401,
                                headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        body = await run_in_threadpool(metrics.exposition, [collector])
        return Response(content=body, media_type=metrics.CONTENT_TYPE)

    return endpoint


def inbound_policy(slack_api_url: str) -> InboundPolicy:
    """Which response_url origins Bolt may post to: Slack's, plus a configured (fake) Slack API host."""
    if slack_api_url == DEFAULT_SLACK_API_URL:
        return InboundPolicy()
    return InboundPolicy.with_origins(slack_api_url)
