"""Faust hands each message to its streams inline, and races it only when it has to wait.

What: Faust (0.15.3) delivers every message it reads through ``Service.wait_first(callback,
suspend_flow.wait())``, which starts four tasks (the callback, the suspend flag, the stopped
and crashed flags), waits on them, and cancels three. Almost always the callback finishes
without waiting: it decodes the record and puts it on a stream's queue.

Seen: in py-spy profiles of a worker draining text posts, that race took 21% of the event
loop's time, more than our own code for the post (bench/text_path.py).

Fix: run the callback's first step inline. When it finishes there (the queue had room), no
task is made. When it has to wait (a full queue, flow control, the producer's buffer), what
is left of it is raced against the suspend flag exactly as before; a suspended flow keeps
Faust's own path from the start. Everything else is Faust's method unchanged.

Upstream: a cost, not a bug; not reported yet.
Regression test: tests/unit/test_patches.py::test_a_message_is_delivered_inline_when_nothing_waits
and ::test_a_delivery_that_waits_is_still_cut_short_by_a_suspended_flow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any, cast

from faust.transport.consumer import CONSUMER_FETCHING, Consumer
from mode import Service

from app.patches import Patch


class _Resumed:
    """The rest of a coroutine whose first step already ran and yielded ``waiting_on``."""

    def __init__(self, coro: Coroutine[Any, Any, Any], waiting_on: Any) -> None:
        self._coro = coro
        self._waiting_on = waiting_on

    def __await__(self) -> Generator[Any, Any, Any]:
        # Why by hand: the task that runs this takes the future the coroutine yielded, waits
        # on it, and passes on what it sends or throws (cancellation) to the coroutine.
        coro, yielded = self._coro, self._waiting_on
        while True:
            try:
                sent = yield yielded
            except BaseException as exc:
                try:
                    yielded = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    yielded = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def deliver(consumer: Any, callback: Any, message: Any) -> None:
    """Give ``message`` to ``callback``; race it against the suspend flag only if it waits."""
    if consumer.suspend_flow.is_set():
        await consumer.wait_first(callback(message), consumer.suspend_flow.wait())
        return
    coro = callback(message)
    try:
        waiting_on = coro.send(None)
    except StopIteration:
        return  # delivered without waiting: the common case
    await consumer.wait_first(_Resumed(coro, waiting_on), consumer.suspend_flow.wait())


async def _drain_messages(self: Any, fetcher: Any) -> None:  # pragma: no cover
    # Faust 0.15.3's Consumer._drain_messages; only the delivery line differs (see above).
    callback = self.callback
    getmany = self.getmany
    consumer_should_stop = cast(Service, self)._stopped.is_set
    fetcher_should_stop = cast(Service, fetcher)._stopped.is_set

    get_read_offset = self._read_offset.__getitem__
    set_read_offset = self._read_offset.__setitem__
    flag_consumer_fetching = CONSUMER_FETCHING
    set_flag = self.diag.set_flag
    unset_flag = self.diag.unset_flag
    commit_every = self._commit_every
    acks_enabled_for = self.app.topics.acks_enabled_for

    yield_every = 100
    num_since_yield = 0
    sleep = asyncio.sleep

    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            set_flag(flag_consumer_fetching)
            ait = getmany(timeout=1.0)

            # Sleeping because sometimes getmany is called in a loop
            # never releasing to the event loop
            await self.sleep(0)
            if not self.should_stop:
                async for tp, message in ait:
                    num_since_yield += 1
                    if num_since_yield > yield_every:
                        await sleep(0)
                        num_since_yield = 0

                    offset = message.offset
                    r_offset = get_read_offset(tp)
                    if r_offset is None or offset >= r_offset:
                        gap = offset - (r_offset or 0)
                        # We have a gap in income messages
                        if gap > 1 and r_offset:
                            acks_enabled = acks_enabled_for(message.topic)
                            if acks_enabled:
                                await self._add_gap(tp, r_offset + 1, offset)
                        if commit_every is not None:
                            if self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                        await deliver(self, callback, message)
                        set_read_offset(tp, offset)
                    else:
                        self.log.dev(
                            "DROPPED MESSAGE ROFF %r: k=%r v=%r",
                            offset,
                            message.key,
                            message.value,
                        )
                unset_flag(flag_consumer_fetching)

    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            # we're already stopping so ignore
            self.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            # we're already stopping so ignore
            self.log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as exc:
        self.log.exception("Drain messages raised: %r", exc)
        raise
    finally:
        unset_flag(flag_consumer_fetching)


PATCHES = (
    Patch(
        Consumer,
        "_drain_messages",
        _drain_messages,
        upstream_sha256="44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417",
    ),
)
