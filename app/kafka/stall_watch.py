"""Re-read a partition whose progress stopped while the worker has nothing left to do.

Why: a safety net for records fetched but never handed to an agent. The known causes, in
Faust (0.15.3) and aiokafka (0.14.0) around a rebalance, are fixed in app/faust_fixes.py and
app/kafka_fixes.py; this catches what such a fault would leave behind. A partition with
records past its committed offset while the worker is idle, twice in a row at the same offset,
cannot be making progress; reading it again from the committed offset hands the lost records
to the agent (the ones after them repeat, with their idempotency keys).
"""

from __future__ import annotations

import logging
from typing import Any

from app.metrics import metrics

log = logging.getLogger(__name__)

# Why 10 s: longer than Faust's commit interval (2.8 s by default), so a partition that is
# merely between commits is never taken for a stalled one.
CHECK_INTERVAL_S = 10.0


def stalled_partitions(
    committed: dict[Any, int], end: dict[Any, int], candidates: set[Any]
) -> dict[Any, int]:
    """Return, of ``candidates``, the partitions with records past their committed offset."""
    return {
        tp: committed[tp]
        for tp in candidates
        if tp in committed and tp in end and end[tp] > committed[tp]
    }


class StallWatch:
    """Remembers last check's suspects; seeks those still stuck at the same offset."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self._suspects: dict[Any, int] = {}

    def _idle(self) -> bool:
        app = self._app
        consumer: Any = app.consumer
        return not (
            app.rebalancing
            or app.in_recovery
            or not consumer.flow_active
            or metrics.in_flight
            or consumer._unacked_messages
        )

    async def check(self) -> None:
        """Seek partitions that were stuck at the same offset at this check and the last."""
        if not self._idle():
            self._suspects.clear()
            return
        app = self._app
        consumer: Any = app.consumer
        monitor: Any = app.monitor
        changelogs = set(app.tables.changelog_topics)
        streams = {
            tp
            for tp in consumer.assignment()
            if tp.topic not in changelogs and tp not in consumer._paused_partitions
        }
        stuck = stalled_partitions(
            dict(monitor.tp_committed_offsets or {}), dict(monitor.tp_end_offsets or {}), streams
        )
        for tp, offset in stuck.items():
            if self._suspects.get(tp) != offset:
                continue
            log.warning(
                "%s/%s: no progress past offset %d with records after it and nothing in "
                "progress; reading it again from there",
                tp.topic,
                tp.partition,
                offset,
            )
            metrics.partition_rereads.inc()
            await consumer.seek(tp, offset)
        self._suspects = {tp: o for tp, o in stuck.items() if self._suspects.get(tp) != o}


def install(app: Any) -> StallWatch:
    """Run the watch on a Faust timer of ``app``."""
    watch = StallWatch(app)

    async def watch_for_stalled_partitions() -> None:
        try:
            await watch.check()
        except Exception as exc:  # never let the watch take the worker down; try at next tick
            log.warning("stall watch: check failed: %r", exc)

    app.timer(CHECK_INTERVAL_S)(watch_for_stalled_partitions)
    return watch
