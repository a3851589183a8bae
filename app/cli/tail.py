"""``ocrstream tail``: print the events of a topic, one line each, in time order.

Like tail(1): the last N events (exactly N, merged over the topic's partitions by their Kafka
timestamp), everything with ``--from-beginning``, and new events as they come with ``--follow``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import deque
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from app.cli.errors import UsageError
from app.kafka.admin import ready_partitions
from app.kafka.consumers import stop_consumer
from app.kafka.security import connection
from app.settings import Settings

T = TypeVar("T")

# Why: a partition's records are fetched a batch at a time while the merge waits on its head.
_FETCH_RECORDS = 500


def tail(args: argparse.Namespace) -> int:
    """Print events of a topic (or a key's channel), one line each; see ``--follow``."""
    from app.cli.data import broker_settings

    settings = broker_settings()
    if (args.topic is None) == (args.key is None):
        raise UsageError("name a topic, or a key with --key (its channel topic)")
    topic = args.topic or settings.channel_topic(args.key)
    return asyncio.run(_tail(settings, topic, args))


async def _tail(settings: Settings, topic: str, args: argparse.Namespace) -> int:
    waits = bool(args.follow or args.count)
    partitions = await _partitions(settings, topic, args.timeout if waits else 0.0)
    if not partitions:
        raise UsageError(f"no topic {topic!r} on {settings.broker} (yet?)")
    consumer = AIOKafkaConsumer(**connection(settings), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(assigned)
        ends = await consumer.end_offsets(assigned)
        begins = await consumer.beginning_offsets(assigned)
        # The last N in time are among the last N of each partition.
        back = max(args.last, 0)
        for tp in assigned:
            consumer.seek(
                tp, begins[tp] if args.from_beginning else max(begins[tp], ends[tp] - back)
            )
        printer = _Printer(args.json, args.count)
        backlog = merged_in_time_order(consumer, ends)
        if args.from_beginning:
            async for record in backlog:
                if printer.print(record):
                    return 0
        else:
            last: deque[ConsumerRecord[bytes, bytes]] = deque(maxlen=back)
            async for record in backlog:
                last.append(record)
            for record in last:
                if printer.print(record):
                    return 0
        # Without --follow or --count: what was there when the tail began, then stop.
        return await _follow(consumer, args, printer) if waits else 0
    finally:
        await stop_consumer(consumer)


class _Printer:
    """Prints events as lines and says when ``--count`` of them were printed."""

    def __init__(self, as_json: bool, count: int | None) -> None:
        self._as_json = as_json
        self._count = count
        self._shown = 0

    def print(self, record: ConsumerRecord[bytes, bytes]) -> bool:
        """Print one event; return True once ``--count`` events were printed."""
        print(event_line(record.timestamp, record.value, self._as_json), flush=True)
        self._shown += 1
        return self._count is not None and self._shown >= self._count


async def merged_in_time_order(
    consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]
) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """Yield each partition's records up to its end in ``ends``, merged by timestamp.

    Why a merge and not a sort: ``--from-beginning`` may read a topic far larger than memory;
    this holds one fetched batch per partition.
    """
    heads: dict[TopicPartition, deque[ConsumerRecord[bytes, bytes]]] = {tp: deque() for tp in ends}
    while True:
        for tp, buffered in heads.items():
            while not buffered and await consumer.position(tp) < ends[tp]:
                fetched = await consumer.getmany(tp, timeout_ms=500, max_records=_FETCH_RECORDS)
                buffered.extend(r for r in fetched.get(tp, []) if r.offset < ends[tp])
        waiting = [tp for tp, buffered in heads.items() if buffered]
        if not waiting:
            return
        # Ties go to the lower partition, then offset: the same order on every run.
        earliest = min(waiting, key=lambda tp: (heads[tp][0].timestamp, tp.partition))
        yield heads[earliest].popleft()


async def _follow(consumer: AIOKafkaConsumer, args: argparse.Namespace, printer: _Printer) -> int:
    """Print new events as they come (each fetched batch in time order) until done."""
    deadline = time.monotonic() + args.timeout if args.timeout else None
    while True:
        if deadline is not None and time.monotonic() > deadline:
            print(f"no more events within {args.timeout:g} s", file=sys.stderr)
            return 1
        batch = await consumer.getmany(timeout_ms=500)
        records = sorted(
            (r for rs in batch.values() for r in rs), key=lambda r: (r.timestamp, r.partition)
        )
        for record in records:
            if printer.print(record):
                return 0


async def _partitions(settings: Settings, topic: str, wait_s: float | None) -> list[int]:
    """Return the topic's partitions, waiting up to ``wait_s`` (None: ever) for it to exist.

    Why wait: a key's channel topic is created by its first delivery, which a ``--count`` or
    ``--follow`` tail started right after the key is waiting for.
    """
    deadline = None if wait_s is None else time.monotonic() + wait_s
    said = False
    admin = AIOKafkaAdminClient(**connection(settings))
    await admin.start()
    try:
        while not (partitions := await ready_partitions(admin, topic)):
            if deadline is not None and time.monotonic() >= deadline:
                return []
            if not said:
                print(f"waiting for topic {topic!r} (created by its first event)", file=sys.stderr)
                said = True
            await asyncio.sleep(0.5)
    finally:
        await admin.close()
    return partitions


def event_line(timestamp_ms: int, value: bytes | None, as_json: bool) -> str:
    """Return one event as a line: its JSON, or time, source, post, addresses, keywords, text."""
    if value is None:
        return "(null record)"
    if as_json:
        return value.decode(errors="replace")
    try:
        event: Any = json.loads(value)
    except ValueError:
        return value[:200].decode(errors="replace")
    if not isinstance(event, dict):
        return value[:200].decode(errors="replace")
    at = datetime.fromtimestamp(timestamp_ms / 1000, UTC).strftime("%H:%M:%S")
    source = str(event.get("source", "?"))
    parts = [at, f"{source:<11}", _post_column(event)]
    addresses = [
        f"{ca.get('network')}:{ca.get('address')}" for ca in _list(event.get("buy_ca"), dict)
    ]
    if addresses:
        parts.append("CA " + " ".join(addresses))
    keywords = _list(event.get("keyword_matches"), str)
    if keywords:
        parts.append("keywords " + ",".join(keywords))
    if source == "ocr_error":
        text = f"{event.get('error')}: {event.get('reason')}"
    elif source == "dead_letter":
        text = f"{event.get('stage')}: {event.get('reason')}"
    else:
        text = str(event.get("text") or "")
    text = text.replace("\n", " ⏎ ")
    parts.append(text[:80] + ("…" if len(text) > 80 else ""))
    return "  ".join(parts)


def _post_column(event: dict[str, Any]) -> str:
    """Return the post an event is about: ``source:mid``, or where a dead letter's record was."""
    if event.get("source") == "dead_letter":
        # The rejected record is often a post or an image job: name its post if it says.
        post = _post_of_excerpt(event.get("record"))
        if post is not None:
            return post
        where = f"{event.get('topic', '?')}"
        if isinstance(event.get("partition"), int) and isinstance(event.get("offset"), int):
            where += f"[{event['partition']}]@{event['offset']}"
        return where
    ref = event.get("ref") or event
    if not isinstance(ref, dict):
        return "?"
    return f"{ref.get('source', '?')}:{ref.get('mid', '?')}"


def _post_of_excerpt(excerpt: object) -> str | None:
    """Return ``source:mid`` of a dead letter's record excerpt that is a post or names one."""
    if not isinstance(excerpt, str):
        return None
    try:
        record: Any = json.loads(excerpt)
    except ValueError:
        return None  # not JSON, or cut short
    if not isinstance(record, dict):
        return None
    ref = record.get("ref")
    if not isinstance(ref, dict):
        ref = record
    source, mid = ref.get("source"), ref.get("mid")
    if isinstance(source, str) and isinstance(mid, str | int) and not isinstance(mid, bool):
        return f"{source}:{mid}"
    return None


def _list(value: object, kind: type[T]) -> list[T]:
    """Return the items of ``kind`` in ``value`` if it is a list (a topic may hold any record)."""
    return [item for item in value if isinstance(item, kind)] if isinstance(value, list) else []
