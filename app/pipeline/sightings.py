"""The sighting records of a post or an image: one per address it shows (the address book's feed).

Produced with the post's or the image's other records, so they are durable before its input
is acknowledged. Keyed by ``network:address``: every sighting of an address goes to the one
partition the book keeps it in.
"""

from __future__ import annotations

from datetime import datetime

from app.kafka.outbox import Outgoing
from models.events import BuyCa, Ref
from models.sightings import Sighting

# How far a post's own time may be from when it reached Kafka and still be believed: a post
# claiming a time days away (or in the future) would count in windows it never was in.
_TRUSTED_SKEW_S = 24 * 3600.0
_FUTURE_SKEW_S = 300.0


def posted_at(claimed: datetime | None, recorded_s: float) -> float:
    """Return a post's time: its own ``timestamp`` when plausible, else when Kafka got it."""
    if claimed is None:
        return recorded_s
    at = claimed.timestamp()
    if recorded_s - _TRUSTED_SKEW_S <= at <= recorded_s + _FUTURE_SKEW_S:
        return at
    return recorded_s


def sighting_records(
    topic: str,
    addresses: list[BuyCa],
    ref: Ref,
    at: float,
    event_id: str,
    image_url: str | None = None,
) -> list[Outgoing]:
    """Return one sighting record per address."""
    post = f"{ref.source}:{ref.sid}:{ref.mid}"
    records = []
    for ca in addresses:
        sighting = Sighting(
            network=ca.network,
            address=ca.address,
            post=post,
            ref=ref,
            at=at,
            event_id=event_id,
            image_url=image_url,
        )
        records.append(Outgoing(topic, sighting.key.encode(), sighting.model_dump_json().encode()))
    return records
