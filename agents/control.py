"""Control agent: apply key and keyword commands to the keys table, in order."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable
from typing import Any

from aiokafka.errors import KafkaError

from app import topics
from app.faust_app import app, settings
from app.kafka.admin import create_topics
from app.keys.changelog import encode_key_record
from app.keys.commands import ControlError, apply_command, check_targets
from app.keys.keywords import KeywordError
from app.keys.sealing import SecretBox, SecretKeyError, box_for
from app.pipeline.boundary import batch_boundary, record_boundary
from app.pipeline.records import RecordRefused, decode_with
from app.pipeline.transient import retried
from app.services import dead_letters
from app.tables import keys_table, owned_key_record
from models.keys import ControlCommand, KeyRecord, control_command_adapter

log = logging.getLogger(__name__)

# Why bounded: a slow admin request must not stall key changes; the broker's own
# auto-creation is the fallback for a topic not created in time.
_CREATE_TIMEOUT_S = 15.0


async def _create_channel_topics(names: tuple[str, ...]) -> None:
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


@app.agent(topics.control)
async def apply_control(stream: Any) -> None:
    """Update the keys table from each command; refused commands go to the dead-letter topic."""
    async for event in stream.events():
        async with batch_boundary(dead_letters, [event]):
            async with record_boundary(dead_letters, "control", event):
                record, command = decide(event.value)
                await _create_channel_topics(record.channels)
                keys_table[record.key_id.encode()] = encode_key_record(record)
                log.info(
                    "key %s: %s applied (%d keywords)",
                    record.key_id,
                    command.op,
                    len(record.keywords),
                )


def decide(raw: bytes | None) -> tuple[KeyRecord, ControlCommand]:
    """Return the key record a command makes; raise RecordRefused saying why it cannot apply.

    Every rule is checked here again, whoever sent the command: a command written by an older
    version (say, a channel name it still accepted) is refused, never applied.
    """
    command = decode_with(raw, control_command_adapter, "control command")
    try:
        record = apply_command(owned_key_record(command.key_id), command)
        check_targets(settings, command)
        record = _with_secret_sealed(record)
    except (ControlError, KeywordError, SecretKeyError) as exc:
        raise RecordRefused(f"command refused: {exc}") from None
    return record, command


def _with_secret_sealed(record: KeyRecord) -> KeyRecord:
    """Return the record with its webhook secret sealed under the first operator key.

    Why here: this is the one writer of the keys table, so a record written before sealing
    existed (or under a key since rotated) is sealed anew the first time it changes.
    """
    if not record.webhook_secret:
        return record
    sealed = _secret_box().reseal(record.webhook_secret, record.key_id)
    return record.model_copy(update={"webhook_secret": sealed})


@functools.cache
def _secret_box() -> SecretBox:
    # Why cached, not built at import: the worker checks the key before it imports the agents.
    return box_for(settings)
