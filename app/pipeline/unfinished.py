"""Records whose handling was cut short stay unacknowledged, so they are read again.

Faust acks a stream's current event, and every event of a ``take_events`` batch, in the
``finally`` of its iterator: when the agent's body leaves by an exception too, cancellation
included (a worker stopping mid-batch). The final commit of the
stopping worker then commits those records although their outputs were never produced, and
they are lost: seen as deliveries missing after a rolling restart, and as an image never read
after a SIGTERM during its download. Pinning each message with one more reference before the
exception leaves makes Faust's ack not the last one: the record stays unacked, no commit passes
it (``app/patches/faust_commit_in_flight.py``), and the worker that takes the partition over
reads it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any


@contextmanager
def unacked_if_cut_short(events: Sequence[Any]) -> Iterator[None]:
    """Run the block; if the worker's stop cuts it short, keep ``events`` from being acked.

    Only a stop (the agent cancelled): any other error leaving an agent's loop is a bug that
    crashes the agent, and a record pinned then would hold its partition's commits until the
    worker restarts.
    """
    try:
        yield
    except asyncio.CancelledError:
        for event in events:
            # Why incref: Faust's own cleanup acks once; the extra reference outlives it.
            event.message.incref()
        raise
