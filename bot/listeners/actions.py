"""Card buttons. Publish/Approve record the intent durably, then ack; modals open right away
(the trigger_id expires in 3 s) and are filled in once their data is ready."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from slack_bolt import Ack, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.views import View

from bot.domain import PendingAction, Platform
from bot.listeners.common import open_loading, show, show_notice, tell, user_tz
from bot.services.container import SERVICES_KEY, Services
from bot.services.review import Decision
from bot.slack import notices
from bot.slack.inbound import INBOUND_CONTEXT_KEY, BlockActions, InvalidReference, post_ref_from_button
from bot.slack.modals import cancel_modal, edit_modal, next_full_hour, request_changes_modal, schedule_modal
from bot.slack.mrkdwn import escape

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


def _post_click(context: BoltContext, client: WebClient, ack: Ack | None = None) -> tuple[Click, int] | None:
    """The click and the post it names; None when it names none (acked if asked, and the clicker told)."""
    click = _click(context)
    if click.post_id is None:
        if ack is not None:
            ack()
        tell(client, click.channel, click.user, escape(click.problem or ""))
        return None
    return click, click.post_id


def _allowed(click: Click, client: WebClient, decision: Decision) -> bool:
    """Whether the review service allowed the action on the post; if not, the clicker is told why."""
    if not decision.allowed or decision.post is None:
        tell(client, click.channel, click.user, decision.refusal)
        return False
    return True


def publish(ack: Ack, context: BoltContext, client: WebClient) -> None:
    """Publish button: one click publishes now (after the required approvals)."""
    if (found := _post_click(context, client, ack)) is None:
        return
    click, post_id = found
    result = click.services.review.request(post_id, click.user, PendingAction.PUBLISH, channel=click.channel,
                                           team=click.team)
    ack()
    if not result.accepted:
        tell(client, click.channel, click.user, result.message)


def approve(ack: Ack, context: BoltContext, client: WebClient) -> None:
    """Approve button (only shown when several approvals are required)."""
    if (found := _post_click(context, client, ack)) is None:
        return
    click, post_id = found
    result = click.services.review.approve(post_id, click.user, channel=click.channel, team=click.team)
    ack()
    if not result.accepted:
        tell(client, click.channel, click.user, result.message)


def open_edit_modal(ack: Ack, context: BoltContext, client: WebClient) -> None:
    """Edit button: a modal with the provider's form, prefilled from the post as it is now."""
    ack()
    if (found := _post_click(context, client)) is None:
        return
    click, post_id = found
    review = click.services.review
    decision = review.check(post_id, click.user, PendingAction.EDIT, team=click.team)
    if decision.refusal is not None and decision.post is None:
        tell(client, click.channel, click.user, decision.refusal)  # not allowed to edit at all
        return
    title = "Edit draft"
    view_id = open_loading(client, click.trigger_id, title)
    if view_id is None:
        return
    try:
        decision = review.load_for_edit(post_id)
    except Exception:  # noqa: BLE001 - never leave the person looking at "Loading…"
        log.exception("loading post %s for the edit modal failed", post_id)
        decision = review.could_not_load()
    if not decision.allowed or decision.form is None:
        show_notice(client, view_id, title, decision.refusal or notices.unknown_post())
        return
    form = decision.form
    show(client, view_id, lambda: edit_modal(post_id, form), form.title)


def open_schedule_modal(ack: Ack, context: BoltContext, client: WebClient) -> None:
    """Schedule button: a date-time picker in the clicker's time zone."""
    ack()
    if (found := _post_click(context, client)) is None:
        return
    click, post_id = found
    if not _allowed(click, client, click.services.review.check(post_id, click.user, PendingAction.SCHEDULE,
                                                               team=click.team)):
        return
    title = "Schedule post"
    view_id = open_loading(client, click.trigger_id, title)
    if view_id is None:
        return
    tz_name, tz_label = user_tz(client, click.user)
    # The default must itself be valid: the next full hour that is at least 5 minutes away.
    initial = next_full_hour(click.services.clock() + timedelta(minutes=5), tz_name)
    show(client, view_id, lambda: schedule_modal(post_id, tz_name, tz_label, initial), title)


def open_cancel_modal(ack: Ack, context: BoltContext, client: WebClient) -> None:
    """Cancel button: a confirmation modal with an optional reason."""
    ack()
    if (found := _post_click(context, client)) is None:
        return
    click, post_id = found
    decision = click.services.review.check(post_id, click.user, PendingAction.CANCEL, team=click.team)
    if _allowed(click, client, decision) and decision.post is not None:
        post = decision.post
        _open(client, click.trigger_id, cancel_modal(post_id, Platform(post.platform).label, post.status))


def open_request_changes_modal(ack: Ack, context: BoltContext, client: WebClient) -> None:
    """Request changes button: a modal with the reason and a note (everything it needs is local)."""
    ack()
    if (found := _post_click(context, client)) is None:
        return
    click, post_id = found
    decision = click.services.review.check_request_changes(post_id, click.user, team=click.team)
    if _allowed(click, client, decision) and decision.post is not None:
        _open(client, click.trigger_id, request_changes_modal(post_id, Platform(decision.post.platform).label))


def _open(client: WebClient, trigger_id: str, view: View) -> None:
    try:
        client.views_open(trigger_id=trigger_id, view=view.to_dict())
    except SlackApiError as err:
        log.warning("views.open failed: %s", err.response.get("error"))


def acknowledge_link(ack: Ack) -> None:
    """Link buttons ("Open card") navigate in the client; Slack still expects an ack."""
    ack()
