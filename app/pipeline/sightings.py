"""The sightings of posts and images: one per address shown, sent in bundles (the book's feed).

Produced with the posts' or the image's other records, so they are durable before the input
is acknowledged.
"""

from __future__ import annotations

from datetime import datetime

from app.kafka.outbox import Outgoing
from models.events import BuyCa, Ref
from models.sightings import MAX_SIGHTINGS_PER_RECORD, Sighting, SightingBundle

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


def sightings_of(
    addresses: list[BuyCa], ref: Ref, at: float, event_id: str, image_url: str | None = None
) -> list[Sighting]:
    """Return one sighting per address a post's text (or one image of it) shows."""
    post = f"{ref.source}:{ref.sid}:{ref.mid}"
    return [
        Sighting(
            network=ca.network,
            address=ca.address,
            post=post,
            ref=ref,
            at=at,
            event_id=event_id,
            image_url=image_url,
        )
        for ca in addresses
    ]


def bundle_records(topic: str, sightings: list[Sighting]) -> list[Outgoing]:
    """Return sightings as bundle records of at most ``MAX_SIGHTINGS_PER_RECORD`` each."""
    step = MAX_SIGHTINGS_PER_RECORD
    return [
        Outgoing(
            topic,
            b"sightings",  # one partition: the key only names what it is
            SightingBundle(sightings=sightings[start : start + step]).model_dump_json().encode(),
        )
        for start in range(0, len(sightings), step)
    ]
