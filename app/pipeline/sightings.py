"""The sightings of posts and images: one per address a delivery candidate shows (the book's feed).

A candidate that shows an address goes through the address book (the sightings topic) before
the filter, carrying its ``addresses`` and the post's time; the book records a sighting of
each, then marks the candidate's event where it is an address's first sighting.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from models.events import BuyCa, Candidate, Ref
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


def booked(candidate: Candidate, addresses: list[BuyCa], at: float) -> Candidate:
    """Return the candidate on its way through the address book: with what it records."""
    return candidate.model_copy(update={"addresses": addresses, "seen_at": at})


def candidate_sightings(candidate: Candidate) -> list[Sighting]:
    """Return the sightings a booked candidate brings: one per address it shows."""
    if not candidate.addresses or candidate.seen_at is None:
        return []
    return shown_by(candidate, candidate.addresses, candidate.seen_at)


def shown_by(candidate: Candidate, addresses: list[BuyCa], at: float) -> list[Sighting]:
    """Return the sightings of ``addresses`` by a candidate's event, its post's time ``at``."""
    event = candidate.event
    if event.get("source") == "ocr_result":
        ref, image_url = Ref.model_validate(event.get("ref")), event.get("image_url")
    else:
        ref, image_url = Ref.model_validate(event), None  # a post event: its own ref fields
    return sightings_of(addresses, ref, at, candidate.event_id, image_url)


def marked(candidate: Candidate, firsts: set[str]) -> Candidate:
    """Return the candidate to deliver: its event says which addresses it showed first.

    ``firsts`` holds the ``network:address`` keys this candidate's event is the first
    sighting of; the book's own fields are dropped (the filter has no use for them).
    """
    update: dict[str, Any] = {"addresses": [], "seen_at": None}
    if firsts:
        event = {**candidate.event, "first_seen": True}
        shown = event.get("buy_ca")
        if isinstance(shown, list):
            event["buy_ca"] = [
                {**ca, "first_seen": True} if _key(ca) in firsts else ca for ca in shown
            ]
        update["event"] = event
    return candidate.model_copy(update=update)


def _key(ca: Any) -> str | None:
    if not isinstance(ca, dict):
        return None
    return f"{ca.get('network')}:{ca.get('address')}"
