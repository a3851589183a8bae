"""Two fixes for Faust (faust-streaming 0.15.3) around a rebalance.

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
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.errors import ConsumerStoppedError
from faust.tables.recovery import Recovery
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread


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


def apply() -> None:
    """Patch Faust: seek stream partitions before resuming them; fetch only what was asked."""
    # Why check: a Faust that renamed these would otherwise run unpatched without a word.
    for owner, name in (
        (Recovery, "_resume_streams"),
        (Recovery, "on_recovery_completed"),
        (AIOKafkaConsumerThread, "_fetch_records"),
    ):
        if not callable(getattr(owner, name, None)):
            raise RuntimeError(f"faust_fixes: {owner.__name__}.{name} not found; re-check the fix")
    # Why the ignores: replacing these three methods is the point (see the module docstring).
    Recovery._resume_streams = _resume_streams  # type: ignore[method-assign]
    Recovery.on_recovery_completed = _on_recovery_completed  # type: ignore[method-assign]
    AIOKafkaConsumerThread._fetch_records = _fetch_records  # type: ignore[method-assign]
