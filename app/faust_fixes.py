"""Three fixes for Faust (faust-streaming 0.15.3): two around a rebalance, one in its commits.

Seek before resume. At the end of a rebalance Faust resumes the stream partitions and only then
seeks them to their committed offsets. Flow is already on (it was turned on to read the
changelogs), so in between the fetcher hands out records from wherever aiokafka happened to be,
and the seek then rewinds under records still being handed out: the rewound records are dropped
as "already read", read offsets set by the seek are overwritten by the batch in progress, and
offsets are taken as gaps and counted as done. Seen here: after a restart, twelve records of a
candidates partition were handed out just before the seek, the partition's commits stopped
before them for good, and webhook deliveries were missing. The fix: the same steps, with the
seek before the resume, so no stream record is handed out before its partition is at its
committed offset. Both places Faust does this are replaced: the end of table recovery, and the
path of an app without tables.

Fetch only what was asked for. Faust passes its own set of active partitions, a live set it
keeps changing, to aiokafka's ``fetched_records``, which waits for records and reads the set
again each time round. When recovery pauses the changelog while a fetch waits, the set is
empty, and to aiokafka an empty set means "every partition": it hands over the records of the
stream partitions, which Faust then throws away because they are not active. aiokafka has moved
past them, so they are never read. Seen here: a restarted worker read every record of the posts
and candidates topics and processed none (the webhook test that kills a worker). The fix: fetch
for a copy of the set taken at the call, and for nothing when it is empty.

Never commit past a record still in flight (faust-streaming #606, open; PR #707). With an
agent's concurrency above one, records of a partition finish out of order. Faust commits the
first run of acked offsets, and guards against a hole at the head of the run only when the
hole is more than one offset wide (``min(acked) - committed > 1``: one offset may be a
transaction marker, never delivered), and not at all before the partition's first commit. So
when the record at the head is still being read (a slow image) and the ones after it are done,
Faust commits past it, and a crash then loses it. The fix: the run also ends before the lowest
offset still in flight (delivered to a stream and not acked yet).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.errors import ConsumerStoppedError
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.utils.functional import consecutive_numbers


async def _seek_then_resume_streams(recovery: Any, assignment: set[Any]) -> None:
    consumer = recovery.app.consumer
    # Why the seek comes first: until the resume, no stream record can be handed out.
    if assignment:
        recovery.log.info("Seek stream partitions to committed offsets.")
        await recovery._wait(
            consumer.perform_seek(), timeout=recovery.app.conf.broker_request_timeout
        )
    consumer.resume_partitions({tp for tp in assignment if not recovery._is_changelog_tp(tp)})
    recovery.completed.set()
    recovery.app.flow_control.resume()
    consumer.resume_flow()
    await recovery.app._fetcher.maybe_start()  # make sure the fetcher runs


async def _finish_rebalance(recovery: Any, generation_id: int, standbys_ready: bool) -> None:
    """Faust's last steps of a rebalance, unless a newer one began: seek, resume, ready."""
    app = recovery.app
    assignment = app.consumer.assignment()
    if app.consumer_generation_id != generation_id:
        recovery.log.warning("Recovery rebalancing again")
        return
    await _seek_then_resume_streams(recovery, assignment)
    recovery.tables.on_actives_ready()
    if standbys_ready:
        recovery.tables.on_standbys_ready()
    app.on_rebalance_end()
    recovery.log.info("Worker ready")


async def _resume_streams(self: Any, generation_id: int = 0) -> None:
    await self.app.on_rebalance_complete.send()
    await _finish_rebalance(self, generation_id, standbys_ready=True)


async def _on_recovery_completed(self: Any, generation_id: int = 0) -> None:
    self.log.info("Restore complete!")
    await self.app.on_rebalance_complete.send()
    self._set_recovery_ended()
    callbacks = [
        asyncio.ensure_future(
            table.on_recovery_completed(
                self.actives_for_table[table], self.standbys_for_table[table]
            )
        )
        for table in self.tables.values()
    ]
    if callbacks:
        await asyncio.wait(callbacks)
    # Why the condition: Faust marks standbys ready here only when none are assigned.
    await _finish_rebalance(
        self, generation_id, standbys_ready=not self.app.assignor.assigned_standbys()
    )


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


# Faust's own, kept for the regression test that shows what the fix changes.
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


def apply() -> None:
    """Patch Faust: seek before resuming; fetch what was asked; never commit past in-flight."""
    # Why check: a Faust that renamed these would otherwise run unpatched without a word.
    for owner, name in (
        (Recovery, "_resume_streams"),
        (Recovery, "on_recovery_completed"),
        (AIOKafkaConsumerThread, "_fetch_records"),
        (Consumer, "_new_offset"),
    ):
        if not callable(getattr(owner, name, None)):
            raise RuntimeError(f"faust_fixes: {owner.__name__}.{name} not found; re-check the fix")
    # Why the ignores: replacing these four methods is the point (see the module docstring).
    Recovery._resume_streams = _resume_streams  # type: ignore[method-assign]
    Recovery.on_recovery_completed = _on_recovery_completed  # type: ignore[method-assign]
    AIOKafkaConsumerThread._fetch_records = _fetch_records  # type: ignore[method-assign]
    Consumer._new_offset = _new_offset  # type: ignore[method-assign]
