"""Events API listeners."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.services.container import SERVICES_KEY, Services
from bot.slack.home import home_view

log = logging.getLogger(__name__)


def publish_home(event: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    """Refresh the App Home overview each time someone opens it."""
    if event.get("tab", "home") != "home":
        return
    services: Services = context[SERVICES_KEY]
    groups = services.overview.home()
    view = home_view(groups.waiting, groups.scheduled, groups.published, groups.failed, groups.in_flight,
                     changes=groups.changes)
    try:
        client.views_publish(user_id=event["user"], view=view.to_dict())
    except SlackApiError as err:
        log.warning("views.publish failed: %s", err.response.get("error"))
