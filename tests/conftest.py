"""Fixtures: fresh fakes and a fresh Greenlight per test, on SQLite and (when TEST_DATABASE_URL is
set) on PostgreSQL too."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fakes.choppity import FakeChoppity
from tests.fakes.slack import FakeSlack
from tests.harness import Greenlight, SlackDriver, base_env, postgres_schema, test_database_url

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    """A stateful fake Slack Web API on loopback."""
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def fake_choppity() -> Iterator[FakeChoppity]:
    """A stateful fake Choppity API on loopback."""
    with FakeChoppity() as fake:
        yield fake


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'greenlight.db'}"
        return
    base = test_database_url()
    if not base:
        pytest.skip("PostgreSQL run skipped: TEST_DATABASE_URL is not set (.ci/run sets it)")
    with postgres_schema(base) as url:
        yield url


@pytest.fixture
def make_app(
    fake_slack: FakeSlack, fake_choppity: FakeChoppity, database_url: str
) -> Iterator[Callable[..., Greenlight]]:
    """Start Greenlight with extra settings: `make_app(REQUIRED_APPROVALS="2")`."""
    started: list[Greenlight] = []

    def start(**overrides: str) -> Greenlight:
        app = Greenlight(base_env(fake_slack, fake_choppity, database_url, **overrides)).start()
        started.append(app)
        return app

    yield start
    for app in started:
        app.stop()


@pytest.fixture
def app(make_app: Callable[..., Greenlight]) -> Greenlight:
    """Greenlight with default test settings."""
    return make_app()


@pytest.fixture
def slack(app: Greenlight, fake_slack: FakeSlack) -> SlackDriver:
    """Signed Slack requests into the running app."""
    return SlackDriver(app, fake_slack)
