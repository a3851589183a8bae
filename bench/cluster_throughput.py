"""Throughput on a three-broker cluster: one worker against two, text posts and images.

    .venv/bin/python bench/cluster_throughput.py [--posts 20000] [--images 240] [--write FILE]

Three KRaft nodes on loopback (every topic replicated 3 times, ``min.insync.replicas`` 2,
``acks=all``), in the same run:

1. one worker, then two workers sharing the partitions, draining ``--posts`` text-only posts
   produced at once (three keys; the firehose key's channel is timed);
2. the same with ``--images`` image posts, the OCR cache off, so every image is OCR'd.

The baseline is one worker (ratio 1.00). On a 2-core machine two workers share the same cores
with three brokers: the point is that a second worker loses and repeats nothing, not that it
doubles the rate. Repeats are counted by the ``ocrstream-event-id`` header.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.kafka.local import LocalKafkaCluster  # noqa: E402
from bench.kafka_throughput import DATA, serve_images  # noqa: E402
from bench.ocr_bench import show  # noqa: E402
from bench.soak import add_keys, produce_fast  # noqa: E402
from bench.text_path import text_posts  # noqa: E402
from harness.records import event_ids, post  # noqa: E402
from harness.workers import Worker, on_other_ports, unique_settings  # noqa: E402


async def read_ids(
    bootstrap: str, topic: str, want: int, timeout_s: float
) -> tuple[Counter[str], int]:
    """Read a topic until ``want`` distinct event ids; return the counts and the last timestamp."""
    seen, last = await event_ids(bootstrap, topic, want, timeout_s)
    if len(seen) < want:
        raise SystemExit(f"{topic}: only {len(seen)} of {want} events arrived")
    return seen, last


async def drain(
    cluster: LocalKafkaCluster, tmp: Path, workers: int, kind: str, n: int, base: str
) -> dict[str, Any]:
    """Start ``workers`` workers, produce n posts at once, time them to the last output."""
    settings = unique_settings(
        cluster, topic_replicas=3, min_insync_replicas=2, topic_partitions=4,
        ocr_cache_entries=0 if kind == "images" else 4096,
        near_duplicates=kind != "images",  # the image set repeats: every image is to be read
    )  # fmt: skip
    # Each worker serves its web pages on a port of its own.
    running = [
        Worker(settings if i == 0 else on_other_ports(settings), tmp) for i in range(workers)
    ]
    try:
        for worker in running:
            worker.start()
        firehose = await add_keys(settings)
        if kind == "text":
            records = text_posts(n, "t")
            topic, want = firehose, n
        else:
            images = sorted(p.name for p in DATA.glob("*") if p.suffix in {".png", ".jpg"})
            records = [post(f"i{i}", "img", [f"{base}/{images[i % len(images)]}?n={i}"])
                       for i in range(n)]  # fmt: skip
            topic, want = settings.ocr_result_topic, n
        print(f"{workers} worker(s), {n} {kind} posts ...", flush=True)
        started = time.time() * 1000
        await produce_fast(cluster.bootstrap, settings.posts_topic, records)
        seen, last = await read_ids(cluster.bootstrap, topic, want, timeout_s=1800)
        seconds = (last - started) / 1000
        figures = {"rate": n / seconds, "seconds": seconds, "repeats": sum(seen.values()) - want}
        print(f"  {figures['rate']:.1f}/s, {figures['repeats']} repeats", flush=True)
        return figures
    finally:
        for worker in running:
            worker.stop()


def render(rows: list[tuple[str, int, dict[str, Any]]], posts: int, images: int) -> str:
    """Return the markdown section: the table and the command."""
    command = f".venv/bin/python bench/cluster_throughput.py --posts {posts} --images {images}"
    lines = [
        f"Command: `{command}` (2-core machine; three KRaft nodes on it too, each topic "
        "replicated 3 times, `min.insync.replicas` 2, `acks=all`; the OCR cache off for "
        "images, so each is OCR'd). Baseline: one worker, same run.",
        "",
        "| load | workers | rate | drain | repeats | rate / 1 worker |",
        "|---|---|---|---|---|---|",
    ]
    base = {kind: figures["rate"] for kind, workers, figures in rows if workers == 1}
    for kind, workers, figures in rows:
        unit = "posts/s" if kind == "text" else "images/s"
        lines.append(
            f"| {kind} | {workers} | {figures['rate']:,.1f} {unit} | {figures['seconds']:.1f} s "
            f"| {figures['repeats']} | {figures['rate'] / base[kind]:.2f}x |"
        )
    lines += [
        "",
        "All on two cores, with three brokers: a worker's text path runs on one event loop, so a "
        "second worker adds the second core to text posts, while OCR already used both cores "
        "(its process pool), so images gain little. What a second machine would add is not "
        "measured here; what is, is that two workers lose and repeat nothing more than one.",
    ]
    return "\n".join(lines) + "\n"


async def run(posts: int, images: int) -> str:
    """Run every phase on one cluster; return the section."""
    rows: list[tuple[str, int, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        cluster = LocalKafkaCluster(Path(tmp) / "cluster", brokers=3)
        cluster.start()
        host, base = await serve_images()
        try:
            for kind, n in (("text", posts), ("images", images)):
                for workers in (1, 2):
                    rows.append(
                        (kind, workers, await drain(cluster, Path(tmp), workers, kind, n, base))
                    )
        finally:
            await host.cleanup()
            cluster.stop()
    return render(rows, posts, images)


def main() -> int:
    """Parse arguments, run, print (and write) the section."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=20000)
    parser.add_argument("--images", type=int, default=240)
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    section = asyncio.run(run(args.posts, args.images))
    show(section, args.write, "Three brokers: one worker against two")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
