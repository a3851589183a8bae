"""Recent OCR outputs by image URL and by image bytes, so a repeated image is read once."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from app.ocr.engine import OcrOutput


class OcrCache:
    """A bounded, time-windowed LRU of OCR outputs that also joins concurrent identical work."""

    def __init__(self, max_entries: int, ttl_s: float) -> None:
        self._max_entries = max_entries
        self._ttl_s = ttl_s
        self._entries: OrderedDict[str, tuple[float, OcrOutput]] = OrderedDict()
        self._in_flight: dict[str, asyncio.Future[OcrOutput]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> OcrOutput | None:
        """Return a fresh cached output, or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        stored_at, output = entry
        if time.monotonic() - stored_at > self._ttl_s:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return output

    def put(self, key: str, output: OcrOutput) -> None:
        """Remember an output, evicting the least recently used past the bound."""
        self._entries[key] = (time.monotonic(), output)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    async def get_or_compute(
        self, key: str, compute: Callable[[], Awaitable[OcrOutput]]
    ) -> tuple[OcrOutput, bool]:
        """Return (output, was_cached); concurrent calls for one key share one computation."""
        cached = self.get(key)
        if cached is not None:
            self.hits += 1
            return cached, True
        pending = self._in_flight.get(key)
        if pending is not None:
            self.hits += 1
            return await asyncio.shield(pending), True
        self.misses += 1
        future: asyncio.Future[OcrOutput] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            output = await compute()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            self._in_flight.pop(key, None)
        future.set_result(output)
        self.put(key, output)
        return output, False


def content_key(data: bytes) -> str:
    """Return the cache key of image bytes (identical bytes under other URLs share it)."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def url_key(url: str) -> str:
    """Return the cache key of an image URL."""
    return "url:" + url
