"""Card buttons. Publish/Approve record the intent durably, then ack; modals open right away
(the trigger_id expires in 3 s) with a loading view that is filled in once data is fetched."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.db import get_post, session_scope
from bot.domain import PendingAction, Platform, PostContent, PostStatus
from bot.models import utcnow
from bot.providers.errors import ApiError
from bot.slack import notices
from bot.slack.inbound import INBOUND_CONTEXT_KEY, BlockActions, InvalidReference, post_ref_from_button
from bot.slack.modals import cancel_modal, edit_modal, loading_modal, next_full_hour, schedule_modal
from bot.slack.mrkdwn import Mrkdwn, Say, escape, fmt
from bot.slack.notices import notice_modal

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)

Listener = Callable[..., None]


@dataclass(frozen=True)
class Click:
    """What a card click says, read from the validated payload."""

    user: str
    channel: str
    trigger_id: str
    post_id: int | None
    problem: str | None = None


def _click(context: BoltContext, services: Services) -> Click:
    payload: BlockActions = context[INBOUND_CONTEXT_KEY]
    channel = payload.channel_id or services.settings.slack_channel_id
    try:
        post_id: int | None = post_ref_from_button(payload.action.value)
        problem = None
    except InvalidReference as err:
        log.info("click with an unusable post reference: %s", err.reason)
        post_id, problem = None, err.user_message
    return Click(payload.user.id, channel, payload.trigger_id, post_id, problem)


def _tell(client: WebClient, channel: str, user: str, text: Say | Mrkdwn | None) -> None:
    """Ephemeral note to the clicker; failures are logged, never raised into Bolt."""
    if text is None:
        return
    try:
        client.chat_postEphemeral(channel=channel, user=user, text=text.mrkdwn if isinstance(text, Say) else text)
    except SlackApiError as err:
        log.warning("could not send ephemeral message: %s", err.response.get("error"))


def publish(services: Services) -> Listener:
    """Publish button: one click publishes now (after the required approvals)."""

    def handle_publish(ack: Ack, context: BoltContext, client: WebClient) -> None:
        click = _click(context, services)
        if click.post_id is None:
            ack()
            _tell(client, click.channel, click.user, escape(click.problem or ""))
            return
        result = services.posts.request(click.post_id, click.user, PendingAction.PUBLISH, channel=click.channel)
        ack()
        if not result.accepted:
            _tell(client, click.channel, click.user, result.message)

    return handle_publish


def approve(services: Services) -> Listener:
    """Approve button (only shown when several approvals are required)."""

    def handle_approve(ack: Ack, context: BoltContext, client: WebClient) -> None:
        click = _click(context, services)
        if click.post_id is None:
            ack()
            _tell(client, click.channel, click.user, escape(click.problem or ""))
            return
        result = services.posts.approve(click.post_id, click.user, channel=click.channel)
        ack()
        if not result.accepted:
            _tell(client, click.channel, click.user, result.message)

    return handle_approve


def _open_loading(client: WebClient, trigger_id: str, title: str) -> str | None:
    try:
        response = client.views_open(trigger_id=trigger_id, view=loading_modal(title).to_dict())
        return str(response["view"]["id"])
    except SlackApiError as err:
        log.warning("views.open failed: %s", err.response.get("error"))
        return None


def _show(client: WebClient, view_id: str, view: Any, title: str) -> None:
    """Replace the loading modal; if Slack refuses the view, replace it with one saying so."""
    try:
        client.views_update(view_id=view_id, view=view.to_dict())
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


class _Lazy:
    """A view built only inside `_show`, so a builder that raises is caught there."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build

    def to_dict(self) -> dict[str, Any]:
        return self._build().to_dict()  # type: ignore[no-any-return]


def open_edit_modal(services: Services) -> Listener:
    """Edit button: a modal prefilled from the post as the provider has it now."""

    def handle_edit(ack: Ack, context: BoltContext, client: WebClient) -> None:
        ack()
        click = _click(context, services)
        post_id, user, channel = click.post_id, click.user, click.channel
        if post_id is None:
            _tell(client, channel, user, escape(click.problem or ""))
            return
        if not services.settings.editors_can_edit:
            refusal = services.posts.refuse_non_approver(post_id, user, "edit")
            if refusal:
                _tell(client, channel, user, refusal)
                return
        title = "Edit draft"
        view_id = _open_loading(client, click.trigger_id, title)
        if view_id is None:
            return
        try:
            post = services.posts.refresh_for_edit(post_id)
        except LookupError:
            _show_notice(client, view_id, title, notices.unknown_post())
            return
        except ApiError as err:
            _show_notice(client, view_id, title, fmt("⚠️ Couldn't load the post. {message}", message=err.user_message))
            return
        except Exception:  # noqa: BLE001 - never leave the person looking at "Loading…"
            log.exception("loading post %s for the edit modal failed", post_id)
            _show_notice(client, view_id, title, Mrkdwn("⚠️ Greenlight couldn't load this post just now. Nothing was changed; please try again."))
            return
        if post.status != PostStatus.DRAFT or post.pending_action:
            _show_notice(client, view_id, title, services.posts.why_not(post, PendingAction.EDIT))
            return
        assert post.id is not None
        builder = services.edit_modals.get(post.provider)
        if builder is not None:
            _show(client, view_id, _Lazy(lambda: builder(post)), title)
        else:
            _show(client, view_id, _Lazy(lambda: edit_modal(post.id or 0, Platform(post.platform),
                                                            PostContent.from_dict(post.content))), title)

    return handle_edit


def _user_tz(client: WebClient, user: str) -> tuple[str, str]:
    try:
        info = client.users_info(user=user)["user"]
        return str(info.get("tz") or "UTC"), str(info.get("tz_label") or info.get("tz") or "UTC")
    except (SlackApiError, KeyError) as err:
        log.warning("users.info failed; scheduling in UTC: %s", err)
        return "UTC", "UTC"


def open_schedule_modal(services: Services) -> Listener:
    """Schedule button: a date-time picker in the clicker's time zone."""

    def handle_schedule(ack: Ack, context: BoltContext, client: WebClient) -> None:
        ack()
        click = _click(context, services)
        post_id, user, channel = click.post_id, click.user, click.channel
        if post_id is None:
            _tell(client, channel, user, escape(click.problem or ""))
            return
        refusal = services.posts.refuse_non_approver(post_id, user, "schedule")
        if refusal:
            _tell(client, channel, user, refusal)
            return
        title = "Schedule post"
        view_id = _open_loading(client, click.trigger_id, title)
        if view_id is None:
            return
        try:
            with session_scope(services.engine) as session:
                post = get_post(session, post_id)
                refusal = (
                    notices.unknown_post() if post is None
                    else None if services.posts.can_start(post, PendingAction.SCHEDULE)
                    else services.posts.why_not(post, PendingAction.SCHEDULE)
                )
        except Exception:  # noqa: BLE001 - never leave the person looking at "Loading…"
            log.exception("loading post %s for the schedule modal failed", post_id)
            refusal = notices.cannot_save_now()
        if refusal is not None:
            _show_notice(client, view_id, title, refusal)
            return
        tz_name, tz_label = _user_tz(client, user)
        # The default must itself be valid: the next full hour that is at least 5 minutes away.
        initial = next_full_hour(utcnow() + timedelta(minutes=5), tz_name)
        _show(client, view_id, _Lazy(lambda: schedule_modal(post_id, tz_name, tz_label, initial)), title)

    return handle_schedule


def open_cancel_modal(services: Services) -> Listener:
    """Cancel button: a confirmation modal with an optional reason."""

    def handle_cancel(ack: Ack, context: BoltContext, client: WebClient) -> None:
        ack()
        click = _click(context, services)
        post_id, user, channel = click.post_id, click.user, click.channel
        if post_id is None:
            _tell(client, channel, user, escape(click.problem or ""))
            return
        refusal = services.posts.refuse_non_approver(post_id, user, "cancel")
        if refusal:
            _tell(client, channel, user, refusal)
            return
        with session_scope(services.engine) as session:
            post = get_post(session, post_id)
            if post is None:
                _tell(client, channel, user, notices.unknown_post())
                return
            if not services.posts.can_start(post, PendingAction.CANCEL):
                _tell(client, channel, user, services.posts.why_not(post, PendingAction.CANCEL))
                return
            label, status = Platform(post.platform).label, post.status
        try:
            client.views_open(trigger_id=click.trigger_id, view=cancel_modal(post_id, label, status).to_dict())
        except SlackApiError as err:
            log.warning("views.open failed: %s", err.response.get("error"))

    return handle_cancel


def acknowledge_link(ack: Ack) -> None:
    """Link buttons ("Open card") navigate in the client; Slack still expects an ack."""
    ack()
