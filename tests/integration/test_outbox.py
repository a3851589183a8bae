"""The outbox against the real broker: batches in order, and a bad topic fails only itself."""

from __future__ import annotations

import time
import uuid

import pytest

from app.kafka.admin import create_topics
from app.kafka.local import LocalKafka
from app.kafka.outbox import Outbox, Outgoing
from tests.support import consume, unique_settings

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
