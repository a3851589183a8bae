"""The aiokafka patches of app/patches/, each against a real broker."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from app.kafka.admin import create_topics
from app.kafka.local import LocalKafka
from harness.records import produce
from harness.workers import unique_settings

pytestmark = pytest.mark.integration


async def test_a_send_to_a_new_topic_keeps_the_leaders_of_known_topics(
    kafka: LocalKafka, patched: None
) -> None:
    settings = unique_settings(kafka)
    known, new = f"known-{uuid.uuid4().hex[:8]}", f"new-{uuid.uuid4().hex[:8]}"
    await create_topics(settings, {known: 1})
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
    await producer.start()
    try:
        # While it tracks no topic by name, a metadata update covers every topic (Faust's
        # producer gets one this way), so the first send to the known topic adds nothing.
        await producer.client.force_metadata_update()
        assert not producer.client._topics and known in producer.client.cluster.topics()
        await producer.send_and_wait(known, b"before")
        await create_topics(settings, {new: 1})
        await producer.send_and_wait(new, b"first")  # the client now tracks topics by name
        await producer.client.force_metadata_update()
        # Without the fix the known topic's leader is gone here, and a batch queued for it
        # waits for one forever.
        assert producer.client.cluster.leader_for_partition(TopicPartition(known, 0)) is not None
    finally:
        await producer.stop()


async def test_seek_to_committed_rewinds_partitions_with_no_committed_offset(
    kafka: LocalKafka, patched: None
) -> None:
    settings = unique_settings(kafka)
    topic = f"seek-{uuid.uuid4().hex[:8]}"
    await create_topics(settings, {topic: 2})
    await produce(kafka.bootstrap, topic, [b"%d" % n for n in range(10)], key=b"same")
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap,
        group_id=f"group-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        full = next(tp for tp in tps if ends[tp] == 10)
        empty = next(tp for tp in tps if tp != full)
        read = await consumer.getmany(full, timeout_ms=10_000)
        assert len(read[full]) == 10 and await consumer.position(full) == 10
        await consumer.commit({empty: 0})  # a commit at 0, the other case aiokafka skips
        consumer.seek(empty, 0)
        # What Faust does after dropping records it fetched during a rebalance. Nothing was
        # ever committed for ``full``: without the fix its position stays at 10 and the
        # ten records are never read again.
        committed = await consumer.seek_to_committed()
        assert committed == {full: None, empty: 0}
        assert await consumer.position(full) == 0
        assert await consumer.position(empty) == 0
        again = await consumer.getmany(full, timeout_ms=10_000)
        assert [r.value for r in again[full]] == [b"%d" % n for n in range(10)]
    finally:
        await consumer.stop()
