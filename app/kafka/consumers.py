"""Running aiokafka consumers for as long as the worker does, through their failures."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer

log = logging.getLogger(__name__)


async def stop_consumer(consumer: AIOKafkaConsumer) -> None:
    """Stop an aiokafka consumer, tolerating its spurious CancelledError (aiokafka#647)."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # a real cancellation of our task


async def consume_until_stopped(
    should_stop: Callable[[], bool],
    new_consumer: Callable[[], AIOKafkaConsumer],
    consume: Callable[[AIOKafkaConsumer], Awaitable[None]],
    what: str,
) -> None:
    """Run ``consume`` on a started consumer; after any error, on a fresh one, until stopped.

    Why: a background reader must outlive consumer errors (a broker restart; a consumer seen
    stopped during a rebalance) without taking the worker down.
    """
    while not should_stop():
        consumer = new_consumer()
        try:
            await consumer.start()
            await consume(consumer)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s: %r; starting again with a new consumer", what, exc)
            await asyncio.sleep(1)
        finally:
            await stop_consumer(consumer)
