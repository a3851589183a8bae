"""aiokafka keeps the topics it knows when a producer sends to a new one (app/kafka_fixes.py)."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from app import kafka_fixes
from app.admin import create_topics
from app.local_kafka import LocalKafka
from tests.support import unique_settings

pytestmark = pytest.mark.integration


async def test_a_send_to_a_new_topic_keeps_the_leaders_of_known_topics(kafka: LocalKafka) -> None:
    kafka_fixes.apply()
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
