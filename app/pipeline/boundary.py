"""The error boundary around each record an agent handles: one bad record costs only itself.

Every record ends in exactly one outcome. The handler produces the result (or, for an image,
its ``ocr_error``); a record it refuses goes to the dead-letter topic with the reason; and any
other failure while handling it is caught here, logged with the record's coordinates and the
traceback, and dead-lettered too, so the agent goes on with the next record. An agent that
takes records in batches hands each batch to ``handle_batch``, which falls back to one record
at a time when the batch's shared work fails. Around each batch, ``batch_boundary`` holds the
acknowledgement until the broker has the batch's dead letters.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
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


async def handle_batch(
    dead_letters: DeadLetters,
    stage: Stage,
    events: Sequence[Any],
    handle: Callable[[list[Any]], Awaitable[None]],
) -> None:
    """Handle a batch's records together; after an unexpected error, each record alone.

    ``handle`` gives each record its own boundary where it can. Its shared work (bundling,
    producing, settling) serves every record at once, so an error there belongs to no one
    record: the batch's records are then handled again one by one, each inside its own
    boundary, and the error ends as the outcome of the records it really stops, as their dead
    letters, never as a crash of the agent. Letters the failed try reported are dropped (each
    record ends in one outcome); what it produced may be produced again (at least once).
    """
    if len(events) > 1:
        try:
            with dead_letters.attempt():
                await handle(list(events))
            return
        except asyncio.CancelledError:
            raise  # the worker is stopping: the batch is read again
        except Exception:
            log.exception(
                "unexpected error handling a batch of %d (stage=%s); now record by record",
                len(events),
                stage,
            )
    for event in events:
        async with record_boundary(dead_letters, stage, event):
            with dead_letters.attempt():
                await handle([event])


@asynccontextmanager
async def batch_boundary(dead_letters: DeadLetters, events: Sequence[Any]) -> AsyncIterator[None]:
    """Run one agent batch: acknowledged after its dead letters are written, never if cut short."""
    with unacked_if_cut_short(events):
        async with dead_letters.written_before_ack():
            yield
