"""What every button listener needs: an ephemeral note, a modal that opens at once and is filled in later."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.modals import loading_modal
from bot.slack.mrkdwn import Mrkdwn, Say, fmt
from bot.slack.notices import notice_modal

log = logging.getLogger(__name__)


def tell(client: WebClient, channel: str, user: str, text: Say | Mrkdwn | None) -> None:
    """Ephemeral note to the clicker; failures are logged, never raised into Bolt."""
    if text is None:
        return
    try:
        client.chat_postEphemeral(channel=channel, user=user, text=text.mrkdwn if isinstance(text, Say) else text)
    except SlackApiError as err:
        log.warning("could not send ephemeral message: %s", err.response.get("error"))


def open_loading(client: WebClient, trigger_id: str, title: str) -> str | None:
    try:
        response = client.views_open(trigger_id=trigger_id, view=loading_modal(title).to_dict())
        return str(response["view"]["id"])
    except SlackApiError as err:
        log.warning("views.open failed: %s", err.response.get("error"))
        return None


def show(client: WebClient, view_id: str, build: Callable[[], Any], title: str) -> None:
    """Replace the loading modal; if building fails or Slack refuses the view, say so in it instead."""
    try:
        client.views_update(view_id=view_id, view=build().to_dict())
        return
    except SlackApiError as err:
        error = str(err.response.get("error") or "unknown_error")
        log.warning("views.update failed: %s", error)
    except Exception:  # noqa: BLE001 - a builder that raises must not leave the modal loading
        log.exception("could not build or show the %s modal", title)
        error = "internal_error"
    show_notice(client, view_id, title, fmt("⚠️ Slack couldn't show this form ({error}). Nothing was changed; "
                                             "please try again, or ask an admin to look at Greenlight's log.", error=error))


def show_notice(client: WebClient, view_id: str, title: str, text: Say | Mrkdwn) -> None:
    try:
        client.views_update(view_id=view_id, view=notice_modal(title, text).to_dict())
    except Exception as err:  # noqa: BLE001 - nothing more can be shown in this modal
        log.warning("could not replace the loading modal: %s", err)


def user_tz(client: WebClient, user: str) -> tuple[str, str]:
    try:
        info = client.users_info(user=user)["user"]
        return str(info.get("tz") or "UTC"), str(info.get("tz_label") or info.get("tz") or "UTC")
    except (SlackApiError, KeyError) as err:
        log.warning("users.info failed; scheduling in UTC: %s", err)
        return "UTC", "UTC"
