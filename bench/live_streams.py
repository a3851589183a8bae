"""Live-stream latency for a WebSocket client, alone and beside clients that stopped reading.

    .venv/bin/python bench/live_streams.py [--posts 1500] [--rate 100] [--stalled 3] \
        [--write docs/benchmarks.md]

Starts a local broker and one worker (stream buffer 200 events). One API key without keywords
has a WebSocket client that reads everything. Posts (4 kB of text each, the produce time in
the text) are produced at ``--rate`` posts/s, twice:

0. warm-up: 200 posts, not measured;
1. baseline, same run: the WebSocket client alone;
2. with ``--stalled`` SSE clients of the same key that read the first event and then nothing.

Each post's latency runs from its produce time to its arrival at the WebSocket client. The
headline is the ratio of the two runs' p50 and p99; the stalled clients' drop counts show they
did fill their buffers during the second run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaProducer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.kafka.local import LocalKafka  # noqa: E402
from bench.ocr_bench import show  # noqa: E402
from harness.records import post  # noqa: E402
from harness.workers import Worker, unique_settings  # noqa: E402

ADMIN = "bench-admin"
FILLER = "x" * 4000


async def _paced(bootstrap: str, topic: str, tag: str, posts: int, rate: float) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=1)
    await producer.start()
    try:
        started = time.monotonic()
        for n in range(posts):
            await producer.send(topic, post(f"{tag}{n}", f"t={time.time()} {FILLER}", []))
            # Why against the start: sleep drift would otherwise lower the rate.
            await asyncio.sleep(max(0.0, started + (n + 1) / rate - time.monotonic()))
        await producer.flush()
    finally:
        await producer.stop()


async def _latencies(ws: aiohttp.ClientWebSocketResponse, tag: str, posts: int) -> list[float]:
    """Read the WebSocket until every post of ``tag`` arrived; return their latencies (ms)."""
    latencies: list[float] = []
    while len(latencies) < posts:
        message = await ws.receive_json(timeout=60)
        if message.get("mid", "").startswith(tag):
            sent_at = float(message["text"].split()[0][2:])
            latencies.append((time.time() - sent_at) * 1000)
    return latencies


def _cuts(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=100)
    return q[49], q[94], q[98]


async def _phase(
    http: aiohttp.ClientSession, api_key: str, bootstrap: str, topic: str, tag: str, args: Any
) -> list[float]:
    ws = await http.ws_connect("/ws", headers={"x-api-key": api_key})
    try:
        await ws.receive_json(timeout=30)  # stream_ready
        reader = asyncio.ensure_future(_latencies(ws, tag, args.posts))
        await _paced(bootstrap, topic, tag, args.posts, args.rate)
        return await reader
    finally:
        await ws.close()


async def run(args: argparse.Namespace) -> str:
    """Run both phases; return the markdown section."""
    with tempfile.TemporaryDirectory() as tmp:
        kafka = LocalKafka(Path(tmp) / "kafka")
        kafka.start()
        settings = unique_settings(kafka, admin_key=ADMIN, stream_buffer_events=200)
        worker = Worker(settings, Path(tmp))
        worker.start()
        try:
            base = f"http://127.0.0.1:{settings.web_port}"
            async with aiohttp.ClientSession(base_url=base) as http:
                headers = {"x-admin-key": ADMIN}
                async with http.post("/admin/keys", json={}, headers=headers) as answer:
                    api_key = (await answer.json())["data"]["api_key"]
                # Why a warm-up: the first events pay for the stream reader's start and the
                # first connections; neither run should carry that.
                warm = argparse.Namespace(posts=200, rate=args.rate)
                await _phase(http, api_key, kafka.bootstrap, settings.posts_topic, "w", warm)
                alone = await _phase(
                    http, api_key, kafka.bootstrap, settings.posts_topic, "a", args
                )
                print("alone: p50/p95/p99 ms", [round(v) for v in _cuts(alone)])
                stalled = []
                for _ in range(args.stalled):
                    response = await http.get("/stream", headers={"x-api-key": api_key})
                    await response.content.readline()  # the first line; then nothing more
                    stalled.append(response)
                beside = await _phase(
                    http, api_key, kafka.bootstrap, settings.posts_topic, "b", args
                )
                print("beside stalled: p50/p95/p99 ms", [round(v) for v in _cuts(beside)])
                dropped = json.loads(worker.status())["live_streams"]["dropped"]
                for response in stalled:
                    response.close()
        finally:
            worker.stop()
            kafka.stop()
    a50, a95, a99 = _cuts(alone)
    b50, b95, b99 = _cuts(beside)
    return (
        f"Command: `.venv/bin/python bench/live_streams.py --posts {args.posts} --rate "
        f"{args.rate:g} --stalled {args.stalled}` (2-core machine, one worker, stream buffer "
        f"200 events; posts of 4 kB at {args.rate:g}/s; latency from produce to arrival at a "
        "WebSocket client of the key).\n\n"
        "| run | posts received | p50 | p95 | p99 |\n|---|---|---|---|---|\n"
        f"| WebSocket client alone (baseline) | {len(alone)} of {args.posts} | {a50:.0f} ms | "
        f"{a95:.0f} ms | {a99:.0f} ms |\n"
        f"| beside {args.stalled} SSE clients that stopped reading | {len(beside)} of "
        f"{args.posts} | {b50:.0f} ms | {b95:.0f} ms | {b99:.0f} ms |\n"
        f"| **ratio (beside / alone)** | | **{b50 / a50:.2f}x** | {b95 / a95:.2f}x | "
        f"**{b99 / a99:.2f}x** |\n\n"
        f"{dropped:,} events were dropped for the stalled clients (their buffers were full); "
        "the reading client missed none.\n"
    )


def main() -> int:
    """Run the benchmark; print the figures and optionally write them to a markdown file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=1500)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--stalled", type=int, default=3)
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    body = asyncio.run(run(args))
    show(body, args.write, "Live streams")
    return 0


if __name__ == "__main__":
    sys.exit(main())
