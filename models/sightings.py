"""Addresses seen in posts and images (``sightings`` topic): what the address book is fed with.

One record carries the sightings of a batch of posts, or of one image (a bundle), so the
book's agent reads tens of records a second, not one per address; internal.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from models.events import Network, Ref


class Sighting(BaseModel):
    """One post or image of one post showing one address."""

    network: Network
    address: str = Field(max_length=200)
    # The post, ``source:sid:mid``: posts are counted once per window however many of their
    # images (or repeats, at least once) show the address.
    post: str = Field(max_length=600)
    ref: Ref
    # The post's time, seconds since the epoch: the window it counts in (the same on a replay).
    at: float
    # The event that showed it: the post's, or the image's ocr_result.
    event_id: str = Field(max_length=700)
    image_url: str | None = Field(default=None, max_length=2048)

    @property
    def key(self) -> str:
        """Return the address as the book keys it: ``network:address``."""
        return f"{self.network}:{self.address}"


# Why 100: a sighting is under 5 KB at its bounds (a 2 KB link and image URL), so a bundle
# stays far inside Kafka's 1 MB record.
MAX_SIGHTINGS_PER_RECORD = 100


class SightingBundle(BaseModel):
    """The sightings of a batch of posts, or of one image."""

    sightings: list[Sighting] = Field(max_length=MAX_SIGHTINGS_PER_RECORD)


class FirstSighting(BaseModel):
    """The first post or image that showed an address, and when."""

    at: float
    ref: Ref
    event_id: str
    image_url: str | None = None
