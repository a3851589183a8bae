"""Two fixes for aiokafka (0.14.0), applied before any Kafka client is made.

Metadata tracking. aiokafka's client starts out tracking every topic (an empty topic set
means "all") and switches to an explicit set at its first ``add_topic``, which a producer
calls on its first send to a topic it has not seen yet. Topics it knew only from the
all-topics metadata are then left out of every later metadata update, and their partitions lose
their leaders in the client's view. A batch already queued for such a partition then waits
for a leader forever, and a producer whose next record does not fit in that batch waits with
it. Seen here: the posts agent stuck in "emit candidate" after a new key's channel topic got
its first record (20 kB posts, about two runs in three of
tests/integration/test_live_streams.py). The fix: at that switch, keep tracking every topic
the client already knows.

Seeking to committed offsets. Faust (0.15.3) drops records it fetched while a rebalance was
under way and relies on ``seek_to_committed`` to read them again. aiokafka's
``seek_to_committed`` moves only partitions whose committed offset is above 0: a partition
nothing was ever committed for (a peer was killed before its first commit, or a whole group was
restarted) keeps the position past the dropped records, and they are never read. Seen here: the
survivor of a kill -9 dropped all 107 records of the two images partitions it took over and
never read them again (105 images without an ``ocr_result`` in
test_a_survivor_takes_over_a_killed_workers_partitions). The fix: a partition without a
committed offset goes back to where the group's reset policy (``auto_offset_reset``, earliest
for Faust) starts it, and one committed at 0 goes to 0.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.client import AIOKafkaClient
from aiokafka.consumer.fetcher import OffsetResetStrategy
from aiokafka.errors import IllegalStateError

_original_add_topic = AIOKafkaClient.add_topic


def _add_topic_keeping_known(self: Any, topic: str) -> Any:
    if not self._topics:
        self._topics = set(self.cluster.topics())
    return _original_add_topic(self, topic)


async def _seek_to_committed_or_reset(
    self: Any, *partitions: TopicPartition
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


def apply() -> None:
    """Patch aiokafka: keep known topics on ``add_topic``; seek never-committed partitions too."""
    AIOKafkaClient.add_topic = _add_topic_keeping_known
    AIOKafkaConsumer.seek_to_committed = _seek_to_committed_or_reset
