"""Send a control command from a web handler and wait until this worker's table shows it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from app import topics
from app.control import ControlError, apply_command, check_targets
from app.faust_app import settings
from app.keys_replica import keys_replica
from app.keywords import KeywordError
from app.web.errors import ApiError
from models.keys import ControlCommand, KeyRecord


async def apply_and_wait(
    command: ControlCommand, done: Callable[[KeyRecord | None], bool]
) -> KeyRecord | None:
    """Publish ``command`` to the control topic; return the key once ``done`` holds locally."""
    # Why check first: a command the control agent would refuse is never applied, and the
    # caller deserves the reason now rather than a timeout.
    try:
        apply_command(keys_replica.get(command.key_id), command)
        check_targets(settings, command)
    except ControlError as exc:
        raise ApiError(409, str(exc)) from None
    except KeywordError as exc:
        raise ApiError(400, str(exc)) from None
    # Why through the topic: the control agent is the one writer, so every worker agrees.
    await topics.control.send(key=command.key_id.encode(), value=command.model_dump_json().encode())
    deadline = time.monotonic() + settings.keyword_apply_timeout_s
    while time.monotonic() < deadline:
        record = keys_replica.get(command.key_id)
        if done(record):
            return record
        await asyncio.sleep(0.05)
    raise ApiError(503, "the change was sent but not applied in time; retry the read shortly")
