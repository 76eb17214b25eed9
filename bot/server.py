"""The one HTTP server: Slack requests, provider webhooks and the health check.

Slack requests are verified here first with a strict parser (a malformed timestamp is a 401, not
the 500 Bolt would give, and a failed signature never logs the body), then dispatched to Bolt in
a worker thread so the event loop keeps serving other requests while a listener runs.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from slack_bolt.request import BoltRequest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.db import ping
from bot.security import verify_slack_request
from bot.webhooks.choppity import SIGNATURE_HEADER, WebhookRejected, parse_event, verify_signature

if TYPE_CHECKING:
    from bot.app import Runtime

log = logging.getLogger(__name__)

MAX_BODY = 1_000_000


def build_asgi(runtime: Runtime) -> Starlette:
    """The ASGI app for this runtime."""
    settings = runtime.settings
    services = runtime.services

    async def slack_events(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"error": "request too large"}, status_code=413)
        if not settings.socket_mode or request.headers.get("x-slack-signature"):
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
        bolt_request = BoltRequest(
            body=body.decode("utf-8", errors="replace"),
            query=request.url.query,
            headers={k: v for k, v in request.headers.items()},
        )
        bolt_response = await run_in_threadpool(runtime.bolt.dispatch, bolt_request)
        return Response(
            status_code=bolt_response.status,
            content=bolt_response.body,
            headers={k: v for k, v in bolt_response.first_headers_without_set_cookie().items() if k.lower() != "content-length"},
        )

    async def choppity_webhook(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"error": "payload too large"}, status_code=413)
        if "choppity" not in services.posts.providers:
            return JSONResponse({"error": "choppity is not configured"}, status_code=404)
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
        token = request.path_params.get("token", "")
        handler = services.extra.get("reap_webhook")
        if handler is None:
            return Response(status_code=404)
        body = await request.body()
        status: int = await run_in_threadpool(handler, token, body[:MAX_BODY])
        # Reap counts anything but "200 with an empty body" as a failed delivery.
        return Response(status_code=status, content=b"")

    async def healthz(_request: Request) -> Response:
        healthy = await run_in_threadpool(ping, services.engine)
        body = {
            "status": "ok" if healthy else "unavailable",
            "database": "ok" if healthy else "unreachable",
            "slack_mode": "socket" if settings.socket_mode else "http",
            "providers": sorted(services.posts.providers) + (["reap"] if services.reap else []),
        }
        return JSONResponse(body, status_code=200 if healthy else 503)

    return Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/webhooks/choppity", choppity_webhook, methods=["POST"]),
            Route("/webhooks/reap/{token}", reap_webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
