"""Admission to the OCR processes: the pipeline and ``POST /ocr`` share them fairly, bounded.

The pool reads one image per process at a time. Without admission both callers queued in the
pool's unbounded queue, and one key calling ``/ocr`` faster than the pool reads (within its
rate limit) made every Kafka image wait behind its requests (0.5 s became 11.4 s). Here each
caller has its own queue: the pipeline's is bounded by the OCR agent's concurrency; ``/ocr``'s
by a setting, past which a request is refused at once (503 with ``retry_after``). When both
wait, a freed process goes to ``/ocr`` for its share of turns and to the pipeline otherwise.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

Lane = Literal["pipeline", "http"]
# Why a guess to start from: the first retry_after is given before any image was read.
_FIRST_ESTIMATE_S = 1.0


class OcrBusyError(Exception):
    """The OCR queue of ``/ocr`` is full; ``retry_after_s`` says when a slot may be free."""

    def __init__(self, waiting: int, retry_after_s: float) -> None:
        super().__init__(
            f"the OCR queue for /ocr is full ({waiting} requests waiting); retry shortly"
        )
        self.retry_after_s = retry_after_s


class OcrAdmission:
    """Hands out OCR slots (one per process) to two lanes; see the module docstring."""

    def __init__(self, slots: int, http_queue: int, http_share: float) -> None:
        self._free = slots
        self._slots = slots
        self._http_queue = http_queue
        self._http_share = http_share
        self._credit = 0.0
        self._waiting: dict[Lane, deque[asyncio.Future[None]]] = {
            "pipeline": deque(),
            "http": deque(),
        }
        self._seconds_per_image = _FIRST_ESTIMATE_S

    @asynccontextmanager
    async def slot(self, lane: Lane) -> AsyncIterator[None]:
        """Hold one OCR slot for the block; raise OcrBusyError when ``/ocr``'s queue is full."""
        await self._acquire(lane)
        started = time.monotonic()
        try:
            yield
        finally:
            # Why a moving average: retry_after should follow how fast images are read now.
            held = time.monotonic() - started
            self._seconds_per_image = 0.8 * self._seconds_per_image + 0.2 * held
            self._release()

    def status(self) -> dict[str, int]:
        """Return slots in use and requests waiting per lane (for /status/)."""
        return {
            "slots": self._slots,
            "in_use": self._slots - self._free,
            "waiting_pipeline": len(self._waiting["pipeline"]),
            "waiting_http": len(self._waiting["http"]),
        }

    def check_room(self, lane: Lane) -> None:
        """Raise OcrBusyError now if ``lane`` could not queue (so nothing is fetched in vain)."""
        queue = self._waiting[lane]
        if lane == "http" and len(queue) >= self._http_queue:
            raise OcrBusyError(len(queue), self._retry_after_s())

    async def _acquire(self, lane: Lane) -> None:
        queue = self._waiting[lane]
        if self._free > 0 and not any(self._waiting.values()):
            self._free -= 1
            return
        self.check_room(lane)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # granted just as the caller gave up: pass the slot on
            else:
                queue.remove(waiter)
            raise

    def _release(self) -> None:
        self._free += 1
        while self._free > 0:
            lane = self._next_lane()
            if lane is None:
                return
            waiter = self._waiting[lane].popleft()
            self._free -= 1
            waiter.set_result(None)

    def _next_lane(self) -> Lane | None:
        pipeline, http = self._waiting["pipeline"], self._waiting["http"]
        if not pipeline or not http:
            return "pipeline" if pipeline else "http" if http else None
        # Both wait: /ocr earns http_share of a turn per grant and takes a turn per whole one.
        self._credit += self._http_share
        if self._credit >= 1:
            self._credit -= 1
            return "http"
        return "pipeline"

    def _retry_after_s(self) -> float:
        # Each waiting /ocr request takes a turn; /ocr gets http_share of the turns.
        share = max(self._http_share, 0.01)
        backlog = len(self._waiting["http"])
        return max(1, math.ceil(backlog * self._seconds_per_image / (self._slots * share)))
