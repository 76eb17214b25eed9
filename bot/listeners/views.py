"""Modal submissions: validate before acking (errors appear inline), then queue the action."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack

from bot.db import get_post, session_scope
from bot.domain import PendingAction, Platform, PostContent
from bot.models import utcnow
from bot.slack import notices
from bot.slack.forms import parse_cancel_reason, parse_edit, parse_schedule
from bot.slack.ids import Field
from bot.slack.inbound import InvalidReference, post_ref_from_metadata, unstorable_text_errors
from bot.slack.mrkdwn import Say

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)

Listener = Callable[..., None]


def _plain(message: Say | None) -> str:
    """A refusal as a modal's inline error (plain text: no mentions or links there)."""
    return message.plain if message is not None else "That didn't work; please try again."


def _post_id(view: dict[str, Any]) -> int | None:
    try:
        return post_ref_from_metadata(view.get("private_metadata"))
    except InvalidReference as err:
        log.info("modal with an unusable post reference: %s", err.reason)
        return None


def unusable_text(view: dict[str, Any]) -> dict[str, str]:
    """Inline errors for any input holding text Slack and the database can't store (NUL, lone
    surrogates): caught here, before anything is queued, never as a job that fails later."""
    return unstorable_text_errors(view.get("state", {}).get("values", {}))


def save_edit(services: Services) -> Listener:
    """Edit modal submitted."""

    def handle_save_edit(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        post_id, user = _post_id(view), body["user"]["id"]
        if bad := unusable_text(view):
            ack(response_action="errors", errors=bad)
            return
        with session_scope(services.engine) as session:
            post = get_post(session, post_id) if post_id is not None else None
            if post is None or post_id is None:
                ack(response_action="errors", errors={Field.CAPTION.value: notices.unknown_post().plain})
                return
            platform, old, channel = Platform(post.platform), PostContent.from_dict(post.content), post.channel_id
        form = parse_edit(view["state"]["values"], platform)
        if isinstance(form, dict):
            ack(response_action="errors", errors=form)
            return
        new = form.to_content(old)
        if not new.changes_from(old):
            ack()
            return
        result = services.posts.request(
            post_id, user, PendingAction.EDIT, channel=channel or services.settings.slack_channel_id,
            payload={"content": new.to_dict()},
        )
        if not result.accepted:
            ack(response_action="errors", errors={Field.CAPTION.value: _plain(result.message)})
            return
        ack()

    return handle_save_edit


def save_schedule(services: Services) -> Listener:
    """Schedule modal submitted."""

    def handle_save_schedule(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        post_id, user = _post_id(view), body["user"]["id"]
        if post_id is None:
            ack(response_action="errors", errors={Field.WHEN.value: notices.unknown_post().plain})
            return
        when = parse_schedule(view["state"]["values"], utcnow())
        if isinstance(when, dict):
            ack(response_action="errors", errors=when)
            return
        result = services.posts.request(
            post_id, user, PendingAction.SCHEDULE, channel=services.settings.slack_channel_id,
            payload={"scheduled_at": int(when.timestamp())},
        )
        if not result.accepted:
            ack(response_action="errors", errors={Field.WHEN.value: _plain(result.message)})
            return
        ack()

    return handle_save_schedule


def confirm_cancel(services: Services) -> Listener:
    """Cancel confirmation submitted."""

    def handle_confirm_cancel(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        post_id, user = _post_id(view), body["user"]["id"]
        if bad := unusable_text(view):
            ack(response_action="errors", errors=bad)
            return
        if post_id is None:
            ack(response_action="errors", errors={Field.REASON.value: notices.unknown_post().plain})
            return
        reason = parse_cancel_reason(view["state"]["values"])
        result = services.posts.request(
            post_id, user, PendingAction.CANCEL, channel=services.settings.slack_channel_id,
            payload={"reason": reason} if reason else None,
        )
        if not result.accepted:
            ack(response_action="errors", errors={Field.REASON.value: _plain(result.message)})
            return
        ack()

    return handle_confirm_cancel


def close_notice(ack: Ack) -> None:
    """Notice modals have no submit button; ack anything that arrives for them anyway."""
    ack()
