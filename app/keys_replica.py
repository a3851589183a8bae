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

from aiokafka import AIOKafkaConsumer, TopicPartition
from mode import Service

from app.admin import consume_until_stopped
from app.faust_app import app, settings
from app.tables import decode_key_record
from models.keys import KeyRecord

log = logging.getLogger(__name__)


class KeysReplica(Service):
    """All keys, up to date within milliseconds of the control agent's writes."""

    def __post_init__(self) -> None:
        self._keys: dict[str, KeyRecord] = {}
        self._ready = asyncio.Event()
        self._watchers: list[Callable[[str, KeyRecord | None], None]] = []

    def watch(self, on_change: Callable[[str, KeyRecord | None], None]) -> None:
        """Call ``on_change(key_id, record or None)`` after every change this replica reads."""
        self._watchers.append(on_change)

    async def on_start(self) -> None:
        """Start tailing the changelog from its beginning."""
        self.add_future(self._follow())

    async def _follow(self) -> None:
        # On a consumer error the replica reads the changelog again from the start.
        await consume_until_stopped(
            lambda: self.should_stop,
            lambda: AIOKafkaConsumer(
                bootstrap_servers=settings.broker, group_id=None, enable_auto_commit=False
            ),
            self._tail,
            "keys replica",
        )

    async def _tail(self, consumer: AIOKafkaConsumer) -> None:
        topic = settings.keys_changelog_topic
        while topic not in await consumer.topics():
            await asyncio.sleep(0.5)  # Faust creates it while the worker starts
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        caught_up_at = (await consumer.end_offsets([tp]))[tp]
        if caught_up_at == 0:
            self._set_ready()
        while not self.should_stop:
            batch = await consumer.getmany(tp, timeout_ms=1000)
            for message in batch.get(tp, []):
                self._apply(message.key, message.value)
            if not self._ready.is_set() and await consumer.position(tp) >= caught_up_at:
                self._set_ready()

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        key_id = key.decode()
        if value is None:
            self._keys.pop(key_id, None)
        else:
            try:
                self._keys[key_id] = decode_key_record(value)
            except ValueError:
                log.error("unreadable keys changelog record for %s; ignored", key_id)
                return
        for on_change in self._watchers:
            on_change(key_id, self._keys.get(key_id))

    def _set_ready(self) -> None:
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


keys_replica = KeysReplica()
app.service(keys_replica)  # type: ignore[arg-type]  # instances work too (see ocr_runtime)
