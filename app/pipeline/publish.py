"""Produce the pipeline's own records (jobs, candidates, results, delivery jobs), durably.

Through the outbox, which returns once the broker has every record. A record over its topic's
limit, or one Kafka refuses otherwise, is not sent again: it comes back, with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.kafka.outbox import Outbox, Outgoing

# Why long: the pipeline's own records are tried again until the broker has them.
SEND_TIMEOUT_S = 30.0


async def publish(outbox: Outbox, records: Sequence[Outgoing]) -> list[Outgoing]:
    """Produce ``records`` (in order per topic partition) durably; return those Kafka refused.

    A refused record carries its ``error``; the caller makes it the outcome of its input.
    """
    return await outbox.send_until_done(records, SEND_TIMEOUT_S)
