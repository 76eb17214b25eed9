"""Command line: `greenlight` (or `python -m bot`) runs the bot; `greenlight migrate` upgrades the DB;
`greenlight audit` exports the audit log (bot.audit); `greenlight doctor` checks live that everything
Greenlight depends on works (bot.doctor).

This is the only module that reads `.env` and the process environment.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from typing import Any

from dotenv import load_dotenv

from bot.config import ConfigError, Settings
from bot.logs import configure_logging


def load_settings() -> Settings:
    """Load .env (without overriding the real environment) and validate; exit 2 naming problems."""
    load_dotenv(dotenv_path=os.environ.get("GREENLIGHT_ENV_FILE", ".env"), override=False)
    try:
        return Settings.from_env(os.environ)
    except ConfigError as err:
        print(f"greenlight: {err}", file=sys.stderr)  # noqa: T201 - the user needs this before logging exists
        print("See .env.example and the README for every setting.", file=sys.stderr)  # noqa: T201
        raise SystemExit(2) from None


def run(settings: Settings) -> None:
    """Run the HTTP server, the workers and (when configured) the Socket Mode connection."""
    import uvicorn

    from bot.app import create_runtime

    log = logging.getLogger("bot")
    runtime = create_runtime(settings)
    runtime.start()
    socket_handler: Any = None
    if settings.socket_mode:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        socket_handler = SocketModeHandler(runtime.bolt, settings.slack_app_token)
        threading.Thread(target=socket_handler.connect, name="greenlight-socket-mode", daemon=True).start()
        log.info("Slack: Socket Mode")
    else:
        log.info("Slack: HTTP mode, requests at POST /slack/events")
    log.info("Greenlight listening on %s:%s (providers: %s)", settings.host, settings.port,
             ", ".join(sorted(runtime.services.providers)) or "none")
    config = uvicorn.Config(runtime.asgi, host=settings.host, port=settings.port, log_config=None,
                            access_log=False, timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)
    try:
        server.run()
    finally:
        if socket_handler is not None:
            socket_handler.close()
        runtime.stop()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `greenlight` console script."""
    parser = argparse.ArgumentParser(prog="greenlight", description="Approve social posts in Slack.")
    commands = parser.add_subparsers(dest="command", metavar="{run,migrate,check,doctor,audit}",
                                     help="run the bot (default), migrate the database, check the settings, "
                                          "check live that Slack, the providers and the database work, "
                                          "or export the audit log")
    commands.add_parser("run", help="run the bot (the default)")
    commands.add_parser("migrate", help="apply database migrations")
    commands.add_parser("check", help="validate the settings (offline; `doctor` checks them live)")
    from bot.audit import add_audit_parser
    from bot.doctor import add_doctor_parser

    add_doctor_parser(commands)
    add_audit_parser(commands)
    args = parser.parse_args(argv)
    settings = load_settings()
    configure_logging(settings)
    if args.command == "migrate":
        from bot.db import make_engine, migrate

        migrate(make_engine(settings.database_url))
        logging.getLogger("bot").info("database is at the latest migration")
        return
    if args.command == "check":
        logging.getLogger("bot").info("settings are valid: %r", settings)
        return
    if args.command == "doctor":
        from bot.doctor import run_doctor

        raise SystemExit(run_doctor(settings, sys.stdout, manifest=args.manifest))
    if args.command == "audit":
        from bot.audit import run_audit

        raise SystemExit(run_audit(settings, args))
    # uvicorn handles SIGINT/SIGTERM itself: it stops accepting requests, finishes the ones in
    # flight, and then `run` stops the workers (their unfinished jobs are leased, never lost).
    run(settings)


if __name__ == "__main__":
    main()
