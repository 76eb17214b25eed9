"""The `/greenlight` slash command: `clip <id>`, `reap <project>`, `queue`, `help`."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, Respond

from bot.api.errors import ApiError
from bot.domain import Provider
from bot.slack.home import help_blocks, queue_blocks

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)

_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def greenlight(services: Services) -> Callable[..., None]:
    """Dispatch the subcommand; slow work happens after the ack and answers via respond()."""

    def handle_command(ack: Ack, command: dict[str, Any], respond: Respond) -> None:
        words = (command.get("text") or "").split()
        sub = words[0].lower() if words else "help"
        user = str(command.get("user_id", ""))
        if sub == "clip" and len(words) == 2 and _ID.match(words[1]):
            if Provider.CHOPPITY.value not in services.posts.providers:
                ack("Choppity isn't set up on this Greenlight (CHOPPITY_API_KEY is not set).")
                return
            clip_id = words[1]
            ack(f"🔎 Looking up the drafts of clip `{clip_id}` in Choppity…")
            try:
                summary = services.posts.import_clip(Provider.CHOPPITY.value, clip_id, actor=user)
            except ApiError as err:
                respond(text=f"⚠️ Couldn't read clip `{clip_id}`. {err.user_message}", response_type="ephemeral")
                return
            respond(text=summary.text(), response_type="ephemeral")
        elif sub == "reap" and len(words) == 2 and _ID.match(words[1]):
            if services.reap is None:
                ack("Reap isn't set up on this Greenlight (REAP_API_KEY is not set).")
                return
            project_id = words[1]
            ack(f"🔎 Looking up the clips of Reap project `{project_id}`…")
            try:
                text = services.reap.import_project(project_id, actor=user)
            except ApiError as err:
                respond(text=f"⚠️ Couldn't read Reap project `{project_id}`. {err.user_message}", response_type="ephemeral")
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
                text = f"I don't know `{sub}`. " + text
            elif sub in ("clip", "reap"):
                text = f"`/greenlight {sub}` needs exactly one id, e.g. `/greenlight {sub} 9d8e7f6a`. " + text
            ack(text=text, blocks=[b.to_dict() for b in blocks])

    return handle_command
