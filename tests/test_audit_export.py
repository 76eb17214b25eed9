"""`greenlight audit`: the audit log exported as CSV or JSON Lines, streamed, on SQLite and PostgreSQL.

Round trip (rows written, exported, parsed back), --since/--until, CSV injection neutralised, secrets
redacted, 50,000 rows in bounded memory, and the real command line in a subprocess.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine, event, insert
from sqlmodel import Session

from bot.audit import COLUMNS, export, neutralise_cell, parse_when
from bot.db import make_engine, migrate
from bot.models import AuditEvent, Post
from tests.harness import base_env

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime.now(UTC).replace(microsecond=123000)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated, empty database (SQLite file or PostgreSQL schema)."""
    engine = make_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


def _post(engine: Engine, external_id: str, platform: str = "tiktok", provider: str = "choppity") -> int:
    with Session(engine) as session:
        post = Post(provider=provider, external_id=external_id, clip_id="clip-1", platform=platform, status="draft")
        session.add(post)
        session.commit()
        assert post.id is not None
        return post.id


def _event(engine: Engine, *, post_id: int | None, actor: str | None, action: str, outcome: str,
           detail: str | None, at: datetime) -> None:
    with Session(engine) as session:
        session.add(AuditEvent(post_id=post_id, actor=actor, action=action, outcome=outcome, detail=detail,
                               created_at=at))
        session.commit()


def _csv(engine: Engine, since: datetime, until: datetime | None = None) -> list[dict[str, str]]:
    out = io.StringIO(newline="")
    export(engine, since, "csv", out, until=until)
    out.seek(0)
    reader = csv.DictReader(out)
    assert tuple(reader.fieldnames or ()) == COLUMNS
    return list(reader)


def _jsonl(engine: Engine, since: datetime, until: datetime | None = None) -> list[dict[str, Any]]:
    out = io.StringIO()
    export(engine, since, "json", out, until=until)
    text = out.getvalue()
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_round_trip_csv_and_json_lines(engine: Engine) -> None:
    tiktok = _post(engine, "4b3a2c1d-77e0", "tiktok")
    youtube = _post(engine, "9f00aa11", "youtube")
    rows = [
        dict(post_id=tiktok, actor="U_ANA", action="edit", outcome="ok", detail="caption 64 → 71 chars, «ok», 🎵",
             at=NOW - timedelta(hours=3)),
        dict(post_id=youtube, actor="U_BOB", action="publish", outcome="failed", detail='Choppity said "no", twice\nreally',
             at=NOW - timedelta(hours=2)),
        dict(post_id=None, actor=None, action="card", outcome="failed", detail=None, at=NOW - timedelta(hours=1)),
        dict(post_id=9999, actor="U_CAROL", action="cancel", outcome="ok", detail="", at=NOW - timedelta(minutes=1)),
    ]
    for row in rows:
        _event(engine, **row)  # type: ignore[arg-type]

    since = NOW - timedelta(days=1)
    expected = [
        {"time": r["at"].isoformat().replace("+00:00", "Z"), "actor": r["actor"], "action": r["action"],  # type: ignore[attr-defined]
         "outcome": r["outcome"], "detail": r["detail"], "post_id": r["post_id"],
         "provider": "choppity" if r["post_id"] in (tiktok, youtube) else None,
         "platform": {tiktok: "tiktok", youtube: "youtube"}.get(r["post_id"]),  # type: ignore[call-overload]
         "external_id": {tiktok: "4b3a2c1d-77e0", youtube: "9f00aa11"}.get(r["post_id"])}  # type: ignore[call-overload]
        for r in rows
    ]
    assert _jsonl(engine, since) == expected

    as_text = [{k: "" if v is None else str(v) for k, v in row.items()} for row in expected]
    assert _csv(engine, since) == as_text
    for row in _jsonl(engine, since):
        assert datetime.fromisoformat(row["time"]).tzinfo is not None


def test_since_and_until_filter_by_time(engine: Engine) -> None:
    post = _post(engine, "p-1")
    for hours in (200, 100, 30, 10, 1):
        _event(engine, post_id=post, actor="U_ANA", action="publish", outcome="ok", detail=f"{hours}h ago",
               at=NOW - timedelta(hours=hours))

    week = parse_when("7d", now=NOW)
    assert [r["detail"] for r in _jsonl(engine, week)] == ["100h ago", "30h ago", "10h ago", "1h ago"]
    assert [r["detail"] for r in _csv(engine, parse_when("12h", now=NOW))] == ["10h ago", "1h ago"]
    assert [r["detail"] for r in _jsonl(engine, parse_when("90m", now=NOW))] == ["1h ago"]
    assert [r["detail"] for r in _jsonl(engine, week, until=NOW - timedelta(hours=10))] == ["100h ago", "30h ago"]
    assert _jsonl(engine, NOW) == []


def test_parse_when_accepts_durations_and_iso_dates() -> None:
    assert parse_when("7d", now=NOW) == NOW - timedelta(days=7)
    assert parse_when("12h", now=NOW) == NOW - timedelta(hours=12)
    assert parse_when("30m", now=NOW) == NOW - timedelta(minutes=30)
    assert parse_when("2026-11-01") == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_when("2026-11-01T12:30:00") == datetime(2026, 11, 1, 12, 30, tzinfo=UTC)
    assert parse_when("2026-11-01T12:30:00+02:00") == datetime(2026, 11, 1, 10, 30, tzinfo=UTC)
    assert parse_when("2026-11-01T10:30:00Z") == datetime(2026, 11, 1, 10, 30, tzinfo=UTC)
    for bad in ("7", "7y", "yesterday", "2026-13-01", ""):
        with pytest.raises(ValueError):
            parse_when(bad)


def test_csv_cells_that_would_be_formulas_are_neutralised(engine: Engine) -> None:
    post = _post(engine, "=HYPERLINK(\"http://evil\")", "linkedin")
    hostile = ['=1+2', '+SUM(A1)', '-2+3', '@cmd', '\t=1', '\r=1', '=cmd|"/c calc"!A0']
    for n, detail in enumerate(hostile):
        _event(engine, post_id=post, actor="@U_EVE" if n == 0 else "U_EVE", action="cancel", outcome="ok",
               detail=detail, at=NOW - timedelta(minutes=len(hostile) - n))

    rows = _csv(engine, NOW - timedelta(hours=1))
    assert [r["detail"] for r in rows] == ["'" + d for d in hostile]
    assert rows[0]["actor"] == "'@U_EVE"
    assert {r["external_id"] for r in rows} == {"'=HYPERLINK(\"http://evil\")"}
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    # JSON Lines is data, not a spreadsheet: values are exact.
    assert [r["detail"] for r in _jsonl(engine, NOW - timedelta(hours=1))] == hostile
    assert neutralise_cell("plain") == "plain" and neutralise_cell("") == ""


def test_secrets_in_details_are_redacted(engine: Engine) -> None:
    _event(engine, post_id=None, actor=None, action="card", outcome="failed",
           detail="Slack: invalid_auth for xoxb-1234567890-abcdefghij", at=NOW - timedelta(minutes=5))
    [row] = _jsonl(engine, NOW - timedelta(hours=1))
    assert "xoxb-1234567890" not in row["detail"] and "[REDACTED]" in row["detail"]


def test_fifty_thousand_rows_export_in_bounded_memory(engine: Engine) -> None:
    rows = 50_000
    posts = [_post(engine, f"post-{n}", ("youtube", "tiktok", "instagram", "linkedin")[n % 4]) for n in range(20)]
    start = NOW - timedelta(days=2)
    with Session(engine) as session:
        for first in range(0, rows, 5000):
            session.execute(insert(AuditEvent), [
                {"post_id": posts[n % 20] if n % 7 else None, "actor": f"U{n % 13:04d}", "action": "publish",
                 "outcome": "ok", "detail": f"detail number {n} " + "x" * 80,
                 "created_at": start + timedelta(seconds=n)} for n in range(first, min(rows, first + 5000))
            ])
        session.commit()

    class Sink(io.TextIOBase):
        """Counts what it is given and keeps none of it."""

        def __init__(self) -> None:
            self.chars = 0
            self.lines = 0

        def write(self, text: str) -> int:
            self.chars += len(text)
            self.lines += text.count("\n")
            return len(text)

    # tracemalloc cannot see libpq's buffers: on PostgreSQL, check the rows came through a server-side
    # cursor (a client-side one would hold the whole result in libpq's memory).
    cursors: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda conn, cursor, *args: cursors.append(type(cursor).__name__))
    for fmt in ("csv", "json"):
        sink = Sink()
        tracemalloc.start()
        try:
            count = export(engine, start - timedelta(seconds=1), fmt, sink)  # type: ignore[arg-type]
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert count == rows
        assert sink.lines == rows + (1 if fmt == "csv" else 0)
        assert sink.chars > rows * 100  # over 5 MB went through
        # Constant memory: one batch of rows at a time, never the whole export (over 5 MB of output).
        assert peak < 4 * 2**20, f"{fmt}: peak {peak / 2**20:.1f} MiB"
    if engine.dialect.name == "postgresql":
        assert cursors == ["ServerCursor", "ServerCursor"]


# -- the command line -------------------------------------------------------------------------------------


def _cli_env(database_url: str) -> dict[str, str]:
    # Slack and Choppity point at a closed port: the export must not need either.
    nowhere = SimpleNamespace(url="http://127.0.0.1:9", api_key="ck-cli-test-secret-team_abc")
    env = base_env(nowhere, nowhere, database_url)  # type: ignore[arg-type]
    inherited = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR", "VIRTUAL_ENV") if k in os.environ}
    return {**inherited, **env, "GREENLIGHT_ENV_FILE": "/nonexistent"}


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", "audit", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_cli_exports_csv_and_json_lines(engine: Engine, database_url: str, tmp_path: Path) -> None:
    post = _post(engine, "ext-42", "instagram")
    _event(engine, post_id=post, actor="U_ANA", action="publish", outcome="ok", detail="queued",
           at=NOW - timedelta(hours=2))
    _event(engine, post_id=post, actor="U_BOB", action="cancel", outcome="failed",
           detail="Choppity echoed ck-cli-test-secret-team_abc back", at=NOW - timedelta(minutes=30))
    _event(engine, post_id=None, actor=None, action="card", outcome="failed", detail="=2+2",
           at=NOW - timedelta(days=10))
    env = _cli_env(database_url)

    proc = _cli(env, "--since", "7d")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout, newline="")))
    assert [(r["actor"], r["action"], r["outcome"], r["platform"], r["external_id"]) for r in rows] == [
        ("U_ANA", "publish", "ok", "instagram", "ext-42"), ("U_BOB", "cancel", "failed", "instagram", "ext-42")]
    assert "ck-cli-test-secret" not in proc.stdout + proc.stderr
    assert rows[1]["detail"] == "Choppity echoed [REDACTED] back"
    assert "exported 2 audit events" in proc.stderr

    out = tmp_path / "audit.jsonl"
    proc = _cli(env, "--since", (NOW - timedelta(days=30)).date().isoformat(), "--until", "1h",
                "--format", "json", "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["action"], r["detail"], r["post_id"]) for r in lines] == [("card", "=2+2", None),
                                                                         ("publish", "queued", post)]

    bad = _cli(env, "--since", "last tuesday")
    assert bad.returncode == 2 and "not a duration" in bad.stderr
    missing = _cli(env)
    assert missing.returncode == 2 and "--since" in missing.stderr


def test_cli_keeps_the_other_commands(tmp_path: Path) -> None:
    env = _cli_env(f"sqlite:///{tmp_path / 'g.db'}")
    helped = subprocess.run([sys.executable, "-m", "bot", "--help"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert helped.returncode == 0 and "audit" in helped.stdout and "migrate" in helped.stdout
    audit_help = subprocess.run([sys.executable, "-m", "bot", "audit", "--help"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=60)
    assert "JSON Lines" in audit_help.stdout
    checked = subprocess.run([sys.executable, "-m", "bot", "check"], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0 and "settings are valid" in checked.stderr
    migrated = subprocess.run([sys.executable, "-m", "bot", "migrate"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)
    assert migrated.returncode == 0 and "latest migration" in migrated.stderr
    wrong = subprocess.run([sys.executable, "-m", "bot", "frobnicate"], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=60)
    assert wrong.returncode == 2


def test_cli_on_an_unmigrated_database_says_so(tmp_path: Path) -> None:
    env = _cli_env(f"sqlite:///{tmp_path / 'empty.db'}")
    proc = _cli(env, "--since", "1d")
    assert proc.returncode == 1
    assert "greenlight migrate" in proc.stderr
