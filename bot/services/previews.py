"""A clip's video, playable in its thread, so nobody approves a caption without seeing what it goes with.

One durable job per clip (dedupe key `preview:<clip id>`), enqueued when the clip is first carded:
1. ask the provider where the video stands (`Provider.video`): Choppity renders it (started on the
   first ask, polled every 5 s within its request budget), Reap hands over its `clipUrl`;
2. with CLIP_PREVIEW=link, put the link on the clip's message and stop;
3. otherwise stream the file to a temporary file on disk (never into memory, and never past the
   CLIP_PREVIEW_MAX_MB cap), then through Slack's external upload flow into the clip's thread:
   `files.getUploadURLExternal` → the bytes, streamed from disk → `files.completeUploadExternal`.

Exactly once: only the job's lease holder works on a clip, a clip whose preview is settled is never
touched again, and when the answer to `files.completeUploadExternal` (the one call that makes the
video appear) is lost, the next attempt first looks in the thread for the file before completing a
new upload. Too big, or still failing after a few attempts: a link instead, with the reason on the
clip's message. Every state change re-renders the clip's message in the same transaction.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any

import httpx
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine
from sqlmodel import Session

from bot.config import Settings
from bot.db import session_scope
from bot.domain import PreviewState, Video
from bot.jobs import Retry, enqueue
from bot.models import Clip, Job, utcnow
from bot.providers.errors import ApiError, ApiRejected
from bot.providers.http import next_delay
from bot.providers.registry import Providers
from bot.services.cards import request_clip_sync
from bot.services.identity import SlackIdentity
from bot.services.slackio import ChannelReader, retry_after, slack_errors
from bot.slack.mrkdwn import safe_url

log = logging.getLogger(__name__)

PREVIEW_JOB = "clip_preview"
MB = 1024 * 1024
CHUNK = 256 * 1024
# A render that isn't done after this long is not coming soon enough to help a review.
RENDER_DEADLINE = timedelta(minutes=30)
# Failed downloads or uploads before the clip gets a link instead.
TRANSFER_ATTEMPTS = 3
# Provider outages while asking for the video, before giving up on a preview.
PROVIDER_ATTEMPTS = 8
# Slack refusals that another attempt won't change: the clip gets a link, and the reason.
PERMANENT_SLACK_ERRORS = frozenset({
    "missing_scope", "not_allowed_token_type", "invalid_arguments", "channel_not_found", "not_in_channel",
    "is_archived", "restricted_action", "file_uploads_disabled", "file_upload_size_restricted",
})
FINAL = frozenset({PreviewState.UPLOADED, PreviewState.LINKED, PreviewState.FAILED, PreviewState.OFF})
THREAD_COMMENT = "🎞 The clip's video: watch it before you decide on its drafts."


def request_preview(session: Session, clip_id: int) -> None:
    """Queue the clip's preview job (in the caller's transaction); collapses with a pending one."""
    enqueue(session, PREVIEW_JOB, payload={"clip_id": clip_id}, dedupe_key=f"preview:{clip_id}", priority=7)


class TooBig(Exception):
    """The video is over the upload cap (`size` bytes, or at least that many when `partial`)."""

    def __init__(self, size: int, *, partial: bool) -> None:
        super().__init__(f"{size} bytes")
        self.size = size
        self.partial = partial


class TransferFailed(Exception):
    """A download or an upload of the video failed; the message is safe to show (no URL in it)."""


@dataclass
class _Clip:
    id: int
    provider: str
    ref: str
    project_id: str | None
    title: str
    channel: str
    thread_ts: str | None
    state: PreviewState
    preview: dict[str, Any]


class Previews:
    """The job that brings each clip's video into its thread (or links it), once."""

    def __init__(self, engine: Engine, slack: WebClient, settings: Settings, identity: SlackIdentity,
                 providers: Providers, reader: ChannelReader, *, http: httpx.Client | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.slack = slack
        self.settings = settings
        self.identity = identity
        self.providers = providers
        self.reader = reader
        # No credentials on this client: it fetches the provider's signed file URLs and Slack's upload URL.
        self.http = http or httpx.Client(timeout=httpx.Timeout(settings.http_timeout_seconds * 3,
                                                               connect=settings.http_timeout_seconds),
                                         follow_redirects=True)
        self.clock = clock

    def handlers(self) -> dict[str, Callable[[Job], None]]:
        """Job kind -> handler."""
        return {PREVIEW_JOB: self.run}

    def close(self) -> None:
        """Close the download/upload connection pool."""
        self.http.close()

    # -- the job ------------------------------------------------------------------------------------

    def run(self, job: Job) -> None:
        """One step of a clip's preview: settle it, or raise Retry to come back (render under way…)."""
        clip = self._load(int(job.payload["clip_id"]))
        if clip is None or clip.state in FINAL:
            return  # settled already: never a second video
        if self.settings.clip_preview == "off":
            self._settle(clip, PreviewState.OFF)
            return
        if clip.thread_ts is None:
            raise Retry("the clip's message isn't in the channel yet", 2.0)
        if clip.preview.get("completing") and self._already_shared(clip):
            self._settle(clip, PreviewState.UPLOADED, file_id=clip.preview.get("file_id"))
            return
        video = self._video(job, clip)
        if video is None:
            return
        if self.settings.clip_preview == "link":
            self._settle(clip, PreviewState.LINKED, link=video.url, expires=video.expires_at)
            return
        self._upload(clip, video)

    def _video(self, job: Job, clip: _Clip) -> Video | None:
        """Where the video stands; None once the preview was settled here (no video will come)."""
        provider = self.providers.get(clip.provider)
        if provider is None:
            self._settle(clip, PreviewState.FAILED, note=f"{clip.provider} is no longer set up in Greenlight")
            return None
        started = parse_time(clip.preview.get("started_at"))
        if started is None:
            started = self.clock()
            self._update(clip, {"started_at": started.isoformat()})
        try:
            video = provider.video(clip.ref, project_id=clip.project_id)
        except ApiRejected as exc:
            self._settle(clip, PreviewState.FAILED, note=f"{provider.title} refused: {exc.user_message}")
            return None
        except ApiError as exc:
            if job.attempts >= PROVIDER_ATTEMPTS:
                self._settle(clip, PreviewState.FAILED, note=f"{provider.title} didn't answer: {exc.user_message}")
                return None
            raise Retry(exc.user_message, next_delay(exc, job.attempts) or 5.0) from exc
        if video.unavailable is not None:
            self._settle(clip, PreviewState.FAILED, note=video.unavailable)
            return None
        if video.url is None or safe_url(video.url) is None:
            if video.url is not None:
                self._settle(clip, PreviewState.FAILED, note=f"{provider.title} gave a video address that isn't a web link")
                return None
            if self.clock() - started > RENDER_DEADLINE:
                minutes = int(RENDER_DEADLINE.total_seconds() // 60)
                self._settle(clip, PreviewState.FAILED, note=f"the video wasn't ready after {minutes} minutes")
                return None
            self._set_state(clip, PreviewState.RENDERING)
            raise Retry("the clip's video is still being made", max(1.0, video.wait_seconds or 5.0))
        return video

    # -- upload -------------------------------------------------------------------------------------

    def _upload(self, clip: _Clip, video: Video) -> None:
        assert video.url is not None and clip.thread_ts is not None
        self._set_state(clip, PreviewState.UPLOADING)
        cap = self.settings.clip_preview_max_mb * MB
        with tempfile.TemporaryFile(prefix="greenlight-preview-") as spool:
            try:
                size = self._download(video.url, spool, cap)
            except TooBig as big:
                limit = self.settings.clip_preview_max_mb
                shown = "" if big.partial else f" ({_mb(big.size)})"
                self._settle(clip, PreviewState.LINKED, link=video.url, expires=video.expires_at,
                             note=f"the video{shown} is over the {limit} MB upload limit")
                return
            except TransferFailed as exc:
                self._transfer_failed(clip, video, f"couldn't download it: {exc}")
                return
            try:
                with slack_errors(self.identity):
                    file_id = self._send(clip, spool, size)
                    # Recorded before the call that makes it visible: if its answer is lost, the next
                    # attempt looks for this file in the thread instead of completing another.
                    self._update(clip, {"file_id": file_id, "completing": True})
                    self.slack.files_completeUploadExternal(
                        files=[{"id": file_id, "title": clip.title}], channel_id=clip.channel,
                        thread_ts=clip.thread_ts, initial_comment=THREAD_COMMENT,
                    )
            except TransferFailed as exc:
                self._transfer_failed(clip, video, f"couldn't upload it to Slack: {exc}")
                return
            except SlackApiError as err:
                self._slack_refused(clip, video, err)
                return
        self._settle(clip, PreviewState.UPLOADED, file_id=file_id)
        log.info("clip %s: video uploaded into its thread (%s)", clip.id, _mb(size))

    def _download(self, url: str, spool: IO[bytes], cap: int) -> int:
        """Stream the provider's file to `spool`, never past `cap` bytes; its size."""
        size = 0
        try:
            with self.http.stream("GET", url) as response:
                if response.status_code != 200:
                    raise TransferFailed(f"the file answered HTTP {response.status_code}")
                declared = response.headers.get("content-length")
                expected = int(declared) if declared and declared.isdigit() else None
                if expected is not None and expected > cap:
                    raise TooBig(expected, partial=False)
                for piece in response.iter_bytes(CHUNK):
                    size += len(piece)
                    if size > cap:
                        raise TooBig(size, partial=True)
                    spool.write(piece)
        except httpx.HTTPError as exc:
            raise TransferFailed(f"{type(exc).__name__} after {_mb(size)}") from exc
        if size == 0:
            raise TransferFailed("the file is empty")
        if expected is not None and size != expected:
            raise TransferFailed(f"the download ended after {_mb(size)} of {_mb(expected)}")
        return size

    def _send(self, clip: _Clip, spool: IO[bytes], size: int) -> str:
        """files.getUploadURLExternal, then the bytes streamed from disk; the new file's id."""
        answer = self.slack.files_getUploadURLExternal(filename=_filename(clip), length=size,
                                                       alt_txt=f"Video of {clip.title}"[:1000])
        file_id, upload_url = str(answer["file_id"]), str(answer["upload_url"])
        spool.seek(0)

        def pieces() -> Iterator[bytes]:
            while piece := spool.read(CHUNK):
                yield piece

        try:
            response = self.http.post(upload_url, content=pieces(),
                                      headers={"Content-Type": "application/octet-stream",
                                               "Content-Length": str(size)})
        except httpx.HTTPError as exc:
            raise TransferFailed(type(exc).__name__) from exc
        if response.status_code != 200:
            raise TransferFailed(f"Slack's upload address answered HTTP {response.status_code}")
        return file_id

    def _already_shared(self, clip: _Clip) -> bool:
        """Whether the file whose completion went unanswered is in the clip's thread after all."""
        file_id = clip.preview.get("file_id")
        if not file_id or clip.thread_ts is None:
            return False
        with slack_errors(self.identity):
            return self.reader.thread_has_file(clip.channel, clip.thread_ts, str(file_id))

    def _transfer_failed(self, clip: _Clip, video: Video, reason: str) -> None:
        failures = int(clip.preview.get("failures") or 0) + 1
        if failures < TRANSFER_ATTEMPTS:
            self._update(clip, {"failures": failures})
            raise Retry(reason, 5.0 * failures)
        self._settle(clip, PreviewState.LINKED, link=video.url, expires=video.expires_at, note=reason)

    def _slack_refused(self, clip: _Clip, video: Video, err: SlackApiError) -> None:
        error = str(err.response.get("error") or "error")
        if error == "ratelimited":
            raise Retry("Slack asked us to slow down", retry_after(err) or 30.0) from err
        if error in PERMANENT_SLACK_ERRORS:
            self._settle(clip, PreviewState.LINKED, link=video.url, expires=video.expires_at,
                         note=f"Slack refused the upload ({error})")
            return
        self._transfer_failed(clip, video, f"Slack couldn't take the upload ({error})")

    # -- the clip row ---------------------------------------------------------------------------------

    def _load(self, clip_id: int) -> _Clip | None:
        with session_scope(self.engine) as session:
            row = session.get(Clip, clip_id)
            if row is None:
                return None
            assert row.id is not None
            provider = self.providers.get(row.provider)
            title = row.title or f"{provider.title if provider else row.provider} clip {row.ref[:24]}"
            return _Clip(id=row.id, provider=row.provider, ref=row.ref, project_id=row.project_id,
                         title=title[:200], channel=row.channel_id or self.settings.slack_channel_id,
                         thread_ts=row.message_ts, state=PreviewState(row.preview_state), preview=dict(row.preview or {}))

    def _update(self, clip: _Clip, values: dict[str, Any]) -> None:
        with session_scope(self.engine) as session:
            row = session.get(Clip, clip.id)
            if row is not None:
                row.preview = {**(row.preview or {}), **values}
                clip.preview.update(values)

    def _set_state(self, clip: _Clip, state: PreviewState) -> None:
        if clip.state is state:
            return
        with session_scope(self.engine) as session:
            row = session.get(Clip, clip.id)
            if row is not None and PreviewState(row.preview_state) not in FINAL:
                row.preview_state = state.value
                request_clip_sync(session, clip.id)
        clip.state = state

    def _settle(self, clip: _Clip, state: PreviewState, *, link: str | None = None, expires: datetime | None = None,
                note: str | None = None, file_id: str | None = None) -> None:
        """The preview's final state, shown on the clip's message."""
        with session_scope(self.engine) as session:
            row = session.get(Clip, clip.id)
            if row is None:
                return
            preview = {k: v for k, v in (row.preview or {}).items() if k not in ("completing",)}
            preview.update({"note": note, "link": link, "expires_at": expires.isoformat() if expires else None})
            if file_id:
                preview["file_id"] = file_id
            row.preview = preview
            row.preview_state = state.value
            request_clip_sync(session, clip.id)
        if state in (PreviewState.LINKED, PreviewState.FAILED) and note:
            log.info("clip %s: preview %s (%s)", clip.id, state.value, note)


def parse_time(value: Any) -> datetime | None:
    """A datetime the preview job stored as ISO text, or None."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _mb(size: int) -> str:
    return f"{size / MB:.1f} MB"


def _filename(clip: _Clip) -> str:
    """A plain file name for Slack: the clip's title, made safe, with .mp4."""
    stem = re.sub(r"[^A-Za-z0-9._ -]+", "", clip.title).strip(" .") or f"clip-{clip.id}"
    return f"{stem[:80]}.mp4"
