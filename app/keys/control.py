"""Key and keyword commands applied to the keys table, in order, by their one writer.

Every rule is checked here again, whoever sent the command: a command written by an older
version (say, a channel name it still accepted) is refused, never applied. A key's channel
topics are created before its record is written, and its webhook secret is sealed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, MutableMapping

from aiokafka.errors import KafkaError

from app.kafka.admin import create_topics
from app.keys.changelog import decode_key_record, encode_key_record
from app.keys.commands import ControlError, apply_command, check_targets
from app.keys.keywords import KeywordError
from app.pipeline.records import RecordRefused, decode_with
from app.pipeline.transient import retried
from app.sealing import SecretBox, SecretKeyError, box_for
from app.settings import Settings
from models.keys import ControlCommand, KeyRecord, control_command_adapter

log = logging.getLogger(__name__)

# Why bounded: a slow admin request must not stall key changes; the broker's own
# auto-creation is the fallback for a topic not created in time.
_CREATE_TIMEOUT_S = 15.0


class KeyControl:
    """Applies control commands to the keys table (a Faust table: key id -> record bytes)."""

    def __init__(
        self,
        settings: Settings,
        table: MutableMapping[bytes, bytes],
        box: SecretBox | None = None,
    ) -> None:
        self._settings = settings
        self._table = table
        self._box = box

    async def apply(self, raw: bytes | None) -> None:
        """Apply one command record to the table; raise RecordRefused saying why it cannot."""
        record, command = self.decide(raw)
        await self._create_channel_topics(record.channels)
        self._table[record.key_id.encode()] = encode_key_record(record)
        log.info(
            "key %s: %s applied (%d keywords)", record.key_id, command.op, len(record.keywords)
        )

    def decide(self, raw: bytes | None) -> tuple[KeyRecord, ControlCommand]:
        """Return the key record a command makes; raise RecordRefused saying why it cannot."""
        command = decode_with(raw, control_command_adapter, "control command")
        try:
            record = apply_command(self.owned_key_record(command.key_id), command)
            check_targets(self._settings, command)
            record = self._with_secret_sealed(record)
        except (ControlError, KeywordError, SecretKeyError) as exc:
            raise RecordRefused(f"command refused: {exc}") from None
        return record, command

    def owned_key_record(self, key_id: str) -> KeyRecord | None:
        """Return a key's record from the table itself (only on the worker that owns it)."""
        raw = self._table.get(key_id.encode())
        return None if raw is None else decode_key_record(raw)

    def _with_secret_sealed(self, record: KeyRecord) -> KeyRecord:
        """Return the record with its webhook secret sealed under the first operator key.

        Why here: this is the one writer of the keys table, so a record written before sealing
        existed (or under a key since rotated) is sealed anew the first time it changes.
        """
        if not record.webhook_secret:
            return record
        if self._box is None:
            # Why not at construction: a worker without the key may still run commands that
            # carry no secret; one that carries a secret is refused, saying why.
            self._box = box_for(self._settings)
        sealed = self._box.reseal(record.webhook_secret, record.key_id)
        return record.model_copy(update={"webhook_secret": sealed})

    async def _create_channel_topics(self, names: tuple[str, ...]) -> None:
        settings = self._settings

        def create() -> Awaitable[list[str]]:
            wanted = dict.fromkeys(names, settings.topic_partitions)
            return asyncio.wait_for(create_topics(settings, wanted), _CREATE_TIMEOUT_S)

        try:
            created = await retried(create, settings.kafka_retry_s, "creating channel topics")
        except (TimeoutError, KafkaError) as exc:
            log.warning("could not create channel topics %s: %r", ", ".join(names), exc)
            return
        if created:
            log.info("created channel topics: %s", ", ".join(created))
