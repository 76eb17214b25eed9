"""Bolt listeners: parse the payload, acknowledge, call one service. Nothing slow before `ack()`.

`register_listeners(app, services)` reads as the routing table of the whole Slack surface.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from slack_bolt import App

from bot.listeners import actions, commands, events, views
from bot.slack.ids import COMMAND, ActionId, ViewId

if TYPE_CHECKING:
    from bot.app import Services


def register_listeners(app: App, services: Services) -> None:
    """Attach every listener to the app."""
    app.action(ActionId.PUBLISH.value)(actions.publish(services))
    app.action(ActionId.APPROVE.value)(actions.approve(services))
    app.action(ActionId.EDIT.value)(actions.open_edit_modal(services))
    app.action(ActionId.SCHEDULE.value)(actions.open_schedule_modal(services))
    app.action(ActionId.CANCEL.value)(actions.open_cancel_modal(services))
    app.action(ActionId.OPEN_CARD.value)(actions.acknowledge_link)
    app.view(ViewId.EDIT.value)(views.save_edit(services))
    app.view(ViewId.SCHEDULE.value)(views.save_schedule(services))
    app.view(ViewId.CANCEL.value)(views.confirm_cancel(services))
    app.view(ViewId.LOADING.value)(views.close_notice)
    app.command(COMMAND)(commands.greenlight(services))
    app.event("app_home_opened")(events.publish_home(services))
    for registrar in services.registrars:
        registrar(app)
