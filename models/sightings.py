"""An address seen in a post or an image (``sightings`` topic, keyed by ``network:address``).

What the address book (first sightings, posts per 5-minute window) is fed with; internal.
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


class FirstSighting(BaseModel):
    """The first post or image that showed an address, and when."""

    at: float
    ref: Ref
    event_id: str
    image_url: str | None = None
