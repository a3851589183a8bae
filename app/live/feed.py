"""One live connection's queue: bounded, dropping the newest events past its bound and saying so.

Why drop instead of wait: the reader that fills every connection's feed must never wait for
one slow client. Why the newest: the client then sees an unbroken prefix, a notice with the
number of events it missed at the exact place of the gap, and everything after it that fits.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class LiveEvent:
    """One delivery on a live stream: its id (where it sits in the candidates topic) and JSON."""

    id: str
    body: bytes


@dataclass(frozen=True)
class Dropped:
    """``count`` events were dropped here because the client read too slowly."""

    count: int


@dataclass(frozen=True)
class Closed:
    """The stream ends: a WebSocket close code and a reason for the client."""

    code: int
    reason: str


FeedItem = LiveEvent | Dropped | Closed


class BoundedFeed:
    """Events waiting for one connection: at most ``limit``; gaps become ``Dropped`` items."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._items: deque[LiveEvent | Dropped] = deque()
        self._events = 0
        self._dropping = 0
        self._closed: Closed | None = None
        self._wakeup = asyncio.Event()
        self.dropped_total = 0

    def offer(self, event: LiveEvent) -> bool:
        """Queue ``event``; return False when it was dropped (feed full or closed)."""
        if self._closed is not None:
            return False
        if self._events >= self._limit:
            self._dropping += 1
            self.dropped_total += 1
            return False
        if self._dropping:
            # The notice goes where the gap is: after the events before it, before this one.
            self._items.append(Dropped(self._dropping))
            self._dropping = 0
        self._items.append(event)
        self._events += 1
        self._wakeup.set()
        return True

    def close(self, closed: Closed) -> None:
        """End the feed: the next ``take`` returns ``closed`` (first close wins)."""
        if self._closed is None:
            self._closed = closed
            self._wakeup.set()

    def take_nowait(self) -> FeedItem | None:
        """Return the next item, or None when there is none yet."""
        if self._closed is not None:
            return self._closed  # a revoked key gets nothing more, queued or not
        if self._items:
            item = self._items.popleft()
            if isinstance(item, LiveEvent):
                self._events -= 1
            return item
        if self._dropping:
            # A client that caught up learns of the gap now, not at the next event.
            dropped, self._dropping = Dropped(self._dropping), 0
            return dropped
        return None

    async def take(self, timeout_s: float | None = None) -> FeedItem | None:
        """Wait for the next item; return None when ``timeout_s`` passed without one."""
        while True:
            item = self.take_nowait()
            if item is not None:
                return item
            self._wakeup.clear()
            try:
                # Why not wait_for: it waits through a task of its own, so an offer reached the
                # connection's writer only two turns of the loop later; this wakes it on the next.
                async with asyncio.timeout(timeout_s):
                    await self._wakeup.wait()
            except TimeoutError:
                return None
