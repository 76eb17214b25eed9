"""The app under benchmark, as its own process: `python -m bench.serve` (settings from the environment).

It runs exactly what `greenlight run` runs (the runtime from `create_runtime`, its job workers and
background loops, its ASGI app under uvicorn) and adds three reference routes to the same server, so
every reference is served by the same process, event loop and thread pool as the app:

- `POST /bench/floor/slack/events`: a second Bolt app whose only listener calls `ack()`. It goes
  through the same path as `/slack/events` (strict signature check, BoltRequest,
  `run_in_threadpool(app.dispatch)`): the floor a Slack handler cannot beat on this server.
- `POST /bench/naive/slack/events`: a Bolt app that looks the post up and calls Choppity's publish
  *before* `ack()`, the way a naive bot does.
- `POST /bench/bare/webhooks/choppity`: reads the body and answers 200, nothing else.

The listening port is printed on stdout as `PORT <n>` before start-up work begins; logs go to stderr.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import uvicorn
from slack_bolt import Ack, App
from slack_bolt.request import BoltRequest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.app import create_runtime, make_slack_client
from bot.config import Settings
from bot.db import get_post, session_scope
from bot.security import verify_slack_request

log = logging.getLogger("bench.serve")


def _bolt_app(settings: Settings) -> App:
    """A Bolt app configured like Greenlight's (same executor size, same ack mode)."""
    return App(
        signing_secret=settings.slack_signing_secret,
        client=make_slack_client(settings),
        token_verification_enabled=False,
        process_before_response=False,
        listener_executor=ThreadPoolExecutor(max_workers=32, thread_name_prefix="bench-listener"),
        raise_error_for_unhandled_request=False,
    )


def floor_app(settings: Settings) -> App:
    """A Bolt app whose every action listener only acknowledges."""
    app = _bolt_app(settings)

    @app.action(re.compile(".*"))
    def noop(ack: Ack) -> None:
        ack()

    return app


def naive_app(settings: Settings, engine: Any) -> App:
    """A Bolt app that publishes on Choppity before acknowledging (what Greenlight avoids)."""
    app = _bolt_app(settings)
    http = httpx.Client(
        base_url=settings.choppity_api_url,
        headers={"Authorization": f"Key {settings.choppity_api_key}"},
        timeout=30,
    )

    @app.action(re.compile(".*"))
    def publish_then_ack(ack: Ack, body: dict[str, Any]) -> None:
        post_id = int(body["actions"][0]["value"])
        with session_scope(engine) as session:
            post = get_post(session, post_id)
            external_id = post.external_id if post is not None else "unknown"
        http.post(f"/v1/posts/{external_id}/publish", json={})
        ack()

    return app


def slack_route(settings: Settings, bolt: App) -> Callable[[Request], Awaitable[Response]]:
    """The same request path as bot.server's /slack/events, for another Bolt app."""

    async def handle(request: Request) -> Response:
        body = await request.body()
        ok = verify_slack_request(
            body,
            request.headers.get("x-slack-request-timestamp"),
            request.headers.get("x-slack-signature"),
            settings.slack_signing_secret,
            time.time(),
        )
        if not ok:
            return JSONResponse({"error": "invalid request"}, status_code=401)
        bolt_request = BoltRequest(
            body=body.decode("utf-8", errors="replace"),
            query=request.url.query,
            headers={k: v for k, v in request.headers.items()},
        )
        bolt_response = await run_in_threadpool(bolt.dispatch, bolt_request)
        return Response(
            status_code=bolt_response.status,
            content=bolt_response.body,
            headers={k: v for k, v in bolt_response.first_headers_without_set_cookie().items() if k.lower() != "content-length"},
        )

    return handle


async def bare_webhook(request: Request) -> Response:
    """Read the body and answer, nothing else: the server's own cost per webhook."""
    await request.body()
    return JSONResponse({"ok": True})


def main() -> None:
    """Serve the app plus the reference routes until SIGTERM."""
    settings = Settings.from_env(os.environ)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr, force=True)
    logging.getLogger("httpx").setLevel(logging.WARNING)

    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on connections whose listening socket
    # says so, and without it every response waits ~40 ms for a delayed ACK (Nagle). Production lets
    # uvicorn create the socket from host/port, which gets this right.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(f"PORT {sock.getsockname()[1]}", flush=True)

    runtime = create_runtime(settings)
    runtime.start()
    references = Starlette(
        routes=[
            Route("/bench/floor/slack/events", slack_route(settings, floor_app(settings)), methods=["POST"]),
            Route("/bench/naive/slack/events", slack_route(settings, naive_app(settings, runtime.services.engine)),
                  methods=["POST"]),
            Route("/bench/bare/webhooks/choppity", bare_webhook, methods=["POST"]),
        ]
    )
    greenlight = runtime.asgi

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/bench/"):
            await references(scope, receive, send)
        else:
            await greenlight(scope, receive, send)

    config = uvicorn.Config(asgi, log_config=None, access_log=False, timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
    try:
        server.run(sockets=[sock])
    finally:
        runtime.stop()


if __name__ == "__main__":
    main()
