"""Faust fetches for a copy of its active partitions, and for nothing when there are none.

What: Faust (0.15.3) passes its own set of active partitions, a live set it keeps changing, to
aiokafka's ``fetched_records``, which waits for records and reads the set again each time
round. When recovery pauses the changelog while a fetch waits, the set is empty, and to aiokafka
an empty set means "every partition": it hands over the records of the stream partitions, which
Faust then throws away because they are not active. aiokafka has moved past them, so they are
never read.

Seen: a restarted worker read every record of the posts and candidates topics and processed
none (the webhook test that kills a worker).

Fix: fetch for a copy of the set taken at the call, and for nothing when it is empty.

Upstream: not reported yet. Report: docs/upstream/faust-fetch-live-partition-set.md.
Regression test: tests/unit/test_patches.py::test_a_fetch_asks_for_a_copy_of_the_active_partitions
(fails against Faust's own method).
"""

from __future__ import annotations

from typing import Any

from aiokafka.errors import ConsumerStoppedError
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from app.patches import Patch


async def _fetch_records(
    self: Any,
    consumer: Any,
    active_partitions: set[Any] | None,
    timeout: float | None = None,
    max_records: int | None = None,
) -> dict[Any, list[Any]]:
    if not self.consumer.flow_active:
        return {}
    fetcher = consumer._fetcher
    if consumer._closed or fetcher._closed:
        raise ConsumerStoppedError()
    # None (a client-only app) asks for every partition; a set is copied so it cannot change,
    # or empty out, while the fetch waits.
    partitions = None if active_partitions is None else frozenset(active_partitions)
    if partitions is not None and not partitions:
        return {}
    with fetcher._subscriptions.fetch_context():
        records: dict[Any, list[Any]] = await fetcher.fetched_records(
            partitions, timeout=timeout, max_records=max_records
        )
        return records


PATCHES = (
    Patch(
        AIOKafkaConsumerThread,
        "_fetch_records",
        _fetch_records,
        upstream_sha256="39a2c6c79fc1455a199629912b533458a720c64983bc957420a42feef6593baa",
    ),
)
