"""The names of the pipeline's topics."""

from __future__ import annotations

from pydantic import Field

from app.settings.base import SettingsBase


class TopicSettings(SettingsBase):
    """Where each kind of record goes: the pipeline's topics and the channels' prefix."""

    posts_topic: str = Field(default="posts", description="Input: posts produced by users.")
    images_topic: str = Field(default="images", description="One OCR job per image.")
    ocr_result_topic: str = Field(default="ocr_result", description="One OCR event per image.")
    ocr_error_topic: str = Field(
        default="ocr_error",
        description="One error event per image that could not be read (fetch, decode, OCR).",
    )
    candidates_topic: str = Field(
        default="ocrstream-candidates",
        description="Internal: posts and ocr_result events waiting for the keyword filter.",
    )
    control_topic: str = Field(default="ocrstream-control", description="Key and keyword commands.")
    dead_letter_topic: str = Field(
        default="ocrstream-dead-letter",
        description="Records that could not be processed, with the reason.",
    )
    webhooks_topic: str = Field(
        default="ocrstream-webhooks",
        description="Internal: one job per delivery and webhook URL, keyed by endpoint.",
    )
    sightings_topic: str = Field(
        default="ocrstream-sightings",
        description=(
            "Internal: the delivery candidates that show a token address, on their way "
            "through the address book to the filter (first sightings, posts per window; one "
            "partition)."
        ),
    )
    channel_topic_prefix: str = Field(
        default="ocrstream-channel-",
        description="A key's default channel topic is this prefix + its public key id.",
    )

    def channel_topic(self, key_id: str) -> str:
        """Return the default channel topic name of a key."""
        return f"{self.channel_topic_prefix}{key_id}"
