"""Soak: 20,000 posts (10% with images that repeat) through one worker on a real Kafka.

    .venv/bin/python bench/soak.py [--posts 20000] [--write docs/benchmarks.md]

Starts a local broker, a loopback image host serving bench/images (or --image-dir) and one worker
with the default settings and three API keys (one without keywords, two with). Then:

1. throughput: all posts are produced as fast as the client can (faster than the worker
   reads them); posts/s and images/s run from the first produce to the last delivery.
2. latency: with the worker idle again, a quarter as many posts are produced at half that
   rate; each post's latency runs from its produce timestamp to its delivery on the
   firehose channel (post events) and to its ocr_result (images), both broker timestamps.
3. baseline, same run: a bare aiokafka relay (consume posts, produce each to another topic,
   no processing) over the same records; the headline is the worker's posts/s over it.

Meanwhile the worker's RSS (with its OCR processes) and consumer lag are sampled each second:
RSS must plateau and lag must drain to zero.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.kafka.consumers import stop_consumer  # noqa: E402
from app.kafka.local import LocalKafka  # noqa: E402
from app.keys.admin import admin_over_kafka  # noqa: E402
from app.settings import Settings  # noqa: E402
from bench.kafka_throughput import serve_images  # noqa: E402
from bench.ocr_bench import show  # noqa: E402
from harness.records import post  # noqa: E402
from harness.workers import Worker, unique_settings  # noqa: E402

# Why a default in the repository: a clone must run the benchmarks; --image-dir takes any
# directory of images with a manifest.json of the same shape (e.g. the full 40-image dev set).
DATA = REPO / "bench" / "images"
WORDS = ["gm", "wagmi", "chart", "launch", "presale", "airdrop", "moon", "frens", "ser", "dyor"]


@dataclass
class Samples:
    """What the sampler saw, one entry per second: (seconds since start, RSS MB, lag)."""

    rows: list[tuple[float, float, int]] = field(default_factory=list)


def rss_mb(pid: int) -> float:
    """Return the resident memory of a process and all its descendants, in MB."""
    total_kb = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total_kb += int(
                next(ln for ln in status.splitlines() if ln.startswith("VmRSS")).split()[1]
            )
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, StopIteration, ProcessLookupError):
            continue
    return total_kb / 1024


def total_lag(port: int) -> int:
    """Return the worker's consumer lag summed over its partitions, read from its operator
    port (-1 when unreadable)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status/", timeout=2) as response:
            return int(sum(json.loads(response.read())["consumer_lag"].values()))
    except (OSError, ValueError):
        return -1


async def sample(worker: Worker, samples: Samples, stop: asyncio.Event) -> None:
    """Record RSS and lag each second until ``stop`` is set."""
    started = time.monotonic()
    assert worker.process is not None
    while not stop.is_set():
        lag = await asyncio.to_thread(total_lag, worker.settings.operator_port)
        samples.rows.append((time.monotonic() - started, rss_mb(worker.process.pid), lag))
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except TimeoutError:
            pass


def make_posts(n: int, base: str, tag: str, images: list[str]) -> list[bytes]:
    """Return n posts; every tenth has one image from a small set, so images repeat."""
    posts = []
    for i in range(n):
        words = " ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(8))
        urls = [f"{base}/{images[(i // 10) % len(images)]}"] if i % 10 == 0 else []
        posts.append(post(f"{tag}{i}", words, urls))
    return posts


Broker = str | dict[str, Any]
"""``host:port,...``, or an aiokafka client's connection arguments (a secured broker)."""


def _connect(broker: Broker) -> dict[str, Any]:
    return {"bootstrap_servers": broker} if isinstance(broker, str) else broker


async def produce_fast(bootstrap: Broker, topic: str, values: list[bytes], rate: float = 0) -> None:
    """Produce values (at ``rate`` per second, or as fast as possible) and wait for acks."""
    producer = AIOKafkaProducer(**_connect(bootstrap), linger_ms=5, acks=1)
    await producer.start()
    try:
        started = time.monotonic()
        pending = []
        for i, value in enumerate(values):
            if rate:
                delay = started + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            pending.append(await producer.send(topic, value=value, key=str(i).encode()))
            if len(pending) >= 2000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def read_until(
    bootstrap: Broker, topic: str, want: int, timeout_s: float
) -> list[tuple[int, dict[str, Any]]]:
    """Read (broker timestamp ms, JSON value) from a topic until ``want`` records arrived."""
    consumer = AIOKafkaConsumer(
        topic, **_connect(bootstrap), group_id=None, auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 << 20,
    )  # fmt: skip
    await consumer.start()
    records: list[tuple[int, dict[str, Any]]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(records) < want and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            records.extend((m.timestamp, json.loads(m.value)) for ms in batch.values() for m in ms)
    finally:
        await stop_consumer(consumer)
    if len(records) < want:
        raise SystemExit(f"{topic}: only {len(records)} of {want} records arrived")
    return records


async def relay(bootstrap: Broker, source: str, target: str, count: int) -> float:
    """Copy ``count`` records from source to target with bare aiokafka; return records/s."""
    consumer = AIOKafkaConsumer(
        source, **_connect(bootstrap), group_id=None, auto_offset_reset="earliest"
    )
    producer = AIOKafkaProducer(**_connect(bootstrap), linger_ms=5, acks=1)
    await consumer.start()
    await producer.start()
    copied = 0
    started = time.monotonic()
    try:
        while copied < count:
            batch = await consumer.getmany(timeout_ms=500, max_records=2000)
            sends = [
                await producer.send(target, key=m.key, value=m.value)
                for ms in batch.values()
                for m in ms
            ]
            await asyncio.gather(*sends)
            copied += len(sends)
        return count / (time.monotonic() - started)
    finally:
        await producer.stop()
        await stop_consumer(consumer)


def cuts(values: Sequence[float]) -> dict[str, float]:
    """Return p50, p95 and p99 of ``values``."""
    q = statistics.quantiles(values, n=100)
    return {"p50": q[49], "p95": q[94], "p99": q[98]}


async def add_keys(settings: Settings) -> str:
    """Create the firehose key and two keyword keys; return the firehose's channel topic."""
    admin = admin_over_kafka(settings)
    firehose = await admin.create("firehose")
    for label, words in (("pepe", ["pepe"]), ("moon", ["moon", "raydium"])):
        created = await admin.create(label)
        await admin.add_keywords(created.command.key_id, words)
    return settings.channel_topic(firehose.command.key_id)


async def run(n_posts: int) -> dict[str, Any]:
    """Run the three phases; return the figures."""
    images = sorted(p.name for p in DATA.glob("s*"))
    with tempfile.TemporaryDirectory() as tmp:
        broker = LocalKafka(Path(tmp) / "kafka")
        broker.start()
        host, base = await serve_images()
        settings = unique_settings(broker)
        worker = Worker(settings, Path(tmp))
        samples, stop = Samples(), asyncio.Event()
        try:
            worker.start()
            assert worker.process is not None
            print(f"worker pid {worker.process.pid}", flush=True)
            firehose = await add_keys(settings)
            sampler = asyncio.create_task(sample(worker, samples, stop))
            posts = make_posts(n_posts, base, "s", images)
            n_images = sum(1 for i in range(n_posts) if i % 10 == 0)
            print(f"producing {n_posts} posts ({n_images} with an image) ...", flush=True)
            started = time.time() * 1000
            # The producer outruns the worker: this is a drain of a growing queue.
            await produce_fast(broker.bootstrap, settings.posts_topic, posts)
            deliveries = await read_until(
                broker.bootstrap, firehose, n_posts + n_images, timeout_s=1800
            )
            drain_s = (max(t for t, _ in deliveries) - started) / 1000
            drained_at = time.monotonic()
            while total_lag(settings.operator_port) > 0 and time.monotonic() - drained_at < 120:
                await asyncio.sleep(1)
            lag_zero_s = time.monotonic() - drained_at

            # Phase 2: a steady rate, half the drain rate, fresh post ids.
            n_paced = n_posts // 4
            rate = max(1.0, 0.5 * n_posts / drain_s)
            paced = make_posts(n_paced, base, "p", images)
            print(f"latency: {n_paced} posts at {rate:.0f}/s ...", flush=True)
            await produce_fast(broker.bootstrap, settings.posts_topic, paced, rate=rate)
            n_paced_images = sum(1 for i in range(n_paced) if i % 10 == 0)
            want = n_posts + n_images + n_paced + n_paced_images
            everything = await read_until(broker.bootstrap, firehose, want, timeout_s=900)
            posted = await read_until(
                broker.bootstrap, settings.posts_topic, n_posts + n_paced, timeout_s=120
            )
            stop.set()
            await sampler
            relay_rate = await relay(
                broker.bootstrap, settings.posts_topic, f"relay-{settings.app_id}", n_posts
            )
        finally:
            stop.set()
            worker.stop()
            await host.cleanup()
            broker.stop()
    produced_at = {value["mid"]: t for t, value in posted}
    post_latency = [
        t - produced_at[v["mid"]]
        for t, v in everything
        if v["source"] == "x" and v["mid"][0] == "p"
    ]
    ocr_latency = [
        t - produced_at[v["ref"]["mid"]]
        for t, v in everything
        if v["source"] == "ocr_result" and v["ref"]["mid"][0] == "p"
    ]
    rss = [r for _, r, _ in samples.rows]
    quarter = max(1, len(rss) // 4)
    return {
        "posts": n_posts,
        "images": n_images,
        "distinct_images": len(images),
        "drain_s": drain_s,
        "posts_per_s": n_posts / drain_s,
        "images_per_s": n_images / drain_s,
        "relay_per_s": relay_rate,
        "peak_lag": max(lag for _, _, lag in samples.rows),
        "lag_zero_after_s": lag_zero_s,
        "paced_rate": rate,
        "paced_posts": n_paced,
        "post_latency_ms": cuts(post_latency),
        "ocr_latency_ms": cuts(ocr_latency),
        "rss_first_quarter_mb": max(rss[:quarter]),
        "rss_last_quarter_mb": max(rss[-quarter:]),
        "rss_peak_mb": max(rss),
        "seconds_sampled": samples.rows[-1][0] if samples.rows else 0,
    }


def report(figures: dict[str, Any]) -> str:
    """Return the markdown section for docs/benchmarks.md."""
    f = figures
    ratio = f["posts_per_s"] / f["relay_per_s"]
    post_lat, ocr_lat = f["post_latency_ms"], f["ocr_latency_ms"]
    return "\n".join(
        [
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: one worker, default "
            f"settings, 3 API keys (one without keywords), {f['posts']:,} posts of which "
            f"{f['images']:,} carry one image from a set of {f['distinct_images']} that repeat "
            "(OCR cache on).",
            "",
            f"Command: `.venv/bin/python bench/soak.py --posts {f['posts']} "
            "--write docs/benchmarks.md`",
            "",
            "| run | posts/s | images/s | × bare relay |",
            "|---|---|---|---|",
            f"| bare aiokafka relay (consume posts, produce each, no work) "
            f"| {f['relay_per_s']:.0f} | - | 1.00× |",
            f"| ocrstream worker: {f['posts']:,} posts produced at once "
            f"({f['drain_s']:.1f} s) | {f['posts_per_s']:.0f} | {f['images_per_s']:.1f} "
            f"| {ratio:.2f}× |",
            "",
            f"Latency at a steady {f['paced_rate']:.0f} posts/s (half the drain rate), "
            f"{f['paced_posts']:,} posts, produce → delivery (broker timestamps):",
            "",
            "| event | p50 ms | p95 ms | p99 ms |",
            "|---|---|---|---|",
            f"| post → firehose channel | {post_lat['p50']:.0f} | {post_lat['p95']:.0f} "
            f"| {post_lat['p99']:.0f} |",
            f"| post → ocr_result (image repeats: mostly cache hits) | {ocr_lat['p50']:.0f} "
            f"| {ocr_lat['p95']:.0f} | {ocr_lat['p99']:.0f} |",
            "",
            f"Memory (worker + OCR process RSS, sampled each second for "
            f"{f['seconds_sampled']:.0f} s): peak of the first quarter "
            f"{f['rss_first_quarter_mb']:.0f} MB, of the last quarter "
            f"{f['rss_last_quarter_mb']:.0f} MB, overall peak {f['rss_peak_mb']:.0f} MB. "
            f"Consumer lag peaked at {f['peak_lag']:,} records and was zero "
            f"{f['lag_zero_after_s']:.0f} s after the last delivery (its commit interval).",
        ]
    )


def main() -> int:
    """Run the soak and print (optionally write) the results."""
    global DATA
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--image-dir",
        type=Path,
        default=None,
        help="a directory of images with a manifest.json (default: bench/images)",
    )
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    DATA = args.image_dir or DATA
    figures = asyncio.run(run(args.posts))
    body = report(figures)
    show(body, args.write, "Soak: 20,000 posts through one worker")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
