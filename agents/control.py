"""Control agent: apply key and keyword commands to the keys table, in order."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from app import topics
from app.control import ControlError, apply_command, check_channels
from app.dead_letter import send_dead_letter
from app.faust_app import app, settings
from app.keywords import KeywordError
from app.tables import encode_key_record, get_key_record, keys_table
from models.keys import control_command_adapter

log = logging.getLogger(__name__)


@app.agent(topics.control)
async def apply_control(stream: Any) -> None:
    """Update the keys table from each command; refused commands go to the dead-letter topic."""
    async for event in stream.events():
        try:
            command = control_command_adapter.validate_json(event.value)
            record = apply_command(get_key_record(command.key_id), command)
            check_channels(settings, record.channels)
        except (ValidationError, ControlError, KeywordError) as exc:
            await send_dead_letter("control", f"command refused: {exc}", event)
            continue
        for name in record.channels:
            await topics.channel(name)  # create the topic before anything is delivered
        keys_table[record.key_id.encode()] = encode_key_record(record)
        log.info(
            "key %s: %s applied (%d keywords)", record.key_id, command.op, len(record.keywords)
        )
