"""All settings of ocrstream, read from the environment (prefix ``OCRSTREAM_``), by concern.

Each module holds one concern's settings (Kafka, topics, the pipeline, OCR, downloads, the web,
sealing, deliveries, live streams); ``Settings`` is all of them, as the worker reads them. A
part that needs one concern takes that class, so its signature says what it reads.
docs/settings.md lists every setting (``make docs`` writes it from the descriptions here).
"""

from __future__ import annotations

from functools import lru_cache

from app.settings.base import SettingsBase
from app.settings.delivery import DeliverySettings
from app.settings.fetch import FetchSettings
from app.settings.kafka import KafkaSettings
from app.settings.live import LiveSettings
from app.settings.ocr import OcrSettings
from app.settings.pipeline import PipelineSettings
from app.settings.sealing import SealingSettings
from app.settings.topics import TopicSettings
from app.settings.web import WebSettings

# In the order docs/settings.md lists them.
CONCERNS: tuple[type[SettingsBase], ...] = (
    KafkaSettings,
    TopicSettings,
    PipelineSettings,
    OcrSettings,
    FetchSettings,
    WebSettings,
    SealingSettings,
    DeliverySettings,
    LiveSettings,
)


# Why the bases reversed: pydantic lists a class's fields from its last base to its first.
class Settings(
    LiveSettings,
    DeliverySettings,
    SealingSettings,
    WebSettings,
    FetchSettings,
    OcrSettings,
    PipelineSettings,
    TopicSettings,
    KafkaSettings,
):
    """Every knob of the service; docs/settings.md lists each one (generated from here)."""

    @property
    def keys_changelog_topic(self) -> str:
        """Return the changelog topic Faust keeps for the keys table."""
        return f"{self.app_id}-keys-changelog"

    @property
    def address_first_seen_changelog_topic(self) -> str:
        """Return the changelog topic Faust keeps for the address book's first sightings."""
        return f"{self.app_id}-address_first_seen-changelog"

    def pipeline_topics(self) -> dict[str, int]:
        """Return the pipeline's own topics (name -> partitions); none may be a channel."""
        return {
            self.posts_topic: self.topic_partitions,
            self.images_topic: self.topic_partitions,
            self.ocr_result_topic: self.topic_partitions,
            self.ocr_error_topic: self.topic_partitions,
            self.candidates_topic: self.topic_partitions,
            self.dead_letter_topic: self.topic_partitions,
            self.webhooks_topic: self.topic_partitions,
            # Why one partition: a single partition keeps control commands in order, and one
            # worker's address book holds every address (docs/records.md says what that costs).
            self.control_topic: 1,
            self.sightings_topic: 1,
            self.keys_changelog_topic: 1,
        }


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once from the environment."""
    return Settings()


__all__ = [
    "CONCERNS",
    "DeliverySettings",
    "FetchSettings",
    "KafkaSettings",
    "LiveSettings",
    "OcrSettings",
    "PipelineSettings",
    "SealingSettings",
    "Settings",
    "TopicSettings",
    "WebSettings",
    "get_settings",
]
