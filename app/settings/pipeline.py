"""How the agents take records and bound what a post may ask for."""

from __future__ import annotations

from pydantic import Field

from app.settings.base import SettingsBase


class PipelineSettings(SettingsBase):
    """Batches, a post's bounds, and channel sends."""

    batch_max_records: int = Field(
        default=500,
        ge=1,
        description=(
            "Records an agent takes at once from a topic (posts, candidates); their outputs are "
            "produced together, and the batch is acknowledged once the broker has them."
        ),
    )
    batch_wait_ms: float = Field(
        default=5.0,
        ge=0,
        description=(
            "Milliseconds an agent waits to fill a batch before it handles what it has (the "
            "latency a quiet stream pays per hop)."
        ),
    )
    max_images_per_post: int = Field(
        default=16,
        ge=1,
        description=(
            "Images of one post that are OCR'd; the rest are reported to the dead-letter topic."
        ),
    )
    max_post_text_chars: int = Field(
        default=100_000, ge=1, description="Posts with longer text go to the dead-letter topic."
    )
    address_book: bool = Field(
        default=True,
        description=(
            "Keep the address book: when each address was first seen, and by how many posts "
            "each 5 minutes (`GET /addresses/...`, `GET /trending`). Off: no sightings are "
            "produced."
        ),
    )
    address_book_max_addresses: int = Field(
        default=100_000,
        ge=1,
        description=(
            "Addresses the address book holds at most; past it, the least recently seen is "
            "forgotten to make room (its first sighting and windows)."
        ),
    )
    address_book_new_per_author_per_day: int = Field(
        default=500,
        ge=1,
        description=(
            "New addresses one author (a post's `source` and `sid`) may bring into the address "
            "book a day; past it, its sightings of addresses the book does not hold are not "
            "recorded (so one sender cannot push every other address out)."
        ),
    )
    address_book_forget_after_days: float = Field(
        default=30.0,
        gt=0,
        description="The address book forgets an address not seen for this many days.",
    )
    channel_retry_attempts: int = Field(
        default=10,
        ge=1,
        description=(
            "Attempts for a channel delivery held back while the cluster moved a leader (sent "
            "by the webhook lanes with their backoff, about 3 minutes in all) before it is "
            "dead-lettered."
        ),
    )
    channel_send_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description=(
            "Seconds one send to a channel topic may take; past it (or on an error) the delivery "
            "is dead-lettered and the channel skipped for a while."
        ),
    )
    channel_retry_after_s: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Seconds a channel whose send failed is skipped (its deliveries dead-lettered at once)"
            " before it is tried again."
        ),
    )
