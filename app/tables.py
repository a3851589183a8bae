"""The keys table: per API key, its hash, keywords and channels (a Faust GlobalTable)."""

from __future__ import annotations

import json

from app.faust_app import app
from models.keys import KeyRecord

# Why global: the filter matches every event against every key, so each worker needs all keys.
# Values are JSON text of KeyRecord; the changelog topic is `{app_id}-keys-changelog`.
keys_table = app.GlobalTable("keys", partitions=1, key_type=bytes, value_type=bytes)

_parsed: dict[str, tuple[bytes, KeyRecord]] = {}


def encode_key_record(record: KeyRecord) -> bytes:
    """Return the table value of a key record."""
    return record.model_dump_json().encode()


def get_key_record(key_id: str) -> KeyRecord | None:
    """Return the current record of a key, or None."""
    raw = keys_table.get(key_id.encode())
    return None if raw is None else _decode(key_id, raw)


def all_keys() -> list[KeyRecord]:
    """Return every key, revoked ones included."""
    return [_decode(key.decode(), raw) for key, raw in list(keys_table.items())]


def active_keys() -> list[KeyRecord]:
    """Return every key that is not revoked."""
    return [record for record in all_keys() if not record.revoked]


def _decode(key_id: str, raw: bytes) -> KeyRecord:
    # Why cache: the filter reads every key for every event; parse each value once.
    cached = _parsed.get(key_id)
    if cached is not None and cached[0] == raw:
        return cached[1]
    record = KeyRecord.model_validate(json.loads(raw))
    _parsed[key_id] = (raw, record)
    return record
