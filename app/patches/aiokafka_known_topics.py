"""aiokafka keeps tracking the topics it knew when a producer first sends to a new one.

What: aiokafka's client (0.14.0) starts out tracking every topic (an empty topic set means
"all") and switches to an explicit set at its first ``add_topic``, which a producer calls on
its first send to a topic it has not seen yet. Topics it knew only from the all-topics metadata
are then left out of every later metadata update, and their partitions lose their leaders in
the client's view. A batch already queued for such a partition then waits for a leader forever,
and a producer whose next record does not fit in that batch waits with it.

Seen: the posts agent stuck in "emit candidate" after a new key's channel topic got its first
record (20 kB posts, about two runs in three of tests/integration/test_live_streams.py).

Fix: at that switch, keep tracking every topic the client already knows.

Upstream: not reported yet (no matching aiokafka issue found); the report is
docs/upstream/aiokafka-add-topic-drops-known-topics.md. Regression test:
tests/integration/test_patches.py::test_a_send_to_a_new_topic_keeps_the_leaders_of_known_topics.
"""

from __future__ import annotations

from typing import Any

from aiokafka.client import AIOKafkaClient

from app.patches import Patch

# Taken at import, before any patch is applied: the replacement calls the released method.
_released_add_topic = AIOKafkaClient.add_topic


def _add_topic_keeping_known(self: Any, topic: str) -> Any:
    if not self._topics:
        self._topics = set(self.cluster.topics())
    return _released_add_topic(self, topic)


PATCHES = (
    Patch(
        AIOKafkaClient,
        "add_topic",
        _add_topic_keeping_known,
        upstream_sha256="b054eda662913f089f7620eb15d2151c81ecae4b95bc63daa7be19e876833325",
    ),
)
