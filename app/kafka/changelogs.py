"""Reading a one-partition changelog topic from its start, and following it: table replicas.

The keys replica and the known-addresses replica each keep a copy of a table that one worker
writes, on every worker, by reading its changelog with a consumer of no group (unaffected by
rebalances).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

from app.kafka.consumers import consume_until_stopped
from app.kafka.security import connection
from app.settings import Settings

OnRecord = Callable[[bytes | None, bytes | None], None]


async def read_changelog_records(
    consumer: AIOKafkaConsumer,
    topic: str,
    on_record: OnRecord,
    follow: Callable[[], bool] = lambda: False,
    caught_up: Callable[[], None] = lambda: None,
) -> None:
    """Read the changelog from its start, calling ``on_record(key, value)`` for each record.

    ``caught_up()`` is called once everything that was there at the start has been read; the
    reading then goes on for as long as ``follow()`` holds (a worker's replica), or ends (a
    one-off read). A changelog that does not exist yet is waited for only when following.
    """
    while topic not in await consumer.topics():
        if not follow():
            caught_up()
            return  # no worker has run yet: an empty table
        await asyncio.sleep(0.5)  # Faust creates it while the worker starts
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    await consumer.seek_to_beginning(tp)
    end = (await consumer.end_offsets([tp]))[tp]
    at_end = end == 0
    if at_end:
        caught_up()
    while not at_end or follow():
        batch = await consumer.getmany(tp, timeout_ms=1000)
        for message in batch.get(tp, []):
            on_record(message.key, message.value)
        if not at_end and await consumer.position(tp) >= end:
            at_end = True
            caught_up()


async def follow_changelog(
    settings: Settings,
    topic: str,
    on_record: OnRecord,
    caught_up: Callable[[], None],
    should_stop: Callable[[], bool],
    what: str,
) -> None:
    """Read a changelog from its start and follow it until stopped, on a consumer of no group.

    After a consumer error, it reads the changelog again from the start on a new consumer.
    """
    await consume_until_stopped(
        should_stop,
        lambda: AIOKafkaConsumer(**connection(settings), group_id=None, enable_auto_commit=False),
        lambda consumer: read_changelog_records(
            consumer, topic, on_record, follow=lambda: not should_stop(), caught_up=caught_up
        ),
        what,
    )
