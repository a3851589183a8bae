"""Past one machine: a three-broker cluster, brokers killed mid-stream, workers restarted.

Run alone with ``pytest -m cluster`` (about four minutes on 2 cores). The cluster is three KRaft
nodes on loopback, every topic replicated three times with ``min.insync.replicas`` 2; the
workers are real processes with the real OCR engine. The images are the five test images,
each post's URL made unique (``?n=``): every one is fetched and goes through every stage, and
the OCR cache answers repeats of the same bytes, as it does in production.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from app.kafka.consumers import stop_consumer
from app.kafka.local import LocalKafkaCluster
from app.keys.admin import admin_over_kafka
from app.settings import Settings
from harness.records import post
from harness.workers import on_other_ports, unique_settings
from models.events import EVENT_ID_HEADER

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

IMAGES = ["s30_promo.png", "s10_sol.jpg", "s02_sol.png", "s00_promo.jpg", "s19_tweet.png"]


def _cluster_settings(cluster: LocalKafkaCluster, **overrides: Any) -> Settings:
    return unique_settings(
        cluster,
        topic_replicas=3,
        min_insync_replicas=2,
        topic_partitions=4,
        session_timeout_s=10,
        ocr_concurrency=8,
        **overrides,
    )


def _another_port(settings: Settings) -> Settings:
    return on_other_ports(settings)


@dataclass
class Seen:
    """Records read from topics: per event id, how often; and each topic's records."""

    counts: Counter[str] = field(default_factory=Counter)
    records: dict[str, list[tuple[int, dict[str, Any], str]]] = field(default_factory=dict)


async def _read(
    bootstrap: str, topics: list[str], want: int, timeout_s: float, phase: str | None = None
) -> Seen:
    """Read the topics from the start until ``want`` distinct event ids (of ``phase``) were seen."""
    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    seen = Seen(records={topic: [] for topic in topics})
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            counted = [e for e in seen.counts if phase is None or _phase_of(e) == phase]
            if len(counted) >= want:
                break
            batch = await consumer.getmany(timeout_ms=500)
            for tp, messages in batch.items():
                for message in messages:
                    event_id = dict(message.headers)[EVENT_ID_HEADER].decode()
                    seen.counts[event_id] += 1
                    value = json.loads(message.value)
                    seen.records[tp.topic].append((message.timestamp, value, event_id))
    finally:
        await stop_consumer(consumer)
    return seen


async def _describe(bootstrap: str, topics: list[str]) -> list[Any]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        described: list[Any] = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return described


async def _busiest_leader(bootstrap: str, topics: list[str], among: set[int]) -> int:
    """Return the broker (of ``among``) that leads the most partitions of the topics."""
    led: Counter[int] = Counter(dict.fromkeys(among, 0))
    for topic in await _describe(bootstrap, topics):
        for partition in topic["partitions"]:
            if partition["leader"] in among:
                led[partition["leader"]] += 1
    return led.most_common(1)[0][0]


async def _wait_in_sync(bootstrap: str, topics: list[str], timeout_s: float = 120.0) -> float:
    """Wait until every partition of the topics has all three replicas in sync; return seconds."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        described = await _describe(bootstrap, topics)
        if all(len(p["isr"]) == 3 for t in described for p in t["partitions"]):
            return time.monotonic() - started
        await asyncio.sleep(1)
    raise AssertionError(f"replicas not back in sync after {timeout_s:.0f}s")


async def _produce_steadily(bootstrap: str, topic: str, records: list[bytes], rate: float) -> None:
    """Produce the records at about ``rate`` a second, retrying a send a dead leader lost."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=15_000)
    await producer.start()
    try:
        step = 10
        for start in range(0, len(records), step):
            chunk = records[start : start + step]
            for _ in range(10):
                try:
                    # One post may be written twice after a lost answer: at-least-once input.
                    await asyncio.gather(*[await producer.send(topic, v) for v in chunk])
                    break
                except KafkaError:
                    await asyncio.sleep(1)
            else:
                raise AssertionError("posts could not be produced for 10 tries")
            await asyncio.sleep(step / rate)
    finally:
        await producer.stop()


def _phase_of(event_id: str) -> str:
    """Return the phase a post belongs to: the letter its id starts with (``ocr:x:a12:...``)."""
    return event_id.split(":")[2][:1]


def _pause_after(stamps_ms: list[int], kill_at: float) -> tuple[float, float]:
    """Return (seconds from the kill to the first result after it, longest pause after it)."""
    after = sorted(s / 1000 for s in stamps_ms if s / 1000 >= kill_at)
    if not after:
        return float("inf"), float("inf")
    gaps = [b - a for a, b in zip([kill_at, *after], after, strict=False)]
    return after[0] - kill_at, max(gaps)


async def _phase(
    cluster: LocalKafkaCluster,
    settings: Settings,
    image_host: str,
    channel: str,
    prefix: str,
    count: int,
    rng: random.Random,
    alive: set[int],
) -> tuple[int, dict[str, float]]:
    """Flow ``count`` image posts, kill -9 the busiest leader mid-stream; check every outcome."""
    records = [
        post(f"{prefix}{i}", "cluster", [f"{image_host}/{IMAGES[i % len(IMAGES)]}?n={prefix}{i}"])
        for i in range(count)
    ]
    flow = asyncio.create_task(
        _produce_steadily(cluster.bootstrap, settings.posts_topic, records, rate=50)
    )
    await asyncio.sleep(rng.uniform(4.0, 10.0))
    busy = [settings.images_topic, settings.candidates_topic]
    victim = await _busiest_leader(cluster.bootstrap, busy, alive)
    killed_at = time.time()
    cluster.node(victim).kill()
    await flow

    outcomes = [settings.ocr_result_topic, settings.ocr_error_topic]
    seen = await _read(cluster.bootstrap, outcomes, count, timeout_s=400, phase=prefix)
    mine = {e for e in seen.counts if _phase_of(e) == prefix}
    assert len(mine) == count, f"{count - len(mine)} of {count} images have no outcome"
    results = [r for r in seen.records[settings.ocr_result_topic] if r[2] in mine]
    errors = [r for r in seen.records[settings.ocr_error_topic] if r[2] in mine]
    assert not errors, errors[:3]  # every image is readable: none may fail for the broker
    first_s, pause_s = _pause_after([stamp for stamp, _, _ in results], killed_at)

    # Every result that mentions the keyword reaches the key's channel; nothing else does.
    matching = {eid for _, value, eid in results if "pepe" in value["text"].lower()}
    delivered = await _read(
        cluster.bootstrap, [channel], len(matching), timeout_s=120, phase=prefix
    )
    on_channel = {e for e in delivered.counts if _phase_of(e) == prefix}
    assert matching <= on_channel, f"{len(matching - on_channel)} matching results not delivered"
    for _, value, eid in delivered.records[channel]:
        if _phase_of(eid) == prefix:
            assert value["keyword_matches"] == ["pepe"], value
    repeats = sum(seen.counts[e] for e in mine) - count
    return victim, {
        "first_result_s": round(first_s, 2),
        "longest_pause_s": round(pause_s, 2),
        "repeats": repeats,
        "delivered": len(matching),
    }


async def test_a_broker_killed_twice_mid_stream_loses_nothing(
    kafka_cluster: LocalKafkaCluster, image_host: str, start_worker: Any
) -> None:
    settings = _cluster_settings(kafka_cluster)
    start_worker(settings)
    start_worker(_another_port(settings))
    admin = admin_over_kafka(settings)
    created = await admin.create("cluster")
    assert created.record is not None
    key_id = created.record.key_id
    assert (await admin.add_keywords(key_id, ["pepe"])).record is not None
    channel = settings.channel_topic(key_id)
    rng = random.Random(20261130)
    alive = {1, 2, 3}
    try:
        first, report1 = await _phase(
            kafka_cluster, settings, image_host, channel, "a", 1000, rng, alive
        )
        alive.discard(first)
        kafka_cluster.node(first).start()  # the killed broker comes back and catches up
        alive.add(first)
        busy = [settings.images_topic, settings.candidates_topic, settings.ocr_result_topic]
        rejoin_s = await _wait_in_sync(kafka_cluster.bootstrap, busy)
        second, report2 = await _phase(
            kafka_cluster, settings, image_host, channel, "b", 500, rng, alive - {first}
        )
    finally:
        for node in kafka_cluster.nodes:
            if not node.running:
                node.start()
    assert second != first
    print(
        f"\nbroker {first} killed under 1000 image posts: {report1}; rejoined in {rejoin_s:.1f} s"
        f"\nbroker {second} killed under 500 more: {report2}"
    )


async def test_a_rolling_restart_of_both_workers_loses_nothing(
    kafka_cluster: LocalKafkaCluster, start_worker: Any
) -> None:
    settings = _cluster_settings(kafka_cluster)
    ports = [settings, _another_port(settings)]  # each worker serves on a port of its own
    workers = [start_worker(ports[0]), start_worker(ports[1])]
    admin = admin_over_kafka(settings)
    created = await admin.create("rolling")
    assert created.record is not None
    key_id = created.record.key_id
    assert (await admin.add_keywords(key_id, ["pepe"])).record is not None

    stop = asyncio.Event()
    sent: dict[str, float] = {}

    async def steady_posts() -> None:
        """50 posts a second, one in five mentioning the keyword, until told to stop."""
        producer = AIOKafkaProducer(bootstrap_servers=kafka_cluster.bootstrap, acks="all")
        await producer.start()
        n = 0
        acks = []
        try:
            while not stop.is_set():
                mid = f"r{n}"
                text = "pepe rolling" if n % 5 == 0 else "gm"
                if n % 5 == 0:
                    sent[mid] = time.time()
                acks.append(await producer.send(settings.posts_topic, post(mid, text, [])))
                n += 1
                await asyncio.sleep(0.02)
            await asyncio.gather(*acks)  # every post is on the broker: a loss is the pipeline's
        finally:
            await producer.stop()

    flowing = asyncio.create_task(steady_posts())
    await asyncio.sleep(5)
    restarted_at = time.time()
    for index in range(2):  # SIGTERM one, wait for its successor's Ready, then the other
        # In threads: stopping and starting a worker waits, and the posts must keep flowing.
        await asyncio.to_thread(workers[index].stop)
        workers[index] = await asyncio.to_thread(start_worker, ports[index])
    restart_s = time.time() - restarted_at
    await asyncio.sleep(5)
    stop.set()
    await flowing

    channel = settings.channel_topic(key_id)
    delivered = await _read(kafka_cluster.bootstrap, [channel], len(sent), timeout_s=120)
    arrivals: dict[str, int] = {}
    for stamp, value, _ in delivered.records[channel]:
        arrivals.setdefault(value["mid"], stamp)
    missing = set(sent) - set(arrivals)
    assert not missing, f"{len(missing)} of {len(sent)} matching posts never delivered"
    during = [
        arrivals[mid] / 1000 - at
        for mid, at in sent.items()
        if restarted_at <= at <= restarted_at + restart_s
    ]
    latencies = sorted(arrivals[mid] / 1000 - at for mid, at in sent.items())
    p99_during = statistics.quantiles(during, n=100)[98] if len(during) > 1 else float("nan")
    repeats = sum(delivered.counts.values()) - len(delivered.counts)
    print(
        f"\nrolling restart of 2 workers in {restart_s:.1f} s under ~50 posts/s: "
        f"{len(sent)} matching posts all delivered, {repeats} repeats; post->channel p50 "
        f"{statistics.median(latencies) * 1000:.0f} ms, p99 during the restart "
        f"{p99_during * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
    )
