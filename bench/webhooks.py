"""Webhook deliveries through one worker on a real Kafka, beside a bare HTTP client's ceiling.

    .venv/bin/python bench/webhooks.py [--posts 1000] [--endpoints 8] [--write docs/benchmarks.md]

Starts a local broker, a loopback receiver and one worker. One API key (no keywords) has
``--endpoints`` healthy webhook URLs, each answering 204 after ``--delay-ms``, plus one URL
that stalls past the webhook timeout on every attempt. Then:

1. throughput: all posts are produced at once; deliveries/s run from the first produce to the
   last delivery to the healthy endpoints (posts x endpoints deliveries).
2. latency: a fifth as many posts at 20 posts/s; each delivery's latency runs from the post's
   produce time (carried in its text) to its arrival at the receiver.
3. baseline, same run: a bare aiohttp client POSTs as many bodies to the same endpoints, one
   at a time per endpoint and all endpoints in parallel (the most that ordered delivery per
   endpoint allows); the headline is the worker's deliveries/s over it.

The stalled endpoint is there to show it does not slow the others.

4. fairness (issue 22): another key with two healthy endpoints gets a post every 0.1 s, first
   alone, then while ``--attack-keys`` keys (4) with ``--attack-endpoints`` webhooks each (10)
   that never answer receive every post too; the headline is the healthy key's p95 latency
   with the attack over its p95 without (target: at most 2x).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiokafka import AIOKafkaProducer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.kafka.local import LocalKafka  # noqa: E402
from bench.ocr_bench import show  # noqa: E402
from harness.loopback import serve_on_loopback  # noqa: E402
from harness.records import post  # noqa: E402
from harness.workers import Worker, unique_settings  # noqa: E402

ADMIN = "bench-admin"


class Receiver:
    """Counts deliveries per endpoint and the latency each one carries in its post text."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.arrivals: dict[str, list[float]] = defaultdict(list)
        self.latencies_ms: list[float] = []
        self.fair_ms: list[float] = []  # the healthy key of the fairness phase
        self.last_arrival = 0.0

    async def handle(self, request: web.Request) -> web.Response:
        """Answer one webhook POST (after the endpoint's delay; "stall" never in time)."""
        name = request.match_info["name"]
        body = await request.read()
        if name == "stall" or name.startswith("hang"):
            await asyncio.sleep(60)
            return web.Response(status=504)
        await asyncio.sleep(self.delay_s)
        now = time.time()
        self.arrivals[name].append(now)
        self.last_arrival = now
        text = json.loads(body).get("text", "")
        if text.startswith("t="):
            self.latencies_ms.append((now - float(text[2:])) * 1000)
        elif text.startswith("fair t=") and name.startswith("fair"):
            self.fair_ms.append((now - float(text[7:])) * 1000)
        return web.Response(status=204)

    def delivered(self) -> int:
        """Return how many deliveries the healthy endpoints accepted."""
        return sum(len(times) for times in self.arrivals.values())


async def _produce(bootstrap: str, topic: str, posts: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(topic, value=p) for p in posts])
    finally:
        await producer.stop()


async def _wait_until(predicate: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return False


async def _key_with(http: aiohttp.ClientSession, urls: list[str]) -> None:
    """Create a key (no keywords: it receives every post) with these webhook URLs."""
    headers = {"x-admin-key": ADMIN}
    async with http.post("/admin/keys", json={}, headers=headers) as answer:
        key_id = (await answer.json())["data"]["key_id"]
    path = f"/admin/keys/{key_id}/webhooks"
    async with http.put(path, json={"urls": urls}, headers=headers) as answer:
        assert answer.status == 200, await answer.text()


async def _fair_p95(bootstrap: str, topic: str, receiver: Receiver, posts: int) -> float:
    """Return the healthy key's p95 latency over ``posts`` posts, one every 0.1 s."""
    receiver.fair_ms.clear()
    for n in range(posts):
        await _produce(bootstrap, topic, [post(f"f{n}{time.time()}", f"fair t={time.time()}", [])])
        await asyncio.sleep(0.1)
    await _wait_until(lambda: len(receiver.fair_ms) >= 2 * posts, 120)
    return statistics.quantiles(receiver.fair_ms, n=100)[94]


async def _baseline(base: str, endpoints: int, per_endpoint: int) -> float:
    """Return deliveries/s of a bare client: one POST in flight per endpoint, all in parallel."""
    body = json.dumps({"source": "x", "mid": "baseline", "text": "x"}).encode()

    async def lane(session: aiohttp.ClientSession, name: str) -> None:
        for _ in range(per_endpoint):
            async with session.post(f"{base}/{name}", data=body) as answer:
                assert answer.status == 204

    async with aiohttp.ClientSession() as session:
        started = time.monotonic()
        await asyncio.gather(*[lane(session, f"base{n}") for n in range(endpoints)])
        return endpoints * per_endpoint / (time.monotonic() - started)


async def run(args: argparse.Namespace) -> str:
    """Run the three phases; return the markdown section."""
    receiver = Receiver(args.delay_ms / 1000)
    app = web.Application()
    app.router.add_post("/hook/{name}", receiver.handle)
    runner, server = await serve_on_loopback(app, shutdown_timeout_s=0.5)
    base = f"{server}/hook"
    with tempfile.TemporaryDirectory() as tmp:
        kafka = LocalKafka(Path(tmp) / "kafka")
        kafka.start()
        settings = unique_settings(kafka, admin_key=ADMIN)
        worker = Worker(settings, Path(tmp))
        worker.start()
        try:
            web_base = f"http://127.0.0.1:{settings.web_port}"
            async with aiohttp.ClientSession(base_url=web_base) as http:
                headers = {"x-admin-key": ADMIN}
                async with http.post("/admin/keys", json={}, headers=headers) as answer:
                    key_id = (await answer.json())["data"]["key_id"]
                urls = [f"{base}/e{n}" for n in range(args.endpoints)] + [f"{base}/stall"]
                async with http.put(
                    f"/admin/keys/{key_id}/webhooks", json={"urls": urls}, headers=headers
                ) as answer:
                    assert answer.status == 200, await answer.text()

            expected = args.posts * args.endpoints
            posts = [post(f"b{n}", f"post {n}", []) for n in range(args.posts)]
            started = time.time()
            await _produce(kafka.bootstrap, settings.posts_topic, posts)
            done = await _wait_until(lambda: receiver.delivered() >= expected, 600)
            first_phase = receiver.delivered()
            throughput = first_phase / (receiver.last_arrival - started)
            print(f"throughput: {receiver.delivered()}/{expected} deliveries, {throughput:.0f}/s")

            receiver.latencies_ms.clear()
            paced = args.posts // 5
            before = receiver.delivered()
            for n in range(paced):
                await _produce(
                    kafka.bootstrap, settings.posts_topic, [post(f"l{n}", f"t={time.time()}", [])]
                )
                await asyncio.sleep(1 / 20)
            await _wait_until(lambda: receiver.delivered() >= before + paced * args.endpoints, 120)
            latencies = sorted(receiver.latencies_ms)
            q = statistics.quantiles(latencies, n=100)
            print(f"latency ms p50 {q[49]:.0f} p95 {q[94]:.0f} p99 {q[98]:.0f}")

            async with aiohttp.ClientSession(base_url=web_base) as http:
                await _key_with(http, [f"{base}/fair0", f"{base}/fair1"])
                calm = await _fair_p95(kafka.bootstrap, settings.posts_topic, receiver, 100)
                for k in range(args.attack_keys):
                    await _key_with(
                        http, [f"{base}/hang{k}-{n}" for n in range(args.attack_endpoints)]
                    )
                await asyncio.sleep(2)  # the keys reach every worker's replica
                attacked = await _fair_p95(kafka.bootstrap, settings.posts_topic, receiver, 100)
            print(f"fairness: healthy p95 {calm:.0f} ms calm, {attacked:.0f} ms attacked")
        finally:
            worker.stop()
            kafka.stop()
    baseline = await _baseline(base, args.endpoints, args.posts)
    print(f"baseline: {baseline:.0f} deliveries/s; ratio {throughput / baseline:.2f}")
    await runner.cleanup()
    return (
        f"Command: `.venv/bin/python bench/webhooks.py --posts {args.posts} "
        f"--endpoints {args.endpoints} --delay-ms {args.delay_ms:g}` (2-core machine, one "
        f"worker, default settings; each endpoint answers after {args.delay_ms:g} ms; one more "
        "endpoint stalls past the timeout on every attempt throughout).\n\n"
        "| measure | value |\n|---|---|\n"
        f"| deliveries, all healthy endpoints | {first_phase:,} of {expected:,}"
        f"{'' if done else ' (timed out)'} |\n"
        f"| throughput, backlog of {args.posts:,} posts x {args.endpoints} endpoints | "
        f"{throughput:.0f} deliveries/s |\n"
        f"| bare aiohttp client, same endpoints, one in flight per endpoint | "
        f"{baseline:.0f} deliveries/s |\n"
        f"| **ratio (worker / bare client)** | **{throughput / baseline:.2f}x** |\n"
        f"| latency post produced -> webhook received, {paced} posts at 20/s "
        f"({len(latencies)} deliveries) | p50 {q[49]:.0f} ms, p95 {q[94]:.0f} ms, "
        f"p99 {q[98]:.0f} ms |\n"
        f"| another key's two healthy endpoints, 100 posts at 10/s: p95 alone | "
        f"{calm:.0f} ms |\n"
        f"| the same while {args.attack_keys} keys x {args.attack_endpoints} webhooks never "
        f"answer (each post) | {attacked:.0f} ms |\n"
        f"| **fairness: p95 attacked / p95 alone (target ≤ 2x)** | "
        f"**{attacked / calm:.2f}x** |\n"
    )


def main() -> int:
    """Run the benchmark; print the figures and optionally write them to a markdown file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--endpoints", type=int, default=8)
    parser.add_argument("--delay-ms", type=float, default=5.0)
    parser.add_argument("--attack-keys", type=int, default=4)
    parser.add_argument("--attack-endpoints", type=int, default=10)
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    body = asyncio.run(run(args))
    show(body, args.write, "Webhook deliveries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
