"""The Kafka topics of the pipeline (names from settings; README.md documents each)."""

from __future__ import annotations

from typing import Any

from app.faust_app import app, settings

# Why internal=True: Faust then creates these topics with our partition count on start.
posts = app.topic(settings.posts_topic, internal=True)
images = app.topic(settings.images_topic, internal=True)
ocr_result = app.topic(settings.ocr_result_topic, internal=True)
ocr_error = app.topic(settings.ocr_error_topic, internal=True)
candidates = app.topic(settings.candidates_topic, internal=True)
dead_letter = app.topic(settings.dead_letter_topic, internal=True)
webhooks = app.topic(settings.webhooks_topic, internal=True)
# Why one partition: control traffic is tiny and a single partition keeps commands in order.
control = app.topic(settings.control_topic, internal=True, partitions=1)

_channels: dict[str, Any] = {}


def named(name: str) -> Any:
    """Return the Faust topic of any name (a delivery channel, or one of the above)."""
    topic = _channels.get(name)
    if topic is None:
        # Why no maybe_declare here: Faust's topic creation can hang a worker after a
        # rebalance (seen in tests/integration/test_faults.py); the control agent creates
        # channel topics with the admin client instead.
        topic = _channels[name] = app.topic(name)
    return topic
