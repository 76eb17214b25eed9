"""The ten measurements. Each starts its own Greenlight process (bench.serve) on a fresh SQLite file
(section 9: two processes on a fresh PostgreSQL schema; section 10: two side by side), against its
own fake Slack and fake Choppity, and returns plain numbers (ms, seconds, counts)."""

from __future__ import annotations

import json
import math
import os
import random
import re
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
from slack_sdk import WebClient
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from bench.common import (
    CHANNEL,
    SIGNING_SECRET,
    WEBHOOK_SECRET,
    AppProcess,
    LoadGen,
    Size,
    app_env,
    click_body,
    count_posts,
    fakes,
    insert_history,
    insert_rows,
    new_database,
    peak_rss_kib,
    post_row,
    ratio,
    status_of_announced,
    status_of_streamed,
    summary,
)
from bot.db import make_engine
from bot.domain.forms import FieldId
from bot.models import Job, Post, WebhookEvent, utcnow
from bot.slack.ids import ActionId, ViewId
from tests.fakes.choppity import FakeChoppity, make_event, render_digest, webhook_headers
from tests.fakes.slack import FakeSlack
from tests.harness import SlackDriver, wait_until

PLATFORMS = ("youtube", "tiktok", "instagram", "linkedin")
FOREVER = 10**9


# -- helpers --------------------------------------------------------------------------------------------


def settle(engine: Engine, timeout: float = 120.0) -> float:
    """Wait until no job is due or running; returns how long that took."""
    started = time.monotonic()
    idle = 0
    while True:
        with Session(engine) as session:
            busy = session.exec(
                select(Job.id).where(col(Job.status).in_(("pending", "running")), Job.run_at <= utcnow())
            ).first()
        if busy is None:
            idle += 1
            if idle >= 2:
                return time.monotonic() - started
        else:
            idle = 0
        if time.monotonic() - started > timeout:
            raise AssertionError(f"jobs still pending after {timeout}s")
        time.sleep(0.05)


def seed_cards(engine: Engine, slack: FakeSlack, choppity: FakeChoppity, count: int, offset: int = 0) -> list[int]:
    """`count` drafts known to Choppity, carded in Slack and tracked in the database; our post ids."""
    client = WebClient(token=slack.token, base_url=slack.url)
    rows = []
    for n in range(count):
        remote = choppity.add_post(PLATFORMS[(n + offset) % len(PLATFORMS)])
        ts = client.chat_postMessage(channel=CHANNEL, text="card")["ts"]
        rows.append(post_row(remote, message_ts=ts))
    insert_rows(engine, Post, rows)
    external = [r["external_id"] for r in rows]
    with Session(engine) as session:
        found = dict(session.exec(select(Post.external_id, Post.id).where(col(Post.external_id).in_(external))).all())
    return [int(found[e]) for e in external]


def click_plan(slack: FakeSlack, publish_ids: list[int], reusable_ids: list[int], floor_id: int,
               per_kind: int, seed: int) -> list[list[str]]:
    """Rounds of Publish, Edit, Schedule and floor clicks, each round in a shuffled order."""
    rng = random.Random(seed)
    plan: list[list[str]] = []
    k = len(reusable_ids)
    for n in range(per_kind):
        round_ = [
            ["publish", "/slack/events", click_body(slack, ActionId.PUBLISH, publish_ids[n])],
            ["edit", "/slack/events", click_body(slack, ActionId.EDIT, reusable_ids[n % k])],
            ["schedule", "/slack/events", click_body(slack, ActionId.SCHEDULE, reusable_ids[(n + k // 2) % k])],
            ["floor", "/bench/floor/slack/events", click_body(slack, ActionId.PUBLISH, floor_id)],
        ]
        rng.shuffle(round_)
        plan.extend(round_)
    return plan


def click_figures(latencies: dict[str, list[float]]) -> dict[str, Any]:
    """Percentiles per kind, with ratios to the floor at the same percentile."""
    out: dict[str, Any] = {}
    floor = summary(latencies.get("floor", []))
    for kind, values in latencies.items():
        figures = summary(values)
        if kind not in ("floor", "naive"):
            figures["vs_floor_p50"] = ratio(figures["p50"], floor["p50"])
            figures["vs_floor_p99"] = ratio(figures["p99"], floor["p99"])
        out[kind] = figures
    return out


def measure_clicks(app: AppProcess, slack: FakeSlack, choppity: FakeChoppity, engine: Engine, loadgen: LoadGen,
                   size: Size, per_kind: int, *, naive: bool, seed: int) -> dict[str, Any]:
    """Seed fresh drafts, then send the interleaved click plan through the load generator."""
    reusable = min(20, max(2, per_kind))
    publish_ids = seed_cards(engine, slack, choppity, per_kind, offset=seed)
    reusable_ids = seed_cards(engine, slack, choppity, reusable, offset=seed + 1)
    floor_id = reusable_ids[0]
    plan = click_plan(slack, publish_ids, reusable_ids, floor_id, per_kind, seed)
    warmup = [["/bench/floor/slack/events", click_body(slack, ActionId.PUBLISH, floor_id)] for _ in range(5)]
    warmup += [["/slack/events", click_body(slack, ActionId.SCHEDULE, reusable_ids[-1])] for _ in range(3)]
    job: dict[str, Any] = {"op": "clicks", "base": app.url, "secret": SIGNING_SECRET, "rate": size.click_rate,
                           "plan": plan, "warmup": warmup}
    if naive:
        duration = len(plan) / size.click_rate
        naive_count = max(1, math.ceil(duration / size.naive_interval) + 1)
        naive_ids = seed_cards(engine, slack, choppity, naive_count, offset=seed + 2)
        job["naive"] = {
            "interval": size.naive_interval,
            "items": [["/bench/naive/slack/events", click_body(slack, ActionId.PUBLISH, i)] for i in naive_ids],
        }
    result = loadgen.run(job)
    figures = click_figures(result["latencies"])
    figures["statuses"] = result["statuses"]
    figures["click_rate_per_s"] = len(plan) / result["elapsed"] if result["elapsed"] else None
    return figures


def send_event(app: AppProcess, event_type: str, data: dict[str, Any], client: httpx.Client | None = None) -> int:
    """One signed Choppity delivery to the app; its HTTP status."""
    body = make_event(event_type, data)
    poster = client or httpx
    response = poster.post(f"{app.url}/webhooks/choppity", content=body, headers=webhook_headers(body, WEBHOOK_SECRET),
                           timeout=60)
    return int(response.status_code)


def db_post(engine: Engine, external_id: str) -> Post | None:
    """Our row for a Choppity post id."""
    with Session(engine) as session:
        post = session.exec(select(Post).where(Post.external_id == external_id)).first()
        if post is not None:
            session.expunge(post)
        return post


def wait_post(engine: Engine, external_id: str, predicate: Callable[[Post], bool], what: str) -> None:
    """Wait until our row for a Choppity post exists and satisfies `predicate`."""

    def check() -> bool:
        post = db_post(engine, external_id)
        return post is not None and predicate(post)

    wait_until(check, 60, what)


def max_in_window(times: list[float], window: float = 60.0) -> int:
    """The most events inside any `window`-second stretch."""
    ordered = sorted(times)
    best = 0
    j = 0
    for i, t in enumerate(ordered):
        while ordered[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


# -- 1. click to ack --------------------------------------------------------------------------------------


def clicks_section(size: Size, workdir: Path, loadgen: LoadGen, apps: list[dict[str, Any]]) -> dict[str, Any]:
    """Publish/Edit/Schedule ack latency while Choppity takes 2 s, beside the floor and a naive bot."""
    with fakes(choppity_limit=None) as (slack, choppity):
        slack.trigger_ttl = 1e9  # click bodies are built before they are sent
        url = f"sqlite:///{workdir / 'clicks.db'}"  # fresh file: this start-up includes the migrations
        app = AppProcess(app_env(slack, choppity, url, CHOPPITY_REQUESTS_PER_MINUTE="600"), workdir / "clicks.log")
        app.start()
        apps.append({"section": "clicks", "database": "new (runs migrations)", "startup_s": app.startup_seconds,
                     **app.memory()})
        try:
            engine = make_engine(url)
            choppity.delay_next("*", r".*", size.choppity_latency, times=FOREVER)
            figures = measure_clicks(app, slack, choppity, engine, loadgen, size, size.clicks_per_kind,
                                     naive=True, seed=1)
            figures["choppity_latency_s"] = size.choppity_latency
            time.sleep(size.choppity_latency + 0.5)  # let the last modals finish before the app stops
            return figures
        finally:
            app.stop()


# -- 4. cost growth ---------------------------------------------------------------------------------------


def cost_section(size: Size, workdir: Path, loadgen: LoadGen, apps: list[dict[str, Any]]) -> dict[str, Any]:
    """The same clicks with 100 / 10,000 / 100,000 posts (plus their audit rows and finished jobs)."""
    with fakes(choppity_limit=None) as (slack, choppity):
        slack.trigger_ttl = 1e9
        url, engine = new_database(workdir, "cost")
        app = AppProcess(app_env(slack, choppity, url, CHOPPITY_REQUESTS_PER_MINUTE="600"), workdir / "cost.log")
        app.start()
        apps.append({"section": "cost growth", "database": "existing, empty", "startup_s": app.startup_seconds,
                     **app.memory()})
        try:
            choppity.delay_next("*", r".*", size.choppity_latency, times=FOREVER)
            template = post_row(choppity.add_post("youtube"))
            by_size: dict[str, Any] = {}
            per_kind = size.cost_clicks_per_kind
            reusable = min(20, max(2, per_kind))
            for n, target in enumerate(size.cost_sizes):
                # The clicked drafts count towards the size.
                filler = max(0, target - count_posts(engine) - per_kind - reusable)
                started = time.monotonic()
                insert_history(engine, filler, template)
                seeded = time.monotonic() - started
                settle(engine)
                figures = measure_clicks(app, slack, choppity, engine, loadgen, size, per_kind, naive=False,
                                         seed=100 + n)
                figures["posts"] = count_posts(engine)
                figures["seed_seconds"] = seeded
                by_size[str(target)] = figures
            first, last = by_size[str(size.cost_sizes[0])], by_size[str(size.cost_sizes[-1])]
            growth = {
                kind: {
                    "p50": ratio(last[kind]["p50"], first[kind]["p50"]),
                    "p95": ratio(last[kind]["p95"], first[kind]["p95"]),
                    "p99": ratio(last[kind]["p99"], first[kind]["p99"]),
                    # The same, with each size's p50 first divided by that size's floor p50 (machine drift).
                    "p50_floor_normalised": ratio(last[kind].get("vs_floor_p50"), first[kind].get("vs_floor_p50")),
                }
                for kind in ("publish", "edit", "schedule", "floor")
            }
            time.sleep(size.choppity_latency + 0.5)  # let the last modals finish before the app stops
            return {"sizes": by_size, "growth_largest_vs_smallest": growth}
        finally:
            app.stop()


# -- 2. webhook ingestion, then 6a. upstream calls per approved post -----------------------------------


def webhooks_section(size: Size, workdir: Path, loadgen: LoadGen, apps: list[dict[str, Any]]) -> dict[str, Any]:
    """Signed, de-duplicated, persisted Choppity events at fixed rates and flat out, beside a bare route."""
    with fakes() as (slack, choppity):
        url, engine = new_database(workdir, "webhooks")
        app = AppProcess(app_env(slack, choppity, url), workdir / "webhooks.log")
        app.start()
        apps.append({"section": "webhooks", "database": "existing, empty", "startup_s": app.startup_seconds,
                     **app.memory()})
        try:
            out = _webhooks(size, app, engine, loadgen)
            out["upstream_per_post"] = _calls_per_approved_post(size, app, engine, slack, choppity)
            return out
        finally:
            app.stop()


def _webhooks(size: Size, app: AppProcess, engine: Engine, loadgen: LoadGen) -> dict[str, Any]:
    app_path, bare_path = "/webhooks/choppity", "/bench/bare/webhooks/choppity"
    expected_persisted = 0
    duplicates_sent = duplicates_recognised = 0
    rates: dict[str, Any] = {}
    for rate in size.webhook_rates:
        row: dict[str, Any] = {}
        for label, path in (("greenlight", app_path), ("bare", bare_path)):
            result = loadgen.run({"op": "webhooks_open", "base": app.url, "path": path, "secret": WEBHOOK_SECRET,
                                  "rate": rate, "seconds": size.webhook_seconds, "dup_every": 10})
            figures = summary(result.pop("latencies"))
            figures.update(result)
            figures["achieved_per_s"] = result["ok"] / result["elapsed"] if result["elapsed"] else None
            if label == "greenlight":
                expected_persisted += result["accepted_as_new"] + result["warmup_accepted"]
                duplicates_sent += result["duplicates_sent"]
                duplicates_recognised += result["duplicates_recognised"]
                figures["backlog_drained_s"] = settle(engine)
            row[label] = figures
        row["p99_vs_bare"] = ratio(row["greenlight"]["p99"], row["bare"]["p99"])
        rates[str(rate)] = row
    totals = {"greenlight": [0, 0.0], "bare": [0, 0.0]}
    for label, path in (("greenlight", app_path), ("bare", bare_path)) * 2:
        result = loadgen.run({"op": "webhooks_closed", "base": app.url, "path": path, "secret": WEBHOOK_SECRET,
                              "concurrency": 32, "seconds": size.max_throughput_seconds})
        totals[label][0] += result["ok"]
        totals[label][1] += result["elapsed"]
        if label == "greenlight":
            expected_persisted += result["ok"] + result["warmup_accepted"]
            settle(engine, timeout=600)
    max_tp = {label: ok / elapsed if elapsed else None for label, (ok, elapsed) in totals.items()}
    with Session(engine) as session:
        persisted = int(session.exec(select(func.count()).select_from(WebhookEvent)).one())
    return {
        "rates": rates,
        "max_throughput_per_s": max_tp,
        "throughput_vs_bare": ratio(max_tp["greenlight"], max_tp["bare"]),
        "persisted": persisted,
        "expected_persisted": expected_persisted,
        "lost": expected_persisted - persisted,
        "duplicates_sent": duplicates_sent,
        "duplicates_recognised": duplicates_recognised,
    }


def _calls_per_approved_post(size: Size, app: AppProcess, engine: Engine, slack: FakeSlack,
                             choppity: FakeChoppity) -> dict[str, Any]:
    """Draft webhook → card → Publish click → publish webhook; Choppity calls per post (also with an edit)."""
    driver = SlackDriver(SimpleNamespace(url=app.url), slack)  # type: ignore[arg-type]
    results: dict[str, list[int]] = {"approved": [], "edited_then_approved": []}
    flows = [("approved", i) for i in range(size.approved_posts)] + [
        ("edited_then_approved", i) for i in range(size.edited_posts)
    ]
    for kind, n in flows:
        remote = choppity.add_post(PLATFORMS[n % len(PLATFORMS)])
        external = remote["id"]
        assert send_event(app, "post.draft.created", {"post_id": external, "clip_id": remote["clip_id"]}) == 200
        wait_post(engine, external, lambda p: p.message_ts is not None, "card")
        post = db_post(engine, external)
        assert post is not None and post.id is not None
        our_id = post.id
        if kind == "edited_then_approved":
            driver.click(ActionId.EDIT, our_id)
            view = driver.latest_view(ViewId.EDIT, post_id=our_id)
            driver.submit(view, values={FieldId.CAPTION: {"type": "plain_text_input", "value": f"Edited caption {n}"}})
            wait_post(engine, external, lambda p: p.content_version == 2 and p.pending_action is None, "edit saved")
        # Four eyes: the editor may not publish their own version, so a second person does.
        driver.click(ActionId.PUBLISH, our_id, user="U_BOB" if kind == "edited_then_approved" else "U_ANA")
        wait_post(engine, external, lambda p: p.status == "queued" and p.pending_action is None, "publish accepted")
        choppity.complete_publish(external)
        assert send_event(app, "post.published", {"post_id": external, "clip_id": remote["clip_id"]}) == 200
        wait_post(engine, external, lambda p: p.status == "published", "published")
        settle(engine)
        results[kind].append(len(choppity.calls(path_regex=re.escape(external))))
    out: dict[str, Any] = {}
    for kind, counts in results.items():
        out[kind] = {"posts": len(counts), "calls_per_post": (sum(counts) / len(counts)) if counts else None,
                     "max": max(counts) if counts else None}
    out["choppity_429s"] = choppity.rate_limited_count
    return out


# -- 3. burst of drafts, 5. footprint, 6b. reconciler: slow, mostly idle, run side by side ----------------


class Parallel:
    """A section that is started on its own (so start-up is timed quietly) and then run in a thread."""

    name = ""

    def __init__(self, size: Size, workdir: Path) -> None:
        self.size = size
        self.workdir = workdir
        self.stack = ExitStack()
        self.app: AppProcess | None = None
        self.result: dict[str, Any] = {}
        self.error: BaseException | None = None

    def prepare(self) -> None:
        """Fakes, database and seed data (one section at a time: migrations are not thread-safe)."""
        raise NotImplementedError

    def launch(self, apps: list[dict[str, Any]]) -> None:
        """Start the app process."""
        raise NotImplementedError

    def run(self) -> None:
        raise NotImplementedError

    def thread_main(self) -> None:
        try:
            self.run()
        except BaseException as exc:  # noqa: BLE001 - re-raised by the orchestrator
            self.error = exc
        finally:
            self.close()

    def close(self) -> None:
        if self.app is not None:
            self.app.stop()
        self.stack.close()


class Burst(Parallel):
    """N post.draft.created events at once; fake Slack allows ~1 chat.postMessage/s per channel."""

    def __init__(self, size: Size, workdir: Path, *, slack_bound: bool) -> None:
        super().__init__(size, workdir)
        self.slack_bound = slack_bound
        self.name = "burst (Slack-bound)" if slack_bound else "burst (default Choppity budget)"

    def prepare(self) -> None:
        self.tag = "burst_a" if self.slack_bound else "burst_b"
        self.slack, self.choppity = self.stack.enter_context(fakes(choppity_limit=None if self.slack_bound else 60))
        self.url, self.engine = new_database(self.workdir, self.tag)

    def launch(self, apps: list[dict[str, Any]]) -> None:
        overrides = {"CHOPPITY_REQUESTS_PER_MINUTE": "600"} if self.slack_bound else {}
        env = app_env(self.slack, self.choppity, self.url, **overrides)
        self.app = AppProcess(env, self.workdir / f"{self.tag}.log").start()
        self.memory_after_start = self.app.memory()
        apps.append({"section": self.name, "database": "existing, empty", "startup_s": self.app.startup_seconds,
                     **self.memory_after_start})

    def run(self) -> None:
        size, slack, app = self.size, self.slack, self.app
        assert app is not None
        # Real clips: one draft per platform, four to a clip, one post.draft.created each.
        remotes: list[dict[str, Any]] = []
        while len(remotes) < size.burst_drafts:
            platforms = PLATFORMS[: min(len(PLATFORMS), size.burst_drafts - len(remotes))]
            remotes.extend(self.choppity.posts(self.choppity.add_clip(platforms=platforms)))
        slack.set_post_rate_limit(per_second=size.slack_per_second, burst=size.slack_burst)
        statuses: list[int] = []
        lock = threading.Lock()
        started = time.monotonic()
        with httpx.Client(limits=httpx.Limits(max_connections=64), timeout=120) as client:
            def deliver(chunk: list[dict[str, Any]]) -> None:
                for remote in chunk:
                    status = send_event(app, "post.draft.created", {"post_id": remote["id"], "clip_id": remote["clip_id"]},
                                        client)
                    with lock:
                        statuses.append(status)

            senders = [threading.Thread(target=deliver, args=(remotes[i::32],)) for i in range(32)]
            for t in senders:
                t.start()
            for t in senders:
                t.join()
        all_acked = time.monotonic() - started

        def with_card() -> int:
            with Session(self.engine) as session:
                return int(session.exec(
                    select(func.count()).select_from(Post).where(col(Post.message_ts).is_not(None))
                ).one())

        deadline = started + size.burst_timeout
        while with_card() < size.burst_drafts and time.monotonic() < deadline:
            time.sleep(0.5)
        settle(self.engine, timeout=60)
        carded = with_card()
        calls = slack.calls("chat.postMessage")
        # Cards and clip messages share the channel's posting limit; thread replies (outcomes) come later.
        posted = [c for c in calls if c.http_status == 200 and c.error is None
                  and (c.args.get("metadata") or {}).get("event_type") in ("greenlight_post", "greenlight_clip")]
        cards = [c for c in posted if c.args["metadata"]["event_type"] == "greenlight_post"]
        clips = [c for c in posted if c.args["metadata"]["event_type"] == "greenlight_clip"]
        times = sorted(c.at for c in posted)
        card_times = sorted(c.at for c in cards)
        distinct = {json.dumps(c.args["metadata"], sort_keys=True) for c in posted}
        rate, burst = size.slack_per_second, size.slack_burst
        span = (times[-1] - times[0]) if len(times) > 1 else 0.0
        achieved = (len(times) - burst) / span if span > 0 else None
        limited = [c.at for c in calls if c.http_status == 429]
        first_card = times[0] if times else started
        self.result = {
            "drafts": size.burst_drafts,
            "clips": len({r["clip_id"] for r in remotes}),
            "events_acked_s": all_acked,
            "event_statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
            "cards_posted": len(cards),
            "clip_messages_posted": len(clips),
            "distinct_cards": len({json.dumps(c.args["metadata"], sort_keys=True) for c in cards}),
            "posts_with_card": carded,
            "cards_lost": size.burst_drafts - carded,
            "duplicate_cards": len(posted) - len(distinct),
            "slack_429s": slack.ratelimited_count,
            "slack_429s_in_first_5s": sum(1 for t in limited if t - first_card < 5.0),
            "allowed_per_s": rate,
            "allowed_burst": burst,
            "achieved_per_s": achieved,
            "share_of_allowed": (achieved / rate) if achieved is not None else None,
            "first_to_last_card_s": (card_times[-1] - card_times[0]) if len(card_times) > 1 else 0.0,
            "first_to_last_message_s": span,
            "ideal_first_to_last_message_s": (len(times) - burst) / rate,
            "event_to_last_card_s": (card_times[-1] - started) if card_times else None,
            "choppity_calls": len(self.choppity.calls()),
            "choppity_429s": self.choppity.rate_limited_count,
            "memory_after_start": self.memory_after_start,
            "memory_after_burst": app.memory(),
        }


class ClipOfFour(Parallel):
    """One clip with four drafts arriving together, at Slack's posting limit (1 message/s per channel)."""

    name = "clip of four drafts"

    def prepare(self) -> None:
        self.slack, self.choppity = self.stack.enter_context(fakes(choppity_limit=None))
        self.url, self.engine = new_database(self.workdir, "clip4")

    def launch(self, apps: list[dict[str, Any]]) -> None:
        env = app_env(self.slack, self.choppity, self.url)
        self.app = AppProcess(env, self.workdir / "clip4.log").start()
        apps.append({"section": self.name, "database": "existing, empty", "startup_s": self.app.startup_seconds,
                     **self.app.memory()})

    def run(self) -> None:
        size, slack, app = self.size, self.slack, self.app
        assert app is not None
        # No burst allowance left: every message waits its turn, as in a busy channel.
        slack.set_post_rate_limit(per_second=size.slack_per_second, burst=1)
        rounds: list[dict[str, float]] = []
        for _ in range(size.clip_rounds):
            clip = self.choppity.add_clip(platforms=PLATFORMS)
            posts = self.choppity.posts(clip)
            before = len(slack.calls("chat.postMessage"))
            started = time.monotonic()
            for remote in posts:
                send_event(app, "post.draft.created", {"post_id": remote["id"], "clip_id": clip})
            deadline = started + 120
            while time.monotonic() < deadline:
                done = [c for c in slack.calls("chat.postMessage")[before:] if c.error is None and c.http_status == 200]
                if sum(1 for c in done if (c.args.get("metadata") or {}).get("event_type") == "greenlight_post") >= 4:
                    break
                time.sleep(0.05)
            settle(self.engine, timeout=60)
            calls = [c for c in slack.calls("chat.postMessage")[before:] if c.error is None and c.http_status == 200]
            cards = sorted(c.answered_at or c.at for c in calls
                           if (c.args.get("metadata") or {}).get("event_type") == "greenlight_post")
            tops = sorted(c.answered_at or c.at for c in calls
                          if (c.args.get("metadata") or {}).get("event_type") == "greenlight_clip")
            rounds.append({
                "first_to_last_card_s": cards[-1] - cards[0] if len(cards) > 1 else 0.0,
                "event_to_clip_message_s": tops[0] - started if tops else -1.0,
                "event_to_last_card_s": cards[-1] - started if cards else -1.0,
                "cards": float(len(cards)), "clip_messages": float(len(tops)),
            })
            time.sleep(2.0 / size.slack_per_second)  # let the channel's allowance recover between rounds
        self.result = {
            "rounds": rounds,
            "allowed_per_s": size.slack_per_second,
            "ideal_first_to_last_card_s": 3 / size.slack_per_second,  # four cards, one message a second apart
            "first_to_last_card_s": statistics.median(r["first_to_last_card_s"] for r in rounds),
            "event_to_last_card_s": statistics.median(r["event_to_last_card_s"] for r in rounds),
            "event_to_clip_message_s": statistics.median(r["event_to_clip_message_s"] for r in rounds),
            "cards_lost": sum(4 - int(r["cards"]) for r in rounds),
            "extra_clip_messages": sum(int(r["clip_messages"]) - 1 for r in rounds),
        }


class Reconcile(Parallel):
    """Choppity calls made by the reconciler with many posts that look stuck (queued / scheduled)."""

    def __init__(self, size: Size, workdir: Path, *, stressed: bool) -> None:
        super().__init__(size, workdir)
        self.stressed = stressed
        self.interval = size.stressed_interval if stressed else size.reconcile_interval
        self.window = size.stressed_window if stressed else size.reconcile_window
        self.name = f"reconciler (every {self.interval:g} s)"

    def prepare(self) -> None:
        self.tag = "reconcile_stressed" if self.stressed else "reconcile"
        self.slack, self.choppity = self.stack.enter_context(fakes(choppity_limit=60))
        self.url, self.engine = new_database(self.workdir, self.tag)
        rows = []
        past_ms = int((time.time() - 600) * 1000)
        for n in range(self.size.tracked_posts):
            platform = PLATFORMS[n % len(PLATFORMS)]
            if n % 2:
                remote = self.choppity.add_post(platform, status="queued")
            else:
                remote = self.choppity.add_post(platform, status="scheduled", scheduled_at=past_ms)
            rows.append(post_row(remote, message_ts=f"{1_700_000_000 + n}.000200", age=timedelta(minutes=10),
                                 remote_checked_at=None, approved_by="U_ANA"))
        insert_rows(self.engine, Post, rows)

    def launch(self, apps: list[dict[str, Any]]) -> None:
        env = app_env(self.slack, self.choppity, self.url, RECONCILE_INTERVAL_SECONDS=f"{self.interval:g}")
        self.app = AppProcess(env, self.workdir / f"{self.tag}.log").start()
        self.started = time.monotonic()
        apps.append({"section": self.name, "database": f"existing, {self.size.tracked_posts} posts",
                     "startup_s": self.app.startup_seconds, **self.app.memory()})

    def run(self) -> None:
        remaining = self.started + self.window - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)
        calls = [c.at for c in self.choppity.calls("GET", r"^/v1/posts/") if c.at >= self.started]
        minutes = self.window / 60
        self.result = {
            "tracked_posts": self.size.tracked_posts,
            "interval_s": self.interval,
            "window_s": self.window,
            "calls": len(calls),
            "calls_per_minute": len(calls) / minutes,
            "max_calls_in_any_60s": max_in_window(calls) if self.window >= 60 else None,
            "choppity_429s": self.choppity.rate_limited_count,
        }


def run_parallel(sections: list[Parallel], apps: list[dict[str, Any]], log: Callable[[str], None],
                 *, quiet_startups: bool = True) -> None:
    """Start each section (in turn, or all at once), then run them side by side."""
    try:
        for section in sections:
            section.prepare()
        if quiet_startups:
            for section in sections:
                log(f"  starting {section.name}")
                section.launch(apps)
        else:
            errors: list[BaseException] = []

            def start(section: Parallel) -> None:
                try:
                    section.launch(apps)
                except BaseException as exc:  # noqa: BLE001 - re-raised below
                    errors.append(exc)

            starters = [threading.Thread(target=start, args=(s,)) for s in sections]
            for t in starters:
                t.start()
            for t in starters:
                t.join()
            if errors:
                raise errors[0]
    except BaseException:
        for section in sections:
            section.close()
        raise
    threads = [threading.Thread(target=s.thread_main, name=s.name) for s in sections]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for section in sections:
        if section.error is not None:
            raise RuntimeError(f"{section.name} failed") from section.error


# -- 7. the Home tab at scale, while Slack is slow ------------------------------------------------------

HOME_STATUSES = ("draft", "scheduled", "processing", "published", "failed")
HOME_USERS = ("U_ANA", "U_BOB", "U_CAROL", "U_DAN", "U_ERIN", "U_FRED", "U_GINA", "U_HAL")
HOME_METHODS = ("auth.test", "chat.getPermalink", "views.publish")


def seed_home(engine: Engine, choppity: FakeChoppity, count: int) -> dict[str, int]:
    """`count` carded posts spread evenly over the Home tab's groups; how many of each status."""
    rows = []
    future_ms = int((time.time() + 86_400) * 1000)
    for n in range(count):
        status = HOME_STATUSES[n % len(HOME_STATUSES)]
        platform = PLATFORMS[n % len(PLATFORMS)]
        extra: dict[str, Any] = {"scheduled_at": future_ms} if status == "scheduled" else {}
        remote = choppity.add_post(platform, status=status, **extra)
        rows.append(post_row(remote, status=status, message_ts=f"{1_700_000_000 + n}.000300",
                             age=timedelta(minutes=n % 600)))
    insert_rows(engine, Post, rows)
    return {status: sum(1 for r in rows if r["status"] == status) for status in HOME_STATUSES}


def _answered_home(slack: FakeSlack, user: str, seen: int, latency: float, timeout: float = 60.0) -> Any:
    """The first views.publish for `user` after the first `seen` ones, once Slack has answered it.

    Polled cheaply (a count) until it arrives: `calls()` deep-copies under the fake's lock, which
    would delay the answer being measured.
    """
    deadline = time.monotonic() + timeout
    slack.wait_for(lambda: slack.count("views.publish") > seen, timeout=timeout, message=f"views.publish for {user}")
    while time.monotonic() < deadline:
        time.sleep(latency + 0.05)
        mine = [c for c in slack.calls("views.publish")[seen:] if c.args.get("user_id") == user]
        if mine and mine[0].answered_at is not None:
            return mine[0]
    raise AssertionError(f"views.publish for {user} was not answered within {timeout} s")


def home_section(size: Size, workdir: Path, apps: list[dict[str, Any]]) -> dict[str, Any]:
    """app_home_opened → views.publish with hundreds of posts while every Slack call takes 200 ms.

    The events are sent from this process, where the fake Slack records (with time.monotonic) when
    each call arrived and when it was answered, so both ends of every figure are on one clock.
    """
    with fakes() as (slack, choppity):
        users = HOME_USERS[: size.home_users]
        for user in users:
            slack.add_user(user)
        url, engine = new_database(workdir, "home")
        by_status = seed_home(engine, choppity, size.home_posts)
        latency = size.home_slack_latency
        slack.latency(latency)  # before start-up: the warm-up auth.test pays it too, as it would in production
        app = AppProcess(app_env(slack, choppity, url), workdir / "home.log")
        app.start()
        healthy_at = time.monotonic()
        apps.append({"section": "home tab", "database": f"existing, {size.home_posts} posts",
                     "startup_s": app.startup_seconds, **app.memory()})
        try:
            driver = SlackDriver(SimpleNamespace(url=app.url), slack)  # type: ignore[arg-type]
            opens: list[dict[str, Any]] = []
            for n in range(size.home_opens):
                user = users[n % len(users)]  # round-robin: every user's first open is in the first round
                seen = len(slack.calls("views.publish"))
                sent = time.monotonic()
                response = driver.event({"type": "app_home_opened", "user": user, "tab": "home", "channel": f"D{n}"})
                acked = time.monotonic()
                call = _answered_home(slack, user, seen, latency)
                opens.append({"user": user, "first_for_user": n < len(users), "sent": sent,
                              "status": response.status_code, "ack_ms": (acked - sent) * 1000,
                              "received_ms": (call.at - sent) * 1000, "answered_ms": (call.answered_at - sent) * 1000,
                              "publish_error": call.error})
                time.sleep(max(0.25, latency))  # anything the open set off lands in its own window
            ends = [o["sent"] for o in opens[1:]] + [time.monotonic()]
            every_call = slack.calls()
            for o, end in zip(opens, ends, strict=True):
                inside = [c.method for c in every_call if o["sent"] <= c.at < end]
                o["calls"] = {m: inside.count(m) for m in HOME_METHODS}
                o["other_calls"] = len([m for m in inside if m not in HOME_METHODS])
            warm = [c for c in every_call if c.method == "auth.test"]
            first = opens[0]
            view = slack.home_view(users[-1]) or {}
            links = [b["accessory"]["url"] for b in view.get("blocks", []) if isinstance(b.get("accessory"), dict)
                     and b["accessory"].get("url")]
            answered = [o["answered_ms"] for o in opens]
            floor_ms = latency * 1000  # one views.publish, the only call an open needs
            figures: dict[str, Any] = {
                "posts": size.home_posts,
                "by_status": by_status,
                "slack_latency_s": latency,
                "users": len(users),
                "opens": len(opens),
                # The figure: event sent → views.publish answered by Slack (the Home tab is updated).
                "event_to_publish_answered": summary(answered),
                # The same, to the moment Slack received the views.publish call.
                "event_to_publish_received": summary([o["received_ms"] for o in opens]),
                "event_ack": summary([o["ack_ms"] for o in opens]),
                "event_statuses": {str(s): sum(1 for o in opens if o["status"] == s) for s in {o["status"] for o in opens}},
                "publish_errors": [o["publish_error"] for o in opens if o["publish_error"]],
                "first_open": {
                    "answered_ms": first["answered_ms"], "received_ms": first["received_ms"],
                    "calls": first["calls"], "sent_after_healthy_ms": (first["sent"] - healthy_at) * 1000,
                    "warmup_auth_test_answered_before": bool(warm) and warm[0].answered_at is not None
                    and warm[0].answered_at <= first["sent"],
                },
                "first_open_per_user": summary([o["answered_ms"] for o in opens if o["first_for_user"]]),
                "later_opens": summary([o["answered_ms"] for o in opens if not o["first_for_user"]]),
                "calls_per_open": {m: {"total": sum(o["calls"][m] for o in opens),
                                       "max": max(o["calls"][m] for o in opens)} for m in HOME_METHODS},
                "other_calls_during_opens": sum(o["other_calls"] for o in opens),
                "auth_test_calls_in_process": len(warm),
                "links_in_last_view": len(links),
                "floor_ms": floor_ms,
                "opens_detail": [{k: v for k, v in o.items() if k != "sent"} for o in opens],
            }
            figures["p50_vs_floor"] = ratio(figures["event_to_publish_answered"]["p50"], floor_ms)
            figures["p95_vs_floor"] = ratio(figures["event_to_publish_answered"]["p95"], floor_ms)
            return figures
        finally:
            app.stop()


# -- 8. peak memory under a huge body -------------------------------------------------------------------

REAP_TOKEN = "reap-token-for-the-benchmark"
HUGE_BODY_ROUTES = ("/slack/events", "/webhooks/choppity", f"/webhooks/reap/{REAP_TOKEN}")


def memory_section(size: Size, workdir: Path, apps: list[dict[str, Any]]) -> dict[str, Any]:
    """The app's peak RSS (VmHWM) before and after a huge body to every route, announced and streamed."""
    with fakes() as (slack, choppity):
        url, _ = new_database(workdir, "memory")
        env = app_env(slack, choppity, url, REAP_API_KEY="reap-key-for-the-benchmark",
                      REAP_API_URL="http://127.0.0.1:9", REAP_WEBHOOK_TOKEN=REAP_TOKEN)
        app = AppProcess(env, workdir / "memory.log")
        app.start()
        apps.append({"section": "huge bodies", "database": "existing, empty", "startup_s": app.startup_seconds,
                     **app.memory()})
        try:
            # Every route once with a normal body first, so what is measured is the huge body, not first use.
            warmup = {path: httpx.post(f"{app.url}{path}", content=b"{}", timeout=10,
                                       headers={"content-type": "application/json"}).status_code
                      for path in HUGE_BODY_ROUTES}
            before = peak_rss_kib(app.pid)
            rss_before = app.memory().get("rss_mib")
            routes: dict[str, Any] = {}
            for path in HUGE_BODY_ROUTES:
                started = time.monotonic()
                announced = status_of_announced(app.url, path, size.huge_body_bytes)
                announced_s = time.monotonic() - started
                started = time.monotonic()
                streamed = status_of_streamed(app.url, path, size.huge_body_bytes)
                streamed_s = time.monotonic() - started
                routes[path.replace(REAP_TOKEN, "{token}")] = {
                    "announced": announced, "streamed": streamed, "announced_s": announced_s,
                    "streamed_s": streamed_s, "peak_after_mib": peak_rss_kib(app.pid) / 1024,
                }
            after = peak_rss_kib(app.pid)
            livez = httpx.get(f"{app.url}/livez", timeout=5).status_code
            statuses = [r[k] for r in routes.values() for k in ("announced", "streamed")]
            growth = (after - before) / 1024
            return {
                "body_bytes": size.huge_body_bytes,
                "body_mib": size.huge_body_bytes / 2**20,
                "warmup_statuses": {p.replace(REAP_TOKEN, "{token}"): s for p, s in warmup.items()},
                "rss_before_mib": rss_before,
                "peak_before_mib": before / 1024,
                "peak_after_mib": after / 1024,
                "growth_mib": growth,
                "growth_vs_body": ratio(growth, size.huge_body_bytes / 2**20),
                "routes": routes,
                "all_refused": all(s in (413, 0) for s in statuses),
                "livez_after": livez,
            }
        finally:
            app.stop()


def preview_section(size: Size, workdir: Path, apps: list[dict[str, Any]]) -> dict[str, Any]:
    """A clip's video rendered by Choppity and uploaded into its thread: the app's peak RSS before and after."""
    with fakes() as (slack, choppity):
        url, _ = new_database(workdir, "preview")
        app = AppProcess(app_env(slack, choppity, url, CLIP_PREVIEW="upload"), workdir / "preview.log")
        app.start()
        apps.append({"section": "preview upload", "database": "existing, empty", "startup_s": app.startup_seconds,
                     **app.memory()})

        def upload(nbytes: int) -> float:
            choppity.render_size = nbytes
            remote = choppity.add_post("youtube")
            done = len(slack.files())
            started = time.monotonic()
            send_event(app, "post.draft.created", {"post_id": remote["id"], "clip_id": remote["clip_id"]})
            deadline = started + 600
            while len([f for f in slack.files() if f.completed]) <= done:
                if time.monotonic() > deadline:
                    raise RuntimeError("the clip's video never reached its thread")
                time.sleep(0.05)
            uploaded = slack.files()[-1]
            if uploaded.sha256 != render_digest(remote["clip_id"], nbytes):
                raise RuntimeError("Slack received other bytes than Choppity rendered")
            return time.monotonic() - started

        try:
            upload(2**20)  # warm up the whole path, so what is measured is the file's size
            before = peak_rss_kib(app.pid)
            seconds = upload(size.preview_bytes)
            after = peak_rss_kib(app.pid)
            return {"video_mib": size.preview_bytes / 2**20, "peak_before_mib": before / 1024,
                    "peak_after_mib": after / 1024, "growth_mib": (after - before) / 1024,
                    "event_to_video_s": seconds}
        finally:
            app.stop()


# -- 9. two replicas on PostgreSQL sharing one Choppity budget ------------------------------------------

REPLICA_VARIANTS = {
    # name: (RATE_LIMIT_STORAGE_URL, what it is)
    "postgres": ("", "shared window in PostgreSQL (the default when DATABASE_URL is PostgreSQL)"),
    "redis": ("redis", "shared window in Redis"),
    "memory": ("memory://", "each replica its own in-memory window (before)"),
}


def bench_database_url() -> str | None:
    """The PostgreSQL server section 9 makes its schemas on (BENCH_DATABASE_URL, else TEST_DATABASE_URL)."""
    return os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL") or None


def bench_redis_url() -> str | None:
    """A reachable Redis for section 9 (BENCH_REDIS_URL, default redis://127.0.0.1:6379/0), else None."""
    url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        client.ping()
        client.close()
    except Exception:  # noqa: BLE001 - unreachable or not installed: the variant is left out
        return None
    return url


def _replica_run(size: Size, workdir: Path, base_url: str, name: str, storage_url: str,
                 apps: list[dict[str, Any]], start_lock: threading.Lock) -> dict[str, Any]:
    """Two app processes on one fresh PostgreSQL schema; a burst of draft webhooks split across them."""
    from tests.harness import postgres_schema

    # A fresh Choppity account per run: shared windows are per API key, and Redis outlives the run.
    api_key = f"ck-bench-{uuid.uuid4().hex[:12]}-team_abc"
    with FakeSlack() as slack, FakeChoppity(api_key=api_key, rate_limit_per_minute=60) as choppity, \
            postgres_schema(base_url) as url:
        overrides = {"RATE_LIMIT_STORAGE_URL": storage_url} if storage_url else {}
        env = app_env(slack, choppity, url, **overrides)
        engine = make_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        replicas: list[AppProcess] = []
        try:
            with start_lock:  # one start at a time: the first runs the migrations
                for n in range(2):
                    replicas.append(AppProcess(env, workdir / f"replicas_{name}_{n + 1}.log").start())
                    apps.append({"section": f"replicas ({name}) #{n + 1}", "database": "PostgreSQL, new schema"
                                 if n == 0 else "PostgreSQL, migrated", "startup_s": replicas[-1].startup_seconds,
                                 **replicas[-1].memory()})
            remotes = [choppity.add_post(PLATFORMS[n % len(PLATFORMS)]) for n in range(size.replica_drafts)]
            started = time.monotonic()
            with httpx.Client(timeout=60) as client, ThreadPoolExecutor(8) as pool:
                statuses = list(pool.map(
                    lambda n: send_event(replicas[n % 2], "post.draft.created",
                                         {"post_id": remotes[n]["id"], "clip_id": remotes[n]["clip_id"]}, client),
                    range(size.replica_drafts)))

            def carded() -> int:
                with Session(engine) as session:
                    return int(session.exec(
                        select(func.count()).select_from(Post).where(col(Post.message_ts).is_not(None))).one())

            deadline = started + size.replica_timeout
            while carded() < size.replica_drafts and time.monotonic() < deadline:
                time.sleep(0.25)
            done = carded()
            settle(engine, timeout=60)
            calls = choppity.calls()
            times = [c.at for c in calls if c.at >= started]
            posted = [c for c in slack.calls("chat.postMessage")
                      if c.http_status == 200 and c.error is None and not c.args.get("thread_ts")]
            cards = {json.dumps(c.args.get("metadata", {}).get("event_payload", {}), sort_keys=True) for c in posted}
            last_card = max((c.at for c in posted), default=started)
            return {
                "storage": REPLICA_VARIANTS[name][1],
                "drafts": size.replica_drafts,
                "event_statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
                "choppity_calls": len(times),
                "max_calls_in_any_60s": max_in_window(times),
                "choppity_429s": choppity.rate_limited_count,
                "cards": done,
                "cards_lost": size.replica_drafts - done,
                "duplicate_cards": len(posted) - len(cards),
                "first_event_to_last_card_s": last_card - started,
                "ideal_s": 60.0 * ((size.replica_drafts - 1) // 45),  # 45 background reads a minute
            }
        finally:
            for replica in replicas:
                replica.stop()
            engine.dispose()


def replicas_section(size: Size, workdir: Path, apps: list[dict[str, Any]]) -> dict[str, Any]:
    """Two replicas on one PostgreSQL database card a burst needing more Choppity reads than a minute
    allows: with a shared window (PostgreSQL; Redis when reachable) and, as the reference, with each
    replica keeping its own window. The runs go side by side, each with its own fakes and schema."""
    base_url = bench_database_url()
    if not base_url:
        return {"skipped": "needs PostgreSQL: set BENCH_DATABASE_URL or TEST_DATABASE_URL"}
    redis_url = bench_redis_url()
    variants = {name: (redis_url if url == "redis" else url) for name, (url, _) in REPLICA_VARIANTS.items()
                if url != "redis" or redis_url}
    results: dict[str, Any] = {}
    errors: list[BaseException] = []
    start_lock = threading.Lock()

    def run(name: str, storage_url: str) -> None:
        try:
            results[name] = _replica_run(size, workdir, base_url, name, storage_url or "", apps, start_lock)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=item, name=f"replicas {item[0]}") for item in variants.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError("replicas section failed") from errors[0]
    if not redis_url:
        results["redis"] = {"skipped": "Redis not reachable (BENCH_REDIS_URL, default redis://127.0.0.1:6379/0)"}
    return results


# -- 10. the cost of metrics: ack latency with /metrics on and off, side by side -----------------------


def metrics_section(size: Size, workdir: Path, loadgen: LoadGen, apps: list[dict[str, Any]]) -> dict[str, Any]:
    """Publish and Schedule clicks on two apps, one with metrics on and scraped every second, one with
    METRICS_ENABLED=false, interleaved in the same seconds against the same fakes."""
    with fakes(choppity_limit=None) as (slack, choppity), ExitStack() as stack:
        slack.trigger_ttl = 1e9
        started: dict[str, tuple[AppProcess, Engine]] = {}
        for label, enabled in (("on", "true"), ("off", "false")):
            url, engine = new_database(workdir, f"metrics-{label}")
            app = AppProcess(app_env(slack, choppity, url, CHOPPITY_REQUESTS_PER_MINUTE="600", METRICS_ENABLED=enabled),
                             workdir / f"metrics-{label}.log")
            app.start()
            stack.callback(app.stop)
            apps.append({"section": f"metrics {label}", "database": "existing, empty",
                         "startup_s": app.startup_seconds, **app.memory()})
            started[label] = (app, engine)
        per_kind = size.metrics_clicks_per_kind
        plan: list[list[str]] = []
        warmup: list[list[str]] = []
        rng = random.Random(10)
        ids: dict[str, tuple[list[int], list[int]]] = {}
        for label, (app, engine) in started.items():
            ids[label] = (seed_cards(engine, slack, choppity, per_kind, offset=1),
                          seed_cards(engine, slack, choppity, min(20, max(2, per_kind)), offset=2))
            warmup += [[f"{app.url}/slack/events", click_body(slack, ActionId.SCHEDULE, ids[label][1][-1])]] * 3
        for n in range(per_kind):
            round_: list[list[str]] = []
            for label, (app, _) in started.items():
                fresh, reusable = ids[label]
                round_.append([f"publish_{label}", f"{app.url}/slack/events", click_body(slack, ActionId.PUBLISH, fresh[n])])
                round_.append([f"schedule_{label}", f"{app.url}/slack/events",
                               click_body(slack, ActionId.SCHEDULE, reusable[n % len(reusable)])])
            rng.shuffle(round_)
            plan.extend(round_)
        scrapes = _Scraper(started["on"][0].url)
        scrapes.start()
        try:
            result = loadgen.run({"op": "clicks", "base": started["on"][0].url, "secret": SIGNING_SECRET,
                                  "rate": size.click_rate, "plan": plan, "warmup": warmup})
        finally:
            scrapes.stop()
        figures: dict[str, Any] = {"statuses": result["statuses"], "clicks_per_kind": per_kind}
        for kind in ("publish", "schedule"):
            on, off = summary(result["latencies"][f"{kind}_on"]), summary(result["latencies"][f"{kind}_off"])
            figures[kind] = {"on": on, "off": off, "on_vs_off_p50": ratio(on["p50"], off["p50"]),
                             "on_vs_off_p99": ratio(on["p99"], off["p99"])}
        figures["scrape"] = {**summary(scrapes.latencies), "bytes": scrapes.size, "errors": scrapes.errors,
                             "interval_s": scrapes.interval}
        settle(started["on"][1])
        settle(started["off"][1])
        return figures


class _Scraper:
    """GET /metrics every `interval` seconds on a side thread, as an eager Prometheus would."""

    def __init__(self, base: str, interval: float = 1.0) -> None:
        self.base = base
        self.interval = interval
        self.latencies: list[float] = []
        self.size = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-scraper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        with httpx.Client(base_url=self.base, timeout=10) as client:
            while True:
                started = time.perf_counter()
                response = client.get("/metrics")
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code == 200:
                    self.latencies.append(elapsed)
                    self.size = len(response.content)
                else:
                    self.errors += 1
                if self._stop.wait(self.interval):
                    return
