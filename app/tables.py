"""The keys table: per API key, its hash, keywords and channels (a Faust table).

The control agent is its one writer. Faust keeps it in the changelog topic
`{app_id}-keys-changelog` and recovers it from there on the worker that owns it. Every worker
reads keys through `app.keys.replica`, which tails that changelog (see there for why).
"""

from __future__ import annotations

from app.faust_app import app
from app.keys.changelog import decode_key_record
from models.keys import KeyRecord

# One partition: co-partitioned with the one-partition control topic, so the worker that
# consumes commands is the worker that owns the table.
keys_table = app.Table("keys", partitions=1, key_type=bytes, value_type=bytes)


def owned_key_record(key_id: str) -> KeyRecord | None:
    """Return a key's record from the table itself (only on the worker that owns it)."""
    raw = keys_table.get(key_id.encode())
    return None if raw is None else decode_key_record(raw)
