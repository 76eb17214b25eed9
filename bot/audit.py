"""Audit export: `greenlight audit --since 7d --format csv|json [--until …] [--output FILE]`.

Streams the append-only audit log (who did what to which post, when, with what outcome), joined
with the post's provider, platform and external id, for compliance reviews. Rows are read with a
server-side cursor on PostgreSQL (a lazily stepped cursor on SQLite) in batches, and written as they
arrive, so memory stays constant whatever the size of the table.

- `csv`: a header line, then one row per event. Text cells that a spreadsheet would run as a formula
  (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) are prefixed with `'`.
- `json`: JSON Lines, one object per line (not one big array: that is what lets it stream).

Details are redacted when they are written; they go through `bot.security.redact` again here.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal, TextIO

from sqlalchemy import Engine, create_engine, select
from sqlalchemy.engine import Connection, RowMapping

from bot.models import AuditEvent, Post
from bot.security import redact

__all__ = ["COLUMNS", "FORMATS", "export", "neutralise_cell", "parse_when"]

Format = Literal["csv", "json"]
FORMATS: tuple[Format, ...] = ("csv", "json")
COLUMNS = ("time", "actor", "action", "outcome", "detail", "post_id", "provider", "platform", "external_id")
# Rows fetched from the database per round trip.
BATCH_ROWS = 1000

# Characters that make a spreadsheet treat a cell as a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_RELATIVE = re.compile(r"([0-9]{1,6})\s*([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_when(value: str, *, now: datetime | None = None) -> datetime:
    """`7d`, `12h`, `30m` (that long before now), or an ISO date / datetime; an aware UTC datetime.

    A date means its midnight UTC; a datetime without an offset is taken as UTC.
    Raises ValueError with a message fit for the command line.
    """
    text = value.strip()
    relative = _RELATIVE.fullmatch(text.lower())
    if relative:
        amount, unit = relative.groups()
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: int(amount)})
    try:
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=UTC)
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{value!r} is not a duration like 7d, 12h or 30m, nor an ISO date or datetime") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def neutralise_cell(value: str) -> str:
    """A text cell that a spreadsheet will show as text, never evaluate as a formula."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _rows(conn: Connection, since: datetime, until: datetime | None) -> Iterator[RowMapping]:
    audit, post = AuditEvent.__table__, Post.__table__  # type: ignore[attr-defined]
    query = (
        select(
            audit.c.created_at, audit.c.actor, audit.c.action, audit.c.outcome, audit.c.detail, audit.c.post_id,
            post.c.provider, post.c.platform, post.c.external_id,
        )
        .select_from(audit.outerjoin(post, post.c.id == audit.c.post_id))
        .where(audit.c.created_at >= since)
        .order_by(audit.c.created_at, audit.c.id)
    )
    if until is not None:
        query = query.where(audit.c.created_at < until)
    result = conn.execution_options(stream_results=True, yield_per=BATCH_ROWS).execute(query)
    yield from result.mappings()


def _record(row: RowMapping) -> dict[str, Any]:
    detail = row["detail"]
    return {
        "time": _iso(row["created_at"]),
        "actor": row["actor"],
        "action": row["action"],
        "outcome": row["outcome"],
        "detail": redact(detail) if detail else detail,
        "post_id": row["post_id"],
        "provider": row["provider"],
        "platform": row["platform"],
        "external_id": row["external_id"],
    }


def _reader(engine: Engine) -> tuple[Engine, bool]:
    """An engine to read with, and whether it is ours to dispose.

    Greenlight's SQLite engine opens every transaction with BEGIN IMMEDIATE (the write lock): a long
    export would hold it and stall the running bot. A plain engine on the same file reads in WAL
    mode without blocking writers.
    """
    if engine.dialect.name != "sqlite":
        return engine, False
    plain = create_engine(engine.url.render_as_string(hide_password=False), connect_args={"timeout": 10})
    return plain, True


def export(engine: Engine, since: datetime, fmt: Format, out: TextIO, *, until: datetime | None = None) -> int:
    """Write audit events from `since` (inclusive) to `until` (exclusive) to `out`; returns the count.

    `fmt` is "csv" (with a header) or "json" (JSON Lines). Rows are ordered by time.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    reader, owned = _reader(engine)
    count = 0
    try:
        with reader.connect() as conn:
            if fmt == "csv":
                writer = csv.writer(out, lineterminator="\r\n")
                writer.writerow(COLUMNS)
                for row in _rows(conn, since, until):
                    record = _record(row)
                    writer.writerow(
                        "" if record[c] is None else neutralise_cell(record[c]) if isinstance(record[c], str)
                        else record[c]
                        for c in COLUMNS
                    )
                    count += 1
            else:
                for row in _rows(conn, since, until):
                    out.write(json.dumps(_record(row), ensure_ascii=False) + "\n")
                    count += 1
        out.flush()
    finally:
        if owned:
            reader.dispose()
    return count


# -- the command line: `greenlight audit` ------------------------------------------------------------


def add_audit_parser(commands: Any) -> None:
    """Add the `audit` subcommand to the `greenlight` argument parser's subparsers."""
    parser = commands.add_parser(
        "audit",
        help="export the audit log (CSV, or JSON Lines) for a compliance review",
        description="Export the audit log: who did what to which post, when, with what outcome. Rows are "
                    "streamed in time order, so any size of log exports in constant memory.",
    )
    parser.add_argument("--since", required=True, metavar="WHEN",
                        help="start (inclusive): 7d, 12h, 30m before now, or an ISO date/datetime (UTC unless "
                             "an offset is given)")
    parser.add_argument("--until", metavar="WHEN", help="end (exclusive), same forms as --since; default now")
    parser.add_argument("--format", choices=FORMATS, default="csv",
                        help="csv (default; formula-like cells are prefixed with ') or json: JSON Lines, one "
                             "object per line, which is what streams")
    parser.add_argument("--output", metavar="FILE", help="write to FILE instead of standard output")


def run_audit(settings: Any, args: Any) -> int:
    """Run `greenlight audit` with parsed arguments; the process exit status."""
    import logging
    import sys

    from sqlalchemy.exc import SQLAlchemyError

    from bot.db import make_engine
    from bot.security import register_secrets

    register_secrets(settings.secrets())
    try:
        since = parse_when(args.since)
        until = parse_when(args.until) if args.until else None
    except ValueError as err:
        print(f"greenlight audit: {err}", file=sys.stderr)  # noqa: T201 - a usage error, for a person
        return 2
    engine = make_engine(settings.database_url)
    log = logging.getLogger("bot.audit")
    try:
        if args.output:
            with open(args.output, "w", encoding="utf-8", newline="") as out:
                count = export(engine, since, args.format, out, until=until)
        else:
            count = export(engine, since, args.format, sys.stdout, until=until)
    except SQLAlchemyError as err:
        first_line = (str(err).splitlines() or [""])[0][:300]
        log.error("audit export failed: %s (is the database migrated? `greenlight migrate` does that)", first_line)
        return 1
    finally:
        engine.dispose()
    log.info("exported %d audit events since %s%s", count, _iso(since), f" until {_iso(until)}" if until else "")
    return 0
