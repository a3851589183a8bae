"""What the stream reads of the API keys: the protocol the keys replica fulfils.

The filter, the live streams and the delivery lanes read key records; the keys package, above
them, keeps those records (``app/keys/replica.py``). They take this protocol, so the arrow runs
from keys down to them, never back up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from models.keys import KeyRecord


class KeyDirectory(Protocol):
    """Every key's record, once all are known."""

    async def wait_ready(self) -> None:
        """Wait until every key that existed at start is known."""

    def get(self, key_id: str) -> KeyRecord | None:
        """Return a key's record, or None."""

    def active(self) -> list[KeyRecord]:
        """Return every key that is not revoked."""

    def watch(self, on_change: Callable[[str, KeyRecord | None], None]) -> None:
        """Call ``on_change(key_id, record or None)`` after every change."""
