"""The `/greenlight` slash command: `<provider command> <id>` (one per provider), `queue`, `help`."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from slack_bolt import Ack, BoltContext, Respond

from bot.providers.errors import ApiError
from bot.services.container import SERVICES_KEY, Services
from bot.services.intake import Intake
from bot.slack import notices
from bot.slack.home import ProviderCommand, help_blocks, queue_blocks
from bot.slack.mrkdwn import code, fmt

log = logging.getLogger(__name__)

_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")
# How long an import waits for Slack to accept the new cards before it reports; cards are paced at
# about one a second per channel, so four drafts take a few seconds.
CARD_WAIT_SECONDS = 20.0


def greenlight(ack: Ack, command: dict[str, Any], respond: Respond, context: BoltContext) -> None:
    """Dispatch the subcommand; slow work happens after the ack and answers via respond()."""
    services: Services = context[SERVICES_KEY]
    words = (command.get("text") or "").split()
    sub = words[0].lower() if words else "help"
    provider = services.providers.by_command(sub)
    if (provider is not None or sub == "queue") and (
        refusal := services.review.outsider_refusal(str(command.get("user_id", "")), command.get("team_id"))
    ):
        ack(text=refusal.mrkdwn)  # a partner in a Slack Connect channel who isn't listed
        return
    if provider is not None and len(words) == 2 and _ID.fullmatch(words[1]):
        ref = words[1]
        ack(text=notices.looking_up(f"the drafts of {provider.noun}", ref))
        try:
            intake = services.intake.import_drafts(provider.slug, ref, actor=str(command.get("user_id", "")))
        except ApiError as err:
            respond(text=notices.lookup_failed(provider.noun, ref, err.user_message), response_type="ephemeral")
            return
        respond(text=_summary(services, intake), response_type="ephemeral")
    elif sub == "queue" and len(words) == 1:
        ack()
        waiting, changes, scheduled = services.overview.queue()
        text, blocks = queue_blocks(waiting, scheduled, changes)
        respond(text=text, blocks=[b.to_dict() for b in blocks], response_type="ephemeral")
    else:
        commands = [ProviderCommand(p.command, p.noun, p.title) for p in services.providers.values()]
        text, blocks = help_blocks(commands)
        if sub != "help" and provider is None:
            text = fmt("I don't know {sub}. ", sub=code(sub)) + text
        elif provider is not None:
            text = fmt("{usage} needs exactly one id (letters, digits, - and _), e.g. {example}. ",
                       usage=code(f"/greenlight {sub}"), example=code(f"/greenlight {sub} 9d8e7f6a")) + text
        ack(text=text, blocks=[b.to_dict() for b in blocks])


def _summary(services: Services, intake: Intake) -> str:
    shown, failed = _wait_for_cards(services, intake.new_post_ids)
    carded = [(p.platform.label, "") for p in intake.carded]
    return notices.import_summary(intake.noun, intake.found, carded=carded, already=len(intake.already),
                                  shown=shown, failed=failed)


def _wait_for_cards(services: Services, post_ids: list[int], *, timeout: float = CARD_WAIT_SECONDS) -> tuple[int, int]:
    """Wait (bounded) until Slack has accepted or refused each new card; returns (shown, refused)."""
    deadline = time.monotonic() + timeout
    shown, failed = services.intake.card_outcomes(post_ids)
    while shown + failed < len(post_ids) and time.monotonic() < deadline:
        time.sleep(0.1)
        shown, failed = services.intake.card_outcomes(post_ids)
    return shown, failed
