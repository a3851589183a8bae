"""Every worker's read copy of the keys table, kept by tailing the table's changelog topic.

Why not a Faust GlobalTable: its standby replication is where Faust's known table bugs sit
(standby events not applied after recovery: faust-streaming #212), and it ties every worker's
key reads to rebalances. A plain consumer with no group reads the changelog on every worker,
unaffected by rebalances, and the filter waits until it has caught up before filtering.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from mode import Service

from app.kafka.changelogs import follow_changelog
from app.keys.changelog import decoded
from app.settings import Settings
from models.keys import KeyRecord

log = logging.getLogger(__name__)


class KeysReplica(Service):
    """All keys, up to date within milliseconds of the control agent's writes."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self._settings = settings
        self._keys: dict[str, KeyRecord] = {}
        self._keywords: frozenset[str] | None = None
        self._ready = asyncio.Event()
        self._watchers: list[Callable[[str, KeyRecord | None], None]] = []

    def watch(self, on_change: Callable[[str, KeyRecord | None], None]) -> None:
        """Call ``on_change(key_id, record or None)`` after every change this replica reads."""
        self._watchers.append(on_change)

    async def on_start(self) -> None:
        """Start tailing the changelog from its beginning."""
        self.add_future(self._follow())

    async def _follow(self) -> None:
        await follow_changelog(
            self._settings,
            self._settings.keys_changelog_topic,
            decoded(self.apply),
            self._set_ready,
            lambda: self.should_stop,
            "keys replica",
        )

    def apply(self, key_id: str, record: KeyRecord | None) -> None:
        """Take one change of the changelog (a record, or None for a deleted key)."""
        if record is None:
            self._keys.pop(key_id, None)
        else:
            self._keys[key_id] = record
        self._keywords = None
        for on_change in self._watchers:
            on_change(key_id, record)

    def _set_ready(self) -> None:
        if not self._ready.is_set():
            self._ready.set()
            log.info("keys replica ready: %d keys", len(self._keys))

    async def wait_ready(self) -> None:
        """Wait until the replica has read the changelog up to where it stood at start."""
        await self._ready.wait()

    def get(self, key_id: str) -> KeyRecord | None:
        """Return a key's record, or None."""
        return self._keys.get(key_id)

    def all(self) -> list[KeyRecord]:
        """Return every key, revoked ones included."""
        return list(self._keys.values())

    def active(self) -> list[KeyRecord]:
        """Return every key that is not revoked."""
        return [record for record in self._keys.values() if not record.revoked]

    def keywords(self) -> frozenset[str]:
        """Return every keyword of every key that is not revoked (worked out once per change)."""
        if self._keywords is None:
            self._keywords = frozenset(w for record in self.active() for w in record.keywords)
        return self._keywords
