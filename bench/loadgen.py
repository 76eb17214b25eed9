"""The load generator, in its own process so its timing is not disturbed by the fakes.

`python -m bench.loadgen` reads one JSON job per line on stdin and answers one JSON line on stdout.
Requests are signed here, at send time (Slack's v0 signature, Choppity's `t=,v1=` HMAC), and
latency is measured on this side of the socket: what Slack or Choppity would see, minus the network.

Ops:
- `clicks`: send a fixed plan of signed Slack requests one at a time at a fixed pace (so the app and
  its references are interleaved in the same seconds), plus "naive" clicks on a side thread.
- `webhooks_open`: open-loop Choppity deliveries at a fixed rate for a fixed time; latency counts
  from the moment each request was due, so a stalled server cannot hide its queue (no coordinated
  omission). Every `dup_every`-th delivery repeats an earlier one, to exercise de-duplication.
- `webhooks_closed`: as many deliveries as `concurrency` connections can get through: throughput.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import sys
import threading
import time
import uuid
from collections import Counter
from typing import Any

import httpx


def slack_headers(secret: str, body: str) -> dict[str, str]:
    """Headers Slack sends with a form-encoded interaction."""
    ts = str(int(time.time()))
    mac = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": ts,
        "x-slack-signature": f"v0={mac}",
    }


def choppity_delivery(secret: str, event_type: str, data: dict[str, Any], event_id: str | None = None) -> tuple[bytes, dict[str, str]]:
    """A signed Choppity webhook body and its headers."""
    body = json.dumps(
        {"id": event_id or str(uuid.uuid4()), "type": event_type, "created": int(time.time() * 1000), "data": data},
        separators=(",", ":"),
    ).encode()
    t = int(time.time())
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return body, {"content-type": "application/json", "choppity-signature-256": f"t={t},v1={mac}"}


# -- clicks --------------------------------------------------------------------------------------------


def clicks(job: dict[str, Any]) -> dict[str, Any]:
    """Paced, sequential clicks; returns latencies in ms by label."""
    base, secret, rate = job["base"], job["secret"], float(job["rate"])
    latencies: dict[str, list[float]] = {}
    statuses: dict[str, Counter[int]] = {}
    done = threading.Event()

    def naive_loop() -> None:
        naive = job.get("naive") or {}
        items: list[list[str]] = list(naive.get("items", []))
        interval = float(naive.get("interval", 1.0))
        threads: list[threading.Thread] = []

        def one(path: str, body: str) -> None:
            with sync_client(base) as client:
                headers = slack_headers(secret, body)
                start = time.perf_counter()
                response = client.post(path, content=body.encode(), headers=headers)
                elapsed = (time.perf_counter() - start) * 1000
            latencies.setdefault("naive", []).append(elapsed)
            statuses.setdefault("naive", Counter())[response.status_code] += 1

        for n, (path, body) in enumerate(items):
            # At least one naive sample, even when the main plan is shorter than the interval.
            if n > 0 and done.is_set():
                break
            thread = threading.Thread(target=one, args=(path, body), daemon=True)
            thread.start()
            threads.append(thread)
            done.wait(interval)
        for thread in threads:
            thread.join(120)

    side = threading.Thread(target=naive_loop, daemon=True)
    side.start()
    started = time.perf_counter()
    with sync_client(base) as client:
        for path, body in job.get("warmup", []):  # open the connection, warm the routes; not measured
            client.post(path, content=body.encode(), headers=slack_headers(secret, body))
        started = time.perf_counter()
        for n, (label, path, body) in enumerate(job["plan"]):
            due = started + n / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            headers = slack_headers(secret, body)
            t0 = time.perf_counter()
            response = client.post(path, content=body.encode(), headers=headers)
            latencies.setdefault(label, []).append((time.perf_counter() - t0) * 1000)
            statuses.setdefault(label, Counter())[response.status_code] += 1
    elapsed = time.perf_counter() - started
    done.set()
    side.join(180)
    return {
        "latencies": latencies,
        "statuses": {k: {str(code): n for code, n in v.items()} for k, v in statuses.items()},
        "elapsed": elapsed,
    }


# -- webhooks ------------------------------------------------------------------------------------------


NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def sync_client(base: str) -> httpx.Client:
    """A keep-alive client with Nagle off (so small writes are not held back)."""
    return httpx.Client(base_url=base, timeout=60, transport=httpx.HTTPTransport(socket_options=NODELAY))


def async_client(base: str, connections: int) -> httpx.AsyncClient:
    """The async twin of `sync_client`, with up to `connections` connections."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    transport = httpx.AsyncHTTPTransport(socket_options=NODELAY, limits=limits)
    return httpx.AsyncClient(base_url=base, timeout=60, transport=transport)


async def _warm(client: httpx.AsyncClient, path: str, secret: str, n: int = 5) -> int:
    """A few unmeasured deliveries to open connections; how many were accepted."""
    accepted = 0
    for _ in range(n):
        body, headers = choppity_delivery(secret, "post.published", {"post_id": f"warm-{uuid.uuid4()}"})
        response = await client.post(path, content=body, headers=headers)
        accepted += response.status_code == 200
    return accepted


async def _open_loop(job: dict[str, Any]) -> dict[str, Any]:
    base, path, secret = job["base"], job["path"], job["secret"]
    rate, seconds, dup_every = float(job["rate"]), float(job["seconds"]), int(job.get("dup_every", 0))
    count = max(1, int(rate * seconds))
    # (body, headers, key): a redelivery repeats the bytes of the delivery five places earlier.
    prepared: list[tuple[bytes, dict[str, str], int]] = []
    for n in range(count):
        if dup_every and n % dup_every == dup_every - 1 and n >= 5:
            prepared.append(prepared[n - 5])
        else:
            body, headers = choppity_delivery(secret, "post.published", {"post_id": str(uuid.uuid4())})
            prepared.append((body, headers, n))
    async with async_client(base, 512) as client:
        warm = await _warm(client, path, secret)
        loop = asyncio.get_running_loop()
        results: list[tuple[float, int, bool | None, int, float]] = []

        async def one(n: int, due: float) -> None:
            body, headers, key = prepared[n]
            try:
                response = await client.post(path, content=body, headers=headers)
                status = response.status_code
                duplicate = response.json().get("duplicate") if status == 200 else None
            except httpx.HTTPError:
                status, duplicate = 0, None
            finished = loop.time()
            results.append((finished - due, status, duplicate, key, finished))

        start = loop.time() + 0.05
        tasks = []
        max_lag = 0.0
        for n in range(count):
            due = start + n / rate
            pause = due - loop.time()
            if pause > 0:
                await asyncio.sleep(pause)
            max_lag = max(max_lag, loop.time() - due)
            tasks.append(asyncio.create_task(one(n, due)))
        await asyncio.gather(*tasks)
    answers: dict[int, list[tuple[int, bool | None]]] = {}
    for _, status, duplicate, key, _ in results:
        answers.setdefault(key, []).append((status, duplicate))
    stored = sum(1 for a in answers.values() if any(s == 200 and d is False for s, d in a))
    twice = [a for a in answers.values() if len(a) == 2]
    end = max(r[4] for r in results)
    return {
        "latencies": [r[0] * 1000 for r in results],
        "sent": count,
        "ok": sum(1 for r in results if r[1] == 200),
        "statuses": {str(k): v for k, v in Counter(r[1] for r in results).items()},
        "unique_events": len(answers),
        "accepted_as_new": stored,
        "warmup_accepted": warm,
        "duplicates_sent": len(twice),
        # Exactly one of the two deliveries stored it, the other was recognised as a redelivery.
        "duplicates_recognised": sum(1 for a in twice if sorted(a, key=str) == [(200, False), (200, True)]),
        "elapsed": end - start,
        "max_send_lag_ms": max_lag * 1000,
    }


async def _closed_loop(job: dict[str, Any]) -> dict[str, Any]:
    base, path, secret = job["base"], job["path"], job["secret"]
    concurrency, seconds = int(job["concurrency"]), float(job["seconds"])
    ok = 0
    failed = 0
    async with async_client(base, concurrency) as client:
        warm = await _warm(client, path, secret)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        start = loop.time()

        async def worker() -> None:
            nonlocal ok, failed
            while loop.time() < deadline:
                body, headers = choppity_delivery(secret, "post.published", {"post_id": str(uuid.uuid4())})
                try:
                    response = await client.post(path, content=body, headers=headers)
                    if response.status_code == 200:
                        ok += 1
                    else:
                        failed += 1
                except httpx.HTTPError:
                    failed += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = loop.time() - start
    return {"ok": ok, "failed": failed, "elapsed": elapsed, "per_second": ok / elapsed if elapsed else 0.0,
            "warmup_accepted": warm}


def handle(job: dict[str, Any]) -> dict[str, Any]:
    """Run one job."""
    op = job["op"]
    if op == "clicks":
        return clicks(job)
    if op == "webhooks_open":
        return asyncio.run(_open_loop(job))
    if op == "webhooks_closed":
        return asyncio.run(_closed_loop(job))
    if op == "ping":
        return {"ok": True}
    raise ValueError(f"unknown op {op!r}")


def main() -> None:
    """Serve jobs from stdin until it closes."""
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            result = {"ok": True, "result": handle(json.loads(line))}
        except Exception as exc:  # noqa: BLE001 - reported to the orchestrator, which fails loudly
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
