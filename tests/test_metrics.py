"""GET /metrics: scraped after real flows over HTTP and parsed with prometheus-client's own parser.

Counters are process-wide (several apps run in this test process one after another), so every test
scrapes before and after and asserts on how far each series moved. The database gauges are read
from each test's fresh database, so they are asserted as they are.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot import metrics
from bot.config import Settings
from bot.models import Job, utcnow
from bot.providers.budget import Priority, RateBudget
from bot.providers.errors import BudgetExhausted
from bot.slack.ids import ActionId
from tests import harness
from tests.fakes.choppity import FakeChoppity, make_event, webhook_headers
from tests.fakes.slack import FakeSlack
from tests.harness import (
    WEBHOOK_SECRET,
    Greenlight,
    SlackDriver,
    base_env,
    card_up,
    db_post,
    free_port,
    postgres_schema,
    wait_until,
)

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "metrics-token-0123456789abcdef"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(autouse=True)
def counting() -> Iterator[None]:
    """Metrics on, as every app built from default settings turns them (the doctor turns them off)."""
    metrics.configure(enabled=True, multiproc_dir=None)
    yield
    metrics.configure(enabled=True, multiproc_dir=None)


def scrape(app: Greenlight | str, token: str | None = None) -> Samples:
    """Every sample of GET /metrics, parsed by prometheus-client's parser."""
    base = app.url if isinstance(app, Greenlight) else app
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{base}/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample `name` with exactly `labels` (0 when absent: a counter not yet touched)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of every `name` sample whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """How far the series moved between two scrapes (summed over unnamed labels)."""
    return total(after, name, **labels) - total(before, name, **labels)


# -- a real flow --------------------------------------------------------------------------------------------


def test_scrape_after_a_draft_a_click_and_webhooks(
    app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    # The start-up auth.test has been answered (it runs in the background): nothing is in flight.
    wait_until(lambda: app.services.identity.known() is not None, message="identity known")
    before = scrape(app)
    slack_before, choppity_before = len(fake_slack.calls()), len(fake_choppity.calls())
    posted_before, updated_before = fake_slack.count("chat.postMessage", ok=True), fake_slack.count("chat.update", ok=True)

    # A Choppity draft arrives by webhook and is carded; then someone publishes it.
    post_id, remote = card_up(app, fake_choppity)
    assert slack.click(ActionId.PUBLISH, post_id, user="U_BOB").status_code == 200
    app.settle()
    # Choppity reports the outcome; the same delivery arrives twice; a forged one is refused.
    fake_choppity.complete_publish(remote["id"])
    body = make_event("post.published", {"post_id": remote["id"]}, event_id="evt-published-1")
    assert app.post_webhook(body, webhook_headers(body, WEBHOOK_SECRET)).status_code == 200
    assert app.post_webhook(body, webhook_headers(body, WEBHOOK_SECRET)).json()["duplicate"] is True
    assert app.post_webhook(body, webhook_headers(body, "not-the-secret")).status_code == 401
    app.settle()
    assert db_post(app, remote["id"]).status == "published"

    after = scrape(app)
    deliveries = "greenlight_webhook_deliveries_total"
    assert moved(before, after, deliveries, provider="choppity", type="post.draft.created", outcome="accepted",
                 status="200") == 1
    assert moved(before, after, deliveries, provider="choppity", type="post.published", outcome="accepted",
                 status="200") == 1
    assert moved(before, after, deliveries, provider="choppity", type="post.published", outcome="duplicate",
                 status="200") == 1
    assert moved(before, after, deliveries, provider="choppity", outcome="rejected", status="401") == 1
    assert moved(before, after, deliveries) == 4

    # One click, acknowledged: one observation in the block_actions histogram.
    assert moved(before, after, "greenlight_slack_ack_seconds_count", kind="block_actions") == 1
    assert moved(before, after, "greenlight_slack_ack_seconds_bucket", kind="block_actions", le="+Inf") == 1

    # Choppity: exactly one publish, reads named by their template, never by the post's id.
    calls = "greenlight_provider_calls_total"
    assert moved(before, after, calls, provider="choppity", endpoint="POST /v1/posts/{id}/publish", status="202") == 1
    assert moved(before, after, calls, provider="choppity", endpoint="GET /v1/posts/{id}", status="200") >= 2
    assert moved(before, after, calls, provider="choppity") == len(fake_choppity.calls()) - choppity_before

    # Slack: every Web API call the fake answered was counted once, by method and outcome.
    slack_calls = "greenlight_slack_calls_total"
    posted = fake_slack.count("chat.postMessage", ok=True) - posted_before
    assert posted >= 2  # the card and thread replies
    assert moved(before, after, slack_calls, method="chat.postMessage", status="ok") == posted
    assert moved(before, after, slack_calls, method="chat.update", status="ok") == \
        fake_slack.count("chat.update", ok=True) - updated_before
    assert moved(before, after, slack_calls) == len(fake_slack.calls()) - slack_before
    assert moved(before, after, "greenlight_cards_posted_total") == 1

    # Read from the database at scrape time.
    assert value(after, "greenlight_posts", provider="choppity", status="published") == 1
    assert value(after, "greenlight_jobs_oldest_due_age_seconds") == 0
    assert value(after, "greenlight_database_scrape_ok") == 1
    assert value(after, "greenlight_ready") == 1

    # No id from outside ever becomes a label.
    text = httpx.get(f"{app.url}/metrics", timeout=10).text
    assert remote["id"] not in text and remote["clip_id"] not in text


def test_slack_rate_limits_are_counted(app: Greenlight, fake_slack: FakeSlack, fake_choppity: FakeChoppity) -> None:
    before = scrape(app)
    fake_slack.fail_next("chat.postMessage", retry_after=0.2)
    post_id, remote = card_up(app, fake_choppity)
    wait_until(lambda: db_post(app, remote["id"]).message_ts is not None, message="card posted after the 429")
    after = scrape(app)
    assert moved(before, after, "greenlight_slack_rate_limited_total", method="chat.postMessage") == 1
    assert moved(before, after, "greenlight_slack_calls_total", method="chat.postMessage", status="ratelimited") == 1
    assert moved(before, after, "greenlight_cards_posted_total") == 1


def test_provider_refusals_and_outages_are_counted(
    app: Greenlight, slack: SlackDriver, fake_choppity: FakeChoppity
) -> None:
    post_id, remote = card_up(app, fake_choppity)
    before = scrape(app)
    fake_choppity.fail_next("POST", r"/publish$", 401, code="UNAUTHORIZED", message="Authentication required")
    slack.click(ActionId.PUBLISH, post_id)
    app.settle()
    after = scrape(app)
    assert moved(before, after, "greenlight_provider_calls_total", provider="choppity",
                 endpoint="POST /v1/posts/{id}/publish", status="401") == 1


def test_queue_depth_and_oldest_due_job_are_read_at_scrape_time(
    fake_slack: FakeSlack, fake_choppity: FakeChoppity, database_url: str
) -> None:
    # No workers: the jobs stay where they are put, as in a stuck queue.
    app = Greenlight(base_env(fake_slack, fake_choppity, database_url)).start(workers=False)
    try:
        now = utcnow()
        from sqlmodel import Session

        with Session(app.services.engine) as session:
            session.add(Job(kind="sync_card", run_at=now - timedelta(minutes=10)))
            session.add(Job(kind="sync_card", run_at=now - timedelta(minutes=1)))
            session.add(Job(kind="provider_event", run_at=now + timedelta(hours=1)))
            session.add(Job(kind="provider_event", status="failed", run_at=now - timedelta(days=1)))
            session.add(Job(kind="sync_card", status="done", run_at=now - timedelta(days=1)))
            session.commit()
        samples = scrape(app)
        assert value(samples, "greenlight_jobs", kind="sync_card", state="due") == 2
        assert value(samples, "greenlight_jobs", kind="provider_event", state="waiting") == 1
        assert value(samples, "greenlight_jobs", kind="provider_event", state="failed") == 1
        assert ("greenlight_jobs", frozenset({("kind", "sync_card"), ("state", "done")})) not in samples
        # The oldest due job has waited about ten minutes (measured when the scrape ran).
        assert 590 <= value(samples, "greenlight_jobs_oldest_due_age_seconds") < 3600
    finally:
        app.stop()


# -- the route ----------------------------------------------------------------------------------------------


def test_bearer_token_is_required_when_set(make_app: Callable[..., Greenlight]) -> None:
    app = make_app(METRICS_TOKEN=TOKEN)
    assert httpx.get(f"{app.url}/metrics", timeout=10).status_code == 401
    wrong = httpx.get(f"{app.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}x"}, timeout=10)
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Bearer")
    assert httpx.get(f"{app.url}/metrics", headers={"Authorization": TOKEN}, timeout=10).status_code == 401
    assert "greenlight_database_scrape_ok" in {name for name, _ in scrape(app, token=TOKEN)}
    assert TOKEN not in repr(app.settings) and TOKEN in app.settings.secrets()
    # Health routes stay open.
    assert httpx.get(f"{app.url}/livez", timeout=10).status_code == 200


def test_metrics_can_be_turned_off(make_app: Callable[..., Greenlight]) -> None:
    app = make_app(METRICS_ENABLED="false")
    assert httpx.get(f"{app.url}/metrics", timeout=10).status_code == 404
    assert not metrics.enabled()


def test_settings_name_each_bad_metrics_variable(tmp_path: Path) -> None:
    from bot.config import ConfigError

    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "SLACK_CHANNEL_ID": "C0REVIEW",
           "CHOPPITY_API_KEY": "k", "CHOPPITY_WEBHOOK_SECRET": "w"}
    with pytest.raises(ConfigError) as err:
        Settings.from_env({**env, "METRICS_TOKEN": "short", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "absent"),
                           "METRICS_ENABLED": "maybe", "PUBLIC_URL": "ftp://example.com"})
    text = str(err.value)
    for name in ("METRICS_TOKEN", "PROMETHEUS_MULTIPROC_DIR", "METRICS_ENABLED", "PUBLIC_URL"):
        assert name in text
    assert "short" not in text  # a secret is never quoted back
    ok = Settings.from_env({**env, "METRICS_TOKEN": TOKEN, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
                            "PUBLIC_URL": "https://greenlight.example.com/"})
    assert ok.public_url == "https://greenlight.example.com" and ok.metrics_token == TOKEN


# -- small parts --------------------------------------------------------------------------------------------


def test_labels_from_outside_are_bounded() -> None:
    label = f"test-{time.monotonic_ns()}"
    assert metrics.bounded(label, "a<b>") == metrics.OTHER
    assert metrics.bounded(label, "") == "none"
    kept = [metrics.bounded(label, f"type.{n}") for n in range(metrics.MAX_LABEL_VALUES + 5)]
    assert kept[: metrics.MAX_LABEL_VALUES] == [f"type.{n}" for n in range(metrics.MAX_LABEL_VALUES)]
    assert set(kept[metrics.MAX_LABEL_VALUES:]) == {metrics.OTHER}
    assert metrics.bounded(label, "type.0") == "type.0"  # values already seen keep their name


class _ScriptedWindow:
    """A budget window that answers the waits it is given, one per take()."""

    shared = False

    def __init__(self, waits: list[float]) -> None:
        self.waits = waits

    def take(self, key: str, *, limit: int, window: float, keep: int) -> float:
        return self.waits.pop(0)

    def remaining(self, key: str, *, limit: int, window: float) -> int:
        return 0


def test_budget_waits_and_exhaustion_are_counted() -> None:
    from prometheus_client import REGISTRY

    key = f"unit-{time.monotonic_ns()}"
    now = [1000.0]
    budget = RateBudget(60, key=key, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s),
                        storage=_ScriptedWindow([2.5, 1.0, 0.0, 30.0]))  # type: ignore[arg-type]
    budget.acquire(Priority.INTERACTIVE)  # sleeps 1 s (at most a second at a time), then 1 s, then has a slot
    with pytest.raises(BudgetExhausted):
        budget.acquire(Priority.BACKGROUND, max_wait=0)
    assert REGISTRY.get_sample_value("greenlight_provider_budget_wait_seconds_total",
                                     {"provider": key, "priority": "interactive"}) == 2.0
    assert REGISTRY.get_sample_value("greenlight_provider_budget_exhausted_total",
                                     {"provider": key, "priority": "background"}) == 1


def test_token_compare() -> None:
    assert metrics.token_matches(f"Bearer {TOKEN}", TOKEN)
    assert metrics.token_matches(f"bearer  {TOKEN} ", TOKEN)
    assert not metrics.token_matches(f"Basic {TOKEN}", TOKEN)
    assert not metrics.token_matches("Bearer ünïcode", TOKEN)
    assert not metrics.token_matches(None, TOKEN)


# -- several processes on one host --------------------------------------------------------------------------

_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], str]]:
    """Start `python -m bot` processes; yields a starter returning each one's base URL."""
    started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(env: dict[str, str]) -> str:
        port = free_port()
        full = {k: os.environ[k] for k in _INHERITED if k in os.environ}
        full.update(env, HOST="127.0.0.1", PORT=str(port), GREENLIGHT_ENV_FILE="/nonexistent", PYTHONUNBUFFERED="1")
        log_path = tmp_path / f"greenlight-{len(started) + 1}.log"
        with log_path.open("ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "bot"], cwd=ROOT, env=full, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT)
        started.append((proc, log_path))
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            assert proc.poll() is None, log_path.read_text(errors="replace")[-4000:]
            try:
                return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, timeout=30, message="Greenlight process healthy")
        return url

    yield start
    for proc, _ in started:
        proc.terminate()
    for proc, log_path in started:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        print(f"===== {log_path.name} =====\n{log_path.read_text(errors='replace')[-6000:]}")  # noqa: T201


def test_two_processes_report_together_in_multiprocess_mode(
    processes: Callable[[dict[str, str]], str], fake_slack: FakeSlack, fake_choppity: FakeChoppity, tmp_path: Path
) -> None:
    base = harness.test_database_url()
    if not base:
        pytest.skip("two replicas need PostgreSQL: TEST_DATABASE_URL is not set (.ci/run sets it)")
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    with postgres_schema(base) as url:
        env = base_env(fake_slack, fake_choppity, url, PROMETHEUS_MULTIPROC_DIR=str(multiproc), METRICS_TOKEN=TOKEN)
        first, second = processes(env), processes(env)
        for n, target in enumerate((first, second, second)):
            body = make_event("greenlight.test", {}, event_id=f"mp-{n}")
            response = httpx.post(f"{target}/webhooks/choppity", content=body, headers=webhook_headers(body, WEBHOOK_SECRET),
                                  timeout=10)
            assert response.status_code == 200
        # Either process answers for both: 1 delivery went to the first, 2 to the second.
        for target in (first, second):
            samples = scrape(target, token=TOKEN)
            assert value(samples, "greenlight_webhook_deliveries_total", provider="choppity", type="greenlight.test",
                         outcome="accepted", status="200") == 3
            # Both are live and ready: the livemin gauge is 1.
            assert value(samples, "greenlight_ready") == 1
        assert any(p.name.startswith("counter_") for p in multiproc.iterdir())
    shutil.rmtree(multiproc, ignore_errors=True)


# -- the shipped alert rules and dashboard ----------------------------------------------------------------


def test_alert_rules_and_dashboard_use_only_real_metrics(app: Greenlight, fake_choppity: FakeChoppity) -> None:
    import re

    card_up(app, fake_choppity)
    # Every family announces itself with # HELP, with or without samples yet.
    text = httpx.get(f"{app.url}/metrics", timeout=10).text
    families = {family.name for family in text_string_to_metric_families(text)}
    for path in (ROOT / "deploy" / "prometheus-alerts.yml", ROOT / "deploy" / "grafana-dashboard.json",
                 ROOT / "docs" / "metrics.md"):
        used = set(re.findall(r"greenlight_[a-z_]+", path.read_text()))
        unknown = {u for u in used if u not in families and re.sub(r"_(total|bucket|count|sum)$", "", u) not in families}
        assert not unknown, f"{path.name} names metrics Greenlight doesn't export: {sorted(unknown)}"
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus); rule syntax not checked")
    result = subprocess.run([promtool, "check", "rules", str(ROOT / "deploy" / "prometheus-alerts.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
