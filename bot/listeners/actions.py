"""Card buttons. Publish/Approve record the intent durably, then ack; modals open right away
(the trigger_id expires in 3 s) and are filled in once their data is ready."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from slack_bolt import Ack, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.domain import PendingAction, Platform
from bot.services.container import SERVICES_KEY, Services
from bot.slack import notices
from bot.slack.inbound import INBOUND_CONTEXT_KEY, BlockActions, InvalidReference, post_ref_from_button
from bot.slack.modals import (
    cancel_modal,
    edit_modal,
    loading_modal,
    next_full_hour,
    request_changes_modal,
    schedule_modal,
)
from bot.slack.mrkdwn import Mrkdwn, Say, escape, fmt
from bot.slack.notices import notice_modal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Click:
    """What a card click says, read from the validated payload."""

    services: Services
    user: str
    channel: str
    trigger_id: str
    post_id: int | None
    problem: str | None = None
    # The clicker's home team (or enterprise): another organisation's in a Slack Connect channel.
    team: str | None = None


def _click(context: BoltContext) -> Click:
    services: Services = context[SERVICES_KEY]
    payload: BlockActions = context[INBOUND_CONTEXT_KEY]
    channel = payload.channel_id or services.settings.slack_channel_id
    try:
        post_id: int | None = post_ref_from_button(payload.action.value)
        problem = None
    except InvalidReference as err:
        log.info("click with an unusable post reference: %s", err.reason)
        post_id, problem = None, err.user_message
    return Click(services, payload.user.id, channel, payload.trigger_id, post_id, problem, team=payload.user.team_id)


def _tell(client: WebClient, channel: str, user: str, text: Say | Mrkdwn | None) -> None:
    """Ephemeral note to the clicker; failures are logged, never raised into Bolt."""
    if text is None:
        return
    try:
        client.chat_postEphemeral(channel=channel, user=user, text=text.mrkdwn if isinstance(text, Say) else text)
    except SlackApiError as err:
        log.warning("could not send ephemeral message: %s", err.response.get("error"))


def publish(ack: Ack, context: BoltContext, client: WebClient) -> None:
    """Publish button: one click publishes now (after the required approvals)."""
    click = _click(context)
    if click.post_id is None:
        ack()
        _tell(client, click.channel, click.user, escape(click.problem or ""))
        return
    result = click.services.review.request(click.post_id, click.user, PendingAction.PUBLISH, channel=click.channel,
                                           team=click.team)
    ack()
    if not result.accepted:
        _tell(client, click.channel, click.user, result.message)


def approve(ack: Ack, context: BoltContext, client: WebClient) -> None:
    """Approve button (only shown when several approvals are required)."""
    click = _click(context)
    if click.post_id is None:
        ack()
        _tell(client, click.channel, click.user, escape(click.problem or ""))
        return
    result = click.services.review.approve(click.post_id, click.user, channel=click.channel, team=click.team)
    ack()
    if not result.accepted:
        _tell(client, click.channel, click.user, result.message)


def _open_loading(client: WebClient, trigger_id: str, title: str) -> str | None:
    try:
        response = client.views_open(trigger_id=trigger_id, view=loading_modal(title).to_dict())
        return str(response["view"]["id"])
    except SlackApiError as err:
        log.warning("views.open failed: %s", err.response.get("error"))
        return None


def _show(client: WebClient, view_id: str, build: Callable[[], Any], title: str) -> None:
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
    _show_notice(client, view_id, title, fmt("⚠️ Slack couldn't show this form ({error}). Nothing was changed; "
                                             "please try again, or ask an admin to look at Greenlight's log.", error=error))


def _show_notice(client: WebClient, view_id: str, title: str, text: Say | Mrkdwn) -> None:
    try:
        client.views_update(view_id=view_id, view=notice_modal(title, text).to_dict())
    except Exception as err:  # noqa: BLE001 - nothing more can be shown in this modal
        log.warning("could not replace the loading modal: %s", err)


def open_edit_modal(ack: Ack, context: BoltContext, client: WebClient) -> None:
    """Edit button: a modal with the provider's form, prefilled from the post as it is now."""
    ack()
    click = _click(context)
    if click.post_id is None:
        _tell(client, click.channel, click.user, escape(click.problem or ""))
        return
    review = click.services.review
    decision = review.check(click.post_id, click.user, PendingAction.EDIT, team=click.team)
    if decision.refusal is not None and decision.post is None:
        _tell(client, click.channel, click.user, decision.refusal)  # not allowed to edit at all
        return
    title = "Edit draft"
    view_id = _open_loading(client, click.trigger_id, title)
    if view_id is None:
        return
    try:
        decision = review.load_for_edit(click.post_id)
    except Exception:  # noqa: BLE001 - never leave the person looking at "Loading…"
        log.exception("loading post %s for the edit modal failed", click.post_id)
        decision = review.could_not_load()
    if not decision.allowed or decision.form is None:
        _show_notice(client, view_id, title, decision.refusal or notices.unknown_post())
        return
    form, post_id = decision.form, click.post_id
    _show(client, view_id, lambda: edit_modal(post_id, form), form.title)


def _user_tz(client: WebClient, user: str) -> tuple[str, str]:
    try:
        info = client.users_info(user=user)["user"]
        return str(info.get("tz") or "UTC"), str(info.get("tz_label") or info.get("tz") or "UTC")
    except (SlackApiError, KeyError) as err:
        log.warning("users.info failed; scheduling in UTC: %s", err)
        return "UTC", "UTC"


def open_schedule_modal(ack: Ack, context: BoltContext, client: WebClient) -> None:
    """Schedule button: a date-time picker in the clicker's time zone."""
    ack()
    click = _click(context)
    if click.post_id is None:
        _tell(client, click.channel, click.user, escape(click.problem or ""))
        return
    decision = click.services.review.check(click.post_id, click.user, PendingAction.SCHEDULE, team=click.team)
    if not decision.allowed:
        _tell(client, click.channel, click.user, decision.refusal)
        return
    title = "Schedule post"
    view_id = _open_loading(client, click.trigger_id, title)
    if view_id is None:
        return
    tz_name, tz_label = _user_tz(client, click.user)
    # The default must itself be valid: the next full hour that is at least 5 minutes away.
    initial = next_full_hour(click.services.clock() + timedelta(minutes=5), tz_name)
    post_id = click.post_id
    _show(client, view_id, lambda: schedule_modal(post_id, tz_name, tz_label, initial), title)


def open_cancel_modal(ack: Ack, context: BoltContext, client: WebClient) -> None:
    """Cancel button: a confirmation modal with an optional reason."""
    ack()
    click = _click(context)
    if click.post_id is None:
        _tell(client, click.channel, click.user, escape(click.problem or ""))
        return
    decision = click.services.review.check(click.post_id, click.user, PendingAction.CANCEL, team=click.team)
    if not decision.allowed or decision.post is None:
        _tell(client, click.channel, click.user, decision.refusal)
        return
    post = decision.post
    try:
        client.views_open(trigger_id=click.trigger_id,
                          view=cancel_modal(click.post_id, Platform(post.platform).label, post.status).to_dict())
    except SlackApiError as err:
        log.warning("views.open failed: %s", err.response.get("error"))


def open_request_changes_modal(ack: Ack, context: BoltContext, client: WebClient) -> None:
    """Request changes button: a modal with the reason and a note (everything it needs is local)."""
    ack()
    click = _click(context)
    if click.post_id is None:
        _tell(client, click.channel, click.user, escape(click.problem or ""))
        return
    decision = click.services.review.check_request_changes(click.post_id, click.user, team=click.team)
    if not decision.allowed or decision.post is None:
        _tell(client, click.channel, click.user, decision.refusal)
        return
    try:
        client.views_open(trigger_id=click.trigger_id,
                          view=request_changes_modal(click.post_id, Platform(decision.post.platform).label).to_dict())
    except SlackApiError as err:
        log.warning("views.open failed: %s", err.response.get("error"))


def acknowledge_link(ack: Ack) -> None:
    """Link buttons ("Open card") navigate in the client; Slack still expects an ack."""
    ack()
