"""The library patches of app/patches/: their fences, and each fix against its bug."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP
from mode import Service
from mode.utils.locks import Event

from app import patches
from app.patches import (
    faust_bounded_wait_empty,
    faust_commit_before_revoke,
    faust_commit_in_flight,
    faust_drain_inline,
    faust_fetch_copy,
    faust_seek_before_resume,
)

STREAM = TP(topic="posts", partition=0)
CHANGELOG = TP(topic="keys-changelog", partition=0)


class Recorder:
    """Stands in for the consumer, app and recovery service; records the calls in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def step(self, name: str, result: Any = None) -> Any:
        def record(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return result

        return record

    def async_step(self, name: str) -> Any:
        async def record(*args: Any, **kwargs: Any) -> None:
            self.calls.append(name)

        return record


def _recovery(calls: Recorder) -> Any:
    consumer = SimpleNamespace(
        assignment=lambda: {STREAM, CHANGELOG},
        perform_seek=calls.async_step("seek"),
        resume_partitions=lambda tps: calls.calls.append(f"resume {sorted(t.topic for t in tps)}"),
        resume_flow=calls.step("resume flow"),
    )
    app = SimpleNamespace(
        consumer=consumer,
        consumer_generation_id=3,
        conf=SimpleNamespace(broker_request_timeout=30.0),
        on_rebalance_complete=SimpleNamespace(send=calls.async_step("rebalance complete")),
        flow_control=SimpleNamespace(resume=calls.step("flow control")),
        _fetcher=SimpleNamespace(maybe_start=calls.async_step("fetcher")),
        assignor=SimpleNamespace(assigned_standbys=lambda: set()),
        on_rebalance_end=calls.step("rebalance end"),
    )

    async def wait(coro: Any, timeout: float) -> None:
        await coro

    return SimpleNamespace(
        app=app,
        log=SimpleNamespace(info=calls.step("log"), warning=calls.step("warning")),
        _wait=wait,
        _is_changelog_tp=lambda tp: tp.topic.endswith("-changelog"),
        _set_recovery_ended=calls.step("recovery ended"),
        completed=SimpleNamespace(set=calls.step("completed")),
        tables=SimpleNamespace(
            values=lambda: [],
            on_actives_ready=calls.step("actives ready"),
            on_standbys_ready=calls.step("standbys ready"),
        ),
        actives_for_table={},
        standbys_for_table={},
    )


def _order(calls: Recorder) -> list[str]:
    return [c for c in calls.calls if c != "log"]


def test_recovery_end_seeks_before_it_resumes_the_stream_partitions() -> None:
    calls = Recorder()
    asyncio.run(faust_seek_before_resume._on_recovery_completed(_recovery(calls), generation_id=3))
    order = _order(calls)
    assert order.index("seek") < order.index("resume ['posts']") < order.index("resume flow")
    assert order[-1] == "rebalance end"


def test_the_tableless_path_seeks_before_it_resumes_too() -> None:
    calls = Recorder()
    asyncio.run(faust_seek_before_resume._resume_streams(_recovery(calls), generation_id=3))
    order = _order(calls)
    assert order.index("seek") < order.index("resume ['posts']") < order.index("resume flow")


def test_a_newer_rebalance_leaves_the_partitions_alone() -> None:
    calls = Recorder()
    asyncio.run(faust_seek_before_resume._on_recovery_completed(_recovery(calls), generation_id=2))
    assert "seek" not in calls.calls and not any(c.startswith("resume") for c in calls.calls)


class FakeFetcher:
    """aiokafka's fetcher as far as Faust's fetch uses it: records the partitions asked for."""

    def __init__(self, change: set[Any]) -> None:
        self._closed = False
        self.asked: list[Any] = []
        self._change = change
        self._subscriptions = SimpleNamespace(fetch_context=contextlib.nullcontext)

    async def fetched_records(self, partitions: Any, **kwargs: Any) -> dict[Any, list[Any]]:
        self._change.clear()  # recovery pauses the changelog while the fetch waits
        self.asked.append(partitions)
        return {}


def _fetch(active: set[Any] | None) -> FakeFetcher:
    fetcher = FakeFetcher(active if active is not None else set())
    thread = SimpleNamespace(consumer=SimpleNamespace(flow_active=True))
    consumer = SimpleNamespace(_closed=False, _fetcher=fetcher)
    asyncio.run(faust_fetch_copy._fetch_records(thread, consumer, active, timeout=1.0))
    return fetcher


def test_a_fetch_asks_for_a_copy_of_the_active_partitions() -> None:
    fetcher = _fetch({CHANGELOG})
    # The live set emptied during the fetch; to aiokafka an empty set would mean "all".
    assert fetcher.asked == [frozenset({CHANGELOG})]


def test_no_active_partition_fetches_nothing() -> None:
    assert _fetch(set()).asked == []


def test_a_client_only_app_still_fetches_every_partition() -> None:
    assert _fetch(None).asked == [None]


def _consumer(committed: int | None, acked: list[int], in_flight: list[int]) -> Any:
    """Faust's consumer state as far as ``_new_offset`` reads it."""
    tp = STREAM

    class Gaps(list[Any]):
        def overlap(self, begin: int, end: int) -> list[Any]:
            return []

    messages = [SimpleNamespace(tp=tp, offset=o, acked=False) for o in in_flight]
    return SimpleNamespace(
        _acked={tp: sorted(acked)},
        _acked_index={tp: set(acked)},
        _gap={tp: Gaps()},
        _committed_offset={tp: committed},
        _unacked_messages=messages,
    )


@pytest.mark.parametrize(
    ("committed", "acked", "in_flight", "upstream", "fixed"),
    [
        # faust-streaming #606: the head record (2585) is still being read, the next ones are
        # done. Faust commits 2590, past it; a crash then loses 2585.
        (2585, [2586, 2587, 2588, 2589], [2585], 2590, None),
        # Before the partition's first commit Faust does not look at the head at all.
        (None, [1, 2, 3], [0], 4, None),
        # A slow record in the middle of the run: commit up to it, not past it.
        (10, [10, 11, 13, 14], [12], 12, 12),
        (10, [10, 11, 12, 13], [15], 14, 14),  # in flight after the run: no change
        (10, [12, 13], [], None, None),  # a wider hole at the head: both wait
    ],
)
def test_a_commit_never_passes_a_record_still_in_flight(
    committed: int | None, acked: list[int], in_flight: list[int], upstream: Any, fixed: Any
) -> None:
    assert faust_commit_in_flight.UPSTREAM_NEW_OFFSET(
        _consumer(committed, acked, in_flight), STREAM
    ) == (upstream)
    assert (
        faust_commit_in_flight._new_offset(_consumer(committed, acked, in_flight), STREAM) == fixed
    )


class Draining(Service):
    """Faust's consumer as far as the delivery of one message reads it; counts the races."""

    def __init__(self) -> None:
        super().__init__()
        self.suspend_flow = Event()
        self.races = 0

    async def wait_first(self, *coros: Any, timeout: Any = None) -> Any:
        self.races += 1
        return await super().wait_first(*coros, timeout=timeout)


async def test_a_message_is_delivered_inline_when_nothing_waits() -> None:
    consumer, delivered = Draining(), []

    async def callback(message: str) -> None:
        delivered.append(message)

    await faust_drain_inline.deliver(consumer, callback, "m1")
    assert delivered == ["m1"] and consumer.races == 0
    # A callback that has to wait (a full stream queue) finishes through Faust's race.
    room = asyncio.get_running_loop().create_future()

    async def waits(message: str) -> str:
        await room
        delivered.append(message)
        return message

    asyncio.get_running_loop().call_later(0.01, room.set_result, None)
    await faust_drain_inline.deliver(consumer, waits, "m2")
    assert delivered == ["m1", "m2"] and consumer.races == 1
    # An error is raised to the drainer, as Faust's race raises it.
    with pytest.raises(ValueError, match="bad"):
        await faust_drain_inline.deliver(consumer, _raises_after_waiting, "m3")


async def _raises_after_waiting(message: str) -> None:
    await asyncio.sleep(0)
    raise ValueError("bad record")


async def test_a_delivery_that_waits_is_still_cut_short_by_a_suspended_flow() -> None:
    consumer, seen = Draining(), []

    async def never_has_room(message: str) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    asyncio.get_running_loop().call_later(0.01, consumer.suspend_flow.set)
    await asyncio.wait_for(faust_drain_inline.deliver(consumer, never_has_room, "m"), 5)
    await asyncio.sleep(0)  # the cancelled task runs its handler
    assert seen == ["cancelled"] and consumer.races == 1
    # Suspended from the start: Faust's own path, the callback raced from its first step.
    await faust_drain_inline.deliver(consumer, never_has_room, "m")
    await asyncio.sleep(0)
    assert consumer.races == 2 and seen == ["cancelled", "cancelled"]


class NeverAcked:
    """Faust's consumer as far as ``wait_empty`` reads it, with one record that never finishes."""

    def __init__(self, stopping: bool) -> None:
        self.should_stop = False
        self._unacked_messages = [SimpleNamespace(refcount=1, acked=False)]
        self.app = SimpleNamespace(should_stop=stopping, agents=SimpleNamespace())
        self.app.agents.human_tracebacks = lambda: ""
        self.log = SimpleNamespace(warning=self.note, info=self.note, dev=self.note)
        self.diag = SimpleNamespace(set_flag=self.note, unset_flag=self.note)
        self.notes: list[str] = []
        self.committed = 0

    def note(self, message: str, *args: Any) -> None:
        self.notes.append(message % args if args else message)

    async def commit(self) -> None:
        self.committed += 1

    async def commit_and_end_transactions(self) -> None:
        self.committed += 1

    async def _wait_for_ack(self, timeout: float) -> None:
        await asyncio.sleep(min(timeout, 0.05))

    def _clean_unacked_messages(self) -> None:
        pass


async def test_a_stopping_consumer_gives_up_on_a_record_that_never_finishes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(faust_bounded_wait_empty, "TIMEOUT_S", 0.3)
    upstream = faust_bounded_wait_empty.PATCHES[0].owner.__dict__["wait_empty"]
    with pytest.raises(TimeoutError):  # Faust's own waits for ever
        await asyncio.wait_for(upstream(NeverAcked(stopping=True)), 1.0)
    consumer = NeverAcked(stopping=True)
    await asyncio.wait_for(faust_bounded_wait_empty._wait_empty(consumer), 2.0)
    assert any("gave up after" in note for note in consumer.notes)
    assert consumer.committed >= 1  # what was acked is still committed
    # Not stopping (a rebalance): the wait is Faust's, unbounded.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(faust_bounded_wait_empty._wait_empty(NeverAcked(False)), 1.0)


class Revoking:
    """Faust's consumer as far as ``on_partitions_revoked`` reads it; the app's handler commits."""

    def __init__(self) -> None:
        self.app = SimpleNamespace(
            _start_span_from_rebalancing=lambda name: contextlib.nullcontext()
        )
        self.diag = SimpleNamespace(set_flag=lambda flag: None, unset_flag=lambda flag: None)
        self.log = SimpleNamespace(dev=lambda *args: None)
        self._active_partitions = {STREAM}
        self._paused_partitions: set[TP] = set()
        self._gap: dict[TP, list[int]] = {STREAM: []}
        self._acked = {STREAM: [7, 8, 9]}  # done since the last periodic commit
        self._acked_index = {STREAM: {7, 8, 9}}
        self._read_offset = {STREAM: 9}
        self._committed_offset = {STREAM: 7}
        self.committable: dict[TP, list[int]] = {}

    async def _on_partitions_revoked(self, revoked: set[TP]) -> None:
        # The app's handler: waits for the records in flight, then commits what was acked.
        self.committable = {tp: list(self._acked.get(tp, [])) for tp in revoked}


async def test_a_rebalance_commits_the_revoked_partitions_before_forgetting_them() -> None:
    upstream = faust_commit_before_revoke.PATCHES[0].owner.__dict__["on_partitions_revoked"]
    forgetful = Revoking()
    await upstream(forgetful, {STREAM})
    assert forgetful.committable == {STREAM: []}  # faust-streaming #502: offsets 7-9 done again
    consumer = Revoking()
    await faust_commit_before_revoke._on_partitions_revoked(consumer, {STREAM})
    assert consumer.committable == {STREAM: [7, 8, 9]}
    # Then forgotten, as Faust does, and no longer fetched.
    assert STREAM not in consumer._acked and STREAM not in consumer._committed_offset
    assert consumer._active_partitions == set()


def test_every_fence_holds_against_the_installed_libraries() -> None:
    # Fails after an upgrade of faust-streaming or aiokafka that changed a patched method:
    # re-check the fix against the new code, then record the new hash in its module.
    patches.check_fences()


def test_a_changed_method_refuses_to_be_patched() -> None:
    patch = patches.all_patches()[0]
    stale = dataclasses.replace(patch, upstream_sha256="0" * 64)
    with pytest.raises(patches.PatchFenceError, match="is not the pinned release"):
        patches.check_fences([stale])


def test_patches_apply_once_and_undo() -> None:
    every = patches.all_patches()
    originals = {(p.owner, p.name): p.owner.__dict__[p.name] for p in every}
    with patches.applied():
        patches.apply_all()  # a second time changes nothing
        assert all(p.owner.__dict__[p.name] is p.replacement for p in every)
    assert all(p.owner.__dict__[p.name] is originals[(p.owner, p.name)] for p in every)
