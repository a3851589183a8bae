"""Faust seeks stream partitions to their committed offsets before it resumes them.

What: at the end of a rebalance Faust (0.15.3) resumes the stream partitions and only then
seeks them to their committed offsets. Flow is already on (it was turned on to read the
changelogs), so in between the fetcher hands out records from wherever aiokafka happened to be,
and the seek then rewinds under records still being handed out: the rewound records are dropped
as "already read", read offsets set by the seek are overwritten by the batch in progress, and
offsets are taken as gaps and counted as done.

Seen: after a restart, twelve records of a candidates partition were handed out just before
the seek, the partition's commits stopped before them for good, and webhook deliveries were
missing (the "DROPPED MESSAGE" storms of the survivor test came from the same window).

Fix: the same steps, with the seek before the resume, so no stream record is handed out before
its partition is at its committed offset. Both places Faust does this are replaced: the end of
table recovery, and the path of an app without tables.

Upstream: faust-streaming/faust#217 had put the seek before the resume; the order was lost
later. Report: docs/upstream/faust-resume-before-seek.md. Regression tests:
tests/unit/test_patches.py (the order of the steps), and the kill tests of
tests/integration/test_faults.py and test_webhooks.py against real Faust.
"""

from __future__ import annotations

import asyncio
from typing import Any

from faust.tables.recovery import Recovery

from app.patches import Patch


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


PATCHES = (
    Patch(
        Recovery,
        "_resume_streams",
        _resume_streams,
        upstream_sha256="d986a6710c1aca98f08c4c723fb3eadc5bf24576ad4eb9da3dd3eecedda2f24e",
    ),
    Patch(
        Recovery,
        "on_recovery_completed",
        _on_recovery_completed,
        upstream_sha256="6ef567acf072e46da3fccbccc6d662371f634f622c3d510972d5df81f70ae3ac",
    ),
)
