"""A huge body costs a real Greenlight process a few kilobytes, not its size.

The process's peak resident memory (VmHWM, which never goes down) is read before and after 300 MB
bodies are sent to every route: announced by Content-Length, and streamed without one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from bench.common import peak_rss_kib, send_huge_bodies
from tests.fakes.choppity import FakeChoppity
from tests.fakes.slack import FakeSlack
from tests.harness import base_env
from tests.test_e2e_processes import AppProcess, launch  # noqa: F401 - the fixture

BODY = 300 * 2**20
ROUTES = ("/slack/events", "/webhooks/choppity", "/webhooks/reap/reap-token-for-memory-test")
REAP_TOKEN = "reap-token-for-memory-test"


def test_a_300_mb_body_to_any_route_barely_moves_peak_memory(
    launch: Callable[[dict[str, str]], AppProcess],  # noqa: F811
    fake_slack: FakeSlack, fake_choppity: FakeChoppity, tmp_path: Path,
) -> None:
    env = base_env(fake_slack, fake_choppity, f"sqlite:///{tmp_path / 'memory.db'}", LOG_LEVEL="INFO",
                   REAP_API_KEY="reap-key-for-memory-test", REAP_API_URL="http://127.0.0.1:9",
                   REAP_WEBHOOK_TOKEN=REAP_TOKEN)
    app = launch(env)
    # Warm up every route with a normal request, so what is measured is the body, not first use.
    for path in ROUTES:
        httpx.post(f"{app.url}{path}", content=b"{}", headers={"content-type": "application/json"}, timeout=10)
    before = peak_rss_kib(app.pid)
    statuses = send_huge_bodies(app.url, ROUTES, BODY)
    after = peak_rss_kib(app.pid)
    assert set(statuses) <= {413, 0}, statuses
    growth_mib = (after - before) / 1024
    print(f"peak before {before} KiB, after {after} KiB, statuses {statuses}")  # noqa: T201
    assert growth_mib < 8, f"peak memory grew by {growth_mib:.1f} MiB"
    # Still serving.
    assert httpx.get(f"{app.url}/livez", timeout=5).status_code == 200


pytestmark = pytest.mark.timeout(300)
