"""Events API listeners."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.home import home_view

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)


def publish_home(services: Services) -> Callable[..., None]:
    """Refresh the App Home overview each time someone opens it."""

    def handle_home_opened(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        waiting, scheduled, in_flight, published, failed = services.overview.home()
        view = home_view(waiting, scheduled, published, failed, in_flight)
        try:
            client.views_publish(user_id=event["user"], view=view.to_dict())
        except SlackApiError as err:
            log.warning("views.publish failed: %s", err.response.get("error"))

    return handle_home_opened
