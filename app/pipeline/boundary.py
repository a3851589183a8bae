"""The error boundary around each record an agent handles: one bad record costs only itself.

Every record ends in exactly one outcome. The handler produces the result (or, for an image,
its ``ocr_error``); a record it refuses goes to the dead-letter topic with the reason; and any
other failure while handling it is caught here, logged with the record's coordinates and the
traceback, and dead-lettered too, so the agent goes on with the next record. Around each batch,
``batch_boundary`` holds the acknowledgement until the broker has the batch's dead letters.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from app.metrics import metrics
from app.pipeline.dead_letters import DeadLetters
from app.pipeline.records import RecordRefused
from app.pipeline.unfinished import unacked_if_cut_short
from models.dead_letter import Stage

log = logging.getLogger(__name__)

# Why: a reason is read by people on the status page and in the dead letter; the traceback
# is in the log.
_MAX_REASON_CHARS = 500


@asynccontextmanager
async def record_boundary(
    dead_letters: DeadLetters,
    stage: Stage,
    event: Any,
    own_bytes: Callable[[], bytes | None] | None = None,
) -> AsyncIterator[None]:
    """Run the block for one record; a refusal or any error becomes its dead letter.

    For one item of a record that holds several (a candidates bundle), ``own_bytes`` returns
    that item's bytes, which its dead letter shows instead of the whole record's.
    """
    raw = own_bytes if own_bytes is not None else lambda: None
    try:
        yield
    except asyncio.CancelledError:
        raise  # the worker is stopping: the record is read again (app/pipeline/unfinished.py)
    except RecordRefused as exc:
        await dead_letters.send(stage, str(exc), event, raw())
    except Exception as exc:
        message = event.message
        log.exception(
            "unexpected error handling a record (stage=%s topic=%s partition=%s offset=%s)",
            stage,
            message.topic,
            message.partition,
            message.offset,
        )
        metrics.record_errors.labels(stage=stage).inc()
        reason = f"unexpected error: {type(exc).__name__}: {exc}"[:_MAX_REASON_CHARS]
        await dead_letters.send(stage, reason, event, raw())


@asynccontextmanager
async def shared_work_boundary(
    dead_letters: DeadLetters, stage: Stage, events: Sequence[Any]
) -> AsyncIterator[None]:
    """Run a batch's shared work (bundling, producing, settling); an unexpected error there
    becomes the dead letter of each record of the batch, never a crash of the agent."""
    try:
        yield
    except asyncio.CancelledError:
        raise  # the worker is stopping: the batch is read again
    except Exception as exc:
        log.exception("unexpected error handling a batch of %d (stage=%s)", len(events), stage)
        metrics.record_errors.labels(stage=stage).inc(len(events))
        reason = f"unexpected error handling its batch: {type(exc).__name__}: {exc}"
        for event in events:
            await dead_letters.send(stage, reason[:_MAX_REASON_CHARS], event)


@asynccontextmanager
async def batch_boundary(dead_letters: DeadLetters, events: Sequence[Any]) -> AsyncIterator[None]:
    """Run one agent batch: acknowledged after its dead letters are written, never if cut short."""
    with unacked_if_cut_short(events):
        async with dead_letters.written_before_ack():
            yield
