"""Records on a real broker: posts as users produce them, and reading topics back."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from app.kafka.consumers import stop_consumer
from models.events import EVENT_ID_HEADER


async def produce(
    bootstrap: str, topic: str, values: list[bytes], key: bytes | None = None
) -> None:
    """Produce raw records to a topic, in order, and wait until the broker has them all."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        # Why started inside: a task cancelled while it starts must still close it.
        await producer.start()
        # Why not send_and_wait each: thousands of records took a minute one by one. The
        # producer keeps the order within a partition either way.
        pending = [await producer.send(topic, value=value, key=key) for value in values]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def consume(
    bootstrap: str, topic: str, count: int, timeout_s: float = 90.0, settle_s: float = 0.0
) -> list[dict[str, Any]]:
    """Read a topic from the start until ``count`` JSON records arrived (then ``settle_s`` more).

    Returns what was read when the time runs out, so a test can say what was missing.
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(records) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            records.extend(json.loads(m.value) for ms in batch.values() for m in ms)
        settle_until = time.monotonic() + settle_s
        while time.monotonic() < settle_until:
            batch = await consumer.getmany(timeout_ms=250)
            records.extend(json.loads(m.value) for ms in batch.values() for m in ms)
    finally:
        await stop_consumer(consumer)
    return records


def post(mid: str, text: str, images: list[str], source: str = "x") -> bytes:
    """Return a post record as users produce it."""
    return json.dumps(
        {
            "source": source,
            "mid": mid,
            "sid": f"author-{mid}",
            "link": f"https://x.com/author/status/{mid}",
            "text": text,
            "images": images,
            "timestamp": "2026-11-24T10:00:00Z",
            "lang": "en",  # an unknown field: tolerated
        }
    ).encode()


async def event_ids(
    bootstrap: str, topic: str, want: int, timeout_s: float
) -> tuple[Counter[str], int]:
    """Read a topic until ``want`` distinct event ids (or the timeout): their counts, last time.

    The event id is the idempotency header every output carries; a count above one is a repeat.
    The time is the newest broker timestamp read, in milliseconds.
    """
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 << 20,
    )  # fmt: skip
    await consumer.start()
    seen: Counter[str] = Counter()
    last = 0
    deadline = time.monotonic() + timeout_s
    try:
        while len(seen) < want and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for messages in batch.values():
                for message in messages:
                    seen[dict(message.headers)[EVENT_ID_HEADER].decode()] += 1
                    last = max(last, message.timestamp)
    finally:
        await stop_consumer(consumer)
    return seen, last
