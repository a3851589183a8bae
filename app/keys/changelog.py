"""The one reader of the keys table's changelog: every worker's replica and the CLI use it.

The control agent is the table's one writer; Faust keeps the table in the changelog topic
``{app_id}-keys-changelog`` (one partition). Reading it from the start gives every key.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer

from app.kafka.changelogs import OnRecord, read_changelog_records
from app.kafka.consumers import stop_consumer
from app.kafka.security import connection
from app.settings import Settings
from models.keys import KeyRecord

log = logging.getLogger(__name__)

OnChange = Callable[[str, KeyRecord | None], None]


def encode_key_record(record: KeyRecord) -> bytes:
    """Return the table value of a key record."""
    return record.model_dump_json().encode()


def decode_key_record(raw: bytes) -> KeyRecord:
    """Return the key record of a table value."""
    return KeyRecord.model_validate(json.loads(raw))


def decode_change(key: bytes | None, value: bytes | None) -> tuple[str, KeyRecord | None] | None:
    """Return (key id, record or None for a deletion) of a changelog record; None if unreadable."""
    if key is None:
        return None
    key_id = key.decode(errors="replace")
    if value is None:
        return key_id, None
    try:
        return key_id, decode_key_record(value)
    except ValueError:
        log.error("unreadable keys changelog record for %s; ignored", key_id[:40])
        return None


def decoded(on_change: OnChange) -> OnRecord:
    """Return a changelog record reader calling ``on_change`` for each readable key record."""

    def on_record(key: bytes | None, value: bytes | None) -> None:
        change = decode_change(key, value)
        if change is not None:
            on_change(*change)

    return on_record


async def read_keys(settings: Settings) -> dict[str, KeyRecord]:
    """Return every key record, read once from the changelog (for the command line)."""
    consumer = AIOKafkaConsumer(**connection(settings), enable_auto_commit=False, group_id=None)
    records: dict[str, KeyRecord] = {}

    def apply(key_id: str, record: KeyRecord | None) -> None:
        if record is None:
            records.pop(key_id, None)
        else:
            records[key_id] = record

    await consumer.start()
    try:
        await read_changelog_records(consumer, settings.keys_changelog_topic, decoded(apply))
    finally:
        await stop_consumer(consumer)
    return records
