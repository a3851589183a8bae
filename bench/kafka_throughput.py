"""Throughput of the OCR agent through a real Kafka, against the bare engine in the same run.

    .venv/bin/python bench/kafka_throughput.py [--images 160] [--write docs/benchmarks.md]

Starts a local broker, a loopback image host serving bench/images (or --image-dir), and one worker
(`python -m app worker`, OCR cache and near-duplicates off so every image is read; the
near-duplicate check's own cost, ~2% of an OCR, is measured by bench/near_duplicates.py).
Produces one post per image, all at once, and reads `ocr_result` until every image has its
event. Reports images/s, the post→ocr_result latency p50/p95/p99 (broker timestamps), and
the ratio to the bare engine's images/s with the same processes (bench/engine_runner.py),
measured just before.
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

from aiohttp import web
from aiokafka import AIOKafkaConsumer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.kafka.consumers import stop_consumer  # noqa: E402
from app.kafka.local import LocalKafka  # noqa: E402
from app.ocr.config import engine_config  # noqa: E402
from app.settings import Settings  # noqa: E402
from bench.ocr_bench import RUNNER, run_json, show  # noqa: E402
from harness.loopback import serve_on_loopback  # noqa: E402
from harness.records import post, produce  # noqa: E402
from harness.workers import Worker, unique_settings  # noqa: E402

# Why a default in the repository: a clone must run the benchmarks; --image-dir takes any
# directory of images with a manifest.json of the same shape (e.g. the full 40-image dev set).
DATA = REPO / "bench" / "images"


async def serve_images() -> tuple[web.AppRunner, str]:
    """Serve the benchmark images on loopback; return the runner and base URL."""
    app = web.Application()
    app.router.add_static("/img/", DATA)
    runner, base = await serve_on_loopback(app)
    return runner, f"{base}/img"


async def read_results(bootstrap: str, topic: str, count: int, timeout_s: float) -> list[int]:
    """Read ``count`` ocr_result records; return their broker timestamps (ms)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    stamps: list[int] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(stamps) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            stamps.extend(m.timestamp for ms in batch.values() for m in ms)
    finally:
        await stop_consumer(consumer)
    return stamps


async def run(n_images: int, processes: int, threads: int) -> dict[str, float]:
    """Measure the pipeline; return its figures."""
    files = sorted(p.name for p in DATA.glob("s*"))
    with tempfile.TemporaryDirectory() as tmp:
        broker = LocalKafka(Path(tmp) / "kafka")
        broker.start()
        runner, base = await serve_images()
        settings = unique_settings(
            broker,
            ocr_processes=processes,
            ocr_threads=threads,
            ocr_concurrency=4,
            ocr_cache_entries=0,
            # Why: the set repeats, and a repeated picture would be answered as a copy.
            near_duplicates=False,
            topic_partitions=4,
        )
        worker = Worker(settings, Path(tmp))
        try:
            worker.start()
            posts = [
                post(str(i), "bench", [f"{base}/{files[i % len(files)]}?n={i}"])
                for i in range(n_images)
            ]
            started_ms = time.time() * 1000
            await produce(broker.bootstrap, settings.posts_topic, posts)
            stamps = await read_results(
                broker.bootstrap, settings.ocr_result_topic, n_images, timeout_s=n_images * 5
            )
        finally:
            worker.stop()
            await runner.cleanup()
            broker.stop()
    if len(stamps) < n_images:
        raise SystemExit(f"only {len(stamps)} of {n_images} results arrived")
    elapsed_s = (max(stamps) - started_ms) / 1000
    # Every post was produced at once, so latency here includes queueing behind earlier images.
    latencies = sorted(s - started_ms for s in stamps)
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "images": n_images,
        "images_per_s": n_images / elapsed_s,
        "first_result_ms": latencies[0],
        "p50_ms": cuts[49],
        "p95_ms": cuts[94],
        "p99_ms": cuts[98],
    }


def main() -> int:
    """Run the engine baseline, then the pipeline, and print (optionally write) the results."""
    global DATA
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--image-dir",
        type=Path,
        default=None,
        help="a directory of images with a manifest.json (default: bench/images)",
    )
    parser.add_argument("--images", type=int, default=160)
    parser.add_argument("--processes", type=int, default=Settings().ocr_processes)
    parser.add_argument("--threads", type=int, default=engine_config(Settings()).threads)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    DATA = args.image_dir or DATA

    paths = [str(p) for p in sorted(DATA.glob("s*"))]
    rounds = max(1, args.images // len(paths))
    print("measuring the bare engine ...", flush=True)
    engine = run_json(
        [sys.executable, str(RUNNER), "ours", "throughput", "--procs", str(args.processes),
         "--threads", str(args.threads), "--rounds", str(rounds), *paths]
    )  # fmt: skip
    print(f"  {engine['images_per_s']:.2f} img/s", flush=True)
    print(f"measuring {args.images} images through Kafka ...", flush=True)
    pipe = asyncio.run(run(args.images, args.processes, args.threads))
    ratio = pipe["images_per_s"] / engine["images_per_s"]
    body = "\n".join(
        [
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: one worker, "
            f"{args.processes} OCR process(es) x {args.threads} thread(s), OCR cache and "
            "near-duplicates off, "
            f"{args.images} posts "
            "of one image each produced at once (images from a loopback HTTP host).",
            "",
            f"Command: `.venv/bin/python bench/kafka_throughput.py --images {args.images} "
            f"--processes {args.processes} --threads {args.threads} --write docs/benchmarks.md`",
            "",
            "| run | images/s | × bare engine | first result ms | p50 ms | p95 ms | p99 ms |",
            "|---|---|---|---|---|---|---|",
            f"| bare engine ({args.processes} proc x {args.threads} thread, no Kafka) "
            f"| {engine['images_per_s']:.2f} | 1.00× | - | - | - | - |",
            f"| posts → images → OCR agent → ocr_result | {pipe['images_per_s']:.2f} "
            f"| {ratio:.2f}× | {pipe['first_result_ms']:.0f} | {pipe['p50_ms']:.0f} "
            f"| {pipe['p95_ms']:.0f} | {pipe['p99_ms']:.0f} |",
            "",
            "Latencies are from the moment all posts were produced to each `ocr_result`'s broker "
            "timestamp, so they include the queue of images ahead (a burst, not a steady rate).",
        ]
    )
    layout = f"{args.processes} process x {args.threads} threads"
    show(body, args.write, f"OCR agent through Kafka ({layout})")
    print(json.dumps(pipe))
    return 0


if __name__ == "__main__":
    sys.exit(main())
