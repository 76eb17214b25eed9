"""Modal submissions: validate before acking (errors appear inline), then queue the action."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, BoltContext

from bot.domain import PendingAction
from bot.domain.forms import FieldId
from bot.services.container import SERVICES_KEY, Services
from bot.slack import notices
from bot.slack.forms import form_values, parse_cancel_reason, parse_change_request, parse_schedule
from bot.slack.inbound import InvalidReference, post_ref_from_metadata, unstorable_text_errors
from bot.slack.mrkdwn import Say

log = logging.getLogger(__name__)


def _plain(message: Say | None) -> str:
    """A refusal as a modal's inline error (plain text: no mentions or links there)."""
    return message.plain if message is not None else "That didn't work; please try again."


def _post_id(view: dict[str, Any]) -> int | None:
    try:
        return post_ref_from_metadata(view.get("private_metadata"))
    except InvalidReference as err:
        log.info("modal with an unusable post reference: %s", err.reason)
        return None


def _values(view: dict[str, Any]) -> dict[str, Any]:
    values = view.get("state", {}).get("values", {})
    return values if isinstance(values, dict) else {}


def _team(body: dict[str, Any]) -> str | None:
    """The submitter's home team (another organisation's, in a Slack Connect channel)."""
    user = body.get("user")
    team = user.get("team_id") if isinstance(user, dict) else None
    return team if isinstance(team, str) and team else None


def _first_input(view: dict[str, Any], fallback: str) -> str:
    """Where a refusal is shown in a modal: on its first input."""
    return next(iter(_values(view)), fallback)


def save_edit(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
    """Edit modal submitted (any provider's form): the provider validates, the review service accepts."""
    services: Services = context[SERVICES_KEY]
    where = _first_input(view, FieldId.CAPTION.value)
    # Text Slack and the database can't store (NUL, lone surrogates) is refused here, inline,
    # never as a job that fails later.
    if bad := unstorable_text_errors(_values(view)):
        ack(response_action="errors", errors=bad)
        return
    post_id = _post_id(view)
    if post_id is None:
        ack(response_action="errors", errors={where: notices.unknown_post().plain})
        return
    outcome = services.review.submit_edit(post_id, body["user"]["id"], form_values(_values(view)),
                                          channel=services.settings.slack_channel_id, team=_team(body))
    if isinstance(outcome, dict):
        ack(response_action="errors", errors=outcome)
    elif not outcome.accepted:
        ack(response_action="errors", errors={where: _plain(outcome.message)})
    else:
        ack()


def save_schedule(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
    """Schedule modal submitted."""
    services: Services = context[SERVICES_KEY]
    post_id = _post_id(view)
    if post_id is None:
        ack(response_action="errors", errors={FieldId.WHEN.value: notices.unknown_post().plain})
        return
    when = parse_schedule(_values(view), services.clock())
    if isinstance(when, dict):
        ack(response_action="errors", errors=when)
        return
    result = services.review.request(post_id, body["user"]["id"], PendingAction.SCHEDULE,
                                     channel=services.settings.slack_channel_id,
                                     payload={"scheduled_at": int(when.timestamp())}, team=_team(body))
    if not result.accepted:
        ack(response_action="errors", errors={FieldId.WHEN.value: _plain(result.message)})
        return
    ack()


def _checked_post(ack: Ack, view: dict[str, Any], where: FieldId) -> int | None:
    """The post a submitted text modal is about, after the checks they all share (text Slack can't
    store, a post reference); None when refused, with the modal already answered inline."""
    if bad := unstorable_text_errors(_values(view)):
        ack(response_action="errors", errors=bad)
        return None
    post_id = _post_id(view)
    if post_id is None:
        ack(response_action="errors", errors={where.value: notices.unknown_post().plain})
    return post_id


def confirm_cancel(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
    """Cancel confirmation submitted."""
    services: Services = context[SERVICES_KEY]
    if (post_id := _checked_post(ack, view, FieldId.REASON)) is None:
        return
    reason = parse_cancel_reason(_values(view))
    result = services.review.request(post_id, body["user"]["id"], PendingAction.CANCEL,
                                     channel=services.settings.slack_channel_id,
                                     payload={"reason": reason} if reason else None, team=_team(body))
    if not result.accepted:
        ack(response_action="errors", errors={FieldId.REASON.value: _plain(result.message)})
        return
    ack()


def save_request_changes(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
    """Request-changes modal submitted: the reason and note are checked inline, then recorded."""
    services: Services = context[SERVICES_KEY]
    if (post_id := _checked_post(ack, view, FieldId.CHANGE_REASON)) is None:
        return
    parsed = parse_change_request(_values(view))
    if isinstance(parsed, dict):
        ack(response_action="errors", errors=parsed)
        return
    reason, note = parsed
    result = services.review.request_changes(post_id, body["user"]["id"], reason, note, team=_team(body))
    if not result.accepted:
        ack(response_action="errors", errors={FieldId.CHANGE_REASON.value: _plain(result.message)})
        return
    ack()


def close_notice(ack: Ack) -> None:
    """Notice modals have no submit button; ack anything that arrives for them anyway."""
    ack()
