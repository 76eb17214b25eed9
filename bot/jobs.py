"""The durable job queue and its worker threads.

A job row is written in the same transaction as the state change that needs it (outbox), so a
crash after a click was acknowledged loses nothing. Workers claim due jobs with a compare-and-set
lease (`UPDATE job ... WHERE id = :id AND lease expired`), so two replicas never run the same job
at once; a worker that dies mid-job simply lets its lease expire and another one picks it up.

A job slower than its lease (a provider that takes its time) must not be taken over while it runs:
a heartbeat renews the lease of every running job every third of a lease, so only a dead worker's
jobs are ever picked up again.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.db import session_scope
from bot.logs import log_context
from bot.models import Job, utcnow

log = logging.getLogger(__name__)


class Retry(Exception):
    """Raised by a job handler to run the job again after `delay` seconds."""

    def __init__(self, reason: str, delay: float) -> None:
        super().__init__(reason)
        self.delay = delay


def enqueue(
    session: Session,
    kind: str,
    *,
    post_id: int | None = None,
    payload: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
    delay: float = 0.0,
    priority: int = 5,
) -> bool:
    """Add a job in the caller's transaction; False if a pending job with `dedupe_key` exists."""
    job = Job(
        kind=kind,
        post_id=post_id,
        payload=payload or {},
        dedupe_key=dedupe_key,
        priority=priority,
        run_at=utcnow() + timedelta(seconds=delay),
    )
    if dedupe_key is None:
        session.add(job)
        return True
    try:
        with session.begin_nested():
            session.add(job)
            session.flush()
        return True
    except IntegrityError:
        return False


@dataclass
class WorkerStats:
    """Counters exposed for tests and benchmarks."""

    done: int = 0
    retried: int = 0
    failed: int = 0


Handler = Callable[[Job], None]


class JobRunner:
    """Claims due jobs and runs their handlers on a few threads."""

    def __init__(
        self,
        engine: Engine,
        handlers: dict[str, Handler],
        *,
        threads: int = 4,
        poll_seconds: float = 0.5,
        lease_seconds: float = 60.0,
        max_attempts: int = 8,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.handlers = handlers
        self.threads = threads
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        # What time it is for due dates (tests move it forward instead of rewriting rows).
        self.clock = clock
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.stats = WorkerStats()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.on_give_up: Callable[[Job, BaseException], None] | None = None
        # Jobs this process is running right now, whose leases the heartbeat keeps alive.
        self._running: set[int] = set()
        self._running_lock = threading.Lock()
        self.last_heartbeat: float | None = None

    def start(self) -> None:
        """Start the worker threads."""
        self._stop.clear()
        for n in range(self.threads):
            t = threading.Thread(target=self._loop, name=f"greenlight-worker-{n}", daemon=True)
            t.start()
            self._threads.append(t)
        beat = threading.Thread(target=self._heartbeat_loop, name="greenlight-job-heartbeat", daemon=True)
        beat.start()
        self._threads.append(beat)

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                self.heartbeat()
            except Exception:  # noqa: BLE001 - the next beat tries again; a lapsed lease is the fallback
                log.exception("job lease heartbeat failed")

    def heartbeat(self) -> int:
        """Extend the leases of the jobs this process is running; returns how many were extended."""
        with self._running_lock:
            running = sorted(self._running)
        self.last_heartbeat = time.monotonic()
        if not running:
            return 0
        with session_scope(self.engine) as session:
            result = session.execute(
                update(Job)
                .where(col(Job.id).in_(running), col(Job.locked_by) == self.worker_id, col(Job.status) == "running")
                .values(locked_until=utcnow() + timedelta(seconds=self.lease_seconds))
                .execution_options(synchronize_session=False)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the workers to finish their current job and stop."""
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()

    def wake(self) -> None:
        """New work was enqueued: stop waiting for the next poll."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                ran = self.run_once()
            except Exception:  # noqa: BLE001 - a broken DB must not kill the worker thread
                log.exception("job loop failed; retrying")
                ran = False
            if not ran:
                self._wake.wait(self._idle_wait())
                self._wake.clear()

    def _idle_wait(self) -> float:
        """Sleep until the next job is due (a paced card, a Retry-After), at most one poll."""
        try:
            with session_scope(self.engine) as session:
                next_run = session.exec(
                    select(Job.run_at)
                    .where(col(Job.status) == "pending")
                    .order_by(col(Job.run_at))
                    .limit(1)
                ).first()
        except Exception:  # noqa: BLE001 - fall back to the poll interval
            return self.poll_seconds
        if next_run is None:
            return self.poll_seconds
        return min(self.poll_seconds, max(0.005, (next_run - self.clock()).total_seconds()))

    def claim(self) -> Job | None:
        """Claim one due job (lease it to this worker), or None."""
        now = self.clock()
        # Leases run on the wall clock, whatever time the injected clock says it is: a lease guards
        # against a dead worker, and time a test moves forward must not make a live one look dead.
        wall = utcnow()
        with session_scope(self.engine) as session:
            candidates = list(
                session.exec(
                select(Job.id)
                .where(
                    col(Job.status).in_(("pending", "running")),
                    Job.run_at <= now,
                    or_(col(Job.locked_until).is_(None), col(Job.locked_until) < wall),
                )
                .order_by(col(Job.priority), col(Job.run_at))
                .limit(8)
                ).all()
            )
        random.shuffle(candidates)  # spread contention between workers and replicas
        for job_id in candidates:
            with session_scope(self.engine) as session:
                result = session.execute(
                    update(Job)
                    .where(
                        col(Job.id) == job_id,
                        col(Job.status).in_(("pending", "running")),
                        # Re-checked here: another worker may have put it back with a delay since.
                        col(Job.run_at) <= now,
                        or_(col(Job.locked_until).is_(None), col(Job.locked_until) < wall),
                    )
                    .values(
                        status="running",
                        locked_by=self.worker_id,
                        locked_until=wall + timedelta(seconds=self.lease_seconds),
                        attempts=Job.attempts + 1,
                    )
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    job = session.get(Job, job_id)
                    if job is not None:
                        session.expunge(job)
                        return job
        return None

    def run_once(self) -> bool:
        """Claim and run one job; False when nothing was due."""
        job = self.claim()
        if job is None:
            return False
        handler = self.handlers.get(job.kind)
        assert job.id is not None
        with self._running_lock:
            self._running.add(job.id)
        try:
            with log_context(job_id=job.id, job_kind=job.kind, post_id=job.post_id):
                self._run(job, handler)
        finally:
            with self._running_lock:
                self._running.discard(job.id)
        return True

    def _run(self, job: Job, handler: Handler | None) -> None:
        try:
            if handler is None:
                raise RuntimeError(f"no handler for job kind {job.kind!r}")
            handler(job)
        except Retry as r:
            self._finish(job, status="pending", delay=r.delay, error=str(r))
            self.stats.retried += 1
        except Exception as exc:  # noqa: BLE001 - every failure is recorded on the job
            if job.attempts >= self.max_attempts:
                log.exception("job %s (%s) failed for good after %s attempts", job.id, job.kind, job.attempts)
                self._finish(job, status="failed", error=f"{type(exc).__name__}: {exc}")
                self.stats.failed += 1
                if self.on_give_up is not None:
                    try:
                        self.on_give_up(job, exc)
                    except Exception:  # noqa: BLE001
                        log.exception("give-up hook failed for job %s", job.id)
            else:
                delay = min(300.0, 2.0 ** job.attempts) * (0.5 + random.random())
                log.warning("job %s (%s) failed (%s); retry in %.1fs", job.id, job.kind, exc, delay, exc_info=True)
                self._finish(job, status="pending", delay=delay, error=f"{type(exc).__name__}: {exc}")
                self.stats.retried += 1
        else:
            self._finish(job, status="done")
            self.stats.done += 1

    def _finish(self, job: Job, *, status: str, delay: float = 0.0, error: str | None = None) -> None:
        now = self.clock()
        values: dict[str, Any] = {"status": status, "locked_by": None, "locked_until": None}
        if status == "pending":
            values["run_at"] = now + timedelta(seconds=delay)
        else:
            values["finished_at"] = now
        if error is not None:
            values["last_error"] = error[:2000]
        with session_scope(self.engine) as session:
            try:
                # Only the lease holder may finish the job (its lease may have been taken over).
                session.execute(
                    update(Job)
                    .where(col(Job.id) == job.id, col(Job.locked_by) == self.worker_id)
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
                session.flush()
            except IntegrityError:
                # A pending duplicate (same dedupe key) already exists: this one is redundant.
                session.rollback()
                session.execute(
                    update(Job)
                    .where(col(Job.id) == job.id)
                    .values(status="done", finished_at=now, locked_by=None, locked_until=None)
                    .execution_options(synchronize_session=False)
                )
                if status == "pending" and job.dedupe_key is not None:
                    # The surviving job inherits this one's wait (e.g. Slack's Retry-After), on
                    # every replica, so merging never makes a retry come early.
                    session.execute(
                        update(Job)
                        .where(
                            col(Job.dedupe_key) == job.dedupe_key,
                            col(Job.status) == "pending",
                            col(Job.run_at) < values["run_at"],
                        )
                        .values(run_at=values["run_at"])
                        .execution_options(synchronize_session=False)
                    )


class PeriodicLoop:
    """A daemon thread that calls `run_once()` every `period` seconds until stopped.

    Subclasses take a lease inside `run_once()` when only one replica may do the work.
    """

    name = "periodic loop"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def period(self) -> float:
        """Seconds between passes."""
        raise NotImplementedError

    def run_once(self) -> int:
        """One pass; returns how much work it queued."""
        raise NotImplementedError

    def start(self) -> None:
        """Run in a background thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=f"greenlight-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread."""
        self._stop.set()
        if self._thread:
            self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - keep the loop alive across transient DB errors
                log.exception("%s pass failed", self.name)
