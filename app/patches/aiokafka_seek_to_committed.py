"""aiokafka's ``seek_to_committed`` also rewinds partitions with no committed offset.

What: Faust (0.15.3) drops records it fetched while a rebalance was under way and relies on
``seek_to_committed`` to read them again. aiokafka's ``seek_to_committed`` (0.14.0) moves only
partitions whose committed offset is above 0: a partition nothing was ever committed for (a
peer was killed before its first commit, or a whole group was restarted) keeps the position
past the dropped records, and they are never read.

Seen: the survivor of a kill -9 dropped all 107 records of the two images partitions it took
over and never read them again (105 images without an ``ocr_result`` in
test_a_survivor_takes_over_a_killed_workers_partitions).

Fix: a partition without a committed offset goes back to where the group's reset policy
(``auto_offset_reset``, earliest for Faust) starts it, and one committed at 0 goes to 0.

Upstream: aio-libs/aiokafka#1003 (the offset-0 half; open). Report with both halves:
docs/upstream/aiokafka-seek-to-committed.md. Regression test:
tests/integration/test_patches.py::test_seek_to_committed_rewinds_partitions_with_no_committed_offset.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.consumer.fetcher import OffsetResetStrategy
from aiokafka.errors import IllegalStateError

from app.patches import Patch


async def _seek_to_committed_or_reset(
    self: AIOKafkaConsumer, *partitions: TopicPartition
) -> dict[TopicPartition, int | None]:
    if not partitions:
        partitions = tuple(self._subscription.assigned_partitions())
    else:
        not_assigned = set(partitions) - self._subscription.assigned_partitions()
        if not_assigned:
            raise IllegalStateError(f"Partitions {not_assigned} are not assigned")
    committed: dict[TopicPartition, int | None] = {}
    never_committed = []
    for tp in partitions:
        committed[tp] = offset = await self.committed(tp)
        if offset is not None and offset >= 0:
            self._fetcher.seek_to(tp, offset)
        else:
            never_committed.append(tp)
    strategy = self._fetcher._default_reset_strategy
    if never_committed and strategy != OffsetResetStrategy.NONE:
        # As seek_to_beginning does: wait for the reset, or for the partitions to go away.
        reset = self._fetcher.request_offset_reset(never_committed, strategy)
        reset.add_done_callback(lambda done: done.cancelled() or done.exception())
        assignment = self._subscription.subscription.assignment
        await asyncio.wait(
            [reset, assignment.unassign_future],
            timeout=self._request_timeout_ms / 1000,
            return_when=asyncio.FIRST_COMPLETED,
        )
    return committed


PATCHES = (
    Patch(
        AIOKafkaConsumer,
        "seek_to_committed",
        _seek_to_committed_or_reset,
        upstream_sha256="f6cd85c8b70a4ccf7e862de24f6c5d985038eed3e140990f000aa4b52eda8d72",
    ),
)
