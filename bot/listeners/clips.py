"""The clip message's buttons (Publish all, Schedule all) and their modals.

Both end in one confirmation listing exactly what goes where and when; only its submission acts,
on exactly the posts it listed, each re-checked and requested like a click on its own card.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_bolt import Ack, BoltContext
from slack_sdk import WebClient

from bot.domain import PendingAction
from bot.domain.forms import FieldId
from bot.listeners.common import open_loading, show, show_notice, tell, user_tz
from bot.services.container import SERVICES_KEY, Services
from bot.slack import notices
from bot.slack.clips import SPACING_CHOICES, bulk_confirm_modal, schedule_all_modal
from bot.slack.forms import parse_schedule, parse_spacing
from bot.slack.inbound import (
    INBOUND_CONTEXT_KEY,
    BlockActions,
    InvalidReference,
    clip_metadata,
    clip_ref_from_button,
)
from bot.slack.modals import next_full_hour
from bot.slack.notices import notice_modal

log = logging.getLogger(__name__)


def _clip_click(context: BoltContext) -> tuple[Services, BlockActions, int | None]:
    services: Services = context[SERVICES_KEY]
    payload: BlockActions = context[INBOUND_CONTEXT_KEY]
    try:
        return services, payload, clip_ref_from_button(payload.action.value)
    except InvalidReference as err:
        log.info("clip click with an unusable reference: %s", err.reason)
        return services, payload, None


def _opened(context: BoltContext, client: WebClient, title: str) -> tuple[Services, BlockActions, int, str] | None:
    """A clip button's click with a loading modal open for it; None when the click names no clip
    (the clicker told why) or the modal couldn't open."""
    services, payload, clip_id = _clip_click(context)
    if clip_id is None:
        tell(client, payload.channel_id or services.settings.slack_channel_id, payload.user.id, notices.unknown_clip())
        return None
    view_id = open_loading(client, payload.trigger_id, title)
    return (services, payload, clip_id, view_id) if view_id is not None else None


def publish_all(ack: Ack, context: BoltContext, client: WebClient) -> None:
    """Publish all: the confirmation of what would be published, for this person, now."""
    ack()
    title = "Publish all"
    if (opened := _opened(context, client, title)) is None:
        return
    services, payload, clip_id, view_id = opened
    plan = services.clips.plan(clip_id, payload.user.id, PendingAction.PUBLISH, team=payload.user.team_id)
    if plan.refusal is not None:
        show_notice(client, view_id, title, plan.refusal)
        return
    heading = services.clips.heading(clip_id)
    show(client, view_id, lambda: bulk_confirm_modal(clip_id, heading, PendingAction.PUBLISH, list(plan.items)),
          title)


def schedule_all(ack: Ack, context: BoltContext, client: WebClient) -> None:
    """Schedule all, step 1: a time for the first post and the spacing, in the clicker's time zone."""
    ack()
    title = "Schedule all"
    if (opened := _opened(context, client, title)) is None:
        return
    services, payload, clip_id, view_id = opened
    tz_name, tz_label = user_tz(client, payload.user.id)
    initial = next_full_hour(services.clock() + timedelta(minutes=5), tz_name)
    count = services.clips.open_draft_count(clip_id)
    show(client, view_id, lambda: schedule_all_modal(clip_id, tz_label, initial, count), title)


def review_schedule_all(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
    """Schedule all, step 2: validate the time, then show the confirmation in place of the form."""
    services: Services = context[SERVICES_KEY]
    values = _values(view)
    when = parse_schedule(values, services.clock())
    spacing = parse_spacing(values, SPACING_CHOICES)
    errors = {**(when if isinstance(when, dict) else {}), **(spacing if isinstance(spacing, dict) else {})}
    try:
        clip_id = clip_metadata(view.get("private_metadata")).clip_id
    except InvalidReference as err:
        log.info("schedule-all modal with an unusable reference: %s", err.reason)
        ack(response_action="errors", errors={FieldId.WHEN.value: notices.unknown_clip().plain})
        return
    if errors or isinstance(when, dict) or isinstance(spacing, dict):
        ack(response_action="errors", errors=errors)
        return
    plan = services.clips.plan(clip_id, body["user"]["id"], PendingAction.SCHEDULE, first_at=when, spacing=spacing,
                               team=_team(body))
    if plan.refusal is not None:
        ack(response_action="errors", errors={FieldId.WHEN.value: plan.refusal.plain})
        return
    modal = bulk_confirm_modal(clip_id, services.clips.heading(clip_id), PendingAction.SCHEDULE, list(plan.items),
                               first_at=when, spacing_minutes=int(spacing.total_seconds() // 60))
    ack(response_action="update", view=modal.to_dict())


def confirm_bulk(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext,
                 client: WebClient) -> None:
    """The confirmation was submitted: request exactly the listed posts, then tell the person how it went."""
    services: Services = context[SERVICES_KEY]
    user = body["user"]["id"]
    try:
        meta = clip_metadata(view.get("private_metadata"))
        action = PendingAction(meta.action or "")
    except (InvalidReference, ValueError) as err:
        log.info("bulk confirmation with unusable metadata: %s", err)
        ack(response_action="update", view=notice_modal("Greenlight", notices.unknown_clip()).to_dict())
        return
    if action not in (PendingAction.PUBLISH, PendingAction.SCHEDULE):
        ack(response_action="update", view=notice_modal("Greenlight", notices.unknown_clip()).to_dict())
        return
    first_at = datetime.fromtimestamp(meta.first_at, UTC) if meta.first_at is not None else None
    if action is PendingAction.SCHEDULE and (first_at is None or first_at - services.clock() < timedelta(minutes=5)):
        ack(response_action="update", view=notice_modal("Schedule all", notices.bulk_too_late()).to_dict())
        return
    channel = services.settings.slack_channel_id
    outcome = services.clips.confirm(meta.clip_id, user, action, list(meta.post_ids), channel=channel,
                                     first_at=first_at, spacing=timedelta(minutes=meta.spacing_minutes or 0),
                                     team=_team(body))
    ack()
    tell(client, channel, user, notices.bulk_done(action, outcome.accepted, outcome.refused))


def _team(body: dict[str, Any]) -> str | None:
    """The home team of the person who submitted a modal (another organisation's, in Slack Connect)."""
    team = (body.get("user") or {}).get("team_id")
    return team if isinstance(team, str) else None


def _values(view: dict[str, Any]) -> dict[str, Any]:
    values = view.get("state", {}).get("values", {})
    return values if isinstance(values, dict) else {}
