"""Key and keyword administration from outside the worker: commands in, table state out.

Writes go to the control topic (the control agent applies them, so every worker agrees);
reads replay the keys table's changelog topic.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app.apikeys import hash_key, mint_key, new_key_id
from app.settings import Settings
from models.keys import ControlCommand, CreateKey, KeyRecord

log = logging.getLogger(__name__)

# Why: a running worker applies a command in well under a second; 15 s covers a cold one.
APPLY_WAIT_S = 15.0


async def read_keys(settings: Settings) -> dict[str, KeyRecord]:
    """Return every key record, replayed from the keys table's changelog topic."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.broker, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        if settings.keys_changelog_topic not in await consumer.topics():
            return {}  # no worker has run yet
        # The keys table has exactly one partition (app/tables.py).
        tps = [TopicPartition(settings.keys_changelog_topic, 0)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        records: dict[str, KeyRecord] = {}
        while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
            batch = await consumer.getmany(*tps, timeout_ms=1000)
            for messages in batch.values():
                for message in messages:
                    key_id = message.key.decode()
                    if message.value is None:
                        records.pop(key_id, None)
                    else:
                        records[key_id] = KeyRecord.model_validate(json.loads(message.value))
        return records
    finally:
        await stop_consumer(consumer)


async def stop_consumer(consumer: AIOKafkaConsumer) -> None:
    """Stop an aiokafka consumer, tolerating its spurious CancelledError (aiokafka#647)."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # a real cancellation of our task


async def consume_until_stopped(
    should_stop: Callable[[], bool],
    new_consumer: Callable[[], AIOKafkaConsumer],
    consume: Callable[[AIOKafkaConsumer], Awaitable[None]],
    what: str,
) -> None:
    """Run ``consume`` on a started consumer; after any error, on a fresh one, until stopped.

    Why: a background reader must outlive consumer errors (a broker restart; a consumer seen
    stopped during a rebalance) without taking the worker down.
    """
    while not should_stop():
        consumer = new_consumer()
        try:
            await consumer.start()
            await consume(consumer)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s: %r; starting again with a new consumer", what, exc)
            await asyncio.sleep(1)
        finally:
            await stop_consumer(consumer)


async def send_command(settings: Settings, command: ControlCommand) -> None:
    """Publish one control command and wait until the broker has it."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.broker, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.control_topic,
            key=command.key_id.encode(),
            value=command.model_dump_json().encode(),
        )
    finally:
        await producer.stop()


async def wait_applied(
    settings: Settings, key_id: str, done: Callable[[KeyRecord], bool]
) -> KeyRecord | None:
    """Return the key record once ``done`` holds for it, or None after APPLY_WAIT_S."""
    deadline = time.monotonic() + APPLY_WAIT_S
    while time.monotonic() < deadline:
        record = (await read_keys(settings)).get(key_id)
        if record is not None and done(record):
            return record
        await asyncio.sleep(0.3)
    return None


async def create_key(
    settings: Settings, label: str, channels: tuple[str, ...] = ()
) -> tuple[str, CreateKey]:
    """Mint a key, publish its creation, and return the secret key (shown once) and command."""
    key_id = new_key_id()
    api_key = mint_key(key_id)
    command = CreateKey(
        key_id=key_id,
        key_hash=hash_key(api_key),
        label=label,
        created_at=time.time(),
        channels=channels or (settings.channel_topic(key_id),),
    )
    await send_command(settings, command)
    return api_key, command


async def ensure_topics(settings: Settings) -> list[str]:
    """Create the pipeline's topics that do not exist yet; return the names created."""
    wanted = dict(settings.pipeline_topics())
    # Why not the changelog: Faust creates it itself, with the settings its table needs.
    del wanted[settings.keys_changelog_topic]
    return await create_topics(settings, wanted)


async def create_topics(settings: Settings, wanted: dict[str, int]) -> list[str]:
    """Create those of ``wanted`` (name -> partitions) that do not exist; return them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.broker)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, partitions, settings.topic_replicas)
            for name, partitions in wanted.items()
            if name not in existing
        ]
        if missing:
            await admin.create_topics(missing)
            await _wait_for_leaders(admin, [topic.name for topic in missing])
        return [topic.name for topic in missing]
    finally:
        await admin.close()


async def _wait_for_leaders(
    admin: AIOKafkaAdminClient, names: list[str], timeout_s: float = 30.0
) -> None:
    """Wait until every partition of the named topics has a leader (or raise TimeoutError).

    Why: a topic is created before its partitions have leaders; clients that produce to or
    fetch from it in that window depend on each client's metadata retry being right. Waiting
    here means the pipeline only ever sees fully formed topics.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        described = await admin.describe_topics(names)
        unready = [
            topic["topic"]
            for topic in described
            if topic["error_code"]
            or not topic["partitions"]
            or any(p["error_code"] or p["leader"] < 0 for p in topic["partitions"])
        ]
        if not unready and len(described) == len(names):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics without leaders after {timeout_s:.0f}s: {unready}")
        await asyncio.sleep(0.1)
