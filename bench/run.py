"""Greenlight benchmarks: `python -m bench.run [--size tiny|full] [--json PATH] [--only STEP,...]`.

Starts the real app (as its own process, `bench.serve`) against the fake Slack and fake Choppity on
loopback, measures each figure beside a reference in the same run, prints a table and writes JSON
(default `bench/results/latest.json`). See docs/benchmarks.md for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import ROOT, SIZES, LoadGen
from bench.sections import (
    Burst,
    ClipOfFour,
    Reconcile,
    clicks_section,
    cost_section,
    home_section,
    memory_section,
    metrics_section,
    preview_section,
    replicas_section,
    run_parallel,
    webhooks_section,
)

DEFAULT_JSON = ROOT / "bench" / "results" / "latest.json"
# The steps, in the order a full run takes them (`--only` picks some).
STEPS = ("clicks", "cost", "webhooks", "home", "memory", "metrics", "burst", "replicas")


def log(message: str) -> None:
    """Progress, on stderr (the table goes to stdout)."""
    print(message, file=sys.stderr, flush=True)


def run(size_name: str, workdir: Path, only: tuple[str, ...] = STEPS) -> dict[str, Any]:
    """Every section (or those in `only`), in an order that keeps the latency measurements on a quiet machine."""
    size = SIZES[size_name]
    started = time.monotonic()
    load_before = os.getloadavg()
    apps: list[dict[str, Any]] = []
    sections: dict[str, Any] = {}
    loadavg: dict[str, list[float]] = {}
    timings: dict[str, float] = {}
    mark = time.monotonic()

    def done(step: str) -> None:
        nonlocal mark
        loadavg[f"after {step}"] = [round(x, 2) for x in os.getloadavg()]
        timings[step] = round(time.monotonic() - mark, 1)
        mark = time.monotonic()
        log(f"  {step}: {timings[step]:.0f} s, load average {loadavg[f'after {step}'][0]:.2f}")

    burst_a, burst_b = Burst(size, workdir, slack_bound=True), Burst(size, workdir, slack_bound=False)
    reconcile, stressed = Reconcile(size, workdir, stressed=False), Reconcile(size, workdir, stressed=True)
    clip4 = ClipOfFour(size, workdir)

    def clicks() -> None:
        with LoadGen() as loadgen:
            sections["clicks"] = clicks_section(size, workdir, loadgen, apps)

    def cost() -> None:
        with LoadGen() as loadgen:
            sections["cost_growth"] = cost_section(size, workdir, loadgen, apps)

    def webhooks() -> None:
        with LoadGen() as loadgen:
            out = webhooks_section(size, workdir, loadgen, apps)
        sections["upstream_per_post"] = out.pop("upstream_per_post")
        sections["webhooks"] = out

    def home() -> None:
        sections["home"] = home_section(size, workdir, apps)

    def memory() -> None:
        sections["huge_body"] = memory_section(size, workdir, apps)
        sections["preview_upload"] = preview_section(size, workdir, apps)

    def replicas() -> None:
        sections["replicas"] = replicas_section(size, workdir, apps)

    def metrics_cost() -> None:
        with LoadGen() as loadgen:
            sections["metrics"] = metrics_section(size, workdir, loadgen, apps)

    def side_by_side() -> None:
        run_parallel([burst_a, burst_b, reconcile, stressed, clip4], apps, log,
                     quiet_startups=not size.concurrent_sections)

    every = {"clicks": ("clicks", "click to ack", clicks), "cost": ("cost growth", "cost growth", cost),
             "webhooks": ("webhooks", "webhooks and Choppity calls per approved post", webhooks),
             "home": ("home", "Home tab at scale, Slack answering in 200 ms", home),
             "memory": ("huge body", "peak memory under a huge body and uploading a clip's video", memory),
             "metrics": ("metrics", "ack latency with metrics on and off (scraped every second)", metrics_cost),
             "burst": ("burst", "burst of drafts, footprint and reconciler (side by side)", side_by_side),
             "replicas": ("replicas", "two replicas on PostgreSQL sharing one Choppity budget", replicas)}
    steps = [every[name] for name in STEPS if name in only]
    if size.concurrent_sections:
        # Smoke runs only: everything at once, the figures are not worth reading.
        log("all sections at once (smoke run) ...")
        with ThreadPoolExecutor(len(steps)) as pool:
            for future in [pool.submit(fn) for _, _, fn in steps]:
                future.result()
        done("all sections")
    else:
        for n, (step, title, fn) in enumerate(steps, 1):
            log(f"{n}/{len(steps)} {title} ...")
            fn()
            done(step)
    if "burst" in only:
        sections["burst"] = burst_a.result
        sections["burst_default_budget"] = burst_b.result
        sections["clip_of_four"] = clip4.result
        sections["reconciler"] = reconcile.result
        sections["reconciler_stressed"] = stressed.result
    if "burst" in only and "clicks" in only:
        existing = [a["startup_s"] for a in apps if not a["database"].startswith("new")]
        sections["footprint"] = {
            "rss_after_start_mib": burst_a.result["memory_after_start"].get("rss_mib"),
            "rss_after_burst_mib": burst_a.result["memory_after_burst"].get("rss_mib"),
            "peak_rss_mib": burst_a.result["memory_after_burst"].get("peak_rss_mib"),
            "startup_new_database_s": next(a["startup_s"] for a in apps if a["database"].startswith("new")),
            "startup_existing_database_median_s": statistics.median(existing) if existing else None,
            "startup_existing_database_max_s": max(existing) if existing else None,
            "apps": apps,
        }
    else:
        sections["apps"] = apps  # a partial run (--only): each app's start-up and memory, without the summary
    return {
        "size": size_name,
        "only": list(only),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_s": time.monotonic() - started,
        "code": _git_state(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_before": list(load_before),
            "loadavg": loadavg,
        },
        "section_seconds": timings,
        "sections": sections,
    }


def _git_state() -> dict[str, Any]:
    """The commit measured, and whether bot/ had uncommitted changes."""
    import subprocess

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"commit": git("rev-parse", "--short", "HEAD") or None, "bot_dirty": bool(git("status", "--porcelain", "bot"))}


# -- targets and the table ---------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _x(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else "yes" if ok else "NO"


def targets_and_rows(results: dict[str, Any]) -> tuple[list[dict[str, Any]], list[list[str]]]:
    """Every figure as a table row, and every target with whether it was met."""
    s = results["sections"]
    rows: list[list[str]] = []
    targets: list[dict[str, Any]] = []

    def target(name: str, ok: bool | None, detail: str) -> str:
        targets.append({"target": name, "met": ok, "detail": detail})
        return _met(ok)

    if "clicks" in s:
        clicks = s["clicks"]
        floor, naive = clicks["floor"], clicks.get("naive", {})
        for kind in ("publish", "edit", "schedule"):
            f = clicks[kind]
            ok = f["p99"] is not None and f["p99"] < 100 and f["vs_floor_p99"] is not None and f["vs_floor_p99"] <= 2
            rows.append([
                f"1. {kind.title()} click → ack, ms (p50/p95/p99, n={f['n']})",
                f"{_ms(f['p50'])} / {_ms(f['p95'])} / {_ms(f['p99'])}",
                f"floor {_ms(floor['p50'])} / {_ms(floor['p95'])} / {_ms(floor['p99'])}",
                f"p50 {_x(f['vs_floor_p50'])}, p99 {_x(f['vs_floor_p99'])}",
                "p99 < 100 ms and ≤ 2× floor",
                target(f"{kind} click p99 < 100 ms and within 2x floor", ok,
                       f"p99 {_ms(f['p99'])} ms, {_x(f['vs_floor_p99'])} floor p99"),
            ])
        rows.append([
            f"1. Naive bot (Choppity before ack), ms (n={naive.get('n', 0)})",
            f"{_ms(naive.get('p50'))} / {_ms(naive.get('p95'))} / {_ms(naive.get('p99'))}",
            f"floor p99 {_ms(floor['p99'])}", _x(ratio_(naive.get("p99"), floor["p99"])), "reference", "",
        ])

    if "webhooks" in s:
        w = s["webhooks"]
        for rate, row in w["rates"].items():
            g, b = row["greenlight"], row["bare"]
            ok: bool | None = None
            goal = ""
            if rate == "100":
                ok = g["p99"] is not None and g["p99"] < 250
                goal = "p99 < 250 ms"
            rows.append([
                f"2. Webhooks at {rate}/s: latency ms (p50/p99), achieved/s",
                f"{_ms(g['p50'])} / {_ms(g['p99'])}, {g['achieved_per_s']:.0f}/s",
                f"bare {_ms(b['p50'])} / {_ms(b['p99'])}, {b['achieved_per_s']:.0f}/s",
                f"p99 {_x(row['p99_vs_bare'])}", goal or "report",
                target("webhook p99 < 250 ms at 100/s", ok, f"p99 {_ms(g['p99'])} ms") if goal else "",
            ])
        mt = w["max_throughput_per_s"]
        rows.append([
            "2. Webhooks flat out (32 connections), events/s",
            f"{mt['greenlight']:.0f}/s", f"bare {mt['bare']:.0f}/s", _x(w["throughput_vs_bare"]), "report ratio", "",
        ])
        ok = w["lost"] == 0 and w["duplicates_recognised"] == w["duplicates_sent"]
        rows.append([
            "2. Webhooks persisted / lost / redeliveries recognised",
            f"{w['persisted']} / {w['lost']} / {w['duplicates_recognised']} of {w['duplicates_sent']}",
            "", "", "0 lost, all redeliveries recognised",
            target("webhooks: none lost, every redelivery recognised", ok, f"lost {w['lost']}"),
        ])

    if "burst" in s:
        for key, label in (("burst", "Slack-bound"), ("burst_default_budget", "default Choppity budget")):
            bu = s[key]
            primary = key == "burst"
            rows.append([
                f"3. Burst of {bu['drafts']} drafts ({label}): share of allowed rate",
                f"{_pct(bu['share_of_allowed'])} ({_num(bu['achieved_per_s'], 2)}/s)",
                f"allowed {bu['allowed_per_s']:g}/s + burst {bu['allowed_burst']}",
                "", "≥ 90%" if primary else "report",
                target("burst: >= 90% of Slack's allowed rate", bu["share_of_allowed"] is not None
                       and bu["share_of_allowed"] >= 0.9, _pct(bu["share_of_allowed"])) if primary else "",
            ])
            rows.append([
                f"3. Burst ({label}): Slack 429s / cards lost / duplicates",
                f"{bu['slack_429s']} / {bu['cards_lost']} / {bu['duplicate_cards']}",
                f"{bu['slack_429s_in_first_5s']} of the 429s in the first 5 s", "",
                "only the first few 429s; 0 lost" if primary else "0 lost",
                target("burst: only the first few 429s (<= 5), no card lost", bu["slack_429s"] <= 5 and bu["cards_lost"] == 0,
                       f"{bu['slack_429s']} 429s, {bu['cards_lost']} lost") if primary else
                target("burst with default budget: no card lost", bu["cards_lost"] == 0, f"{bu['cards_lost']} lost"),
            ])
            rows.append([
                f"3. Burst ({label}, {bu['clips']} clips): first → last message (clip messages + cards), s",
                f"{bu['first_to_last_message_s']:.1f}", f"ideal {bu['ideal_first_to_last_message_s']:.1f}",
                "", "report", "",
            ])
    if "clip_of_four" in s:
        c4 = s["clip_of_four"]
        ok = c4["cards_lost"] == 0 and c4["extra_clip_messages"] == 0 and \
            c4["first_to_last_card_s"] <= 1.5 * c4["ideal_first_to_last_card_s"] + 0.5
        rows.append([
            f"3b. Clip with 4 drafts at Slack's limit ({c4['allowed_per_s']:g}/s): first → last card visible, s "
            f"(median of {len(c4['rounds'])})",
            f"{c4['first_to_last_card_s']:.2f}", f"ideal {c4['ideal_first_to_last_card_s']:.2f}",
            f"event → clip message {c4['event_to_clip_message_s']:.2f} s, → last card {c4['event_to_last_card_s']:.2f} s",
            "≤ 1.5× ideal + 0.5 s; one clip message, no card lost",
            target("clip of 4: cards follow each other at Slack's pace", ok,
                   f"{c4['first_to_last_card_s']:.2f} s, {c4['cards_lost']} lost, {c4['extra_clip_messages']} extra"),
        ])

    if "cost_growth" in s:
        cost = s["cost_growth"]
        sizes = list(cost["sizes"])
        for kind in ("publish", "edit", "schedule", "floor"):
            cells = " · ".join(f"{_ms(cost['sizes'][n][kind]['p50'])}/{_ms(cost['sizes'][n][kind]['p95'])}" for n in sizes)
            growth = cost["growth_largest_vs_smallest"][kind]
            flat = None if kind == "floor" else (growth["p50"] is not None and growth["p50"] <= 1.25)
            rows.append([
                f"4. {kind.title()} click p50/p95 ms at {' · '.join(sizes)} posts",
                cells, "", f"p50 {_x(growth['p50'])}, p95 {_x(growth['p95'])}"
                + (f"; p50/floor {_x(growth.get('p50_floor_normalised'))}" if kind != "floor" else ""),
                "flat (p50 ratio ≤ 1.25×)" if kind != "floor" else "reference",
                target(f"cost growth flat for {kind} (p50 {sizes[-1]} vs {sizes[0]} posts <= 1.25x)", flat,
                       _x(growth["p50"])) if kind != "floor" else "",
            ])

    if "footprint" in s:
        fp = s["footprint"]
        rows.append(["5. Resident memory after start / after burst / peak, MiB",
                     f"{_num(fp['rss_after_start_mib'])} / {_num(fp['rss_after_burst_mib'])} / {_num(fp['peak_rss_mib'])}",
                     "", "", "report", ""])
        rows.append(["5. Start-up to healthy, s (new DB / existing DB median)",
                     f"{fp['startup_new_database_s']:.2f} / {_num(fp['startup_existing_database_median_s'], 2)}",
                     "", "", "report", ""])

    if "upstream_per_post" in s:
        up = s["upstream_per_post"]
        a = up["approved"]
        rows.append([
            "6. Choppity calls per approved post (draft → publish → published)",
            f"{_num(a['calls_per_post'], 1)} (max {a['max']}, n={a['posts']})",
            f"with an edit: {_num(up['edited_then_approved']['calls_per_post'], 1)}", "", "≤ 3",
            target("Choppity calls per approved post <= 3", a["max"] is not None and a["max"] <= 3, f"max {a['max']}"),
        ])

    if "reconciler" in s:
        for key in ("reconciler", "reconciler_stressed"):
            r = s[key]
            worst = r["max_calls_in_any_60s"]
            # A window shorter than a minute (tiny runs) cannot say anything about a per-minute budget.
            ok_r = None if worst is None else worst < 60 and r["choppity_429s"] == 0
            measured = (f"{worst} in the busiest 60 s ({r['calls']} in {r['window_s']:g} s)" if worst is not None
                        else f"{r['calls']} in {r['window_s']:g} s (window under a minute)")
            rows.append([
                f"6. Reconciler every {r['interval_s']:g} s, {r['tracked_posts']} tracked posts: Choppity calls",
                measured, f"{r['choppity_429s']} 429s from Choppity", "", "< 60 per minute",
                target(f"reconciler (every {r['interval_s']:g} s) under 60 calls/min", ok_r,
                       f"max {worst} in 60 s, {r['choppity_429s']} 429s"),
            ])

    if "home" in s:
        h = s["home"]
        ans, first = h["event_to_publish_answered"], h["first_open"]
        calls = h["calls_per_open"]
        floor_ms = h["floor_ms"]
        ok = ans["p95"] is not None and ans["p95"] <= 500
        rows.append([
            f"7. Home tab, {h['posts']} posts, Slack {h['slack_latency_s'] * 1000:.0f} ms per call: "
            f"event → views.publish answered, ms (p50/p95/max, n={ans['n']})",
            f"{_ms(ans['p50'])} / {_ms(ans['p95'])} / {_ms(ans['max'])}",
            f"floor {_ms(floor_ms)} (1 views.publish)",
            f"p50 {_x(h['p50_vs_floor'])}, p95 {_x(h['p95_vs_floor'])}", "p95 ≤ 500 ms",
            target("Home tab p95 <= 500 ms with Slack at 200 ms per call", ok, f"p95 {_ms(ans['p95'])} ms"),
        ])
        per_user = h["first_open_per_user"]
        ok = first["answered_ms"] <= 500 and first["calls"]["auth.test"] == 0
        rows.append([
            "7. Home tab: first open in a fresh process / first open of each user (p50/max), ms",
            f"{_ms(first['answered_ms'])} ({first['calls']['auth.test']} auth.test) / "
            f"{_ms(per_user['p50'])} / {_ms(per_user['max'])}",
            f"floor {_ms(floor_ms)}", _x(ratio_(first["answered_ms"], floor_ms)), "≤ 500 ms, no auth.test",
            target("first Home open in a fresh process <= 500 ms without an auth.test", ok,
                   f"{_ms(first['answered_ms'])} ms, {first['calls']['auth.test']} auth.test"),
        ])
        worst = [calls[m]["max"] for m in ("auth.test", "chat.getPermalink", "views.publish")]
        totals = [calls[m]["total"] for m in ("auth.test", "chat.getPermalink", "views.publish")]
        rows.append([
            "7. Home tab: Slack calls per open, most in one open (auth.test / chat.getPermalink / views.publish)",
            f"{worst[0]} / {worst[1]} / {worst[2]} (in all {h['opens']} opens: {totals[0]} / {totals[1]} / {totals[2]})",
            f"{h['links_in_last_view']} card links in the view, built locally", "", "0 / 0 / 1",
            target("Home tab: one Slack call per open (no auth.test, no chat.getPermalink)", worst == [0, 0, 1],
                   f"{worst}"),
        ])

    if "replicas" in s:
        rep = s["replicas"]
        before = rep.get("memory", {})
        if "skipped" in rep:
            rows.append(["9. Two replicas on PostgreSQL, shared Choppity budget", f"skipped: {rep['skipped']}",
                         "", "", "report", ""])
        for name, label in (("postgres", "PostgreSQL"), ("redis", "Redis")):
            r = rep.get(name)
            if r is None or "skipped" in r:
                continue
            ok = r["choppity_429s"] == 0 and r["max_calls_in_any_60s"] <= 60 and r["cards_lost"] == 0
            rows.append([
                f"9. Two replicas on PostgreSQL, budget shared in {label}, {r['drafts']} drafts: "
                "Choppity calls in the busiest 60 s / 429s",
                f"{r['max_calls_in_any_60s']} / {r['choppity_429s']} ({r['choppity_calls']} calls)",
                f"each replica its own window: {before.get('max_calls_in_any_60s', '–')} / "
                f"{before.get('choppity_429s', '–')} ({before.get('choppity_calls', '–')} calls)",
                "", "≤ 60 in any 60 s, 0 429s, 0 lost",
                target(f"two replicas, budget shared in {label}: within Choppity's 60/min, no 429", ok,
                       f"{r['max_calls_in_any_60s']} in 60 s, {r['choppity_429s']} 429s, {r['cards_lost']} lost"),
            ])
            rows.append([
                f"9. Two replicas, budget shared in {label}: first event → last card, s / cards lost / duplicates",
                f"{r['first_event_to_last_card_s']:.1f} / {r['cards_lost']} / {r['duplicate_cards']}",
                f"ideal {r['ideal_s']:.0f} (45 background reads a minute); own windows: "
                f"{_num(before.get('first_event_to_last_card_s'), 1)}",
                "", "report", "",
            ])

    if "huge_body" in s:
        m = s["huge_body"]
        ok = m["growth_mib"] < 8 and m["all_refused"]
        rows.append([
            f"8. Peak RSS (VmHWM) around a {m['body_mib']:.0f} MiB body to each of {len(m['routes'])} routes, "
            "announced and streamed: before → after, MiB",
            f"{m['peak_before_mib']:.1f} → {m['peak_after_mib']:.1f} (+{m['growth_mib']:.1f})",
            f"body {m['body_mib']:.0f} MiB", f"growth {_pct(m['growth_vs_body'])} of the body",
            "growth < 8 MiB, every body refused",
            target(f"{m['body_mib']:.0f} MiB bodies raise peak memory < 8 MiB", ok,
                   f"+{m['growth_mib']:.1f} MiB, all refused: {m['all_refused']}"),
        ])
        rows.append([
            "8. Huge body: status when announced / streamed (0: cut off after the answer)",
            " · ".join(f"{path} {r['announced']}/{r['streamed']}" for path, r in m["routes"].items()),
            "", "", "report", "",
        ])

    if "preview_upload" in s:
        p = s["preview_upload"]
        rows.append([
            f"8b. Peak RSS (VmHWM) uploading a {p['video_mib']:.0f} MiB clip video into its thread: before → after, "
            "MiB; draft webhook → video in the thread, s",
            f"{p['peak_before_mib']:.1f} → {p['peak_after_mib']:.1f} (+{p['growth_mib']:.1f}); "
            f"{p['event_to_video_s']:.1f} s",
            f"video {p['video_mib']:.0f} MiB", "", "growth < 30 MiB",
            target(f"a {p['video_mib']:.0f} MiB video raises peak memory < 30 MiB", p["growth_mib"] < 30,
                   f"+{p['growth_mib']:.1f} MiB"),
        ])

    if "metrics" in s:
        rows.extend(_metrics_rows(s["metrics"], target))

    return targets, rows


def _metrics_rows(m: dict[str, Any], target: Any) -> list[list[str]]:
    """Section 10: ack latency with metrics on (and scraped) vs off, and the scrape itself."""
    rows: list[list[str]] = []
    for kind in ("publish", "schedule"):
        on, off = m[kind]["on"], m[kind]["off"]
        p50 = m[kind]["on_vs_off_p50"]
        ok = p50 is not None and p50 <= 1.1
        rows.append([
            f"10. {kind.title()} click → ack with metrics on (scraped every second) / off, ms (p50/p95/p99, n={on['n']})",
            f"{_ms(on['p50'])} / {_ms(on['p95'])} / {_ms(on['p99'])}",
            f"off {_ms(off['p50'])} / {_ms(off['p95'])} / {_ms(off['p99'])}",
            f"p50 {_x(p50)}, p99 {_x(m[kind]['on_vs_off_p99'])}", "p50 ≤ 1.10× off",
            target(f"metrics cost nothing measurable on the {kind} ack (p50 within 1.10x of off)", ok, _x(p50)),
        ])
    sc = m["scrape"]
    rows.append([f"10. GET /metrics while clicking, ms (p50/p99/max, n={sc['n']}), body size",
                 f"{_ms(sc['p50'])} / {_ms(sc['p99'])} / {_ms(sc['max'])}, {sc['bytes'] / 1024:.1f} KiB",
                 "", "", "report", ""])
    return rows


def ratio_(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def _num(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def table(rows: list[list[str]]) -> str:
    """A Markdown table."""
    header = ["Figure", "Greenlight", "Reference", "Ratio", "Target", "Met"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run, print the table, write the JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"where to write results (default {DEFAULT_JSON})")
    parser.add_argument("--keep", action="store_true", help="keep the databases and app logs (path printed)")
    parser.add_argument("--render", type=Path, metavar="JSON", help="only print the table of an earlier run's JSON")
    parser.add_argument("--only", metavar="STEP[,STEP]", default=",".join(STEPS),
                        help=f"run only these steps, in the usual order (any of {', '.join(STEPS)})")
    args = parser.parse_args(argv)
    only = tuple(step.strip() for step in args.only.split(",") if step.strip())
    unknown = set(only) - set(STEPS)
    if unknown or not only:
        parser.error(f"--only takes steps from {', '.join(STEPS)}; not {', '.join(sorted(unknown)) or 'nothing'}")
    if args.render:
        results = json.loads(args.render.read_text())
    else:
        workdir = Path(tempfile.mkdtemp(prefix="greenlight-bench-"))
        try:
            results = run(args.size, workdir, only)
        except BaseException:
            log(f"benchmark failed; databases and app logs kept in {workdir}")
            raise
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")  # before rendering: keep the data
        if args.keep:
            log(f"databases and app logs: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    targets, rows = targets_and_rows(results)
    results["targets"] = targets
    results["table"] = table(rows)
    if not args.render:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(results["table"])
    met = sum(1 for t in targets if t["met"])
    evaluated = sum(1 for t in targets if t["met"] is not None)
    load = results["machine"]["loadavg_before"][0]
    partial = results.get("only", list(STEPS)) != list(STEPS)
    steps = f" · only {', '.join(results['only'])}" if partial else ""
    print(f"\n{met} of {evaluated} targets met · size {results['size']}{steps} · {results['duration_s']:.0f} s · "
          f"load average before {load:.2f} on {results['machine']['cpus']} CPUs · results in {args.render or args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
