"""The `/greenlight` slash command: `clip <id>`, `reap <project>`, `queue`, `help`."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, Respond

from bot.domain import Provider
from bot.providers.errors import ApiError
from bot.slack import notices
from bot.slack.home import help_blocks, queue_blocks
from bot.slack.mrkdwn import code, fmt

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)

_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")
# How long `/greenlight clip` waits for Slack to accept the new cards before it reports; cards are
# paced at about one a second per channel, so four drafts take a few seconds.
CARD_WAIT_SECONDS = 20.0


def greenlight(services: Services) -> Callable[..., None]:
    """Dispatch the subcommand; slow work happens after the ack and answers via respond()."""

    def handle_command(ack: Ack, command: dict[str, Any], respond: Respond) -> None:
        words = (command.get("text") or "").split()
        sub = words[0].lower() if words else "help"
        user = str(command.get("user_id", ""))
        if sub == "clip" and len(words) == 2 and _ID.fullmatch(words[1]):
            if Provider.CHOPPITY.value not in services.posts.providers:
                ack("Choppity isn't set up on this Greenlight (CHOPPITY_API_KEY is not set).")
                return
            clip_id = words[1]
            ack(text=notices.looking_up("the drafts of clip", clip_id))
            try:
                summary = services.posts.import_clip(Provider.CHOPPITY.value, clip_id, actor=user)
            except ApiError as err:
                respond(text=notices.lookup_failed("clip", clip_id, err.user_message), response_type="ephemeral")
                return
            shown, failed = _wait_for_cards(services, summary.new_post_ids)
            respond(text=summary.text(shown=shown, failed=failed), response_type="ephemeral")
        elif sub == "reap" and len(words) == 2 and _ID.fullmatch(words[1]):
            if services.reap is None:
                ack("Reap isn't set up on this Greenlight (REAP_API_KEY is not set).")
                return
            project_id = words[1]
            ack(text=notices.looking_up("the clips of Reap project", project_id))
            try:
                text = services.reap.import_project(project_id, actor=user)
            except ApiError as err:
                respond(text=notices.lookup_failed("Reap project", project_id, err.user_message), response_type="ephemeral")
                return
            respond(text=text, response_type="ephemeral")
        elif sub == "queue" and len(words) == 1:
            ack()
            waiting, scheduled = services.overview.queue()
            text, blocks = queue_blocks(waiting, scheduled)
            respond(text=text, blocks=[b.to_dict() for b in blocks], response_type="ephemeral")
        else:
            text, blocks = help_blocks()
            if sub not in ("help", "clip", "reap", "queue"):
                text = fmt("I don't know {sub}. ", sub=code(sub)) + text
            elif sub in ("clip", "reap"):
                text = fmt("{usage} needs exactly one id (letters, digits, - and _), e.g. {example}. ",
                           usage=code(f"/greenlight {sub}"), example=code(f"/greenlight {sub} 9d8e7f6a")) + text
            ack(text=text, blocks=[b.to_dict() for b in blocks])

    return handle_command


def _wait_for_cards(services: Services, post_ids: list[int], *, timeout: float = CARD_WAIT_SECONDS) -> tuple[int, int]:
    """Wait (bounded) until Slack has accepted or refused each new card; returns (shown, refused)."""
    deadline = time.monotonic() + timeout
    shown, failed = services.posts.card_outcomes(post_ids)
    while shown + failed < len(post_ids) and time.monotonic() < deadline:
        time.sleep(0.1)
        shown, failed = services.posts.card_outcomes(post_ids)
    return shown, failed
