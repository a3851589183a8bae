"""Produce the pipeline's own records (jobs, candidates, results), durably, either way.

In batches (the default) they go through the outbox, which returns once the broker has every
one; under exactly-once they go one by one through Faust's producer, inside its transaction.
Either way a record over its topic's limit is not sent: it comes back refused, with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka.errors import KafkaError

from app import topics
from app.faust_app import settings
from app.kafka.outbox import Outgoing
from app.services import outbox

# Why long: the pipeline's own records are tried again until the broker has them.
SEND_TIMEOUT_S = 30.0


async def publish(records: Sequence[Outgoing]) -> list[Outgoing]:
    """Produce ``records`` (in order per topic partition) durably; return those Kafka refused.

    A refused record carries its ``error``; the caller makes it the outcome of its input.
    """
    if settings.batched:
        return await outbox.send_until_done(records, SEND_TIMEOUT_S)
    refused: list[Outgoing] = []
    for record in records:
        record.error = await outbox.too_large(record)
        if record.error is None:
            try:
                await topics.named(record.topic).send(
                    key=record.key, value=record.value, headers=record.headers
                )
            except KafkaError as exc:
                if exc.retriable:
                    raise  # the input is not acknowledged: read and tried again
                record.error = f"{type(exc).__name__}: {exc}"[:300]
        if record.error is not None:
            record.refused = True
            refused.append(record)
    return refused
