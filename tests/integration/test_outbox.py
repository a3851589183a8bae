"""The outbox against the real broker: batches in order, and a bad topic fails only itself."""

from __future__ import annotations

import time
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from app.kafka.admin import create_topics
from app.kafka.local import LocalKafka
from app.kafka.outbox import Outbox, Outgoing
from harness.records import consume
from harness.workers import unique_settings

pytestmark = pytest.mark.integration


async def test_records_arrive_in_order_and_a_topic_that_fails_costs_only_its_records(
    kafka: LocalKafka,
) -> None:
    settings = unique_settings(kafka)
    good, other = f"outbox-{uuid.uuid4().hex[:8]}", f"outbox-{uuid.uuid4().hex[:8]}"
    await create_topics(settings, {good: 3, other: 1})
    outbox = Outbox(settings)
    await outbox.start()
    try:
        records = [Outgoing(good, b"same-key", b'{"n": %d}' % n) for n in range(2000)]
        records += [Outgoing(other, None, b'{"n": -1}', [("h", b"v")])]
        refused = [Outgoing("..", b"k", b"{}")]  # a name Kafka refuses: no metadata, ever
        started = time.monotonic()
        await outbox.send_all([*records, *refused], timeout_s=3.0)
        assert time.monotonic() - started < 10
    finally:
        await outbox.stop()
    assert all(record.error is None for record in records)
    assert refused[0].error is not None and "within 3 s" in refused[0].error
    read = await consume(kafka.bootstrap, good, count=2000)
    assert [r["n"] for r in read] == list(range(2000))  # one key, one partition, in order
    assert await consume(kafka.bootstrap, other, count=1) == [{"n": -1}]


async def test_a_record_the_broker_refuses_is_its_outcome_and_the_producer_sends_on(
    kafka: LocalKafka,
) -> None:
    settings = unique_settings(kafka)
    topic = f"outbox-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    await admin.create_topics(
        [NewTopic(topic, 1, 1, topic_configs={"max.message.bytes": "500000"})]
    )
    outbox = Outbox(settings)
    await outbox.start()
    try:
        assert await outbox.limits.limit(topic) == 500_000  # read from the broker
        # The operator lowers the topic's limit while the worker runs (its cache is older).
        config = ConfigResource(ConfigResourceType.TOPIC, topic, {"max.message.bytes": "100000"})
        await admin.alter_configs([config])
        big = Outgoing(topic, b"k", b"x" * 300_000)
        started = time.monotonic()
        refused = await outbox.send_until_done([big], timeout_s=10)
        assert refused == [big] and "MessageSizeTooLarge" in str(big.error)
        assert time.monotonic() - started < 10  # never retried
        # The refused batch broke the idempotent producer's sequence: it was replaced, and
        # the next records of that very partition go through.
        assert outbox.replaced == 1
        after = [Outgoing(topic, b"k", b'{"n": %d}' % n) for n in range(3)]
        assert await outbox.send_until_done(after, timeout_s=10) == []
        # The limit was read again: the same record is now refused before it is sent.
        again = Outgoing(topic, b"k", b"x" * 300_000)
        assert await outbox.send_until_done([again], timeout_s=10) == [again]
        assert "over the 100,000-byte limit" in str(again.error) and outbox.replaced == 1
    finally:
        await outbox.stop()
        await admin.close()
    assert await consume(kafka.bootstrap, topic, count=3) == [{"n": 0}, {"n": 1}, {"n": 2}]
