"""The Alembic migrations and the SQLModel tables describe the same schema, on every backend.

A model change without a migration (or a migration that drifts from the model) would only show up
as a failed deployment; here it fails the build, with the differences named.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlmodel import SQLModel

import bot.models  # noqa: F401 - registers every table on SQLModel.metadata
from bot.db import make_engine, migrate
from tests import harness


def _differences(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        diffs = compare_metadata(context, SQLModel.metadata)
    # Index names differ harmlessly between create_all's naming and hand-written migrations.
    return [d for d in diffs if not (isinstance(d, tuple) and d and str(d[0]).endswith("_index"))]


def _check(url: str) -> None:
    engine = make_engine(url)
    try:
        migrate(engine)
        assert set(SQLModel.metadata.tables) <= set(inspect(engine).get_table_names())
        assert _differences(engine) == []
    finally:
        engine.dispose()


def test_sqlite_schema_from_migrations_matches_the_models(tmp_path: Path) -> None:
    _check(f"sqlite:///{tmp_path / 'schema.db'}")


def test_postgresql_schema_from_migrations_matches_the_models() -> None:
    base = harness.test_database_url()
    if not base:
        pytest.skip("PostgreSQL run skipped: TEST_DATABASE_URL is not set (.ci/run sets it)")
    with harness.postgres_schema(base) as url:
        _check(url)
