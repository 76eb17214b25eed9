"""Global Bolt middleware: typed payloads for Socket Mode, and a clear "can't save" when the database can't.

HTTP requests are parsed and validated by the server before Bolt sees them; Socket Mode hands Bolt
raw dicts, which get the same typed validation here. While the database can't take writes (see
`bot.health`), every click, command and submission is answered at once in plain words (an
ephemeral note, an inline modal error, a command reply) and nothing is changed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltContext, BoltResponse

from bot.services.health import Health
from bot.slack import notices
from bot.slack.inbound import (
    INBOUND_CONTEXT_KEY,
    BlockActions,
    InboundPolicy,
    InboundRejected,
    SlashCommand,
    ViewSubmission,
    validate_payload,
)

log = logging.getLogger(__name__)

Next = Callable[[], BoltResponse]


def install(app: App, *, policy: InboundPolicy, health: Health) -> None:
    """Register both middlewares on the app (validation first)."""

    @app.middleware
    def validate_socket_mode_payloads(context: BoltContext, body: dict[str, Any], next: Next) -> BoltResponse | None:
        if INBOUND_CONTEXT_KEY not in context:
            try:
                context[INBOUND_CONTEXT_KEY] = validate_payload(body, policy=policy).payload
            except InboundRejected as rejected:
                log.info("rejected a Socket Mode payload: %s", rejected.reason)
                return BoltResponse(status=rejected.status, body=rejected.reason)
        return next()

    @app.middleware
    def refuse_when_the_database_cannot_save(context: BoltContext, next: Next) -> BoltResponse | None:
        if health.database_ok():
            return next()
        return cannot_save(context)


def cannot_save(context: BoltContext) -> BoltResponse:
    """The answer to any request while the database can't take writes; nothing is changed."""
    message = notices.cannot_save_now()
    payload = context.get(INBOUND_CONTEXT_KEY)
    if isinstance(payload, BlockActions):
        channel = payload.channel_id
        if channel:
            try:
                context.client.chat_postEphemeral(channel=channel, user=payload.user.id, text=message.mrkdwn)
            except Exception as err:  # noqa: BLE001 - the ack below still goes out
                log.warning("could not tell %s that nothing was saved: %s", payload.user.id, err)
        return BoltResponse(status=200, body="")
    if isinstance(payload, ViewSubmission):
        blocks = list(payload.view.state.values)
        if blocks:
            answer: dict[str, Any] = {"response_action": "errors", "errors": {blocks[0]: message.plain}}
        else:
            answer = {"response_action": "update", "view": notices.notice_modal("Not saved", message).to_dict()}
        return BoltResponse(status=200, body=json.dumps(answer), headers={"content-type": "application/json"})
    if isinstance(payload, SlashCommand):
        answer = {"response_type": "ephemeral", "text": str(message.mrkdwn)}
        return BoltResponse(status=200, body=json.dumps(answer), headers={"content-type": "application/json"})
    return BoltResponse(status=200, body="")
