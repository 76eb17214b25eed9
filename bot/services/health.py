"""Liveness and readiness that tell the truth.

`/livez` says the process and its event loop answer. `/readyz` says whether this instance can do its
job right now: the database is reachable *and writable* (checked on a fresh connection, so a
deleted, read-only or locked SQLite file is noticed even while pooled connections still work on
the old inode), migrations are current, the job queue is moving, and Slack still accepts the bot
token. A monitor thread probes once a second, so readiness, clicks and webhooks learn about a
fault within two seconds without waiting on the broken database themselves.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from bot import metrics
from bot.db import MIGRATIONS_DIR
from bot.models import utcnow
from bot.services.identity import SlackIdentity

log = logging.getLogger(__name__)

PROBE_INTERVAL = 1.0
PROBE_TIMEOUT = 0.8
# A due job left unclaimed this long means the workers are not keeping up (or not running).
QUEUE_STALL_SECONDS = 300.0


@dataclass(frozen=True)
class Report:
    """One round of checks; `problems` name what is wrong in words safe for a public endpoint."""

    checks: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    at: float = 0.0

    @property
    def ready(self) -> bool:
        """True when every check passed."""
        return not self.problems

    @property
    def database_ok(self) -> bool:
        """Whether the database can take writes (clicks and webhooks are refused fast otherwise)."""
        return self.checks.get("database") == "ok"


def migration_head() -> str | None:
    """The newest Alembic revision shipped with this build."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg).get_current_head()


class Health:
    """Probes the database, migrations, job queue and Slack token; the latest report is always at hand."""

    def __init__(self, engine: Engine, identity: SlackIdentity, *, stall_seconds: float = QUEUE_STALL_SECONDS) -> None:
        self.engine = engine
        self.identity = identity
        self.stall_seconds = stall_seconds
        self._head = migration_head()
        url = make_url(str(engine.url))
        self._sqlite_path: str | None = None
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            self._sqlite_path = str(Path(str(url.database)).resolve())
        self._report = Report(checks={"database": "unknown"}, problems=("starting",), at=0.0)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the latest report --------------------------------------------------------------------------

    def report(self) -> Report:
        """The latest report (probed at most a second ago while the monitor runs)."""
        with self._lock:
            report = self._report
        if report.at == 0.0 or time.monotonic() - report.at > 3 * PROBE_INTERVAL:
            # No monitor (tests, one-off commands) or it is stuck: probe now.
            report = self.probe()
        return report

    def database_ok(self) -> bool:
        """Whether writes can be taken right now."""
        return self.report().database_ok

    # -- probing ------------------------------------------------------------------------------------

    def probe(self) -> Report:
        """Run every check now and remember the result."""
        checks: dict[str, str] = {}
        problems: list[str] = []
        database = self._probe_database()
        checks["database"] = database
        if database != "ok":
            problems.append(f"database {database}")
        else:
            migrations = self._probe_migrations()
            checks["migrations"] = migrations
            if migrations != "current":
                problems.append(f"migrations {migrations}")
            queue = self._probe_queue()
            checks["job_queue"] = queue
            if queue != "moving":
                problems.append(f"job queue {queue}")
        token_error = self.identity.token_error
        checks["slack_token"] = "ok" if token_error is None else f"refused ({token_error})"
        if token_error is not None:
            problems.append(f"Slack refuses the bot token ({token_error})")
        report = Report(checks=checks, problems=tuple(problems), at=time.monotonic())
        metrics.set_ready(report.ready)
        with self._lock:
            changed = report.problems != self._report.problems
            self._report = report
        if changed:
            if report.problems:
                log.error("not ready: %s", "; ".join(report.problems))
            else:
                log.info("ready: database, migrations, job queue and Slack token all fine")
        return report

    def _probe_database(self) -> str:
        if self._sqlite_path is not None:
            return self._probe_sqlite(self._sqlite_path)
        try:
            with self.engine.connect() as conn:
                with conn.begin() as tx:
                    conn.execute(text(f"SET LOCAL statement_timeout = {int(PROBE_TIMEOUT * 1000)}"))
                    conn.execute(text("SELECT 1 FROM lease LIMIT 1"))
                    # A write, rolled back: a read-only replica or a full disk shows up here.
                    conn.execute(text("UPDATE lease SET holder = holder WHERE name = '__probe__'"))
                    tx.rollback()
            return "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means "can't use it now"
            return _reason(exc)

    @staticmethod
    def _probe_sqlite(path: str) -> str:
        if not Path(path).exists():
            return "missing (the database file was deleted or moved)"
        try:
            # mode=rw: never create a fresh empty database in place of a deleted one.
            conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=PROBE_TIMEOUT, isolation_level=None)
        except sqlite3.Error as exc:
            return _reason(exc)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT OR REPLACE INTO lease (name, holder, expires_at) VALUES ('__probe__', 'health', NULL)")
            conn.execute("ROLLBACK")
            return "ok"
        except sqlite3.Error as exc:
            return _reason(exc)
        finally:
            conn.close()

    def _probe_migrations(self) -> str:
        try:
            with self.engine.connect() as conn:
                current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except Exception as exc:  # noqa: BLE001
            return _reason(exc)
        if current == self._head:
            return "current"
        return f"behind (database at {current}, this build needs {self._head}; run `greenlight migrate`)"

    def _probe_queue(self) -> str:
        stalled_before = utcnow() - timedelta(seconds=self.stall_seconds)
        try:
            with self.engine.connect() as conn:
                oldest = conn.execute(
                    text("SELECT MIN(run_at) FROM job WHERE status = 'pending' AND run_at < :before"),
                    {"before": stalled_before.replace(tzinfo=None) if self._sqlite_path else stalled_before},
                ).scalar()
        except Exception as exc:  # noqa: BLE001
            return _reason(exc)
        if oldest is None:
            return "moving"
        return f"stalled (jobs due for over {int(self.stall_seconds)} s are not being run)"

    # -- the monitor thread -------------------------------------------------------------------------

    def start(self) -> None:
        """Probe once a second in the background."""
        self._stop.clear()
        self.probe()
        self._thread = threading.Thread(target=self._loop, name="greenlight-health", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the monitor."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.wait(PROBE_INTERVAL):
            try:
                self.probe()
            except Exception:  # noqa: BLE001 - keep probing
                log.exception("health probe failed")


def _reason(exc: BaseException) -> str:
    """A short, secret-free description of a database error."""
    message = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    lowered = message.lower()
    if "readonly" in lowered or "read-only" in lowered or "read only" in lowered:
        return "read-only"
    if "locked" in lowered or "lock timeout" in lowered or "statement timeout" in lowered:
        return "locked (another process holds it)"
    if "unable to open" in lowered or "no such file" in lowered:
        return "missing (the database file was deleted or moved)"
    if "no such table" in lowered or "does not exist" in lowered:
        return "not migrated"
    return "unreachable"
