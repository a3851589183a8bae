"""Run again what a transient Kafka error interrupted, for a bounded time."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)

T = TypeVar("T")

_FIRST_DELAY_S = 0.2
_MAX_DELAY_S = 5.0


def is_transient(error: BaseException) -> bool:
    """Tell whether ``error`` may pass by itself: a timeout, or a KafkaError marked retriable."""
    return isinstance(error, TimeoutError) or (
        isinstance(error, KafkaError) and bool(error.retriable)
    )


async def retried(action: Callable[[], Awaitable[T]], bound_s: float, what: str) -> T:
    """Return what ``action`` returns, running it again on transient errors for ``bound_s``.

    Any other error, or a transient one once the bound is spent, is raised to the caller.
    """
    deadline = time.monotonic() + bound_s
    delay = _FIRST_DELAY_S
    while True:
        try:
            return await action()
        except (TimeoutError, KafkaError) as exc:
            if not is_transient(exc) or time.monotonic() + delay > deadline:
                raise
            log.warning("%s: %r; trying again in %.1f s", what, exc, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, _MAX_DELAY_S)
