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
from typing import TYPE_CHECKING

from slack_bolt.request import BoltRequest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.logs import RequestIdMiddleware
from bot.providers.choppity.webhook import SIGNATURE_HEADER, WebhookRejected, parse_event, verify_signature
from bot.providers.reap.webhook import token_matches
from bot.security import verify_slack_request
from bot.slack.inbound import INBOUND_CONTEXT_KEY, InboundPolicy, InboundRejected, parse_slack_body

if TYPE_CHECKING:
    from bot.app import Runtime

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


def build_asgi(runtime: Runtime) -> Starlette:
    """The ASGI app for this runtime."""
    settings = runtime.settings
    services = runtime.services
    policy = inbound_policy(settings.slack_api_url)

    async def slack_events(request: Request) -> Response:
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
        bolt_response = await run_in_threadpool(runtime.bolt.dispatch, bolt_request)
        return Response(
            status_code=bolt_response.status,
            content=bolt_response.body,
            headers={k: v for k, v in bolt_response.first_headers_without_set_cookie().items() if k.lower() != "content-length"},
        )

    def cannot_store() -> Response | None:
        # The sender retries a 503; waiting on a broken database would only make it time out.
        if runtime.health.database_ok():
            return None
        return JSONResponse({"error": "temporarily unavailable"}, status_code=503, headers={"Retry-After": "30"})

    async def choppity_webhook(request: Request) -> Response:
        if "choppity" not in services.posts.providers:
            return JSONResponse({"error": "choppity is not configured"}, status_code=404)
        try:
            body = await read_body(request)
        except BodyRejected as rejected:
            return rejected.response()
        if (unavailable := cannot_store()) is not None:
            return unavailable
        try:
            verify_signature(body, request.headers.get(SIGNATURE_HEADER), settings.choppity_webhook_secrets, time.time())
            event = parse_event(body)
        except WebhookRejected as rejected:
            log.info("rejected a Choppity webhook: %s", rejected.reason)
            return JSONResponse({"error": rejected.reason}, status_code=rejected.status)
        try:
            new = await run_in_threadpool(services.events.ingest_choppity, event)
        except Exception:  # noqa: BLE001 - a 503 makes Choppity retry later; nothing is lost
            log.exception("could not store Choppity event %s", event.id)
            return JSONResponse({"error": "temporarily unavailable"}, status_code=503)
        return JSONResponse({"ok": True, "duplicate": not new})

    async def reap_webhook(request: Request) -> Response:
        handler = services.extra.get("reap_webhook")
        token = request.path_params.get("token", "")
        # The token is in the path: check it before reading a byte of the body.
        if handler is None or not token_matches(token, settings.reap_webhook_token):
            return Response(status_code=404)
        try:
            body = await read_body(request)
        except BodyRejected as rejected:
            return rejected.response()
        if (unavailable := cannot_store()) is not None:
            return unavailable
        status: int = await run_in_threadpool(handler, token, body)
        # Reap counts anything but "200 with an empty body" as a failed delivery.
        return Response(status_code=status, content=b"")

    async def livez(_request: Request) -> Response:
        # Liveness: the process and its event loop answer. Nothing external is checked, so a
        # database outage makes the instance unready, not restarted.
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        report = await run_in_threadpool(runtime.health.report)
        body = {
            "status": "ok" if report.ready else "unavailable",
            **report.checks,
            "problems": list(report.problems),
            "slack_mode": "socket" if settings.socket_mode else "http",
            "providers": sorted(services.posts.providers),
        }
        return JSONResponse(body, status_code=200 if report.ready else 503)

    return Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/webhooks/choppity", choppity_webhook, methods=["POST"]),
            Route("/webhooks/reap/{token}", reap_webhook, methods=["POST"]),
            Route("/livez", livez, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            # The readiness route under the name earlier releases documented.
            Route("/healthz", readyz, methods=["GET"]),
        ],
        # Each request logs with a request id (the caller's X-Request-Id or a new one), echoed back.
        middleware=[Middleware(RequestIdMiddleware)],
    )


def inbound_policy(slack_api_url: str) -> InboundPolicy:
    """Which response_url origins Bolt may post to: Slack's, plus a configured (fake) Slack API host."""
    from bot.config import DEFAULT_SLACK_API_URL

    if slack_api_url == DEFAULT_SLACK_API_URL:
        return InboundPolicy()
    return InboundPolicy.with_origins(slack_api_url)
