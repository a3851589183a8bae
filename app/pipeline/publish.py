"""Produce the pipeline's own records (jobs, candidates, results), durably, either way.

In batches (the default) they go through the outbox, which returns once the broker has every
one; under exactly-once they go one by one through Faust's producer, inside its transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from app import topics
from app.faust_app import settings
from app.kafka.outbox import Outgoing
from app.services import outbox

# Why long: the pipeline's own records are tried again until the broker has them.
SEND_TIMEOUT_S = 30.0


async def publish(records: Sequence[Outgoing]) -> None:
    """Produce ``records`` (in order per topic partition); return once they are durable."""
    if settings.batched:
        await outbox.send_until_done(records, SEND_TIMEOUT_S)
        return
    for record in records:
        await topics.named(record.topic).send(
            key=record.key, value=record.value, headers=record.headers
        )
