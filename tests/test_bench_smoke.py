"""The benchmark keeps working: `python -m bench.run --size tiny` runs end to end and every section
produces numbers. Nothing here asserts on timing (see docs/benchmarks.md for the measured figures)."""

from __future__ import annotations

import json
import subprocess
import sys
from numbers import Real
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _number(results: dict[str, Any], *path: str) -> float:
    value: Any = results
    for key in path:
        assert isinstance(value, dict) and key in value, f"missing {'/'.join(path)}"
        value = value[key]
    assert isinstance(value, Real) and not isinstance(value, bool), f"{'/'.join(path)} is {value!r}, not a number"
    return float(value)


def test_tiny_benchmark_run_produces_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--size", "tiny", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=110,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "| Figure |" in proc.stdout
    results = json.loads(out.read_text())
    s = results["sections"]

    # 1. click to ack, beside the floor and the naive bot
    for kind in ("publish", "edit", "schedule", "floor", "naive"):
        for p in ("p50", "p95", "p99"):
            _number(s, "clicks", kind, p)
    for kind in ("publish", "edit", "schedule"):
        _number(s, "clicks", kind, "vs_floor_p99")
    # 2. webhook ingestion at each rate, beside the bare endpoint, and flat out
    for row in s["webhooks"]["rates"].values():
        for side in ("greenlight", "bare"):
            _number(row, side, "p99")
            _number(row, side, "achieved_per_s")
        _number(row, "p99_vs_bare")
    assert set(s["webhooks"]["rates"]) == {"50", "100", "200"}
    _number(s, "webhooks", "throughput_vs_bare")
    _number(s, "webhooks", "lost")
    # 3. burst of drafts against Slack's posting limit
    for key in ("burst", "burst_default_budget"):
        for figure in ("share_of_allowed", "slack_429s", "cards_lost", "duplicate_cards", "first_to_last_card_s"):
            _number(s, key, figure)
    # 4. cost growth
    assert len(s["cost_growth"]["sizes"]) == 3
    for figures in s["cost_growth"]["sizes"].values():
        for kind in ("publish", "edit", "schedule", "floor"):
            _number(figures, kind, "p50")
    for kind in ("publish", "edit", "schedule"):
        _number(s, "cost_growth", "growth_largest_vs_smallest", kind, "p50")
    # 5. footprint
    for figure in ("rss_after_start_mib", "rss_after_burst_mib", "startup_new_database_s",
                   "startup_existing_database_median_s"):
        _number(s, "footprint", figure)
    # 6. upstream budget
    _number(s, "upstream_per_post", "approved", "calls_per_post")
    _number(s, "upstream_per_post", "edited_then_approved", "calls_per_post")
    for key in ("reconciler", "reconciler_stressed"):
        _number(s, key, "calls")
        _number(s, key, "calls_per_minute")
    # 7. Home tab at scale, Slack answering slowly
    for p in ("p50", "p95", "max"):
        _number(s, "home", "event_to_publish_answered", p)
    _number(s, "home", "first_open", "answered_ms")
    _number(s, "home", "p95_vs_floor")
    for method in ("auth.test", "chat.getPermalink", "views.publish"):
        _number(s, "home", "calls_per_open", method, "max")
    # 8. peak memory under a huge body
    for figure in ("peak_before_mib", "peak_after_mib", "growth_mib"):
        _number(s, "huge_body", figure)
    assert len(s["huge_body"]["routes"]) == 3
    # 8b. a clip's video uploaded into its thread (the section checks Slack got the rendered bytes)
    for figure in ("peak_before_mib", "peak_after_mib", "growth_mib", "event_to_video_s"):
        _number(s, "preview_upload", figure)
    # 9. two replicas on PostgreSQL sharing one Choppity budget (when the suite has PostgreSQL)
    if "skipped" not in s["replicas"]:
        for variant in ("postgres", "memory"):
            for figure in ("choppity_calls", "max_calls_in_any_60s", "choppity_429s", "cards_lost"):
                _number(s, "replicas", variant, figure)
    # 10. ack latency with metrics on and off
    for kind in ("publish", "schedule"):
        for side in ("on", "off"):
            _number(s, "metrics", kind, side, "p50")
        _number(s, "metrics", kind, "on_vs_off_p50")
    _number(s, "metrics", "scrape", "bytes")
    assert results["targets"], "no targets were evaluated"
