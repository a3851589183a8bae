"""``ocrstream post`` and ``ocrstream tail``: put a post on Kafka, read what comes out.

So a newcomer needs no Kafka tools: a post goes to the posts topic as users produce it, and
any topic (``ocr_result``, ``ocr_error``, the dead letters, a key's channel) can be read back,
one line per event.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from app.cli.errors import UsageError
from app.kafka.consumers import stop_consumer
from app.pipeline.posts import parse_post
from app.pipeline.records import RecordRefused
from app.settings import Settings, get_settings


def _settings() -> Settings:
    settings = get_settings()
    if not settings.broker:
        raise UsageError("OCRSTREAM_BROKER is not set: which Kafka? (e.g. localhost:9092)")
    return settings


def post(args: argparse.Namespace) -> int:
    """Produce one post to the posts topic; print its id."""
    settings = _settings()
    mid = args.mid or str(time.time_ns())
    record = {
        "source": args.source,
        "mid": mid,
        "sid": args.sid,
        "link": args.link or f"https://x.com/{args.sid}/status/{mid}",
        "text": args.text,
        "images": args.image,
        "timestamp": datetime.now(UTC).isoformat(),
    }
    raw = json.dumps(record).encode()
    try:
        parse_post(raw, settings.max_post_text_chars)  # the worker's own check, said here
    except RecordRefused as exc:
        raise UsageError(str(exc)) from None

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=settings.broker, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(settings.posts_topic, key=mid.encode(), value=raw)
        finally:
            await producer.stop()

    asyncio.run(send())
    print(f"posted {args.source}:{mid} to {settings.posts_topic}")
    return 0


def tail(args: argparse.Namespace) -> int:
    """Print events of a topic (or a key's channel) as they arrive, one line each."""
    settings = _settings()
    if (args.topic is None) == (args.key is None):
        raise UsageError("name a topic, or a key with --key (its channel topic)")
    topic = args.topic or settings.channel_topic(args.key)
    return asyncio.run(_tail(settings, topic, args))


async def _tail(settings: Settings, topic: str, args: argparse.Namespace) -> int:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.broker,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if args.from_beginning else "latest",
    )
    await consumer.start()
    shown = 0
    deadline = time.monotonic() + args.timeout if args.timeout else None
    try:
        while args.count is None or shown < args.count:
            if deadline is not None and time.monotonic() > deadline:
                print(f"no more events within {args.timeout:g} s", file=sys.stderr)
                return 1
            batch = await consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                for message in messages:
                    print(_line(message.timestamp, message.value, args.json), flush=True)
                    shown += 1
                    if args.count is not None and shown >= args.count:
                        return 0
    finally:
        await stop_consumer(consumer)
    return 0


def _line(timestamp_ms: int, value: bytes | None, as_json: bool) -> str:
    """Return one event as a line: its JSON, or time, source, post, addresses, keywords, text."""
    if value is None:
        return "(null record)"
    if as_json:
        return value.decode(errors="replace")
    try:
        event: dict[str, Any] = json.loads(value)
    except ValueError:
        return value[:200].decode(errors="replace")
    at = datetime.fromtimestamp(timestamp_ms / 1000, UTC).strftime("%H:%M:%S")
    source = event.get("source", "?")
    ref = event.get("ref") or event
    post_id = f"{ref.get('source', '?')}:{ref.get('mid', '?')}" if isinstance(ref, dict) else "?"
    parts = [at, f"{source:<11}", post_id]
    addresses = [f"{ca['network']}:{ca['address']}" for ca in event.get("buy_ca") or []]
    if addresses:
        parts.append("CA " + " ".join(addresses))
    if event.get("keyword_matches"):
        parts.append("keywords " + ",".join(event["keyword_matches"]))
    if source == "ocr_error":
        text = f"{event.get('error')}: {event.get('reason')}"
    elif source == "dead_letter":
        text = f"{event.get('stage')}: {event.get('reason')}"
    else:
        text = str(event.get("text") or "")
    text = text.replace("\n", " ⏎ ")
    parts.append(text[:80] + ("…" if len(text) > 80 else ""))
    return "  ".join(parts)
