"""A fix for aiokafka's metadata tracking (0.14.0), applied before any Kafka client is made.

aiokafka's client starts out tracking every topic (an empty topic set means "all") and switches
to an explicit set at its first ``add_topic``, which a producer calls on its first send to a
topic it has not seen yet. Topics it knew only from the all-topics metadata are then left out
of every later metadata update, and their partitions lose their leaders in the client's view.
A batch already queued for such a partition then waits for a leader forever, and a producer
whose next record does not fit in that batch waits with it. Seen here: the posts agent stuck
in "emit candidate" after a new key's channel topic got its first record (20 kB posts, about
two runs in three of tests/integration/test_live_streams.py). The fix: at that switch, keep
tracking every topic the client already knows.
"""

from __future__ import annotations

from typing import Any

from aiokafka.client import AIOKafkaClient

_original_add_topic = AIOKafkaClient.add_topic


def _add_topic_keeping_known(self: Any, topic: str) -> Any:
    if not self._topics:
        self._topics = set(self.cluster.topics())
    return _original_add_topic(self, topic)


def apply() -> None:
    """Patch aiokafka's client so adding a topic never drops the topics it already knows."""
    AIOKafkaClient.add_topic = _add_topic_keeping_known
