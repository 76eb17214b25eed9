"""Bolt listeners: parse the payload, ask a service once, acknowledge, hand off. Nothing slow before `ack()`.

`register_listeners(app)` reads as the routing table of the whole Slack surface. Listeners get the
services from the request context (`bot.services.container.SERVICES_KEY`), never by import.
"""

from __future__ import annotations

from slack_bolt import App

from bot.listeners import actions, clips, commands, events, views
from bot.slack.ids import COMMAND, ActionId, ViewId


def register_listeners(app: App) -> None:
    """Attach every listener to the app."""
    app.action(ActionId.PUBLISH.value)(actions.publish)
    app.action(ActionId.APPROVE.value)(actions.approve)
    app.action(ActionId.EDIT.value)(actions.open_edit_modal)
    app.action(ActionId.SCHEDULE.value)(actions.open_schedule_modal)
    app.action(ActionId.CANCEL.value)(actions.open_cancel_modal)
    app.action(ActionId.REQUEST_CHANGES.value)(actions.open_request_changes_modal)
    app.action(ActionId.OPEN_CARD.value)(actions.acknowledge_link)
    app.action(ActionId.PUBLISH_ALL.value)(clips.publish_all)
    app.action(ActionId.SCHEDULE_ALL.value)(clips.schedule_all)
    app.view(ViewId.EDIT.value)(views.save_edit)
    app.view(ViewId.SCHEDULE.value)(views.save_schedule)
    app.view(ViewId.CANCEL.value)(views.confirm_cancel)
    app.view(ViewId.REQUEST_CHANGES.value)(views.save_request_changes)
    app.view(ViewId.LOADING.value)(views.close_notice)
    app.view(ViewId.SCHEDULE_ALL.value)(clips.review_schedule_all)
    app.view(ViewId.BULK_CONFIRM.value)(clips.confirm_bulk)
    app.command(COMMAND)(commands.greenlight)
    app.event("app_home_opened")(events.publish_home)
