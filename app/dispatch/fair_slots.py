"""The delivery service's send slots, shared fairly among API keys.

A POST to a webhook (or a Bot API call for a key's chat) holds a slot until it is answered or
times out. When every key drew from one pool, four keys with ten endpoints each that never
answer held all 32 slots, and every other key's deliveries waited behind them: 0.32 s became
4-10 s. Here a key holds at most an equal part of the slots among the keys that want one now
(never fewer than one), so a key whose endpoints hang delays only itself. No slot is taken
away from a send in flight: a key that comes while others hold their larger earlier part gets
its own part at once, so the slots in use may pass the setting for a while (at most by the
newcomers' parts).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class FairSlots:
    """At most ``total // keys wanting a slot`` slots per key (at least one each)."""

    def __init__(self, total: int) -> None:
        self._total = total
        self._holding: Counter[str] = Counter()
        self._waiting: Counter[str] = Counter()
        self._changed = asyncio.Condition()

    def share(self) -> int:
        """Return how many slots each key may hold now."""
        wanting = len(self._holding.keys() | self._waiting.keys())
        return max(1, self._total // max(1, wanting))

    def holding(self) -> dict[str, int]:
        """Return the slots each key holds now (for /status/)."""
        return dict(self._holding)

    @asynccontextmanager
    async def slot(self, key: str) -> AsyncIterator[None]:
        """Hold one of ``key``'s slots for the block, waiting while it holds its share."""
        async with self._changed:
            self._waiting[key] += 1
            try:
                await self._changed.wait_for(lambda: self._holding[key] < self.share())
            finally:
                _drop(self._waiting, key)
            self._holding[key] += 1
        try:
            yield
        finally:
            async with self._changed:
                _drop(self._holding, key)
                self._changed.notify_all()


def _drop(counter: Counter[str], key: str) -> None:
    """Take one from ``key``'s count, forgetting the key at zero (so it no longer counts)."""
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]
