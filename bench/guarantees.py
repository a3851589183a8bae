"""At-least-once under kill -9, measured on a real broker.

    .venv/bin/python bench/guarantees.py [--posts 1000] [--kills 3] [--intervals 2.8,0.5]
        [--write docs/benchmarks.md]

One worker, posts with one image each (repeating images, OCR cache on), kill -9 of the worker
at random moments, restart; then ocr_result is read and the records per idempotency key are
counted (lost, repeated). A run without kills, in the same session, is the baseline: its
repeats (none expected) and its time. The kills are run once per commit interval
(``OCRSTREAM_COMMIT_INTERVAL_S``; 2.8 s is Faust's default), at the same moments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.kafka.consumers import stop_consumer  # noqa: E402
from app.kafka.local import LocalKafka  # noqa: E402
from bench.kafka_throughput import serve_images  # noqa: E402
from bench.ocr_bench import show  # noqa: E402
from harness.records import post, produce  # noqa: E402
from harness.workers import Worker, unique_settings  # noqa: E402
from models.events import EVENT_ID_HEADER  # noqa: E402

# Why a default in the repository: a clone must run the benchmarks; --image-dir takes any
# directory of images with a manifest.json of the same shape (e.g. the full 40-image dev set).
DATA = REPO / "bench" / "images"


async def count_ids(bootstrap: str, topic: str, want: int, timeout_s: float) -> Counter[str]:
    """Count ocr_result records per idempotency key until ``want`` keys were seen."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
    )  # fmt: skip
    await consumer.start()
    seen: Counter[str] = Counter()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                for m in messages:
                    seen[dict(m.headers)[EVENT_ID_HEADER].decode()] += 1
            if len(seen) >= want and not batch:
                break
    finally:
        await stop_consumer(consumer)
    return seen


async def run(
    n: int, kills: int, interval_s: float, base: str, broker: LocalKafka, tmp: Path
) -> dict[str, Any]:
    """Kill and restart a worker while it reads n posts; return what arrived."""
    images = sorted(p.name for p in DATA.glob("s*"))
    settings = unique_settings(broker, session_timeout_s=8, commit_interval_s=interval_s)
    posts = [
        post(f"g{i}", "guarantee", [f"{base}/{images[i % len(images)]}?n={i}"]) for i in range(n)
    ]
    worker = Worker(settings, tmp)
    worker.start()
    rng = random.Random(20261124)
    started = time.monotonic()
    try:
        await produce(broker.bootstrap, settings.posts_topic, posts)
        for _ in range(kills):
            await asyncio.sleep(rng.uniform(2.0, 6.0))
            worker.kill()
            worker = Worker(settings, tmp)
            worker.start()
        seen = await count_ids(broker.bootstrap, settings.ocr_result_topic, n, timeout_s=900)
        elapsed = time.monotonic() - started
    finally:
        worker.stop()
    return {
        "posts": n,
        "kills": kills,
        "commit_interval_s": interval_s,
        "distinct": len(seen),
        "lost": n - len(seen),
        "records": sum(seen.values()),
        "repeats": sum(seen.values()) - len(seen),
        "seconds": elapsed,
    }


async def main_async(n: int, kills: int, intervals: list[float]) -> list[dict[str, Any]]:
    """Measure without kills, then with them at each commit interval."""
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        broker = LocalKafka(Path(tmp) / "kafka")
        broker.start()
        host, base = await serve_images()
        try:
            for k, interval_s in [(0, intervals[-1]), *((kills, i) for i in intervals)]:
                print(f"{k} kills, commits every {interval_s:g} s ...", flush=True)
                results.append(await run(n, k, interval_s, base, broker, Path(tmp)))
                print(json.dumps(results[-1]), flush=True)
        finally:
            await host.cleanup()
            broker.stop()
    return results


def main() -> int:
    """Run and print (optionally write) the comparison."""
    global DATA
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--image-dir",
        type=Path,
        default=None,
        help="a directory of images with a manifest.json (default: bench/images)",
    )
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument(
        "--intervals",
        default="2.8,0.5",
        help="commit intervals to compare, in seconds (the last is the default's)",
    )
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    DATA = args.image_dir or DATA
    intervals = [float(i) for i in args.intervals.split(",")]
    results = asyncio.run(main_async(args.posts, args.kills, intervals))
    rows = [
        f"| {r['kills']} | {r['commit_interval_s']:g} | {r['distinct']} | {r['lost']} | "
        f"{r['repeats']} | {r['repeats'] / max(r['kills'], 1):.0f} | {r['seconds']:.0f} |"
        for r in results
    ]
    body = "\n".join(
        [
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: one worker, "
            f"{args.posts} posts of one image each, kill -9 at random moments and restart; "
            "ocr_result read whole, records counted by their idempotency key.",
            "",
            f"Command: `.venv/bin/python bench/guarantees.py --posts {args.posts} "
            f"--kills {args.kills} --intervals {args.intervals} --write docs/benchmarks.md`",
            "",
            "| kills | commit interval (s) | images with a result | lost | repeats | repeats per "
            "kill | seconds |",
            "|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    show(body, args.write, "At-least-once under kill -9")
    return 0


if __name__ == "__main__":
    sys.exit(main())
