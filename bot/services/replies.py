"""Thread replies and ephemeral notes, through the job queue.

A post's thread replies (approved, scheduled, published with its link, failed and why) go to the
thread its card lives in: the clip's thread, where they name the platform, since the clip's other
platforms talk there too. Replies carry metadata with their job id and are looked for in the thread
before a retry posts them again. Ephemerals can't be looked up; they are sent at most once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine, update
from sqlmodel import col

from bot.db import get_post, session_scope
from bot.domain import Platform
from bot.jobs import Retry
from bot.models import Job, utcnow
from bot.services.cards import SLACK_MESSAGE
from bot.services.identity import SlackIdentity
from bot.services.slackio import (
    SETTLE_SECONDS,
    ChannelReader,
    Pacer,
    outcome_unknown,
    retry_after,
    slack_errors,
)
from bot.slack.mrkdwn import Mrkdwn, fmt, truncate

log = logging.getLogger(__name__)

REPLY_EVENT = "greenlight_reply"


class SlackReplies:
    """The job handler that sends thread replies and ephemeral notes."""

    def __init__(self, engine: Engine, slack: WebClient, identity: SlackIdentity, pacer: Pacer,
                 reader: ChannelReader, *, settle_seconds: float = SETTLE_SECONDS) -> None:
        self.engine = engine
        self.slack = slack
        self.identity = identity
        self.pacer = pacer
        self.reader = reader
        self.settle_seconds = settle_seconds

    def handlers(self) -> dict[str, Callable[[Job], None]]:
        """Job kind -> handler."""
        return {SLACK_MESSAGE: self.send_message}

    def send_message(self, job: Job) -> None:
        """Send a thread reply (once the card exists, exactly once) or an ephemeral message (at most once)."""
        payload = job.payload
        # Built by bot.slack.notices (escaped); cut without breaking a link or an entity.
        text = truncate(str(payload.get("text", "")), 3900)
        with slack_errors(self.identity):
            if payload.get("mode") == "ephemeral":
                self._send_ephemeral(job, text)
            else:
                self._send_reply(job, text)

    def _send_reply(self, job: Job, text: Mrkdwn) -> None:
        assert job.post_id is not None and job.id is not None
        with session_scope(self.engine) as session:
            post = get_post(session, job.post_id)
            if post is None:
                return
            channel, thread, platform = post.channel_id, post.thread_ts or post.message_ts, Platform(post.platform)
            shared_thread = post.thread_ts is not None
        if thread is None or channel is None:
            raise Retry("card not posted yet", 1.0)
        if shared_thread:
            text = truncate(fmt("*{platform}* · {text}", platform=platform.label, text=text), 3900)
        if job.payload.get("attempted_at"):
            attempted = datetime.fromisoformat(str(job.payload["attempted_at"]))
            wait = self.settle_seconds - (utcnow() - attempted).total_seconds()
            if wait > 0:
                raise Retry("reply outcome unknown; waiting for Slack to settle", wait)
            if self.reader.find(channel, REPLY_EVENT, "job_id", job.id, since=attempted, thread_ts=thread):
                log.info("thread reply of job %s was posted by an earlier attempt", job.id)
                return
        wait = self.pacer.reserve(channel)
        if wait > 0:
            raise Retry("channel paced after rate limit", wait)
        self._mark(job)
        try:
            self.slack.chat_postMessage(
                channel=channel, thread_ts=thread, text=text, unfurl_links=False,
                metadata={"event_type": REPLY_EVENT, "event_payload": {"job_id": job.id, "post_id": job.post_id}},
            )
        except SlackApiError as err:
            limited = retry_after(err)
            if limited is not None:
                self.pacer.limited(channel, limited)
                self._unmark(job)  # a 429 means Slack did nothing: no need to look next time
                raise Retry("slack rate limited", limited) from err
            if err.response.get("error") in ("channel_not_found", "not_in_channel", "thread_not_found"):
                log.warning("could not post a thread reply for post %s: %s", job.post_id, err.response.get("error"))
                return
            if outcome_unknown(err):
                raise Retry("reply outcome unknown", self.settle_seconds) from err
            raise
        except Exception as exc:
            if outcome_unknown(exc):
                raise Retry("reply outcome unknown", self.settle_seconds) from exc
            raise

    def _send_ephemeral(self, job: Job, text: str) -> None:
        payload = job.payload
        if payload.get("attempted_at"):
            # An ephemeral can't be looked up afterwards; a second copy would be noise.
            log.warning("ephemeral note of job %s may not have arrived (Slack gave no answer)", job.id)
            return
        self._mark(job)
        try:
            self.slack.chat_postEphemeral(channel=payload["channel"], user=payload["user"], text=text)
        except SlackApiError as err:
            wait = retry_after(err)
            if wait is not None:
                self._unmark(job)
                raise Retry("slack rate limited", wait) from err
            if err.response.get("error") in ("user_not_in_channel", "channel_not_found", "not_in_channel"):
                log.warning("could not show a note to %s: %s", payload.get("user"), err.response.get("error"))
                return
            raise

    def _mark(self, job: Job) -> None:
        """Record on the job (committed) that a message is about to be sent, so a retry looks first."""
        self._save_payload(job, {**job.payload, "attempted_at": utcnow().isoformat()})

    def _unmark(self, job: Job) -> None:
        self._save_payload(job, {k: v for k, v in job.payload.items() if k != "attempted_at"})

    def _save_payload(self, job: Job, payload: dict[str, object]) -> None:
        job.payload = payload
        with session_scope(self.engine) as session:
            session.execute(
                update(Job).where(col(Job.id) == job.id).values(payload=payload)
                .execution_options(synchronize_session=False)
            )
