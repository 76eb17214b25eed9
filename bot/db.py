"""Engine, migrations and the queries that must be atomic across processes.

State transitions are compare-and-set UPDATEs (`... WHERE status = :expected`) so that they hold
across replicas on PostgreSQL and across threads on SQLite, without in-process locks.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, event, make_url, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, create_engine, select

from bot.models import AuditEvent, Clip, Lease, Post, WebhookEvent, utcnow

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _never_recreate(engine: Engine, path: str | None) -> None:
    """Once the database file exists, connect only to it: if it is deleted or moved while running,
    connections fail (and readiness says the database is missing) instead of SQLite quietly creating
    an empty database in its place, which would take new writes while the real data is elsewhere."""
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    existed = {"yes": False}

    @event.listens_for(engine, "do_connect")
    def _connect_existing(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> Any:
        if existed["yes"] or os.path.exists(path):
            existed["yes"] = True
            return sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode=rw", uri=True, **cparams)
        return None  # the very first connection creates the file


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL and a busy timeout so threads wait instead of failing."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            # Writers wait up to 10 s for the lock (transactions are milliseconds long); a database
            # locked longer than that is a fault, which readiness reports within a second or two.
            connect_args={"check_same_thread": False, "timeout": 10},
            # Pooled: opening a connection per transaction costs ~4 ms in WAL mode (the last close
            # checkpoints the log), which dominated webhook ingestion in the benchmark.
            pool_size=8,
            max_overflow=24,
            pool_timeout=30,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin_immediate(conn: Any) -> None:
            # Take the write lock up front: read-then-write transactions then wait on
            # busy_timeout instead of failing with SQLITE_BUSY on lock upgrade.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        @event.listens_for(engine, "connect")
        def _sqlite_no_autobegin(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None

        _never_recreate(engine, make_url(url).database)
        return engine
    # connect_timeout: an unreachable server fails in seconds instead of the OS's TCP timeout.
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10, pool_timeout=10,
                         connect_args={"connect_timeout": 3})


def migrate(engine: Engine) -> None:
    """Bring the schema to the latest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection_engine"] = engine
    command.upgrade(cfg, "head")


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A transaction: commit on success, roll back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def ping(engine: Engine) -> bool:
    """True when the database answers."""
    from sqlalchemy import text

    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure means "not healthy"
        log.warning("database ping failed", exc_info=True)
        return False


# -- posts --------------------------------------------------------------------------------------


def get_post(session: Session, post_id: int | None) -> Post | None:
    """A post by Greenlight's id (None for no id)."""
    return session.get(Post, post_id) if post_id is not None else None


def find_post(session: Session, *, provider: str, external_id: str) -> Post | None:
    """A post by the provider's id."""
    return session.exec(select(Post).where(Post.provider == provider, Post.external_id == external_id)).first()


def insert_post_if_new(session: Session, post: Post) -> bool:
    """Insert unless (provider, external_id) exists; True when this call created it."""
    try:
        with session.begin_nested():
            session.add(post)
            session.flush()
        return True
    except IntegrityError:
        return False


def find_clip(session: Session, *, provider: str, ref: str) -> Clip | None:
    """The clip row of a provider's clip, if Greenlight has one."""
    return session.exec(select(Clip).where(Clip.provider == provider, Clip.ref == ref)).first()


def ensure_clip(session: Session, clip: Clip) -> tuple[Clip, bool]:
    """The clip row for (provider, ref), inserted from `clip` unless one exists; True when created here."""
    existing = find_clip(session, provider=clip.provider, ref=clip.ref)
    if existing is not None:
        return existing, False
    try:
        with session.begin_nested():
            session.add(clip)
            session.flush()
        return clip, True
    except IntegrityError:  # another worker created it in the meantime
        found = find_clip(session, provider=clip.provider, ref=clip.ref)
        assert found is not None
        return found, False


def claim_post_action(
    session: Session,
    *,
    post_id: int,
    action: str,
    user: str,
    allowed_statuses: tuple[str, ...],
    now: datetime | None = None,
    unless_changes_requested: bool = False,
) -> bool:
    """Compare-and-set: mark a post as having `action` in flight, only if none is and its status
    is one of `allowed_statuses` (and, with `unless_changes_requested`, nobody has asked for changes
    meanwhile). Exactly one concurrent caller gets True."""
    conditions = [
        Post.id == post_id,  # type: ignore[arg-type]
        Post.pending_action.is_(None),  # type: ignore[union-attr]
        Post.status.in_(allowed_statuses),  # type: ignore[attr-defined]
    ]
    if unless_changes_requested:
        conditions.append(Post.changes_requested_by.is_(None))  # type: ignore[union-attr]
    result = session.execute(
        update(Post)
        .where(*conditions)
        .values(pending_action=action, pending_by=user, pending_since=now or utcnow(), updated_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def add_audit(
    session: Session, *, post_id: int | None, actor: str | None, action: str, outcome: str, detail: str | None = None
) -> None:
    """Append one audit row (in the caller's transaction)."""
    session.add(AuditEvent(post_id=post_id, actor=actor, action=action, outcome=outcome, detail=detail))


def record_webhook(session: Session, *, event_id: str, provider: str, type_: str, payload: dict[str, Any]) -> bool:
    """Record a webhook delivery; False when this id was seen before."""
    try:
        with session.begin_nested():
            session.add(WebhookEvent(id=f"{provider}:{event_id}", provider=provider, type=type_, payload=payload))
            session.flush()
        return True
    except IntegrityError:
        return False


def take_lease(engine: Engine, *, name: str, holder: str, seconds: float) -> bool:
    """Hold the named lease for `seconds` unless another holder has an unexpired one.

    Background loops call this before each pass so that, with several replicas, only one runs it.
    """
    now = utcnow()
    with session_scope(engine) as session:
        if session.get(Lease, name) is None:
            try:
                with session.begin_nested():
                    session.add(Lease(name=name))
                    session.flush()
            except IntegrityError:
                pass  # another replica created it first; the UPDATE below decides
        result = session.execute(
            update(Lease)
            .where(
                Lease.name == name,  # type: ignore[arg-type]
                or_(Lease.expires_at.is_(None), Lease.expires_at < now, Lease.holder == holder),  # type: ignore[union-attr,operator,arg-type]
            )
            .values(holder=holder, expires_at=now + timedelta(seconds=seconds))
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]
