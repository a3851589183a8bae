"""A rebalance commits what was done in the partitions it takes away, before it forgets it.

What: on a rebalance Faust (0.15.3) ``Consumer.on_partitions_revoked`` first drops its record of
what was acked in each revoked partition (``_acked``, ``_read_offset``, ``_committed_offset``)
and only then calls the app's handler, which waits for the records in flight and commits. That
commit finds nothing to commit for the revoked partitions: everything done in them since the
last periodic commit (``broker_commit_interval``, 2.8 s) is handled again by whoever gets them,
the same worker included (a rebalance revokes every partition, then assigns them again).

Seen: a rolling restart of two workers under ~50 posts/s repeated 42-110 of 282 matching
deliveries (tests/integration/test_cluster.py), about one commit interval per rebalance.

Fix: the same steps, with the bookkeeping of the revoked partitions dropped *after* the app's
handler has committed what was acked in them. The partitions still leave the fetch set first.

Upstream: faust-streaming/faust#502 (open: "Kafka messages were processed twice after
rebalancing"); the order came with #95 ("clean up consumer partition data on partition
revoke"). Report: docs/upstream/faust-revoke-forgets-before-commit.md. Regression tests:
tests/unit/test_patches.py::test_a_rebalance_commits_the_revoked_partitions_before_forgetting_them
(against Faust's own method too) and the rolling restart of tests/integration/test_cluster.py.
"""

from __future__ import annotations

from typing import Any

from faust.transport.consumer import CONSUMER_PARTITIONS_REVOKED, Consumer
from faust.utils.tracing import traced_from_parent_span
from mode import Service

from app.patches import Patch


@Service.transitions_to(CONSUMER_PARTITIONS_REVOKED)  # as Faust's own
async def _on_partitions_revoked(self: Any, revoked: set[Any]) -> None:
    """Call during rebalancing when partitions are being revoked."""
    span = self.app._start_span_from_rebalancing("on_partitions_revoked")
    T = traced_from_parent_span(span)
    with span:
        # As Faust: the revoked partitions are fetched no more.
        if self._active_partitions is not None:
            self._active_partitions.difference_update(revoked)
        self._paused_partitions.difference_update(revoked)
        # The fix: the app's handler (wait for the records in flight, then commit) runs while
        # the consumer still knows what was acked in the revoked partitions.
        await T(self._on_partitions_revoked, partitions=revoked)(revoked)
        for tp in revoked:
            self._gap.pop(tp, None)
            self._acked.pop(tp, None)
            self._acked_index.pop(tp, None)
            self._read_offset.pop(tp, None)
            self._committed_offset.pop(tp, None)


PATCHES = (
    Patch(
        Consumer,
        "on_partitions_revoked",
        _on_partitions_revoked,
        upstream_sha256="d04b7ae72c6fc206924a2879d6c90dd383f3e8ba6f4b10a19ca99a921eb8f4db",
    ),
)
