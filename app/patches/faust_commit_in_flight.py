"""Faust never commits past a record still in flight.

What: with an agent's concurrency above one, records of a partition finish out of order. Faust
(0.15.3) commits the first run of acked offsets, and guards against a hole at the head of the
run only when the hole is more than one offset wide (``min(acked) - committed > 1``: one offset
may be a transaction marker, never delivered), and not at all before the partition's first
commit. So when the record at the head is still being read (a slow image) and the ones after it
are done, Faust commits past it, and a crash then loses it.

Seen: tests/integration/test_commits.py: the image at the head of a partition (a host sending
a byte a second) was never read again after a kill -9 once the five after it were done.

Fix: the run also ends before the lowest offset still in flight (delivered to a stream and not
acked yet).

Upstream: faust-streaming/faust#606 (open), fix proposed in faust-streaming/faust#707. Report:
docs/upstream/faust-commit-past-in-flight.md. Regression tests: tests/unit/test_patches.py
(against Faust's own method too) and tests/integration/test_commits.py.
"""

from __future__ import annotations

from typing import Any

from faust.transport.consumer import Consumer
from faust.utils.functional import consecutive_numbers

from app.patches import Patch

# Faust's own, taken at import (before any patch): the regression test compares the two.
UPSTREAM_NEW_OFFSET = Consumer._new_offset


def _new_offset(self: Any, tp: Any) -> int | None:
    """Return the offset to commit for ``tp``: past the acked run that starts at the head."""
    acked: list[int] = self._acked[tp]
    if not acked:
        return None
    # As Faust: offsets it never saw (compacted away, transaction markers) count as acked.
    max_offset = max(acked)
    gap_for_tp = self._gap[tp]
    if gap_for_tp:
        candidates = sorted(gap_for_tp.overlap(0, max_offset), key=lambda x: x.begin)
        if candidates:
            stuff_to_add: list[int] = []
            for entry in candidates:
                stuff_to_add.extend(range(entry.begin, entry.end))
            acked.extend(stuff_to_add)
            gap_for_tp.chop(0, max(stuff_to_add[-1], max_offset + 1))
    acked.sort()
    committed = self._committed_offset[tp]
    # As Faust: a hole of one offset at the head may be a transaction marker (never delivered).
    if committed and acked[0] - committed > 1:
        return None
    batch = list(next(consecutive_numbers(acked)))
    in_flight = [
        message.offset
        for message in list(self._unacked_messages)
        if message.tp == tp
        and not message.acked
        and (committed is None or message.offset >= committed)
    ]
    if in_flight:
        # The fix: a record delivered to a stream and not acked yet is never committed past
        # (Faust's head check above lets one through, and does not run before a first commit).
        lowest = min(in_flight)
        batch = [offset for offset in batch if offset < lowest]
        if not batch:
            return None
    acked[: len(batch)] = []
    self._acked_index[tp].difference_update(batch)
    return batch[-1] + 1


PATCHES = (
    Patch(
        Consumer,
        "_new_offset",
        _new_offset,
        upstream_sha256="1d2c7ea89a7ad4f1a216c1d51936e569162cd66bd56f889e13fd29c910b58eb0",
    ),
)
