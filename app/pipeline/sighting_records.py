"""The records of sightings sent to the address book alone: of candidates that skip it.

A candidate whose addresses the book holds goes straight to the filter; its sightings go to the
book (the sightings topic) to be counted. Their record's refusal costs only those counts, not a
delivery, so it is logged and shown on the dashboard, not the posts' dead letter (as is the
refusal of one of the book's own changelog records).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from app.kafka.outbox import Outbox, Outgoing
from app.metrics import metrics
from app.pipeline.candidates import bundle_bytes, sighting_bundles
from app.settings import Settings
from models.sightings import Sighting

log = logging.getLogger(__name__)

# Why a fixed key: the topic has one partition; a key keeps the records in one batch.
_KEY = b"counted"


async def sighting_records(
    settings: Settings, outbox: Outbox, sightings: Sequence[Sighting]
) -> list[Outgoing]:
    """Return the sightings as records of the sightings topic, each within its limit."""
    if not sightings:
        return []
    limit = await outbox.limits.limit(settings.sightings_topic)
    return [
        Outgoing(settings.sightings_topic, _KEY, value)
        for value in sighting_bundles(sightings, bundle_bytes(limit))
    ]


def not_counted(
    refused: list[Outgoing], counted: list[Outgoing], what: str = "sightings not counted"
) -> list[Outgoing]:
    """Log the refused records of ``counted`` (``what`` they cost); return the other refused.

    For the records whose refusal costs the address book's counts, never a delivery: the
    sightings of candidates that skipped the book, and the book's own changelog records.
    """
    ours = {id(record) for record in counted}
    for record in refused:
        if id(record) in ours:
            log.error("%s: %s not produced: %s", what, record.topic, record.error)
            metrics.error("sightings", f"{what}: {record.error}")
    return [record for record in refused if id(record) not in ours]
